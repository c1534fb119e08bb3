/**
 * SessionState on Redis, for several instances behind one load balancer: every session and
 * queue is in Redis (scripts.ts), so any instance can serve any POST of any session and the
 * balancer needs no stickiness. A session this instance wrote last is kept in a small cache: with
 * a sticky balancer a step then costs one round trip; a cached session that another instance has
 * moved on is refused by the script, which returns the current one (two round trips, as a load).
 *
 * Signals between instances go over the ClusterBus: an outcome to the instance whose caller waits
 * (`P ch:res:<instance>`), and work for a lingering session to the instance serving it (`P ch:work:<instance>`).
 */
import { LRUCache } from 'lru-cache';
import type { QueuedRpc } from '../store/types.js';
import type { Inflight, SessionRecord, SessionWrite } from '../cwmp/session-machine.js';
import type { ApplyResult, RpcResultMessage, SessionSignals, SessionState } from '../cwmp/session-state.js';
import type { AcsRequest, CwmpVersion } from '../cwmp/types.js';
import type { ClusterBus } from './bus.js';
import { SESSION_FIELDS, SessionScripts } from './scripts.js';
import type { ClusterStore } from './types.js';

export class RedisSessionState implements SessionState {
  readonly shared = true;
  private readonly scripts: SessionScripts;
  private readonly cache: LRUCache<string, SessionRecord>;
  /** Wake locks taken (true) or found taken (false) by enqueue(), for the wakeLock() that follows it. */
  private readonly wakes: LRUCache<string, boolean>;
  private readonly wakeMs: number;
  /** RPCs this instance claimed, as claimed: taking one back needs no read of its record. */
  private readonly claimed: LRUCache<string, QueuedRpc>;

  constructor(
    private readonly store: ClusterStore,
    private readonly bus: ClusterBus,
    readonly instanceId: string,
    private readonly sessionTimeoutMs: number,
    /** acs.holdRequests: the only reader of how many RPCs are still queued after a claim. */
    private readonly countQueued = false,
  ) {
    this.scripts = new SessionScripts(store.redis, store.key(''));
    this.cache = new LRUCache({ max: 100_000, ttl: 2 * sessionTimeoutMs });
    this.wakeMs = Math.max(1000, Math.min(10_000, sessionTimeoutMs));
    this.wakes = new LRUCache({ max: 10_000, ttl: this.wakeMs });
    this.claimed = new LRUCache({ max: 10_000, ttl: 2 * sessionTimeoutMs });
  }

  async start(signals: SessionSignals): Promise<void> {
    await this.bus.on(this.store.key('ch', 'res', this.instanceId), (m) => signals.result(m as unknown as RpcResultMessage));
    await this.bus.on(this.store.key('ch', 'work', this.instanceId), (m) => signals.work(String(m.deviceKey)));
  }

  async close(): Promise<void> {
    this.cache.clear();
  }

  async open(s: SessionRecord): Promise<{ previous: SessionRecord | null; queued: number }> {
    const r = await this.scripts.open(s.id, this.instanceId, this.sessionTimeoutMs, s.deviceKey, s.version, s.modelKey, s.endpointId);
    this.cache.set(s.id, s);
    this.wakes.delete(s.deviceKey); // the device is here: the script released its wake lock
    const [queued, prevId] = r;
    if (!prevId) return { previous: null, queued: Number(queued) };
    this.cache.delete(prevId);
    return { previous: record(prevId, r.slice(3)), queued: Number(queued) };
  }

  async load(sessionId: string): Promise<SessionRecord | null> {
    const cached = this.cache.get(sessionId);
    if (cached) return cached;
    const h = await this.store.redis.hmget(this.store.key('s', sessionId), ...SESSION_FIELDS);
    if (!h[0]) return null;
    const s = record(
      sessionId,
      h.map((x) => x ?? ''),
    );
    this.cache.set(sessionId, s);
    return s;
  }

  async apply(sessionId: string, expectSeq: number, w: SessionWrite): Promise<ApplyResult> {
    // The RPC in flight at expectSeq is the one of the cached record at that seq (a session at
    // another seq is not written at all).
    const cached = w.take ? this.cache.get(sessionId) : undefined;
    const inflight = cached?.seq === expectSeq ? cached.inflight?.id : undefined;
    const known = inflight !== undefined && this.claimed.has(inflight) ? inflight : '';
    const r = await this.scripts.apply(
      sessionId,
      this.instanceId,
      this.sessionTimeoutMs,
      expectSeq,
      w.post,
      w.take,
      w.next ?? '',
      w.end,
      known,
      this.countQueued,
    );
    if (r[0] === 'gone') {
      this.cache.delete(sessionId);
      return { kind: 'gone' };
    }
    if (r[0] === 'stale') {
      const current = record(sessionId, r.slice(1));
      this.cache.set(sessionId, current);
      return { kind: 'stale', current };
    }
    // After a claim, more and queued are -1 unless counted (countQueued): 0 for the machine then,
    // which reads them for cwmp:HoldRequests only (and a claim never ends the session).
    const [, ended, takenJson, nextKind, nextJson, more, queued] = r as [string, string, string, string, string, string, string];
    const state = record(sessionId, r.slice(7));
    if (ended === '1') this.cache.delete(sessionId);
    else this.cache.set(sessionId, state);
    let taken: QueuedRpc | null = null;
    if (w.take) {
      taken = takenJson ? parseQueued(takenJson) : known ? (this.claimed.get(known) ?? null) : null;
      if (known) this.claimed.delete(known);
    }
    const claimedRpc = nextKind === 'claimed' ? parseQueued(nextJson) : null;
    if (claimedRpc && claimedRpc.id === state.inflight?.id) this.claimed.set(claimedRpc.id, claimedRpc);
    return {
      kind: 'done',
      state,
      ended: ended === '1',
      taken,
      next:
        nextKind === 'claimed'
          ? { kind: 'claimed', rpc: claimedRpc!, more: Math.max(0, Number(more)) }
          : nextKind === 'empty'
            ? { kind: 'queue-empty', ended: ended === '1' }
            : null,
      queued: Math.max(0, Number(queued)),
    };
  }

  async enqueue(q: QueuedRpc, front: boolean): Promise<string | null> {
    // A caller's RPC for a device with no session takes the wake lock in the same round trip
    // (wakeLock()); the credentials RPCs, queued inside a session, have no caller here.
    const mine = q.origin === this.instanceId;
    const ttl = Math.max(0, q.deadline - Date.now()) + 2 * this.sessionTimeoutMs;
    const { lease, woken } = await this.scripts.enqueue(q.id, q.deviceKey, JSON.stringify(q), front, mine ? this.instanceId : '', ttl, mine ? this.wakeMs : 0);
    if (!lease) {
      // A lock this call took stays for the wakeLock() of its own wake-up, even if another call
      // of this instance finds it taken meanwhile.
      if (mine && (woken || !this.wakes.has(q.deviceKey))) this.wakes.set(q.deviceKey, woken);
      return null;
    }
    const at = lease.indexOf('@');
    return at >= 0 ? lease.slice(at + 1) || null : null;
  }

  unqueue(id: string): Promise<boolean> {
    return this.store.unqueueRpc(id);
  }

  async restore(): Promise<QueuedRpc[]> {
    return []; // a dead instance's queue is taken over by Cluster, not restored per instance
  }

  queuedCount(): number {
    return 0;
  }

  async deviceState(deviceKey: string): Promise<{ inSession: boolean; queuedRpcs: number }> {
    const r = await this.store.redis.multi().exists(this.store.key('lease', deviceKey)).llen(this.store.key('q', deviceKey)).exec();
    return { inSession: r?.[0]?.[1] === 1, queuedRpcs: Number(r?.[1]?.[1] ?? 0) };
  }

  async wakeLock(deviceKey: string): Promise<boolean> {
    const taken = this.wakes.get(deviceKey);
    if (taken !== undefined) {
      this.wakes.delete(deviceKey);
      return taken;
    }
    return (await this.store.redis.set(this.store.key('wake', deviceKey), this.instanceId, 'PX', this.wakeMs, 'NX')) === 'OK';
  }

  forget(_id: string): void {
    // Nothing kept per caller: a takeover finds a dead instance's queued RPCs by their origin.
  }

  relayResult(origin: string, m: RpcResultMessage): void {
    this.bus.publish(this.store.key('ch', 'res', origin), m);
  }

  notifyWork(holder: string, deviceKey: string): void {
    this.bus.publish(this.store.key('ch', 'work', holder), { deviceKey });
  }
}

/** A session from its hash fields, in SESSION_FIELDS order. */
function record(id: string, h: readonly string[]): SessionRecord {
  const [dk, v, mk, ek, inf, info, infm, infl, n, seq, lp] = h as string[];
  const inflight: Inflight | null = inf ? { id: inf, method: infm as AcsRequest['method'], origin: info ?? '', linger: infl === '1' } : null;
  return {
    id,
    deviceKey: dk ?? '',
    version: (v || '1-0') as CwmpVersion,
    modelKey: mk ?? '',
    endpointId: ek ?? '',
    inflight,
    rpcs: Number(n) || 0,
    seq: Number(seq) || 0,
    lastPost: Number(lp) || 0,
  };
}

function parseQueued(json: string): QueuedRpc | null {
  try {
    return JSON.parse(json) as QueuedRpc;
  } catch {
    return null;
  }
}
