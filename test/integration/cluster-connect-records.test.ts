/**
 * Connect Records in a cluster (issue 16 item 7, TR-369 R-MTP.6): two proxy instances on one
 * Redis each hold an MQTT connection carrying every agent; a controller listening on mosquitto
 * gets one MQTTConnect Record per agent, not one per instance.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CwmpUspProxy } from '../../src/app/proxy.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient } from '../../src/tools/controller/client.js';
import type { UspRecord } from '../../src/usp/codec/record.js';
import { startMosquitto, type MosquittoHandle } from '../helpers/brokers.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';
import { startTestProxy } from '../helpers/test-proxy.js';
import { STRICT_SIM_WITH_COOKIES } from '../helpers/sim.js';

const CTL = 'proto::cluster-connect-ctl';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-cluster-connect-'));
let redis: RedisHandle | null = null;
let mosq: MosquittoHandle | null = null;
const proxies: CwmpUspProxy[] = [];
let fleet: Fleet | null = null;
let ctl: UspControllerClient | null = null;
const records: UspRecord[] = [];

before(async () => {
  [redis, mosq] = await Promise.all([startRedis(), startMosquitto()]);
  if (!redis || !mosq) return;
  ctl = new UspControllerClient({
    endpointId: CTL,
    agentId: 'os::none',
    transport: { mtp: 'mqtt', url: mosq.url, controllerTopic: '/usp/cc-ctl', agentTopic: '/usp/cc-agent' },
  });
  ctl.on('record', (r) => records.push(r));
  ctl.on('error', () => undefined);
  await ctl.connect();
  for (const id of ['cc-a', 'cc-b']) {
    const { proxy: p } = await startTestProxy(
      {
        'store.redis.url': redis.url,
        'store.redis.prefix': 'cc:',
        'cluster.instanceId': id,
        'cluster.heartbeatMs': 200,
        'cluster.instanceTtlMs': 1000,
        'admin.enabled': false,
        'usp.mqtt.url': mosq.url,
        'usp.mqtt.topic': '/usp/cc-agent',
        controllers: [{ endpointId: CTL, mqtt: { topic: '/usp/cc-ctl' } }],
      },
      { dataDir: path.join(dir, id) },
    );
    proxies.push(p);
  }
});

after(async () => {
  await ctl?.close();
  await fleet?.stop();
  for (const p of proxies) await p.stop();
  await Promise.all([redis?.stop(), mosq?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

test('two instances, three new agents: the controller gets one MQTTConnect Record per agent', { timeout: 60_000 }, async (t) => {
  if (!redis || !mosq) return t.skip('redis-server or mosquitto not installed (apt-get install redis-server mosquitto; .ci/run does)');
  fleet = new Fleet({
    quirks: STRICT_SIM_WITH_COOKIES,
    acsUrl: `http://127.0.0.1:${proxies[0]!.acsPort}/`,
    count: 3,
    model: 'tr181',
    serialPrefix: 'CCR',
    periodicIntervalS: null,
  });
  await fleet.start();
  const agents = (await proxies[0]!.store.listDevices()).map((d) => d.endpointId).sort();
  assert.equal(agents.length, 3);
  // Both instances know every agent (B through the announcement) before counting.
  const deadline = Date.now() + 10_000;
  const connects = () => records.filter((r) => r.recordType.kind === 'mqttConnect');
  while (Date.now() < deadline && new Set(connects().map((r) => r.fromId)).size < 3) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(
    connects()
      .map((r) => r.fromId)
      .sort(),
    agents,
    'exactly one per agent',
  );
});
