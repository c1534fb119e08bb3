/**
 * The CWMP session engine for several instances behind one load balancer (README "Scaling out").
 * Same contract as SessionEngine (enqueue -> RpcOutcome | RpcError, handle(POST) -> reply), but
 * every piece of session state is in Redis (scripts.ts), so any instance can serve any POST of
 * any session and the balancer needs no stickiness:
 *
 * - enqueue() on the instance that took the USP request (the origin) puts the RPC in the device's
 *   Redis queue. When the device is in session, the instance named by its lease (the one that
 *   served its last POST, possibly lingering for this very RPC) is poked; otherwise one instance
 *   sends the connection request (a short Redis lock coalesces them).
 * - Whichever instance serves the POST that carries the answer publishes the outcome to the
 *   origin (or settles it in place when it is the origin).
 * - The origin owns the deadline: an RPC still queued at its deadline is removed and failed as
 *   unreachable; one already claimed by a session is waited for up to two session timeouts.
 * - The instance that served a session's last POST owns its timeout; a later POST elsewhere
 *   makes that timer a no-op (seq check in the script).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../app/log.js';
import type { DeviceRecord, QueuedRpc } from '../store/types.js';
import { deviceKeyOf } from '../cwmp/device-id.js';
import { encodeSoap } from '../cwmp/soap.js';
import {
  ACS_METHODS,
  RpcError,
  SessionEngine,
  plain,
  type ConnReqOutcome,
  type ConnectionRequestPort,
  type CwmpReply,
  type EnqueueOptions,
  type IncomingPost,
  type RpcErrorReason,
  type RpcOutcome,
  type SessionEngineOptions,
} from '../cwmp/session.js';
import {
  CwmpFault,
  type AutonomousTransferComplete,
  type TransferComplete,
  type AcsRequest,
  type AcsResponse,
  type CpeResponse,
  type CwmpVersion,
  type Fault,
  type Inform,
  type SoapEnvelope,
} from '../cwmp/types.js';
import type { ClusterBus } from './bus.js';
import { SessionScripts, type PostMode } from './scripts.js';
import type { ClusterStore } from './types.js';

/** Origin of the connection request credentials SetParameterValues: handled by whoever gets the answer. */
const CR_CREDENTIALS = '#cr-credentials';

/** Events that other instances' waiting commands care about (Reboot, Download, diagnostics). */
const QUIET_EVENTS = new Set(['2 PERIODIC', '6 CONNECTION REQUEST', '4 VALUE CHANGE']);

interface Waiting {
  q: QueuedRpc;
  resolve: (o: RpcOutcome) => void;
  reject: (e: RpcError) => void;
  timer: NodeJS.Timeout;
}

export interface RpcResultMessage {
  id: string;
  outcome?: RpcOutcome;
  error?: { reason: RpcErrorReason; message: string };
}

/** A device event relayed to the other instances (their CwmpCommandRunner may wait for it). */
export interface RemoteDeviceEvent {
  from: string;
  deviceKey: string;
  inform?: Pick<Inform, 'event'> & { parameterList: [] };
  transferComplete?: TransferComplete | AutonomousTransferComplete;
}

interface LocalSession {
  seq: number;
  timer: NodeJS.Timeout;
}

export class ClusterSessionEngine extends SessionEngine {
  private readonly scripts: SessionScripts;
  private readonly waiting = new Map<string, Waiting>();
  /** Sessions whose last POST this instance served (it owns their timeout). */
  private readonly local = new Map<string, LocalSession>();
  private readonly lastWake = new LRUCache<string, ConnReqOutcome>({ max: 10_000 });
  /** Sessions known to exist (started here, or found in Redis): see findSession. */
  private readonly known: LRUCache<string, true>;
  /** Sessions are shared state: one found in Redis was opened by an authenticated Inform. */
  override readonly sharedSessions = true;

  constructor(
    private readonly cstore: ClusterStore,
    connReq: ConnectionRequestPort,
    opts: SessionEngineOptions,
    log: Logger,
    private readonly bus: ClusterBus,
    readonly instanceId: string,
  ) {
    super(cstore, connReq, opts, log);
    this.scripts = new SessionScripts(cstore.redis, cstore.key(''));
    this.known = new LRUCache({ max: 100_000, ttl: 2 * opts.sessionTimeoutMs });
  }

  /** Subscribes to this instance's result and wake-up channels. */
  async start(): Promise<void> {
    await this.bus.on(this.cstore.key('ch', 'res', this.instanceId), (m) => this.onResult(m as unknown as RpcResultMessage));
    await this.bus.on(this.cstore.key('ch', 'work', this.instanceId), (m) => this.workWaiters.get(String(m.deviceKey))?.());
  }

  override async restoreQueue(): Promise<number> {
    return 0; // a dead instance's queue is taken over by Cluster, not restored per instance
  }

  override get activeSessions(): number {
    return this.local.size;
  }

  /** Synchronous callers get this instance's view only; deviceState() and inSession() ask Redis. */
  override isInSession(_deviceKey: string): boolean {
    return false;
  }

  async inSession(deviceKey: string): Promise<boolean> {
    return (await this.cstore.redis.exists(this.cstore.key('lease', deviceKey))) === 1;
  }

  override queuedCount(_deviceKey: string): number {
    return 0;
  }

  override async deviceState(deviceKey: string): Promise<{ inSession: boolean; queuedRpcs: number }> {
    const r = await this.cstore.redis.multi().exists(this.cstore.key('lease', deviceKey)).llen(this.cstore.key('q', deviceKey)).exec();
    return { inSession: r?.[0]?.[1] === 1, queuedRpcs: Number(r?.[1]?.[1] ?? 0) };
  }

  override async enqueue(deviceKey: string, rpc: AcsRequest, opts: EnqueueOptions = {}): Promise<RpcOutcome> {
    if (this.closed) throw new RpcError('shutdown', 'the proxy is shutting down');
    const device = await this.cstore.getDevice(deviceKey);
    if (!device) throw new RpcError('unknown-device', `no registered device ${deviceKey}`);
    const deadlineMs = opts.deadlineMs ?? this.opts.rpcDeadlineMs;
    const q: QueuedRpc = {
      id: randomUUID(),
      deviceKey,
      rpc,
      createdAt: new Date().toISOString(),
      deadline: Date.now() + deadlineMs,
      origin: this.instanceId,
      linger: !!opts.linger,
    };
    this.emit('rpcQueued', { deviceKey, method: rpc.method });
    return new Promise<RpcOutcome>((resolve, reject) => {
      // Registered before the RPC is visible, so that even an instant answer finds its caller.
      const w: Waiting = { q, resolve, reject, timer: setTimeout(() => void this.onDeadline(q), deadlineMs) };
      this.waiting.set(q.id, w);
      this.scripts
        .enqueue(q.id, deviceKey, JSON.stringify(q), false, this.instanceId)
        .then((lease) => (lease ? this.poke(deviceKey, lease) : this.wakeDevice(device)))
        .catch((e: Error) => this.settleWaiting(q.id, undefined, new RpcError('unreachable', `queueing the RPC in Redis failed: ${e.message}`)));
    });
  }

  override async cancel(id: string): Promise<boolean> {
    if (!(await this.cstore.unqueueRpc(id))) return false;
    this.settleWaiting(id, undefined, new RpcError('cancelled', `RPC ${id} was cancelled`));
    return true;
  }

  /**
   * A session this instance started or has already seen costs no Redis round trip (so a sticky
   * balancer saves one per POST); another one is looked up once. A session in Redis was opened by
   * an authenticated Inform, hence `sharedSessions`: the ACS front needs no new authentication.
   */
  override findSession(sessionId: string | null): string | null | Promise<string | null> {
    if (!sessionId || !/^[0-9a-f]{32}$/.test(sessionId)) return null;
    if (this.known.has(sessionId)) return sessionId;
    return this.cstore.redis.exists(this.cstore.key('s', sessionId)).then((n) => {
      if (n !== 1) return null;
      this.known.set(sessionId, true);
      return sessionId;
    });
  }

  override async unsupportedInSession(sessionId: string, id: string | null, detail: string): Promise<CwmpReply> {
    const r = await this.scripts.post(sessionId, this.instanceId, this.opts.sessionTimeoutMs, 'touch', '', false);
    if (r[0] !== 'ok') return plain(400, `${detail}; and no CWMP session ${sessionId} exists`);
    this.arm(sessionId, Number(r[5]));
    return this.faultReply({ version: r[2] as CwmpVersion, id: sessionId, log: this.log }, id, CwmpFault.AcsMethodNotSupported, detail);
  }

  override async handle(post: IncomingPost): Promise<CwmpReply> {
    const env = post.envelope;
    if (env && env.body.method === 'Inform') return this.beginSession(env, env.body);
    // Behind a load balancer the TCP connection says nothing about the CPE: the cookie does.
    const sid = post.sessionId;
    if (!sid)
      return plain(
        400,
        `${env ? env.body.method : 'empty POST'} outside a CWMP session: a session starts with an Inform (TR-069 3.7.1); behind a load balancer the CPE must return the session cookie`,
      );
    if (!env) return this.step(sid, 'empty', null, null);
    const body = env.body;
    switch (body.method) {
      case 'TransferComplete':
      case 'AutonomousTransferComplete': {
        const t = await this.touchSession(sid);
        if (!t) return this.outside(body.method);
        const device = await this.cstore.getDevice(t.deviceKey);
        if (device) {
          this.emit('transferComplete', { device, message: body });
          this.bus.publish(this.cstore.key('ch', 'dev'), { from: this.instanceId, deviceKey: device.deviceKey, transferComplete: body });
        }
        const response: AcsResponse =
          body.method === 'TransferComplete' ? { method: 'TransferCompleteResponse' } : { method: 'AutonomousTransferCompleteResponse' };
        return this.reply({ version: t.version, id: sid }, env.id, response);
      }
      case 'GetRPCMethods': {
        const t = await this.touchSession(sid);
        if (!t) return this.outside(body.method);
        return this.reply({ version: t.version, id: sid }, env.id, { method: 'GetRPCMethodsResponse', methodList: ACS_METHODS });
      }
      case 'Fault':
        return this.step(sid, 'fault', env, body as Fault);
      default:
        if (body.method.endsWith('Response')) return this.step(sid, 'resp', env, null);
        {
          const t = await this.touchSession(sid);
          if (!t) return this.outside(body.method);
          return this.faultReply(
            { version: t.version, id: sid, log: this.log },
            env.id,
            CwmpFault.AcsMethodNotSupported,
            `method ${body.method} is not supported by this ACS`,
          );
        }
    }
  }

  override async close(): Promise<void> {
    this.closed = true;
    for (const s of this.local.values()) clearTimeout(s.timer);
    this.local.clear();
    for (const wake of this.workWaiters.values()) wake();
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new RpcError('shutdown', 'the proxy instance stopped; another instance answers for its queued work'));
      this.waiting.delete(id);
    }
  }

  // ------------------------------------------------------------------ internals

  private outside(method: string): CwmpReply {
    return plain(400, `${method} outside a CWMP session: a session starts with an Inform (TR-069 3.7.1)`);
  }

  private async touchSession(sid: string): Promise<{ deviceKey: string; version: CwmpVersion } | null> {
    const r = await this.scripts.post(sid, this.instanceId, this.opts.sessionTimeoutMs, 'touch', '', false);
    if (r[0] !== 'ok') return null;
    this.arm(sid, Number(r[5]));
    return { deviceKey: r[1]!, version: r[2] as CwmpVersion };
  }

  private async beginSession(env: SoapEnvelope, inform: Inform): Promise<CwmpReply> {
    if (this.local.size >= this.opts.maxSessions) {
      return { status: 503, body: 'too many concurrent CWMP sessions', contentType: 'text/plain', headers: { 'Retry-After': '30' } };
    }
    const deviceKey = deviceKeyOf(inform.deviceId);
    const device = await this.register(deviceKey, inform);
    const sid = randomBytes(16).toString('hex');
    const ttl = this.opts.sessionTimeoutMs;
    const [tookId, tookOrigin, tookMethod, queued] = await this.scripts.inform(
      sid,
      this.instanceId,
      ttl,
      deviceKey,
      env.cwmpVersion,
      this.modelKey(device),
      device.endpointId,
    );
    if (tookId) this.deliver(tookOrigin!, tookId, undefined, new RpcError('session-ended', `the CPE started a new session with ${tookMethod} in flight`));
    this.arm(sid, 1);
    this.known.set(sid, true);
    this.connReq.cancel(deviceKey);

    const events = inform.event.map((e) => e.eventCode);
    if (this.opts.setConnectionRequestCredentials && (events.includes('0 BOOTSTRAP') || !device.connReqUsername)) await this.queueCredentials(device);
    this.emit('inform', { device, inform, sessionId: sid });
    if (events.some((c) => !QUIET_EVENTS.has(c))) {
      this.bus.publish(this.cstore.key('ch', 'dev'), { from: this.instanceId, deviceKey, inform: { event: inform.event, parameterList: [] } });
    }
    const hold = this.opts.holdRequests && Number(queued) > 0;
    const r = this.reply({ version: env.cwmpVersion, id: sid }, env.id, { method: 'InformResponse', maxEnvelopes: 1 }, hold);
    r.cookie = sid;
    return r;
  }

  /** TR-069 3.2.2: per-device connection request credentials, set first thing in the session. */
  private async queueCredentials(device: DeviceRecord): Promise<void> {
    const root = device.rootModel;
    const rpc: AcsRequest = {
      method: 'SetParameterValues',
      parameterList: [
        { name: `${root}.ManagementServer.ConnectionRequestUsername`, value: `cr-${randomBytes(6).toString('hex')}`, type: 'xsd:string' },
        { name: `${root}.ManagementServer.ConnectionRequestPassword`, value: randomBytes(18).toString('base64url'), type: 'xsd:string' },
      ],
      parameterKey: '',
    };
    const q: QueuedRpc = {
      id: randomUUID(),
      deviceKey: device.deviceKey,
      rpc,
      createdAt: new Date().toISOString(),
      deadline: Date.now() + this.opts.rpcDeadlineMs,
      origin: CR_CREDENTIALS,
    };
    await this.scripts.enqueue(q.id, device.deviceKey, JSON.stringify(q), true, '');
  }

  private async credentialsSet(json: string, outcome: RpcOutcome): Promise<void> {
    const q = JSON.parse(json) as QueuedRpc;
    if (outcome.kind === 'fault') {
      this.log.warn({ faultCode: outcome.fault.faultCode }, 'the device refused connection request credentials');
      return;
    }
    if (q.rpc.method !== 'SetParameterValues') return;
    const device = await this.cstore.getDevice(q.deviceKey);
    if (!device) return;
    device.connReqUsername = q.rpc.parameterList[0]!.value;
    device.connReqPassword = q.rpc.parameterList[1]!.value;
    await this.cstore.upsertDevice(device);
    this.log.info({ endpointId: device.endpointId }, 'connection request credentials set');
  }

  /** A POST that answers, faults or skips the RPC in flight, then the ACS's turn. */
  private async step(sid: string, mode: PostMode, env: SoapEnvelope | null, fault: Fault | null): Promise<CwmpReply> {
    const method = env?.body.method ?? '';
    const lingerAllowed = (this.opts.lingerMs ?? 0) > 0;
    const r = await this.scripts.post(sid, this.instanceId, this.opts.sessionTimeoutMs, mode, method, lingerAllowed);
    const [status, deviceKey, version, modelKey, endpointId] = r as [string, string, CwmpVersion, string, string];
    if (status === 'nosession') return this.outside(env ? method : 'empty POST');
    if (status === 'noinflight') return plain(400, `${method} received, but no RPC is outstanding in this session`);
    if (status === 'mismatch') return plain(400, `${method} received, but the RPC in flight is ${r[5]} (expects ${r[5]}Response)`);
    const seq = Number(r[5]);
    const [tookId, tookOrigin, tookMethod, tookJson, nextJson] = r.slice(6) as [string, string, string, string, string];
    this.arm(sid, seq);
    if (tookId) {
      if (mode === 'empty') {
        this.log.warn({ endpointId, expected: `${tookMethod}Response` }, 'empty POST while an RPC was in flight');
        this.deliver(tookOrigin, tookId, undefined, new RpcError('session-ended', `the CPE sent an empty POST instead of ${tookMethod}Response`));
      } else {
        const outcome: RpcOutcome = fault ? { kind: 'fault', fault } : { kind: 'response', response: env!.body as CpeResponse };
        if (outcome.kind === 'response' && outcome.response.method === 'GetParameterValuesResponse') {
          await this.learnModelTypes(modelKey, outcome.response.parameterList).catch((e: Error) =>
            this.log.error({ err: e.message }, 'storing learned types failed'),
          );
        }
        if (tookOrigin === CR_CREDENTIALS)
          await this.credentialsSet(tookJson, outcome).catch((e: Error) => this.log.error({ err: e.message }, 'storing connection request credentials failed'));
        else this.deliver(tookOrigin, tookId, outcome);
      }
    }
    let kind = status;
    let rpcJson = nextJson;
    if (kind === 'linger') {
      await this.waitForWork(deviceKey, this.opts.lingerMs!);
      const n = await this.scripts.next(sid, this.instanceId, this.opts.sessionTimeoutMs);
      if (n[0] === 'nosession') return this.ended(sid, deviceKey, 'superseded');
      kind = n[0]!;
      rpcJson = n[2] ?? '';
      this.arm(sid, Number(n[1]));
    }
    if (kind === 'rpc') {
      const q = JSON.parse(rpcJson) as QueuedRpc;
      const body = encodeSoap({ cwmpVersion: version, id: q.id, body: q.rpc });
      return { status: 200, body, contentType: 'text/xml; charset="utf-8"' };
    }
    return this.ended(sid, deviceKey, 'done');
  }

  private ended(sid: string, deviceKey: string, reason: string): CwmpReply {
    this.known.delete(sid);
    const s = this.local.get(sid);
    if (s) clearTimeout(s.timer);
    this.local.delete(sid);
    this.emit('sessionEnd', { sessionId: sid, deviceKey, reason, rpcs: 0 });
    return { status: 204, body: '', ended: true };
  }

  /** This instance served the session's latest POST: it owns the session timeout. */
  private arm(sid: string, seq: number): void {
    const prev = this.local.get(sid);
    if (prev) clearTimeout(prev.timer);
    if (this.closed) return;
    const timer = setTimeout(() => void this.onSessionTimeout(sid, seq), this.opts.sessionTimeoutMs);
    this.local.set(sid, { seq, timer });
  }

  private async onSessionTimeout(sid: string, seq: number): Promise<void> {
    if (this.local.get(sid)?.seq === seq) this.local.delete(sid);
    let r: string[];
    try {
      r = await this.scripts.expire(sid, seq);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'ending a timed-out session in Redis failed');
      return;
    }
    if (r[0] !== 'expired') return; // another instance served a later POST, or the session ended
    const [, deviceKey, tookId, tookOrigin, tookMethod, queued] = r as [string, string, string, string, string, string];
    const what = tookId ? ` waiting for ${tookMethod}Response` : '';
    this.log.warn({ timeoutMs: this.opts.sessionTimeoutMs }, `CWMP session timed out${what}`);
    this.emit('sessionEnd', { sessionId: sid, deviceKey, reason: 'timeout', rpcs: 0 });
    if (tookId)
      this.deliver(tookOrigin, tookId, undefined, new RpcError('session-timeout', `CWMP session timed out after ${this.opts.sessionTimeoutMs} ms${what}`));
    if (Number(queued) > 0) {
      const device = await this.cstore.getDevice(deviceKey);
      if (device) await this.wakeDevice(device);
    }
  }

  /** The device is in session: tell the instance that served its last POST (it may be lingering). */
  private poke(deviceKey: string, lease: string): void {
    const at = lease.indexOf('@');
    const holder = at >= 0 ? lease.slice(at + 1) : '';
    if (holder === this.instanceId) this.workWaiters.get(deviceKey)?.();
    else if (holder) this.bus.publish(this.cstore.key('ch', 'work', holder), { deviceKey });
  }

  /** One connection request per device across instances (a short Redis lock), TR-069 3.2. */
  private async wakeDevice(device: DeviceRecord): Promise<void> {
    if (this.closed) return;
    if (!device.connectionRequestUrl) {
      this.lastWake.set(device.deviceKey, { ok: false, reason: 'no-url', detail: 'the device never reported a ConnectionRequestURL' });
      return;
    }
    const lock = await this.cstore.redis.set(
      this.cstore.key('wake', device.deviceKey),
      this.instanceId,
      'PX',
      Math.max(1000, Math.min(10_000, this.opts.sessionTimeoutMs)),
      'NX',
    );
    if (lock !== 'OK') return; // another instance is waking it
    const creds = device.connReqUsername ? { username: device.connReqUsername, password: device.connReqPassword ?? '' } : null;
    try {
      const result = await this.connReq.request(device.deviceKey, device.connectionRequestUrl, creds);
      this.lastWake.set(device.deviceKey, result);
      if (!result.ok && result.reason !== 'cancelled')
        this.log.warn({ endpointId: device.endpointId, reason: result.reason, detail: result.detail }, 'connection request failed');
    } catch (e) {
      this.lastWake.set(device.deviceKey, { ok: false, reason: 'error', detail: (e as Error).message });
    }
  }

  private async onDeadline(q: QueuedRpc): Promise<void> {
    const w = this.waiting.get(q.id);
    if (!w) return;
    let removed = false;
    try {
      removed = await this.cstore.unqueueRpc(q.id);
    } catch (e) {
      this.settleWaiting(
        q.id,
        undefined,
        new RpcError('unreachable', `device ${q.deviceKey}: Redis unavailable at the RPC's deadline (${(e as Error).message})`),
      );
      return;
    }
    if (removed) {
      const last = this.lastWake.get(q.deviceKey);
      const why = last
        ? last.ok
          ? 'the connection request was accepted but no session followed'
          : `connection request failed: ${last.reason}${last.detail ? ` (${last.detail})` : ''}`
        : 'the connection request was sent by another instance or could not be sent';
      this.settleWaiting(q.id, undefined, new RpcError('unreachable', `device ${q.deviceKey} unreachable: no CWMP session within the deadline; ${why}`));
      return;
    }
    // Claimed by a session (maybe on an instance that died): its answer or timeout comes back, or this ends it.
    w.timer = setTimeout(
      () =>
        this.settleWaiting(
          q.id,
          undefined,
          new RpcError('session-timeout', `the RPC was sent to device ${q.deviceKey} but no answer came back within ${2 * this.opts.sessionTimeoutMs} ms`),
        ),
      2 * this.opts.sessionTimeoutMs,
    );
  }

  /** Routes an outcome to the instance whose caller waits for it. */
  private deliver(origin: string, id: string, outcome?: RpcOutcome, error?: RpcError): void {
    if (!origin) return;
    if (origin === this.instanceId) {
      this.settleWaiting(id, outcome, error, true);
      return;
    }
    const m: RpcResultMessage = { id, outcome, error: error ? { reason: error.reason, message: error.message } : undefined };
    this.bus.publish(this.cstore.key('ch', 'res', origin), m);
  }

  private onResult(m: RpcResultMessage): void {
    if (typeof m.id !== 'string') return;
    this.settleWaiting(m.id, m.outcome, m.error ? new RpcError(m.error.reason, m.error.message) : undefined, true);
  }

  /** `taken`: the session script already dropped the id from this instance's io set. */
  private settleWaiting(id: string, outcome?: RpcOutcome, error?: RpcError, taken = false): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    if (!taken) void this.cstore.redis.srem(this.cstore.key('io', this.instanceId), id).catch(() => undefined);
    if (outcome) w.resolve(outcome);
    else w.reject(error ?? new RpcError('session-ended', 'no outcome'));
    this.emit('rpcResult', { id, deviceKey: w.q.deviceKey, rpc: w.q.rpc, outcome, error });
    this.emit('rpcSettled', { deviceKey: w.q.deviceKey, method: w.q.rpc.method, outcome, error, ms: Date.now() - Date.parse(w.q.createdAt) });
  }
}
