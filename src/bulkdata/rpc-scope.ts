/**
 * How the CWMP RPCs of one Bulk Data collection go out, carried implicitly through the data-model
 * calls below the collection (AsyncLocalStorage, as usp/request-scope.ts does for USP requests):
 * riding the device's next periodic Inform session (no connection request, TR-069 3.2) until a
 * deadline, or waking the device. The proxy's RpcPort reads it when it enqueues (app/proxy.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface CollectionRpcOptions {
  /** false: no connection request, the RPCs wait for a session the CPE opens itself. */
  wake: boolean;
  /** Absolute time (ms since epoch) after which a queued RPC fails as unreachable. */
  deadlineAt: number;
}

const storage = new AsyncLocalStorage<CollectionRpcOptions>();

/** Runs `fn` (and everything it awaits) as a Bulk Data collection with these RPC options. */
export function runCollection<T>(opts: CollectionRpcOptions, fn: () => Promise<T>): Promise<T> {
  return storage.run(opts, fn);
}

/** The enqueue options of the current collection (undefined outside one). */
export function collectionRpcOptions(now = Date.now()): { wake: boolean; deadlineMs: number } | undefined {
  const o = storage.getStore();
  return o && { wake: o.wake, deadlineMs: Math.max(1, o.deadlineAt - now) };
}
