/**
 * SessionState for one instance: sessions and queues in memory, queued RPCs also in the store so
 * that they survive a restart (restore()). Every write is synchronous in memory, so steps of one
 * session cannot interleave; the store is written after.
 *
 * Read-only RPCs (GetParameterValues/Names/Attributes) are written behind: only those still queued
 * after persistReadOnlyAfterMs reach the store (an idle device's Get is usually answered sooner, and
 * then costs no store write at all), and they are never marked sent (after a crash they are sent
 * again anyway, docs/reliability.md). A crash inside that window loses a read-only RPC whose caller
 * is gone with the process.
 */
import type { Logger } from '../app/log.js';
import type { QueuedRpc, Store } from '../store/types.js';
import type { SessionInput, SessionRecord, SessionWrite } from './session-machine.js';
import type { ApplyResult, SessionState } from './session-state.js';
import { READ_ONLY_RPCS } from './session-types.js';

interface Queued {
  q: QueuedRpc;
  persisted: boolean;
  /** Read-only, its store write waiting for the write-behind timer (since this performance.now()). */
  deferred?: boolean;
  deferredAt?: number;
  /** Its store write, while in progress (a removal waits for it). */
  writing?: Promise<void>;
}

export interface MemorySessionStateOptions {
  /** Read-only RPCs reach the store only when still queued this long (ms; default 0: at once, and marked sent like any RPC). */
  persistReadOnlyAfterMs?: number;
}

export class MemorySessionState implements SessionState {
  readonly shared = false;
  readonly instanceId = 'local';
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly byDevice = new Map<string, string>();
  private readonly queues = new Map<string, Queued[]>();
  /** RPCs claimed by a session and not yet taken, by id. */
  private readonly claimed = new Map<string, Queued>();
  /** Read-only RPCs not written to the store yet. */
  private readonly deferred = new Set<Queued>();
  private deferTimer: NodeJS.Timeout | null = null;
  private readonly persistAfterMs: number;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    o: MemorySessionStateOptions = {},
  ) {
    this.persistAfterMs = o.persistReadOnlyAfterMs ?? 0;
  }

  async start(): Promise<void> {}

  /** Queued read-only RPCs are written now: they stay queued across the restart. */
  async close(): Promise<void> {
    await this.flushDeferred();
  }

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
        this.undefer(head);
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
    // The session ended with read-only RPCs still waiting for their write: they wait for the next session now.
    if (ended && this.queues.get(s.deviceKey)?.some((x) => x.deferred)) await this.flushDeferred();
    if (taken?.persisted) await this.removeStored(taken);
    // At-most-once (docs/reliability.md): the claimed RPC is marked sent before the reply that
    // carries it is written, so after a crash it is known to have maybe been carried out.
    if (next?.kind === 'claimed') {
      const item = this.claimed.get(next.rpc.id);
      // Written behind, a read-only RPC is not marked: it is sent again after a crash anyway.
      if (item?.persisted && (this.persistAfterMs <= 0 || !READ_ONLY_RPCS.has(item.q.rpc.method))) {
        if (item.writing) await item.writing;
        const at = Date.now();
        item.q.sentAt = at;
        await this.store.markQueuedRpcSent(item.q.id, at);
      }
    }
    return { kind: 'done', state, ended, taken: taken?.q ?? null, next, queued: this.queuedCount(s.deviceKey) };
  }

  async enqueue(q: QueuedRpc, front: boolean, persist: boolean): Promise<string | null> {
    const item: Queued = { q, persisted: false };
    // Into the queue at once, whatever its store write: RPCs of one device keep the order they were queued in.
    const queue = this.queues.get(q.deviceKey);
    if (!queue) this.queues.set(q.deviceKey, [item]);
    else if (front) queue.unshift(item);
    else queue.push(item);
    if (persist && this.persistAfterMs > 0 && READ_ONLY_RPCS.has(q.rpc.method)) {
      item.deferred = true;
      item.deferredAt = performance.now();
      this.deferred.add(item);
      this.armDeferTimer(this.persistAfterMs);
    } else if (persist) {
      item.persisted = true;
      item.writing = this.store.addQueuedRpc(q);
      try {
        await item.writing;
      } catch (e) {
        // Not stored: not queued either (the caller is told).
        item.persisted = false;
        this.dequeue(item);
        throw e;
      } finally {
        item.writing = undefined;
      }
    }
    return this.byDevice.has(q.deviceKey) ? this.instanceId : null;
  }

  private dequeue(item: Queued): void {
    const queue = this.queues.get(item.q.deviceKey);
    const i = queue?.indexOf(item) ?? -1;
    if (i < 0) return;
    queue!.splice(i, 1);
    if (queue!.length === 0) this.queues.delete(item.q.deviceKey);
  }

  async unqueue(id: string): Promise<boolean> {
    for (const [key, queue] of this.queues) {
      const i = queue.findIndex((x) => x.q.id === id);
      if (i < 0) continue;
      const [item] = queue.splice(i, 1);
      if (queue.length === 0) this.queues.delete(key);
      this.undefer(item!);
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

  // One instance: every RPC is queued here, so the adaptive linger sees every request that may follow up.
  othersMayFollow(): boolean {
    return false;
  }

  private takeInflight(s: SessionRecord): Queued | null {
    if (!s.inflight) return null;
    const item = this.claimed.get(s.inflight.id) ?? null;
    this.claimed.delete(s.inflight.id);
    return item;
  }

  private async removeStored(item: Queued): Promise<void> {
    if (!item.persisted) return;
    if (item.writing) await item.writing;
    await this.store.removeQueuedRpc(item.q.id).catch((e: Error) => this.log.error({ err: e.message }, 'removing a queued RPC failed'));
  }

  /** The RPC left the queue before its deferred write: it never reaches the store. */
  private undefer(item: Queued): void {
    if (!item.deferred) return;
    item.deferred = false;
    this.deferred.delete(item);
  }

  private armDeferTimer(ms: number): void {
    if (this.deferTimer) return;
    this.deferTimer = setTimeout(() => void this.flushDeferred(performance.now() - this.persistAfterMs), ms);
    this.deferTimer.unref();
  }

  /** Writes the read-only RPCs still queued that were deferred before `upTo` (all by default: close(), a session's end). */
  private async flushDeferred(upTo = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.deferTimer) clearTimeout(this.deferTimer);
    this.deferTimer = null;
    const items: Queued[] = [];
    // In the order deferred: the first one not due yet ends the batch, and sets the next timer.
    for (const item of this.deferred) {
      if (item.deferredAt! > upTo) {
        this.armDeferTimer(Math.max(1, item.deferredAt! - upTo));
        break;
      }
      items.push(item);
    }
    for (const item of items) {
      this.deferred.delete(item);
      item.deferred = false;
      item.persisted = true;
      item.writing = this.store.addQueuedRpc(item.q).then(
        () => {
          item.writing = undefined;
        },
        (e: Error) => {
          item.writing = undefined;
          item.persisted = false;
          this.log.error({ err: e.message, method: item.q.rpc.method }, 'storing a queued RPC failed; it stays queued in memory');
        },
      );
    }
    await Promise.all(items.map((i) => i.writing));
  }
}
