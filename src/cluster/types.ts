/**
 * What the cluster needs of the shared store: the Store interface plus the Redis client and key
 * layout of src/store/redis.ts, and its few atomic queue/ownership operations.
 */
import type { Redis } from 'ioredis';
import type { PendingNotify, QueuedRpc, Store, StoredRow } from '../store/types.js';

export interface ClusterStore extends Store {
  readonly redis: Redis;
  /** This instance's name: owner of its pending Notifies and Request rows. */
  readonly owner: string;
  key(...parts: string[]): string;
  /** Removes a queued RPC only if no session has claimed it yet. */
  unqueueRpc(id: string): Promise<boolean>;
  /** Removes the queued (unclaimed) RPCs `which` selects; returns how many. */
  unqueueWhere(which: (q: QueuedRpc) => boolean): Promise<number>;
  getQueuedRpc(id: string): Promise<QueuedRpc | null>;
  adoptPendingNotifies(fromOwner: string): Promise<PendingNotify[]>;
  adoptRequests(fromOwner: string): Promise<StoredRow[]>;
  /** The Request rows an owner put (a restarted instance with a fixed id resumes its own). */
  listRequestsOwnedBy(owner: string): Promise<StoredRow[]>;
  listSubscriptions(agentEid: string): Promise<StoredRow[]>;
  listRequests(agentEid: string): Promise<StoredRow[]>;
}

export function isClusterStore(s: Store): s is ClusterStore {
  return typeof (s as Partial<ClusterStore>).unqueueRpc === 'function' && (s as Partial<ClusterStore>).redis !== undefined;
}
