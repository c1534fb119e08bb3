/**
 * The CWMP session engine (TR-069 3.7): drives the session machine (session-machine.ts) over a
 * SessionState port (memory for one instance; Redis for several, src/cluster/) and keeps the
 * callers of ACS RPCs.
 *
 * The public API for the rest of the proxy is `enqueue(deviceKey, rpc, {deadlineMs, linger})`:
 * it resolves with the CPE's response or its cwmp Fault (faults from a peer are data), and
 * rejects with an RpcError when the RPC cannot be delivered (device unreachable at the deadline,
 * session timed out or lost with the RPC in flight, shutdown). A device not in session is woken
 * with one connection request however many RPCs are queued. Queued RPCs are persisted and
 * survive a restart; their outcome after a restart is reported through the 'rpcResult' event.
 *
 * The engine does no HTTP: the ACS front (acs-server.ts) decodes and authenticates, then hands
 * over decoded envelopes and writes back the CwmpReply.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../app/log.js';
import type { DeviceRecord, QueuedRpc, Store } from '../store/types.js';
import {
  CR_CREDENTIALS_ORIGIN,
  connectionRequestCredentialsRpc,
  storeConnectionRequestCredentials,
  wantsConnectionRequestCredentials,
} from './cr-credentials.js';
import { CPE_CREDENTIALS_ORIGIN, cpeCredentialsRpc, newCpeCredentials, storeCpeCredentials, wantsCpeCredentials } from './cpe-credentials.js';
import { deviceKeyOf, endpointIdOf, instanceIdTooLong, modelTypesKeyOf, rootModelOf } from './device-id.js';
import { step, type Inflight, type MachineOptions, type SessionEffect, type SessionInput, type SessionRecord } from './session-machine.js';
import { MemorySessionState } from './session-state-memory.js';
import type { RpcResultMessage, SessionState } from './session-state.js';
import {
  DeviceRefused,
  READ_ONLY_RPCS,
  RpcError,
  plain,
  type ConnReqOutcome,
  type ConnectionRequestPort,
  type CwmpReply,
  type EnqueueOptions,
  type IncomingPost,
  type RpcOutcome,
  type SessionEngineOptions,
} from './session-types.js';
import type {
  AcsRequest,
  AutonomousDUStateChangeComplete,
  AutonomousTransferComplete,
  DUStateChangeComplete,
  Inform,
  ParameterValueStruct,
  SoapEnvelope,
  TransferComplete,
} from './types.js';

export { ACS_METHODS } from './session-machine.js';
export {
  DeviceRefused,
  RpcError,
  plain,
  type ConnReqOutcome,
  type ConnectionRequestPort,
  type CwmpReply,
  type EnqueueOptions,
  type InFlightLoss,
  type IncomingPost,
  type RpcErrorDetail,
  type RpcErrorReason,
  type RpcOutcome,
  type SessionEngineOptions,
} from './session-types.js';

/** Events: 'inform' {device, inform, sessionId}, 'transferComplete' {device, message},
 *  'duStateChangeComplete' {device, message}, 'rpcResult' {id, deviceKey, rpc, outcome?, error?},
 *  'sessionEnd' {sessionId, deviceKey, reason, rpcs}. */
export interface SessionEngineEvents {
  inform: [{ device: DeviceRecord; inform: Inform; sessionId: string }];
  transferComplete: [{ device: DeviceRecord; message: TransferComplete | AutonomousTransferComplete }];
  duStateChangeComplete: [{ device: DeviceRecord; message: DUStateChangeComplete | AutonomousDUStateChangeComplete }];
  rpcResult: [{ id: string; deviceKey: string; rpc: AcsRequest; outcome?: RpcOutcome; error?: RpcError }];
  sessionEnd: [{ sessionId: string; deviceKey: string; reason: string; rpcs: number }];
  /** An RPC a caller of enqueue() waits for was queued, and settled (ms since it was queued). */
  rpcQueued: [{ deviceKey: string; method: AcsRequest['method'] }];
  rpcSettled: [{ deviceKey: string; method: AcsRequest['method']; outcome?: RpcOutcome; error?: RpcError; ms: number }];
}

const RETRY_AFTER_CRASH = READ_ONLY_RPCS;

/** A caller waiting for an RPC it queued here (none for RPCs restored after a restart). */
interface Waiter {
  q: QueuedRpc;
  resolve?: (o: RpcOutcome) => void;
  reject?: (e: RpcError) => void;
  timer: NodeJS.Timeout;
  /** Queued with wake: false (it waited for the CPE's own session). */
  rides?: boolean;
  /** When enqueue() queued it (ms since the epoch; q.createdAt as a number, not parsed again when it settles). */
  queuedAt?: number;
}

/** A session whose latest step this instance wrote: it owns the session timeout. */
interface LocalSession {
  deviceKey: string;
  seq: number;
  timer: NodeJS.Timeout;
}

/** The session of the latest POST on a TCP connection (for CPEs that drop the cookie, and to notice a dropped connection). */
interface Binding {
  sid: string;
  lastPost: number;
  /** POSTs of two live sessions came over it (a proxy's connection): it says nothing about either CPE. */
  shared: boolean;
}

const SESSION_ID = /^[0-9a-f]{32}$/;

export class SessionEngine extends EventEmitter<SessionEngineEvents> {
  /** True when session state is shared between instances (src/cluster/): see the ACS front's auth. */
  readonly sharedSessions: boolean;
  private readonly state: SessionState;
  private readonly machine: MachineOptions;
  private readonly waiting = new Map<string, Waiter>();
  private readonly local = new Map<string, LocalSession>();
  private readonly localByDevice = new Map<string, string>();
  private readonly connections = new WeakMap<object, Binding>();
  /** Sessions lingering for a follow-up RPC, by device. */
  private readonly workWaiters = new Map<string, () => void>();
  /** Callers' open requests per device (beginRequest): a linger ends when the last one closes. */
  private readonly requestsOpen = new Map<string, number>();
  /** Devices in session whose last open request closed before their linger began: no linger. */
  private readonly lingerDone = new Set<string>();
  /**
   * Devices in session whose work signal came while no linger waited (between the step that found
   * the queue empty and its linger): the linger then does not wait, or the RPC would sit out the window.
   */
  private readonly workMissed = new Set<string>();
  private readonly lastWake = new LRUCache<string, ConnReqOutcome>({ max: 10_000 });
  /** Dropped connections waiting out their grace. */
  private readonly graceTimers = new Set<NodeJS.Timeout>();
  /** Learned xsi:types per device model; write-through to the store only on change. */
  private readonly typeCache = new LRUCache<string, Map<string, string>>({ max: 500 });
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly connReq: ConnectionRequestPort,
    private readonly opts: SessionEngineOptions,
    private readonly log: Logger,
    state?: SessionState,
  ) {
    super();
    this.state = state ?? new MemorySessionState(store, log, { persistReadOnlyAfterMs: opts.persistReadOnlyAfterMs ?? 0 });
    this.sharedSessions = this.state.shared;
    this.machine = { holdRequests: opts.holdRequests, lingerMs: opts.lingerMs ?? 0 };
  }

  /** Listens for other instances' signals (several instances). */
  async start(): Promise<void> {
    await this.state.start({
      result: (m) => this.onResult(m),
      work: (deviceKey) => this.signalWork(deviceKey),
      moved: (sid) => this.dropLocal(sid),
      superseded: (s) => {
        this.dropLocal(s.id);
        void this.perform(s, step(s, { kind: 'superseded' }, this.machine).effects, null, 0)?.catch(() => undefined);
      },
    });
  }

  /** Loads RPCs queued before a restart and wakes their devices. */
  async restoreQueue(): Promise<number> {
    const all = await this.state.restore();
    const now = Date.now();
    const devices = new Set<string>();
    for (const q of all) {
      this.waiting.set(q.id, { q, timer: setTimeout(() => void this.onDeadline(q.id), Math.max(0, q.deadline - now)) });
      if (q.sentAt !== undefined && !RETRY_AFTER_CRASH.has(q.rpc.method)) {
        // At-most-once: it left for the CPE before the crash and may have been carried out.
        await this.state.unqueue(q.id);
        this.log.warn({ deviceKey: q.deviceKey, method: q.rpc.method, id: q.id }, 'RPC sent before a restart finished as outcome unknown, not re-sent');
        this.settleWaiting(
          q.id,
          undefined,
          new RpcError(
            'outcome-unknown',
            `${q.rpc.method} was sent to device ${q.deviceKey} before the proxy restarted; whether it was carried out is unknown`,
          ),
        );
      } else if (q.deadline <= now) {
        await this.state.unqueue(q.id);
        this.settleWaiting(q.id, undefined, new RpcError('unreachable', `device ${q.deviceKey} unreachable: deadline passed while the proxy was down`));
      } else devices.add(q.deviceKey);
    }
    for (const key of devices) void this.wake(key);
    return all.length;
  }

  /** Sessions whose latest POST this instance served. */
  get activeSessions(): number {
    return this.local.size;
  }

  /** In session as far as this instance can tell (several instances: deviceState() asks Redis). */
  isInSession(deviceKey: string): boolean {
    return this.localByDevice.has(deviceKey);
  }

  /** The session a POST belongs to: by cookie, else (one instance) by TCP connection. */
  async findSession(sessionId: string | null, connection: object): Promise<string | null> {
    return (await this.sessionOf(sessionId, connection))?.id ?? null;
  }

  /** findSession, with the device the session belongs to (the ACS front binds a cookie to its device). */
  async findSessionOf(sessionId: string | null, connection: object): Promise<{ id: string; deviceKey: string } | null> {
    const s = await this.sessionOf(sessionId, connection);
    return s ? { id: s.id, deviceKey: s.deviceKey } : null;
  }

  private async sessionOf(sessionId: string | null, connection: object): Promise<SessionRecord | null> {
    const s = sessionId && SESSION_ID.test(sessionId) ? await this.state.load(sessionId, true) : null;
    // Behind a load balancer the TCP connection says nothing about the CPE: only the cookie does.
    if (s || this.sharedSessions) return s;
    const b = this.connections.get(connection);
    return b && !b.shared ? this.state.load(b.sid) : null;
  }

  /** For the admin API: in session, and RPCs waiting (several instances: asked of Redis). */
  deviceState(deviceKey: string): Promise<{ inSession: boolean; queuedRpcs: number }> {
    return this.state.deviceState(deviceKey);
  }

  queuedCount(deviceKey: string): number {
    return this.state.queuedCount(deviceKey);
  }

  /**
   * Queues an ACS RPC for a device and resolves with its response or cwmp Fault.
   * Rejects with RpcError: 'unknown-device', 'unreachable' (no session before the deadline),
   * 'session-timeout' (sent, but the CPE never answered), 'session-ended' (sent, then the CPE
   * went away or started over: see RpcError.detail), 'cancelled', 'shutdown'.
   */
  enqueue(deviceKey: string, rpc: AcsRequest, opts: EnqueueOptions = {}): Promise<RpcOutcome> {
    if (this.closed) return Promise.reject(new RpcError('shutdown', 'the proxy is shutting down'));
    // One promise from here to the caller, settled by settleWaiting(), not an async function's
    // around it: the CPE's answer reaches the USP side two microtask turns sooner (issue 22 item 2).
    // A throw here or in the callback below rejects it, as the async function's did.
    return new Promise<RpcOutcome>((resolve, reject) => {
      this.store
        .getDevice(deviceKey)
        .then((device) => {
          if (!device) throw new RpcError('unknown-device', `no registered device ${deviceKey}`);
          const deadlineMs = opts.deadlineMs ?? this.opts.rpcDeadlineMs;
          const queuedAt = Date.now();
          const q: QueuedRpc = {
            id: randomUUID(),
            deviceKey,
            rpc,
            createdAt: new Date(queuedAt).toISOString(),
            deadline: queuedAt + deadlineMs,
            origin: this.state.instanceId,
            linger: opts.linger === true,
          };
          if (opts.signal?.aborted) throw new RpcError('cancelled', `${rpc.method} not queued: nobody waits for its answer`);
          this.emit('rpcQueued', { deviceKey, method: rpc.method });
          // Registered before the RPC is visible, so that even an instant answer finds its caller.
          this.waiting.set(q.id, { q, resolve, reject, timer: setTimeout(() => void this.onDeadline(q.id), deadlineMs), rides: opts.wake === false, queuedAt });
          opts.signal?.addEventListener('abort', () => void this.cancel(q.id).catch(() => undefined), { once: true });
          this.state
            .enqueue(q, false, true)
            .then((holder) => (holder ? this.poke(deviceKey, holder) : opts.wake === false ? undefined : this.wake(deviceKey, device)))
            .catch((e: Error) => this.settleWaiting(q.id, undefined, new RpcError('unreachable', `queueing the RPC failed: ${e.message}`)));
        })
        .catch(reject);
    });
  }

  /** Drops a queued RPC that has not been sent yet. */
  async cancel(id: string): Promise<boolean> {
    if (!(await this.state.unqueue(id))) return false;
    this.settleWaiting(id, undefined, new RpcError('cancelled', `RPC ${id} was cancelled`));
    return true;
  }

  /** One POST of a CPE, already decoded and authenticated by the front. */
  async handle(post: IncomingPost): Promise<CwmpReply> {
    const env = post.envelope;
    if (env && env.body.method === 'Inform') return this.open(env, env.body, post.connection);
    const session = await this.sessionOf(post.sessionId, post.connection);
    if (!session) {
      const what = env ? env.body.method : 'empty POST';
      const hint = this.sharedSessions && !post.sessionId ? '; behind a load balancer the CPE must return the session cookie' : '';
      return plain(400, `${what} outside a CWMP session: a session starts with an Inform (TR-069 3.7.1)${hint}`);
    }
    return (await this.drive(session.id, env ? { kind: 'post', envelope: env } : { kind: 'empty' }, post.connection, session)) ?? gone(session.id);
  }

  /** A CPE request the codec could not decode (unknown method) inside a session: Fault 8000. */
  async unsupportedInSession(sessionId: string, id: string | null, detail: string): Promise<CwmpReply> {
    return (await this.drive(sessionId, { kind: 'unsupported', id, detail }, null)) ?? gone(sessionId);
  }

  /**
   * The CPE closed the TCP connection of a session's POST (connection-drop.ts says when a close
   * counts). If the session has an RPC in flight and the CPE neither posts again (on any
   * connection or instance) nor sends a new Inform within acs.droppedConnectionGraceMs, the RPC
   * fails at once instead of at the session timeout. Several instances: the instance holding the
   * connection reports it.
   */
  connectionClosed(connection: object): void {
    const grace = this.opts.droppedConnectionGraceMs ?? 0;
    const b = this.connections.get(connection);
    this.connections.delete(connection);
    // Not ours to judge: a proxy's connection, or a session that ended or is served elsewhere now.
    if (grace <= 0 || this.closed || !b || b.shared || !this.local.has(b.sid)) return;
    const timer = setTimeout(() => {
      this.graceTimers.delete(timer);
      this.drive(b.sid, { kind: 'connection-closed', lastPost: b.lastPost }, null).catch((e: Error) =>
        this.log.warn({ err: e.message }, 'ending a CWMP session after a dropped connection failed'),
      );
    }, grace);
    this.graceTimers.add(timer);
  }

  /** Ends every session this instance serves (one instance) and rejects waiting callers; queued RPCs stay queued. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.graceTimers) clearTimeout(t);
    this.graceTimers.clear();
    // Several instances: a session outlives this one, its next POST served by another.
    if (!this.sharedSessions) {
      for (const sid of [...this.local.keys()]) await this.drive(sid, { kind: 'shutdown' }, null).catch(() => undefined);
    }
    for (const sid of [...this.local.keys()]) this.dropLocal(sid);
    for (const wake of [...this.workWaiters.values()]) wake();
    const message = this.sharedSessions
      ? 'the proxy instance stopped; another instance answers for its queued work'
      : 'the proxy shut down; the RPC stays queued and runs after restart';
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject?.(new RpcError('shutdown', message));
    }
    this.waiting.clear();
    await this.state.close();
  }

  /** Types learned from Informs and GPV answers, kept per device model. */
  async learnTypes(device: DeviceRecord, params: readonly ParameterValueStruct[]): Promise<void> {
    return this.learnModelTypes(this.modelKey(device), params);
  }

  /** The learned xsi:type of parameters of a device's model (for SetParameterValues). */
  async parameterTypes(deviceKey: string, names: readonly string[]): Promise<Map<string, string>> {
    const device = await this.store.getDevice(deviceKey);
    if (!device) return new Map();
    return this.store.getParameterTypes(this.modelKey(device), names);
  }

  // ------------------------------------------------------------------ sessions

  private async open(env: SoapEnvelope, inform: Inform, connection: object): Promise<CwmpReply> {
    const deviceKey = deviceKeyOf(inform.deviceId);
    const replacing = this.localByDevice.has(deviceKey) ? 1 : 0;
    if (this.local.size - replacing >= this.opts.maxSessions) {
      return { status: 503, body: 'too many concurrent CWMP sessions', contentType: 'text/plain', headers: { 'Retry-After': '30' } };
    }
    let device: DeviceRecord;
    try {
      device = await this.register(deviceKey, inform);
    } catch (e) {
      if (!(e instanceof DeviceRefused)) throw e;
      this.log.warn({ deviceKey, reason: e.message }, 'CWMP device refused');
      return plain(403, `device refused: ${e.message}\n`);
    }
    const session: SessionRecord = {
      // 122 random bits; randomUUID draws from a cached pool (randomBytes costs ~4 us a call).
      id: randomUUID().replaceAll('-', ''),
      deviceKey,
      version: env.cwmpVersion,
      modelKey: this.modelKey(device),
      endpointId: device.endpointId,
      inflight: null,
      rpcs: 0,
      seq: 1,
      lastPost: 1,
    };
    const { previous, queued } = await this.state.open(session);
    if (previous) {
      this.dropLocal(previous.id);
      await this.perform(previous, step(previous, { kind: 'superseded' }, this.machine).effects, null, 0);
    }
    this.served(session, connection);
    this.connReq.cancel(deviceKey);

    const events = inform.event.map((e) => e.eventCode);
    let credentials = 0;
    if (wantsConnectionRequestCredentials(this.opts.setConnectionRequestCredentials, events, device)) {
      await this.state.enqueue(connectionRequestCredentialsRpc(device, this.opts.rpcDeadlineMs), true, false);
      credentials = 1;
    }
    if (this.opts.perDeviceCredentials && !device.cpeUsername && !device.cpePendingUsername) {
      // Stored as pending before the SetParameterValues can leave (cpe-credentials.ts: lockout safety).
      const fresh = newCpeCredentials();
      device.cpePendingUsername = fresh.username;
      device.cpePendingPassword = fresh.password;
      await this.store.upsertDevice(device);
    }
    if (wantsCpeCredentials(this.opts.perDeviceCredentials === true, device)) {
      await this.state.enqueue(cpeCredentialsRpc(device, this.opts.rpcDeadlineMs), true, false);
      credentials++;
    }
    // At most 16 codes in the line: an Inform may carry thousands (acs.limits: bounded log per request).
    const logged = events.length > 16 ? [...events.slice(0, 16), `(${events.length - 16} more)`] : events;
    this.log.debug({ endpointId: device.endpointId, events: logged }, 'Inform');
    this.emit('inform', { device, inform, sessionId: session.id });
    return step(session, { kind: 'opened', id: env.id, queued: queued + credentials }, this.machine).reply!;
  }

  /**
   * Steps a session through the machine until there is a reply (a POST) or nothing more to do
   * (a timer): load, step, write (compare-and-set: a stale step is recomputed on the current
   * state), effects; then the claim's outcome or the end of a linger is the next input.
   */
  private async drive(sid: string, first: SessionInput, connection: object | null, loaded?: SessionRecord): Promise<CwmpReply | null> {
    let state = loaded ?? (await this.state.load(sid));
    let input = first;
    for (let stale = 0; ; ) {
      if (!state) {
        if (input !== first) return { status: 204, body: '', ended: true }; // replaced by a new Inform meanwhile
        return first.kind === 'post' || first.kind === 'empty' || first.kind === 'unsupported' ? gone(sid) : null;
      }
      const out = step(state, input, this.machine);
      let next: SessionInput | null = null;
      if (out.write) {
        // This step looks at the queue: a work signal from before it is seen there.
        if (out.write.next) this.workMissed.delete(state.deviceKey);
        const r = await this.state.apply(sid, state.seq, out.write);
        if (r.kind === 'gone') {
          state = null;
          continue;
        }
        if (r.kind === 'stale') {
          if (++stale > 16) throw new Error(`CWMP session ${sid}: state kept changing under this step`);
          state = r.current;
          continue;
        }
        if (r.ended) this.dropLocal(sid);
        else this.served(r.state, out.write.post ? connection : null);
        const done = this.perform(state, out.effects, r.taken, r.queued);
        if (done) await done;
        state = r.state;
        next = r.next;
      } else {
        const done = this.perform(state, out.effects, null, 0);
        if (done) await done;
      }
      if (out.reply) return out.reply;
      if (next) {
        input = next;
        continue;
      }
      const linger = out.effects.find((e) => e.kind === 'linger');
      if (!linger || this.closed) return input === first ? null : { status: 204, body: '', ended: true };
      await this.waitForWork(state.deviceKey, linger.ms);
      input = { kind: 'linger-over' };
    }
  }

  /**
   * Carries out a step's effects, in order, after its write. Returns a promise only when an
   * effect has I/O (most steps have none: the hot path stays free of promise hops).
   */
  private perform(s: SessionRecord, effects: readonly SessionEffect[], taken: QueuedRpc | null, queued: number): Promise<void> | undefined {
    let chain: Promise<void> | undefined;
    for (const e of effects) {
      if (chain) chain = chain.then(() => this.effect(s, e, taken, queued));
      else chain = this.effect(s, e, taken, queued);
    }
    return chain;
  }

  private effect(s: SessionRecord, e: SessionEffect, taken: QueuedRpc | null, queued: number): Promise<void> | undefined {
    switch (e.kind) {
      case 'settle':
        return this.settled(s, e.rpc, e.outcome, taken);
      case 'fail':
        this.deliver(e.rpc.origin, e.rpc.id, undefined, e.error);
        return;
      case 'transfer-complete':
        return this.store.getDevice(s.deviceKey).then((device) => {
          if (device) this.emit('transferComplete', { device, message: e.message });
        });
      case 'du-state-change-complete':
        return this.store.getDevice(s.deviceKey).then((device) => {
          if (device) this.emit('duStateChangeComplete', { device, message: e.message });
        });
      case 'log':
        this.log[e.level]({ endpointId: s.endpointId, ...e.fields }, e.msg);
        return;
      case 'ended':
        this.emit('sessionEnd', { sessionId: s.id, deviceKey: s.deviceKey, reason: e.reason, rpcs: s.rpcs });
        if (e.wake && queued > 0) void this.wake(s.deviceKey);
        return;
      case 'linger':
        return; // drive() waits
    }
  }

  /**
   * The CPE answered the RPC in flight. Returns a promise only when there is I/O: types that
   * are new for the model (stored before the caller hears the answer, so that a Set right after
   * finds them), or credentials to store. An in-session Get of known parameters settles its
   * caller synchronously (issue 22 item 2: no promise hop between the CPE's answer and the USP one).
   */
  private settled(s: SessionRecord, rpc: Inflight, outcome: RpcOutcome, taken: QueuedRpc | null): Promise<void> | undefined {
    if (
      outcome.kind === 'response' &&
      outcome.response.method === 'GetParameterValuesResponse' &&
      !this.typesKnown(s.modelKey, outcome.response.parameterList)
    ) {
      return this.learnModelTypes(s.modelKey, outcome.response.parameterList)
        .catch((e: Error) => this.log.error({ endpointId: s.endpointId, err: e.message }, 'storing learned types failed'))
        .then(() => this.settledTypesKnown(s, rpc, outcome, taken));
    }
    return this.settledTypesKnown(s, rpc, outcome, taken);
  }

  private settledTypesKnown(s: SessionRecord, rpc: Inflight, outcome: RpcOutcome, taken: QueuedRpc | null): Promise<void> | undefined {
    if (rpc.origin === CPE_CREDENTIALS_ORIGIN) {
      if (!taken) return;
      return storeCpeCredentials(this.store, taken, outcome, this.log.child({ endpointId: s.endpointId })).catch((e: Error) =>
        this.log.error({ endpointId: s.endpointId, err: e.message }, 'storing per-device ACS credentials failed'),
      );
    }
    if (rpc.origin !== CR_CREDENTIALS_ORIGIN) {
      this.deliver(rpc.origin, rpc.id, outcome);
      return;
    }
    if (!taken) return;
    return storeConnectionRequestCredentials(this.store, taken, outcome, this.log.child({ endpointId: s.endpointId })).catch((e: Error) =>
      this.log.error({ endpointId: s.endpointId, err: e.message }, 'storing connection request credentials failed'),
    );
  }

  /** This instance wrote the session's latest step: it owns the session timeout (restarted). */
  private served(s: SessionRecord, connection: object | null): void {
    const l = this.local.get(s.id);
    if (l) {
      l.seq = s.seq;
      l.timer.refresh();
    } else if (!this.closed) {
      const timer = setTimeout(() => this.onTimeout(s.id), this.opts.sessionTimeoutMs);
      this.local.set(s.id, { deviceKey: s.deviceKey, seq: s.seq, timer });
      this.localByDevice.set(s.deviceKey, s.id);
    }
    if (connection) {
      const b = this.connections.get(connection);
      if (!b) this.connections.set(connection, { sid: s.id, lastPost: s.lastPost, shared: false });
      else {
        // A CPE may run its next session over the same connection; two live sessions means a proxy.
        if (b.sid !== s.id && this.local.has(b.sid)) b.shared = true;
        b.sid = s.id;
        b.lastPost = s.lastPost;
      }
    }
  }

  private dropLocal(sid: string): void {
    const l = this.local.get(sid);
    if (!l) return;
    clearTimeout(l.timer);
    this.local.delete(sid);
    if (this.localByDevice.get(l.deviceKey) === sid) {
      this.localByDevice.delete(l.deviceKey);
      this.lingerDone.delete(l.deviceKey);
      this.workMissed.delete(l.deviceKey);
    }
  }

  private onTimeout(sid: string): void {
    const l = this.local.get(sid);
    if (!l) return;
    // A later POST served elsewhere owns the session now; one served here would have restarted the timer.
    this.dropLocal(sid);
    this.drive(sid, { kind: 'timeout', seq: l.seq, timeoutMs: this.opts.sessionTimeoutMs }, null).catch((e: Error) =>
      this.log.warn({ err: e.message }, 'ending a timed-out CWMP session failed'),
    );
  }

  /** Resolves when an RPC is queued for the device, or after ms. */
  /**
   * A caller's request that may enqueue several RPCs for a device (one USP request). While one is
   * open, a session lingers up to acs.lingerMs for its next RPC; when the last one closes, a
   * lingering session ends at once instead of holding the CPE's connection for the rest of the
   * window (issue 22 item 5). Callers that never open one keep the fixed linger. So does a session
   * that took work another instance queued (SessionState.othersMayFollow): that instance's requests
   * are not counted here. Returns the close function (idempotent).
   */
  beginRequest(deviceKey: string): () => void {
    this.requestsOpen.set(deviceKey, (this.requestsOpen.get(deviceKey) ?? 0) + 1);
    this.lingerDone.delete(deviceKey);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      const n = (this.requestsOpen.get(deviceKey) ?? 1) - 1;
      if (n > 0) {
        this.requestsOpen.set(deviceKey, n);
        return;
      }
      this.requestsOpen.delete(deviceKey);
      if (this.state.othersMayFollow?.(deviceKey)) return;
      const lingering = this.workWaiters.get(deviceKey);
      if (lingering) lingering();
      // Closed between the answer and the linger (the answer's settlement may do I/O first).
      else if (this.localByDevice.has(deviceKey)) this.lingerDone.add(deviceKey);
    };
  }

  /** An RPC was queued for a device in session here: its lingering session takes it now. */
  private signalWork(deviceKey: string): void {
    const lingering = this.workWaiters.get(deviceKey);
    if (lingering) lingering();
    else if (this.localByDevice.has(deviceKey)) this.workMissed.add(deviceKey);
  }

  private waitForWork(deviceKey: string, ms: number): Promise<void> {
    if (this.workMissed.delete(deviceKey)) return Promise.resolve();
    if (this.lingerDone.delete(deviceKey) && !this.state.othersMayFollow?.(deviceKey)) return Promise.resolve();
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

  // ------------------------------------------------------------------ callers and devices

  /** Routes an outcome to its caller: here, or on the instance that queued the RPC. */
  private deliver(origin: string, id: string, outcome?: RpcOutcome, error?: RpcError): void {
    if (this.waiting.has(id)) return this.settleWaiting(id, outcome, error, true);
    if (origin && origin !== this.state.instanceId && origin !== CR_CREDENTIALS_ORIGIN && origin !== CPE_CREDENTIALS_ORIGIN) {
      this.state.relayResult(origin, { id, outcome, error: error ? { reason: error.reason, message: error.message, detail: error.detail } : undefined });
    }
  }

  private onResult(m: RpcResultMessage): void {
    if (typeof m.id !== 'string') return;
    this.settleWaiting(m.id, m.outcome, m.error ? new RpcError(m.error.reason, m.error.message, m.error.detail) : undefined, true);
  }

  /** `taken`: the RPC left the queue through a session (the port has forgotten its caller already). */
  private settleWaiting(id: string, outcome?: RpcOutcome, error?: RpcError, taken = false): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    if (!taken) this.state.forget(id);
    if (outcome) w.resolve?.(outcome);
    else w.reject?.(error ?? new RpcError('session-ended', 'no outcome'));
    this.emit('rpcResult', { id, deviceKey: w.q.deviceKey, rpc: w.q.rpc, outcome, error });
    if (w.resolve)
      this.emit('rpcSettled', { deviceKey: w.q.deviceKey, method: w.q.rpc.method, outcome, error, ms: Date.now() - (w.queuedAt ?? Date.parse(w.q.createdAt)) });
  }

  private async onDeadline(id: string): Promise<void> {
    const w = this.waiting.get(id);
    if (!w) return;
    const { q } = w;
    let removed: boolean;
    try {
      removed = await this.state.unqueue(id);
    } catch (e) {
      this.settleWaiting(
        id,
        undefined,
        new RpcError('unreachable', `device ${q.deviceKey}: store unavailable at the RPC's deadline (${(e as Error).message})`),
      );
      return;
    }
    if (removed) {
      const last = this.lastWake.get(q.deviceKey);
      const why = w.rides
        ? 'it waited for a session the device opens on its own (no connection request)'
        : last
          ? last.ok
            ? 'the connection request was accepted but no session followed'
            : `connection request failed: ${last.reason}${last.detail ? ` (${last.detail})` : ''}`
          : this.sharedSessions
            ? 'the connection request was sent by another instance or could not be sent'
            : 'no connection request could be sent';
      this.settleWaiting(id, undefined, new RpcError('unreachable', `device ${q.deviceKey} unreachable: no CWMP session within the deadline; ${why}`));
      return;
    }
    // Claimed by a session: its answer or its timeout comes back; should the instance serving it die, this ends the wait.
    const ms = 2 * this.opts.sessionTimeoutMs;
    w.timer = setTimeout(
      () =>
        this.settleWaiting(id, undefined, new RpcError('session-timeout', `the RPC was sent to device ${q.deviceKey} but no answer came back within ${ms} ms`)),
      ms,
    );
  }

  /** The device is in session: tell the instance serving it (it may be lingering for this very RPC). */
  private poke(deviceKey: string, holder: string): void {
    if (holder === this.state.instanceId) this.signalWork(deviceKey);
    else this.state.notifyWork(holder, deviceKey);
  }

  /** Wakes a device with a connection request (one for all its queued RPCs, TR-069 3.2). */
  private async wake(deviceKey: string, known?: DeviceRecord): Promise<void> {
    if (this.closed) return;
    const device = known ?? (await this.store.getDevice(deviceKey));
    if (!device) return;
    if (!device.connectionRequestUrl) {
      this.lastWake.set(deviceKey, { ok: false, reason: 'no-url', detail: 'the device never reported a ConnectionRequestURL' });
      return;
    }
    if (!(await this.state.wakeLock(deviceKey))) return; // in session, or another instance is waking it
    const creds = device.connReqUsername ? { username: device.connReqUsername, password: device.connReqPassword ?? '' } : null;
    try {
      const result = await this.connReq.request(deviceKey, device.connectionRequestUrl, creds);
      this.lastWake.set(deviceKey, result);
      if (!result.ok && result.reason !== 'cancelled')
        this.log.warn({ endpointId: device.endpointId, reason: result.reason, detail: result.detail }, 'connection request failed');
    } catch (e) {
      this.lastWake.set(deviceKey, { ok: false, reason: 'error', detail: (e as Error).message });
    }
  }

  // ------------------------------------------------------------------ devices and types

  /**
   * The Endpoint ID for a new device. TR-369 R-ARC.2a: os::OUI-Serial, or ops::OUI-ProductClass-Serial
   * when another ProductClass with the same OUI and serial holds the os:: one (endpointIdCollision
   * 'ops'); a device that would share its ID is refused (DeviceRefused), never given a shared one.
   */
  private async freeEndpointId(deviceKey: string, inform: Inform): Promise<string> {
    const wanted = endpointIdOf(inform.deviceId, this.opts.endpointIdScheme);
    const holder = await this.store.getDeviceByEndpointId(wanted);
    if (!holder || holder.deviceKey === deviceKey) return wanted;
    if (this.opts.endpointIdScheme === 'os' && (this.opts.endpointIdCollision ?? 'ops') === 'ops') {
      const ops = endpointIdOf(inform.deviceId, 'ops');
      const other = await this.store.getDeviceByEndpointId(ops);
      if (!other || other.deviceKey === deviceKey) {
        this.log.info({ deviceKey, endpointId: ops, holder: holder.deviceKey }, `${wanted} belongs to another ProductClass; registering as ${ops}`);
        return ops;
      }
    }
    throw new DeviceRefused(`Endpoint ID ${wanted} belongs to another device (${holder.deviceId.productClass})`);
  }

  /** Registers or refreshes the device from its Inform; cheap when nothing but the time changed. */
  private async register(deviceKey: string, inform: Inform): Promise<DeviceRecord> {
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
        endpointId: await this.freeEndpointId(deviceKey, inform),
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
      try {
        await this.store.upsertDevice(device);
      } catch (e) {
        // Another instance (or a concurrent Inform) took the Endpoint ID since freeEndpointId looked.
        if (/UNIQUE/.test((e as Error).message)) throw new DeviceRefused(`Endpoint ID ${device.endpointId} belongs to another device`);
        throw e;
      }
      this.log.info({ endpointId: device.endpointId, deviceKey, rootModel: device.rootModel }, 'device registered');
      if (instanceIdTooLong(device.endpointId))
        this.log.warn(
          { endpointId: device.endpointId },
          'Endpoint ID instance-id is longer than 50 characters (TR-369 R-ARC.6); kept whole, as a cut one could name two devices',
        );
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

  /** Parts encoded as in the device key (device-id.ts), so that no two models share learned types. */
  private modelKey(device: DeviceRecord): string {
    return modelTypesKeyOf(device.deviceId, device.softwareVersion);
  }

  /** Every parameter's type is the one cached for the model (nothing to learn or store). */
  private typesKnown(key: string, params: readonly ParameterValueStruct[]): boolean {
    const known = this.typeCache.get(key);
    if (!known) return params.length === 0;
    for (const p of params) if (known.get(p.name) !== p.type) return false;
    return true;
  }

  private async learnModelTypes(key: string, params: readonly ParameterValueStruct[]): Promise<void> {
    if (params.length === 0) return;
    // A 2,000-parameter answer read or written in one synchronous store call stalls every other
    // session for 10-20 ms: slices of TYPE_SLICE names, a turn of the event loop between them.
    let known = this.typeCache.get(key);
    if (!known) {
      known = new Map();
      for (let i = 0; i < params.length; i += TYPE_SLICE) {
        if (i > 0) await nextTurn();
        const names = params.slice(i, i + TYPE_SLICE).map((p) => p.name);
        for (const [n, t] of await this.store.getParameterTypes(key, names)) known.set(n, t);
      }
      this.typeCache.set(key, known);
    }
    let fresh: Map<string, string> | null = null;
    for (const p of params) {
      if (known.get(p.name) !== p.type) {
        known.set(p.name, p.type);
        if (!fresh || fresh.size >= TYPE_SLICE) {
          if (fresh) await this.store.putParameterTypes(key, fresh).then(nextTurn);
          fresh = new Map();
        }
        fresh.set(p.name, p.type);
      }
    }
    if (fresh) await this.store.putParameterTypes(key, fresh);
  }
}

/** Names per store call when learning types from a large answer (learnModelTypes). */
const TYPE_SLICE = 256;

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

function gone(sid: string): CwmpReply {
  return plain(400, `no CWMP session ${sid}: a session starts with an Inform (TR-069 3.7.1)`);
}
