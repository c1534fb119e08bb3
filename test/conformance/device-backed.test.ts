/**
 * Conformance rows backed by the CWMP device (CONFORMANCE.md src C, P+C, C+P) and the "Beyond
 * the test plan" mirrors on CPE-backed tables: one proxy, a fleet of simulated TR-181 CPE over
 * real HTTP, our USP controller client over the WebSocket MTP. Each group works on its own
 * device so the groups do not disturb one another.
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
import { UspControllerClient, add, del, get, getInstances, getSupportedDM, operate, set } from '../../src/tools/controller/client.js';
import { TestController } from '../helpers/test-controller.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::dev-backed-ctl';
const CTL2 = 'proto::dev-backed-ctl2';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-devconf-'));
let proxy: CwmpUspProxy;
let fleet: Fleet;
let fw: http.Server;
let fwUrl = '';
const agents: string[] = [];
const clients: UspControllerClient[] = [];
const DEV = { onboard: 0, reboot: 1, diag: 2, sdm: 3, firmware: 4, tables: 5 } as const;

before(async () => {
  fw = http.createServer((req, res) => {
    if (req.url === '/fw-2.0.bin') res.writeHead(200), res.end(Buffer.alloc(2048, 1));
    else res.writeHead(404), res.end();
  });
  await new Promise<void>((r) => fw.listen(0, '127.0.0.1', r));
  fwUrl = `http://127.0.0.1:${(fw.address() as AddressInfo).port}`;
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'acs.host': '127.0.0.1',
      'acs.port': 0,
      'usp.websocket.host': '127.0.0.1',
      'usp.websocket.port': 0,
      'usp.notifRetryMinWaitS': 1,
      'interworking.operationTimeoutMs': 15000,
      controllers: [
        { endpointId: CTL, role: 'full' },
        { endpointId: CTL2, role: 'full' },
      ],
      'log.level': 'silent',
    },
  });
  proxy = new CwmpUspProxy(config, silentLogger());
  await proxy.start();
  fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
    count: 6,
    model: 'tr181',
    serialPrefix: 'DBC',
    periodicIntervalS: null,
    timers: { rebootDelayMs: 100, transferDelayMs: 100, diagnosticsDelayMs: 100 },
  });
  await fleet.start();
  const recs = await proxy.store.listDevices();
  for (const d of fleet.devices) agents.push(recs.find((r) => r.deviceId.serialNumber === d.serial)!.endpointId);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await fleet?.stop();
  await proxy?.stop();
  await new Promise<void>((r) => fw.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

async function connect(idx: number, from = CTL): Promise<TestController> {
  const c = new UspControllerClient({
    agentId: agents[idx]!,
    endpointId: from,
    transport: { mtp: 'ws', url: `ws://127.0.0.1:${proxy.usp.ws!.serverAddress()!.port}/usp` },
  });
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
const N = (m: Msg) => m.body.request!.notify!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Persistent: some cases span a device reboot, which ends non-persistent subscriptions (TR-181 Subscription.Persistent).
async function subscribe(ctl: TestController, id: string, notifType: string, ref: string): Promise<string> {
  const r = await ctl.req(
    add([{ objPath: 'Device.LocalAgent.Subscription.', params: { Enable: 'true', ID: id, NotifType: notifType, ReferenceList: ref, Persistent: 'true' } }]),
  );
  return resp(r).addResp!.createdObjResults[0]!.operStatus!.operSuccess!.instantiatedPath!;
}
const instancesOf = async (ctl: TestController, table: string) =>
  resp(await ctl.req(getInstances([table], true))).getInstancesResp!.reqPathResults[0]!.currInsts.map((c) => c.instantiatedObjPath!);

// ------------------------------------------------------------------------------------------------
// Section 1: messages and paths

test('1.60, 1.101-1.103 OnBoardRequest: from the device 0 BOOTSTRAP Inform (FactoryReset) and from SendOnBoardRequest(), with the device OUI/ProductClass/Serial', async () => {
  const ctl = await connect(DEV.onboard);
  const dev = fleet.devices[DEV.onboard]!;
  const rec = (await proxy.store.listDevices()).find((r) => r.endpointId === agents[DEV.onboard])!;
  const isObr = (m: Msg) => N(m).notification === 'onBoardReq' || !!N(m).onBoardReq;

  const viaCmd = ctl.notify(isObr, 10_000, 'OnBoardRequest (SendOnBoardRequest)');
  const r = await ctl.req(operate('Device.LocalAgent.Controller.1.SendOnBoardRequest()', {}, { sendResp: true }));
  const res = resp(r).operateResp!.operationResults[0]!;
  assert.equal(res.executedCommand, 'Device.LocalAgent.Controller.1.SendOnBoardRequest()');
  assert.notEqual(res.operationResp, 'cmdFailure');
  const n1 = N(await viaCmd);
  assert.equal(n1.sendResp, true, 'OnBoardRequest wants a NotifyResp');
  assert.equal(n1.onBoardReq!.oui, rec.deviceId.oui);
  assert.equal(n1.onBoardReq!.productClass, rec.deviceId.productClass);
  assert.equal(n1.onBoardReq!.serialNumber, dev.serial);
  assert.match(n1.onBoardReq!.agentSupportedProtocolVersions ?? '', /1\.3/);

  // A factory reset makes the CPE send 0 BOOTSTRAP: the proxy turns that into OnBoardRequest.
  const before = ctl.notifies.length;
  const viaBootstrap = new Promise<Msg>((resolve, reject) => {
    const t0 = Date.now();
    const tick = setInterval(() => {
      const m = ctl.notifies.slice(before).find(isObr);
      if (m) clearInterval(tick), resolve(m);
      else if (Date.now() - t0 > 10_000) clearInterval(tick), reject(new Error('no OnBoardRequest after 0 BOOTSTRAP'));
    }, 50);
  });
  const fr = await ctl.req(operate('Device.FactoryReset()', {}, { sendResp: true }));
  assert.equal(resp(fr).operateResp!.operationResults[0]!.executedCommand, 'Device.FactoryReset()');
  const n2 = N(await viaBootstrap);
  assert.equal(n2.onBoardReq!.oui, rec.deviceId.oui);
  assert.equal(n2.onBoardReq!.productClass, rec.deviceId.productClass);
  assert.equal(n2.onBoardReq!.serialNumber, dev.serial);
});

test('1.61, 1.62 Device.Reboot(): OperateResp, the device reboots (CWMP Reboot), Boot! RemoteReboot with the CommandKey, the agent answers again', async () => {
  const ctl = await connect(DEV.reboot);
  await subscribe(ctl, 'boot-1.61', 'Event', 'Device.Boot!');
  const booted = ctl.notify((m) => N(m).event?.eventName === 'Boot!', 15_000, 'Boot!');
  const upBefore = Number(fleet.devices[DEV.reboot]!.getValue('Device.DeviceInfo.UpTime'));
  const r = await ctl.req(operate('Device.Reboot()', {}, { commandKey: 'ck-1.61', sendResp: true }));
  const res = resp(r).operateResp!.operationResults[0]!;
  assert.equal(res.executedCommand, 'Device.Reboot()');
  assert.ok(res.operationResp === 'reqObjPath' || res.operationResp === 'reqOutputArgs', res.operationResp);
  const ev = N(await booted).event!;
  assert.equal(ev.objPath, 'Device.');
  assert.equal(ev.params.Cause, 'RemoteReboot');
  assert.equal(ev.params.CommandKey, 'ck-1.61');
  assert.equal(ev.params.FirmwareUpdated, 'false');
  const g = await ctl.req(get(['Device.DeviceInfo.UpTime']));
  const up = Number(resp(g).getResp!.reqPathResults[0]!.resolvedPathResults[0]!.resultParams.UpTime);
  assert.ok(Number.isFinite(up) && (up <= upBefore || up < 5), `UpTime restarted: ${upBefore} -> ${up}`);
});

for (const [name, cmd, args, check] of [
  [
    'IPPing()',
    'Device.IP.Diagnostics.IPPing()',
    { Host: '127.0.0.1', NumberOfRepetitions: '2' },
    (o: Record<string, string>) => assert.ok(Number(o.SuccessCount) >= 1, JSON.stringify(o)),
  ],
  [
    'TraceRoute()',
    'Device.IP.Diagnostics.TraceRoute()',
    { Host: '127.0.0.1', MaxHopCount: '5' },
    (o: Record<string, string>) => assert.ok('ResponseTime' in o, JSON.stringify(o)),
  ],
] as const) {
  test(`1.64, 1.65, 1.92 async ${name}: req_obj_path Device.LocalAgent.Request.{i}. (Command, Status Active), then OperationComplete with output args, the Request row removed`, async () => {
    const ctl = await connect(DEV.diag);
    const key = `ck-${name}`;
    await subscribe(ctl, `oc-${name}`, 'OperationComplete', cmd);
    const done = ctl.notify((m) => N(m).operComplete?.commandKey === key, 15_000, `OperationComplete ${name}`);
    const r = await ctl.req(operate(cmd, args, { commandKey: key, sendResp: true }));
    const res = resp(r).operateResp!.operationResults[0]!;
    assert.equal(res.executedCommand, cmd);
    assert.equal(res.operationResp, 'reqObjPath');
    const reqPath = res.reqObjPath!;
    assert.match(reqPath, /^Device\.LocalAgent\.Request\.\d+\.$/);
    const g = await ctl.req(get([reqPath]));
    const row = resp(g).getResp!.reqPathResults[0]!.resolvedPathResults[0];
    if (row) {
      // still running (it may already have finished on a fast machine)
      assert.equal(row.resultParams.Command, cmd);
      assert.equal(row.resultParams.CommandKey, key);
      assert.match(row.resultParams.Status ?? '', /^(Requested|Active)$/);
    }
    const oc = N(await done);
    assert.equal(oc.subscriptionId, `oc-${name}`);
    assert.equal(oc.operComplete!.objPath, 'Device.IP.Diagnostics.');
    assert.equal(oc.operComplete!.commandName, name);
    assert.equal(oc.operComplete!.operationResp, 'reqOutputArgs', JSON.stringify(oc.operComplete));
    const out = oc.operComplete!.reqOutputArgs!.outputArgs;
    assert.equal(out.Status, 'Complete');
    check(out);
    await sleep(100);
    const after = await ctl.req(get([reqPath]));
    assert.deepEqual(resp(after).getResp!.reqPathResults[0]!.resolvedPathResults, [], 'the Request row is gone');
  });
}

test("1.76, 1.97, 1.98, 1.105, 1.106 GetSupportedDM on Device. (whole model incl. the device's, a type for every parameter), Device.Reboot() and Device.Boot!", async () => {
  const ctl = await connect(DEV.sdm);
  const r = await ctl.req(getSupportedDM(['Device.']));
  const res = resp(r).getSupportedDmResp!.reqObjResults[0]!;
  assert.equal(res.errCode ?? 0, 0);
  const objs = new Map(res.supportedObjs.map((o) => [o.supportedObjPath!, o]));
  for (const p of [
    'Device.',
    'Device.DeviceInfo.',
    'Device.WiFi.SSID.{i}.',
    'Device.NAT.PortMapping.{i}.',
    'Device.IP.Diagnostics.',
    'Device.LocalAgent.',
    'Device.LocalAgent.Subscription.{i}.',
    'Device.LocalAgent.Controller.{i}.',
  ]) {
    assert.ok(objs.has(p), `${p} in the supported model`);
  }
  assert.ok(
    !objs.has('Device.ManagementServer.') ||
      [...objs.get('Device.ManagementServer.')!.supportedParams].every((p) => (p.access ?? 'PARAM_READ_ONLY') === 'PARAM_READ_ONLY'),
    'ManagementServer read-only if shown',
  );
  let count = 0;
  for (const o of res.supportedObjs) {
    for (const p of o.supportedParams) {
      count++;
      assert.ok(p.valueType && p.valueType !== 'PARAM_UNKNOWN', `${o.supportedObjPath}${p.paramName} has a type (${p.valueType})`);
    }
  }
  assert.ok(count > 100, `${count} parameters`);
  const dev = objs.get('Device.')!;
  const reboot = dev.supportedCommands.find((c) => c.commandName === 'Reboot()');
  assert.ok(reboot);
  assert.equal(reboot.commandType, 'CMD_ASYNC');
  const boot = dev.supportedEvents.find((e) => e.eventName === 'Boot!');
  assert.deepEqual(boot?.argNames, ['CommandKey', 'Cause', 'FirmwareUpdated', 'ParameterMap']);
  const ping = objs.get('Device.IP.Diagnostics.')!.supportedCommands.find((c) => c.commandName === 'IPPing()')!;
  assert.ok(ping.inputArgNames.includes('Host') && ping.outputArgNames.includes('SuccessCount'));
  const fwo = objs.get('Device.DeviceInfo.FirmwareImage.{i}.')!;
  assert.ok(fwo.supportedCommands.some((c) => c.commandName === 'Download()'));

  // first_level_only on Device.: only Device. and its direct children
  const fl = resp(await ctl.req(getSupportedDM(['Device.'], { firstLevelOnly: true }))).getSupportedDmResp!.reqObjResults[0]!;
  const flPaths = fl.supportedObjs.map((o) => o.supportedObjPath!);
  assert.ok(flPaths.includes('Device.') && flPaths.includes('Device.WiFi.') && flPaths.includes('Device.LocalAgent.'), String(flPaths));
  assert.ok(!flPaths.includes('Device.WiFi.SSID.{i}.'), 'first level only');

  // the command and event paths themselves
  for (const p of ['Device.Reboot()', 'Device.Boot!']) {
    const x = resp(await ctl.req(getSupportedDM([p]))).getSupportedDmResp!.reqObjResults[0]!;
    assert.equal(x.errCode ?? 0, 0, `${p}: ${x.errMsg}`);
    const d = x.supportedObjs.find((o) => o.supportedObjPath === 'Device.');
    assert.ok(d, `${p}: Device. returned`);
    if (p === 'Device.Reboot()') assert.ok(d.supportedCommands.some((c) => c.commandName === 'Reboot()'));
    else assert.ok(d.supportedEvents.some((e) => e.eventName === 'Boot!'));
  }
});

// ------------------------------------------------------------------------------------------------
// Section 9: Boot! and firmware

test('9.10 Boot! after the device 1 BOOT Inform carries the Controller BootParameters values in ParameterMap', async () => {
  const ctl = await connect(DEV.reboot);
  for (const [alias, name] of [
    ['bp-sw', 'Device.DeviceInfo.SoftwareVersion'],
    ['bp-ssid', 'Device.WiFi.SSID.1.SSID'],
  ]) {
    const a = await ctl.req(add([{ objPath: 'Device.LocalAgent.Controller.1.BootParameter.', params: { Alias: alias, Enable: 'true', ParameterName: name } }]));
    assert.ok(resp(a).addResp!.createdObjResults[0]!.operStatus!.operSuccess, JSON.stringify(a.body));
  }
  await subscribe(ctl, 'boot-9.10', 'Event', 'Device.Boot!');
  const booted = ctl.notify((m) => N(m).subscriptionId === 'boot-9.10', 15_000, 'Boot!');
  await ctl.req(operate('Device.Reboot()', {}, { commandKey: 'ck-9.10' }));
  const ev = N(await booted).event!;
  const map = JSON.parse(ev.params.ParameterMap ?? '{}') as Record<string, string>;
  const dev = fleet.devices[DEV.reboot]!;
  assert.equal(map['Device.DeviceInfo.SoftwareVersion'], dev.getValue('Device.DeviceInfo.SoftwareVersion'));
  assert.equal(
    map['Device.WiFi.SSID.1.SSID'],
    dev.getValue('Device.WiFi.SSID.1.SSID'),
    `a non-forced BootParameter is read from the device: ${ev.params.ParameterMap}`,
  );
});

test('9.3-9.7 FirmwareImage.{i}.Download(): CWMP Download 1 Firmware Upgrade Image; OperationComplete; TransferComplete!; Boot! with FirmwareUpdated true; a 404 is cmd_failure 7022', async () => {
  const ctl = await connect(DEV.firmware);
  const dev = fleet.devices[DEV.firmware]!;
  const swBefore = dev.getValue('Device.DeviceInfo.SoftwareVersion');
  await subscribe(ctl, 'fw-oc', 'OperationComplete', 'Device.DeviceInfo.FirmwareImage.*.Download()');
  await subscribe(ctl, 'fw-tc', 'Event', 'Device.LocalAgent.TransferComplete!');
  await subscribe(ctl, 'fw-boot', 'Event', 'Device.Boot!');
  const oc = ctl.notify((m) => N(m).operComplete?.commandKey === 'ck-fw', 15_000, 'OperationComplete');
  const tc = ctl.notify((m) => N(m).subscriptionId === 'fw-tc', 15_000, 'TransferComplete!');
  const boot = ctl.notify((m) => N(m).subscriptionId === 'fw-boot', 15_000, 'Boot!');
  const r = await ctl.req(
    operate('Device.DeviceInfo.FirmwareImage.2.Download()', { URL: `${fwUrl}/fw-2.0.bin`, AutoActivate: 'true' }, { commandKey: 'ck-fw' }),
  );
  const res = resp(r).operateResp!.operationResults[0]!;
  assert.equal(res.operationResp, 'reqObjPath');
  const o = N(await oc).operComplete!;
  assert.equal(o.objPath, 'Device.DeviceInfo.FirmwareImage.2.');
  assert.equal(o.commandName, 'Download()');
  assert.equal(o.operationResp, 'reqOutputArgs', JSON.stringify(o));
  const t = N(await tc).event!;
  assert.equal(t.objPath, 'Device.LocalAgent.');
  assert.equal(t.eventName, 'TransferComplete!');
  assert.equal(t.params.CommandKey, 'ck-fw');
  assert.equal(t.params.TransferType, 'Download');
  assert.equal(t.params.FaultCode, '0');
  // The image the Download() targeted (issue 16 item 5), not image 1.
  assert.equal(t.params.Command, 'Device.DeviceInfo.FirmwareImage.2.Download()');
  const b = N(await boot).event!;
  assert.equal(b.params.FirmwareUpdated, 'true');
  assert.equal(b.params.Cause, 'FirmwareUpdate');
  assert.equal(b.params.CommandKey, 'ck-fw');
  assert.notEqual(dev.getValue('Device.DeviceInfo.SoftwareVersion'), swBefore, 'the new image runs');

  const bad = ctl.notify((m) => N(m).operComplete?.commandKey === 'ck-404', 15_000, 'OperationComplete 404');
  await ctl.req(operate('Device.DeviceInfo.FirmwareImage.2.Download()', { URL: `${fwUrl}/nope.bin` }, { commandKey: 'ck-404' }));
  const f = N(await bad).operComplete!;
  assert.equal(f.operationResp, 'cmdFailure');
  assert.equal(f.cmdFailure!.errCode, 7022);
});

// ------------------------------------------------------------------------------------------------
// Beyond the test plan: the same cases on CPE-backed tables

test('CPE tables: Add/Set/Delete Device.NAT.PortMapping. with allow_partial false (atomic, rolled back) and true', async () => {
  const ctl = await connect(DEV.tables);
  const dev = fleet.devices[DEV.tables]!;
  const before = await instancesOf(ctl, 'Device.NAT.PortMapping.');

  // allow_partial false, two objects, the second fails on the device: Error, nothing created
  const a = await ctl.req(
    add([
      { objPath: 'Device.NAT.PortMapping.', params: { ExternalPort: '1001', Alias: 'pm-a' } },
      { objPath: 'Device.NAT.PortMapping.', params: { ExternalPort: 'not-a-port', Alias: 'pm-b' }, required: true },
    ]),
  );
  const e = error(a);
  assert.ok([7004, 7012, 7011].includes(e.errCode!), `${e.errCode} ${e.errMsg}`);
  assert.deepEqual(await instancesOf(ctl, 'Device.NAT.PortMapping.'), before, 'rolled back: no instance left');
  assert.ok(![...dev.model.walk('Device.NAT.PortMapping.')].some((p) => dev.getValue(p) === 'pm-a'), 'rolled back on the CPE too');

  // allow_partial true: the good one is created, the bad one is an oper_failure
  const b = await ctl.req(
    add(
      [
        { objPath: 'Device.NAT.PortMapping.', params: { ExternalPort: '1002', Alias: 'pm-c' } },
        { objPath: 'Device.NAT.PortMapping.', params: { ExternalPort: 'not-a-port' }, required: true },
      ],
      true,
    ),
  );
  const [ok, ko] = resp(b).addResp!.createdObjResults;
  const created = ok!.operStatus!.operSuccess!;
  assert.match(created.instantiatedPath!, /^Device\.NAT\.PortMapping\.\d+\.$/);
  assert.equal(created.uniqueKeys.Alias, 'pm-c', 'unique keys of the new instance');
  assert.ok(ko!.operStatus!.operFailure!.errCode, 'oper_failure for the bad object');
  const now = await instancesOf(ctl, 'Device.NAT.PortMapping.');
  assert.equal(now.length, before.length + 1);

  // Set: allow_partial false with a bad value -> Error, no change; true -> per-object result
  const inst = created.instantiatedPath!;
  const s1 = await ctl.req(set([{ objPath: inst, params: { InternalPort: '22', ExternalPort: 'x' }, required: true }]));
  assert.equal(error(s1).paramErrs[0]!.errCode, 7012);
  assert.equal(dev.getValue(`${inst}InternalPort`) === '22', false, 'nothing changed');
  const s2 = await ctl.req(
    set(
      [
        { objPath: inst, params: { InternalPort: '22' } },
        { objPath: 'Device.NAT.PortMapping.[Alias=="pm-c"].', params: { Status: 'Enabled' }, required: true },
      ],
      true,
    ),
  );
  const [u1, u2] = resp(s2).setResp!.updatedObjResults;
  assert.deepEqual(u1!.operStatus!.operSuccess!.updatedInstResults[0]!.updatedParams, { InternalPort: '22' });
  assert.equal(u2!.operStatus!.operFailure!.errCode, 7021);
  assert.equal(dev.getValue(`${inst}InternalPort`), '22');

  // Delete: an instance that does not exist -> empty success; by search expression; allow_partial
  const d0 = await ctl.req(del(['Device.NAT.PortMapping.999.']));
  assert.deepEqual(resp(d0).deleteResp!.deletedObjResults[0]!.operStatus!.operSuccess!.affectedPaths, []);
  const d1 = await ctl.req(del(['Device.NAT.PortMapping.[Alias=="pm-c"].', 'Device.WiFi.SSID.1.'], true));
  const [r1, r2] = resp(d1).deleteResp!.deletedObjResults;
  assert.deepEqual(r1!.operStatus!.operSuccess!.affectedPaths, [inst]);
  assert.ok(r2!.operStatus!.operFailure!.errCode, 'a fixed table cannot be deleted from');
  assert.deepEqual(await instancesOf(ctl, 'Device.NAT.PortMapping.'), before);
  const d2 = await ctl.req(del(['Device.WiFi.SSID.1.']));
  assert.ok([7015, 7016, 7018, 7024].includes(error(d2).errCode!), String(error(d2).errCode));
});

test('CPE tables: search expressions and unique keys (Alias) on Device.WiFi.SSID.{i} and Device.NAT.PortMapping.{i}', async () => {
  const ctl = await connect(DEV.tables);
  const g = await ctl.req(
    get([
      'Device.WiFi.SSID.[Alias=="cpe-2"].Name',
      'Device.WiFi.SSID.[Enable==true&&Name=="wl0"].SSID',
      'Device.WiFi.SSID.[Name!="wl0"].Name',
      'Device.NAT.PortMapping.[ExternalPort>1000].Alias',
      'Device.NAT.PortMapping.[ExternalPort<10].Alias',
    ]),
  );
  const rs = resp(g).getResp!.reqPathResults;
  assert.deepEqual(
    rs[0]!.resolvedPathResults.map((x) => [x.resolvedPath, x.resultParams.Name]),
    [['Device.WiFi.SSID.2.', 'wl1']],
  );
  assert.deepEqual(
    rs[1]!.resolvedPathResults.map((x) => x.resolvedPath),
    ['Device.WiFi.SSID.1.'],
  );
  assert.deepEqual(
    rs[2]!.resolvedPathResults.map((x) => x.resolvedPath),
    ['Device.WiFi.SSID.2.'],
  );
  assert.deepEqual(
    rs[3]!.resolvedPathResults.map((x) => x.resultParams.Alias),
    ['cpe-1'],
  );
  assert.deepEqual(rs[4]!.resolvedPathResults, [], 'no match: empty, not an error');
  assert.equal(rs[4]!.errCode ?? 0, 0);

  // Set through a unique key; no match -> empty success
  const s = await ctl.req(set([{ objPath: 'Device.WiFi.SSID.[Alias=="cpe-2"].', params: { SSID: 'by-alias' } }]));
  assert.equal(resp(s).setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults[0]!.affectedPath, 'Device.WiFi.SSID.2.');
  assert.equal(fleet.devices[DEV.tables]!.getValue('Device.WiFi.SSID.2.SSID'), 'by-alias');
  const none = await ctl.req(set([{ objPath: 'Device.WiFi.SSID.[Alias=="nope"].', params: { SSID: 'x' } }]));
  assert.deepEqual(resp(none).setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults, []);

  // Unique keys: GetInstances reports Alias; an Add with an Alias in use is refused
  const gi = resp(await ctl.req(getInstances(['Device.WiFi.SSID.']))).getInstancesResp!.reqPathResults[0]!.currInsts;
  assert.deepEqual(
    gi.map((c) => [c.instantiatedObjPath, c.uniqueKeys.Alias]),
    [
      ['Device.WiFi.SSID.1.', 'cpe-1'],
      ['Device.WiFi.SSID.2.', 'cpe-2'],
    ],
  );
  const before = await instancesOf(ctl, 'Device.NAT.PortMapping.');
  const dup = await ctl.req(add([{ objPath: 'Device.NAT.PortMapping.', params: { Alias: 'cpe-1', ExternalPort: '2000' } }]));
  assert.equal(dup.body.msgBody, 'error', `duplicate Alias refused: ${JSON.stringify(dup.body)}`);
  assert.deepEqual(await instancesOf(ctl, 'Device.NAT.PortMapping.'), before);
});

test('CPE tables: ObjectCreation / ObjectDeletion for Device.NAT.PortMapping. and ValueChange through SetParameterAttributes (off again when the subscription goes)', async () => {
  const ctl = await connect(DEV.tables);
  const dev = fleet.devices[DEV.tables]!;
  await subscribe(ctl, 'oc', 'ObjectCreation', 'Device.NAT.PortMapping.');
  await subscribe(ctl, 'od', 'ObjectDeletion', 'Device.NAT.PortMapping.');
  const created = ctl.notify((m) => N(m).subscriptionId === 'oc', 10_000, 'ObjectCreation');
  const a = await ctl.req(add([{ objPath: 'Device.NAT.PortMapping.', params: { Alias: 'pm-notif', ExternalPort: '3000' } }]));
  const inst = resp(a).addResp!.createdObjResults[0]!.operStatus!.operSuccess!.instantiatedPath!;
  const c = N(await created).objCreation!;
  assert.equal(c.objPath, inst);
  assert.equal(c.uniqueKeys.Alias, 'pm-notif');
  const deleted = ctl.notify((m) => N(m).subscriptionId === 'od', 10_000, 'ObjectDeletion');
  await ctl.req(del([inst]));
  assert.equal(N(await deleted).objDeletion!.objPath, inst);

  const P = 'Device.WiFi.SSID.1.SSID';
  const sub = await subscribe(ctl, 'vc', 'ValueChange', P);
  for (let i = 0; i < 50 && dev.model.attr(P).notification !== 2; i++) await sleep(100);
  assert.equal(dev.model.attr(P).notification, 2, 'SetParameterAttributes Notification=2 on the CPE');
  const vc = ctl.notify((m) => N(m).subscriptionId === 'vc', 10_000, 'ValueChange');
  dev.setValue(P, 'changed-on-cpe');
  const v = N(await vc).valueChange!;
  assert.equal(v.paramPath, P);
  assert.equal(v.paramValue, 'changed-on-cpe');

  await ctl.req(del([sub]));
  for (let i = 0; i < 50 && dev.model.attr(P).notification !== 0; i++) await sleep(100);
  assert.equal(dev.model.attr(P).notification, 0, 'Notification back to 0 when the subscription goes');
  const count = ctl.notifies.filter((m) => N(m).subscriptionId === 'vc').length;
  dev.setValue(P, 'silent');
  await sleep(800);
  assert.equal(ctl.notifies.filter((m) => N(m).subscriptionId === 'vc').length, count, 'no ValueChange after the subscription is deleted');
});

test('CPE tables: GetSupportedDM types, access and unique key sets of device parameters', async () => {
  const ctl = await connect(DEV.tables);
  const r = resp(await ctl.req(getSupportedDM(['Device.NAT.PortMapping.', 'Device.WiFi.SSID.', 'Device.DeviceInfo.'], { firstLevelOnly: true })))
    .getSupportedDmResp!;
  const all = new Map(r.reqObjResults.flatMap((x) => x.supportedObjs).map((o) => [o.supportedObjPath!, o]));
  const t = (obj: string, p: string) => {
    const sp = all.get(obj)!.supportedParams.find((x) => x.paramName === p)!;
    assert.ok(sp, `${obj}${p}`);
    return [sp.valueType, sp.access ?? 'PARAM_READ_ONLY'];
  };
  assert.deepEqual(t('Device.NAT.PortMapping.{i}.', 'Enable'), ['PARAM_BOOLEAN', 'PARAM_READ_WRITE']);
  assert.deepEqual(t('Device.NAT.PortMapping.{i}.', 'ExternalPort'), ['PARAM_UNSIGNED_INT', 'PARAM_READ_WRITE']);
  assert.deepEqual(t('Device.NAT.PortMapping.{i}.', 'Status'), ['PARAM_STRING', 'PARAM_READ_ONLY']);
  assert.deepEqual(t('Device.WiFi.SSID.{i}.', 'SSID'), ['PARAM_STRING', 'PARAM_READ_WRITE']);
  assert.deepEqual(t('Device.DeviceInfo.', 'SerialNumber'), ['PARAM_STRING', 'PARAM_READ_ONLY']);
  assert.equal(t('Device.DeviceInfo.', 'UpTime')[0], 'PARAM_UNSIGNED_INT');
  const pm = all.get('Device.NAT.PortMapping.{i}.')!;
  assert.equal(pm.access, 'OBJ_ADD_DELETE');
  assert.equal(pm.isMultiInstance, true);
  assert.ok(
    pm.uniqueKeySets.some((k) => k.keyNames.includes('Alias')),
    JSON.stringify(pm.uniqueKeySets),
  );
  assert.equal(all.get('Device.WiFi.SSID.{i}.')!.isMultiInstance, true);
});
