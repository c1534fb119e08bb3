/**
 * MQTT MTP (TR-369 section "MQTT Binding") on MQTT.js: one broker connection and one agent
 * topic shared by every proxied agent; Records are routed by to_id above us (src/usp/agent/endpoint.ts).
 *
 * MQTT 5.0 (R-MQTT.1): CONNECT carries the user property usp-endpoint-id (R-MQTT.13) and
 * Request Response Information (R-MQTT.12); every PUBLISH carries Response Topic = our reply-to
 * topic (R-MQTT.22/23) and Content Type "usp.msg" (R-MQTT.27).
 * MQTT 3.1.1 (R-MQTT.2): the reply-to topic rides at the end of the Topic Name as
 * "/reply-to=<topic with / as %2F>" (R-MQTT.24/25); we subscribe to "<agentTopic>/#", which
 * covers both "<agentTopic>" and "<agentTopic>/reply-to=..." (R-MQTT.15, last bullet).
 *
 * Reconnects are ours (MQTT.js reconnectPeriod 0): a fresh client per attempt after
 * backoffDelayMs (R-MQTT.10/33), reusing the ClientId the broker assigned (R-MQTT.9/11).
 */
import { safeLog, delay, type MtpLog } from './util.js';
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import type { IClientOptions, IConnackPacket, IPublishPacket, MqttClient } from 'mqtt';
import { backoffDelayMs } from '../../util/backoff.js';
import { lazyRequire } from '../../util/lazy-require.js';
import { batchWritesPerTurn } from './write-batch.js';
import { publishQos1 } from './mqtt-publish.js';
import { MtpSendError, type InboundRecord, type Mtp, type MtpDestination, type MtpEvents, type MtpKind, type MtpStatus } from './types.js';

export type { MtpLog } from './util.js';

/** MQTT.js, loaded at the first connection: a proxy without an MQTT MTP never holds its code. */
const mqtt = lazyRequire<typeof import('mqtt')>('mqtt');

/** R-MQTT.27: what we put in Content Type. */
export const USP_MQTT_CONTENT_TYPE = 'usp.msg';
/** R-MQTT.27a: Content Types that mark a USP Record. */
export const USP_MQTT_CONTENT_TYPES: readonly string[] = ['usp.msg', 'application/vnd.bbf.usp.msg'];

export interface MqttMtpOptions {
  /** mqtt://host:port (mqtts:// for TLS). */
  url: string;
  protocolVersion: 5 | 4;
  /**
   * R-MQTT.8: configured ClientId. Unset: MQTT 5 sends an empty one and keeps the one the broker
   * assigns (R-MQTT.9); MQTT 3.1.1 uses connectEndpointId, else a generated one.
   */
  clientId?: string;
  username?: string;
  password?: string;
  /** R-MQTT.14 */
  keepaliveS: number;
  /** The one topic all our agents share (their reply-to topic), e.g. '/usp/endpoint'. */
  agentTopic: string;
  /**
   * R-MQTT.13: the usp-endpoint-id user property of CONNECT. The connection is shared by many
   * agents, so this is the proxy's own identity toward the broker (configure one, e.g.
   * `proto::cwmp-usp-proxy-<host>`). Unset: the first agent registered when the connection is
   * made, else no property (with a warning).
   */
  connectEndpointId?: string;
  /**
   * Several proxy instances (src/cluster/): the agent topic and extra filters are subscribed as
   * MQTT 5 shared subscriptions "$share/<group>/<filter>", so the broker hands each Record to one
   * instance. The broker-assigned Response Information topic stays per client.
   */
  shareGroup?: string;
  /** Extra Topic Filters to subscribe to (R-MQTT.15, first bullet). */
  extraTopicFilters?: string[];
  /**
   * Topics each bound to one controller by a broker ACL (config controllers[].mqtt.agentTopic),
   * subscribed like the agent topic; every Record says which topic it came on (InboundRecord.channel).
   */
  boundTopics?: string[];
  /** QoS of SUBSCRIBE and PUBLISH (R-MQTT.20: 0 and 1 supported). Default 1. */
  qos?: 0 | 1;
  /** Inbound and outbound Records above this size are dropped with a warning. */
  maxRecordBytes: number;
  backoff: { baseMs: number; maxMs: number };
  /** CONNACK / SUBACK deadline. Default 10 s. */
  connectTimeoutMs?: number;
  log?: MtpLog;
  /**
   * For mqtts:// URLs (config usp.mqtt.tls): PEM contents (util/tls.ts loads them). `ca` replaces
   * node's default roots, so pass the system roots with it (util/tls withSystemRoots); cert/key
   * is the client certificate; insecure skips verification (labs only).
   */
  tls?: { ca?: string | Buffer | Array<string | Buffer>; cert?: string | Buffer; key?: string | Buffer; insecure?: boolean } | null;
}

type State = 'idle' | 'connecting' | 'open' | 'stopping' | 'stopped';

/** MQTT topic filter matching (MQTT 5 section 4.7), used to avoid overlapping subscriptions. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i < t.length || i === t.length; // "a/#" matches "a" too
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

const REPLY_TO = '/reply-to=';

/** DEBUG=mqttjs* (or *) turns MQTT.js's own packet log on, as `debug` would. */
const MQTTJS_DEBUG = /mqttjs|(^|[\s,])\*/.test(process.env.DEBUG ?? '');
const noop = (): void => {};

/** R-MQTT.24: the MQTT 3.1.1 Topic Name carrying our reply-to topic. */
export function encodeReplyToTopic(destTopic: string, replyTopic: string): string {
  return `${destTopic}${REPLY_TO}${replyTopic.replace(/\//g, '%2F')}`;
}

/** R-MQTT.25: the reply-to topic of an MQTT 3.1.1 Topic Name, or null when it has none. */
export function decodeReplyToTopic(topic: string): string | null {
  const i = topic.lastIndexOf(REPLY_TO);
  if (i < 0) return null;
  const r = topic.slice(i + REPLY_TO.length).replace(/%2F/gi, '/');
  return r.length ? r : null;
}

function firstProp(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The MQTT MTP. start() resolves after the first connection attempt, connected or not (a
 * broker that is down is retried in the background). send() never queues: it rejects with
 * MtpSendError while not connected, and resolves on PUBACK at QoS 1.
 */
export class MqttMtp extends EventEmitter<MtpEvents> implements Mtp {
  readonly kind: MtpKind = 'mqtt';
  private readonly opts: MqttMtpOptions;
  private state: State = 'idle';
  private client: MqttClient | null = null;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private assignedClientId: string | null = null;
  private reply: string;
  private filters: string[] = [];
  private readonly agents = new Set<string>();
  private firstAttempt: (() => void) | null = null;
  private lastError: string | undefined;
  private props: { responseTopic: string; contentType: string } | null = null;
  private readonly generatedId = `cwmp-usp-proxy-${Math.random().toString(16).slice(2, 10)}`;

  constructor(opts: MqttMtpOptions) {
    super();
    this.opts = opts;
    this.reply = opts.agentTopic;
  }

  /** Our "reply to" topic: Response Information from CONNACK if the broker gave one (R-MQTT.21), else agentTopic. Agents report it in mqtt_connect.subscribed_topic. */
  get replyTopic(): string {
    return this.reply;
  }

  /** The Topic Filters subscribed on the current connection. */
  get subscribedFilters(): readonly string[] {
    return this.filters;
  }

  /** The ClientId in use (configured, assigned by the broker, or generated). */
  get clientId(): string {
    return this.opts.clientId || this.assignedClientId || (this.opts.protocolVersion === 4 ? (this.opts.connectEndpointId ?? this.generatedId) : '');
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'connecting';
    await new Promise<void>((resolve) => {
      this.firstAttempt = resolve;
      this.connect();
    });
  }

  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    const wasOpen = this.state === 'open';
    this.state = 'stopping';
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const c = this.client;
    this.client = null;
    if (c) {
      // R-MQTT.35: DISCONNECT; end() waits for in-flight QoS 1 PUBACKs first.
      await Promise.race([new Promise<void>((r) => c.end(false, {}, () => r())), delay(this.opts.connectTimeoutMs ?? 10_000)]);
      c.end(true);
      c.removeAllListeners();
      c.on('error', () => {});
    }
    this.state = 'stopped';
    this.filters = [];
    if (wasOpen) this.emit('channelClose', { mtp: 'mqtt', agentEid: null, dest: null, reason: 'stopped' });
    this.resolveFirst();
  }

  /** Not an async function: one promise per Record (the one settled by the PUBACK), no extra hop. */
  send(from: string, dest: MtpDestination, bytes: Uint8Array): Promise<void> {
    if (dest.mtp !== 'mqtt') return Promise.reject(new MtpSendError('mqtt', `destination is for ${dest.mtp}, not mqtt`));
    if (bytes.length > this.opts.maxRecordBytes) {
      this.warn('outbound Record over maxRecordBytes dropped', { from, dest: dest.address, size: bytes.length });
      return Promise.reject(new MtpSendError('mqtt', `Record of ${bytes.length} bytes exceeds maxRecordBytes ${this.opts.maxRecordBytes}`));
    }
    const c = this.client;
    // R-MQTT.17: nothing is published before the subscription is in place.
    if (this.state !== 'open' || !c || !c.connected) return Promise.reject(new MtpSendError('mqtt', 'MQTT broker not connected'));
    const payload = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const qos = this.opts.qos ?? 1;
    const v5 = this.opts.protocolVersion === 5;
    const topic = v5 ? dest.address : encodeReplyToTopic(dest.address, this.reply);
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => (err ? reject(new MtpSendError('mqtt', `MQTT publish failed: ${err.message}`)) : resolve());
      if (qos === 1 && publishQos1(c, topic, payload, v5 ? this.v5Props() : null, done)) return;
      c.publish(topic, payload, v5 ? { qos, properties: this.v5Props() } : { qos }, done);
    });
  }

  /** R-MQTT.22/23 and R-MQTT.27: the properties of every PUBLISH (one object per reply-to topic). */
  private v5Props(): { responseTopic: string; contentType: string } {
    if (this.props?.responseTopic !== this.reply) this.props = { responseTopic: this.reply, contentType: USP_MQTT_CONTENT_TYPE };
    return this.props;
  }

  status(): MtpStatus {
    const connected = this.state === 'open';
    return {
      mtp: 'mqtt',
      connected,
      detail: connected
        ? `connected to ${this.opts.url} (MQTT ${this.opts.protocolVersion === 5 ? '5.0' : '3.1.1'}) as ${this.clientId || '(assigned)'}, reply-to ${this.reply}, subscribed to ${this.filters.join(', ')}`
        : `${this.state === 'stopped' ? 'stopped' : 'not connected'} (${this.opts.url})`,
      channels: connected ? 1 : 0,
    };
  }

  addAgent(eid: string): void {
    this.agents.add(eid);
  }

  removeAgent(eid: string): void {
    this.agents.delete(eid);
  }

  // --- connection ------------------------------------------------------------------------------

  private connectOptions(): IClientOptions {
    const v5 = this.opts.protocolVersion === 5;
    const o: IClientOptions = {
      protocolVersion: this.opts.protocolVersion,
      clientId: this.clientId,
      clean: true,
      keepalive: this.opts.keepaliveS,
      reconnectPeriod: 0,
      connectTimeout: this.opts.connectTimeoutMs ?? 10_000,
      resubscribe: false,
      // MQTT.js logs each packet through `debug` (a dozen calls per Record): off unless DEBUG asks for it.
      ...(MQTTJS_DEBUG ? {} : { log: noop }),
    };
    if (this.opts.username !== undefined) o.username = this.opts.username;
    if (this.opts.password !== undefined) o.password = this.opts.password;
    const tls = this.opts.tls;
    if (tls && /^(mqtts|wss):/i.test(this.opts.url)) {
      if (tls.ca) o.ca = Array.isArray(tls.ca) ? tls.ca.map((c) => c.toString()) : tls.ca;
      if (tls.cert) o.cert = tls.cert;
      if (tls.key) o.key = tls.key;
      o.rejectUnauthorized = !tls.insecure;
    }
    if (v5) {
      const eid = this.opts.connectEndpointId ?? this.agents.values().next().value;
      if (!eid) this.warn('no endpoint id for the usp-endpoint-id CONNECT property (set connectEndpointId)', {});
      o.properties = {
        requestResponseInformation: true, // R-MQTT.12
        ...(eid ? { userProperties: { 'usp-endpoint-id': eid } } : {}), // R-MQTT.13
      };
    }
    return o;
  }

  private connect(): void {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'connecting';
    let c: MqttClient;
    try {
      c = mqtt().connect(this.opts.url, this.connectOptions());
    } catch (err) {
      this.lastError = (err as Error).message;
      this.scheduleRetry(false);
      return;
    }
    this.client = c;
    if (c.stream instanceof Socket) {
      // Records are small and latency-bound: no Nagle delay (MQTT.js leaves it on).
      c.stream.setNoDelay(true);
      // One write per turn for the PUBACKs and PUBLISHes of that turn (MQTT.js writes each packet
      // in a dozen pieces): the syscalls and node's per-piece bookkeeping cost more than a Get.
      batchWritesPerTurn(c.stream);
    }
    let closed = false;
    c.on('error', (err) => {
      this.lastError = err.message;
      this.log('debug', `MQTT client error: ${err.message}`);
    });
    c.on('disconnect', (packet) => {
      this.lastError = `broker sent DISCONNECT (reason ${packet.reasonCode ?? 0})`;
    });
    c.on('connect', (connack) => {
      void this.onConnack(c, connack);
    });
    c.on('message', (topic, payload, packet) => {
      if (c !== this.client || this.state !== 'open') return;
      this.onPublish(topic, payload, packet);
    });
    c.on('close', () => {
      if (closed || c !== this.client) return;
      closed = true;
      const wasOpen = this.state === 'open';
      this.client = null;
      this.filters = [];
      c.end(true); // fails in-flight publishes now
      c.removeAllListeners();
      c.on('error', () => {});
      if (wasOpen) this.emit('channelClose', { mtp: 'mqtt', agentEid: null, dest: null, reason: this.lastError ?? 'connection closed' });
      this.scheduleRetry(wasOpen);
    });
  }

  private scheduleRetry(wasOpen: boolean): void {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'connecting';
    const wait = backoffDelayMs(this.attempt++, this.opts.backoff);
    this.warn(`MQTT connection ${wasOpen ? 'lost' : 'failed'}; retrying in ${wait} ms`, { error: this.lastError, attempt: this.attempt });
    this.lastError = undefined;
    this.resolveFirst();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, wait);
  }

  private async onConnack(c: MqttClient, connack: IConnackPacket): Promise<void> {
    const props = connack.properties ?? {};
    if (props.assignedClientIdentifier) this.assignedClientId = props.assignedClientIdentifier; // R-MQTT.9
    const v5 = this.opts.protocolVersion === 5;
    // R-MQTT.15: configured filters, CONNACK subscribe-topic, then Response Information unless covered.
    const filters: string[] = [];
    const add = (f: string) => {
      if (f && !filters.some((x) => x === f || topicMatches(x, f))) filters.push(f);
    };
    add(v5 ? this.opts.agentTopic : `${this.opts.agentTopic}/#`);
    for (const t of this.opts.boundTopics ?? []) add(v5 ? t : `${t}/#`);
    for (const f of this.opts.extraTopicFilters ?? []) add(f);
    const sub = props.userProperties?.['subscribe-topic'];
    for (const f of Array.isArray(sub) ? sub : sub ? [sub] : []) add(f);
    this.reply = this.opts.agentTopic;
    if (v5 && props.responseInformation) {
      this.reply = props.responseInformation; // R-MQTT.21
      add(props.responseInformation);
    }
    const qos = this.opts.qos ?? 1;
    const group = this.opts.shareGroup;
    if (group) {
      for (let i = 0; i < filters.length; i++) if (filters[i] !== props.responseInformation) filters[i] = `$share/${group}/${filters[i]}`;
    }
    let ok = false;
    try {
      const granted = await Promise.race([
        c.subscribeAsync(Object.fromEntries(filters.map((f) => [f, { qos }]))),
        delay(this.opts.connectTimeoutMs ?? 10_000).then(() => {
          throw new Error('no SUBACK in time');
        }),
      ]);
      const failed = granted.filter((g) => g.qos >= 0x80).map((g) => g.topic);
      if (failed.length) this.warn('broker refused subscriptions', { filters: failed });
      ok = failed.length < filters.length;
    } catch (err) {
      this.lastError = `SUBSCRIBE failed: ${(err as Error).message}`;
    }
    if (c !== this.client) return;
    if (!ok) {
      // R-MQTT.17: no subscription: no PUBLISH, disconnect and retry.
      this.lastError ??= 'no Topic Filter was granted';
      this.warn(this.lastError, {});
      c.end(true);
      return;
    }
    this.filters = filters;
    this.state = 'open';
    this.attempt = 0;
    this.resolveFirst();
    this.log('info', `MQTT connected to ${this.opts.url}`, { clientId: this.clientId, replyTopic: this.reply, filters });
    // R-MTP.6: each agent sends its mqtt_connect Record on this (new) channel.
    this.emit('channelOpen', { mtp: 'mqtt', agentEid: null, dest: null, peerEid: null });
  }

  private onPublish(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const props = packet.properties ?? {};
    const v5 = this.opts.protocolVersion === 5;
    const contentType = v5 ? props.contentType : undefined;
    if (contentType !== undefined && !USP_MQTT_CONTENT_TYPES.includes(contentType)) {
      this.warn(`PUBLISH with Content Type ${contentType} dropped (not a USP Record)`, { topic });
      return;
    }
    if (payload.length > this.opts.maxRecordBytes) {
      this.warn('inbound Record over maxRecordBytes dropped', { topic, size: payload.length });
      return;
    }
    // R-MQTT.26 (5.0: Response Topic) / R-MQTT.25 (3.1.1: "/reply-to=" suffix).
    const replyTopic = v5 ? props.responseTopic : decodeReplyToTopic(topic);
    if (!replyTopic) this.log('debug', 'PUBLISH without a reply-to topic', { topic });
    const peerEid = firstProp(props.userProperties?.['usp-endpoint-id']);
    // The topic it was published to (3.1.1: without the reply-to suffix): a bound topic names its controller.
    const suffix = v5 ? -1 : topic.lastIndexOf(REPLY_TO);
    const rec: InboundRecord = {
      mtp: 'mqtt',
      bytes: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
      replyTo: replyTopic ? { mtp: 'mqtt', address: replyTopic } : null,
      agentEid: null,
      peerEid: peerEid ?? null,
      channel: suffix === -1 ? topic : topic.slice(0, suffix),
      ...(contentType !== undefined ? { contentType } : {}),
    };
    try {
      this.emit('record', rec);
    } catch (err) {
      this.warn(`record listener threw: ${(err as Error).message}`, {});
    }
  }

  private resolveFirst(): void {
    const f = this.firstAttempt;
    this.firstAttempt = null;
    f?.();
  }

  private warn(message: string, detail: Record<string, unknown>): void {
    this.log('warn', message, detail);
    this.emit('warning', { mtp: 'mqtt', message, detail });
  }

  private log(level: 'debug' | 'info' | 'warn', msg: string, extra?: object): void {
    safeLog(this.opts.log, level, msg, extra);
  }
}
