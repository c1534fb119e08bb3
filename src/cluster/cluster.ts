/**
 * Several proxy instances on one Redis (README "Scaling out"): membership, takeover of a dead
 * instance's work, and the few cross-instance signals the single-instance parts need.
 *
 * - Membership: each instance renews `P inst:<id>` (PX cluster.instanceTtlMs) every
 *   cluster.heartbeatMs and is listed in `P instances`. An instance whose key has expired is
 *   dead; the first live instance to win `P takeover:<id>` (SET NX) takes over its work:
 *     queued RPCs its callers waited for and no session has sent yet are dropped (their USP
 *     request is answered below); USP requests it had not answered get an Error (7003) from the
 *     agent, sent over the broker; its unanswered send_resp Notifies are retried from here; its
 *     running async commands (Request rows) finish here (Reboot when the device boots, others
 *     with 7022, as after a restart).
 * - Signals (ClusterBus): device events for commands waiting on other instances; Subscription and
 *   Request row changes, so every instance's Device.LocalAgent. tree matches the store; and one
 *   claim per timer slot so that Periodic! and TimeToLive act once across instances.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Config } from '../app/config.js';
import type { Logger } from '../app/log.js';
import type { Store } from '../store/types.js';
import type { Inform } from '../cwmp/types.js';
import type { UspEndpoint } from '../usp/agent/endpoint.js';
import type { LocalAgent } from '../usp/agent/local-agent.js';
import type { Notifier } from '../usp/agent/notify.js';
import { errorMsg } from '../usp/codec/record.js';
import type { DeviceEvent } from '../interworking/commands.js';
import { ClusterBus } from './bus.js';
import type { RemoteDeviceEvent } from './session-engine.js';
import type { ClusterStore } from './types.js';

export interface ClusterParts {
  endpoint: UspEndpoint;
  notifier: Notifier;
  localAgent: LocalAgent;
  /** CwmpCommandRunner.deviceEvent: commands waiting here for a device that informed elsewhere. */
  deviceEvent(e: DeviceEvent): void;
  /** AgentSide.deviceSeen: an agent registered on another instance appears on this one's MTPs too. */
  addAgent(endpointId: string): void;
  /** Finishes async commands whose instance stopped (Proxy: Reboot awaits the boot, others 7022). */
  finishOrphanRequests(rows: { agentEid: string; path: string; values: Record<string, string> }[]): Promise<void>;
}

interface TrackedRequest {
  agentEid: string;
  controllerEid: string;
  msgId: string;
}

export class Cluster {
  readonly bus: ClusterBus;
  private parts: ClusterParts | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private stopped = false;
  readonly takenOver: string[] = [];
  private readonly writing = new Map<string, Promise<void>>();
  /** Own row writes started per agent: a reload's snapshot is stale if this moved while it read. */
  private readonly writeGen = new Map<string, number>();
  /** Reloads per agent run one at a time; a change announced meanwhile asks for one more. */
  private readonly reloading = new Map<string, { again: boolean; done: Promise<void> }>();
  /** No takeover before this time (epoch ms): see tick(). */
  private graceUntil = 0;
  private beaten = false;
  private outOfTouch = false;

  constructor(
    private readonly store: ClusterStore,
    private readonly config: Config['cluster'],
    private readonly log: Logger,
  ) {
    this.bus = new ClusterBus(store.redis, log);
  }

  /** cluster.instanceId, or one made unique per process. */
  static instanceIdOf(config: Config['cluster']): string {
    return config.instanceId || `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  get instanceId(): string {
    return this.store.owner;
  }

  private k(...parts: string[]): string {
    return this.store.key(...parts);
  }

  /**
   * The store the USP side writes through: Subscription and Request row changes are announced
   * to the other instances once stored. (A prototype-delegating view: every other method and
   * field is the store's own.)
   */
  announcingStore(): Store {
    const base = this.store;
    // Writes in flight per agent: a reload of that agent's rows waits for them, or it could
    // read the store just before this instance's own new row lands and drop it from the tree.
    const write = (agentEid: string, p: Promise<void>): Promise<void> => {
      const done = Promise.all([this.writing.get(agentEid), p]).then(
        () => undefined,
        () => undefined,
      );
      this.writing.set(agentEid, done);
      this.writeGen.set(agentEid, (this.writeGen.get(agentEid) ?? 0) + 1);
      void done.then(() => {
        if (this.writing.get(agentEid) === done) this.writing.delete(agentEid);
        this.bus.publish(this.k('ch', 'la'), { from: this.instanceId, agentEid });
      });
      return p;
    };
    const view = Object.create(base) as Store;
    view.putSubscription = (a, i, v) => write(a, base.putSubscription(a, i, v));
    view.deleteSubscription = (a, i) => write(a, base.deleteSubscription(a, i));
    view.putRequest = (a, i, v) => write(a, base.putRequest(a, i, v));
    view.deleteRequest = (a, i) => write(a, base.deleteRequest(a, i));
    return view;
  }

  async start(parts: ClusterParts): Promise<void> {
    this.parts = parts;
    const me = this.instanceId;
    if ((await this.store.redis.exists(this.k('inst', me))) === 1) {
      throw new Error(`cluster.instanceId "${me}" is in use by a running instance (its liveness key exists in Redis); give each instance its own id`);
    }
    await this.bus.on(this.k('ch', 'dev'), (m) => this.onRemoteDeviceEvent(m as unknown as RemoteDeviceEvent));
    await this.bus.on(
      this.k('ch', 'la'),
      (m) => void this.onRowsChanged(m).catch((e: Error) => this.log.warn({ err: e.message }, 'reloading LocalAgent rows failed')),
    );
    await this.bus.on(this.k('ch', 'ack'), (m) => {
      if (m.from !== me && typeof m.msgId === 'string') parts.notifier.acknowledged(String(m.agentEid), String(m.controllerEid), m.msgId, true);
    });
    parts.notifier.relayAck = (agentEid, controllerEid, msgId) => this.bus.publish(this.k('ch', 'ack'), { from: me, agentEid, controllerEid, msgId });
    // Instance numbers of new Subscription/Request rows: unique across instances, never reused.
    if (!('cupReserveInstance' in this.store.redis)) {
      this.store.redis.defineCommand('cupReserveInstance', {
        numberOfKeys: 1,
        lua: `local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local floor = tonumber(ARGV[2])
if n < floor then redis.call('HSET', KEYS[1], ARGV[1], floor); n = floor end
return n`,
      });
    }
    const reserve = (this.store.redis as unknown as Record<string, (...a: string[]) => Promise<number>>).cupReserveInstance!.bind(this.store.redis);
    parts.localAgent.instanceAllocator = async (agentEid, tablePath, atLeast) => Number(await reserve(this.k('inum', agentEid), tablePath, String(atLeast)));
    parts.notifier.claim = async (key, ttlMs) => (await this.store.redis.set(this.k('once', key), me, 'PX', ttlMs, 'NX')) === 'OK';
    // Records for a WebSocket controller connected to another instance (Notify of an event seen here).
    await this.bus.on(this.k('ch', 'out'), (m) => {
      if (m.from === me || typeof m.bytes !== 'string') return;
      void parts.endpoint.deliverRelayed(String(m.agentEid), String(m.controllerEid), Buffer.from(m.bytes, 'base64'));
    });
    parts.endpoint.relay = (agentEid, controllerEid, bytes) =>
      this.bus.publish(this.k('ch', 'out'), { from: me, agentEid, controllerEid, bytes: Buffer.from(bytes).toString('base64') });
    // Agents registered elsewhere: on this instance's MTPs too (WebSocket paths, Connect Records).
    await this.bus.on(this.k('ch', 'agent'), (m) => {
      if (m.from !== me && typeof m.endpointId === 'string') parts.addAgent(m.endpointId);
    });
    parts.endpoint.resolveAgent = async (eid) => (await this.store.getDeviceByEndpointId(eid)) !== null;
    parts.endpoint.tracker = {
      begin: (agentEid, controllerEid, msgId) =>
        void this.store.redis
          .hset(this.k('ureq', me), `${agentEid}|${controllerEid}|${msgId}`, JSON.stringify({ agentEid, controllerEid, msgId } satisfies TrackedRequest))
          .catch(() => undefined),
      end: (agentEid, controllerEid, msgId) => void this.store.redis.hdel(this.k('ureq', me), `${agentEid}|${controllerEid}|${msgId}`).catch(() => undefined),
    };
    // A previous run under the same id left work behind (kill -9 with a fixed instanceId).
    await this.takeOver(me, true);
    await this.beat();
    this.timer = setInterval(() => void this.tick(), this.config.heartbeatMs);
    this.timer.unref();
    this.log.info({ instanceId: me }, 'cluster member up');
  }

  /** Leaves at once: the liveness key goes, so the others take over what is left right away. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.store.redis
      .multi()
      .del(this.k('inst', this.instanceId))
      .exec()
      .catch(() => undefined);
    await this.bus.close();
  }

  /** A device's agent appeared on this instance (its first Inform here): the others add it too. */
  agentAdded(endpointId: string): void {
    this.bus.publish(this.k('ch', 'agent'), { from: this.instanceId, endpointId });
  }

  /** One Digest nonce secret for all instances (the first instance makes it), so any instance accepts any nonce. */
  async sharedNonceSecret(): Promise<Buffer> {
    const key = this.k('acs', 'nonce-secret');
    await this.store.redis.set(key, randomBytes(32).toString('base64'), 'NX');
    const v = await this.store.redis.get(key);
    return Buffer.from(v ?? '', 'base64');
  }

  /** The live instances (liveness keys present). */
  async members(): Promise<string[]> {
    const all = await this.store.redis.smembers(this.k('instances'));
    if (all.length === 0) return [];
    const alive = await this.store.redis.mget(...all.map((id) => this.k('inst', id)));
    return all.filter((_, i) => alive[i] !== null).sort();
  }

  private async beat(): Promise<void> {
    const r = await this.store.redis
      .multi()
      .set(this.k('inst', this.instanceId), String(Date.now()), 'PX', this.config.instanceTtlMs, 'GET')
      .sadd(this.k('instances'), this.instanceId)
      .exec();
    const previous = r?.[0]?.[1];
    if (this.beaten && previous === null) {
      this.outOfTouch = true;
      // Our key had lapsed (Redis unreachable from here, or this process stalled): the others may
      // have taken over our work and answered our open USP requests already.
      this.log.error(
        { instanceId: this.instanceId },
        'this instance was out of touch with Redis longer than cluster.instanceTtlMs: another instance may have taken over its work',
      );
    }
    this.beaten = true;
  }

  private async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      try {
        await this.beat();
      } catch (e) {
        // Redis unreachable: every instance's liveness key may lapse meanwhile (see below).
        this.outOfTouch = true;
        throw e;
      }
      if (this.outOfTouch) {
        // Back in touch: the others reconnect at their own pace (the Redis client's backoff, up
        // to 1 s). Give all of them two TTLs to beat again before judging anyone dead.
        this.outOfTouch = false;
        this.graceUntil = Date.now() + 2 * this.config.instanceTtlMs;
      }
      if (Date.now() < this.graceUntil) return;
      const all = await this.store.redis.smembers(this.k('instances'));
      const others = all.filter((id) => id !== this.instanceId);
      if (others.length === 0) return;
      const alive = await this.store.redis.mget(...others.map((id) => this.k('inst', id)));
      for (let i = 0; i < others.length; i++) if (alive[i] === null && !this.stopped) await this.takeOver(others[i]!, false);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cluster heartbeat failed (Redis unreachable?)');
    } finally {
      this.busy = false;
    }
  }

  /** Takes over a dead instance's work, once across the cluster (SET NX lock). */
  private async takeOver(dead: string, self: boolean): Promise<void> {
    const parts = this.parts!;
    const r = this.store.redis;
    // Whoever wins the lock consumes (deletes) the dead instance's state, so a late second
    // takeover after the lock expires finds nothing left to do.
    const lock = await r.set(this.k('takeover', dead), this.instanceId, 'PX', 30_000, 'NX');
    if (lock !== 'OK') return;
    // 1. RPCs still queued for callers that are gone: not sent, so dropped (answered in 2).
    let dropped = 0;
    for (const id of await r.smembers(this.k('io', dead))) if (await this.store.unqueueRpc(id)) dropped++;
    await r.del(this.k('io', dead));
    // 2. USP requests it took and never answered: each gets an Error, exactly once (this lock).
    let answered = 0;
    const open = await r.hgetall(this.k('ureq', dead));
    for (const text of Object.values(open)) {
      let t: TrackedRequest;
      try {
        t = JSON.parse(text) as TrackedRequest;
      } catch {
        continue;
      }
      const msg = errorMsg(
        t.msgId,
        7003,
        `the proxy instance ${dead} handling this request stopped before answering; RPCs not yet sent to the device were dropped, one already sent may have been carried out`,
      );
      if (await parts.endpoint.sendToController(t.agentEid, t.controllerEid, msg)) answered++;
    }
    await r.del(this.k('ureq', dead));
    // 3. Unanswered send_resp Notifies (a restarted instance resumes its own in Notifier.start).
    const notifies = self ? [] : await this.store.adoptPendingNotifies(dead);
    parts.notifier.resume(notifies);
    // 4. Its running async commands.
    const rows = self ? await this.store.listRequestsOwnedBy(dead) : await this.store.adoptRequests(dead);
    if (rows.length) {
      for (const agent of new Set(rows.map((x) => x.agentEid))) await this.reloadAgent(agent);
      await parts.finishOrphanRequests(rows.map((x) => ({ agentEid: x.agentEid, path: `Device.LocalAgent.Request.${x.instance}.`, values: x.values })));
    }
    if (!self) await r.srem(this.k('instances'), dead);
    else await r.del(this.k('takeover', dead));
    if (!self || dropped || answered || rows.length) {
      this.takenOver.push(dead);
      this.log.warn(
        { instance: dead, droppedRpcs: dropped, answeredRequests: answered, notifies: notifies.length, commands: rows.length },
        self ? 'resumed work left by a previous run of this instance' : 'took over the work of a stopped instance',
      );
    }
  }

  private onRemoteDeviceEvent(m: RemoteDeviceEvent): void {
    if (m.from === this.instanceId || typeof m.deviceKey !== 'string') return;
    if (m.inform && Array.isArray(m.inform.event)) this.parts?.deviceEvent({ kind: 'inform', deviceKey: m.deviceKey, inform: m.inform as unknown as Inform });
    else if (m.transferComplete) this.parts?.deviceEvent({ kind: 'transferComplete', deviceKey: m.deviceKey, message: m.transferComplete });
  }

  private async onRowsChanged(m: Record<string, unknown>): Promise<void> {
    if (m.from === this.instanceId || typeof m.agentEid !== 'string') return;
    await this.reloadAgent(m.agentEid);
  }

  /**
   * Re-seeds the agent's rows from Redis. A snapshot is applied only if none of this instance's
   * own writes for the agent was in flight while it was read: one that had not landed yet would
   * vanish from this instance's tree (and no announcement of its own brings it back).
   */
  private reloadAgent(agentEid: string): Promise<void> {
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
    const parts = this.parts!;
    for (;;) {
      const inFlight = this.writing.get(agentEid);
      if (inFlight) {
        await inFlight;
        continue;
      }
      const gen = this.writeGen.get(agentEid) ?? 0;
      const [subs, reqs] = await Promise.all([this.store.listSubscriptions(agentEid), this.store.listRequests(agentEid)]);
      if ((this.writeGen.get(agentEid) ?? 0) !== gen) continue;
      parts.localAgent.reload(agentEid, subs, reqs);
      parts.notifier.rearm(agentEid);
      return;
    }
  }
}
