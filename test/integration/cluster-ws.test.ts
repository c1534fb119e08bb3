/**
 * Scale-out with a WebSocket controller: it is connected to instance A only, while the device's
 * CWMP sessions run on instance B. A Reboot() requested through A makes the device boot into B:
 * the Boot! that B sees reaches the controller through A, exactly once (Records for a controller
 * no MTP of an instance reaches are relayed over Redis to the instance that holds its connection).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CwmpUspProxy } from '../../src/app/proxy.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { UspControllerClient, add, operate } from '../../src/tools/controller/client.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';
import { RedisStore } from '../../src/store/redis.js';
import { startTestProxy } from '../helpers/test-proxy.js';
import { STRICT_SIM_WITH_COOKIES } from '../helpers/sim.js';

const CTL = 'proto::cluster-ws-ctl';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-cluster-ws-'));
let redis: RedisHandle | null = null;
const proxies: CwmpUspProxy[] = [];
let fleet: Fleet | null = null;
let ctl: UspControllerClient | null = null;

before(async () => {
  redis = await startRedis();
  if (!redis) return;
  for (const id of ['ws-a', 'ws-b']) {
    const { proxy: p } = await startTestProxy(
      {
        'store.redis.url': redis.url,
        'store.redis.prefix': 'cw:',
        'cluster.instanceId': id,
        'cluster.heartbeatMs': 200,
        'cluster.instanceTtlMs': 1000,
        'admin.enabled': false,
        controllers: [{ endpointId: CTL }],
      },
      { dataDir: path.join(dir, id) },
    );
    proxies.push(p);
  }
  // The device talks CWMP to B only.
  fleet = new Fleet({
    quirks: STRICT_SIM_WITH_COOKIES,
    acsUrl: `http://127.0.0.1:${proxies[1]!.acsPort}/`,
    count: 1,
    model: 'tr181',
    serialPrefix: 'CWS',
    periodicIntervalS: null,
    timers: { rebootDelayMs: 300 },
  });
  await fleet.start();
});

after(async () => {
  await ctl?.close();
  await fleet?.stop();
  for (const p of proxies) await p.stop();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a WebSocket controller on instance A gets the Boot! that instance B saw, once', { timeout: 60_000 }, async (t) => {
  if (!redis) return t.skip('redis-server not installed (apt-get install redis-server; .ci/run does)');
  const agent = (await proxies[0]!.store.listDevices())[0]!.endpointId;
  ctl = new UspControllerClient({
    endpointId: CTL,
    agentId: agent,
    transport: { mtp: 'ws', url: `ws://127.0.0.1:${proxies[0]!.usp.ws!.serverAddress()!.port}/usp` },
    timeoutMs: 15_000,
  });
  await ctl.connect();
  const boots: Msg[] = [];
  ctl.on('notify', (m) => {
    if (m.body.request?.notify?.event?.eventName === 'Boot!') boots.push(m);
  });
  const sub = await ctl.request(
    add([{ objPath: 'Device.LocalAgent.Subscription.', params: { Enable: 'true', ID: 'boot', NotifType: 'Event', ReferenceList: 'Device.Boot!' } }]),
  );
  assert.equal(sub.body.msgBody, 'response', JSON.stringify(sub.body));
  // B learns the new row (announced over Redis pub/sub).
  for (const deadline = Date.now() + 5000; Date.now() < deadline && !proxies[1]!.usp.localAgent.subscriptions(agent).some((s) => s.values.ID === 'boot'); )
    await new Promise((r) => setTimeout(r, 20));
  assert.ok(
    proxies[1]!.usp.localAgent.subscriptions(agent).some((s) => s.values.ID === 'boot'),
    'B has the Subscription row added through A',
  );

  const r = await ctl.request(operate('Device.Reboot()', {}, { commandKey: 'ws-cluster' }));
  assert.equal(r.body.response?.operateResp?.operationResults[0]?.operationResp, 'reqObjPath', JSON.stringify(r.body));
  const deadline = Date.now() + 20_000;
  while (boots.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
  await new Promise((res) => setTimeout(res, 1000)); // a duplicate would arrive now
  assert.equal(boots.length, 1, 'exactly one Boot!');
  assert.equal(boots[0]!.body.request!.notify!.event!.params.CommandKey, 'ws-cluster');
});

test('an instance restarted under the same cluster.instanceId finishes the async commands its previous run left running', { timeout: 30_000 }, async (t) => {
  if (!redis) return t.skip('redis-server not installed');
  // What a killed run of instance "same-id" left behind: the Request row of a running command.
  const leftover = new RedisStore({ url: redis.url, prefix: 'cw2:', owner: 'same-id', deviceCacheTtlMs: 0 });
  await leftover.putRequest('os::F0AD4E-GONE1', 3, {
    Alias: 'cpe-3',
    Originator: CTL,
    Command: 'Device.IP.Diagnostics.IPPing()',
    CommandKey: 'k',
    Status: 'Active',
  });
  const { proxy: p } = await startTestProxy(
    {
      'usp.websocket.enabled': false,
      'store.redis.url': redis.url,
      'store.redis.prefix': 'cw2:',
      'cluster.instanceId': 'same-id',
      'admin.enabled': false,
      controllers: [{ endpointId: CTL }],
    },
    { dataDir: path.join(dir, 'same-id') },
  );
  try {
    assert.deepEqual(await leftover.listAllRequests(), [], 'the command was finished (OperationComplete 7022) and its row removed');
  } finally {
    await p.stop();
    await leftover.close();
  }
});

test("re-seeding an agent's rows (another instance changed them) keeps a row this instance wrote while the snapshot was being read", {
  timeout: 30_000,
}, async (t) => {
  if (!redis) return t.skip('redis-server not installed');
  const a = proxies[0]!;
  const store = a.store as RedisStore;
  const agent = (await store.listDevices())[0]!.endpointId;
  const c = new UspControllerClient({
    endpointId: CTL,
    agentId: agent,
    transport: { mtp: 'ws', url: `ws://127.0.0.1:${a.usp.ws!.serverAddress()!.port}/usp` },
    timeoutMs: 15_000,
  });
  await c.connect();
  // A's snapshot is read from Redis at once but handed back only after A's own Add has landed.
  const list = store.listSubscriptions.bind(store);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let reads = 0;
  store.listSubscriptions = async (eid) => {
    const rows = await list(eid);
    if (reads++ === 0) await gate;
    return rows;
  };
  try {
    await store.redis.publish(store.key('ch', 'la'), JSON.stringify({ from: 'ws-b', agentEid: agent }));
    const deadline = Date.now() + 5000;
    while (reads === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(reads, 1, 'A started re-seeding the agent');
    const added = await c.request(
      add([
        {
          objPath: 'Device.LocalAgent.Subscription.',
          params: { Enable: 'true', ID: 'own-row', NotifType: 'ValueChange', ReferenceList: 'Device.DeviceInfo.UpTime' },
        },
      ]),
    );
    assert.equal(added.body.msgBody, 'response', JSON.stringify(added.body));
    release();
    while (reads < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(reads >= 2, 'the stale snapshot was read again');
    const ids = a.usp.localAgent.subscriptions(agent).map((s) => s.values.ID);
    assert.ok(ids.includes('own-row'), `A still has its own row: ${ids.join(' ')}`);
  } finally {
    release();
    store.listSubscriptions = list;
    await c.close();
  }
});
