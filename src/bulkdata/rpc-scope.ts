/**
 * How the CWMP RPCs of one Bulk Data collection go out, as the scope its data-model calls are made
 * in (src/usp/request-scope.ts, passed down to the proxy's RpcPort, app/proxy.ts): riding the
 * device's next periodic Inform session (no connection request, TR-069 3.2) until a deadline, or
 * waking the device.
 */
import type { CallScope } from '../usp/request-scope.js';

export interface CollectionRpcOptions {
  /** false: no connection request, the RPCs wait for a session the CPE opens itself. */
  wake: boolean;
  /** Absolute time (ms since epoch) after which a queued RPC fails as unreachable. */
  deadlineAt: number;
}

/** The scope of a collection's data-model calls with these RPC options. */
export function collectionScope(opts: CollectionRpcOptions): CallScope {
  return { ride: { wake: opts.wake, deadlineAt: opts.deadlineAt } };
}

/** The enqueue options of a collection's scope (undefined for any other scope). */
export function collectionRpcOptions(scope: CallScope | undefined, now = Date.now()): { wake: boolean; deadlineMs: number } | undefined {
  const o = scope?.ride;
  return o && { wake: o.wake, deadlineMs: Math.max(1, o.deadlineAt - now) };
}
