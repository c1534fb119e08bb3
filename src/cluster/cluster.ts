/**
 * Several proxy instances on one Redis store: membership, and takeover of a dead instance's work.
 * The cross-instance signals the USP agent side needs are its Coordination (coordination.ts).
 *
 * - Membership: each instance renews `P inst:<id>` (PX cluster.instanceTtlMs) every
 *   cluster.heartbeatMs and is listed in `P instances`. An instance whose key has expired is
 *   dead; the first live instance to win `P takeover:<id>` (SET NX) takes over its work:
 *     queued RPCs its callers waited for and no session has sent yet are dropped (their USP
 *     request is answered below); USP requests it had not answered get an Error (7003) from the
 *     agent, sent over the broker; its unanswered send_resp Notifies are retried from here; its
 *     running async commands (Request rows) finish here (Reboot when the device boots, others
 *     with 7022, as after a restart).
 * - Device events (ClusterBus) for commands waiting on other instances.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Config } from '../app/config.js';
import type { Logger } from '../app/log.js';
import type { Msg } from '../usp/codec/record.js';
import { errorMsg } from '../usp/codec/record.js';
import type { PendingNotify } from '../store/types.js';
import type { DeviceEvent } from '../interworking/commands.js';
import type { ClusterBus } from './bus.js';
import type { RedisCoordination, TrackedRequest } from './coordination.js';
import { remoteDeviceEventOf, type RemoteDeviceEvent } from './session-engine.js';
import type { ClusterStore } from './types.js';

/** What a takeover acts on, given at construction. */
export interface ClusterParts {
  coordination: RedisCoordination;
  /** Answers a dead instance's open USP requests (UspEndpoint.sendToController). */
  endpoint: { sendToController(agentEid: string, controllerEid: string, msg: Msg): Promise<boolean> };
  /** Retries a dead instance's unanswered send_resp Notifies (Notifier.resume). */
  notifier: { resume(list: readonly PendingNotify[]): void };
  /** CwmpCommandRunner.deviceEvent: commands waiting here for a device that informed elsewhere. */
  deviceEvent(e: DeviceEvent): void;
  /** Finishes async commands whose instance stopped (Reboot awaits the boot, others 7022). */
  finishOrphanRequests(rows: { agentEid: string; path: string; values: Record<string, string> }[]): Promise<void>;
}

/** cluster.instanceId, or one made unique per process. */
export function instanceIdOf(config: Config['cluster']): string {
  return config.instanceId || `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** One Digest nonce secret for all instances (the first instance makes it), so any instance accepts any nonce. */
export async function sharedNonceSecret(store: ClusterStore): Promise<Buffer> {
  const key = store.key('acs', 'nonce-secret');
  await store.redis.set(key, randomBytes(32).toString('base64'), 'NX');
  const v = await store.redis.get(key);
  return Buffer.from(v ?? '', 'base64');
}

export class Cluster {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private stopped = false;
  readonly takenOver: string[] = [];
  /** No takeover before this time (epoch ms): see tick(). */
  private graceUntil = 0;
  private beaten = false;
  private outOfTouch = false;
  /** This instance's ACS URL for relayed POSTs (forward.ts), written with its liveness key ('' none). */
  private acsUrl = '';
  /** The other live instances' ACS URLs, as read from their liveness keys at the last heartbeat. */
  private readonly acsUrls = new Map<string, string>();

  constructor(
    private readonly store: ClusterStore,
    private readonly config: Config['cluster'],
    private readonly log: Logger,
    private readonly bus: ClusterBus,
    private readonly parts: ClusterParts,
  ) {}

  get instanceId(): string {
    return this.store.owner;
  }

  private k(...parts: string[]): string {
    return this.store.key(...parts);
  }

  async start(): Promise<void> {
    const me = this.instanceId;
    if ((await this.store.redis.exists(this.k('inst', me))) === 1) {
      throw new Error(`cluster.instanceId "${me}" is in use by a running instance (its liveness key exists in Redis); give each instance its own id`);
    }
    await this.bus.on(this.k('ch', 'dev'), (m) => {
      const e = remoteDeviceEventOf(m);
      if (e) this.onRemoteDeviceEvent(e);
      else this.log.warn({ channel: 'dev' }, 'cluster bus: malformed device event dropped');
    });
    await this.parts.coordination.start();
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
  }

  /**
   * This instance's ACS URL (after the ACS listens): written with the liveness key from the next
   * heartbeat on, so that the others relay POSTs of sessions served here (forward.ts).
   */
  advertiseAcsUrl(url: string): void {
    this.acsUrl = url;
  }

  /** A live instance's ACS URL as of the last heartbeat (forward.ts). */
  acsUrlOf(instanceId: string): string | undefined {
    return this.acsUrls.get(instanceId);
  }

  /** The live instances (liveness keys present). */
  async members(): Promise<string[]> {
    const all = await this.store.redis.smembers(this.k('instances'));
    if (all.length === 0) return [];
    const alive = await this.store.redis.mget(...all.map((id) => this.k('inst', id)));
    return all.filter((_, i) => alive[i] !== null).sort();
  }

  private async beat(): Promise<void> {
    const at = Date.now();
    const r = await this.store.redis
      .multi()
      .set(this.k('inst', this.instanceId), livenessValue(Date.now(), this.acsUrl), 'PX', this.config.instanceTtlMs, 'GET')
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
    this.parts.coordination.livenessRenewed(at, this.config.instanceTtlMs, this.beaten && previous === null);
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
      if (others.length === 0) return this.acsUrls.clear();
      const alive = await this.store.redis.mget(...others.map((id) => this.k('inst', id)));
      this.acsUrls.clear();
      others.forEach((id, i) => {
        const url = acsUrlOfLiveness(alive[i] ?? null);
        if (url) this.acsUrls.set(id, url);
      });
      for (let i = 0; i < others.length; i++) if (alive[i] === null && !this.stopped) await this.takeOver(others[i]!, false);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cluster heartbeat failed (Redis unreachable?)');
    } finally {
      this.busy = false;
    }
  }

  /** Takes over a dead instance's work, once across the cluster (SET NX lock). */
  private async takeOver(dead: string, self: boolean): Promise<void> {
    const parts = this.parts;
    const r = this.store.redis;
    // Whoever wins the lock consumes (deletes) the dead instance's state, so a late second
    // takeover after the lock expires finds nothing left to do.
    const lock = await r.set(this.k('takeover', dead), this.instanceId, 'PX', 30_000, 'NX');
    if (lock !== 'OK') return;
    // Callers on every instance waiting for RPCs a session there had claimed (redis-session-state.ts).
    if (!self) this.bus.publish(this.k('ch', 'dead'), { instance: dead });
    // 1. RPCs still queued for callers that are gone: not sent, so dropped (answered in 2).
    // Found by their origin in the devices' queues (a takeover is rare; an index per instance
    // would cost two Redis commands per RPC).
    const dropped = await this.store.unqueueWhere((q) => q.origin === dead);
    // 2. USP requests it took and never answered: each gets an Error, exactly once (this lock).
    // Claimed in one step: an instance that was only stalled finds its entry gone and drops its
    // own answer (RedisCoordination.requestAnswered), so the request gets this one only.
    let answered = 0;
    const claimed = await r.multi().hgetall(this.k('ureq', dead)).del(this.k('ureq', dead)).exec();
    const open = (claimed?.[0]?.[1] ?? {}) as Record<string, string>;
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
    // 3. Unanswered send_resp Notifies (a restarted instance resumes its own in Notifier.start).
    const notifies = self ? [] : await this.store.adoptPendingNotifies(dead);
    parts.notifier.resume(notifies);
    // 4. Its running async commands.
    const rows = self ? await this.store.listRequestsOwnedBy(dead) : await this.store.adoptRequests(dead);
    if (rows.length) {
      for (const agent of new Set(rows.map((x) => x.agentEid))) await parts.coordination.reloadAgent(agent);
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
    if (m.from === this.instanceId) return;
    if (m.inform) this.parts.deviceEvent({ kind: 'inform', deviceKey: m.deviceKey, inform: m.inform });
    else if (m.transferComplete) this.parts.deviceEvent({ kind: 'transferComplete', deviceKey: m.deviceKey, message: m.transferComplete });
  }
}

/** `P inst:<id>`: "<ms>" or "<ms> <ACS URL>". */
export function livenessValue(at: number, acsUrl: string): string {
  return acsUrl ? `${at} ${acsUrl}` : String(at);
}

/** The ACS URL of a liveness value: plain http only (forward.ts), anything else (another version, corrupt) none. */
export function acsUrlOfLiveness(v: string | null): string | undefined {
  const i = v ? v.indexOf(' ') : -1;
  if (!v || i < 0) return undefined;
  const url = v.slice(i + 1);
  return /^http:\/\/[^\s/]+/.test(url) && url.length <= 512 ? url : undefined;
}
