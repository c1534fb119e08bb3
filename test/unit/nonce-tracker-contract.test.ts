/**
 * One NonceTracker contract (src/cwmp/nonce-tracker.ts), run against the memory tracker and the
 * Redis one (src/cluster/redis-nonce-tracker.ts) on a throwaway redis-server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { MemoryNonceTracker, type NonceTracker } from '../../src/cwmp/nonce-tracker.js';
import { RedisNonceTracker } from '../../src/cluster/redis-nonce-tracker.js';
import { findBinary } from '../helpers/brokers.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';

let seq = 0;
const fresh = (): string => `n${process.pid}-${++seq}-${Math.random().toString(36).slice(2)}`;

function contract(make: () => NonceTracker): void {
  test('nc must grow: a repeated or smaller nc is a replay, a larger one is accepted', async () => {
    const t = make();
    const n = fresh();
    assert.equal(await t.use(n, 1, 60_000), 'ok');
    assert.equal(await t.use(n, 1, 60_000), 'replay');
    assert.equal(await t.use(n, 3, 60_000), 'ok');
    assert.equal(await t.use(n, 2, 60_000), 'replay');
    assert.equal(await t.use(n, 4, 60_000), 'ok');
    assert.equal(await t.use(fresh(), 1, 60_000), 'ok', 'another nonce has its own count');
  });

  test('concurrent uses of one nc: exactly one is accepted', async () => {
    const t = make();
    const n = fresh();
    const r = await Promise.all(Array.from({ length: 20 }, () => t.use(n, 7, 60_000)));
    assert.equal(r.filter((x) => x === 'ok').length, 1);
  });

  test('a nonce binds to the first device; another device is refused, the same one accepted', async () => {
    const t = make();
    const n = fresh();
    assert.equal(await t.use(n, 1, 60_000), 'ok');
    assert.equal(await t.bind(n, 'dev-a', 60_000), true);
    assert.equal(await t.bind(n, 'dev-a', 60_000), true);
    assert.equal(await t.bind(n, 'dev-b', 60_000), false);
    // binding keeps the count
    assert.equal(await t.use(n, 1, 60_000), 'replay');
    assert.equal(await t.bind(fresh(), 'dev-b', 60_000), true);
  });

  test('a nonce is forgotten after its time to live', async () => {
    const t = make();
    const n = fresh();
    assert.equal(await t.use(n, 5, 50), 'ok');
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(await t.use(n, 1, 50), 'ok');
  });
}

describe('NonceTracker contract: memory', () => {
  contract(() => new MemoryNonceTracker());

  test('memory tracker: bounded, the oldest nonce goes first', async () => {
    const t = new MemoryNonceTracker(3);
    for (const n of ['a', 'b', 'c', 'd']) assert.equal(await t.use(n, 1, 60_000), 'ok');
    assert.equal(await t.use('a', 1, 60_000), 'ok', 'evicted');
    assert.equal(await t.use('d', 1, 60_000), 'replay');
  });
});

const redisSkip = findBinary('redis-server') ? false : 'redis-server is not installed (Debian package redis-server)';

describe('NonceTracker contract: Redis', { skip: redisSkip }, () => {
  let server: RedisHandle | null = null;
  let redis: Redis | null = null;
  before(async () => {
    server = await startRedis();
    redis = new Redis(server!.url);
  });
  after(async () => {
    redis?.disconnect();
    await server?.stop();
  });
  contract(() => new RedisNonceTracker(redis!, (...parts) => `nt${process.pid}:${parts.join(':')}`));
});
