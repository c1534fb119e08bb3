/**
 * Scale-out over STOMP: two instances on one Redis subscribe to the same RabbitMQ queue (competing
 * consumers, README "Scaling out"), each with its own half of the devices' CWMP sessions. A
 * controller sends Gets and Sets to every device: each request is answered exactly once, both
 * instances take requests, and a request taken by one instance for a device whose sessions run
 * on the other is carried out through Redis.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { silentLogger } from '../../src/app/log.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { UspControllerClient, add, get, set } from '../../src/tools/controller/client.js';
import { startRabbitStomp, type RabbitStompHandle } from '../helpers/brokers.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';
import { inform } from '../helpers/cwmp-fixtures.js';
import { encodeSoap } from '../../src/cwmp/soap.js';
import { testConfig } from '../helpers/test-proxy.js';
import { STRICT_SIM_WITH_COOKIES } from '../helpers/sim.js';

const CTL = 'proto::cluster-stomp-ctl';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-cluster-stomp-'));
let redis: RedisHandle | null = null;
let rabbit: RabbitStompHandle | null = null;
const proxies: CwmpUspProxy[] = [];
const fleets: Fleet[] = [];
let ctl: UspControllerClient | null = null;

function proxyFor(id: string): CwmpUspProxy {
  const config = testConfig(
    {
      'acs.connectionRequest.deadlineMs': 4000,
      'usp.websocket.enabled': false,
      'usp.stomp.host': rabbit!.host,
      'usp.stomp.port': rabbit!.port,
      'usp.stomp.destination': '/queue/usp.cs-agent',
      'usp.reconnectBaseMs': 200,
      'store.redis.url': redis!.url,
      'store.redis.prefix': 'cs:',
      'cluster.instanceId': id,
      'cluster.heartbeatMs': 200,
      'cluster.instanceTtlMs': 1000,
      'admin.enabled': false,
      controllers: [{ endpointId: CTL, stomp: { destination: '/queue/usp.cs-ctl' } }],
    },
    path.join(dir, id),
  );
  return new CwmpUspProxy(config, silentLogger());
}

before(async () => {
  [redis, rabbit] = await Promise.all([startRedis({ appendonly: true }), startRabbitStomp()]);
  if (!redis || !rabbit) return;
  for (const id of ['cs-a', 'cs-b']) {
    const p = proxyFor(id);
    await p.start();
    proxies.push(p);
    const fleet = new Fleet({
      quirks: STRICT_SIM_WITH_COOKIES,
      acsUrl: `http://127.0.0.1:${p.acsPort}/`,
      count: 10,
      model: 'tr181',
      serialPrefix: `CS${id.slice(-1).toUpperCase()}`,
      periodicIntervalS: null,
    });
    await fleet.start();
    fleets.push(fleet);
  }
  ctl = new UspControllerClient({
    endpointId: CTL,
    agentId: 'none',
    transport: {
      mtp: 'stomp',
      host: rabbit.host,
      port: rabbit.port,
      login: 'guest',
      passcode: 'guest',
      controllerDest: '/queue/usp.cs-ctl',
      agentDest: '/queue/usp.cs-agent',
    },
    timeoutMs: 20_000,
  });
  await ctl.connect();
});

after(async () => {
  await ctl?.close();
  await Promise.all(fleets.map((f) => f.stop()));
  for (const p of proxies) await p.stop();
  await Promise.all([rabbit?.stop(), redis?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

test('two instances as competing consumers of one STOMP queue: every request answered once, by either instance', { timeout: 120_000 }, async (t) => {
  if (!redis) return t.skip('redis-server not installed (apt-get install redis-server; .ci/run does)');
  if (!rabbit) return t.skip('rabbitmq-server not installed (apt-get install rabbitmq-server; .ci/run does)');
  const c = ctl!;
  const answers = new Map<string, number>();
  c.on('msg', (m) => {
    if (m.body.msgBody === 'response' || m.body.msgBody === 'error') answers.set(m.header.msgId, (answers.get(m.header.msgId) ?? 0) + 1);
  });
  const devices = await proxies[0]!.store.listDevices({ limit: 100 });
  assert.equal(devices.length, 20, 'both halves of the fleet registered in the one shared store');
  const before = proxies.map((p) => p.usp.endpoint.stats.recordsIn);

  const results = await Promise.all(
    devices.flatMap((d, i) => [
      c.request(get(['Device.DeviceInfo.SerialNumber']), 20_000, d.endpointId),
      c.request(set([{ objPath: 'Device.DeviceInfo.', params: { ProvisioningCode: `cs-${i}` } }]), 20_000, d.endpointId),
    ]),
  );
  const value = (m: Msg): string | undefined => m.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams['SerialNumber'];
  for (const [i, d] of devices.entries()) {
    assert.equal(value(results[2 * i]!), d.deviceId.serialNumber, `Get on ${d.endpointId}: ${JSON.stringify(results[2 * i]!.body)}`);
    assert.equal(
      results[2 * i + 1]!.body.response?.setResp?.updatedObjResults.length,
      1,
      `Set on ${d.endpointId}: ${JSON.stringify(results[2 * i + 1]!.body)}`,
    );
  }
  await new Promise((r) => setTimeout(r, 500)); // a duplicate would arrive now
  assert.deepEqual(
    [...answers.values()].filter((n) => n !== 1),
    [],
    'each msg_id answered exactly once',
  );
  const taken = proxies.map((p, i) => p.usp.endpoint.stats.recordsIn - before[i]!);
  // (Records in also count the controller's NotifyResps to the agents' OnBoardRequests.)
  assert.ok(
    taken.every((n) => n > 0),
    `both instances took Records from the queue: ${taken.join(' + ')}`,
  );
  for (const [i, d] of devices.entries()) {
    const dev = fleets.flatMap((f) => f.devices).find((x) => x.serial === d.deviceId.serialNumber)!;
    assert.equal(dev.getValue('Device.DeviceInfo.ProvisioningCode'), `cs-${i}`);
  }
});

test('rows added to one agent through both instances at once get distinct instance numbers, and every instance sees them all', {
  timeout: 60_000,
}, async (t) => {
  if (!redis || !rabbit) return t.skip('redis-server or rabbitmq-server not installed');
  const c = ctl!;
  const agent = (await proxies[0]!.store.listDevices({ limit: 1 }))[0]!.endpointId;
  const adds = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      c.request(
        add([
          {
            objPath: 'Device.LocalAgent.Subscription.',
            params: { Enable: 'true', ID: `row-${i}`, NotifType: 'ValueChange', ReferenceList: 'Device.DeviceInfo.UpTime', Persistent: 'true' },
          },
        ]),
        20_000,
        agent,
      ),
    ),
  );
  const paths = adds.map((m) => m.body.response?.addResp?.createdObjResults[0]?.operStatus?.operSuccess?.instantiatedPath);
  assert.ok(
    paths.every((p) => typeof p === 'string'),
    JSON.stringify(adds.map((m) => m.body)),
  );
  assert.equal(new Set(paths).size, 8, `distinct instance numbers: ${paths.join(' ')}`);
  // Row announcements travel over Redis pub/sub: allow a loaded machine a few seconds.
  const rowIds = (p: CwmpUspProxy): string[] =>
    p.usp.localAgent
      .subscriptions(agent)
      .map((s) => s.values.ID ?? '')
      .filter((id) => id.startsWith('row-'));
  for (const deadline = Date.now() + 5000; Date.now() < deadline && !proxies.every((p) => rowIds(p).length === 8); )
    await new Promise((r) => setTimeout(r, 50));
  for (const p of proxies) {
    const ids = rowIds(p);
    assert.equal(ids.length, 8, `${p.config.cluster.instanceId} sees all 8 rows: ${ids.join(' ')}`);
  }
  // And they stay: a later re-seed must not drop a row this instance had just written itself.
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(
    proxies.map((p) => rowIds(p).length),
    [8, 8],
  );
});

test('Redis down for longer than the instance TTL: CPEs get 503 + Retry-After, nobody is taken over when it returns, requests work again', {
  timeout: 60_000,
}, async (t) => {
  if (!redis || !rabbit) return t.skip('redis-server or rabbitmq-server not installed');
  const agent = (await proxies[1]!.store.listDevices({ limit: 1 }))[0]!.endpointId;
  await redis.kill9();
  const body = encodeSoap({ cwmpVersion: '1-0', id: 'outage', body: inform('OUTAGE1', ['0 BOOTSTRAP', '1 BOOT']) });
  const r = await fetch(`http://127.0.0.1:${proxies[0]!.acsPort}/`, { method: 'POST', body, headers: { 'content-type': 'text/xml' } });
  assert.equal(r.status, 503, await r.text());
  assert.equal(r.headers.get('retry-after'), '30');
  await new Promise((res) => setTimeout(res, 1500)); // > cluster.instanceTtlMs: every liveness key lapses
  await redis.restart();
  await new Promise((res) => setTimeout(res, 3500)); // heartbeats resume; the grace (2 TTLs) passes
  assert.deepEqual(
    proxies.map((p) => p.cluster!.takenOver),
    [[], []],
    'an outage of the store is not a death of the instances',
  );
  const g = await ctl!.request(get(['Device.DeviceInfo.SerialNumber']), 20_000, agent);
  assert.equal(g.body.msgBody, 'response', JSON.stringify(g.body));
});
