/**
 * The USP request a piece of work is done for, carried implicitly through the async calls below
 * the handlers (AsyncLocalStorage), so that the interworking layer can stop enqueueing CWMP RPCs
 * for a request whose controller is gone without every data-model signature carrying a signal.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestScope {
  /** Aborted when the answer can no longer be delivered (the controller's connection closed, the proxy stops). */
  readonly signal: AbortSignal;
  /** Run once when the request's handler has finished (answered or failed); see atRequestEnd. */
  readonly ends?: Array<() => void>;
}

const storage = new AsyncLocalStorage<RequestScope>();

/** Runs `fn` (and everything it awaits) inside the scope. */
export function runInRequestScope<T>(scope: RequestScope, fn: () => Promise<T>): Promise<T> {
  return storage.run(scope, fn);
}

/** The current request's signal; undefined outside a request (events, timers, shared work). */
export function requestSignal(): AbortSignal | undefined {
  return storage.getStore()?.signal;
}

/** The current request's scope object (a key for per-request notes such as the translation trace); undefined outside a request. */
export function currentRequestScope(): RequestScope | undefined {
  return storage.getStore();
}

/** Registers `fn` to run when the current request's handler finishes; false (and `fn` not kept) outside a request. */
export function atRequestEnd(fn: () => void): boolean {
  const ends = storage.getStore()?.ends;
  if (!ends) return false;
  ends.push(fn);
  return true;
}

/** Runs `fn` outside any request scope: work shared by several requests must not end with one of them. */
export function outsideRequestScope<T>(fn: () => T): T {
  return storage.exit(fn);
}
