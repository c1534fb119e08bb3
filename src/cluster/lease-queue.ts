/**
 * The Redis primitives of the cluster's CWMP SessionState (redis-session-state.ts): a device's
 * lease and its queue of ACS RPCs. A session itself lives in the memory of the instance serving
 * it; Redis sees a session only where several instances must agree: its start (the lease), the
 * ACS's turns (the queue's head) and its end. Each call is one round trip of one or two plain
 * commands (no Lua): every command counts toward the Redis cost of a USP Get (docs/scaling.md).
 * Keys follow src/store/redis.ts (prefix P):
 *
 *   P lease:<dk>  "<sid>@<instance>": the device's session and the instance serving it (PX the
 *                 session timeout); "@<instance>": that instance is sending the device a
 *                 connection request (a short wake lock, TR-069 3.2: one for all queued RPCs)
 *   P q:<dk>      LIST of queued RPCs (QueuedRpc JSON), FIFO; an RPC leaves it when a session
 *                 claims it (LPOP) or its caller gives up (LREM of its exact JSON)
 *
 * Why no script is needed: an enqueue pushes first and reads the lease second, an ending session
 * drops the lease first and pops second (both pipelined on one connection, so each pair runs in
 * that order). Whatever interleaving, an RPC pushed before the session's last pop is claimed by
 * it, and one pushed after finds no lease and wakes the device. SET ... NX GET needs Redis 7.0.
 */
import type { Redis } from 'ioredis';

export class LeaseQueue {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  lease(dk: string): string {
    return `${this.prefix}lease:${dk}`;
  }

  queue(dk: string): string {
    return `${this.prefix}q:${dk}`;
  }

  /**
   * Queues an RPC (at the head when `front`). With `wakeBy`, takes the device's wake lock for
   * `wakeMs` when the device has no lease. Returns the lease found ('' none) and whether the
   * lock was taken by this call.
   */
  async enqueue(dk: string, json: string, front: boolean, wakeBy: string, wakeMs: number): Promise<{ lease: string; woken: boolean }> {
    const p = this.redis.pipeline();
    if (front) p.lpush(this.queue(dk), json);
    else p.rpush(this.queue(dk), json);
    if (wakeBy) p.set(this.lease(dk), `@${wakeBy}`, 'PX', wakeMs, 'NX', 'GET');
    else p.get(this.lease(dk));
    const r = await exec(p);
    const found = r[1] as string | null;
    return { lease: found ?? '', woken: wakeBy !== '' && found === null };
  }

  /** A new session takes the lease; returns the lease it replaced ('' none) and the RPCs queued. */
  async open(dk: string, sid: string, me: string, ttlMs: number): Promise<{ previous: string; queued: number }> {
    const r = await exec(this.redis.pipeline().set(this.lease(dk), `${sid}@${me}`, 'PX', ttlMs, 'GET').llen(this.queue(dk)));
    return { previous: (r[0] as string | null) ?? '', queued: Number(r[1]) };
  }

  /** The lease names the session again (a long session, one handed over, one that went on after its end). */
  async setLease(dk: string, sid: string, me: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.lease(dk), `${sid}@${me}`, 'PX', ttlMs);
  }

  /** The queue's head, taken ('' none). */
  async pop(dk: string): Promise<string> {
    return (await this.redis.lpop(this.queue(dk))) ?? '';
  }

  /** The queue's head and how many are left (acs.holdRequests). */
  async popCount(dk: string): Promise<{ json: string; left: number }> {
    const r = await exec(this.redis.pipeline().lpop(this.queue(dk)).llen(this.queue(dk)));
    return { json: (r[0] as string | null) ?? '', left: Number(r[1]) };
  }

  /**
   * The session ends: the lease goes first, then the queue is looked at: with `pop` its head is
   * taken (the session goes on with it if there is one), else counted (a wake-up for the next).
   */
  async end(dk: string, pop: boolean): Promise<{ json: string; queued: number }> {
    const p = this.redis.pipeline().del(this.lease(dk));
    if (pop) p.lpop(this.queue(dk));
    else p.llen(this.queue(dk));
    const r = await exec(p);
    return pop ? { json: (r[1] as string | null) ?? '', queued: 0 } : { json: '', queued: Number(r[1]) };
  }

  /** Removes an RPC not claimed yet, by its exact JSON. */
  async unqueue(dk: string, json: string): Promise<boolean> {
    return (await this.redis.lrem(this.queue(dk), 1, json)) > 0;
  }

  /** Puts RPCs a session had claimed but not sent back at the head, in their order. */
  async requeue(dk: string, json: readonly string[]): Promise<void> {
    if (json.length) await this.redis.lpush(this.queue(dk), ...[...json].reverse());
  }

  async state(dk: string): Promise<{ lease: string; queued: number }> {
    const r = await exec(this.redis.pipeline().get(this.lease(dk)).llen(this.queue(dk)));
    return { lease: (r[0] as string | null) ?? '', queued: Number(r[1]) };
  }

  /** The wake lock alone (a wake-up not preceded by this instance's enqueue). */
  async wakeLock(dk: string, me: string, wakeMs: number): Promise<boolean> {
    return (await this.redis.set(this.lease(dk), `@${me}`, 'PX', wakeMs, 'NX')) === 'OK';
  }
}

async function exec(p: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const r = (await p.exec()) ?? [];
  return r.map(([e, v]) => {
    if (e) throw e;
    return v;
  });
}
