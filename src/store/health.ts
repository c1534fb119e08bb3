/**
 * Whether the store accepts writes (issue 14 item 11). Every write through the tracked store
 * reports its outcome: a write failing for the store's own reasons (disk full, read-only, Redis
 * unreachable: storeUnavailable) marks the store failing, and /readyz fails with the cause until a
 * write succeeds again. A balancer that stops sending traffic would leave no write to succeed, so
 * readiness also probes with a small write of its own, at most once per probe interval.
 */
import { storeUnavailable } from './errors.js';
import type { Store } from './types.js';

/** The Store methods that write. */
const WRITES: ReadonlySet<string> = new Set([
  'upsertDevice',
  'touchInform',
  'putParameterTypes',
  'addQueuedRpc',
  'removeQueuedRpc',
  'putSubscription',
  'deleteSubscription',
  'putRequest',
  'deleteRequest',
  'putInstanceMap',
  'putLearned',
  'deleteLearned',
  'putPendingNotify',
  'deletePendingNotify',
]);

/** The probe's row: a 'device' learned document under a key no device key can be (it starts with NUL). */
export const PROBE_KEY = '\u0000store-write-probe';

/**
 * What the probe writes: 64 KiB, so that "writes succeed again" means there is room for more than a
 * row that happens to fit in a page already allocated (a nearly full disk would otherwise flap).
 */
const PROBE_VALUE = JSON.stringify({ probe: 'x'.repeat(64 * 1024) });

export interface StoreHealthOptions {
  /** Readiness probes a failing store at most this often (ms, default 1000). */
  probeIntervalMs?: number;
  /** Told when writes start failing (with the cause) and when they succeed again. */
  onChange?: (failing: boolean, detail: string) => void;
}

export class StoreHealth {
  private failure: { since: string; error: string } | null = null;
  private lastProbe = 0;
  private readonly probeIntervalMs: number;

  constructor(
    private readonly store: Pick<Store, 'putLearned' | 'deleteLearned'>,
    private readonly opts: StoreHealthOptions = {},
  ) {
    this.probeIntervalMs = opts.probeIntervalMs ?? 1000;
  }

  get failing(): boolean {
    return this.failure !== null;
  }

  /** A write failed: only the store's own failures count (a constraint or a bad value is the caller's). */
  failed(e: unknown): void {
    if (!storeUnavailable(e)) return;
    if (this.failure) return;
    const err = e as { code?: string; message?: string };
    this.failure = { since: new Date().toISOString(), error: err.code ? `${err.message} (${err.code})` : String(err.message) };
    this.opts.onChange?.(true, this.failure.error);
  }

  succeeded(): void {
    if (!this.failure) return;
    const was = this.failure;
    this.failure = null;
    this.opts.onChange?.(false, `writes succeed again (failing since ${was.since})`);
  }

  /** For /readyz: ok while writes succeed; while they fail, probes (rate-limited) to see them recover. */
  async check(): Promise<{ ok: boolean; detail: string }> {
    if (this.failure && Date.now() - this.lastProbe >= this.probeIntervalMs) {
      this.lastProbe = Date.now();
      try {
        await this.store.putLearned('device', PROBE_KEY, PROBE_VALUE);
        await this.store.deleteLearned('device', PROBE_KEY);
        this.succeeded();
      } catch (e) {
        if (!storeUnavailable(e)) throw e;
      }
    }
    const f = this.failure;
    return f ? { ok: false, detail: `store writes failing since ${f.since}: ${f.error}` } : { ok: true, detail: 'writes succeed' };
  }
}

/** The same store, each write reporting its outcome to `health`; everything else passes through unchanged. */
export function trackWrites<S extends Store>(store: S, health: StoreHealth): S {
  // Wrapped once per method, again if the method is replaced on the store (tests patch methods).
  const bound = new Map<PropertyKey, { of: unknown; f: unknown }>();
  return new Proxy(store, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      let f = bound.get(prop)?.of === v ? bound.get(prop)!.f : undefined;
      if (f === undefined) {
        const fn = v as (...args: unknown[]) => unknown;
        f =
          typeof prop === 'string' && WRITES.has(prop)
            ? async (...args: unknown[]) => {
                try {
                  const r = await fn.apply(target, args);
                  health.succeeded();
                  return r;
                } catch (e) {
                  health.failed(e);
                  throw e;
                }
              }
            : fn.bind(target);
        bound.set(prop, { of: v, f });
      }
      return f;
    },
  });
}
