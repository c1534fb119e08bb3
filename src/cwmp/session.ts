/**
 * The CWMP session engine (TR-069 3.7): an explicit state machine per session and a queue
 * of ACS RPCs per device.
 *
 *   Inform -> InformResponse -> CPE requests (TransferComplete, ...) -> empty POST
 *          -> queued ACS RPCs, one per HTTP response, each answer read from the next POST -> 204
 *
 * The public API for the rest of the proxy is `enqueue(deviceKey, rpc, {deadlineMs})`: it
 * resolves with the CPE's response or its cwmp Fault (faults from a peer are data), and rejects
 * with an RpcError when the RPC cannot be delivered (device unreachable at the deadline, session
 * timed out with the RPC in flight, shutdown). A device not in session is woken with one
 * connection request however many RPCs are queued. Queued RPCs are persisted in the store and
 * survive a restart; their outcome after a restart is reported through the 'rpcResult' event.
 *
 * The engine does no HTTP: the ACS front (acs-server.ts) decodes and authenticates, then hands
 * over decoded envelopes and writes back the CwmpReply.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../app/log.js';
import type { DeviceRecord, QueuedRpc, Store } from '../store/types.js';
import { encodeSoap } from './soap.js';
import { deviceKeyOf, endpointIdOf, rootModelOf } from './device-id.js';
import {
  CwmpFault,
  RESPONSE_OF,
  type AcsRequest,
  type AcsResponse,
  type CpeResponse,
  type CwmpVersion,
  type Fault,
  type Inform,
  type ParameterValueStruct,
  type SoapEnvelope,
  type AutonomousTransferComplete,
  type TransferComplete,
} from './types.js';

export type RpcOutcome = { kind: 'response'; response: CpeResponse } | { kind: 'fault'; fault: Fault };

export type RpcErrorReason = 'unreachable' | 'session-timeout' | 'session-ended' | 'unknown-device' | 'cancelled' | 'shutdown';

/** Why an RPC could not be carried out (as opposed to a cwmp Fault, which is an outcome). */
export class RpcError extends Error {
  constructor(
    readonly reason: RpcErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

export interface ConnReqOutcome {
  ok: boolean;
  reason?: string;
  detail?: string;
}

/** What the engine needs from connreq.ts (kept narrow so tests can stub it). */
export interface ConnectionRequestPort {
  request(deviceKey: string, url: string, creds: { username: string; password: string } | null): Promise<ConnReqOutcome>;
  cancel(deviceKey: string): void;
}

export interface SessionEngineOptions {
  sessionTimeoutMs: number;
  rpcDeadlineMs: number;
  holdRequests: boolean;
  setConnectionRequestCredentials: boolean;
  maxSessions: number;
  endpointIdScheme: 'os' | 'ops';
  /** See EnqueueOptions.linger (ms; 0 disables). */
  lingerMs?: number;
}

/** What the HTTP front writes back. */
export interface CwmpReply {
  status: number;
  body: string;
  contentType?: string;
  /** Set-Cookie value for a new session. */
  cookie?: string;
  headers?: Record<string, string>;
  /** The session ended with this reply (the front may forget the connection binding). */
  ended?: boolean;
}

export interface IncomingPost {
  /** null for an empty POST. */
  envelope: SoapEnvelope | null;
  /** Session id from the cookie, if the CPE sent one. */
  sessionId: string | null;
  /** The TCP connection (CPEs that drop the cookie but keep the connection still match). */
  connection: object;
}

export interface EnqueueOptions {
  /** Fail as "device unreachable" if not sent within this many ms (default rpcDeadlineMs). */
  deadlineMs?: number;
  /**
   * The caller may follow up with more RPCs once this one is answered (a USP request that needs
   * GetParameterNames, then GetParameterValues): when the queue is empty after its answer, the
   * session waits up to `lingerMs` for the next RPC instead of ending with 204 — so one USP
   * request takes one connection request and one session.
   */
  linger?: boolean;
}

/** Events: 'inform' {device, inform, sessionId}, 'transferComplete' {device, message},
 *  'rpcResult' {id, deviceKey, rpc, outcome?, error?}, 'sessionEnd' {deviceKey, reason}. */
export interface SessionEngineEvents {
  inform: [{ device: DeviceRecord; inform: Inform; sessionId: string }];
  transferComplete: [{ device: DeviceRecord; message: TransferComplete | AutonomousTransferComplete }];
  rpcResult: [{ id: string; deviceKey: string; rpc: AcsRequest; outcome?: RpcOutcome; error?: RpcError }];
  sessionEnd: [{ sessionId: string; deviceKey: string; reason: string; rpcs: number }];
  /** An RPC a caller of enqueue() waits for was queued, and settled (ms since it was queued). */
  rpcQueued: [{ deviceKey: string; method: AcsRequest['method'] }];
  rpcSettled: [{ deviceKey: string; method: AcsRequest['method']; outcome?: RpcOutcome; error?: RpcError; ms: number }];
}

interface Pending {
  q: QueuedRpc;
  persisted: boolean;
  resolve?: (o: RpcOutcome) => void;
  reject?: (e: RpcError) => void;
  /** Internal follow-up run with the outcome (e.g. storing connection request credentials). */
  onOutcome?: (o: RpcOutcome) => Promise<void> | void;
  deadlineTimer?: NodeJS.Timeout;
  settled: boolean;
  linger?: boolean;
}

interface DeviceQueue {
  items: Pending[];
  lastWake?: ConnReqOutcome;
}

type SessionState = 'cpe-turn' | 'awaiting-response' | 'ended';

/** What a reply needs of a session: its CWMP version and id (the cwmp:ID fallback). */
export interface SessionRef {
  version: CwmpVersion;
  id: string;
}

class Session {
  state: SessionState = 'cpe-turn';
  inflight: Pending | null = null;
  timer: NodeJS.Timeout | null = null;
  rpcs = 0;
  private logger: Logger | null = null;

  constructor(
    readonly id: string,
    readonly deviceKey: string,
    readonly device: DeviceRecord,
    readonly version: CwmpVersion,
    public connection: object | null,
    private readonly parentLog: Logger,
  ) {}

  /** Per-device child logger, made on first use: most sessions log nothing. */
  get log(): Logger {
    return (this.logger ??= this.parentLog.child({ endpointId: this.device.endpointId }));
  }
}

export const ACS_METHODS = ['Inform', 'GetRPCMethods', 'TransferComplete', 'AutonomousTransferComplete'];

export class SessionEngine extends EventEmitter<SessionEngineEvents> {
  private readonly sessions = new Map<string, Session>();
  private readonly byDevice = new Map<string, Session>();
  private readonly byConnection = new WeakMap<object, Session>();
  private readonly queues = new Map<string, DeviceQueue>();
  /** Sessions lingering for a follow-up RPC, by device. */
  protected readonly workWaiters = new Map<string, () => void>();
  /** Learned xsi:types per device model; write-through to the store only on change. */
  private readonly typeCache = new LRUCache<string, Map<string, string>>({ max: 500 });
  protected closed = false;
  /** True when session state is shared between instances (src/cluster/): see the ACS front's auth. */
  readonly sharedSessions: boolean = false;

  constructor(
    protected readonly store: Store,
    protected readonly connReq: ConnectionRequestPort,
    protected readonly opts: SessionEngineOptions,
    protected readonly log: Logger,
  ) {
    super();
  }

  /** Loads RPCs queued before a restart and wakes their devices. */
  async restoreQueue(): Promise<number> {
    const all = await this.store.listAllQueuedRpcs();
    const now = Date.now();
    for (const q of all) {
      const p: Pending = { q, persisted: true, settled: false };
      if (q.deadline <= now) {
        await this.store.removeQueuedRpc(q.id);
        this.settle(p, undefined, new RpcError('unreachable', `device ${q.deviceKey} unreachable: deadline passed while the proxy was down`));
        continue;
      }
      this.queueOf(q.deviceKey).items.push(p);
      this.armDeadline(p);
    }
    for (const key of this.queues.keys()) void this.wake(key);
    return all.length;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  isInSession(deviceKey: string): boolean {
    return this.byDevice.has(deviceKey);
  }

  /** The session a POST belongs to (by cookie, else by TCP connection), if any. */
  findSession(sessionId: string | null, connection: object): string | null | Promise<string | null> {
    const s = (sessionId && this.sessions.get(sessionId)) || this.byConnection.get(connection);
    return s && s.state !== 'ended' ? s.id : null;
  }

  /** For the admin API: in session, and RPCs waiting (several instances: asked of Redis). */
  async deviceState(deviceKey: string): Promise<{ inSession: boolean; queuedRpcs: number }> {
    return { inSession: this.isInSession(deviceKey), queuedRpcs: this.queuedCount(deviceKey) };
  }

  queuedCount(deviceKey: string): number {
    return this.queues.get(deviceKey)?.items.length ?? 0;
  }

  /**
   * Queues an ACS RPC for a device and resolves with its response or cwmp Fault.
   * Rejects with RpcError: 'unknown-device', 'unreachable' (no session before the deadline),
   * 'session-timeout' (sent, but the CPE never answered), 'cancelled', 'shutdown'.
   */
  async enqueue(deviceKey: string, rpc: AcsRequest, opts: EnqueueOptions = {}): Promise<RpcOutcome> {
    if (this.closed) throw new RpcError('shutdown', 'the proxy is shutting down');
    const device = await this.store.getDevice(deviceKey);
    if (!device) throw new RpcError('unknown-device', `no registered device ${deviceKey}`);
    const deadlineMs = opts.deadlineMs ?? this.opts.rpcDeadlineMs;
    const q: QueuedRpc = {
      id: randomUUID(),
      deviceKey,
      rpc,
      createdAt: new Date().toISOString(),
      deadline: Date.now() + deadlineMs,
    };
    await this.store.addQueuedRpc(q);
    this.emit('rpcQueued', { deviceKey, method: rpc.method });
    return new Promise<RpcOutcome>((resolve, reject) => {
      const p: Pending = { q, persisted: true, resolve, reject, settled: false, linger: opts.linger };
      this.queueOf(deviceKey).items.push(p);
      this.workWaiters.get(deviceKey)?.();
      this.armDeadline(p);
      if (!this.byDevice.has(deviceKey)) void this.wake(deviceKey);
    });
  }

  /** Drops a queued RPC that has not been sent yet. */
  async cancel(id: string): Promise<boolean> {
    for (const [key, queue] of this.queues) {
      const i = queue.items.findIndex((p) => p.q.id === id);
      if (i >= 0) {
        const [p] = queue.items.splice(i, 1);
        if (p!.persisted) await this.store.removeQueuedRpc(id);
        this.settle(p!, undefined, new RpcError('cancelled', `RPC ${id} was cancelled`));
        this.dropQueueIfIdle(key);
        return true;
      }
    }
    return this.store.removeQueuedRpc(id);
  }

  /** One POST of a CPE, already decoded and authenticated by the front. */
  async handle(post: IncomingPost): Promise<CwmpReply> {
    const env = post.envelope;
    if (env && env.body.method === 'Inform') return this.onInform(env, env.body, post.connection);

    const session = (post.sessionId && this.sessions.get(post.sessionId)) || this.byConnection.get(post.connection);
    if (!session || session.state === 'ended') {
      if (!env) return plain(400, 'empty POST outside a CWMP session: a session starts with an Inform (TR-069 3.7.1)');
      return plain(400, `${env.body.method} outside a CWMP session: a session starts with an Inform (TR-069 3.7.1)`);
    }
    this.touch(session);
    if (post.connection && !this.byConnection.has(post.connection)) {
      session.connection = post.connection;
      this.byConnection.set(post.connection, session);
    }

    if (!env) {
      // Empty POST: the CPE has no (more) requests; the ACS's turn (TR-069 3.7.1.3).
      if (session.inflight) {
        const expected = RESPONSE_OF[session.inflight.q.rpc.method];
        session.log.warn({ expected }, 'empty POST while an RPC was in flight');
        this.failInflight(session, new RpcError('session-ended', `the CPE sent an empty POST instead of ${expected}`));
      }
      return this.nextAcsMessage(session);
    }

    const body = env.body;
    switch (body.method) {
      case 'TransferComplete':
      case 'AutonomousTransferComplete': {
        this.emit('transferComplete', { device: session.device, message: body });
        const response: AcsResponse =
          body.method === 'TransferComplete' ? { method: 'TransferCompleteResponse' } : { method: 'AutonomousTransferCompleteResponse' };
        return this.reply(session, env.id, response);
      }
      case 'GetRPCMethods':
        return this.reply(session, env.id, { method: 'GetRPCMethodsResponse', methodList: ACS_METHODS });
      case 'Fault':
        return this.onCpeResponse(session, env);
      default:
        if (body.method.endsWith('Response')) return this.onCpeResponse(session, env);
        return this.faultReply(session, env.id, CwmpFault.AcsMethodNotSupported, `method ${body.method} is not supported by this ACS`);
    }
  }

  /** A CPE request the codec could not decode (unknown method) inside a session: Fault 8000. */
  unsupportedInSession(sessionId: string, id: string | null, detail: string): CwmpReply | Promise<CwmpReply> {
    const session = this.sessions.get(sessionId)!;
    this.touch(session);
    return this.faultReply(session, id, CwmpFault.AcsMethodNotSupported, detail);
  }

  /** Ends every session and rejects waiting callers; queued RPCs stay in the store. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of [...this.sessions.values()]) this.endSession(s, 'shutdown', new RpcError('shutdown', 'the proxy shut down with this RPC in flight'));
    for (const queue of this.queues.values()) {
      for (const p of queue.items) {
        if (p.deadlineTimer) clearTimeout(p.deadlineTimer);
        if (!p.settled && p.reject) {
          p.settled = true;
          p.reject(new RpcError('shutdown', 'the proxy shut down; the RPC stays queued and runs after restart'));
        }
      }
    }
    this.queues.clear();
  }

  // ------------------------------------------------------------------ internals

  private async onInform(env: SoapEnvelope, inform: Inform, connection: object): Promise<CwmpReply> {
    const deviceKey = deviceKeyOf(inform.deviceId);
    const previous = this.byDevice.get(deviceKey);
    if (previous) {
      this.endSession(previous, 'superseded by a new Inform', new RpcError('session-ended', 'the CPE started a new session with this RPC in flight'), false);
    }
    if (this.sessions.size >= this.opts.maxSessions) {
      return { status: 503, body: 'too many concurrent CWMP sessions', contentType: 'text/plain', headers: { 'Retry-After': '30' } };
    }

    const device = await this.register(deviceKey, inform);
    const session = new Session(randomUUID().replaceAll('-', ''), deviceKey, device, env.cwmpVersion, connection, this.log);
    this.sessions.set(session.id, session);
    this.byDevice.set(deviceKey, session);
    this.byConnection.set(connection, session);
    this.touch(session);
    this.connReq.cancel(deviceKey);

    const events = inform.event.map((e) => e.eventCode);
    if (this.opts.setConnectionRequestCredentials && (events.includes('0 BOOTSTRAP') || !device.connReqUsername)) {
      this.queueConnReqCredentials(session);
    }
    session.log.debug({ events }, 'Inform');
    this.emit('inform', { device, inform, sessionId: session.id });

    const hold = this.opts.holdRequests && this.queuedCount(deviceKey) > 0;
    const r = this.reply(session, env.id, { method: 'InformResponse', maxEnvelopes: 1 }, hold);
    r.cookie = session.id;
    return r;
  }

  /** Registers or refreshes the device from its Inform; cheap when nothing but the time changed. */
  protected async register(deviceKey: string, inform: Inform): Promise<DeviceRecord> {
    const now = new Date().toISOString();
    const events = inform.event.map((e) => e.eventCode);
    const param = (suffix: string): string | undefined => inform.parameterList.find((p) => p.name.endsWith(suffix))?.value;
    const url = param('.ManagementServer.ConnectionRequestURL') ?? null;
    const sw = param('.DeviceInfo.SoftwareVersion') ?? null;
    const interval = param('.ManagementServer.PeriodicInformInterval');
    const root = rootModelOf(inform.parameterList.map((p) => p.name));

    let device = await this.store.getDevice(deviceKey);
    if (!device) {
      device = {
        deviceKey,
        endpointId: endpointIdOf(inform.deviceId, this.opts.endpointIdScheme),
        deviceId: inform.deviceId,
        rootModel: root ?? 'InternetGatewayDevice',
        softwareVersion: sw,
        connectionRequestUrl: url,
        connReqUsername: null,
        connReqPassword: null,
        cpeUsername: null,
        cpePassword: null,
        periodicInformInterval: interval !== undefined && /^\d+$/.test(interval) ? Number(interval) : null,
        lastInform: now,
        lastInformEvents: events,
        registeredAt: now,
      };
      await this.store.upsertDevice(device);
      this.log.info({ endpointId: device.endpointId, deviceKey, rootModel: device.rootModel }, 'device registered');
    } else {
      const changed =
        (sw !== null && sw !== device.softwareVersion) ||
        (root !== null && root !== device.rootModel) ||
        (interval !== undefined && Number(interval) !== device.periodicInformInterval) ||
        inform.deviceId.manufacturer !== device.deviceId.manufacturer;
      device.lastInform = now;
      device.lastInformEvents = events;
      if (url !== null) device.connectionRequestUrl = url;
      if (changed) {
        if (sw !== null) device.softwareVersion = sw;
        if (root !== null) device.rootModel = root;
        if (interval !== undefined && /^\d+$/.test(interval)) device.periodicInformInterval = Number(interval);
        device.deviceId = inform.deviceId;
        await this.store.upsertDevice(device);
      } else {
        await this.store.touchInform(deviceKey, now, events, device.connectionRequestUrl);
      }
    }
    await this.learnTypes(device, inform.parameterList);
    return device;
  }

  protected modelKey(device: DeviceRecord): string {
    return `${device.deviceId.oui}-${device.deviceId.productClass}-${device.softwareVersion ?? ''}`;
  }

  /** Types learned from Informs and GPV answers, kept per device model (DESIGN section 2). */
  async learnTypes(device: DeviceRecord, params: readonly ParameterValueStruct[]): Promise<void> {
    return this.learnModelTypes(this.modelKey(device), params);
  }

  protected async learnModelTypes(key: string, params: readonly ParameterValueStruct[]): Promise<void> {
    if (params.length === 0) return;
    let known = this.typeCache.get(key);
    if (!known) {
      known = await this.store.getParameterTypes(
        key,
        params.map((p) => p.name),
      );
      this.typeCache.set(key, known);
    }
    let fresh: Map<string, string> | null = null;
    for (const p of params) {
      if (known.get(p.name) !== p.type) {
        known.set(p.name, p.type);
        (fresh ??= new Map()).set(p.name, p.type);
      }
    }
    if (fresh) await this.store.putParameterTypes(key, fresh);
  }

  /** The learned xsi:type of parameters of a device's model (for SetParameterValues). */
  async parameterTypes(deviceKey: string, names: readonly string[]): Promise<Map<string, string>> {
    const device = await this.store.getDevice(deviceKey);
    if (!device) return new Map();
    return this.store.getParameterTypes(this.modelKey(device), names);
  }

  /** On BOOTSTRAP, give the device its own random connection request credentials (TR-069 3.2.2). */
  private queueConnReqCredentials(session: Session): void {
    const root = session.device.rootModel;
    const username = `cr-${randomBytes(6).toString('hex')}`;
    const password = randomBytes(18).toString('base64url');
    const rpc: AcsRequest = {
      method: 'SetParameterValues',
      parameterList: [
        { name: `${root}.ManagementServer.ConnectionRequestUsername`, value: username, type: 'xsd:string' },
        { name: `${root}.ManagementServer.ConnectionRequestPassword`, value: password, type: 'xsd:string' },
      ],
      parameterKey: '',
    };
    const p: Pending = {
      q: { id: randomUUID(), deviceKey: session.deviceKey, rpc, createdAt: new Date().toISOString(), deadline: Date.now() + this.opts.rpcDeadlineMs },
      persisted: false,
      settled: false,
      onOutcome: async (o) => {
        if (o.kind === 'fault') {
          session.log.warn({ faultCode: o.fault.faultCode }, 'the device refused connection request credentials');
          return;
        }
        const device = (await this.store.getDevice(session.deviceKey)) ?? session.device;
        device.connReqUsername = username;
        device.connReqPassword = password;
        session.device.connReqUsername = username;
        session.device.connReqPassword = password;
        await this.store.upsertDevice(device);
        session.log.info('connection request credentials set');
      },
    };
    this.queueOf(session.deviceKey).items.unshift(p);
  }

  private async onCpeResponse(session: Session, env: SoapEnvelope): Promise<CwmpReply> {
    const p = session.inflight;
    const method = env.body.method;
    if (!p) {
      session.log.warn({ method }, 'response for an RPC that was not sent');
      return plain(400, `${method} received, but no RPC is outstanding in this session`);
    }
    const expected = RESPONSE_OF[p.q.rpc.method];
    if (method !== 'Fault' && method !== expected) {
      session.log.warn({ method, expected }, 'response does not match the RPC in flight');
      return plain(400, `${method} received, but the RPC in flight is ${p.q.rpc.method} (expects ${expected})`);
    }
    if (env.id !== null && env.id !== p.q.id) session.log.debug({ got: env.id, sent: p.q.id }, 'cwmp:ID of the response differs');
    session.inflight = null;
    session.state = 'cpe-turn';
    const outcome: RpcOutcome = method === 'Fault' ? { kind: 'fault', fault: env.body as Fault } : { kind: 'response', response: env.body as CpeResponse };
    if (outcome.kind === 'response' && outcome.response.method === 'GetParameterValuesResponse') {
      await this.learnTypes(session.device, outcome.response.parameterList).catch((e) => session.log.error({ err: e }, 'storing learned types failed'));
    }
    if (p.persisted) await this.store.removeQueuedRpc(p.q.id).catch((e) => session.log.error({ err: e }, 'removing a done RPC failed'));
    if (p.onOutcome) await Promise.resolve(p.onOutcome(outcome)).catch((e) => session.log.error({ err: e }, 'RPC follow-up failed'));
    this.settle(p, outcome);
    if (p.linger && (this.opts.lingerMs ?? 0) > 0 && !this.queues.get(session.deviceKey)?.items.some((x) => !x.settled)) {
      await this.waitForWork(session.deviceKey, this.opts.lingerMs!);
      if ((session.state as SessionState) === 'ended') return { status: 204, body: '', ended: true };
    }
    return this.nextAcsMessage(session);
  }

  /** Resolves when an RPC is enqueued for the device, or after ms. */
  protected waitForWork(deviceKey: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.workWaiters.get(deviceKey) === done) this.workWaiters.delete(deviceKey);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.workWaiters.set(deviceKey, done);
    });
  }

  /** The ACS's turn: send the next queued RPC, or end the session with 204. */
  private nextAcsMessage(session: Session): CwmpReply {
    const queue = this.queues.get(session.deviceKey);
    let next: Pending | undefined;
    while (queue && queue.items.length > 0) {
      const p = queue.items.shift()!;
      if (!p.settled) {
        next = p;
        break;
      }
    }
    if (!next) {
      this.endSession(session, 'done');
      return { status: 204, body: '', ended: true };
    }
    if (next.deadlineTimer) clearTimeout(next.deadlineTimer);
    session.inflight = next;
    session.state = 'awaiting-response';
    session.rpcs++;
    const hold = this.opts.holdRequests && (queue?.items.length ?? 0) > 0;
    const body = encodeSoap({ cwmpVersion: session.version, id: next.q.id, holdRequests: hold || undefined, body: next.q.rpc });
    return { status: 200, body, contentType: 'text/xml; charset="utf-8"' };
  }

  protected reply(session: SessionRef, id: string | null, body: AcsResponse, hold = false): CwmpReply {
    const xml = encodeSoap({ cwmpVersion: session.version, id: id ?? session.id, holdRequests: hold || undefined, body });
    return { status: 200, body: xml, contentType: 'text/xml; charset="utf-8"' };
  }

  protected faultReply(session: SessionRef & { log: Logger }, id: string | null, code: number, text: string): CwmpReply {
    session.log.warn({ faultCode: code }, text);
    const xml = encodeSoap({
      cwmpVersion: session.version,
      id: id ?? session.id,
      body: { method: 'Fault', soapFaultCode: 'Client', faultCode: code, faultString: text, setParameterValuesFault: [] },
    });
    return { status: 200, body: xml, contentType: 'text/xml; charset="utf-8"' };
  }

  private touch(session: Session): void {
    if (session.timer) clearTimeout(session.timer);
    session.timer = setTimeout(() => {
      const what = session.inflight ? ` waiting for ${RESPONSE_OF[session.inflight.q.rpc.method]}` : '';
      session.log.warn({ timeoutMs: this.opts.sessionTimeoutMs }, `CWMP session timed out${what}`);
      this.endSession(session, 'timeout', new RpcError('session-timeout', `CWMP session timed out after ${this.opts.sessionTimeoutMs} ms${what}`));
    }, this.opts.sessionTimeoutMs);
  }

  private failInflight(session: Session, err: RpcError): void {
    const p = session.inflight;
    if (!p) return;
    session.inflight = null;
    session.state = 'cpe-turn';
    if (p.persisted) void this.store.removeQueuedRpc(p.q.id).catch(() => undefined);
    this.settle(p, undefined, err);
  }

  private endSession(session: Session, reason: string, inflightError?: RpcError, wakeAfter = true): void {
    if (session.state === 'ended') return;
    if (session.inflight) this.failInflight(session, inflightError ?? new RpcError('session-ended', `session ended (${reason}) with the RPC in flight`));
    session.state = 'ended';
    if (session.timer) clearTimeout(session.timer);
    this.sessions.delete(session.id);
    if (this.byDevice.get(session.deviceKey) === session) this.byDevice.delete(session.deviceKey);
    if (session.connection && this.byConnection.get(session.connection) === session) this.byConnection.delete(session.connection);
    this.emit('sessionEnd', { sessionId: session.id, deviceKey: session.deviceKey, reason, rpcs: session.rpcs });
    // RPCs queued while the session was ending (or left over after a timeout) need a new session.
    const queue = this.queues.get(session.deviceKey);
    if (queue?.items.some((p) => !p.settled)) {
      if (wakeAfter && !this.closed) void this.wake(session.deviceKey);
    } else this.dropQueueIfIdle(session.deviceKey);
  }

  private queueOf(deviceKey: string): DeviceQueue {
    let q = this.queues.get(deviceKey);
    if (!q) this.queues.set(deviceKey, (q = { items: [] }));
    return q;
  }

  private dropQueueIfIdle(deviceKey: string): void {
    const q = this.queues.get(deviceKey);
    if (q && q.items.length === 0 && !this.byDevice.has(deviceKey)) this.queues.delete(deviceKey);
  }

  private armDeadline(p: Pending): void {
    const ms = Math.max(0, p.q.deadline - Date.now());
    p.deadlineTimer = setTimeout(() => {
      const queue = this.queues.get(p.q.deviceKey);
      const i = queue ? queue.items.indexOf(p) : -1;
      if (i < 0 || p.settled) return; // in flight or done
      queue!.items.splice(i, 1);
      if (p.persisted) void this.store.removeQueuedRpc(p.q.id).catch(() => undefined);
      const last = queue!.lastWake;
      const why = last
        ? last.ok
          ? 'the connection request was accepted but no session followed'
          : `connection request failed: ${last.reason}${last.detail ? ` (${last.detail})` : ''}`
        : 'no connection request could be sent';
      this.settle(p, undefined, new RpcError('unreachable', `device ${p.q.deviceKey} unreachable: no CWMP session within the deadline; ${why}`));
      this.dropQueueIfIdle(p.q.deviceKey);
    }, ms);
  }

  private settle(p: Pending, outcome?: RpcOutcome, error?: RpcError): void {
    if (p.settled) return;
    p.settled = true;
    if (p.deadlineTimer) clearTimeout(p.deadlineTimer);
    if (outcome) p.resolve?.(outcome);
    else if (error) p.reject?.(error);
    if (p.persisted) this.emit('rpcResult', { id: p.q.id, deviceKey: p.q.deviceKey, rpc: p.q.rpc, outcome, error });
    if (p.resolve) this.emit('rpcSettled', { deviceKey: p.q.deviceKey, method: p.q.rpc.method, outcome, error, ms: Date.now() - Date.parse(p.q.createdAt) });
  }

  /** Wakes a device with a connection request (one for all its queued RPCs; connreq coalesces). */
  private async wake(deviceKey: string): Promise<void> {
    if (this.byDevice.has(deviceKey) || this.closed) return;
    const queue = this.queues.get(deviceKey);
    const device = await this.store.getDevice(deviceKey);
    if (!queue) return;
    if (!device?.connectionRequestUrl) {
      queue.lastWake = { ok: false, reason: 'no-url', detail: 'the device never reported a ConnectionRequestURL' };
      return;
    }
    const creds = device.connReqUsername ? { username: device.connReqUsername, password: device.connReqPassword ?? '' } : null;
    try {
      const result = await this.connReq.request(deviceKey, device.connectionRequestUrl, creds);
      queue.lastWake = result;
      if (!result.ok && result.reason !== 'cancelled')
        this.log.warn({ endpointId: device.endpointId, reason: result.reason, detail: result.detail }, 'connection request failed');
    } catch (e) {
      queue.lastWake = { ok: false, reason: 'error', detail: (e as Error).message };
    }
  }
}

export function plain(status: number, message: string): CwmpReply {
  return { status, body: message + '\n', contentType: 'text/plain; charset=utf-8' };
}
