/**
 * The TP-469 cases that an independent harness found failing (issue 16 items 1-3), over a real
 * MTP: one proxy, a simulated TR-181 CPE over real HTTP, our USP controller client over MQTT 5
 * through a real mosquitto broker. Each case is also covered in-process by its message group.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, add, del, get, set } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { startMosquitto, type MosquittoHandle } from '../helpers/brokers.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { TestController } from '../helpers/test-controller.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::conf-mqtt-ctl';
const SUB = 'Device.LocalAgent.Subscription.';
let mosq: MosquittoHandle | null = null;
let tp: TestProxy | null = null;
let fleet: Fleet | null = null;
let ctl: TestController | null = null;
let agent = '';

before(async () => {
  mosq = await startMosquitto();
  if (!mosq) return;
  tp = await startTestProxy({
    'usp.mqtt.url': mosq.url,
    'usp.mqtt.topic': '/usp/agent',
    controllers: [{ endpointId: CTL, role: 'full', mqtt: { topic: '/usp/conf-ctl' } }],
  });
  fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp.acsUrl, count: 1, model: 'tr181', serialPrefix: 'CMQ', periodicIntervalS: null });
  await fleet.start();
  agent = (await tp.proxy.store.listDevices())[0]!.endpointId;
  const c = new UspControllerClient({
    endpointId: CTL,
    agentId: agent,
    transport: { mtp: 'mqtt', url: mosq.url, controllerTopic: '/usp/conf-ctl', agentTopic: '/usp/agent' },
  });
  await c.connect();
  ctl = new TestController(c);
});

after(async () => {
  await ctl?.c.close();
  await fleet?.stop();
  await tp?.stop();
  await mosq?.stop();
});

/** Every Subscription row goes before each case (the cases assume an empty table). */
beforeEach(async () => {
  if (ctl) await ctl.req(del([`${SUB}*.`]));
});

function skipped(t: { skip(msg: string): void }): boolean {
  if (ctl) return false;
  t.skip('mosquitto not installed (apt-get install mosquitto; .ci/run does)');
  return true;
}

async function instances(): Promise<string[]> {
  const r = await ctl!.req(get([SUB], 1));
  return r.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults.map((x) => x.resolvedPath!);
}

function errorOf(r: Msg): NonNullable<Msg['body']['error']> {
  assert.equal(r.header.msgType, 'ERROR', JSON.stringify(r.body));
  return r.body.error!;
}

test('1.4 over MQTT: Add on Device.LocalAgent.InvalidObject. (allow_partial false): Error 7026 with one param_err naming the path', async (t) => {
  if (skipped(t)) return;
  const e = errorOf(await ctl!.req(add([{ objPath: 'Device.LocalAgent.InvalidObject.', params: { Enable: 'true' }, required: true }])));
  assert.equal(e.errCode, 7026);
  assert.equal(e.paramErrs.length, 1);
  assert.equal(e.paramErrs[0]!.paramPath, 'Device.LocalAgent.InvalidObject.');
  assert.equal(e.paramErrs[0]!.errCode, 7026);
  assert.ok(e.paramErrs[0]!.errMsg);
  assert.deepEqual(await instances(), []);
});

test('1.26 over MQTT: Delete of Device.LocalAgent.InvalidObject.1. (allow_partial false): Error 7026 with one param_err naming the path', async (t) => {
  if (skipped(t)) return;
  const e = errorOf(await ctl!.req(del(['Device.LocalAgent.InvalidObject.1.'])));
  assert.equal(e.errCode, 7026);
  assert.deepEqual(
    e.paramErrs.map((p) => [p.paramPath, p.errCode]),
    [['Device.LocalAgent.InvalidObject.1.', 7026]],
  );
});

test('1.14 over MQTT: Set on an invalid object (allow_partial false): Error 7026 with one param_err naming the path', async (t) => {
  if (skipped(t)) return;
  const e = errorOf(await ctl!.req(set([{ objPath: 'Device.LocalAgent.InvalidObject.1.', params: { Enable: 'true' }, required: true }])));
  assert.equal(e.errCode, 7026);
  assert.deepEqual(
    e.paramErrs.map((p) => [p.paramPath, p.errCode]),
    [['Device.LocalAgent.InvalidObject.1.', 7026]],
  );
});

test('1.88 over MQTT: Add with a required Alias "88InvalidAlias": Error with param_err 7012 on Alias, nothing created', async (t) => {
  if (skipped(t)) return;
  const e = errorOf(await ctl!.req(add([{ objPath: SUB, params: { Alias: '88InvalidAlias', NotifType: 'ValueChange' }, required: true }])));
  assert.deepEqual(
    e.paramErrs.map((p) => [p.paramPath, p.errCode]),
    [[`${SUB}{i}.Alias`, 7012]],
  );
  assert.deepEqual(await instances(), []);
});

test('1.88 over MQTT: the same Add with allow_partial true: oper_failure naming Alias, nothing created', async (t) => {
  if (skipped(t)) return;
  const r = await ctl!.req(add([{ objPath: SUB, params: { Alias: '88InvalidAlias', NotifType: 'ValueChange' }, required: true }], true));
  assert.equal(r.header.msgType, 'ADD_RESP', JSON.stringify(r.body));
  const s = r.body.response!.addResp!.createdObjResults[0]!.operStatus!;
  assert.equal(s.operStatus, 'operFailure');
  assert.equal(s.operFailure!.errCode, 7012);
  assert.match(s.operFailure!.errMsg!, /Alias/);
  assert.deepEqual(await instances(), []);
});

test('1.88 over MQTT: a bad Alias fails the object even when not flagged required (a unique key never falls back), nothing created', async (t) => {
  if (skipped(t)) return;
  const e = errorOf(await ctl!.req(add([{ objPath: SUB, params: { Alias: '88InvalidAlias', NotifType: 'ValueChange' }, required: false }])));
  assert.deepEqual(
    e.paramErrs.map((p) => [p.paramPath, p.errCode]),
    [[`${SUB}{i}.Alias`, 7012]],
  );
  // A non-key setting that fails is still only reported: the object is created with its default.
  const r = await ctl!.req(add([{ objPath: SUB, params: { Alias: 'ok-88', NotifRetry: 'perhaps' }, required: false }]));
  assert.equal(r.header.msgType, 'ADD_RESP', JSON.stringify(r.body));
  const ok = r.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess!;
  assert.deepEqual(
    ok.paramErrs.map((p) => [p.param, p.errCode]),
    [['NotifRetry', 7011]],
  );
  assert.equal(ok.uniqueKeys.Alias, 'ok-88');
  assert.deepEqual(await instances(), [ok.instantiatedPath]);
});

test('1.57 over MQTT: an ObjectCreation subscription on Subscription. is not notified of its own creation, only of later ones', async (t) => {
  if (skipped(t)) return;
  const mine = ctl!.notifies.length;
  const r = await ctl!.req(
    add([{ objPath: SUB, params: { Enable: 'true', ID: 'notify57', NotifType: 'ObjectCreation', ReferenceList: SUB }, required: true }]),
  );
  const own = r.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess!.instantiatedPath!;
  const later = await ctl!.req(add([{ objPath: SUB, params: { ID: 'second57' }, required: true }]));
  const second = later.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess!.instantiatedPath!;
  const n = await ctl!.notify((m) => m.body.request?.notify?.objCreation?.objPath === second);
  assert.equal(n.body.request!.notify!.subscriptionId, 'notify57');
  // The Notify for the second row came after any for the first would have: none was sent for itself.
  const created = ctl!.notifies.slice(mine).map((m) => m.body.request?.notify?.objCreation?.objPath);
  assert.equal(created.includes(own), false, `no ObjectCreation for ${own} itself; got ${JSON.stringify(created)}`);
});
