/**
 * The one retry/backoff module (after obuspa retry_wait.c):
 * the TR-069 session retry formula, and a generic exponential backoff with jitter for
 * MTP reconnects and connection-request retries. Pure functions; the random source is
 * injectable so tests are deterministic.
 */

/** A random source returning a number in [0, 1), like Math.random. */
export type RandomSource = () => number;

export interface CwmpRetryOptions {
  /** CWMPRetryMinimumWaitInterval, seconds (TR-069 default 5, range 1..65535). */
  minWaitS?: number;
  /** CWMPRetryIntervalMultiplier, thousandths (TR-069 default 2000, range 1000..65535). */
  multiplier?: number;
}

/** TR-069 3.2.1.1: the retry count from which the wait window stops growing. */
export const CWMP_RETRY_CAP = 10;

export const CWMP_RETRY_DEFAULTS: Readonly<Required<CwmpRetryOptions>> = { minWaitS: 5, multiplier: 2000 };

/**
 * TR-069 3.2.1.1 (Table 3): the wait window before session retry number n (n >= 1 is the
 * first retry after a failed session): m*(k/1000)^(n-1) .. m*(k/1000)^n seconds, where the
 * window for n >= 10 stays that of n = 10. n < 1 is treated as 1.
 */
export function cwmpRetryWindow(n: number, opts: CwmpRetryOptions = {}): { minMs: number; maxMs: number } {
  const m = opts.minWaitS ?? CWMP_RETRY_DEFAULTS.minWaitS;
  const k = opts.multiplier ?? CWMP_RETRY_DEFAULTS.multiplier;
  if (!(m > 0) || !Number.isFinite(m)) throw new RangeError('minWaitS must be a positive number');
  if (!(k >= 1000) || !Number.isFinite(k)) throw new RangeError('multiplier must be >= 1000');
  const step = Math.min(Math.max(Math.floor(Number.isFinite(n) ? n : 1), 1), CWMP_RETRY_CAP);
  const ratio = k / 1000;
  return {
    minMs: Math.round(m * ratio ** (step - 1) * 1000),
    maxMs: Math.round(m * ratio ** step * 1000),
  };
}

/** A random wait, uniformly within cwmpRetryWindow(n), in milliseconds. */
export function cwmpRetryDelayMs(n: number, opts: CwmpRetryOptions = {}, rand: RandomSource = Math.random): number {
  const { minMs, maxMs } = cwmpRetryWindow(n, opts);
  return Math.floor(minMs + clamp01(rand()) * (maxMs - minMs));
}

export interface BackoffOptions {
  /** Delay ceiling of the first retry (attempt 0). */
  baseMs: number;
  /** Cap on any delay. */
  maxMs: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /**
   * Fraction of the ceiling that is randomized (default 0.5, "equal jitter"): the delay is
   * uniform in [ceiling*(1-jitter), ceiling]. 1 is "full jitter", 0 is none.
   */
  jitter?: number;
}

/**
 * Exponential backoff with jitter. attempt 0 is the wait before the first retry;
 * ceiling = min(maxMs, baseMs * factor^attempt).
 */
export function backoffDelayMs(attempt: number, opts: BackoffOptions, rand: RandomSource = Math.random): number {
  const factor = opts.factor ?? 2;
  const jitter = clamp01(opts.jitter ?? 0.5);
  if (!(opts.baseMs >= 0) || !(opts.maxMs >= 0)) throw new RangeError('baseMs and maxMs must be >= 0');
  if (!(factor >= 1)) throw new RangeError('factor must be >= 1');
  const a = Math.max(0, Math.floor(Number.isFinite(attempt) ? attempt : 0));
  // Capping the exponent keeps huge attempt counts from overflowing to Infinity/NaN.
  const ceiling = Math.min(opts.maxMs, opts.baseMs * factor ** Math.min(a, 64));
  const low = ceiling * (1 - jitter);
  return Math.floor(low + clamp01(rand()) * (ceiling - low));
}

function clamp01(x: number): number {
  if (!(x > 0)) return 0;
  return x >= 1 ? 1 - Number.EPSILON : x;
}
