/**
 * The USP agent side's Coordination on Redis, for several instances on one store:
 * - once-keys are SET NX PX keys, so a timer every instance arms acts once;
 * - instance numbers of new Subscription/Request rows come from one HINCRBY per agent and table;
 * - Records for a WebSocket controller connected elsewhere, NotifyResp acks and newly registered
 *   agents travel over the ClusterBus (at-most-once: a lost relay is a lost Notify attempt, which
 *   NotifRetry covers);
 * - USP requests in progress are kept in a hash per instance, so that whoever takes over a dead
 *   instance answers them (Cluster.takeOver). A request is written there once it has lasted
 *   TRACK_AFTER_MS (one HSET for all the requests started in that time): most answers come sooner
 *   and cost Redis nothing, at the price of no takeover answer for a request that reached an
 *   instance less than TRACK_AFTER_MS before it died. A request gets at most one answer: its
 *   entry is deleted before its answer is handed to the MTP (requestAnswered), and a takeover
 *   claims a dead instance's entries atomically (docs/scaling.md "One answer per request");
 * - row writes are announced once stored; every other instance re-reads the agent's rows then.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../app/log.js';
import type { Coordination, CoordinationEvents, RelayedRecord } from '../usp/agent/coordination.js';
import type { ClusterBus } from './bus.js';
import type { ClusterStore } from './types.js';

/** One USP request in progress, as kept in `P ureq:<instance>`. */
export interface TrackedRequest {
  agentEid: string;
  controllerEid: string;
  msgId: string;
}

type ReserveInstance = (key: string, tablePath: string, atLeast: string) => Promise<number>;

/** How long a USP request runs before it is written to `P ureq:<instance>` (see the header). */
export const TRACK_AFTER_MS = 20;

export class RedisCoordination extends EventEmitter<CoordinationEvents> implements Coordination {
  private readonly reserve: ReserveInstance;
  /** Own row writes in flight per agent: a reload of that agent's rows waits for them. */
  private readonly writing = new Map<string, Promise<void>>();
  /** Own row writes started per agent: a reload's snapshot is stale if this moved while it read. */
  private readonly writeGen = new Map<string, number>();
  /** Reloads per agent run one at a time; a change announced meanwhile asks for one more. */
  private readonly reloading = new Map<string, { again: boolean; done: Promise<void> }>();
  /** Requests are tracked from start() on: until then `ureq:<id>` holds what a previous run under this id left. */
  private tracking = false;
  /** Requests started and not yet written to `ureq:<id>` (field -> entry), written together by one timer. */
  private readonly unwritten = new Map<string, string>();
  private trackTimer: NodeJS.Timeout | null = null;
  private trackWrite: Promise<void> = Promise.resolve();
  /** Requests written to `ureq:<id>` and not answered yet (field -> `lapses` when written). */
  private readonly written = new Map<string, number>();
  /** Times this instance's liveness key was found lapsed (Cluster.beat): a takeover may have claimed what was written before. */
  private lapses = 0;
  /** Until then no takeover of this instance can have begun (the liveness key renewed recently: livenessRenewed). */
  private trustedUntil = 0;

  constructor(
    private readonly store: ClusterStore,
    private readonly bus: ClusterBus,
    private readonly log: Logger,
  ) {
    super();
    // Instance numbers of new Subscription/Request rows: unique across instances, never reused.
    const redis = store.redis as typeof store.redis & { cupReserveInstance?: ReserveInstance };
    if (!redis.cupReserveInstance) {
      redis.defineCommand('cupReserveInstance', {
        numberOfKeys: 1,
        lua: `local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local floor = tonumber(ARGV[2])
if n < floor then redis.call('HSET', KEYS[1], ARGV[1], floor); n = floor end
return n`,
      });
    }
    this.reserve = redis.cupReserveInstance!.bind(redis);
  }

  get instanceId(): string {
    return this.store.owner;
  }

  private k(...parts: string[]): string {
    return this.store.key(...parts);
  }

  /** Subscribes to the other instances' signals and starts tracking USP requests (Cluster.start). */
  async start(): Promise<void> {
    const me = this.instanceId;
    this.tracking = true;
    await this.bus.on(this.k('ch', 'out'), (m) => {
      if (m.from === me || typeof m.bytes !== 'string') return;
      const msgType = typeof m.msgType === 'string' ? m.msgType : 'unknown';
      this.emit('relayedRecord', { agentEid: String(m.agentEid), controllerEid: String(m.controllerEid), bytes: Buffer.from(m.bytes, 'base64'), msgType });
    });
    await this.bus.on(this.k('ch', 'ack'), (m) => {
      if (m.from !== me && typeof m.msgId === 'string')
        this.emit('notifyResp', { agentEid: String(m.agentEid), controllerEid: String(m.controllerEid), msgId: m.msgId });
    });
    await this.bus.on(this.k('ch', 'agent'), (m) => {
      if (m.from !== me && typeof m.endpointId === 'string') this.emit('agentAdded', { endpointId: m.endpointId });
    });
    await this.bus.on(this.k('ch', 'la'), (m) => {
      if (m.from === me || typeof m.agentEid !== 'string') return;
      void this.reloadAgent(m.agentEid).catch((e: Error) => this.log.warn({ err: e.message }, 'reloading LocalAgent rows failed'));
    });
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return (await this.store.redis.set(this.k('once', key), this.instanceId, 'PX', ttlMs, 'NX')) === 'OK';
  }

  allocateInstance(agentEid: string, tablePath: string, atLeast: number): Promise<number> {
    return this.reserve(this.k('inum', agentEid), tablePath, String(atLeast)).then(Number);
  }

  relayRecord(r: RelayedRecord): boolean {
    const bytes = Buffer.from(r.bytes).toString('base64');
    this.bus.publish(this.k('ch', 'out'), { from: this.instanceId, agentEid: r.agentEid, controllerEid: r.controllerEid, bytes, msgType: r.msgType });
    return true;
  }

  requestStarted(agentEid: string, controllerEid: string, msgId: string): void {
    if (!this.tracking) return;
    this.unwritten.set(`${agentEid}|${controllerEid}|${msgId}`, JSON.stringify({ agentEid, controllerEid, msgId } satisfies TrackedRequest));
    if (!this.trackTimer) {
      this.trackTimer = setTimeout(() => void this.writeTracked(), TRACK_AFTER_MS);
      this.trackTimer.unref();
    }
  }

  /**
   * Called before the answer is handed to the MTP. The entry's HDEL is written to Redis at once
   * and the answer leaves with the MTP's next write, so a kill in between costs the answer (the
   * controller's timeout), never a second one from the takeover. While the liveness key is fresh
   * and has not lapsed since the entry was written, no takeover can hold it: the answer goes
   * without waiting, provided the HDEL did reach the socket (not queued in the client behind a
   * full socket or a reconnection, where a stall could let the answer out first and the takeover
   * claim the entry meanwhile). Otherwise (this instance stalled or lost Redis, and may have been
   * declared dead) the HDEL's reply decides: an entry a takeover claimed was answered there (7003).
   */
  requestAnswered(agentEid: string, controllerEid: string, msgId: string): boolean | Promise<boolean> {
    if (!this.tracking) return true;
    const field = `${agentEid}|${controllerEid}|${msgId}`;
    if (this.unwritten.delete(field)) return true; // never written: no takeover knows of it
    const lapses = this.written.get(field);
    this.written.delete(field);
    const redis = this.store.redis;
    const del = redis.hdel(this.k('ureq', this.instanceId), field);
    if (lapses === this.lapses && Date.now() < this.trustedUntil && redis.status === 'ready' && redis.stream?.writableLength === 0) {
      void del.catch(() => undefined);
      return true;
    }
    // The lock is taken before the entries are claimed (Cluster.takeOver), so it is there when the HDEL found nothing.
    return Promise.all([del, redis.exists(this.k('takeover', this.instanceId))]).then(
      ([n, lock]) => !(n === 0 && lock === 1),
      () => true, // Redis unreachable from here: an answer rather than none
    );
  }

  /**
   * This instance's liveness key was renewed at `at` for ttlMs (Cluster.beat); `lapsed`: it had
   * expired before, so another instance may have taken over what was written until now.
   */
  livenessRenewed(at: number, ttlMs: number, lapsed: boolean): void {
    if (lapsed) this.lapses++;
    // Half the TTL: no takeover begins before the key expires and another instance's tick sees it.
    this.trustedUntil = at + ttlMs / 2;
  }

  /** Writes the requests still running (tests: call it to see them in Redis at once). */
  writeTracked(): Promise<void> {
    if (this.trackTimer) clearTimeout(this.trackTimer);
    this.trackTimer = null;
    if (this.unwritten.size > 0) {
      const fields = new Map(this.unwritten);
      this.unwritten.clear();
      for (const f of fields.keys()) this.written.set(f, this.lapses);
      // Sent before any later HDEL on the same connection: an answer never overtakes its entry.
      this.trackWrite = this.store.redis.hset(this.k('ureq', this.instanceId), fields).then(
        () => undefined,
        () => undefined,
      );
    }
    return this.trackWrite;
  }

  async resolveAgent(endpointId: string): Promise<boolean> {
    return (await this.store.getDeviceByEndpointId(endpointId)) !== null;
  }

  relayNotifyResp(agentEid: string, controllerEid: string, msgId: string): void {
    this.bus.publish(this.k('ch', 'ack'), { from: this.instanceId, agentEid, controllerEid, msgId });
  }

  announceAgent(endpointId: string): void {
    this.bus.publish(this.k('ch', 'agent'), { from: this.instanceId, endpointId });
  }

  rowsWritten(agentEid: string, write: Promise<void>): void {
    // Writes in flight per agent: a reload of that agent's rows waits for them, or it could read
    // the store just before this instance's own new row lands and drop it from the tree.
    const done = Promise.all([this.writing.get(agentEid), write]).then(
      () => undefined,
      () => undefined,
    );
    this.writing.set(agentEid, done);
    this.writeGen.set(agentEid, (this.writeGen.get(agentEid) ?? 0) + 1);
    void done.then(() => {
      if (this.writing.get(agentEid) === done) this.writing.delete(agentEid);
      this.bus.publish(this.k('ch', 'la'), { from: this.instanceId, agentEid });
    });
  }

  /**
   * Re-seeds the agent's rows from Redis (emits rowsChanged). A snapshot is applied only if none
   * of this instance's own writes for the agent was in flight while it was read: one that had not
   * landed yet would vanish from this instance's tree (and no announcement of its own brings it back).
   */
  reloadAgent(agentEid: string): Promise<void> {
    const running = this.reloading.get(agentEid);
    if (running) {
      running.again = true;
      return running.done;
    }
    const state = { again: true, done: Promise.resolve() };
    state.done = (async () => {
      try {
        while (state.again) {
          state.again = false;
          await this.reloadOnce(agentEid);
        }
      } finally {
        this.reloading.delete(agentEid);
      }
    })();
    this.reloading.set(agentEid, state);
    return state.done;
  }

  private async reloadOnce(agentEid: string): Promise<void> {
    for (;;) {
      const inFlight = this.writing.get(agentEid);
      if (inFlight) {
        await inFlight;
        continue;
      }
      const gen = this.writeGen.get(agentEid) ?? 0;
      const [subscriptions, requests] = await Promise.all([this.store.listSubscriptions(agentEid), this.store.listRequests(agentEid)]);
      if ((this.writeGen.get(agentEid) ?? 0) !== gen) continue;
      this.emit('rowsChanged', { agentEid, subscriptions, requests });
      return;
    }
  }
}
