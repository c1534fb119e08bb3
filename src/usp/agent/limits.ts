/**
 * Bounded work per controller: requests in progress and a request rate (token bucket), and a log
 * limiter so that a peer cannot fill the log either. Clocks are injected; nothing here has timers.
 */

export interface RequestLimitOptions {
  /** Requests one key may have in progress. */
  maxInFlight: number;
  /** Sustained requests per second per key. */
  ratePerS: number;
  /** Requests a key may send at once before the rate applies. */
  burst: number;
  now?: () => number;
}

export type Admission = { ok: true; done: () => void } | { ok: false; code: 7002 | 7005; message: string };

interface Bucket {
  tokens: number;
  at: number;
  inFlight: number;
}

/**
 * Per-key admission of requests. Keys are configured controllers (a bounded set) and one shared
 * key for every untrusted peer, so the map cannot grow with what peers choose to claim.
 */
export class RequestLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(private readonly opts: RequestLimitOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Admits one request of `key` (`who` names it in the refusal), or says which limit it hit. */
  admit(key: string, who: string): Admission {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.opts.burst, at: t, inFlight: 0 };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.opts.burst, b.tokens + ((t - b.at) / 1000) * this.opts.ratePerS);
    b.at = t;
    if (b.inFlight >= this.opts.maxInFlight) {
      return { ok: false, code: 7005, message: `too many requests in progress from ${who} (limit ${this.opts.maxInFlight})` };
    }
    if (b.tokens < 1) {
      return {
        ok: false,
        code: 7002,
        message: `request rate limit exceeded by ${who} (${this.opts.ratePerS} requests/s, bursts of ${this.opts.burst})`,
      };
    }
    b.tokens -= 1;
    b.inFlight++;
    let finished = false;
    const bucket = b;
    return {
      ok: true,
      done: () => {
        if (finished) return;
        finished = true;
        bucket.inFlight--;
      },
    };
  }

  /** Requests in progress for a key (tests, metrics). */
  inFlight(key: string): number {
    return this.buckets.get(key)?.inFlight ?? 0;
  }
}

/**
 * At most one log line per key per interval, over a bounded set of keys (the oldest is forgotten
 * first), so that an attacker varying its from_id cannot grow memory or the log without bound.
 */
export class LogLimiter {
  private readonly last = new Map<string, number>();
  private suppressed = 0;

  constructor(
    private readonly intervalMs = 60_000,
    private readonly maxKeys = 1024,
    private readonly now: () => number = Date.now,
  ) {}

  /** true: log now (with how many lines were held back since the last one, any key). */
  allow(key: string): { log: true; suppressed: number } | { log: false } {
    const t = this.now();
    const prev = this.last.get(key);
    if (prev !== undefined && t - prev < this.intervalMs) {
      this.suppressed++;
      return { log: false };
    }
    this.last.delete(key);
    if (this.last.size >= this.maxKeys) {
      // Over the bound: a new key is logged only once the oldest one has expired.
      const oldest = this.last.keys().next().value as string;
      const at = this.last.get(oldest)!;
      if (t - at < this.intervalMs) {
        this.suppressed++;
        return { log: false };
      }
      this.last.delete(oldest);
    }
    this.last.set(key, t);
    const suppressed = this.suppressed;
    this.suppressed = 0;
    return { log: true, suppressed };
  }
}
