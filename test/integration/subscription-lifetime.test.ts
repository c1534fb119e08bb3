/**
 * Subscription lifetime (issue 16 item 4, TR-181 Subscription.Persistent): for a controller the
 * agent is the CWMP device, so a non-persistent Subscription lives as long as the device runs,
 * not as long as the proxy process. A real proxy is stopped gracefully and started again on the
 * same data folder (the simulated CPE keeps running and never reboots): the subscription is still
 * there and still notifies. Then the device reboots (USP Device.Reboot() -> CWMP Reboot -> Inform
 * 1 BOOT, M Reboot): Boot! goes out to its subscribers, and the non-persistent rows end with it.
 * Also across a restart: TransferComplete! names the image its Download() targeted (item 5).
 * Controller over MQTT 5 through a real mosquitto broker.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, add, get, operate, set } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { freePort, startMosquitto, type MosquittoHandle } from '../helpers/brokers.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { TestController } from '../helpers/test-controller.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::lifetime-ctl';
const SUB = 'Device.LocalAgent.Subscription.';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-lifetime-'));
let mosq: MosquittoHandle | null = null;
let tp: TestProxy | null = null;
let fleet: Fleet | null = null;
let ctl: TestController | null = null;
let acsPort = 0;
let agent = '';

async function startProxy(): Promise<TestProxy> {
  return startTestProxy({
    dataDir: dir,
    'acs.port': acsPort,
    'usp.mqtt.url': mosq!.url,
    'usp.mqtt.topic': '/usp/agent',
    'usp.reconnectBaseMs': 200,
    controllers: [{ endpointId: CTL, role: 'full', mqtt: { topic: '/usp/lifetime-ctl' } }],
  });
}

before(async () => {
  mosq = await startMosquitto();
  if (!mosq) return;
  acsPort = await freePort();
  tp = await startProxy();
  fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: tp.acsUrl,
    count: 1,
    model: 'tr181',
    serialPrefix: 'LIFE',
    periodicIntervalS: null,
    timers: { rebootDelayMs: 100, transferDelayMs: 1500, retryMinWaitS: 0.3 },
  });
  await fleet.start();
  agent = (await tp.proxy.store.listDevices())[0]!.endpointId;
  const c = new UspControllerClient({
    endpointId: CTL,
    agentId: agent,
    transport: { mtp: 'mqtt', url: mosq.url, controllerTopic: '/usp/lifetime-ctl', agentTopic: '/usp/agent' },
  });
  await c.connect();
  ctl = new TestController(c);
});

after(async () => {
  await ctl?.c.close();
  await fleet?.stop();
  await tp?.stop();
  await mosq?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function subscriptions(): Promise<Record<string, string>[]> {
  const r = await ctl!.req(get([SUB], 1), 20_000);
  return r.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults.map((x) => x.resultParams);
}

const ids = async (): Promise<string[]> => (await subscriptions()).map((s) => s.ID!).sort();
const bootOf = (id: string) => (m: Msg) => m.body.request?.notify?.subscriptionId === id && m.body.request.notify.event?.eventName === 'Boot!';

test('non-persistent subscriptions survive a proxy restart and end when the CWMP device reboots, after Boot! went out', async (t) => {
  if (!ctl) return t.skip('mosquitto not installed (apt-get install mosquitto; .ci/run does)');
  const sub = (ID: string, NotifType: string, ReferenceList: string, Persistent: string) =>
    ctl!.req(add([{ objPath: SUB, params: { Enable: 'true', ID, NotifType, ReferenceList, Persistent }, required: true }]), 20_000);
  for (const r of [
    await sub('np-vc', 'ValueChange', 'Device.LocalAgent.Controller.1.ProvisioningCode', 'false'),
    await sub('np-boot', 'Event', 'Device.Boot!', 'false'),
    await sub('p-boot', 'Event', 'Device.Boot!', 'true'),
  ])
    assert.equal(r.header.msgType, 'ADD_RESP', JSON.stringify(r.body));

  // A graceful restart of the proxy; the device keeps running (no Inform with 1 BOOT).
  await tp!.stop();
  tp = await startProxy();
  assert.deepEqual(await ids(), ['np-boot', 'np-vc', 'p-boot'], 'every subscription is back after the restart');
  const np = (await subscriptions()).find((s) => s.ID === 'np-vc')!;
  assert.equal(np.Persistent, 'false');
  // ... and still notifies.
  await ctl!.req(set([{ objPath: 'Device.LocalAgent.Controller.1.', params: { ProvisioningCode: 'after-restart' }, required: true }]), 20_000);
  const vc = await ctl!.notify((m) => m.body.request?.notify?.subscriptionId === 'np-vc', 10_000, 'ValueChange after the restart');
  assert.equal(vc.body.request!.notify!.valueChange!.paramValue, 'after-restart');

  // The device reboots: Boot! to both Boot! subscribers, then the non-persistent rows are gone.
  const r = await ctl!.req(operate('Device.Reboot()', {}, { commandKey: 'life-1' }), 20_000);
  assert.equal(r.header.msgType, 'OPERATE_RESP', JSON.stringify(r.body));
  const pBoot = await ctl!.notify(bootOf('p-boot'), 20_000, 'Boot! (persistent subscription)');
  assert.equal(pBoot.body.request!.notify!.event!.params.CommandKey, 'life-1');
  assert.equal(pBoot.body.request!.notify!.event!.params.Cause, 'RemoteReboot');
  await ctl!.notify(bootOf('np-boot'), 10_000, 'Boot! (non-persistent subscription, sent before it ends)');
  const deadline = Date.now() + 10_000;
  while ((await ids()).length !== 1 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
  assert.deepEqual(await ids(), ['p-boot'], 'only the Persistent subscription outlives the reboot');
  const stored = (await tp!.proxy.store.listAllSubscriptions()).filter((s) => s.agentEid === agent).map((s) => s.values.ID);
  assert.deepEqual(stored, ['p-boot'], 'the ended rows left the store too');

  // The next reboot notifies the persistent subscriber only.
  const before = ctl!.notifies.length;
  await ctl!.req(operate('Device.Reboot()', {}, { commandKey: 'life-2' }), 20_000);
  await ctl!.notify((m) => bootOf('p-boot')(m) && m.body.request!.notify!.event!.params.CommandKey === 'life-2', 20_000, 'second Boot!');
  const later = ctl!.notifies.slice(before).map((m) => m.body.request!.notify!.subscriptionId);
  assert.equal(later.includes('np-boot'), false);
  assert.equal(later.includes('np-vc'), false);
});

test('TransferComplete! names the FirmwareImage the Download() targeted, even when the proxy restarted before the CPE reported back', async (t) => {
  if (!ctl) return t.skip('mosquitto not installed (apt-get install mosquitto; .ci/run does)');
  const files = http.createServer((req, res) => {
    if (req.url === '/fw-3.0.bin') res.writeHead(200), res.end(Buffer.alloc(1024, 3));
    else res.writeHead(404), res.end();
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => files.close(() => r())));
  const s = await ctl.req(
    add([
      {
        objPath: SUB,
        params: { Enable: 'true', ID: 'p-tc', NotifType: 'Event', ReferenceList: 'Device.LocalAgent.TransferComplete!', Persistent: 'true' },
        required: true,
      },
    ]),
    20_000,
  );
  assert.equal(s.header.msgType, 'ADD_RESP', JSON.stringify(s.body));
  const url = `http://127.0.0.1:${(files.address() as AddressInfo).port}/fw-3.0.bin`;
  const r = await ctl.req(operate('Device.DeviceInfo.FirmwareImage.2.Download()', { URL: url, AutoActivate: 'true' }, { commandKey: 'fw-restart' }), 20_000);
  assert.equal(r.header.msgType, 'OPERATE_RESP', JSON.stringify(r.body));
  // The target is on record before the Download RPC goes out; then the proxy restarts while the
  // CPE transfers (1.5 s), and its TransferComplete reaches the new process.
  const deadline = Date.now() + 10_000;
  while (!(await tp!.proxy.store.getLearned('transfer', (await tp!.proxy.store.listDevices())[0]!.deviceKey)) && Date.now() < deadline)
    await new Promise((res) => setTimeout(res, 20));
  await tp!.stop();
  tp = await startProxy();
  const n = await ctl.notify(
    (m) => m.body.request?.notify?.subscriptionId === 'p-tc' && m.body.request.notify.event?.params.CommandKey === 'fw-restart',
    30_000,
    'TransferComplete!',
  );
  const e = n.body.request!.notify!.event!;
  assert.equal(e.params.Command, 'Device.DeviceInfo.FirmwareImage.2.Download()');
  assert.equal(e.params.FaultCode, '0');
  assert.equal(await tp!.proxy.store.getLearned('transfer', (await tp!.proxy.store.listDevices())[0]!.deviceKey), null, 'forgotten once reported');
});
