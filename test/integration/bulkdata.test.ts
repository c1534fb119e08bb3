/**
 * Bulk Data collection served by the proxy (issue 20, first slice): a controller over a real
 * WebSocket creates a USPEventNotif profile on the agent of a simulated TR-181 CPE and on the agent
 * of a TR-098 one (read through the mapping), subscribes to its Push! event, and receives reports
 * whose Data is the extension's JSON with the devices' own values, collected through CWMP
 * GetParameterValues. A ReportingInterval below MinReportingInterval gets 7012, and the profiles
 * are still there after a proxy restart on the same data folder.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, add, get, set } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { freePort } from '../helpers/brokers.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { TestController } from '../helpers/test-controller.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::bulkdata-ctl';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bulkdata-'));
let tp: TestProxy | null = null;
const fleets: Fleet[] = [];
const controllers: UspControllerClient[] = [];
let acsPort = 0;
let wsPort = 0;

const startProxy = () =>
  startTestProxy({
    dataDir: dir,
    'acs.port': acsPort,
    'usp.websocket.port': wsPort,
    'bulkData.minReportingIntervalS': 1,
    controllers: [{ endpointId: CTL, role: 'full' }],
  });

before(async () => {
  acsPort = await freePort();
  wsPort = await freePort();
  tp = await startProxy();
});

after(async () => {
  for (const c of controllers) await c.close();
  for (const f of fleets) await f.stop();
  await tp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function deviceAndController(model: 'tr181' | 'tr098', serialPrefix: string): Promise<{ agent: string; serial: string; ctl: TestController }> {
  const fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp!.acsUrl, count: 1, model, serialPrefix, periodicIntervalS: null });
  fleets.push(fleet);
  await fleet.start();
  const serial = fleet.devices[0]!.serial;
  const rec = (await tp!.proxy.store.listDevices()).find((d) => d.deviceId.serialNumber === serial)!;
  const c = new UspControllerClient({
    endpointId: CTL,
    agentId: rec.endpointId,
    transport: { mtp: 'ws', url: `ws://127.0.0.1:${wsPort}/usp` },
    timeoutMs: 20_000,
  });
  controllers.push(c);
  await c.connect();
  return { agent: rec.endpointId, serial, ctl: new TestController(c) };
}

const isPush = (m: Msg) => m.body.request?.notify?.event?.eventName === 'Push!';

for (const model of ['tr181', 'tr098'] as const) {
  test(`${model}: a USPEventNotif profile delivers Push! reports with the device's values`, { timeout: 60_000 }, async () => {
    const { serial, ctl } = await deviceAndController(model, model === 'tr181' ? 'BDA' : 'BDB');
    const ok = (m: Msg) => assert.equal(m.header.msgType, 'ADD_RESP', JSON.stringify(m.body));
    const low = await ctl.req(add([{ objPath: 'Device.BulkData.Profile.', params: { ReportingInterval: '0' }, required: true }]), 20_000);
    assert.equal(low.header.msgType, 'ERROR', 'ReportingInterval below MinReportingInterval');
    assert.equal(low.body.error?.paramErrs?.[0]?.errCode, 7012, JSON.stringify(low.body));

    ok(
      await ctl.req(
        add([
          {
            objPath: 'Device.LocalAgent.Subscription.',
            params: { Enable: 'true', ID: `push-${model}`, NotifType: 'Event', ReferenceList: 'Device.BulkData.Profile.1.Push!' },
            required: true,
          },
        ]),
        20_000,
      ),
    );
    ok(
      await ctl.req(
        add([
          {
            objPath: 'Device.BulkData.Profile.',
            params: { Alias: 'telemetry', Protocol: 'USPEventNotif', EncodingType: 'JSON', ReportingInterval: '1' },
            required: true,
          },
        ]),
        20_000,
      ),
    );
    for (const [Reference, Name] of [
      ['Device.DeviceInfo.SerialNumber', ''],
      ['Device.DeviceInfo.UpTime', 'Up'],
      ['Device.WiFi.SSID.*.SSID', ''],
    ])
      ok(await ctl.req(add([{ objPath: 'Device.BulkData.Profile.1.Parameter.', params: { Reference, Name }, required: true }]), 20_000));
    ok(await ctl.req(add([{ objPath: 'Device.BulkData.Profile.1.Parameter.', params: { Reference: 'Device.DeviceInfo.' }, required: true }]), 20_000));
    const setJson = await ctl.req(
      set([
        { objPath: 'Device.BulkData.Profile.1.JSONEncoding.', params: { ReportFormat: 'NameValuePair' }, required: true },
        { objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'true' }, required: true },
      ]),
      20_000,
    );
    assert.equal(setJson.header.msgType, 'SET_RESP', JSON.stringify(setJson.body));

    const push = await ctl.notify(isPush, 20_000, 'Push!');
    const n = push.body.request!.notify!;
    assert.equal(n.subscriptionId, `push-${model}`);
    assert.equal(n.event!.objPath, 'Device.BulkData.Profile.1.');
    const data = JSON.parse(n.event!.params.Data!) as { Report: Record<string, unknown>[] };
    assert.equal(data.Report.length, 1);
    const r = data.Report[0]!;
    assert.equal(typeof r.CollectionTime, 'number');
    assert.ok(Math.abs((r.CollectionTime as number) - Date.now() / 1000) < 30);
    assert.equal(r['Device.DeviceInfo.SerialNumber'], serial, 'the device value, as a JSON string');
    assert.equal(typeof r.Up, 'number', 'Parameter.{i}.Name replaces the path; UpTime is an unsignedInt: a JSON number');
    const ssids = Object.keys(r).filter((k) => /^Device\.WiFi\.SSID\.\d+\.SSID$/.test(k));
    assert.ok(ssids.length >= 1, `the wildcard expands to the SSIDs: ${Object.keys(r).join(', ')}`);
    assert.ok('Device.DeviceInfo.Manufacturer' in r, 'a partial path reports every parameter below it');

    // A second report follows at the next interval.
    const before = ctl.notifies.filter(isPush).length;
    await ctl.notify((m) => isPush(m) && ctl.notifies.filter(isPush).indexOf(m) >= before, 20_000, 'second Push!');
  });
}

test('profiles are kept in the store and still report after a proxy restart', { timeout: 60_000 }, async () => {
  await tp!.stop();
  // Reports of the stopped proxy's timers that were still under way are ignored: wait for new ones.
  tp = await startProxy();
  const c = controllers[0]!;
  await c.close();
  const agent = (await tp.proxy.store.listDevices()).find((d) => d.deviceId.serialNumber.startsWith('BDA'))!.endpointId;
  const again = new UspControllerClient({ endpointId: CTL, agentId: agent, transport: { mtp: 'ws', url: `ws://127.0.0.1:${wsPort}/usp` }, timeoutMs: 20_000 });
  controllers.push(again);
  await again.connect();
  const ctl = new TestController(again);
  const g = await ctl.req(get(['Device.BulkData.Profile.1.']), 20_000);
  const params = g.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults[0]!.resultParams;
  assert.equal(params.Alias, 'telemetry');
  assert.equal(params.Enable, 'true');
  assert.equal(params.ParameterNumberOfEntries, '4');
  const push = await ctl.notify(isPush, 20_000, 'Push! after the restart');
  assert.equal(push.body.request!.notify!.subscriptionId, 'push-tr181');
});
