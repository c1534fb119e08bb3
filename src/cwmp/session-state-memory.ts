/**
 * SessionState for one instance: sessions and queues in memory, queued RPCs also in the store so
 * that they survive a restart (restore()). Every write is synchronous in memory, so steps of one
 * session cannot interleave; the store is written after.
 */
import type { Logger } from '../app/log.js';
import type { QueuedRpc, Store } from '../store/types.js';
import type { SessionInput, SessionRecord, SessionWrite } from './session-machine.js';
import type { ApplyResult, SessionState } from './session-state.js';

interface Queued {
  q: QueuedRpc;
  persisted: boolean;
}

export class MemorySessionState implements SessionState {
  readonly shared = false;
  readonly instanceId = 'local';
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly byDevice = new Map<string, string>();
  private readonly queues = new Map<string, Queued[]>();
  /** RPCs claimed by a session and not yet taken, by id. */
  private readonly claimed = new Map<string, Queued>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {}

  async close(): Promise<void> {}

  async open(session: SessionRecord): Promise<{ previous: SessionRecord | null; queued: number }> {
    const prevId = this.byDevice.get(session.deviceKey);
    const previous = prevId !== undefined ? (this.sessions.get(prevId) ?? null) : null;
    let taken: Queued | null = null;
    if (previous) {
      this.sessions.delete(previous.id);
      taken = this.takeInflight(previous);
    }
    this.sessions.set(session.id, session);
    this.byDevice.set(session.deviceKey, session.id);
    if (taken?.persisted) await this.removeStored(taken);
    return { previous, queued: this.queuedCount(session.deviceKey) };
  }

  async load(sessionId: string): Promise<SessionRecord | null> {
    return this.sessions.get(sessionId) ?? null;
  }

  async apply(sessionId: string, expectSeq: number, w: SessionWrite): Promise<ApplyResult> {
    const s = this.sessions.get(sessionId);
    if (!s) return { kind: 'gone' };
    if (s.seq !== expectSeq) return { kind: 'stale', current: s };
    const seq = s.seq + 1;
    let state: SessionRecord = { ...s, seq, lastPost: w.post ? seq : s.lastPost };
    const taken = w.take ? this.takeInflight(s) : null;
    if (w.take) state.inflight = null;
    let ended = w.end;
    let next: Extract<SessionInput, { kind: 'claimed' | 'queue-empty' }> | null = null;
    if (!ended && w.next) {
      const queue = this.queues.get(s.deviceKey);
      const head = queue?.shift();
      if (queue?.length === 0) this.queues.delete(s.deviceKey);
      if (head) {
        this.claimed.set(head.q.id, head);
        state = {
          ...state,
          inflight: { id: head.q.id, method: head.q.rpc.method, origin: head.q.origin ?? '', linger: head.q.linger === true },
          rpcs: s.rpcs + 1,
        };
        next = { kind: 'claimed', rpc: head.q, more: queue?.length ?? 0 };
      } else {
        ended = w.next === 'end';
        next = { kind: 'queue-empty', ended };
      }
    }
    if (ended) {
      this.sessions.delete(sessionId);
      if (this.byDevice.get(s.deviceKey) === sessionId) this.byDevice.delete(s.deviceKey);
    } else this.sessions.set(sessionId, state);
    if (taken?.persisted) await this.removeStored(taken);
    // At-most-once (docs/reliability.md): the claimed RPC is marked sent before the reply that
    // carries it is written, so after a crash it is known to have maybe been carried out.
    if (next?.kind === 'claimed') {
      const item = this.claimed.get(next.rpc.id);
      if (item?.persisted) {
        const at = Date.now();
        item.q.sentAt = at;
        await this.store.markQueuedRpcSent(item.q.id, at);
      }
    }
    return { kind: 'done', state, ended, taken: taken?.q ?? null, next, queued: this.queuedCount(s.deviceKey) };
  }

  async enqueue(q: QueuedRpc, front: boolean, persist: boolean): Promise<string | null> {
    if (persist) await this.store.addQueuedRpc(q);
    const item: Queued = { q, persisted: persist };
    const queue = this.queues.get(q.deviceKey);
    if (!queue) this.queues.set(q.deviceKey, [item]);
    else if (front) queue.unshift(item);
    else queue.push(item);
    return this.byDevice.has(q.deviceKey) ? this.instanceId : null;
  }

  async unqueue(id: string): Promise<boolean> {
    for (const [key, queue] of this.queues) {
      const i = queue.findIndex((x) => x.q.id === id);
      if (i < 0) continue;
      const [item] = queue.splice(i, 1);
      if (queue.length === 0) this.queues.delete(key);
      await this.removeStored(item!);
      return true;
    }
    return false;
  }

  async restore(): Promise<QueuedRpc[]> {
    const all = await this.store.listAllQueuedRpcs();
    for (const q of all) {
      const queue = this.queues.get(q.deviceKey);
      if (queue) queue.push({ q, persisted: true });
      else this.queues.set(q.deviceKey, [{ q, persisted: true }]);
    }
    return all;
  }

  queuedCount(deviceKey: string): number {
    return this.queues.get(deviceKey)?.length ?? 0;
  }

  async deviceState(deviceKey: string): Promise<{ inSession: boolean; queuedRpcs: number }> {
    return { inSession: this.byDevice.has(deviceKey), queuedRpcs: this.queuedCount(deviceKey) };
  }

  async wakeLock(deviceKey: string): Promise<boolean> {
    return !this.byDevice.has(deviceKey);
  }

  forget(): void {}

  // One instance: every caller waits here and every session is served here, so nothing is relayed.
  relayResult(): void {}

  notifyWork(): void {}

  private takeInflight(s: SessionRecord): Queued | null {
    if (!s.inflight) return null;
    const item = this.claimed.get(s.inflight.id) ?? null;
    this.claimed.delete(s.inflight.id);
    return item;
  }

  private async removeStored(item: Queued): Promise<void> {
    if (item.persisted) await this.store.removeQueuedRpc(item.q.id).catch((e: Error) => this.log.error({ err: e.message }, 'removing a queued RPC failed'));
  }
}
