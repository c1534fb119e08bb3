/**
 * What a data-model call is made for, passed explicitly from the handler (HandlerContext.scope)
 * through the router and the backends down to the interworking layer's RPCs (the trailing `scope`
 * argument of the DmBackend calls, RequestContext.scope): so that the CWMP RPCs of a USP request
 * whose controller is gone stop being enqueued, a Bulk Data collection's RPCs ride the periodic
 * Inform, and the translation trace notes each RPC under its request.
 * Explicit rather than AsyncLocalStorage: once one had run, Node 20 made every promise of the
 * process pay the async_hooks promise hooks (issue 22 item 2: 3-4% of a USP Get).
 */
export interface CallScope {
  /**
   * Aborted when the answer can no longer be delivered (the controller's connection closed, the
   * proxy stops). Absent: nothing can cancel the call.
   */
  readonly signal?: AbortSignal;
  /**
   * A USP request's end hooks, run once when its handler has finished (answered or failed); see
   * atRequestEnd. Gone once the request ended (endRequest): later work in its scope is no longer its.
   */
  ends?: Array<() => void>;
  /**
   * How the call's CWMP RPCs go out when not as a USP request's (a Bulk Data collection,
   * src/bulkdata/rpc-scope.ts): without a connection request (wake false) until `deadlineAt`.
   */
  readonly ride?: { readonly wake: boolean; readonly deadlineAt: number };
}

/** Whether the scope is a USP request being served (it has end hooks; a collection's has not). */
export function isRequest(scope: CallScope | undefined): scope is CallScope & { ends: Array<() => void> } {
  return scope?.ends !== undefined;
}

/** Registers `fn` to run when the scope's request handler finishes; false (and `fn` not kept) outside a request. */
export function atRequestEnd(scope: CallScope | undefined, fn: () => void): boolean {
  const ends = scope?.ends;
  if (!ends) return false;
  ends.push(fn);
  return true;
}

/** Ends a request: its end hooks run once (a failing one handed to `failed`), and later RPCs made in its scope are no longer the request's. */
export function endRequest(scope: CallScope, failed: (e: unknown) => void): void {
  const ends = scope.ends;
  if (!ends) return;
  scope.ends = undefined;
  for (const end of ends) {
    try {
      end();
    } catch (e) {
      failed(e);
    }
  }
}

/**
 * The scope of work shared by several requests (a learn deduplicated across them): it must not
 * end with one of them, nor be noted under one; a collection's way of sending RPCs stays.
 */
export function sharedScope(scope: CallScope | undefined): CallScope | undefined {
  const ride = scope?.ride;
  if (!ride) return undefined;
  return scope.signal || scope.ends ? { ride } : scope;
}
