/**
 * The USP endpoint layer: Records in from every MTP, routed by to_id to the device's agent,
 * trust checked (configured controllers only), the Msg handed to the handlers, the response
 * sent back on the request's reply path (else the controller's configured address); Connect
 * Records on every new channel (R-MTP.6) and Disconnect Records on shutdown. MTPs stay thin:
 * they move bytes; this module is the only one that decodes a Record.
 */
import { EventEmitter } from 'node:events';
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

export interface EndpointEvents {
  /** A Record was dropped (unknown controller, wrong to_id, undecodable): for metrics. */
  dropped: [{ mtp: MtpKind; reason: string }];
}

export class UspEndpoint extends EventEmitter<EndpointEvents> {
  private readonly controllers = new Map<string, ControllerConfig>();
  private readonly inFlight = new Map<string, number>();
  readonly stats: EndpointStats = { recordsIn: 0, recordsOut: 0, dropped: 0 };
  private stopping = false;
  /**
   * Several instances (src/cluster/): an agent registered on another instance is looked up in
   * the shared store before its Record is dropped as "not one of our agents".
   */
  resolveAgent: ((eid: string) => Promise<boolean>) | null = null;
  /**
   * Several instances: requests in progress are recorded so that, if this instance dies before
   * answering, another answers them with an Error (end() only once the response was sent).
   */
  tracker: { begin(agentEid: string, controllerEid: string, msgId: string): void; end(agentEid: string, controllerEid: string, msgId: string): void } | null =
    null;

  constructor(
    readonly agents: AgentDirectory,
    controllers: readonly ControllerConfig[],
    private readonly mtps: readonly Mtp[],
    private readonly context: Omit<HandlerContext, 'agentEid' | 'controllerEid' | 'role'>,
    private readonly log: Logger,
    private readonly maxInFlightPerController = 256,
  ) {
    super();
    for (const c of controllers) this.controllers.set(c.endpointId, c);
    for (const m of mtps) {
      m.on('record', (r) => void this.onRecord(r).catch((e: unknown) => this.log.error({ err: e, mtp: r.mtp }, 'USP record handling failed')));
      m.on('channelOpen', (c) => void this.onChannelOpen(c).catch((e: unknown) => this.log.error({ err: e }, 'sending Connect Records failed')));
      // MTP warnings are logged by the MTPs themselves (their log option); nothing to add here.
    }
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
          await m.send(eid, dest, encodeRecord(disconnectRecord(eid, c.endpointId, 'agent shutting down', 0))).catch(() => undefined);
        }
      }
    }
    await Promise.all(this.mtps.map((m) => m.stop()));
  }

  /**
   * Several instances (src/cluster/): a Record for a controller that no MTP of this instance
   * reaches (a WebSocket controller connected to another instance) is handed to the others.
   */
  relay: ((agentEid: string, controllerEid: string, bytes: Uint8Array) => void) | null = null;

  /** Agent-initiated message (Notify) to a controller over its first reachable MTP. */
  async sendToController(agentEid: string, controllerEid: string, msg: Msg): Promise<boolean> {
    const c = this.controllers.get(controllerEid);
    if (!c) return false;
    const bytes = encodeRecord(noSessionRecord(agentEid, controllerEid, msg));
    if (await this.sendRecordToController(agentEid, c, bytes)) return true;
    if (!this.relay) return false;
    this.relay(agentEid, controllerEid, bytes);
    return true;
  }

  /** A Record relayed by another instance: sent if this instance reaches the controller, else dropped. */
  async deliverRelayed(agentEid: string, controllerEid: string, bytes: Uint8Array): Promise<boolean> {
    const c = this.controllers.get(controllerEid);
    return c ? this.sendRecordToController(agentEid, c, bytes, true) : false;
  }

  private async sendRecordToController(agentEid: string, c: ControllerConfig, bytes: Uint8Array, webSocketOnly = false): Promise<boolean> {
    const controllerEid = c.endpointId;
    for (const m of this.mtps) {
      if (webSocketOnly && m.kind !== 'websocket') continue;
      const dest: MtpDestination | null =
        m.kind === 'websocket' ? { mtp: 'websocket', address: `controller:${controllerEid}` } : this.configuredDest(c, m.kind);
      if (!dest) continue;
      try {
        await m.send(agentEid, dest, bytes);
        this.stats.recordsOut++;
        return true;
      } catch {
        // try the next MTP
      }
    }
    return false;
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

  private async send(mtp: Mtp, from: string, dest: MtpDestination, rec: UspRecord): Promise<boolean> {
    try {
      await mtp.send(from, dest, encodeRecord(rec));
      this.stats.recordsOut++;
      return true;
    } catch (e) {
      this.log.warn({ mtp: mtp.kind, dest: dest.address, err: (e as Error).message }, 'USP Record could not be sent');
      return false;
    }
  }

  private async onRecord(r: InboundRecord): Promise<void> {
    this.stats.recordsIn++;
    const mtp = this.mtps.find((m) => m.kind === r.mtp)!;
    let rec: UspRecord;
    try {
      rec = decodeRecord(r.bytes);
    } catch (e) {
      return this.recordError(mtp, r, e);
    }
    if (!this.agents.has(rec.toId)) {
      if (!this.resolveAgent || !(await this.resolveAgent(rec.toId).catch(() => false)))
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
    let msg: Msg;
    try {
      msg = decodeMsg(rec.recordType.payload);
    } catch (e) {
      return this.recordError(mtp, r, e);
    }
    if (msg.body.msgBody === undefined && msg.header.msgType === 'ERROR') {
      if (reply)
        await this.send(
          mtp,
          rec.toId,
          reply,
          noSessionRecord(rec.toId, rec.fromId, errorMsg(msg.header.msgId, 7004, 'the Msg has no body (msg_type missing or 0)')),
        );
      return;
    }
    const busy = this.inFlight.get(rec.fromId) ?? 0;
    if (busy >= this.maxInFlightPerController && msg.body.msgBody === 'request') {
      // Flood guard: this controller's excess requests are refused; others are unaffected.
      if (reply)
        await this.send(
          mtp,
          rec.toId,
          reply,
          noSessionRecord(
            rec.toId,
            rec.fromId,
            errorMsg(msg.header.msgId, 7005, `too many requests in progress from ${rec.fromId} (limit ${this.maxInFlightPerController})`),
          ),
        );
      return;
    }
    this.inFlight.set(rec.fromId, busy + 1);
    const tracked = this.tracker !== null && msg.body.msgBody === 'request';
    if (tracked) this.tracker!.begin(rec.toId, rec.fromId, msg.header.msgId);
    let resp: Msg | null;
    try {
      resp = await handle({ ...this.context, agentEid: rec.toId, controllerEid: rec.fromId, role: controller.role }, msg);
    } finally {
      const n = (this.inFlight.get(rec.fromId) ?? 1) - 1;
      if (n <= 0) this.inFlight.delete(rec.fromId);
      else this.inFlight.set(rec.fromId, n);
    }
    let answered = true;
    if (resp && !reply)
      this.log.warn({ fromId: rec.fromId, mtp: r.mtp }, 'no reply path for the response: the controller has no configured address on this MTP');
    else if (resp && reply) answered = await this.send(mtp, rec.toId, reply, noSessionRecord(rec.toId, rec.fromId, resp));
    if (tracked && answered) this.tracker!.end(rec.toId, rec.fromId, msg.header.msgId);
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
    await this.send(mtp, decision.fromId, dest, noSessionRecord(decision.fromId, decision.toId, errorMsg(decision.msgId, decision.code, decision.message)));
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
    const status = mtp.status();
    let i = 0;
    for (const eid of agents) {
      for (const c of this.controllers.values()) {
        const dest = this.configuredDest(c, kind);
        if (!dest) continue;
        const rec =
          kind === 'mqtt'
            ? connectRecord('mqtt', eid, c.endpointId, { subscribedTopic: this.agentAddress(status, kind), version: 'V5' })
            : connectRecord('stomp', eid, c.endpointId, { subscribedDestination: this.agentAddress(status, kind) });
        await this.send(mtp, eid, dest, rec);
      }
      // Let requests in between when thousands of agents announce themselves.
      if (++i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
  }

  private agentTopics: Partial<Record<MtpKind, string>> = {};
  /** The address our agents listen on, for the Connect Record. */
  setAgentAddress(kind: MtpKind, address: string): void {
    this.agentTopics[kind] = address;
  }
  private agentAddress(_status: unknown, kind: MtpKind): string {
    return this.agentTopics[kind] ?? '';
  }
}
