/**
 * A small USP Controller endpoint (TR-369 1.4) for the command line and for tests: sends
 * NoSessionContext Records to one agent over WebSocket, MQTT or STOMP and matches responses by
 * msg_id. Not a full controller: no sessions, no retries, one agent per client.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { Client as StompClient, type IMessage } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import { WebSocket, type RawData } from 'ws';
import { decodeMsg, decodeRecord, encodeRecord, noSessionRecord, type Msg, type MsgType, type Request, type UspRecord } from '../../usp/codec/record.js';
import { decodeReplyToTopic, encodeReplyToTopic } from '../../usp/mtp/mqtt.js';

export const USP_WS_SUBPROTOCOL = 'v1.usp';
export const USP_MQTT_CONTENT_TYPE = 'usp.msg';
export const USP_STOMP_CONTENT_TYPE = 'application/vnd.bbf.usp.msg';
export const DEFAULT_CONTROLLER_EID = 'proto::cwmp-usp-proxy-cli';

export type UspControllerTransport =
  /** `url`: the listener's base, e.g. ws://127.0.0.1:8080/usp; the agent EID is appended as a path segment. */
  | {
      mtp: 'ws';
      url: string;
      /** Connect to the shared path itself (Records routed by to_id), not <url>/<agent EID>. */
      shared?: boolean;
      /** Our secret, sent as `Authorization: Bearer <secret>` in the handshake (the agent's controllers[].websocket.secret). */
      secret?: string;
      /** wss://: CA to trust (PEM) and our client certificate and key (PEM). */
      tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
    }
  | { mtp: 'mqtt'; url: string; controllerTopic: string; agentTopic: string; protocolVersion?: 5 | 4; username?: string; password?: string }
  | {
      mtp: 'stomp';
      host: string;
      port: number;
      login?: string;
      passcode?: string;
      vhost?: string;
      controllerDest: string;
      agentDest: string;
    };

export interface UspControllerOptions {
  /** Our own Endpoint ID (default proto::cwmp-usp-proxy-cli). */
  endpointId?: string;
  /** The agent's Endpoint ID (to_id of every request). */
  agentId: string;
  transport: UspControllerTransport;
  /** Default request timeout (ms), 10000. */
  timeoutMs?: number;
  /** connect() gives up after this long (ms), 10000. */
  connectTimeoutMs?: number;
}

export interface UspControllerEvents {
  notify: [msg: Msg, record: UspRecord];
  /** Every decoded Msg addressed to us, before matching (tests count duplicates by msg_id). */
  msg: [msg: Msg, record: UspRecord];
  record: [record: UspRecord];
  error: [err: Error];
  close: [];
}

/** A request that timed out or could not be sent (the CLI maps it to exit code 3). */
export class UspTransportError extends Error {
  override name = 'UspTransportError';
}

interface Pending {
  resolve(m: Msg): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class UspControllerClient extends EventEmitter<UspControllerEvents> {
  readonly endpointId: string;
  readonly agentId: string;
  private readonly opts: UspControllerOptions;
  private readonly pending = new Map<string, Pending>();
  private readonly idPrefix = randomBytes(4).toString('hex');
  private seq = 0;
  private ws: WebSocket | undefined;
  private mqtt: MqttClient | undefined;
  private stomp: StompClient | undefined;
  private closed = false;

  constructor(opts: UspControllerOptions) {
    super();
    this.opts = opts;
    this.endpointId = opts.endpointId ?? DEFAULT_CONTROLLER_EID;
    this.agentId = opts.agentId;
  }

  /** Opens the MTP connection (and subscription). Rejects with UspTransportError. */
  async connect(): Promise<void> {
    const t = this.opts.transport;
    const timeoutMs = this.opts.connectTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UspTransportError(`${t.mtp}: connect timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const p = t.mtp === 'ws' ? this.connectWs(t) : t.mtp === 'mqtt' ? this.connectMqtt(t) : this.connectStomp(t);
      await Promise.race([p, timeout]);
    } catch (err) {
      await this.close();
      throw err instanceof UspTransportError ? err : new UspTransportError(`${t.mtp}: connect failed: ${errText(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A fresh msg_id, unique per client (random prefix + counter). */
  nextMsgId(): string {
    return `cli-${this.idPrefix}-${++this.seq}`;
  }

  /**
   * Sends a request Msg (msgId filled in when empty) and resolves with the response or Error Msg
   * whose msg_id matches. Rejects with UspTransportError on timeout or send failure.
   */
  async request(msg: Msg, timeoutMs = this.opts.timeoutMs ?? 10_000, toId = this.agentId): Promise<Msg> {
    if (!msg.header.msgId) msg = { ...msg, header: { ...msg.header, msgId: this.nextMsgId() } };
    const id = msg.header.msgId;
    if (this.pending.has(id)) throw new Error(`msg_id ${id} already in flight`);
    const result = new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new UspTransportError(`no response to ${msg.header.msgType} (msg_id ${id}) from ${toId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
    // A send can hang (an MQTT client offline queues the publish until it reconnects), so the
    // deadline runs against the send as well as against the response.
    const sent = this.sendRecord(noSessionRecord(this.endpointId, toId, msg)).catch((err: unknown) => {
      const p = this.pending.get(id);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(id);
      }
      throw err instanceof UspTransportError ? err : new UspTransportError(`send failed: ${errText(err)}`);
    });
    result.catch(() => undefined);
    sent.catch(() => undefined);
    await Promise.race([sent, result]);
    return result;
  }

  /** Closes the connection; pending requests reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new UspTransportError(`connection closed before a response to msg_id ${id}`));
    }
    this.pending.clear();
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          ws.terminate();
          resolve();
        }, 1000);
        ws.once('close', () => {
          clearTimeout(t);
          resolve();
        });
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close(1000);
      });
    }
    if (this.mqtt) await this.mqtt.endAsync(true).catch(() => undefined);
    if (this.stomp) await this.stomp.deactivate({ force: false }).catch(() => undefined);
    this.emit('close');
  }

  // ----------------------------------------------------------------------------------------------
  // Inbound

  private onBytes(bytes: Uint8Array, replyTo?: string): void {
    let rec: UspRecord;
    try {
      rec = decodeRecord(bytes);
    } catch (err) {
      this.emitError(new Error(`undecodable Record dropped: ${errText(err)}`));
      return;
    }
    if (rec.toId !== this.endpointId) return; // not for us
    const rt = rec.recordType;
    if (rt.kind !== 'noSessionContext') {
      this.emit('record', rec);
      return;
    }
    let msg: Msg;
    try {
      msg = decodeMsg(rt.payload);
    } catch (err) {
      this.emitError(new Error(`undecodable Msg from ${rec.fromId} dropped: ${errText(err)}`));
      return;
    }
    this.emit('msg', msg, rec);
    const notify = msg.body.request?.notify;
    if (msg.header.msgType === 'NOTIFY' && notify) {
      this.emit('notify', msg, rec);
      if (notify.sendResp) {
        const resp: Msg = {
          header: { msgId: msg.header.msgId, msgType: 'NOTIFY_RESP' },
          body: { msgBody: 'response', response: { respType: 'notifyResp', notifyResp: { subscriptionId: notify.subscriptionId ?? '' } } },
        };
        this.sendRecord(noSessionRecord(this.endpointId, rec.fromId, resp), replyTo).catch((err) =>
          this.emitError(new Error(`NotifyResp not sent: ${errText(err)}`)),
        );
      }
      return;
    }
    const p = this.pending.get(msg.header.msgId);
    if (!p) return; // late or unknown response
    clearTimeout(p.timer);
    this.pending.delete(msg.header.msgId);
    p.resolve(msg);
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  // ----------------------------------------------------------------------------------------------
  // Outbound

  private async sendRecord(rec: UspRecord, replyTo?: string): Promise<void> {
    if (this.closed) throw new UspTransportError('client is closed');
    const bytes = encodeRecord(rec);
    const t = this.opts.transport;
    switch (t.mtp) {
      case 'ws': {
        const ws = this.ws;
        if (!ws || ws.readyState !== WebSocket.OPEN) throw new UspTransportError('WebSocket is not open');
        await new Promise<void>((resolve, reject) => ws.send(bytes, { binary: true }, (e) => (e ? reject(e) : resolve())));
        return;
      }
      case 'mqtt': {
        const c = this.mqtt;
        if (!c?.connected) throw new UspTransportError('MQTT client is not connected');
        const dest = replyTo ?? t.agentTopic;
        if ((t.protocolVersion ?? 5) === 5) {
          // R-MQTT.23 (Response Topic) and Content Type usp.msg.
          await c.publishAsync(dest, Buffer.from(bytes), {
            qos: 1,
            properties: { responseTopic: t.controllerTopic, contentType: USP_MQTT_CONTENT_TYPE },
          });
        } else {
          await c.publishAsync(encodeReplyToTopic(dest, t.controllerTopic), Buffer.from(bytes), { qos: 1 }); // R-MQTT.24
        }
        return;
      }
      case 'stomp': {
        const c = this.stomp;
        if (!c?.connected) throw new UspTransportError('STOMP client is not connected');
        c.publish({
          destination: replyTo ?? t.agentDest,
          binaryBody: bytes,
          headers: { 'content-type': USP_STOMP_CONTENT_TYPE, 'reply-to-dest': t.controllerDest }, // R-STOMP.20/21
        });
        return;
      }
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Transports

  private async connectWs(t: Extract<UspControllerTransport, { mtp: 'ws' }>): Promise<void> {
    const base = t.url.replace(/\/+$/, '');
    const url = new URL(t.shared ? base : `${base}/${encodeURIComponent(this.agentId)}`);
    url.searchParams.set('eid', this.endpointId); // R-WS.10b
    const ws = new WebSocket(url, USP_WS_SUBPROTOCOL, {
      perMessageDeflate: false,
      followRedirects: false,
      ...(t.secret !== undefined ? { headers: { Authorization: `Bearer ${t.secret}` } } : {}),
      ...(t.tls?.ca ? { ca: t.tls.ca } : {}),
      ...(t.tls?.cert ? { cert: t.tls.cert } : {}),
      ...(t.tls?.key ? { key: t.tls.key } : {}),
    });
    this.ws = ws;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) return; // R-WS.16: Records come in binary frames
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      this.onBytes(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new UspTransportError(`ws: ${url.href}: HTTP ${res.statusCode}`)));
      ws.once('error', (e) => reject(new UspTransportError(`ws: ${url.href}: ${errText(e)}`)));
    });
    ws.on('error', (e) => this.emitError(e));
    ws.on('close', (code, reason) => {
      if (!this.closed) this.failAll(`WebSocket closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
    });
  }

  private async connectMqtt(t: Extract<UspControllerTransport, { mtp: 'mqtt' }>): Promise<void> {
    const v5 = (t.protocolVersion ?? 5) === 5;
    const o: IClientOptions = {
      protocolVersion: v5 ? 5 : 4,
      reconnectPeriod: 0,
      connectTimeout: this.opts.connectTimeoutMs ?? 10_000,
      clean: true,
      ...(t.username !== undefined ? { username: t.username } : {}),
      ...(t.password !== undefined ? { password: t.password } : {}),
    };
    if (v5)
      o.properties = { userProperties: { 'usp-endpoint-id': this.endpointId } }; // R-MQTT.13
    else o.clientId = `usp-cli-${this.idPrefix}`;
    const c = mqtt.connect(t.url, o);
    this.mqtt = c;
    c.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
      const ct = packet.properties?.contentType;
      if (v5 && ct !== undefined && ct !== USP_MQTT_CONTENT_TYPE && ct !== 'application/vnd.bbf.usp.msg') return;
      const replyTo = v5 ? packet.properties?.responseTopic : (decodeReplyToTopic(topic) ?? undefined);
      this.onBytes(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), replyTo);
    });
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', (e) => reject(new UspTransportError(`mqtt: ${t.url}: ${errText(e)}`)));
      c.once('close', () => reject(new UspTransportError(`mqtt: ${t.url}: connection closed`)));
    });
    c.on('error', (e) => this.emitError(e));
    c.on('close', () => {
      if (!this.closed) this.failAll('MQTT connection closed');
    });
    // 3.1.1 replies carry their own /reply-to= suffix below our topic; `#` also matches the topic itself.
    const filter = v5 ? t.controllerTopic : `${t.controllerTopic.replace(/\/+$/, '')}/#`;
    const granted = await c.subscribeAsync(filter, { qos: 1 });
    if (granted.some((g) => g.qos > 2)) throw new UspTransportError(`mqtt: broker refused subscription to ${filter}`);
  }

  private async connectStomp(t: Extract<UspControllerTransport, { mtp: 'stomp' }>): Promise<void> {
    const headers: Record<string, string> = {
      // stompjs does not escape CONNECT headers; R-STOMP.4 wants ':' as '\c'.
      'endpoint-id': this.endpointId.replace(/\\/g, '\\\\').replace(/:/g, '\\c'),
    };
    if (t.login !== undefined) headers['login'] = t.login;
    if (t.passcode !== undefined) headers['passcode'] = t.passcode;
    headers['host'] = t.vhost ?? '/';
    const c = new StompClient({
      webSocketFactory: () => new TCPWrapper(t.host, t.port),
      connectHeaders: headers,
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
    });
    this.stomp = c;
    const onMessage = (m: IMessage): void => {
      const ct = m.headers['content-type'];
      if (ct !== undefined && ct.split(';')[0]!.trim() !== USP_STOMP_CONTENT_TYPE) return;
      this.onBytes(m.binaryBody, m.headers['reply-to-dest']);
    };
    const subDest = await new Promise<string>((resolve, reject) => {
      c.onConnect = (f) => resolve(f.headers['subscribe-dest'] ?? t.controllerDest); // R-STOMP.6
      c.onStompError = (f) => reject(new UspTransportError(`stomp: ${t.host}:${t.port}: ${f.headers['message'] ?? 'ERROR frame'}`));
      c.onWebSocketError = (e: unknown) => reject(new UspTransportError(`stomp: ${t.host}:${t.port}: ${errText(e)}`));
      c.onWebSocketClose = () => reject(new UspTransportError(`stomp: ${t.host}:${t.port}: connection closed`));
      c.activate();
    });
    c.onStompError = (f) => this.emitError(new Error(`STOMP ERROR: ${f.headers['message'] ?? ''}`));
    c.onWebSocketClose = () => {
      if (!this.closed) this.failAll('STOMP connection closed');
    };
    // Wait for the RECEIPT so a request sent right after connect() finds the subscription in place.
    await new Promise<void>((resolve) => {
      const receipt = `sub-${this.idPrefix}`;
      c.watchForReceipt(receipt, () => resolve());
      c.subscribe(subDest, onMessage, { receipt });
    });
  }

  private failAll(why: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new UspTransportError(`${why} before a response to msg_id ${id}`));
    }
    this.pending.clear();
    this.emitError(new UspTransportError(why));
  }
}

function errText(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  if (e && typeof e === 'object' && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}

// ------------------------------------------------------------------------------------------------
// Request builders (msgId left empty: request() fills it in)

function req(msgType: MsgType, request: Request): Msg {
  return { header: { msgId: '', msgType }, body: { msgBody: 'request', request } };
}

export function get(paths: string[], maxDepth?: number): Msg {
  return req('GET', { reqType: 'get', get: { paramPaths: paths, ...(maxDepth ? { maxDepth } : {}) } });
}

export interface ObjParams {
  objPath: string;
  params: Record<string, string>;
  required?: boolean;
}

function settings(o: ObjParams): { param: string; value: string; required: boolean }[] {
  return Object.entries(o.params).map(([param, value]) => ({ param, value, required: o.required ?? false }));
}

export function set(objs: ObjParams[], allowPartial = false): Msg {
  return req('SET', {
    reqType: 'set',
    set: { allowPartial, updateObjs: objs.map((o) => ({ objPath: o.objPath, paramSettings: settings(o) })) },
  });
}

export function add(objs: ObjParams[], allowPartial = false): Msg {
  return req('ADD', {
    reqType: 'add',
    add: { allowPartial, createObjs: objs.map((o) => ({ objPath: o.objPath, paramSettings: settings(o) })) },
  });
}

export function del(paths: string[], allowPartial = false): Msg {
  return req('DELETE', { reqType: 'delete', delete: { allowPartial, objPaths: paths } });
}

export function operate(command: string, args: Record<string, string> = {}, opts: { commandKey?: string; sendResp?: boolean } = {}): Msg {
  return req('OPERATE', {
    reqType: 'operate',
    operate: { command, commandKey: opts.commandKey ?? '', sendResp: opts.sendResp ?? true, inputArgs: { ...args } },
  });
}

export function getInstances(paths: string[], firstLevelOnly = false): Msg {
  return req('GET_INSTANCES', { reqType: 'getInstances', getInstances: { objPaths: paths, firstLevelOnly } });
}

export interface GetSupportedDMOptions {
  firstLevelOnly?: boolean;
  returnCommands?: boolean;
  returnEvents?: boolean;
  returnParams?: boolean;
  returnUniqueKeySets?: boolean;
}

export function getSupportedDM(paths: string[], opts: GetSupportedDMOptions = {}): Msg {
  return req('GET_SUPPORTED_DM', {
    reqType: 'getSupportedDm',
    getSupportedDm: {
      objPaths: paths,
      firstLevelOnly: opts.firstLevelOnly ?? false,
      returnCommands: opts.returnCommands ?? true,
      returnEvents: opts.returnEvents ?? true,
      returnParams: opts.returnParams ?? true,
      returnUniqueKeySets: opts.returnUniqueKeySets ?? true,
    },
  });
}

export function getSupportedProtocol(versions = '1.0,1.1,1.2,1.3,1.4'): Msg {
  return req('GET_SUPPORTED_PROTO', {
    reqType: 'getSupportedProtocol',
    getSupportedProtocol: { controllerSupportedProtocolVersions: versions },
  });
}
