/**
 * Mutated Records through the real brokers: MQTT 5 (mosquitto) and STOMP (RabbitMQ) deliver
 * garbage and damaged Records to the proxy's shared agent subscription; the proxy stays up, answers
 * nothing wrong, and a legitimate Get on the same MTP still works afterwards.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { Client } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig } from '../../src/app/config.js';
import { silentLogger } from '../../src/app/log.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, get } from '../../src/tools/controller/client.js';
import { encodeRecord, noSessionRecord } from '../../src/usp/codec/record.js';
import { startMosquitto, startRabbitStomp, type MosquittoHandle, type RabbitStompHandle } from '../helpers/brokers.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::fuzz-ctl';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-fuzzb-'));
let mosq: MosquittoHandle | null = null;
let rabbit: RabbitStompHandle | null = null;
let proxy: CwmpUspProxy;
let fleet: Fleet;
let agent = '';

/** Deterministic pseudo-random mutations of a real Record. */
function* mutations(seed: Uint8Array, count: number): Generator<Uint8Array> {
  let x = 0x9e3779b9;
  const rnd = (n: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  for (let i = 0; i < count; i++) {
    const b = new Uint8Array(seed);
    switch (i % 4) {
      case 0:
        for (let k = 0; k < 1 + rnd(4); k++) b[rnd(b.length)] = rnd(256);
        yield b;
        break;
      case 1:
        yield b.subarray(0, rnd(b.length));
        break;
      case 2:
        yield Uint8Array.from({ length: rnd(300) }, () => rnd(256));
        break;
      default: {
        const cut = rnd(b.length);
        yield Uint8Array.from([...b.subarray(0, cut), ...Uint8Array.from({ length: rnd(20) }, () => rnd(256)), ...b.subarray(cut)]);
      }
    }
  }
}

before(async () => {
  [mosq, rabbit] = await Promise.all([startMosquitto(), startRabbitStomp()]);
  proxy = new CwmpUspProxy(
    loadConfig({
      env: {},
      overrides: {
        dataDir: dir,
        'acs.host': '127.0.0.1',
        'acs.port': 0,
        'usp.websocket.enabled': false,
        'usp.mqtt.url': mosq ? mosq.url : '',
        'usp.mqtt.topic': '/usp/agent',
        'usp.stomp.host': rabbit ? rabbit.host : '',
        'usp.stomp.port': rabbit ? rabbit.port : 61613,
        'usp.stomp.destination': '/queue/usp.agent',
        controllers: [{ endpointId: CTL, role: 'full', mqtt: { topic: '/usp/fuzz-ctl' }, stomp: { destination: '/queue/usp.fuzz-ctl' } }],
        'log.level': 'silent',
      },
    }),
    silentLogger(),
  );
  await proxy.start();
  fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
    count: 1,
    model: 'tr181',
    serialPrefix: 'FZB',
    periodicIntervalS: null,
  });
  await fleet.start();
  agent = (await proxy.store.listDevices())[0]!.endpointId;
});

after(async () => {
  await fleet?.stop();
  await proxy?.stop();
  await Promise.all([mosq?.stop(), rabbit?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const seedRecord = (): Uint8Array =>
  encodeRecord(
    noSessionRecord(CTL, agent, {
      header: { msgId: 'fz', msgType: 'GET' },
      body: { msgBody: 'request', request: { reqType: 'get', get: { paramPaths: ['Device.LocalAgent.EndpointID'] } } },
    }),
  );

test('MQTT: 300 mutated Records through mosquitto, then a legitimate Get works', async (t) => {
  if (!mosq) return t.skip('mosquitto not installed (apt-get install mosquitto; .ci/run does)');
  const junk = await mqtt.connectAsync(mosq.url, { protocolVersion: 5, clientId: 'fuzz-junk' });
  let sent = 0;
  for (const b of mutations(seedRecord(), 300)) {
    await junk.publishAsync('/usp/agent', Buffer.from(b), { qos: 1, properties: sent % 2 ? { responseTopic: '/usp/fuzz-junk', contentType: 'usp.msg' } : {} });
    sent++;
  }
  await junk.endAsync();
  console.log(`MQTT: ${sent} mutated Records sent; proxy records in ${proxy.usp.endpoint.stats.recordsIn}, dropped ${proxy.usp.endpoint.stats.dropped}`);
  const c = new UspControllerClient({
    agentId: agent,
    endpointId: CTL,
    timeoutMs: 15_000,
    transport: { mtp: 'mqtt', url: mosq.url, controllerTopic: '/usp/fuzz-ctl', agentTopic: '/usp/agent' },
  });
  await c.connect();
  const r = await c.request(get(['Device.LocalAgent.EndpointID']));
  await c.close();
  assert.equal(r.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams.EndpointID, agent);
});

test('STOMP: 300 mutated Records through RabbitMQ, then a legitimate Get works', async (t) => {
  if (!rabbit) return t.skip('rabbitmq-server not installed (apt-get install rabbitmq-server; .ci/run does)');
  const client = new Client({
    webSocketFactory: () => new TCPWrapper(rabbit!.host, rabbit!.port),
    connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  await new Promise<void>((resolve, reject) => {
    client.onConnect = () => resolve();
    client.onStompError = (f) => reject(new Error(f.headers.message));
    client.activate();
  });
  let sent = 0;
  for (const b of mutations(seedRecord(), 300)) {
    const headers: Record<string, string> = { 'content-type': 'application/vnd.bbf.usp.msg' };
    if (sent % 2) headers['reply-to-dest'] = '/queue/usp.fuzz-junk';
    client.publish({ destination: '/queue/usp.agent', binaryBody: b, headers });
    sent++;
  }
  await client.deactivate();
  console.log(`STOMP: ${sent} mutated Records sent; proxy records in ${proxy.usp.endpoint.stats.recordsIn}, dropped ${proxy.usp.endpoint.stats.dropped}`);
  const c = new UspControllerClient({
    agentId: agent,
    endpointId: CTL,
    timeoutMs: 15_000,
    transport: {
      mtp: 'stomp',
      host: rabbit.host,
      port: rabbit.port,
      login: 'guest',
      passcode: 'guest',
      controllerDest: '/queue/usp.fuzz-ctl',
      agentDest: '/queue/usp.agent',
    },
  });
  await c.connect();
  const r = await c.request(get(['Device.LocalAgent.EndpointID']));
  await c.close();
  assert.equal(r.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams.EndpointID, agent);
});
