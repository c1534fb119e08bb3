/**
 * The new-session token bucket per address (peer-limits.ts) on a controlled clock: the burst,
 * the refill, Retry-After, the loopback exemption and the bound on tracked addresses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopback, PeerLimits } from '../../src/cwmp/peer-limits.js';

function limits(rate: number, over: { exemptLoopback?: boolean; maxTrackedAddresses?: number } = {}) {
  const clock = { t: 0 };
  const l = new PeerLimits(
    { maxConnections: 0, newSessionsPerMinute: rate, exemptLoopback: over.exemptLoopback ?? false, maxTrackedAddresses: over.maxTrackedAddresses },
    () => clock.t,
  );
  return { l, clock };
}

test('a burst of newSessionsPerMinute, then one more per 60/rate seconds; other addresses unaffected', () => {
  const { l, clock } = limits(6);
  for (let i = 0; i < 6; i++) assert.equal(l.allowNewSession('10.0.0.1'), true);
  assert.equal(l.allowNewSession('10.0.0.1'), false);
  assert.equal(l.retryAfterS('10.0.0.1'), 10);
  assert.equal(l.allowNewSession('10.0.0.2'), true);
  clock.t += 9_000;
  assert.equal(l.allowNewSession('10.0.0.1'), false);
  clock.t += 1_000;
  assert.equal(l.allowNewSession('10.0.0.1'), true);
  assert.equal(l.counts.sessionsRefused, 2);
});

test('loopback is exempt when configured; a rate of 0 means no limit', () => {
  const { l } = limits(1, { exemptLoopback: true });
  for (let i = 0; i < 10; i++) assert.equal(l.allowNewSession('127.0.0.9'), true);
  for (let i = 0; i < 10; i++) assert.equal(l.allowNewSession('::1'), true);
  assert.equal(l.allowNewSession('192.0.2.1'), true);
  assert.equal(l.allowNewSession('192.0.2.1'), false);
  const { l: open } = limits(0);
  for (let i = 0; i < 10; i++) assert.equal(open.allowNewSession('192.0.2.1'), true);
  assert.deepEqual(['127.0.0.1', '::ffff:127.0.0.2', '::1', '10.0.0.1', '::2'].map(isLoopback), [true, true, true, false, false]);
});

test('tracked addresses stay bounded when every request comes from a new address', () => {
  const { l, clock } = limits(2, { maxTrackedAddresses: 1000 });
  for (let i = 0; i < 100_000; i++) {
    assert.equal(l.allowNewSession(`2001:db8::${i.toString(16)}`), true);
    clock.t += 1;
  }
  const size = (l as unknown as { buckets: Map<string, unknown> }).buckets.size;
  assert.ok(size <= 1000, `${size} buckets kept`);
  // The most recent address keeps its bucket: its second session is counted.
  assert.equal(l.allowNewSession('2001:db8::1869f'), true);
  assert.equal(l.allowNewSession('2001:db8::1869f'), false);
});
