/**
 * SessionState for several instances on one Redis. A CWMP session lives on one HTTP connection,
 * so it lives in the memory of the instance serving it; Redis holds what instances must agree on
 * (lease-queue.ts): the device's lease (which session, on which instance) and its queue of RPCs.
 * A step of a session costs Redis nothing but the queue's head at the ACS's turns, and the lease
 * at its start and end (docs/scaling.md: 59 -> 30 -> ~9 commands per idle-device Get).
 *
 * Behind a balancer without stickiness a POST of the session may reach another instance: that
 * one asks for the session over pub/sub (`P ch:hand`, every instance listens), the instance
 * holding it hands it over whole (`P ch:took:<instance>`, the in-flight RPC included) and forgets
 * it, and the new holder takes the lease. One instance holds a session at a time, so a step needs
 * no compare-and-set in Redis: steps of one session are serialized here. A session whose instance
 * died is lost (no answer within handoverWaitMs: the POST gets 400 and the CPE starts a new
 * session, TR-069 3.7.1.5); its in-flight RPC's caller gets the session timeout (SessionEngine).
 *
 * Signals over the ClusterBus: an outcome to the instance whose caller waits (`P ch:res:<i>`),
 * work for a lingering session to the instance serving it (`P ch:work:<i>`), a new Inform that
 * replaced a session held elsewhere (`P ch:sup:<i>`).
 */
import { LRUCache } from 'lru-cache';
import { CPE_CREDENTIALS_ORIGIN } from '../cwmp/cpe-credentials.js';
import { CR_CREDENTIALS_ORIGIN } from '../cwmp/cr-credentials.js';
import type { SessionInput, SessionRecord, SessionWrite } from '../cwmp/session-machine.js';
import { type ApplyResult, isRpcResultMessage, type RpcResultMessage, type SessionSignals, type SessionState } from '../cwmp/session-state.js';
import type { QueuedRpc } from '../store/types.js';
import type { ClusterBus } from './bus.js';
import { LeaseQueue } from './lease-queue.js';
import type { ClusterStore } from './types.js';

/** A session this instance holds. */
interface Held {
  rec: SessionRecord;
  /** The in-flight RPC as it was queued ('' none). */
  infj: string;
  /** RPCs known to be queued for the device (the count at open minus claims), -1 unknown. */
  left: number;
  /** An RPC was queued for the device since the queue was last looked at. */
  poked: boolean;
  /** Instances whose work the session took (origins of RPCs it claimed, senders of work signals; '' unknown). */
  origins: string[];
  /** When this instance last set the lease (ms). */
  leaseAt: number;
  /** The step in progress (steps of one session one after another). */
  busy: Promise<unknown>;
}

/** A session on its way between instances. */
interface Handed {
  rec: SessionRecord;
  infj: string;
  left: number;
  poked: boolean;
  /** Absent from an instance of an older version. */
  origins?: string[];
}

export class RedisSessionState implements SessionState {
  readonly shared = true;
  private readonly q: LeaseQueue;
  private readonly held = new Map<string, Held>();
  private readonly byDevice = new Map<string, string>();
  /** Wake locks taken (true) or found taken (false) by enqueue(), for the wakeLock() that follows it. */
  private readonly wakes: LRUCache<string, boolean>;
  private readonly wakeMs: number;
  /**
   * RPCs queued here for a caller here, as queued (device, JSON): unqueue removes that exact
   * entry. Kept until the caller gives up or the RPC's deadline plus two session timeouts (an RPC
   * answered through a session is not forgotten one by one: SessionEngine.settleWaiting).
   */
  private readonly mine: LRUCache<string, { dk: string; json: string }>;
  /** Devices whose session was handed over from here, to whom (work signals that still come here go on). */
  private readonly movedTo: LRUCache<string, string>;
  /** Sessions asked for, by id. */
  private readonly asking = new Map<string, Promise<SessionRecord | null>>();
  private readonly answers = new Map<string, (h: Handed | null) => void>();
  /** Sessions asked for that no instance handed over: a POST naming one again is refused at once. */
  private readonly unknown: LRUCache<string, true>;
  private signals: SessionSignals | null = null;

  constructor(
    private readonly store: ClusterStore,
    private readonly bus: ClusterBus,
    readonly instanceId: string,
    private readonly sessionTimeoutMs: number,
    /** acs.holdRequests: the only reader of how many RPCs are still queued after a claim. */
    private readonly countQueued = false,
    /** How long a POST waits for the instance holding its session to hand it over. */
    private readonly handoverWaitMs = Math.max(200, Math.min(2000, sessionTimeoutMs / 2)),
  ) {
    this.q = new LeaseQueue(store.redis, store.key(''));
    this.wakeMs = Math.max(1000, Math.min(10_000, sessionTimeoutMs));
    this.wakes = new LRUCache({ max: 10_000, ttl: this.wakeMs });
    this.movedTo = new LRUCache({ max: 10_000, ttl: 2 * sessionTimeoutMs });
    this.unknown = new LRUCache({ max: 10_000, ttl: 2 * sessionTimeoutMs });
    this.mine = new LRUCache({ max: 100_000, ttl: 2 * sessionTimeoutMs });
  }

  async start(signals: SessionSignals): Promise<void> {
    this.signals = signals;
    const ch = (...p: string[]): string => this.store.key('ch', ...p);
    // A malformed message (another version, corrupt) is dropped: its caller ends at its deadline.
    await this.bus.on(ch('res', this.instanceId), (m) => void (isRpcResultMessage(m) && signals.result(m)));
    await this.bus.on(ch('work', this.instanceId), (m) => this.onWork(String(m.deviceKey), typeof m.from === 'string' ? m.from : ''));
    await this.bus.on(ch('hand'), (m) => void this.onAsked(String(m.sid), String(m.to)));
    await this.bus.on(ch('took', this.instanceId), (m) => this.onHanded(String(m.sid), m.session as Handed | undefined));
    await this.bus.on(ch('sup', this.instanceId), (m) => this.onSuperseded(String(m.sid)));
    await this.bus.on(ch('dead'), (m) => void this.onInstanceDead(String(m.instance)).catch(() => undefined));
  }

  async close(): Promise<void> {
    this.held.clear();
    this.byDevice.clear();
    for (const answer of this.answers.values()) answer(null);
  }

  /** This instance serves the session (forward.ts: a POST of it is not relayed). */
  holds(sessionId: string): boolean {
    return this.held.has(sessionId);
  }

  /** The id of the RPC in flight in the device's session held here (tests, diagnostics). */
  inflightOf(deviceKey: string): string | null {
    const sid = this.byDevice.get(deviceKey);
    return (sid && this.held.get(sid)?.rec.inflight?.id) || null;
  }

  async open(s: SessionRecord): Promise<{ previous: SessionRecord | null; queued: number }> {
    const { previous, queued } = await this.q.open(s.deviceKey, s.id, this.instanceId, this.sessionTimeoutMs);
    this.wakes.delete(s.deviceKey); // the device is here: its wake lock went with the lease
    this.movedTo.delete(s.deviceKey);
    let prev: SessionRecord | null = null;
    const at = previous.indexOf('@');
    const psid = at > 0 ? previous.slice(0, at) : '';
    const local = this.byDevice.get(s.deviceKey);
    if (local && local !== s.id) prev = this.drop(local)?.rec ?? null;
    else if (psid && previous.slice(at + 1) !== this.instanceId) this.bus.publish(this.store.key('ch', 'sup', previous.slice(at + 1)), { sid: psid });
    this.hold({ rec: s, infj: '', left: queued, poked: false, origins: [] }, Date.now());
    return { previous: prev, queued };
  }

  async load(sessionId: string, post = false): Promise<SessionRecord | null> {
    const h = this.held.get(sessionId);
    if (h) return h.rec;
    // Only a CPE's POST takes a session over; a timer of a session that moved on does nothing.
    return post ? this.ask(sessionId) : null;
  }

  apply(sessionId: string, expectSeq: number, w: SessionWrite): Promise<ApplyResult> {
    const h = this.held.get(sessionId);
    if (!h) return Promise.resolve({ kind: 'gone' });
    const run = h.busy.then(() => this.step(sessionId, expectSeq, w));
    h.busy = run.catch(() => undefined);
    return run;
  }

  private async step(sessionId: string, expectSeq: number, w: SessionWrite): Promise<ApplyResult> {
    const h = this.held.get(sessionId);
    if (!h) return { kind: 'gone' };
    const s = h.rec;
    if (s.seq !== expectSeq) return { kind: 'stale', current: s };
    const dk = s.deviceKey;
    const seq = s.seq + 1;
    let state: SessionRecord = { ...s, seq, lastPost: w.post ? seq : s.lastPost };
    let taken: QueuedRpc | null = null;
    if (w.take && s.inflight) {
      taken = parseQueued(h.infj);
      h.infj = '';
      state.inflight = null;
    }
    let ended = w.end;
    let queued = 0;
    let next: Extract<SessionInput, { kind: 'claimed' | 'queue-empty' }> | null = null;
    if (ended) {
      // Timed out, connection lost, shut down: RPCs still queued wake the device for a new session.
      queued = (await this.q.end(dk, false)).queued;
    } else if (w.next) {
      // The queue is looked at only when something may be in it (the count at open, or a work
      // signal since). With nothing there, a session that ends drops its lease before its last
      // look (lease-queue.ts), so an RPC queued meanwhile is either taken here or wakes the device.
      let claimed: QueuedRpc | null = null;
      let json = '';
      let more = 0;
      let afterEnd = false;
      if (h.left !== 0 || h.poked) {
        h.poked = false;
        do {
          if (this.countQueued) ({ json, left: more } = await this.q.popCount(dk));
          else json = await this.q.pop(dk);
        } while (json && !(claimed = this.claimable(json)));
        if (!claimed) h.left = 0;
      }
      if (!claimed && w.next === 'end') {
        json = (await this.q.end(dk, true)).json;
        while (json && !(claimed = this.claimable(json))) json = await this.q.pop(dk);
        if (claimed) {
          // The session goes on after its lease was dropped: it names it again.
          await this.q.setLease(dk, sessionId, this.instanceId, this.sessionTimeoutMs);
          h.leaseAt = Date.now();
          h.left = -1;
          afterEnd = true;
        }
      }
      if (claimed) {
        h.infj = json;
        tookFrom(h, claimed.origin);
        if (this.countQueued && !afterEnd) h.left = more;
        else if (h.left > 0) h.left--;
        state = {
          ...state,
          inflight: { id: claimed.id, method: claimed.rpc.method, origin: claimed.origin ?? '', linger: claimed.linger === true },
          rpcs: s.rpcs + 1,
        };
        next = { kind: 'claimed', rpc: claimed, more: this.countQueued ? more : 0 };
      } else {
        ended = w.next === 'end';
        next = { kind: 'queue-empty', ended };
      }
    }
    if (ended) this.drop(sessionId);
    else {
      h.rec = state;
      // A long session: the lease outlives each step by at least half the session timeout.
      const now = Date.now();
      if (now - h.leaseAt > this.sessionTimeoutMs / 2) {
        h.leaseAt = now;
        await this.q.setLease(dk, sessionId, this.instanceId, this.sessionTimeoutMs);
      }
    }
    return { kind: 'done', state, ended, taken, next, queued };
  }

  /** A popped RPC that can still be sent (readable, its caller may still wait); others are dropped. */
  private claimable(json: string): QueuedRpc | null {
    const q = parseQueued(json);
    if (!q || typeof q.rpc?.method !== 'string') return null;
    if (typeof q.deadline === 'number' && q.deadline + 2 * this.sessionTimeoutMs < Date.now()) return null;
    return q;
  }

  async enqueue(q: QueuedRpc, front: boolean): Promise<string | null> {
    // A caller's RPC for a device with no session takes the wake lock in the same round trip
    // (wakeLock()); the credentials RPCs, queued inside a session, have no caller here.
    const mine = q.origin === this.instanceId;
    const json = JSON.stringify(q);
    if (mine) this.mine.set(q.id, { dk: q.deviceKey, json }, { ttl: Math.max(0, q.deadline - Date.now()) + 2 * this.sessionTimeoutMs });
    this.mark(q.deviceKey);
    const { lease, woken } = await this.q.enqueue(q.deviceKey, json, front, mine ? this.instanceId : '', this.wakeMs);
    const at = lease.indexOf('@');
    if (at <= 0) {
      // A lock this call took stays for the wakeLock() of its own wake-up, even if another call
      // of this instance finds it taken meanwhile.
      if (mine && (woken || !this.wakes.has(q.deviceKey))) this.wakes.set(q.deviceKey, woken);
      return null;
    }
    return lease.slice(at + 1) || null;
  }

  async unqueue(id: string): Promise<boolean> {
    const m = this.mine.get(id);
    if (!m) return this.store.unqueueRpc(id);
    const removed = await this.q.unqueue(m.dk, m.json);
    if (removed) this.mine.delete(id);
    return removed;
  }

  async restore(): Promise<QueuedRpc[]> {
    return []; // a dead instance's queue is taken over by Cluster, not restored per instance
  }

  queuedCount(): number {
    return 0;
  }

  async deviceState(deviceKey: string): Promise<{ inSession: boolean; queuedRpcs: number }> {
    const { lease, queued } = await this.q.state(deviceKey);
    return { inSession: lease.indexOf('@') > 0, queuedRpcs: queued };
  }

  async wakeLock(deviceKey: string): Promise<boolean> {
    const taken = this.wakes.get(deviceKey);
    if (taken !== undefined) {
      this.wakes.delete(deviceKey);
      return taken;
    }
    return this.q.wakeLock(deviceKey, this.instanceId, this.wakeMs);
  }

  forget(id: string): void {
    this.mine.delete(id);
  }

  relayResult(origin: string, m: RpcResultMessage): void {
    this.bus.publish(this.store.key('ch', 'res', origin), m);
  }

  notifyWork(holder: string, deviceKey: string, from = this.instanceId): void {
    this.bus.publish(this.store.key('ch', 'work', holder), { deviceKey, from });
  }

  /**
   * From what the session already knows (its claims' origins, work signals' senders): no Redis
   * command. A session moved here keeps what it knew, and the instance it moved from counts as
   * another one now.
   */
  othersMayFollow(deviceKey: string): boolean {
    const sid = this.byDevice.get(deviceKey);
    const h = sid ? this.held.get(sid) : undefined;
    return h?.origins.some((o) => o !== this.instanceId) === true;
  }

  // ------------------------------------------------------------------ sessions held here

  private hold(x: Handed, leaseAt: number): Held {
    const h: Held = { ...x, origins: Array.isArray(x.origins) ? x.origins.filter((o) => typeof o === 'string') : [], leaseAt, busy: Promise.resolve() };
    this.held.set(x.rec.id, h);
    this.byDevice.set(x.rec.deviceKey, x.rec.id);
    return h;
  }

  private drop(sid: string): Held | null {
    const h = this.held.get(sid);
    if (!h) return null;
    this.held.delete(sid);
    if (this.byDevice.get(h.rec.deviceKey) === sid) this.byDevice.delete(h.rec.deviceKey);
    return h;
  }

  /** An RPC was queued for a device: its session held here looks at the queue at its next turn. */
  private mark(deviceKey: string): void {
    const sid = this.byDevice.get(deviceKey);
    const h = sid ? this.held.get(sid) : undefined;
    if (h) h.poked = true;
  }

  private onWork(deviceKey: string, from: string): void {
    const sid = this.byDevice.get(deviceKey);
    const h = sid ? this.held.get(sid) : undefined;
    if (!h) {
      // Handed over since the sender read the lease: the work follows the session.
      const to = this.movedTo.get(deviceKey);
      if (to) this.notifyWork(to, deviceKey, from);
      return;
    }
    h.poked = true;
    // Signals cross the bus only from another instance (its own work pokes the session in place).
    tookFrom(h, from);
    this.signals?.work(deviceKey);
  }

  /** A new Inform of the device on another instance replaced a session held here. */
  private onSuperseded(sid: string): void {
    const h = this.held.get(sid);
    if (!h) return;
    void h.busy.then(() => {
      const gone = this.drop(sid);
      if (gone) this.signals?.superseded?.(gone.rec);
    });
  }

  /**
   * A takeover declared `dead` stopped (Cluster). RPCs a caller here waits for that a session
   * of that instance had claimed (gone from the queue; the device's lease names a session there)
   * are lost with it: their callers hear it now rather than at the deadline plus two session
   * timeouts. One pipelined round trip per waiting RPC, only on a takeover.
   */
  private async onInstanceDead(dead: string): Promise<void> {
    const waiting = [...this.mine.entries()];
    if (waiting.length === 0) return;
    const p = this.store.redis.pipeline();
    for (const [, m] of waiting) p.lpos(this.q.queue(m.dk), m.json).get(this.q.lease(m.dk));
    const r = (await p.exec()) ?? [];
    waiting.forEach(([id, m], i) => {
      const pos = r[2 * i]?.[1];
      const lease = String(r[2 * i + 1]?.[1] ?? '');
      const at = lease.indexOf('@');
      if (pos !== null || at <= 0 || lease.slice(at + 1) !== dead) return;
      const rpc = parseQueued(m.json);
      const method = rpc?.rpc.method ?? 'GetParameterValues';
      this.mine.delete(id);
      this.signals?.result({
        id,
        error: {
          reason: 'session-ended',
          message: `the proxy instance ${dead} serving the CWMP session of device ${m.dk} stopped with ${method} in flight; it may have been carried out`,
          detail: { lost: 'shutdown', method },
        },
      });
    });
  }

  // ------------------------------------------------------------------ handover

  /** A POST of a session this instance does not hold: ask the one holding it. */
  private ask(sid: string): Promise<SessionRecord | null> {
    const pending = this.asking.get(sid);
    if (pending) return pending;
    if (this.unknown.has(sid)) return Promise.resolve(null);
    const p = new Promise<Handed | null>((resolve) => {
      const timer = setTimeout(() => done(null), this.handoverWaitMs);
      const done = (h: Handed | null): void => {
        clearTimeout(timer);
        this.answers.delete(sid);
        resolve(h);
      };
      this.answers.set(sid, done);
      this.bus.publish(this.store.key('ch', 'hand'), { sid, to: this.instanceId });
    }).then(async (x) => {
      this.asking.delete(sid);
      if (!x) this.unknown.set(sid, true);
      if (!x || this.held.has(sid)) return this.held.get(sid)?.rec ?? null;
      const local = this.byDevice.get(x.rec.deviceKey);
      if (local) this.drop(local); // an older session of the device held here is over
      this.movedTo.delete(x.rec.deviceKey);
      this.hold(x, Date.now());
      await this.q.setLease(x.rec.deviceKey, sid, this.instanceId, this.sessionTimeoutMs);
      return x.rec;
    });
    this.asking.set(sid, p);
    return p;
  }

  /** Another instance got a POST of a session: the holder hands it over once its step in progress is written. */
  private async onAsked(sid: string, to: string): Promise<void> {
    if (to === this.instanceId) return;
    const h = this.held.get(sid);
    if (!h) return;
    await h.busy;
    const gone = this.drop(sid);
    if (!gone) return;
    this.movedTo.set(gone.rec.deviceKey, to);
    this.signals?.moved?.(sid);
    const session: Handed = { rec: gone.rec, infj: gone.infj, left: gone.left, poked: gone.poked, origins: gone.origins };
    this.bus.publish(this.store.key('ch', 'took', to), { sid, session });
  }

  private onHanded(sid: string, session: Handed | undefined): void {
    const answer = this.answers.get(sid);
    if (answer) return answer(session && typeof session.rec?.id === 'string' ? session : null);
    // Too late: the POST was answered as outside a session. Its in-flight RPC is lost.
    const rpc = session?.infj ? parseQueued(session.infj) : null;
    if (rpc?.origin)
      this.relayResult(rpc.origin, {
        id: rpc.id,
        error: {
          reason: 'session-ended',
          message: `the CWMP session of device ${rpc.deviceKey} was lost moving between proxy instances with ${rpc.rpc.method} in flight`,
          detail: { lost: 'new-session', method: rpc.rpc.method },
        },
      });
  }
}

/** Notes an instance whose work the session took; the credentials RPCs' origins are no instance. */
function tookFrom(h: Held, origin: string | undefined): void {
  if (origin === undefined || origin === CR_CREDENTIALS_ORIGIN || origin === CPE_CREDENTIALS_ORIGIN) return;
  if (!h.origins.includes(origin)) h.origins.push(origin);
}

function parseQueued(json: string): QueuedRpc | null {
  if (!json) return null;
  try {
    return JSON.parse(json) as QueuedRpc;
  } catch {
    return null;
  }
}
