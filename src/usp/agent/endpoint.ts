/**
 * The USP endpoint layer: Records in from every MTP, routed by to_id to the device's agent,
 * trust checked (configured controllers only), the Msg handed to the handlers, the response
 * sent back on the request's reply path (else the controller's configured address); Connect
 * Records on every new channel (R-MTP.6) and Disconnect Records on shutdown. MTPs stay thin:
 * they move bytes; this module is the only one that decodes a Record.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { ControllerConfig } from '../../app/config.js';
import type { Logger } from '../../app/log.js';
import { handle, type HandlerContext } from '../handlers/index.js';
import {
  connectRecord,
  decodeMsg,
  decodeRecord,
  disconnectRecord,
  encodeRecord,
  errorMsg,
  noSessionRecord,
  recordErrorDecision,
  type Msg,
  type UspRecord,
} from '../codec/record.js';
import type { InboundRecord, Mtp, MtpChannelOpen, MtpDestination, MtpKind } from '../mtp/types.js';
import { type Coordination, type RelayedRecord, SingleInstance } from './coordination.js';

/** The registered agents (every CWMP device), as a set of Endpoint IDs. */
export class AgentDirectory {
  private readonly eids = new Set<string>();
  has(eid: string): boolean {
    return this.eids.has(eid);
  }
  add(eid: string): boolean {
    if (this.eids.has(eid)) return false;
    this.eids.add(eid);
    return true;
  }
  delete(eid: string): void {
    this.eids.delete(eid);
  }
  get size(): number {
    return this.eids.size;
  }
  all(): IterableIterator<string> {
    return this.eids.values();
  }
}

export interface EndpointStats {
  recordsIn: number;
  recordsOut: number;
  dropped: number;
}

/** One Record in or out, decoded once here. */
export interface RecordEvent {
  mtp: MtpKind;
  direction: 'in' | 'out';
  /** The Msg type (GET, NOTIFY_RESP ...), else the Record type (mqttConnect, disconnect ...), else 'undecodable'. */
  msgType: string;
  /** in: from arrival until handled (a request: answered); out: the MTP's send. */
  ms: number;
}

export interface EndpointEvents {
  record: [RecordEvent];
  /** A Record was dropped (unknown controller, wrong to_id, undecodable). */
  dropped: [{ mtp: MtpKind; reason: string }];
}

export interface UspEndpointOptions {
  agents: AgentDirectory;
  controllers: readonly ControllerConfig[];
  mtps: readonly Mtp[];
  context: Omit<HandlerContext, 'agentEid' | 'controllerEid' | 'trusted'>;
  log: Logger;
  /** Requests one controller may have in progress; beyond, Error 7005 (default 256). */
  maxInFlightPerController?: number;
  /** Broker MTPs: the topic/destination the agents listen on, named in their Connect Records (R-MTP.6). */
  agentAddresses?: Partial<Record<MtpKind, string>>;
  /** Several instances sharing one store (default: this one alone). */
  coordination?: Coordination;
}

/** The label of an outbound Record: the Msg type, else the Record type. */
const typeOf = (rec: UspRecord, msg: Msg | null): string => msg?.header.msgType ?? rec.recordType.kind;

export class UspEndpoint extends EventEmitter<EndpointEvents> {
  readonly agents: AgentDirectory;
  private readonly controllers = new Map<string, ControllerConfig>();
  private readonly mtps: readonly Mtp[];
  private readonly context: UspEndpointOptions['context'];
  private readonly log: Logger;
  private readonly maxInFlightPerController: number;
  private readonly agentAddresses: Partial<Record<MtpKind, string>>;
  private readonly coordination: Coordination;
  private readonly inFlight = new Map<string, number>();
  readonly stats: EndpointStats = { recordsIn: 0, recordsOut: 0, dropped: 0 };
  private stopping = false;

  constructor(opts: UspEndpointOptions) {
    super();
    this.agents = opts.agents;
    this.mtps = opts.mtps;
    this.context = opts.context;
    this.log = opts.log;
    this.maxInFlightPerController = opts.maxInFlightPerController ?? 256;
    this.agentAddresses = opts.agentAddresses ?? {};
    this.coordination = opts.coordination ?? new SingleInstance();
    for (const c of opts.controllers) this.controllers.set(c.endpointId, c);
    for (const m of this.mtps) {
      m.on('record', (r) => void this.receive(r).catch((e: unknown) => this.log.error({ err: e, mtp: r.mtp }, 'USP record handling failed')));
      m.on('channelOpen', (c) => void this.onChannelOpen(c).catch((e: unknown) => this.log.error({ err: e }, 'sending Connect Records failed')));
      // MTP warnings are logged by the MTPs themselves (their log option); nothing to add here.
    }
    // Several instances: a Record another instance could not deliver, and agents registered there.
    this.coordination.on('relayedRecord', (r) => void this.deliverRelayed(r));
    this.coordination.on('agentAdded', ({ endpointId }) => this.addAgent(endpointId));
  }

  async start(): Promise<void> {
    for (const eid of this.agents.all()) for (const m of this.mtps) m.addAgent(eid);
    await Promise.all(this.mtps.map((m) => m.start()));
  }

  /** A device registered: its agent appears on every MTP (and sends its Connect Records). */
  addAgent(eid: string): void {
    if (!this.agents.add(eid)) return;
    for (const m of this.mtps) m.addAgent(eid);
    for (const m of this.mtps) if (m.kind !== 'websocket' && m.status().connected) void this.connectRecords(m.kind, [eid]);
  }

  /** Sends Disconnect Records (best effort, bounded), then stops the MTPs. */
  async stop(budgetMs = 2000): Promise<void> {
    this.stopping = true;
    const deadline = Date.now() + budgetMs;
    outer: for (const m of this.mtps) {
      if (m.kind === 'websocket' || !m.status().connected) continue;
      for (const eid of this.agents.all()) {
        if (Date.now() > deadline) break outer;
        for (const c of this.controllers.values()) {
          const dest = this.configuredDest(c, m.kind);
          if (!dest) continue;
          await this.transmit(m, eid, dest, encodeRecord(disconnectRecord(eid, c.endpointId, 'agent shutting down', 0)), 'disconnect').catch(() => undefined);
        }
      }
    }
    await Promise.all(this.mtps.map((m) => m.stop()));
  }

  /**
   * Agent-initiated message (Notify) to a controller over its first reachable MTP; else handed
   * to the other instances (a WebSocket controller connected to one of them).
   */
  async sendToController(agentEid: string, controllerEid: string, msg: Msg): Promise<boolean> {
    const c = this.controllers.get(controllerEid);
    if (!c) return false;
    const bytes = encodeRecord(noSessionRecord(agentEid, controllerEid, msg));
    if (await this.sendRecordToController(agentEid, c, bytes, msg.header.msgType)) return true;
    return this.coordination.relayRecord({ agentEid, controllerEid, bytes, msgType: msg.header.msgType });
  }

  /** A Record relayed by another instance: sent if this instance reaches the controller over WebSocket, else dropped. */
  async deliverRelayed(r: RelayedRecord): Promise<boolean> {
    const c = this.controllers.get(r.controllerEid);
    return c ? this.sendRecordToController(r.agentEid, c, r.bytes, r.msgType, true) : false;
  }

  private async sendRecordToController(agentEid: string, c: ControllerConfig, bytes: Uint8Array, msgType: string, webSocketOnly = false): Promise<boolean> {
    const controllerEid = c.endpointId;
    for (const m of this.mtps) {
      if (webSocketOnly && m.kind !== 'websocket') continue;
      const dest: MtpDestination | null =
        m.kind === 'websocket' ? { mtp: 'websocket', address: `controller:${controllerEid}` } : this.configuredDest(c, m.kind);
      if (!dest) continue;
      try {
        await this.transmit(m, agentEid, dest, bytes, msgType);
        return true;
      } catch {
        // try the next MTP
      }
    }
    return false;
  }

  /** Every Record out goes through here: counted once, with its type known from before encoding. */
  private async transmit(mtp: Mtp, from: string, dest: MtpDestination, bytes: Uint8Array, msgType: string): Promise<void> {
    const started = performance.now();
    await mtp.send(from, dest, bytes);
    this.stats.recordsOut++;
    this.emit('record', { mtp: mtp.kind, direction: 'out', msgType, ms: performance.now() - started });
  }

  controller(eid: string): ControllerConfig | undefined {
    return this.controllers.get(eid);
  }

  private configuredDest(c: ControllerConfig, kind: MtpKind): MtpDestination | null {
    if (kind === 'mqtt' && c.mqtt.topic) return { mtp: 'mqtt', address: c.mqtt.topic };
    if (kind === 'stomp' && c.stomp.destination) return { mtp: 'stomp', address: c.stomp.destination };
    return null;
  }

  private drop(mtp: MtpKind, reason: string, detail: Record<string, unknown> = {}): void {
    this.stats.dropped++;
    this.log.info({ mtp, ...detail }, `USP Record dropped: ${reason}`);
    this.emit('dropped', { mtp, reason });
  }

  private async send(mtp: Mtp, from: string, dest: MtpDestination, rec: UspRecord, msg: Msg | null = null): Promise<boolean> {
    try {
      await this.transmit(mtp, from, dest, encodeRecord(rec), typeOf(rec, msg));
      return true;
    } catch (e) {
      this.log.warn({ mtp: mtp.kind, dest: dest.address, err: (e as Error).message }, 'USP Record could not be sent');
      return false;
    }
  }

  /** Every Record in: handled, then counted once with its type and how long it took (a request: until answered). */
  private async receive(r: InboundRecord): Promise<void> {
    const started = performance.now();
    const label = { msgType: 'undecodable' };
    try {
      await this.onRecord(r, label);
    } finally {
      this.emit('record', { mtp: r.mtp, direction: 'in', msgType: label.msgType, ms: performance.now() - started });
    }
  }

  private async onRecord(r: InboundRecord, label: { msgType: string }): Promise<void> {
    this.stats.recordsIn++;
    const mtp = this.mtps.find((m) => m.kind === r.mtp)!;
    let rec: UspRecord;
    try {
      rec = decodeRecord(r.bytes);
    } catch (e) {
      return this.recordError(mtp, r, e);
    }
    // The Msg is decoded up front so that even a Record dropped below is counted by its Msg type;
    // a Msg that does not decode is answered only once the Record passed the checks.
    let msg: Msg | null = null;
    let msgError: unknown = null;
    if (rec.recordType.kind === 'noSessionContext') {
      try {
        msg = decodeMsg(rec.recordType.payload);
        label.msgType = msg.header.msgType;
      } catch (e) {
        msgError = e;
      }
    } else label.msgType = rec.recordType.kind;
    if (!this.agents.has(rec.toId)) {
      if (!(await this.coordination.resolveAgent(rec.toId).catch(() => false)))
        return this.drop(r.mtp, 'to_id is not one of our agents', { toId: rec.toId, fromId: rec.fromId });
      this.addAgent(rec.toId);
    }
    if (r.agentEid && r.agentEid !== rec.toId)
      return this.drop(r.mtp, 'to_id does not match the agent of this connection', { toId: rec.toId, channel: r.agentEid });
    if (rec.fromId === rec.toId) return this.drop(r.mtp, 'from_id is the agent itself', { fromId: rec.fromId });
    // A channel that stated its peer (WebSocket ?eid=, MQTT usp-endpoint-id) speaks only for that peer.
    if (r.peerEid && r.peerEid !== rec.fromId)
      return this.drop(r.mtp, 'from_id does not match the Endpoint ID of the connection', { fromId: rec.fromId, peer: r.peerEid });
    const controller = this.controllers.get(rec.fromId);
    if (!controller) return this.drop(r.mtp, 'from_id is not a configured controller', { fromId: rec.fromId, toId: rec.toId });

    const reply: MtpDestination | null = r.replyTo ?? this.configuredDest(controller, r.mtp);
    switch (rec.recordType.kind) {
      case 'noSessionContext':
        break;
      case 'sessionContext':
        if (reply) await this.send(mtp, rec.toId, reply, disconnectRecord(rec.toId, rec.fromId, 'Session Context not allowed', 7106));
        return;
      case 'disconnect':
        this.log.info({ fromId: rec.fromId, reason: rec.recordType.reason }, 'controller sent a Disconnect Record');
        return;
      default:
        return; // Connect Records from a controller need no answer
    }
    if (!msg) return this.recordError(mtp, r, msgError);
    if (msg.body.msgBody === undefined && msg.header.msgType === 'ERROR') {
      if (reply) await this.answer(mtp, rec, reply, errorMsg(msg.header.msgId, 7004, 'the Msg has no body (msg_type missing or 0)'));
      return;
    }
    const busy = this.inFlight.get(rec.fromId) ?? 0;
    if (busy >= this.maxInFlightPerController && msg.body.msgBody === 'request') {
      // Flood guard: this controller's excess requests are refused; others are unaffected.
      if (reply)
        await this.answer(
          mtp,
          rec,
          reply,
          errorMsg(msg.header.msgId, 7005, `too many requests in progress from ${rec.fromId} (limit ${this.maxInFlightPerController})`),
        );
      return;
    }
    this.inFlight.set(rec.fromId, busy + 1);
    const tracked = msg.body.msgBody === 'request';
    if (tracked) this.coordination.requestStarted(rec.toId, rec.fromId, msg.header.msgId);
    let resp: Msg | null;
    try {
      resp = await handle({ ...this.context, agentEid: rec.toId, controllerEid: rec.fromId, trusted: true }, msg);
    } finally {
      const n = (this.inFlight.get(rec.fromId) ?? 1) - 1;
      if (n <= 0) this.inFlight.delete(rec.fromId);
      else this.inFlight.set(rec.fromId, n);
    }
    let answered = true;
    if (resp && !reply)
      this.log.warn({ fromId: rec.fromId, mtp: r.mtp }, 'no reply path for the response: the controller has no configured address on this MTP');
    else if (resp && reply) answered = await this.answer(mtp, rec, reply, resp);
    if (tracked && answered) this.coordination.requestAnswered(rec.toId, rec.fromId, msg.header.msgId);
  }

  /** A Msg from the agent a Record was addressed to, back to the controller that sent it. */
  private answer(mtp: Mtp, rec: UspRecord, dest: MtpDestination, msg: Msg): Promise<boolean> {
    return this.send(mtp, rec.toId, dest, noSessionRecord(rec.toId, rec.fromId, msg), msg);
  }

  private async recordError(mtp: Mtp, r: InboundRecord, err: unknown): Promise<void> {
    const decision = recordErrorDecision(r.bytes, err, {
      isOwnEndpointId: (eid) => this.agents.has(eid),
      returnPathKnown: r.replyTo !== null || r.mtp !== 'websocket',
    });
    if (decision.action === 'drop') return this.drop(r.mtp, `${(err as Error).message}; ${decision.reason}`);
    const controller = this.controllers.get(decision.toId);
    const dest = r.replyTo ?? (controller ? this.configuredDest(controller, r.mtp) : null);
    if (!controller || !dest) return this.drop(r.mtp, `${(err as Error).message}; no reply path to ${decision.toId}`);
    if (decision.action === 'disconnect') {
      await this.send(mtp, decision.fromId, dest, disconnectRecord(decision.fromId, decision.toId, decision.reason, decision.reasonCode));
      return;
    }
    this.log.info({ code: decision.code, fromId: decision.toId }, `bad USP Record answered with an Error: ${decision.message}`);
    const msg = errorMsg(decision.msgId, decision.code, decision.message);
    await this.send(mtp, decision.fromId, dest, noSessionRecord(decision.fromId, decision.toId, msg), msg);
  }

  private async onChannelOpen(c: MtpChannelOpen): Promise<void> {
    if (this.stopping) return;
    const mtp = this.mtps.find((m) => m.kind === c.mtp)!;
    if (c.agentEid && c.dest) {
      // A WebSocket: the agent's own (client) connection or a controller connected to its path.
      if (c.peerEid && !this.controllers.has(c.peerEid)) return;
      await this.send(mtp, c.agentEid, c.dest, connectRecord('websocket', c.agentEid, c.peerEid ?? ''));
      return;
    }
    await this.connectRecords(c.mtp, [...this.agents.all()]);
  }

  /** Each agent sends its own Connect Record to each controller reachable on a broker MTP (R-MTP.6). */
  private async connectRecords(kind: MtpKind, agents: string[]): Promise<void> {
    const mtp = this.mtps.find((m) => m.kind === kind);
    if (!mtp) return;
    let i = 0;
    for (const eid of agents) {
      for (const c of this.controllers.values()) {
        const dest = this.configuredDest(c, kind);
        if (!dest) continue;
        const rec =
          kind === 'mqtt'
            ? connectRecord('mqtt', eid, c.endpointId, { subscribedTopic: this.agentAddresses.mqtt ?? '', version: 'V5' })
            : connectRecord('stomp', eid, c.endpointId, { subscribedDestination: this.agentAddresses.stomp ?? '' });
        await this.send(mtp, eid, dest, rec);
      }
      // Let requests in between when thousands of agents announce themselves.
      if (++i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
  }
}
