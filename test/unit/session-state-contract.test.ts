/**
 * The SessionState contract (src/cwmp/session-state.ts), run against the memory port and the
 * Redis port (src/cluster/redis-session-state.ts, on a real redis-server): the same writes give
 * the same sessions, claims and queues. The Redis run skips when redis-server is not installed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../src/app/log.js';
import { ClusterBus } from '../../src/cluster/bus.js';
import { RedisSessionState } from '../../src/cluster/redis-session-state.js';
import type { SessionRecord } from '../../src/cwmp/session-machine.js';
import { MemorySessionState } from '../../src/cwmp/session-state-memory.js';
import { isRpcResultMessage, type SessionState } from '../../src/cwmp/session-state.js';
import { RedisStore } from '../../src/store/redis.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { QueuedRpc } from '../../src/store/types.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';

let redis: RedisHandle | null | undefined;
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await redis?.stop();
});

type Open = () => Promise<{ state: SessionState; stored: (deviceKey: string) => Promise<string[]> } | string>;

const sid = (): string => randomBytes(16).toString('hex');
const rec = (id: string, deviceKey: string): SessionRecord => ({
  id,
  deviceKey,
  version: '1-3',
  modelKey: 'OUI-PC-1',
  endpointId: `os::${deviceKey}`,
  inflight: null,
  rpcs: 0,
  seq: 1,
  lastPost: 1,
});
const queued = (id: string, deviceKey: string, origin: string, linger = false): QueuedRpc => ({
  id,
  deviceKey,
  rpc: { method: 'GetParameterValues', parameterNames: [`Device.${id}`] },
  createdAt: new Date().toISOString(),
  deadline: Date.now() + 60_000,
  origin,
  linger,
});

function contract(name: string, open: Open): void {
  test(`SessionState contract: ${name}`, async (t) => {
    const o = await open();
    if (typeof o === 'string') return t.skip(o);
    const { state, stored } = o;
    const me = state.instanceId;
    const dk = `DK-${randomBytes(3).toString('hex')}`;

    await t.test('open, load; a step refused at another seq, and the session returned as it is', async () => {
      const a = rec(sid(), dk);
      assert.deepEqual(await state.open(a), { previous: null, queued: 0 });
      assert.deepEqual(await state.load(a.id), a);
      const touched = await state.apply(a.id, 1, { post: true, take: false, next: null, end: false });
      assert.equal(touched.kind, 'done');
      assert.ok(touched.kind === 'done');
      assert.deepEqual(touched.state, { ...a, seq: 2, lastPost: 2 });
      assert.equal(touched.ended, false);
      assert.equal(touched.next, null);
      const stale = await state.apply(a.id, 1, { post: true, take: false, next: null, end: false });
      assert.deepEqual(stale, { kind: 'stale', current: { ...a, seq: 2, lastPost: 2 } });
      const bg = await state.apply(a.id, 2, { post: false, take: false, next: null, end: false });
      assert.ok(bg.kind === 'done');
      assert.deepEqual([bg.state.seq, bg.state.lastPost], [3, 2], 'a step that is not a POST leaves lastPost');
      assert.equal((await state.deviceState(dk)).inSession, true);
      const end = await state.apply(a.id, 3, { post: false, take: false, next: null, end: true });
      assert.ok(end.kind === 'done' && end.ended);
      assert.equal(await state.load(a.id), null);
      assert.deepEqual(await state.apply(a.id, 4, { post: true, take: false, next: null, end: false }), { kind: 'gone' });
      assert.equal((await state.deviceState(dk)).inSession, false);
    });

    await t.test('the ACS turn claims the queue head (a front RPC first) as the RPC in flight; take hands it back', async () => {
      const s = rec(sid(), dk);
      await state.open(s);
      assert.equal(await state.enqueue(queued('r1', dk, me), false, true), me, 'in session: this instance serves it');
      await state.enqueue(queued('r2', dk, me, true), false, true);
      await state.enqueue({ ...queued('cr', dk, '#cr-credentials'), origin: '#cr-credentials' }, true, false);
      assert.equal((await state.deviceState(dk)).queuedRpcs, 3);
      // (The credentials RPC is regenerated in the next session: memory does not persist it; Redis shares it.)
      assert.deepEqual(
        (await stored(dk)).filter((id) => id !== 'cr'),
        ['r1', 'r2'],
      );

      const c1 = await state.apply(s.id, 1, { post: true, take: false, next: 'end', end: false });
      assert.ok(c1.kind === 'done' && c1.next?.kind === 'claimed');
      assert.equal(c1.next.rpc.id, 'cr');
      assert.equal(c1.next.more, 2);
      assert.deepEqual(c1.state.inflight, { id: 'cr', method: 'GetParameterValues', origin: '#cr-credentials', linger: false });
      assert.equal(c1.state.rpcs, 1);

      const c2 = await state.apply(s.id, 2, { post: true, take: true, next: 'end', end: false });
      assert.ok(c2.kind === 'done' && c2.next?.kind === 'claimed');
      assert.equal(c2.taken?.id, 'cr');
      assert.equal(c2.next.rpc.id, 'r1');
      assert.equal(await state.unqueue('r1'), false, 'claimed: no longer queued');
      assert.equal(await state.unqueue('r2'), true);
      assert.deepEqual(await stored(dk), ['r1'], 'in flight stays stored until taken');

      await state.enqueue(queued('r3', dk, me, true), false, true);
      const c3 = await state.apply(s.id, 3, { post: true, take: true, next: 'end', end: false });
      assert.ok(c3.kind === 'done' && c3.next?.kind === 'claimed');
      assert.equal(c3.taken?.id, 'r1');
      assert.deepEqual(c3.state.inflight, { id: 'r3', method: 'GetParameterValues', origin: me, linger: true });
      assert.deepEqual(await stored(dk), ['r3']);

      const lingering = await state.apply(s.id, 4, { post: true, take: true, next: 'linger', end: false });
      assert.ok(lingering.kind === 'done');
      assert.deepEqual(lingering.next, { kind: 'queue-empty', ended: false });
      assert.equal(lingering.ended, false);
      assert.equal(lingering.state.inflight, null);
      assert.deepEqual(await stored(dk), []);

      const done = await state.apply(s.id, 5, { post: false, take: false, next: 'end', end: false });
      assert.ok(done.kind === 'done');
      assert.deepEqual(done.next, { kind: 'queue-empty', ended: true });
      assert.equal(done.ended, true);
      assert.equal(done.state.rpcs, 3);
      assert.equal(await state.load(s.id), null);
    });

    await t.test('a new session of the device removes the previous one with its RPC in flight', async () => {
      const old = rec(sid(), dk);
      await state.open(old);
      await state.enqueue(queued('x1', dk, me), false, true);
      await state.enqueue(queued('x2', dk, me), false, true);
      const c = await state.apply(old.id, 1, { post: true, take: false, next: 'end', end: false });
      assert.ok(c.kind === 'done' && c.next?.kind === 'claimed');
      const fresh = rec(sid(), dk);
      const { previous, queued: left } = await state.open(fresh);
      assert.equal(left, 1);
      assert.equal(previous?.id, old.id);
      assert.deepEqual(previous?.inflight, { id: 'x1', method: 'GetParameterValues', origin: me, linger: false });
      assert.equal(await state.load(old.id), null);
      assert.deepEqual(await stored(dk), ['x2'], 'the lost RPC is gone from the store');
      assert.equal(await state.unqueue('x2'), true);
      await state.apply(fresh.id, 1, { post: true, take: false, next: 'end', end: false });
      assert.equal((await state.deviceState(dk)).inSession, false);
    });
  });
}

contract('memory', async () => {
  const store = openSqliteStore(':memory:');
  closers.push(() => store.close());
  // Written at once, as the Redis state does (the write-behind of read-only RPCs has its own test below).
  const state = new MemorySessionState(store, silentLogger(), { persistReadOnlyAfterMs: 0 });
  return { state, stored: async (dk) => (await store.listQueuedRpcs(dk)).map((q) => q.id) };
});

test('memory: read-only RPCs are written behind, only when still queued; others at once, and marked sent', async () => {
  const store = openSqliteStore(':memory:');
  closers.push(() => store.close());
  const state = new MemorySessionState(store, silentLogger(), { persistReadOnlyAfterMs: 30 });
  const dk = 'OUI-PC-WB1';
  const rpc = (id: string, method: 'GetParameterValues' | 'Reboot'): QueuedRpc => ({
    id,
    deviceKey: dk,
    rpc: method === 'Reboot' ? { method, commandKey: 'k' } : { method, parameterNames: ['Device.DeviceInfo.SoftwareVersion'] },
    createdAt: new Date().toISOString(),
    deadline: Date.now() + 60_000,
    origin: state.instanceId,
  });
  const ids = async (): Promise<string[]> => (await store.listQueuedRpcs(dk)).map((q) => q.id);
  await state.enqueue(rpc('g1', 'GetParameterValues'), false, true);
  await state.enqueue(rpc('r1', 'Reboot'), false, true);
  await state.enqueue(rpc('g2', 'GetParameterValues'), false, true);
  assert.deepEqual(await ids(), ['r1'], 'the Reboot is stored before enqueue returns; the Gets wait');
  // A session takes g1 before the write-behind: it never reaches the store.
  const s: SessionRecord = {
    id: 'wb-session',
    deviceKey: dk,
    version: '1-0',
    modelKey: 'm',
    endpointId: 'os::x',
    inflight: null,
    rpcs: 0,
    seq: 1,
    lastPost: 1,
  };
  await state.open(s);
  const r = await state.apply(s.id, 1, { post: true, take: false, next: 'linger', end: false });
  assert.ok(r.kind === 'done' && r.next?.kind === 'claimed' && r.next.rpc.id === 'g1');
  // The write-behind timer comes (waited for, not timed).
  for (let i = 0; i < 1000 && !(await ids()).includes('g2'); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual((await ids()).sort(), ['g2', 'r1'], 'g2, still queued after the window, is stored; g1 never was');
  // The Reboot is marked sent before it leaves (at most once); a read-only RPC is not (it is sent again after a crash).
  const r2 = await state.apply(s.id, 2, { post: true, take: true, next: 'linger', end: false });
  assert.ok(r2.kind === 'done' && r2.next?.kind === 'claimed' && r2.next.rpc.id === 'r1');
  assert.equal(typeof (await store.listQueuedRpcs(dk)).find((q) => q.id === 'r1')?.sentAt, 'number');
  const r3 = await state.apply(s.id, 3, { post: true, take: true, next: 'linger', end: false });
  assert.ok(r3.kind === 'done' && r3.next?.kind === 'claimed' && r3.next.rpc.id === 'g2');
  assert.equal((await store.listQueuedRpcs(dk)).find((q) => q.id === 'g2')?.sentAt, undefined);
  await state.apply(s.id, 4, { post: true, take: true, next: 'end', end: false });
  assert.deepEqual(await ids(), [], 'taken RPCs leave the store');
  // A session that ends with a deferred RPC still queued writes it at once: it waits for the next session.
  const s2: SessionRecord = { ...s, id: 'wb-session-2', seq: 1, lastPost: 1 };
  await state.open(s2);
  await state.enqueue(rpc('g3', 'GetParameterValues'), false, true);
  assert.deepEqual(await ids(), []);
  await state.apply(s2.id, 1, { post: true, take: false, next: null, end: true });
  assert.deepEqual(await ids(), ['g3'], 'written when the session ended, before the window');
  // close() writes what is still deferred: it stays queued across a restart.
  await state.enqueue(rpc('g4', 'GetParameterValues'), false, true);
  await state.close();
  assert.deepEqual((await ids()).sort(), ['g3', 'g4']);
});

contract('Redis', async () => {
  redis ??= await startRedis();
  if (!redis) return 'redis-server not installed (apt-get install redis-server; .ci/run does)';
  const store = new RedisStore({ url: redis.url, prefix: `c${randomBytes(4).toString('hex')}:`, owner: 'a' });
  const bus = new ClusterBus(store.redis, silentLogger());
  closers.push(
    () => store.close(),
    () => bus.close(),
  );
  // Counting the RPCs still queued after a claim, as with acs.holdRequests (its only reader).
  const state = new RedisSessionState(store, bus, 'a', 5000, true);
  // Queued RPCs are their JSON in the device's list; the one in flight is held by the session's instance.
  const stored = async (dk: string): Promise<string[]> => {
    const ids = (await store.listQueuedRpcs(dk)).map((q) => q.id);
    const inflight = state.inflightOf(dk);
    return (inflight ? [...ids, inflight] : ids).sort();
  };
  return { state, stored };
});

test('an RPC result relayed over the bus is taken only in its shape (id, and an outcome or an error)', () => {
  assert.equal(isRpcResultMessage({ id: 'r1', outcome: { kind: 'response', response: {} } }), true);
  assert.equal(isRpcResultMessage({ id: 'r1', error: { reason: 'timeout', message: 'late' } }), true);
  for (const bad of [
    null,
    [],
    'x',
    {},
    { id: 7, outcome: { kind: 'response' } },
    { id: 'r1' },
    { id: 'r1', outcome: 'ok' },
    { id: 'r1', error: { reason: 1, message: '' } },
  ])
    assert.equal(isRpcResultMessage(bad), false, JSON.stringify(bad));
});
