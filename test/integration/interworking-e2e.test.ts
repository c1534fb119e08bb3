/**
 * Interworking end to end: one proxy with all three MTPs (WebSocket, MQTT 5 via mosquitto, STOMP
 * via RabbitMQ), a fleet of simulated TR-181 CPE over real HTTP, and our own USP controller
 * client. For each MTP the same Get/Set/Add/Delete/GetInstances/GetSupportedDM/error-path suite
 * runs on its own device; then, once over WebSocket: Reboot + Boot!, firmware Download +
 * OperationComplete (success and 404), IPPing output args, ValueChange from a local change on
 * the device, and an unreachable device (7002). Every check reads decoded USP response fields.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig } from '../../src/app/config.js';
import { silentLogger } from '../../src/app/log.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import type { Msg } from '../../src/usp/codec/record.js';
import {
  UspControllerClient,
  add,
  del,
  get,
  getInstances,
  getSupportedDM,
  operate,
  set,
  type UspControllerTransport,
} from '../../src/tools/controller/client.js';
import { startMosquitto, startRabbitStomp, type MosquittoHandle, type RabbitStompHandle } from '../helpers/brokers.js';
import { TestController } from '../helpers/test-controller.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::iw-e2e-ctl';
const RO = 'proto::iw-e2e-ro';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-iw-e2e-'));
let mosq: MosquittoHandle | null = null;
let rabbit: RabbitStompHandle | null = null;
let proxy: CwmpUspProxy;
let fleet: Fleet;
let fw: http.Server;
let fwUrl = '';
const agents: string[] = [];
const clients: UspControllerClient[] = [];

const MTP_DEVICE = { ws: 0, mqtt: 1, stomp: 2 } as const;
const ONCE = 3; // reboot/download/ping/value change
const DOWN = 4; // unreachable

before(async () => {
  [mosq, rabbit] = await Promise.all([startMosquitto(), startRabbitStomp()]);
  fw = http.createServer((req, res) => {
    if (req.url === '/fw.bin') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.alloc(4096, 7));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => fw.listen(0, '127.0.0.1', r));
  fwUrl = `http://127.0.0.1:${(fw.address() as AddressInfo).port}`;
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'acs.host': '127.0.0.1',
      'acs.port': 0,
      'acs.connectionRequest.deadlineMs': 1500,
      'acs.connectionRequest.timeoutMs': 500,
      'acs.connectionRequest.retries': 0,
      'acs.connectionRequest.retryDelayMs': 100,
      'usp.websocket.host': '127.0.0.1',
      'usp.websocket.port': 0,
      'usp.mqtt.url': mosq ? mosq.url : '',
      'usp.mqtt.topic': '/usp/iw-agent',
      'usp.stomp.host': rabbit ? rabbit.host : '',
      'usp.stomp.port': rabbit ? rabbit.port : 61613,
      'usp.stomp.destination': '/queue/usp.iw-agent',
      'usp.reconnectBaseMs': 200,
      'usp.reconnectMaxMs': 2000,
      'usp.notifRetryMinWaitS': 1,
      'interworking.operationTimeoutMs': 15000,
      controllers: [
        { endpointId: CTL, role: 'full', mqtt: { topic: '/usp/iw-ctl' }, stomp: { destination: '/queue/usp.iw-ctl' } },
        { endpointId: RO, role: 'read-only', mqtt: { topic: '/usp/iw-ro' }, stomp: { destination: '/queue/usp.iw-ro' } },
      ],
      'log.level': 'silent',
    },
  });
  proxy = new CwmpUspProxy(config, silentLogger());
  await proxy.start();
  fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
    count: 5,
    model: 'tr181',
    serialPrefix: 'IWE',
    periodicIntervalS: null,
    timers: { rebootDelayMs: 100, transferDelayMs: 100, diagnosticsDelayMs: 100 },
  });
  await fleet.start();
  for (const d of fleet.devices) {
    const rec = (await proxy.store.listDevices()).find((r) => r.deviceId.serialNumber === d.serial);
    assert.ok(rec, `device ${d.serial} registered`);
    agents.push(rec.endpointId);
  }
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await fleet?.stop();
  await proxy?.stop();
  await new Promise<void>((r) => (fw ? fw.close(() => r()) : r()));
  await Promise.all([mosq?.stop(), rabbit?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

function transport(mtp: 'ws' | 'mqtt' | 'stomp', from = CTL): UspControllerTransport {
  switch (mtp) {
    case 'ws':
      return { mtp: 'ws', url: `ws://127.0.0.1:${proxy.usp.ws!.serverAddress()!.port}/usp` };
    case 'mqtt':
      return { mtp: 'mqtt', url: mosq!.url, controllerTopic: from === CTL ? '/usp/iw-ctl' : '/usp/iw-ro', agentTopic: '/usp/iw-agent' };
    case 'stomp':
      return {
        mtp: 'stomp',
        host: rabbit!.host,
        port: rabbit!.port,
        login: 'guest',
        passcode: 'guest',
        controllerDest: from === CTL ? '/queue/usp.iw-ctl' : '/queue/usp.iw-ro',
        agentDest: '/queue/usp.iw-agent',
      };
  }
}

/** A connected client that records every Notify it gets. */
async function connect(mtp: 'ws' | 'mqtt' | 'stomp', agent: string, from = CTL): Promise<TestController> {
  const c = new UspControllerClient({ agentId: agent, endpointId: from, transport: transport(mtp, from), timeoutMs: 10_000 });
  clients.push(c);
  await c.connect();
  return new TestController(c);
}

const resp = (m: Msg) => {
  assert.equal(m.body.msgBody, 'response', `expected a response, got ${JSON.stringify(m.body)}`);
  return m.body.response!;
};
const error = (m: Msg) => {
  assert.equal(m.body.msgBody, 'error', `expected an Error, got ${JSON.stringify(m.body)}`);
  return m.body.error!;
};
const paramsOf = (m: Msg, i = 0) => resp(m).getResp!.reqPathResults[i]!;

// Persistent: some cases span a device reboot, which ends non-persistent subscriptions (TR-181 Subscription.Persistent).
async function subscribe(ctl: TestController, id: string, notifType: string, ref: string): Promise<string> {
  const r = await ctl.req(
    add([{ objPath: 'Device.LocalAgent.Subscription.', params: { Enable: 'true', ID: id, NotifType: notifType, ReferenceList: ref, Persistent: 'true' } }]),
  );
  const ok = resp(r).addResp!.createdObjResults[0]!.operStatus!.operSuccess!;
  assert.ok(ok.instantiatedPath);
  return ok.instantiatedPath;
}

for (const mtp of ['ws', 'mqtt', 'stomp'] as const) {
  test(`${mtp}: Get/Set/Add/Delete/GetInstances/GetSupportedDM and error paths on a CWMP device`, async (t) => {
    if (mtp === 'mqtt' && !mosq) return t.skip('mosquitto not installed (apt-get install mosquitto)');
    if (mtp === 'stomp' && !rabbit) return t.skip('rabbitmq-server not installed (apt-get install rabbitmq-server)');
    const idx = MTP_DEVICE[mtp];
    const agent = agents[idx]!;
    const dev = fleet.devices[idx]!;
    const ctl = await connect(mtp, agent);

    await t.test('Get: parameter, partial path, wildcard, search expression, instance path, max_depth', async () => {
      const g = await ctl.req(
        get(['Device.DeviceInfo.SerialNumber', 'Device.WiFi.SSID.*.SSID', 'Device.WiFi.SSID.[Name=="wl1"].SSID', 'Device.WiFi.SSID.1.', 'Device.NAT.'], 1),
      );
      const r0 = paramsOf(g, 0);
      assert.equal(r0.errCode ?? 0, 0);
      assert.equal(r0.resolvedPathResults[0]!.resolvedPath, 'Device.DeviceInfo.');
      assert.equal(r0.resolvedPathResults[0]!.resultParams.SerialNumber, dev.serial);
      const r1 = paramsOf(g, 1).resolvedPathResults;
      assert.deepEqual(
        r1.map((x) => [x.resolvedPath, x.resultParams.SSID]),
        [
          ['Device.WiFi.SSID.1.', 'SimGW-2G'],
          ['Device.WiFi.SSID.2.', 'SimGW-5G'],
        ],
      );
      const r2 = paramsOf(g, 2).resolvedPathResults;
      assert.deepEqual(
        r2.map((x) => [x.resolvedPath, x.resultParams.SSID]),
        [['Device.WiFi.SSID.2.', 'SimGW-5G']],
      );
      const r3 = paramsOf(g, 3).resolvedPathResults;
      assert.equal(r3[0]!.resolvedPath, 'Device.WiFi.SSID.1.');
      assert.equal(r3[0]!.resultParams.Enable, 'true', 'booleans normalized to true/false');
      assert.equal(r3[0]!.resultParams.Name, 'wl0');
      const r4 = paramsOf(g, 4).resolvedPathResults;
      assert.deepEqual(
        r4.map((x) => x.resolvedPath),
        ['Device.NAT.'],
        'max_depth 1: the object itself only',
      );
      assert.equal(r4[0]!.resultParams.PortMappingNumberOfEntries, '1');
      const deep = await ctl.req(get(['Device.NAT.'], 2));
      const paths = paramsOf(deep).resolvedPathResults.map((x) => x.resolvedPath);
      assert.ok(paths.includes('Device.NAT.InterfaceSetting.1.') && paths.includes('Device.NAT.PortMapping.1.'), `max_depth 2: ${paths}`);
      const full = await ctl.req(get(['Device.WiFi.SSID.']));
      const fr = paramsOf(full).resolvedPathResults;
      assert.deepEqual(
        fr.map((x) => x.resolvedPath),
        ['Device.WiFi.SSID.1.', 'Device.WiFi.SSID.2.'],
      );
      assert.equal(fr[1]!.resultParams.BSSID, 'F0:AD:4E:00:01:02');
    });

    await t.test('Set: allow_partial false with two params; true with a good and a failing object; bad value -> 7012', async () => {
      const s = await ctl.req(set([{ objPath: 'Device.WiFi.SSID.1.', params: { SSID: `ssid-${mtp}`, Enable: 'false' }, required: true }]));
      const upd = resp(s).setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults[0]!;
      assert.equal(upd.affectedPath, 'Device.WiFi.SSID.1.');
      assert.deepEqual(upd.updatedParams, { SSID: `ssid-${mtp}`, Enable: 'false' });
      assert.equal(dev.getValue('Device.WiFi.SSID.1.SSID'), `ssid-${mtp}`, 'the CPE has the value');
      assert.match(dev.getValue('Device.WiFi.SSID.1.Enable') ?? '', /^(false|0)$/);

      const p = await ctl.req(
        set(
          [
            { objPath: 'Device.WiFi.SSID.2.', params: { SSID: `five-${mtp}` } },
            { objPath: 'Device.DeviceInfo.', params: { SerialNumber: 'nope' }, required: true },
          ],
          true,
        ),
      );
      const [good, bad] = resp(p).setResp!.updatedObjResults;
      assert.deepEqual(good!.operStatus!.operSuccess!.updatedInstResults[0]!.updatedParams, { SSID: `five-${mtp}` });
      const fail = bad!.operStatus!.operFailure!;
      assert.equal(fail.errCode, 7021);
      assert.equal(fail.updatedInstFailures[0]!.affectedPath, 'Device.DeviceInfo.');
      assert.equal(fail.updatedInstFailures[0]!.paramErrs[0]!.param, 'SerialNumber');
      assert.equal(fail.updatedInstFailures[0]!.paramErrs[0]!.errCode, 7013);
      assert.equal(dev.getValue('Device.DeviceInfo.SerialNumber'), dev.serial);

      const v = await ctl.req(set([{ objPath: 'Device.IP.Diagnostics.IPPing.', params: { DiagnosticsState: 'Bogus' }, required: true }]));
      const e = error(v);
      assert.ok(e.errCode === 7004 || e.errCode === 7012, `Error ${e.errCode}`);
      assert.equal(e.paramErrs[0]!.paramPath, 'Device.IP.Diagnostics.IPPing.DiagnosticsState');
      assert.equal(e.paramErrs[0]!.errCode, 7012, 'CWMP 9007 -> USP 7012');
      assert.match(e.paramErrs[0]!.errMsg ?? '', /9007/);
    });

    await t.test('Add + Delete on Device.NAT.PortMapping.', async () => {
      const a = await ctl.req(add([{ objPath: 'Device.NAT.PortMapping.', params: { ExternalPort: '8443', InternalPort: '443', Description: `pm-${mtp}` } }]));
      const ok = resp(a).addResp!.createdObjResults[0]!.operStatus!.operSuccess!;
      assert.match(ok.instantiatedPath ?? '', /^Device\.NAT\.PortMapping\.\d+\.$/);
      const inst = ok.instantiatedPath!;
      assert.notEqual(inst, 'Device.NAT.PortMapping.1.');
      assert.equal(dev.getValue(`${inst}ExternalPort`), '8443');
      const g = await ctl.req(get([`${inst}ExternalPort`, `${inst}InternalPort`]));
      assert.equal(paramsOf(g, 0).resolvedPathResults[0]!.resultParams.ExternalPort, '8443');
      assert.equal(paramsOf(g, 1).resolvedPathResults[0]!.resultParams.InternalPort, '443');

      const d = await ctl.req(del([inst]));
      assert.deepEqual(resp(d).deleteResp!.deletedObjResults[0]!.operStatus!.operSuccess!.affectedPaths, [inst]);
      assert.equal(dev.getValue(`${inst}ExternalPort`), undefined, 'gone on the CPE');
      const after = await ctl.req(getInstances(['Device.NAT.PortMapping.']));
      assert.deepEqual(
        resp(after).getInstancesResp!.reqPathResults[0]!.currInsts.map((c) => c.instantiatedObjPath),
        ['Device.NAT.PortMapping.1.'],
      );
    });

    await t.test('GetInstances', async () => {
      const r = await ctl.req(getInstances(['Device.WiFi.', 'Device.DeviceInfo.FirmwareImage.'], false));
      const [wifi, fwi] = resp(r).getInstancesResp!.reqPathResults;
      const wifiInsts = wifi!.currInsts.map((c) => c.instantiatedObjPath);
      assert.ok(wifiInsts.includes('Device.WiFi.SSID.1.') && wifiInsts.includes('Device.WiFi.SSID.2.'), String(wifiInsts));
      assert.ok(wifiInsts.includes('Device.WiFi.Radio.1.'));
      const ssid1 = wifi!.currInsts.find((c) => c.instantiatedObjPath === 'Device.WiFi.SSID.1.')!;
      assert.equal(ssid1.uniqueKeys.Alias, 'cpe-1');
      assert.deepEqual(
        fwi!.currInsts.map((c) => c.instantiatedObjPath),
        ['Device.DeviceInfo.FirmwareImage.1.', 'Device.DeviceInfo.FirmwareImage.2.'],
      );
    });

    await t.test('GetSupportedDM: types and access of device parameters', async () => {
      const r = await ctl.req(getSupportedDM(['Device.WiFi.SSID.', 'Device.NAT.PortMapping.'], { firstLevelOnly: true }));
      const [ssid, pm] = resp(r).getSupportedDmResp!.reqObjResults;
      const so = ssid!.supportedObjs.find((o) => o.supportedObjPath === 'Device.WiFi.SSID.{i}.')!;
      assert.ok(so, JSON.stringify(ssid!.supportedObjs.map((o) => o.supportedObjPath)));
      assert.equal(so.isMultiInstance, true);
      const p = Object.fromEntries(
        so.supportedParams.map((x) => [x.paramName, [x.valueType, x.access ?? 'PARAM_READ_ONLY' /* proto3 default (0) is omitted */]]),
      );
      assert.deepEqual(p.Enable, ['PARAM_BOOLEAN', 'PARAM_READ_WRITE']);
      assert.deepEqual(p.SSID, ['PARAM_STRING', 'PARAM_READ_WRITE']);
      assert.deepEqual(p.BSSID, ['PARAM_STRING', 'PARAM_READ_ONLY']);
      const po = pm!.supportedObjs.find((o) => o.supportedObjPath === 'Device.NAT.PortMapping.{i}.')!;
      assert.equal(po.access, 'OBJ_ADD_DELETE');
      const pp = Object.fromEntries(po.supportedParams.map((x) => [x.paramName, [x.valueType, x.access ?? 'PARAM_READ_ONLY']]));
      assert.deepEqual(pp.ExternalPort, ['PARAM_UNSIGNED_INT', 'PARAM_READ_WRITE']);
      assert.deepEqual(pp.Status, ['PARAM_STRING', 'PARAM_READ_ONLY']);
    });

    await t.test('errors: a path the device lacks -> 7026; a read-only controller -> 7006', async () => {
      const g = await ctl.req(get(['Device.Nope.Thing', 'Device.DeviceInfo.Manufacturer']));
      assert.equal(paramsOf(g, 0).errCode, 7026);
      assert.equal(paramsOf(g, 1).errCode ?? 0, 0);
      assert.ok(paramsOf(g, 1).resolvedPathResults[0]!.resultParams.Manufacturer);
      const s = await ctl.req(set([{ objPath: 'Device.Nope.', params: { X: '1' } }]));
      assert.equal(error(s).errCode, 7026);

      const ro = await connect(mtp, agent, RO);
      const w = await ro.req(set([{ objPath: 'Device.WiFi.SSID.1.', params: { SSID: 'hacked' }, required: true }]));
      assert.equal(error(w).errCode, 7006);
      const a = await ro.req(add([{ objPath: 'Device.NAT.PortMapping.', params: {} }]));
      assert.equal(error(a).errCode, 7006);
      assert.notEqual(dev.getValue('Device.WiFi.SSID.1.SSID'), 'hacked');
      const rg = await ro.req(get(['Device.WiFi.SSID.1.SSID']));
      assert.equal(paramsOf(rg).resolvedPathResults[0]!.resultParams.SSID, `ssid-${mtp}`);
      await ro.c.close();
    });
    await ctl.c.close();
  });
}

test('ws: Reboot() then Boot! (RemoteReboot, CommandKey) after the device comes back', async () => {
  const ctl = await connect('ws', agents[ONCE]!);
  await subscribe(ctl, 'boot', 'Event', 'Device.Boot!');
  const booted = ctl.notify((m) => m.body.request!.notify!.event?.eventName === 'Boot!', 15_000, 'Boot!');
  const r = await ctl.req(operate('Device.Reboot()', {}, { commandKey: 'rk-e2e', sendResp: true }));
  const res = resp(r).operateResp!.operationResults[0]!;
  assert.equal(res.executedCommand, 'Device.Reboot()');
  assert.equal(res.operationResp, 'reqObjPath');
  const n = (await booted).body.request!.notify!;
  assert.equal(n.subscriptionId, 'boot');
  assert.equal(n.event!.objPath, 'Device.');
  assert.equal(n.event!.params.Cause, 'RemoteReboot');
  assert.equal(n.event!.params.CommandKey, 'rk-e2e');
  assert.equal(n.event!.params.FirmwareUpdated, 'false');
  // the agent answers again after the reboot
  const g = await ctl.req(get(['Device.DeviceInfo.UpTime']));
  assert.equal(paramsOf(g).errCode ?? 0, 0);
  await ctl.c.close();
});

test('ws: FirmwareImage.{i}.Download(): OperationComplete on success, cmd_failure 7022 on a 404', async () => {
  const ctl = await connect('ws', agents[ONCE]!);
  await subscribe(ctl, 'dl', 'OperationComplete', 'Device.DeviceInfo.FirmwareImage.*.Download()');
  const isOc = (key: string) => (m: Msg) => m.body.request!.notify!.operComplete?.commandKey === key;
  const okN = ctl.notify(isOc('dl-ok'), 15_000, 'OperationComplete dl-ok');
  const r = await ctl.req(
    operate('Device.DeviceInfo.FirmwareImage.2.Download()', { URL: `${fwUrl}/fw.bin`, AutoActivate: 'false', FileSize: '4096' }, { commandKey: 'dl-ok' }),
  );
  const res = resp(r).operateResp!.operationResults[0]!;
  assert.equal(res.executedCommand, 'Device.DeviceInfo.FirmwareImage.2.Download()');
  assert.equal(res.operationResp, 'reqObjPath');
  assert.match(res.reqObjPath ?? '', /^Device\.LocalAgent\.Request\.\d+\.$/);
  const oc = (await okN).body.request!.notify!;
  assert.equal(oc.subscriptionId, 'dl');
  assert.equal(oc.operComplete!.objPath, 'Device.DeviceInfo.FirmwareImage.2.');
  assert.equal(oc.operComplete!.commandName, 'Download()');
  assert.equal(oc.operComplete!.operationResp, 'reqOutputArgs', JSON.stringify(oc.operComplete));

  const badN = ctl.notify(isOc('dl-404'), 15_000, 'OperationComplete dl-404');
  const r2 = await ctl.req(operate('Device.DeviceInfo.FirmwareImage.2.Download()', { URL: `${fwUrl}/missing.bin` }, { commandKey: 'dl-404' }));
  assert.equal(resp(r2).operateResp!.operationResults[0]!.operationResp, 'reqObjPath');
  const bad = (await badN).body.request!.notify!.operComplete!;
  assert.equal(bad.operationResp, 'cmdFailure');
  assert.equal(bad.cmdFailure!.errCode, 7022);
  assert.match(bad.cmdFailure!.errMsg ?? '', /9010|download/i);
  await ctl.c.close();
});

test('ws: IPPing() OperationComplete with output args', async () => {
  const ctl = await connect('ws', agents[ONCE]!);
  await subscribe(ctl, 'ping', 'OperationComplete', 'Device.IP.Diagnostics.IPPing()');
  const n = ctl.notify((m) => m.body.request!.notify!.operComplete?.commandKey === 'ping-1', 15_000, 'IPPing OperationComplete');
  const r = await ctl.req(operate('Device.IP.Diagnostics.IPPing()', { Host: '127.0.0.1', NumberOfRepetitions: '3' }, { commandKey: 'ping-1' }));
  assert.equal(resp(r).operateResp!.operationResults[0]!.operationResp, 'reqObjPath');
  const oc = (await n).body.request!.notify!.operComplete!;
  assert.equal(oc.objPath, 'Device.IP.Diagnostics.');
  assert.equal(oc.commandName, 'IPPing()');
  assert.equal(oc.operationResp, 'reqOutputArgs', JSON.stringify(oc));
  const out = oc.reqOutputArgs!.outputArgs;
  assert.equal(out.Status, 'Complete');
  assert.ok(Number(out.SuccessCount) >= 1, `SuccessCount ${out.SuccessCount}`);
  assert.ok('AverageResponseTime' in out);
  await ctl.c.close();
});

test('ws: ValueChange subscription fires when the device changes the value locally', async () => {
  const ctl = await connect('ws', agents[ONCE]!);
  const dev = fleet.devices[ONCE]!;
  await subscribe(ctl, 'vc', 'ValueChange', 'Device.DeviceInfo.ProvisioningCode');
  // the proxy mirrors the subscription as SetParameterAttributes Notification=2 on the device
  for (let i = 0; i < 50 && dev.model.attr('Device.DeviceInfo.ProvisioningCode').notification !== 2; i++) await new Promise((r) => setTimeout(r, 100));
  const n = ctl.notify((m) => m.body.request!.notify!.valueChange?.paramPath === 'Device.DeviceInfo.ProvisioningCode', 10_000, 'ValueChange');
  dev.setValue('Device.DeviceInfo.ProvisioningCode', 'changed-locally');
  const vc = (await n).body.request!.notify!;
  assert.equal(vc.subscriptionId, 'vc');
  assert.equal(vc.valueChange!.paramValue, 'changed-locally');

  // a plain (non-forced) parameter too
  await subscribe(ctl, 'vc-ssid', 'ValueChange', 'Device.WiFi.SSID.2.SSID');
  for (let i = 0; i < 50 && dev.model.attr('Device.WiFi.SSID.2.SSID').notification !== 2; i++) await new Promise((r) => setTimeout(r, 100));
  const n2 = ctl.notify((m) => m.body.request!.notify!.subscriptionId === 'vc-ssid', 10_000, 'ValueChange SSID');
  dev.setValue('Device.WiFi.SSID.2.SSID', 'renamed-on-cpe');
  const vc2 = (await n2).body.request!.notify!.valueChange!;
  assert.equal(vc2.paramPath, 'Device.WiFi.SSID.2.SSID');
  assert.equal(vc2.paramValue, 'renamed-on-cpe');
  await ctl.c.close();
});

test('ws: an unreachable device -> 7002 device unreachable', async () => {
  const ctl = await connect('ws', agents[DOWN]!);
  const rec = (await proxy.store.listDevices()).find((r) => r.endpointId === agents[DOWN])!;
  await proxy.store.upsertDevice({ ...rec, connectionRequestUrl: 'http://127.0.0.1:9/nowhere' });
  const t0 = Date.now();
  const g = await ctl.req(get(['Device.DeviceInfo.SoftwareVersion']), 10_000);
  const e = g.body.msgBody === 'error' ? g.body.error! : paramsOf(g);
  assert.equal(e.errCode, 7002, JSON.stringify(g.body));
  assert.match(e.errMsg ?? '', /unreachable/);
  assert.ok(Date.now() - t0 < 8000, 'answered within the deadline');
  await ctl.c.close();
});
