/**
 * RedisCoordination between two "instances" (two RedisStores with their own owner on one prefix,
 * each with its own bus) on a throwaway redis-server: once-keys are won once, instance numbers
 * are never handed out twice, and every cross-instance signal (relayed Records, NotifyResp acks,
 * new agents, row writes) reaches the other instance and not the sender.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/app/log.js';
import { ClusterBus } from '../../src/cluster/bus.js';
import { Cluster } from '../../src/cluster/cluster.js';
import { RedisCoordination } from '../../src/cluster/coordination.js';
import { RedisStore } from '../../src/store/redis.js';
import type { CoordinationEvents } from '../../src/usp/agent/coordination.js';
import { findBinary } from '../helpers/brokers.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';

const redisSkip = findBinary('redis-server') ? false : 'redis-server is not installed (Debian package redis-server; scripts/ci-brokers.sh installs it)';
let server: RedisHandle | null = null;
let seq = 0;

interface Instance {
  store: RedisStore;
  bus: ClusterBus;
  coordination: RedisCoordination;
  close(): Promise<void>;
}

async function instances(n: number): Promise<Instance[]> {
  const prefix = `coord${process.pid}-${++seq}:`;
  const out: Instance[] = [];
  for (let i = 0; i < n; i++) {
    const store = new RedisStore({ url: server!.url, prefix, owner: `inst-${i}`, deviceCacheTtlMs: 0 });
    const bus = new ClusterBus(store.redis, silentLogger());
    const coordination = new RedisCoordination(store, bus, silentLogger());
    await coordination.start();
    out.push({
      store,
      bus,
      coordination,
      close: async () => {
        await bus.close();
        await store.close();
      },
    });
  }
  return out;
}

/** The next event of this kind (pub/sub is asynchronous), or a clear failure after 5 s. */
function next<K extends keyof CoordinationEvents>(c: RedisCoordination, event: K): Promise<CoordinationEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${String(event)} event within 5 s`)), 5000);
    c.once(event, ((e: CoordinationEvents[K][0]) => {
      clearTimeout(timer);
      resolve(e);
    }) as never);
  });
}

describe('RedisCoordination', { skip: redisSkip }, () => {
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });

  it('a once-key is won by exactly one instance; instance numbers are unique and respect the floor', async () => {
    const [a, b] = await instances(2);
    try {
      const wins = await Promise.all([a!, b!, a!, b!].map((x) => x.coordination.claimOnce('periodic|agent|ctl|42', 10_000)));
      assert.equal(wins.filter(Boolean).length, 1);
      const numbers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a! : b!).coordination.allocateInstance('os::A', 'Device.LocalAgent.Subscription.', 1)),
      );
      assert.equal(new Set(numbers).size, 20);
      assert.deepEqual([...numbers].sort((x, y) => x - y)[0], 1);
      // A table that already holds rows up to 30 (restored) never gets a number below its next.
      assert.equal(await a!.coordination.allocateInstance('os::A', 'Device.LocalAgent.Request.', 31), 31);
      assert.equal(await b!.coordination.allocateInstance('os::A', 'Device.LocalAgent.Request.', 1), 32);
    } finally {
      await a!.close();
      await b!.close();
    }
  });

  it('relayed Records, NotifyResp acks and new agents reach the other instance, not the sender', async () => {
    const [a, b] = await instances(2);
    const own: string[] = [];
    for (const k of ['relayedRecord', 'notifyResp', 'agentAdded'] as const) a!.coordination.on(k, () => own.push(k));
    try {
      const bytes = new Uint8Array([1, 2, 3, 250]);
      const relayed = next(b!.coordination, 'relayedRecord');
      assert.equal(a!.coordination.relayRecord({ agentEid: 'os::A', controllerEid: 'proto::c', bytes, msgType: 'NOTIFY' }), true);
      const r = await relayed;
      assert.deepEqual({ ...r, bytes: [...r.bytes] }, { agentEid: 'os::A', controllerEid: 'proto::c', bytes: [1, 2, 3, 250], msgType: 'NOTIFY' });

      const ack = next(b!.coordination, 'notifyResp');
      a!.coordination.relayNotifyResp('os::A', 'proto::c', 'notify-1');
      assert.deepEqual(await ack, { agentEid: 'os::A', controllerEid: 'proto::c', msgId: 'notify-1' });

      const added = next(b!.coordination, 'agentAdded');
      a!.coordination.announceAgent('os::NEW');
      assert.deepEqual(await added, { endpointId: 'os::NEW' });
      assert.deepEqual(own, []);
    } finally {
      await a!.close();
      await b!.close();
    }
  });

  it('a row write is announced once stored: the other instance gets the rows as stored then', async () => {
    const [a, b] = await instances(2);
    try {
      const changed = next(b!.coordination, 'rowsChanged');
      a!.coordination.rowsWritten('os::A', a!.store.putSubscription('os::A', 3, { ID: 's3', Enable: 'true' }));
      const e = await changed;
      assert.equal(e.agentEid, 'os::A');
      assert.deepEqual(
        e.subscriptions.map((s) => [s.instance, s.values.ID]),
        [[3, 's3']],
      );
      assert.deepEqual(e.requests, []);
    } finally {
      await a!.close();
      await b!.close();
    }
  });

  it('USP requests in progress are kept per instance until answered', async () => {
    const [a] = await instances(1);
    try {
      const key = a!.store.key('ureq', 'inst-0');
      a!.coordination.requestStarted('os::A', 'proto::c', 'm1');
      a!.coordination.requestStarted('os::A', 'proto::c', 'm2');
      await a!.coordination.writeTracked(); // both have run TRACK_AFTER_MS
      a!.coordination.requestStarted('os::A', 'proto::c', 'm3');
      // No heartbeat has renewed this instance's liveness: the HDEL's reply decides (the entry was ours).
      const m1 = a!.coordination.requestAnswered('os::A', 'proto::c', 'm1');
      assert.ok(m1 instanceof Promise);
      assert.equal(await m1, true);
      // m3 was answered before it was ever written: nothing to delete, nothing to wait for.
      assert.equal(a!.coordination.requestAnswered('os::A', 'proto::c', 'm3'), true);
      await a!.coordination.writeTracked();
      const open = await a!.store.redis.hgetall(key);
      assert.deepEqual(
        Object.values(open).map((v) => JSON.parse(v)),
        [{ agentEid: 'os::A', controllerEid: 'proto::c', msgId: 'm2' }],
      );
      // Liveness renewed just now: the answer goes at once, its HDEL written ahead of it.
      a!.coordination.livenessRenewed(Date.now(), 60_000, false);
      assert.equal(a!.coordination.requestAnswered('os::A', 'proto::c', 'm2'), true);
      assert.deepEqual(await a!.store.redis.hgetall(key), {});
      // A lapse found by a heartbeat after an entry was written: that entry is checked again.
      a!.coordination.requestStarted('os::A', 'proto::c', 'm4');
      await a!.coordination.writeTracked();
      a!.coordination.livenessRenewed(Date.now(), 60_000, true);
      assert.ok(a!.coordination.requestAnswered('os::A', 'proto::c', 'm4') instanceof Promise);
    } finally {
      await a!.close();
    }
  });

  it('a request gets one answer: a stalled instance declared dead drops its own answer to a request the takeover answered', async () => {
    const [a, b] = await instances(2);
    const sent: { from: string; to: string; msgId: string; code: number | undefined }[] = [];
    const cluster = (x: Instance, heartbeatMs: number): Cluster =>
      new Cluster(x.store, { instanceId: x.store.owner, heartbeatMs, instanceTtlMs: 300, shareGroup: 'g', acsUrl: '' }, silentLogger(), x.bus, {
        coordination: x.coordination,
        endpoint: {
          sendToController: async (from, to, msg) => {
            sent.push({ from, to, msgId: msg.header.msgId, code: msg.body.error?.errCode });
            return true;
          },
        },
        notifier: { resume: () => undefined },
        deviceEvent: () => undefined,
        finishOrphanRequests: async () => undefined,
      });
    // A beats once at start and then stalls (its next heartbeat is an hour away): its liveness key lapses.
    const ca = cluster(a!, 3_600_000);
    const cb = cluster(b!, 50);
    try {
      await ca.start();
      a!.coordination.requestStarted('os::A', 'proto::c', 'slow');
      a!.coordination.requestStarted('os::A', 'proto::c', 'late');
      await a!.coordination.writeTracked();
      await cb.start();
      while (!cb.takenOver.includes('inst-0')) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(sent.map((x) => `${x.from} ${x.to} ${x.msgId} ${x.code}`).sort(), ['os::A proto::c late 7003', 'os::A proto::c slow 7003']);
      // A wakes up and finishes its requests: both were answered by the takeover, so neither goes again.
      assert.equal(await a!.coordination.requestAnswered('os::A', 'proto::c', 'slow'), false);
      assert.equal(await a!.coordination.requestAnswered('os::A', 'proto::c', 'late'), false);
      // One started after the takeover is A's own again.
      a!.coordination.requestStarted('os::A', 'proto::c', 'after');
      await a!.coordination.writeTracked();
      assert.equal(await a!.coordination.requestAnswered('os::A', 'proto::c', 'after'), true);
    } finally {
      await cb.stop();
      await ca.stop();
      await a!.close();
      await b!.close();
    }
  });
});
