/**
 * Migration to the native USP Agent end to end over a real mosquitto (docs/migration.md): dual-stack
 * simulated CPEs (quirk dual-stack) behind the proxy over HTTP, the operator's controller on MQTT.
 *  - one device migrated by the Operate Device.X_CWMP-USP-PROXY_MigrateToUSP(): OperationComplete
 *    with the steps and the native Endpoint ID, the X_CWMP-USP-PROXY_Migrated! event, then the
 *    native agent answers the controller under its own Endpoint ID with the values the proxy serves;
 *  - one migration with broker settings the device cannot use: it times out, the device's USP
 *    settings are rolled back over CWMP, the admin API says why;
 *  - a rollout of 100 devices selected by model, in waves of 25, paused and resumed, with one
 *    device whose native agent disagrees with its CWMP data model: 99 migrated, 1 failed with the
 *    reason, in the admin API and the metrics.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { CwmpUspProxy } from '../../src/app/proxy.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { parseQuirks } from '../../src/tools/sim/quirks.js';
import { add, get, operate, UspControllerClient } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import type { MigrationState } from '../../src/migration/machine.js';
import { startMosquitto, freePort, type MosquittoHandle } from '../helpers/brokers.js';
import { TestController } from '../helpers/test-controller.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';

const CTL = 'proto::migration-e2e-ctl';
const CTL_TOPIC = '/usp/mig-ctl';
const TOKEN = 'migration-e2e-token';
const VENDOR = 'CWMP-USP-PROXY';
const QUIRKS = parseQuirks('strict,dual-stack');
const FAST = {
  'acs.connectionRequest.deadlineMs': 5000,
  'acs.connectionRequest.timeoutMs': 1000,
  'acs.connectionRequest.retries': 0,
  'admin.token': TOKEN,
  'migration.pollIntervalMs': 100,
  'migration.requestTimeoutMs': 1000,
};

let mosq: MosquittoHandle | null = null;
let tp: TestProxy | null = null;
let fleet: Fleet | null = null;
/** The detection that followed the first device's BOOTSTRAP Inform (migration.detectOnInform). */
let detectedOnBoot: Promise<unknown> | null = null;

before(async () => {
  mosq = await startMosquitto();
  if (!mosq) return;
  tp = await startTestProxy(
    {
      ...FAST,
      'usp.mqtt.url': mosq.url,
      'usp.mqtt.topic': '/usp/mig-proxy',
      controllers: [{ endpointId: CTL, role: 'full', mqtt: { topic: CTL_TOPIC } }],
      'migration.brokerHost': '127.0.0.1',
      'migration.brokerPort': mosq.port,
      'migration.controllerEndpointId': CTL,
      'migration.controllerTopic': CTL_TOPIC,
      'migration.appearTimeoutMs': 10_000,
      'migration.detectOnInform': true,
    },
    { admin: true },
  );
  detectedOnBoot = once(tp.proxy.migration.service, 'detected');
  fleet = new Fleet({ acsUrl: tp.acsUrl, count: 1, model: 'tr181', serialPrefix: 'MIG', periodicIntervalS: null, quirks: QUIRKS });
  await fleet.start();
});

after(async () => {
  await fleet?.stop();
  await tp?.stop();
  await mosq?.stop();
});

async function api(t: TestProxy, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(t.adminUrl + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function deviceOf(p: CwmpUspProxy, serial: string) {
  const d = (await p.store.listDevices({ limit: 1000 })).find((r) => r.deviceId.serialNumber === serial);
  assert.ok(d, `device ${serial} registered`);
  return d;
}

function valuesOf(m: Msg): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rp of m.body.response?.getResp?.reqPathResults ?? [])
    for (const rr of rp.resolvedPathResults) for (const [k, v] of Object.entries(rr.resultParams)) out[(rr.resolvedPath ?? '') + k] = v;
  return out;
}

test('one dual-stack device: detected, migrated by MigrateToUSP(), then its native agent answers the controller with the same values', async (t) => {
  if (!mosq || !tp || !fleet) return t.skip('mosquitto not installed');
  const sim = fleet.devices[0]!;
  const d = await deviceOf(tp.proxy, sim.serial);
  const nativeEid = `os::${sim.deviceId.oui}-${sim.serial}`;

  // Detected on its BOOTSTRAP Inform, and again on request (admin API); shown in the device view.
  const [onBoot] = (await detectedOnBoot!) as [{ deviceKey: string; detection: { dualStack: boolean } }];
  assert.equal(onBoot.deviceKey, d.deviceKey);
  assert.equal(onBoot.detection.dualStack, true);
  const det = await api(tp, 'POST', `/api/devices/${encodeURIComponent(d.deviceKey)}/migration/detect`);
  assert.equal(det.status, 200);
  const detection = det.json.detection as { dualStack: boolean; endpointId: string; protocols: string[] };
  assert.equal(detection.dualStack, true, JSON.stringify(detection));
  assert.equal(detection.endpointId, nativeEid);
  assert.deepEqual(detection.protocols, ['MQTT']);
  const view = await api(tp, 'GET', `/api/devices/${encodeURIComponent(d.deviceKey)}`);
  assert.equal((view.json.migration as { detection: { dualStack: boolean } }).detection.dualStack, true);

  const ctl = new TestController(
    new UspControllerClient({
      endpointId: CTL,
      agentId: d.endpointId,
      transport: { mtp: 'mqtt', url: mosq.url, controllerTopic: CTL_TOPIC, agentTopic: '/usp/mig-proxy' },
    }),
  );
  await ctl.c.connect();
  t.after(() => ctl.c.close());
  const sub = { Enable: 'true', NotifRetry: 'false', Persistent: 'true' };
  const r = await ctl.req(
    add([
      {
        objPath: 'Device.LocalAgent.Subscription.',
        params: { ...sub, ID: 'mig-oc', NotifType: 'OperationComplete', ReferenceList: `Device.X_${VENDOR}_MigrateToUSP()` },
      },
      { objPath: 'Device.LocalAgent.Subscription.', params: { ...sub, ID: 'mig-ev', NotifType: 'Event', ReferenceList: `Device.X_${VENDOR}_Migrated!` } },
    ]),
  );
  assert.equal(r.body.msgBody, 'response', JSON.stringify(r.body));
  // Before the handover the proxied agent reports the device's value changes (it mirrors the
  // subscription as SetParameterAttributes Notification=2 on the device first).
  // The session ends first: the proxy reads its baseline value in it, after the attribute.
  const spa = new Promise<void>((resolve) => {
    const on = (x: { rpcs: string[] }): void => {
      if (x.rpcs.includes('SetParameterAttributes')) sim.off('session', on), resolve();
    };
    sim.on('session', on);
  });
  const vc = await ctl.req(
    add([
      {
        objPath: 'Device.LocalAgent.Subscription.',
        params: { ...sub, ID: 'mig-vc', NotifType: 'ValueChange', ReferenceList: 'Device.DeviceInfo.ProvisioningCode' },
      },
    ]),
  );
  assert.equal(vc.body.msgBody, 'response', JSON.stringify(vc.body));
  const isVc = (value: string) => (m: Msg) => m.body.request?.notify?.valueChange?.paramValue === value;
  await spa;
  const vcBefore = ctl.notify(isVc('before-migration'), 30_000, 'ValueChange before the handover');
  sim.setValue('Device.DeviceInfo.ProvisioningCode', 'before-migration');
  await vcBefore;

  const ocP = ctl.notify((m) => m.body.request?.notify?.subscriptionId === 'mig-oc', 60_000, 'OperationComplete');
  const evP = ctl.notify((m) => m.body.request?.notify?.subscriptionId === 'mig-ev', 60_000, 'Migrated!');
  const bootP = ctl.notify((m) => m.body.request?.notify?.event?.eventName === 'Boot!', 60_000, 'Boot! of the native agent');

  const op = await ctl.req(operate(`Device.X_${VENDOR}_MigrateToUSP()`, {}, { commandKey: 'mig-1', sendResp: true }));
  assert.equal(op.body.response?.operateResp?.operationResults[0]?.operationResp, 'reqObjPath', JSON.stringify(op.body));
  const oc = (await ocP).body.request!.notify!.operComplete!;
  assert.equal(oc.operationResp, 'reqOutputArgs', JSON.stringify(oc));
  const out = oc.reqOutputArgs!.outputArgs;
  assert.equal(out.Status, 'Migrated');
  assert.equal(out.NativeEndpointID, nativeEid);
  assert.match(out.Steps ?? '', /^read-settings:ok:\d+ms,configure:ok:\d+ms,enable:ok:\d+ms,await-agent:ok:\d+ms,verify:ok:\d+ms,handover:ok:\d+ms$/);
  const ev = (await evP).body.request!.notify!.event!;
  assert.equal(ev.eventName, `X_${VENDOR}_Migrated!`);
  assert.equal(ev.params.NativeEndpointID, nativeEid);

  // The native agent came up on the operator's broker under its own Endpoint ID ...
  const boot = await bootP;
  assert.ok(boot.body.request?.notify?.event?.params.Cause);
  // ... and answers the controller with what the proxied agent serves.
  const native = new UspControllerClient({
    endpointId: CTL,
    agentId: nativeEid,
    transport: { mtp: 'mqtt', url: mosq.url, controllerTopic: CTL_TOPIC, agentTopic: `/usp/agent/${nativeEid}` },
  });
  await native.connect();
  t.after(() => native.close());
  const paths = ['Device.DeviceInfo.SerialNumber', 'Device.DeviceInfo.SoftwareVersion', 'Device.DeviceInfo.ProductClass', 'Device.LocalAgent.EndpointID'];
  const viaNative = valuesOf(await native.request(get(paths)));
  const viaProxy = valuesOf(await ctl.req(get(paths.slice(0, 3))));
  for (const p of paths.slice(0, 3)) assert.equal(viaNative[p], viaProxy[p], p);
  assert.equal(viaNative['Device.LocalAgent.EndpointID'], nativeEid);

  // The admin API holds the outcome; the proxied agent is handed over.
  const mv = await api(tp, 'GET', `/api/devices/${encodeURIComponent(d.deviceKey)}/migration`);
  const mig = mv.json.migration as MigrationState;
  assert.equal(mig.phase, 'migrated');
  assert.equal(mig.steps.length, 6);
  assert.equal(tp.proxy.migration.service.isHandedOver(d.endpointId), true);
  assert.equal(tp.proxy.migration.service.inProgress, 0);

  // After it, the device's VALUE CHANGE reaches the proxy (the value reads back) but no ValueChange Notify leaves.
  const sessionWithChange = new Promise<void>((resolve) => {
    const on = (s: { events: string[] }): void => {
      if (s.events.includes('4 VALUE CHANGE')) sim.off('session', on), resolve();
    };
    sim.on('session', on);
  });
  sim.setValue('Device.DeviceInfo.ProvisioningCode', 'after-migration');
  await sessionWithChange;
  assert.equal(valuesOf(await ctl.req(get(['Device.DeviceInfo.ProvisioningCode'])))['Device.DeviceInfo.ProvisioningCode'], 'after-migration');
  assert.equal(ctl.notifies.filter(isVc('after-migration')).length, 0, 'no ValueChange from the proxied agent after the handover');
});

test('broker settings the device cannot use: the native agent never answers, the settings are rolled back, the admin API says why', async (t) => {
  if (!mosq) return t.skip('mosquitto not installed');
  const deadPort = await freePort();
  const p2 = await startTestProxy(
    {
      ...FAST,
      'migration.brokerHost': '127.0.0.1',
      'migration.brokerPort': deadPort,
      'migration.proxyBrokerUrl': mosq.url,
      'migration.controllerEndpointId': CTL,
      'migration.controllerTopic': CTL_TOPIC,
      'migration.appearTimeoutMs': 1500,
    },
    { admin: true },
  );
  t.after(() => p2.stop());
  const f2 = new Fleet({ acsUrl: p2.acsUrl, count: 1, model: 'tr181', serialPrefix: 'MIGBAD', periodicIntervalS: null, quirks: QUIRKS });
  await f2.start();
  t.after(() => f2.stop());
  const sim = f2.devices[0]!;
  const d = await deviceOf(p2.proxy, sim.serial);
  const before = { enable: sim.getValue('Device.MQTT.Client.1.Enable'), broker: sim.getValue('Device.MQTT.Client.1.BrokerAddress') };

  // Hostile or wrong admin requests get a clear 4xx.
  assert.equal((await api(p2, 'POST', '/api/migration/rollouts', { selection: { bogus: 'x' } })).status, 400);
  assert.equal((await api(p2, 'POST', '/api/migration/rollouts', { selection: {}, waveSize: 0 })).status, 400);
  assert.equal((await api(p2, 'POST', '/api/migration/rollouts', { selection: { productClass: 'none-such' } })).status, 400);
  assert.equal((await api(p2, 'GET', '/api/migration/rollouts/nope')).status, 404);
  assert.equal((await api(p2, 'POST', '/api/devices/no-such-device/migration')).status, 404);

  const finished = once(p2.proxy.migration.service, 'finished');
  const start = await api(p2, 'POST', `/api/devices/${encodeURIComponent(d.deviceKey)}/migration`);
  assert.equal(start.status, 202, JSON.stringify(start.json));
  const again = await api(p2, 'POST', `/api/devices/${encodeURIComponent(d.deviceKey)}/migration`);
  assert.equal(again.status, 409, 'one migration per device at a time');
  await finished;

  const mv = await api(p2, 'GET', `/api/devices/${encodeURIComponent(d.deviceKey)}/migration`);
  const mig = mv.json.migration as MigrationState;
  assert.equal(mig.phase, 'failed');
  assert.equal(mig.rolledBack, true);
  assert.match(mig.reason ?? '', /^await-agent: the native agent os::\S+ did not answer within 1500 ms/);
  assert.deepEqual(
    mig.steps.map((s) => `${s.name}:${s.ok}`),
    ['read-settings:true', 'configure:true', 'enable:true', 'await-agent:false', 'rollback:true'],
  );
  // The device's own settings are as they were, and its native agent stopped.
  assert.equal(sim.getValue('Device.MQTT.Client.1.Enable'), before.enable);
  assert.equal(sim.getValue('Device.MQTT.Client.1.BrokerAddress'), before.broker);
  await sim.native!.reconcile();
  assert.equal(sim.native!.settings, null);
  assert.equal(p2.proxy.migration.service.isHandedOver(d.endpointId), false);
});

test('a rollout of 100 devices in waves, paused and resumed, with one injected failure', { timeout: 300_000 }, async (t) => {
  if (!mosq || !tp) return t.skip('mosquitto not installed');
  const f3 = new Fleet({
    acsUrl: tp.acsUrl,
    count: 100,
    model: 'tr181',
    serialPrefix: 'ROLL',
    productClass: 'RolloutGW',
    periodicIntervalS: null,
    quirks: QUIRKS,
    concurrency: 20,
  });
  await f3.start();
  t.after(() => f3.stop());
  // Its native agent reports another SoftwareVersion than its CWMP client: verify fails, rollback.
  const bad = f3.devices[37]!;
  bad.native!.disagree.add('Device.DeviceInfo.SoftwareVersion');

  const created = await api(tp, 'POST', '/api/migration/rollouts', {
    selection: { productClass: 'RolloutGW' },
    waveSize: 25,
    perMinute: 60_000,
    concurrency: 5,
    maxFailurePercent: 10,
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const id = created.json.id as string;
  assert.equal(created.json.total, 100);
  assert.equal(created.json.waves, 4);
  const paused = await api(tp, 'POST', `/api/migration/rollouts/${id}/pause`);
  assert.equal(paused.json.status, 'paused');
  const resumed = await api(tp, 'POST', `/api/migration/rollouts/${id}/resume`);
  assert.equal(resumed.json.status, 'running');
  const summary = await tp.proxy.migration.rollouts.get(id)!.done;
  assert.equal(summary.status, 'done', JSON.stringify(summary));
  assert.equal(summary.migrated, 99);
  assert.equal(summary.failed.length, 1);
  const badKey = (await deviceOf(tp.proxy, bad.serial)).deviceKey;
  assert.equal(summary.failed[0]!.deviceKey, badKey);
  assert.match(summary.failed[0]!.reason, /^verify: values differ: Device\.DeviceInfo\.SoftwareVersion usp="[^"]+\+native" cwmp=/);
  assert.equal(summary.pending, 0);
  assert.equal(summary.wave, 4);

  const viaApi = await api(tp, 'GET', `/api/migration/rollouts/${id}`);
  assert.equal(viaApi.json.migrated, 99);
  const metrics = await (await fetch(`${tp.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  const count = (outcome: string): number => Number(new RegExp(`^migration_finished_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
  assert.ok(
    count('migrated') >= 99,
    metrics
      .split('\n')
      .filter((l) => l.startsWith('migration_'))
      .join('\n'),
  );
  assert.equal(count('rolled-back'), 1);
  assert.match(metrics, /^migration_rollout_devices\{state="failed"\} 1$/m);
});
