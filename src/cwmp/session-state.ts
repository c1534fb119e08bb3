/**
 * The SessionState port: where CWMP sessions and the devices' queues of ACS RPCs live. In memory
 * (session-state-memory.ts, with queued RPCs persisted in the store) for one instance; in Redis
 * (src/cluster/redis-session-state.ts) for several, where any instance may serve any POST.
 *
 * The port decides nothing: it writes what the machine (session-machine.ts) stepped, atomically
 * and only if the session is still at the seq the step was computed on, and it keeps the queue.
 */
import type { QueuedRpc } from '../store/types.js';
import type { SessionInput, SessionRecord, SessionWrite } from './session-machine.js';
import type { RpcErrorDetail, RpcErrorReason, RpcOutcome } from './session-types.js';

export type ApplyResult =
  /** Written. `state` is the session after the write (its last state if the write ended it). */
  | {
      kind: 'done';
      state: SessionRecord;
      ended: boolean;
      /** The RPC the write took out of flight, as it was queued. */
      taken: QueuedRpc | null;
      /** After a `next` write: 'claimed' or 'queue-empty', to step next. */
      next: Extract<SessionInput, { kind: 'claimed' | 'queue-empty' }> | null;
      /** RPCs still queued for the device. */
      queued: number;
    }
  /** Not written: the session has moved on since it was read; step again on `current`. */
  | { kind: 'stale'; current: SessionRecord }
  /** Not written: no such session (ended, or replaced by a new Inform). */
  | { kind: 'gone' };

/** An RPC's outcome on its way to the instance whose caller waits for it. */
export interface RpcResultMessage {
  id: string;
  outcome?: RpcOutcome;
  error?: { reason: RpcErrorReason; message: string; detail?: RpcErrorDetail };
}

/**
 * A result relayed by another instance, as decoded from the bus: one with an id and an outcome or an
 * error object (a message of another version or a corrupt one is dropped, not trusted).
 */
export function isRpcResultMessage(m: unknown): m is RpcResultMessage {
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isObj(m) || typeof m.id !== 'string') return false;
  if (m.outcome !== undefined && !(isObj(m.outcome) && typeof m.outcome.kind === 'string')) return false;
  if (m.error !== undefined && !(isObj(m.error) && typeof m.error.reason === 'string' && typeof m.error.message === 'string')) return false;
  return m.outcome !== undefined || m.error !== undefined;
}

/** Signals from other instances (several instances only). */
export interface SessionSignals {
  result(m: RpcResultMessage): void;
  /** An RPC was queued for a device whose session this instance serves (it may be lingering). */
  work(deviceKey: string): void;
  /** A session this instance served was handed over to another instance (its timers are not ours now). */
  moved?(sessionId: string): void;
  /** A new Inform on another instance replaced a session this instance served (as it was). */
  superseded?(session: SessionRecord): void;
}

export interface SessionState {
  /** Sessions are shared between instances: one found here was opened by an authenticated Inform elsewhere. */
  readonly shared: boolean;
  /** This instance: the origin of the RPCs queued here. */
  readonly instanceId: string;

  start(signals: SessionSignals): Promise<void>;
  close(): Promise<void>;

  /** Stores a new session; the device's previous one, if any, is removed with its RPC in flight and returned. */
  open(session: SessionRecord): Promise<{ previous: SessionRecord | null; queued: number }>;
  /** `post`: for a CPE's POST (several instances: it may take the session over from the instance serving it). */
  load(sessionId: string, post?: boolean): Promise<SessionRecord | null>;
  /** Writes one step if the session's seq is still `expectSeq`. */
  apply(sessionId: string, expectSeq: number, write: SessionWrite): Promise<ApplyResult>;

  /** Queues an ACS RPC (at the head when `front`); returns the instance serving the device's session, if any. */
  enqueue(q: QueuedRpc, front: boolean, persist: boolean): Promise<string | null>;
  /** Removes an RPC that no session has claimed yet. */
  unqueue(id: string): Promise<boolean>;
  /** RPCs queued before a restart (single instance; several instances hand a dead one's queue over in src/cluster/). */
  restore(): Promise<QueuedRpc[]>;
  /** RPCs queued for a device, as far as this instance can tell without asking (0 when shared). */
  queuedCount(deviceKey: string): number;
  deviceState(deviceKey: string): Promise<{ inSession: boolean; queuedRpcs: number }>;
  /** May this instance send the device a connection request now (one across instances, TR-069 3.2)? */
  wakeLock(deviceKey: string): Promise<boolean>;
  /** A caller here no longer waits for an RPC it queued. */
  forget(id: string): void;

  /** Sends an outcome to the instance whose caller waits for it. */
  relayResult(origin: string, m: RpcResultMessage): void;
  /** Tells the instance serving a device's session that an RPC was queued for it. */
  notifyWork(holder: string, deviceKey: string): void;
  /**
   * The device's session held here has taken work another instance queued (claimed an RPC of
   * another origin, or had a work signal from another instance) since it began. That instance's
   * callers may follow up, and this one cannot see when their requests close: the session then
   * keeps its whole linger window (session.ts). Answered from memory, no I/O. Absent: never.
   */
  othersMayFollow?(deviceKey: string): boolean;
}
