/**
 * The USP endpoint layer: Records in from every MTP, routed by to_id to the device's agent,
 * the speaker identified (ControllerIdentities: a configured, authenticated controller, or an
 * untrusted one), the request admitted against its controller's limits, the Msg handed to the
 * handlers, the response sent to the controller's configured address (else the request's reply
 * path); Connect Records on every new channel (R-MTP.6) and Disconnect Records on shutdown.
 * MTPs stay thin: they move bytes; this module is the only one that decodes a Record.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { ControllerConfig } from '../../app/config.js';
import { infoLine, type Logger } from '../../app/log.js';
import { handle, type HandlerContext } from '../handlers/index.js';
import type { AllFieldsOf } from '../handlers/context.js';
import {
  connectRecord,
  decodeMsg,
  decodeRecord,
  disconnectRecord,
  encodeNoSessionRecord,
  encodeRecord,
  errorMsg,
  noSessionRecord,
  recordErrorDecision,
  type Msg,
  type UspRecord,
} from '../codec/record.js';
import type { InboundRecord, Mtp, MtpChannelOpen, MtpDestination, MtpKind } from '../mtp/types.js';
import { type Coordination, type RelayedRecord, SingleInstance } from './coordination.js';
import { ControllerIdentities, type UntrustedReason } from './controller-identity.js';
import { LogLimiter, RequestLimits } from './limits.js';
import { type CallScope, endRequest } from '../request-scope.js';
import { DEFAULT_LATE_ANSWER_LIMITS, LateAnswers, type LateAnswerLimits } from './late-answers.js';

/** Across instances, one Connect Record per agent, controller and MTP within this window (their reconnects after a broker restart fall in it). */
export const CONNECT_RECORD_ONCE_MS = 30_000;
import { type RequestLogFields, requestLogFields } from './request-log.js';

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
  /** A Record was dropped (wrong to_id, identity contradicted, failed authentication, undecodable). */
  dropped: [{ mtp: MtpKind; reason: string }];
  /** A request from an untrusted controller (not configured, or not authenticated) was answered as such. */
  untrusted: [{ mtp: MtpKind; fromId: string; reason: UntrustedReason }];
  /** A request was answered (the translation trace, src/ops/trace.ts); `scope` is the request scope its work ran in. */
  request: [{ scope: object; fromId: string; toId: string; msg: Msg; resp: Msg; ms: number; fields: RequestLogFields }];
}

export interface UspEndpointOptions {
  agents: AgentDirectory;
  controllers: readonly ControllerConfig[];
  mtps: readonly Mtp[];
  context: Omit<HandlerContext, 'agentEid' | 'controllerEid' | 'trusted' | 'untrustedReason'>;
  log: Logger;
  /** Who is speaking (default: the controllers as configured, without requireAuth or allowUntrusted). */
  identities?: ControllerIdentities;
  /** Requests one controller may have in progress; beyond, Error 7005 (default 256). */
  maxInFlightPerController?: number;
  /** Sustained requests per second per controller; beyond, Error 7002 (default 100). */
  requestRatePerController?: number;
  /** Requests a controller may send at once before the rate applies (default 200). */
  requestBurstPerController?: number;
  /** Clock of the rate limit (tests). */
  now?: () => number;
  /** Broker MTPs: the topic/destination the agents listen on, named in their Connect Records (R-MTP.6). */
  agentAddresses?: Partial<Record<MtpKind, string>>;
  /** Several instances sharing one store (default: this one alone). */
  coordination?: Coordination;
  /** Bounds of the answers kept for controllers that went away before they were answered. */
  lateAnswers?: LateAnswerLimits;
}

/** The label of an outbound Record: the Msg type, else the Record type. */
const typeOf = (rec: UspRecord, msg: Msg | null): string => msg?.header.msgType ?? rec.recordType.kind;

/** Every untrusted peer shares one set of limits: their Endpoint IDs are theirs to invent. */
const UNTRUSTED_KEY = '\u0000untrusted';

/** Requests that change nothing: when their answer cannot be delivered any more, their CWMP work stops. */
const READ_ONLY_REQUESTS: ReadonlySet<string> = new Set(['get', 'getInstances', 'getSupportedDm', 'getSupportedProtocol']);

/**
 * The scope of one served request (src/usp/request-scope.ts), handed to the handlers in their
 * context: a signal only when something can abort it (a read-only request over a WebSocket).
 */
class ServedRequest implements CallScope {
  ends: Array<() => void> | undefined = [];
  readonly signal: AbortSignal | undefined;
  constructor(abort: AbortController | null) {
    this.signal = abort?.signal;
  }
}

/** Who sent a Record, as the endpoint hands it on. */
interface Speaker {
  trusted: boolean;
  controller: ControllerConfig | undefined;
  reason?: UntrustedReason;
}

export class UspEndpoint extends EventEmitter<EndpointEvents> {
  readonly agents: AgentDirectory;
  private readonly controllers = new Map<string, ControllerConfig>();
  private readonly mtps: readonly Mtp[];
  private readonly context: UspEndpointOptions['context'];
  private readonly log: Logger;
  private readonly identities: ControllerIdentities;
  private readonly limits: RequestLimits;
  private readonly agentAddresses: Partial<Record<MtpKind, string>>;
  private readonly coordination: Coordination;
  /** Read-only requests in progress per WebSocket connection: aborted when it closes. */
  private readonly pendingByConn = new Map<string, Set<AbortController>>();
  /** WebSocket connections closed lately (ids are never reused): a request read after its connection closed starts cancelled. */
  private readonly closedConns = new Set<string>();
  /** Connections already logged for a Record off their identity (once per connection). */
  private readonly warnedConns = new Set<string>();
  private readonly logLimiter: LogLimiter;
  readonly stats: EndpointStats = { recordsIn: 0, recordsOut: 0, dropped: 0 };
  private stopping = false;

  /** Answers owed to controllers that went away while they were served (sent when they come back). */
  readonly lateAnswers: LateAnswers;

  constructor(opts: UspEndpointOptions) {
    super();
    this.lateAnswers = new LateAnswers(opts.lateAnswers ?? DEFAULT_LATE_ANSWER_LIMITS, opts.now);
    this.agents = opts.agents;
    this.mtps = opts.mtps;
    this.context = opts.context;
    this.log = opts.log;
    this.identities = opts.identities ?? new ControllerIdentities(opts.controllers, { requireWsAuth: false, allowUntrusted: false });
    this.limits = new RequestLimits({
      maxInFlight: opts.maxInFlightPerController ?? 256,
      ratePerS: opts.requestRatePerController ?? 100,
      burst: opts.requestBurstPerController ?? 200,
      now: opts.now,
    });
    this.logLimiter = new LogLimiter(60_000, 1024, opts.now);
    this.agentAddresses = opts.agentAddresses ?? {};
    this.coordination = opts.coordination ?? new SingleInstance();
    for (const c of opts.controllers) this.controllers.set(c.endpointId, c);
    for (const m of this.mtps) {
      m.on('record', (r) => void this.receive(r).catch((e: unknown) => this.log.error({ err: e, mtp: r.mtp }, 'USP record handling failed')));
      m.on('channelOpen', (c) => void this.onChannelOpen(c).catch((e: unknown) => this.log.error({ err: e }, 'sending Connect Records failed')));
      m.on('channelClose', (c) => {
        if (c.dest) this.connectionGone(c.dest.address);
      });
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
    for (const address of [...this.pendingByConn.keys()]) this.connectionGone(address);
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
  private transmit(mtp: Mtp, from: string, dest: MtpDestination, bytes: Uint8Array, msgType: string): Promise<void> {
    const started = performance.now();
    return mtp.send(from, dest, bytes).then(() => {
      this.stats.recordsOut++;
      this.emit('record', { mtp: mtp.kind, direction: 'out', msgType, ms: performance.now() - started });
    });
  }

  controller(eid: string): ControllerConfig | undefined {
    return this.controllers.get(eid);
  }

  private configuredDest(c: ControllerConfig, kind: MtpKind): MtpDestination | null {
    if (kind === 'mqtt' && c.mqtt.topic) return { mtp: 'mqtt', address: c.mqtt.topic };
    if (kind === 'stomp' && c.stomp.destination) return { mtp: 'stomp', address: c.stomp.destination };
    return null;
  }

  private drop(mtp: MtpKind, reason: string, detail: Record<string, unknown> = {}, quiet = false): void {
    this.stats.dropped++;
    if (!quiet) this.log.info({ mtp, ...detail }, `USP Record dropped: ${reason}`);
    this.emit('dropped', { mtp, reason });
  }

  /**
   * A Record that contradicts its channel's identity or failed authentication: dropped, logged
   * once per WebSocket connection, else at most once a minute per from_id (a peer cannot flood the log).
   */
  private refuse(r: InboundRecord, rec: UspRecord, reason: string): void {
    const conn = r.mtp === 'websocket' && r.replyTo ? r.replyTo.address : null;
    let log = false;
    let suppressed = 0;
    if (conn !== null) {
      log = !this.warnedConns.has(conn);
      if (log && this.warnedConns.size < 100_000) this.warnedConns.add(conn);
    } else {
      const a = this.logLimiter.allow(`refused|${r.mtp}|${rec.fromId}`);
      if (a.log) {
        log = true;
        suppressed = a.suppressed;
      }
    }
    if (log)
      this.log.warn(
        { mtp: r.mtp, fromId: rec.fromId, toId: rec.toId, peer: r.peerEid, channel: r.channel ?? conn, ...(suppressed ? { suppressedLines: suppressed } : {}) },
        `USP Record dropped: ${reason}${conn !== null ? ' (logged once per connection)' : ''}`,
      );
    this.drop(r.mtp, reason, {}, true);
  }

  /** A WebSocket connection closed: the answers of its read-only requests can no longer be delivered (R-WS.4: no other session gets them). */
  private connectionGone(address: string): void {
    this.warnedConns.delete(address);
    this.closedConns.add(address);
    if (this.closedConns.size > 4096) this.closedConns.delete(this.closedConns.values().next().value as string);
    const pending = this.pendingByConn.get(address);
    if (!pending) return;
    this.pendingByConn.delete(address);
    for (const ac of pending) ac.abort(new Error('the controller connection closed'));
  }

  private send(mtp: Mtp, from: string, dest: MtpDestination, rec: UspRecord, msg: Msg | null = null): Promise<boolean> {
    return this.sendBytes(mtp, from, dest, () => encodeRecord(rec), typeOf(rec, msg));
  }

  private sendBytes(mtp: Mtp, from: string, dest: MtpDestination, encode: () => Uint8Array, msgType: string): Promise<boolean> {
    const failed = (e: unknown): boolean => {
      this.log.warn({ mtp: mtp.kind, dest: dest.address, err: (e as Error).message }, 'USP Record could not be sent');
      return false;
    };
    // Promise chains rather than async functions: a request's answer takes two promises fewer.
    try {
      return this.transmit(mtp, from, dest, encode(), msgType).then(() => true, failed);
    } catch (e) {
      return Promise.resolve(failed(e));
    }
  }

  /** Every Record in: handled, then counted once with its type and how long it took (a request: until answered). */
  private receive(r: InboundRecord): Promise<void> {
    const started = performance.now();
    const label = { msgType: 'undecodable' };
    const counted = (): void => {
      this.emit('record', { mtp: r.mtp, direction: 'in', msgType: label.msgType, ms: performance.now() - started });
    };
    return this.onRecord(r, label).then(counted, (e: unknown) => {
      counted();
      throw e;
    });
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
    // A channel that proved or stated its peer (TLS certificate, secret, bound topic, ?eid=) speaks only for that peer.
    const trust = this.identities.trustOf(rec.fromId, r);
    if (trust.kind === 'refused') return this.refuse(r, rec, trust.reason);
    const controller = trust.controller;
    // A configured controller is always answered at its configured address: a Record cannot divert
    // the answer (or a Notify's NotifyResp) elsewhere with its own Response Topic / reply-to-dest.
    const reply: MtpDestination | null = (controller ? this.configuredDest(controller, r.mtp) : null) ?? r.replyTo;
    if (trust.kind === 'untrusted') return this.onUntrusted(mtp, r, rec, msg, reply, { trusted: false, controller, reason: trust.reason });
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
    return this.serve(mtp, r, rec, msg, reply, { trusted: true, controller });
  }

  /**
   * A Record from an untrusted controller (TR-369 "Roles": the Untrusted Role): its requests go to
   * the handlers marked untrusted and are answered (7006 unless the role grants something), the log
   * names its from_id at most once a minute; anything else from it is dropped.
   */
  private async onUntrusted(mtp: Mtp, r: InboundRecord, rec: UspRecord, msg: Msg | null, reply: MtpDestination | null, who: Speaker): Promise<void> {
    const reason = who.reason ?? 'not configured';
    const a = this.logLimiter.allow(`untrusted|${rec.fromId}`);
    if (a.log)
      this.log.warn(
        { mtp: r.mtp, fromId: rec.fromId, toId: rec.toId, reason, ...(a.suppressed ? { suppressedLines: a.suppressed } : {}) },
        `USP Record from an untrusted controller (${reason})`,
      );
    if (rec.recordType.kind !== 'noSessionContext' || !msg || msg.body.msgBody !== 'request')
      return this.drop(r.mtp, `${reason} controller: only its requests are answered`, {}, true);
    if (!reply) return this.drop(r.mtp, `${reason} controller without a reply address`, {}, true);
    this.emit('untrusted', { mtp: r.mtp, fromId: rec.fromId, reason });
    return this.serve(mtp, r, rec, msg, reply, who);
  }

  /** One Msg to the handlers within its controller's limits; a request's answer goes back to `reply`. */
  private async serve(mtp: Mtp, r: InboundRecord, rec: UspRecord, msg: Msg, reply: MtpDestination | null, who: Speaker): Promise<void> {
    if (msg.body.msgBody === undefined && msg.header.msgType === 'ERROR') {
      if (reply) await this.answer(mtp, rec, reply, errorMsg(msg.header.msgId, 7004, 'the Msg has no body (msg_type missing or 0)'));
      return;
    }
    const request = msg.body.msgBody === 'request' ? msg.body.request : undefined;
    let done: (() => void) | null = null;
    if (msg.body.msgBody === 'request') {
      // Flood guard: this controller's excess requests are refused; others are unaffected.
      const admission = this.limits.admit(who.trusted ? rec.fromId : UNTRUSTED_KEY, who.trusted ? rec.fromId : 'untrusted controllers');
      if (!admission.ok) {
        if (reply) await this.answer(mtp, rec, reply, errorMsg(msg.header.msgId, admission.code, admission.message));
        return;
      }
      done = admission.done;
    }
    // Only trusted requests are tracked across instances: an untrusted peer must not cost store writes.
    let tracked = done !== null && who.trusted;
    if (tracked) this.coordination.requestStarted(rec.toId, rec.fromId, msg.header.msgId);
    // A read-only request over a WebSocket connection stops its CWMP work when the connection goes.
    const conn = request?.reqType && READ_ONLY_REQUESTS.has(request.reqType) && r.mtp === 'websocket' && r.replyTo ? r.replyTo.address : null;
    // Only where the connection can go: over a broker the controller has no connection of its own here.
    let abort: AbortController | null = null;
    if (conn !== null) {
      abort = new AbortController();
      if (this.closedConns.has(conn)) abort.abort(new Error('the controller connection closed'));
      else {
        let set = this.pendingByConn.get(conn);
        if (!set) this.pendingByConn.set(conn, (set = new Set()));
        set.add(abort);
      }
    }
    const scope = new ServedRequest(abort);
    // Every field written out (a spread of the shared context cost more than the Get's handler).
    const c = this.context;
    const ctx: AllFieldsOf<HandlerContext> = {
      agentEid: rec.toId,
      controllerEid: rec.fromId,
      trusted: who.trusted,
      untrustedReason: who.reason,
      router: c.router,
      localAgent: c.localAgent,
      operationComplete: c.operationComplete,
      notifyResp: c.notifyResp,
      versions: c.versions,
      limits: c.limits,
      scope,
    };
    let resp: Msg | null;
    const started = performance.now();
    try {
      resp = await handle(ctx, msg);
    } finally {
      endRequest(scope, (e) => this.log.warn({ err: e }, 'request end hook failed'));
      done?.();
      if (conn !== null) {
        const set = this.pendingByConn.get(conn);
        set?.delete(abort!);
        if (set?.size === 0) this.pendingByConn.delete(conn);
      }
    }
    if (resp && request) {
      // One summary for the info line and the translation trace.
      const ms = performance.now() - started;
      const fields = requestLogFields(rec.fromId, rec.toId, msg, resp, ms);
      // The same line as log.info(fields, ...), built without pino's walk over the fields (app/log.ts).
      if (this.log.isLevelEnabled('info')) infoLine(this.log, fields, 'USP request');
      this.emit('request', { scope, fromId: rec.fromId, toId: rec.toId, msg, resp, ms, fields });
    }
    let answered = true;
    if (resp && !reply)
      this.log.warn({ fromId: rec.fromId, mtp: r.mtp }, 'no reply path for the response: the controller has no configured address on this MTP');
    else if (resp && reply) {
      // Released before the answer leaves, so that a takeover never answers it too (docs/scaling.md).
      const ours = tracked ? this.coordination.requestAnswered(rec.toId, rec.fromId, msg.header.msgId) : true;
      tracked = false;
      if (ours !== true && !(await ours)) {
        this.log.warn({ fromId: rec.fromId, msgId: msg.header.msgId }, 'answer dropped: another instance took this request over and answered it');
        return;
      }
      answered = await this.answer(mtp, rec, reply, resp);
      // The controller went away meanwhile: the outcome of what it asked is kept for its return
      // (a read-only request whose work was stopped because it left owes nothing).
      if (!answered && who.trusted && !abort?.signal.aborted) {
        const kept = this.lateAnswers.keep({
          agentEid: rec.toId,
          controllerEid: rec.fromId,
          msgId: msg.header.msgId,
          msgType: resp.header.msgType,
          bytes: encodeNoSessionRecord(rec.toId, rec.fromId, resp),
        });
        if (kept) this.log.info({ agentEid: rec.toId, controllerEid: rec.fromId, msgId: msg.header.msgId }, 'answer kept until the controller reconnects');
      }
    }
    if (tracked) void this.coordination.requestAnswered(rec.toId, rec.fromId, msg.header.msgId);
  }

  /** A Msg from the agent a Record was addressed to, back to the controller that sent it. */
  private answer(mtp: Mtp, rec: UspRecord, dest: MtpDestination, msg: Msg): Promise<boolean> {
    return this.sendBytes(mtp, rec.toId, dest, () => encodeNoSessionRecord(rec.toId, rec.fromId, msg), msg.header.msgType);
  }

  private async recordError(mtp: Mtp, r: InboundRecord, err: unknown): Promise<void> {
    const decision = recordErrorDecision(r.bytes, err, {
      isOwnEndpointId: (eid) => this.agents.has(eid),
      returnPathKnown: r.replyTo !== null || r.mtp !== 'websocket',
    });
    if (decision.action === 'drop') return this.drop(r.mtp, `${(err as Error).message}; ${decision.reason}`);
    const controller = this.controllers.get(decision.toId);
    const dest = controller ? (this.configuredDest(controller, r.mtp) ?? r.replyTo) : null;
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
      if (c.peerEid) await this.deliverLate(c.agentEid, c.peerEid, (bytes, type) => this.transmit(mtp, c.agentEid!, c.dest!, bytes, type));
      return;
    }
    await this.connectRecords(c.mtp, [...this.agents.all()]);
    // A broker connection is back: answers owed to controllers reachable on it go out.
    for (const ctl of this.controllers.values()) {
      const dest = this.configuredDest(ctl, c.mtp);
      if (!dest) continue;
      for (const agentEid of this.lateAnswers.agentsOwing(ctl.endpointId))
        await this.deliverLate(agentEid, ctl.endpointId, (bytes, type) => this.transmit(mtp, agentEid, dest, bytes, type));
    }
  }

  /** Sends the answers an agent owes a controller that is back; one that fails again is kept again. */
  private async deliverLate(agentEid: string, controllerEid: string, send: (bytes: Uint8Array, msgType: string) => Promise<void>): Promise<void> {
    this.lateAnswers.sweep();
    for (const a of this.lateAnswers.take(agentEid, controllerEid)) {
      try {
        await send(a.bytes, a.msgType);
      } catch {
        this.lateAnswers.keep(a);
      }
    }
  }

  /**
   * Each agent sends its own Connect Record to each controller reachable on a broker MTP (R-MTP.6).
   * Several instances each open a broker connection carrying every agent: the first to claim an
   * agent's Connect Record sends it, so a controller gets one per agent, not one per instance.
   */
  private async connectRecords(kind: MtpKind, agents: string[]): Promise<void> {
    const mtp = this.mtps.find((m) => m.kind === kind);
    if (!mtp) return;
    let i = 0;
    for (const eid of agents) {
      for (const c of this.controllers.values()) {
        const dest = this.configuredDest(c, kind);
        if (!dest) continue;
        // A failed claim still sends: a second Connect Record is harmless, a missing one is not.
        const mine = await this.coordination.claimOnce(`connect|${kind}|${eid}|${c.endpointId}`, CONNECT_RECORD_ONCE_MS).catch(() => true);
        if (!mine) continue;
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
