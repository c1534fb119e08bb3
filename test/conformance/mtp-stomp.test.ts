/**
 * TP-469 section 6 (STOMP MTP, CONFORMANCE.md row 6.1-6.8, 6.10-6.12) on a real proxy and a real
 * RabbitMQ: the agent of a simulated CPE sends its STOMPConnect Record to the controller's
 * destination when it appears, names the destination it listens on, answers over STOMP, and
 * shows its Device.STOMP.Connection. The frame-level behaviours of the row (required headers,
 * subscribe-dest, UNSUBSCRIBE/SUBSCRIBE on a destination change, heart-beats, reconnect back-off)
 * run against RabbitMQ and a scripted STOMP server in test/unit/mtp-stomp.test.ts, TLS in
 * test/unit/tls.test.ts; each carries the row's case numbers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, get } from '../../src/tools/controller/client.js';
import type { UspRecord } from '../../src/usp/codec/record.js';
import { startRabbitStomp, type RabbitStompHandle } from '../helpers/brokers.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { STRICT_SIM } from '../helpers/sim.js';

const ROW = '6.1-6.8, 6.10-6.12';
const CTL = 'proto::conf-stomp-ctl';
const AGENT_DEST = '/queue/conf.usp.agent';
const CTL_DEST = '/queue/conf.usp.controller';
let rabbit: RabbitStompHandle | null = null;
let tp: TestProxy | null = null;
let fleet: Fleet | null = null;
let client: UspControllerClient | null = null;
let agent = '';
const records: { rec: UspRecord; at: number }[] = [];
let registeredAt = 0;

before(async () => {
  rabbit = await startRabbitStomp();
  if (!rabbit) return;
  tp = await startTestProxy({
    'usp.stomp.host': rabbit.host,
    'usp.stomp.port': rabbit.port,
    'usp.stomp.destination': AGENT_DEST,
    'usp.reconnectBaseMs': 200,
    controllers: [{ endpointId: CTL, role: 'full', stomp: { destination: CTL_DEST } }],
  });
  // The controller listens before the device appears: it must see the agent's STOMPConnect Record.
  client = new UspControllerClient({
    endpointId: CTL,
    agentId: 'unknown-yet',
    transport: { mtp: 'stomp', host: rabbit.host, port: rabbit.port, login: 'guest', passcode: 'guest', controllerDest: CTL_DEST, agentDest: AGENT_DEST },
  });
  client.on('record', (rec) => records.push({ rec, at: Date.now() }));
  client.on('error', () => undefined);
  await client.connect();
  registeredAt = Date.now();
  fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp.acsUrl, count: 1, model: 'tr181', serialPrefix: 'CST', periodicIntervalS: null });
  await fleet.start();
  agent = (await tp.proxy.store.listDevices())[0]!.endpointId;
});

after(async () => {
  await client?.close();
  await fleet?.stop();
  await tp?.stop();
  await rabbit?.stop();
});

test(`${ROW} STOMP: a new agent sends a STOMPConnect Record (1.2, its subscribed destination) to the controller within 30 s`, async (t) => {
  if (!rabbit) return t.skip('rabbitmq-server not installed (apt-get install rabbitmq-server; .ci/run does)');
  const deadline = Date.now() + 30_000;
  let hit: { rec: UspRecord; at: number } | undefined;
  while (!(hit = records.find((r) => r.rec.fromId === agent && r.rec.recordType.kind === 'stompConnect')) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  assert.ok(hit, `no STOMPConnect Record from ${agent}; got ${JSON.stringify(records.map((r) => [r.rec.fromId, r.rec.recordType.kind]))}`);
  assert.ok(hit.at - registeredAt < 30_000);
  assert.equal(hit.rec.toId, CTL);
  assert.deepEqual(hit.rec.recordType, { kind: 'stompConnect', version: 'V1_2', subscribedDestination: AGENT_DEST });
});

test(`${ROW} STOMP: Device.STOMP.Connection. and the agent's STOMP MTP row are present and answered over STOMP`, async (t) => {
  if (!rabbit) return t.skip('rabbitmq-server not installed (apt-get install rabbitmq-server; .ci/run does)');
  // One reader per queue: RabbitMQ would share the answers between two.
  await client?.close();
  client = null;
  const c = new UspControllerClient({
    endpointId: CTL,
    agentId: agent,
    transport: { mtp: 'stomp', host: rabbit.host, port: rabbit.port, login: 'guest', passcode: 'guest', controllerDest: CTL_DEST, agentDest: AGENT_DEST },
  });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const r = await c.request(get(['Device.STOMP.Connection.1.', 'Device.LocalAgent.MTP.[Protocol=="STOMP"].STOMP.'], 1), 10_000);
    const [conn, mtp] = r.body.response!.getResp!.reqPathResults;
    const v = conn!.resolvedPathResults[0]!.resultParams;
    assert.equal(v.Host, rabbit.host);
    assert.equal(v.Port, String(rabbit.port));
    assert.equal(v.Enable, 'true');
    assert.equal(v.Status, 'Enabled');
    assert.equal(v.Username, 'guest');
    assert.equal(v.Password, undefined, 'no password is ever shown');
    for (const k of ['VirtualHost', 'EnableHeartbeats', 'OutgoingHeartbeat', 'IncomingHeartbeat', 'ServerRetryInitialInterval', 'ServerRetryMaxInterval'])
      assert.ok(k in v, `${k} present`);
    const m = mtp!.resolvedPathResults[0]!.resultParams;
    assert.equal(m.Reference, 'Device.STOMP.Connection.1');
    assert.equal(m.Destination, AGENT_DEST);
  } finally {
    await c.close();
  }
});
