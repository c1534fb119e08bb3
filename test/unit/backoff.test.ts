import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backoffDelayMs, cwmpRetryDelayMs, cwmpRetryWindow, CWMP_RETRY_CAP } from '../../src/util/backoff.js';

test('cwmpRetryWindow: TR-069 3.2.1.1 table with the defaults (m=5 s, k=2000)', () => {
  assert.deepEqual(cwmpRetryWindow(1), { minMs: 5_000, maxMs: 10_000 });
  assert.deepEqual(cwmpRetryWindow(2), { minMs: 10_000, maxMs: 20_000 });
  assert.deepEqual(cwmpRetryWindow(3), { minMs: 20_000, maxMs: 40_000 });
  assert.deepEqual(cwmpRetryWindow(4), { minMs: 40_000, maxMs: 80_000 });
  assert.deepEqual(cwmpRetryWindow(5), { minMs: 80_000, maxMs: 160_000 });
  assert.deepEqual(cwmpRetryWindow(10), { minMs: 2_560_000, maxMs: 5_120_000 });
  // n >= 10 stays at the n = 10 window.
  assert.deepEqual(cwmpRetryWindow(11), cwmpRetryWindow(10));
  assert.deepEqual(cwmpRetryWindow(1000), cwmpRetryWindow(CWMP_RETRY_CAP));
  // n < 1 is the first retry.
  assert.deepEqual(cwmpRetryWindow(0), cwmpRetryWindow(1));
});

test('cwmpRetryWindow: custom CWMPRetryMinimumWaitInterval / CWMPRetryIntervalMultiplier', () => {
  assert.deepEqual(cwmpRetryWindow(1, { minWaitS: 10, multiplier: 1500 }), { minMs: 10_000, maxMs: 15_000 });
  assert.deepEqual(cwmpRetryWindow(2, { minWaitS: 10, multiplier: 1500 }), { minMs: 15_000, maxMs: 22_500 });
  assert.deepEqual(cwmpRetryWindow(3, { minWaitS: 1, multiplier: 1000 }), { minMs: 1_000, maxMs: 1_000 });
  assert.throws(() => cwmpRetryWindow(1, { multiplier: 999 }), RangeError);
  assert.throws(() => cwmpRetryWindow(1, { minWaitS: 0 }), RangeError);
});

test('cwmpRetryDelayMs: uniform within the window', () => {
  assert.equal(
    cwmpRetryDelayMs(1, {}, () => 0),
    5_000,
  );
  assert.equal(
    cwmpRetryDelayMs(1, {}, () => 0.5),
    7_500,
  );
  const top = cwmpRetryDelayMs(2, {}, () => 0.999999);
  assert.ok(top >= 19_999 && top <= 20_000);
  fc.assert(
    fc.property(fc.integer({ min: -5, max: 50 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, r) => {
      const { minMs, maxMs } = cwmpRetryWindow(n);
      const d = cwmpRetryDelayMs(n, {}, () => r);
      return d >= minMs && d <= maxMs;
    }),
  );
});

test('backoffDelayMs: exponential ceiling, equal jitter by default, capped', () => {
  const o = { baseMs: 100, maxMs: 1_000 };
  assert.equal(
    backoffDelayMs(0, o, () => 0),
    50,
  );
  assert.equal(
    backoffDelayMs(0, o, () => 0.999999),
    99,
  );
  assert.equal(
    backoffDelayMs(1, o, () => 0),
    100,
  );
  assert.equal(
    backoffDelayMs(2, o, () => 0),
    200,
  );
  assert.equal(
    backoffDelayMs(10, o, () => 0),
    500,
  );
  assert.equal(
    backoffDelayMs(1e9, o, () => 0),
    500,
  );
  assert.equal(
    backoffDelayMs(3, { ...o, factor: 3, jitter: 0 }, () => 0.7),
    1_000,
  );
  assert.equal(
    backoffDelayMs(1, { ...o, factor: 3, jitter: 0 }, () => 0.7),
    300,
  );
  assert.equal(
    backoffDelayMs(2, { ...o, jitter: 1 }, () => 0),
    0,
  );
  assert.throws(() => backoffDelayMs(0, { baseMs: 1, maxMs: 1, factor: 0.5 }), RangeError);
});

test('backoffDelayMs: always within [0, maxMs] and never NaN', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -10, max: 10_000 }),
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.double({ min: 1, max: 10, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (attempt, baseMs, maxMs, factor, r) => {
        const d = backoffDelayMs(attempt, { baseMs, maxMs, factor }, () => r);
        return Number.isInteger(d) && d >= 0 && d <= maxMs;
      },
    ),
  );
});
