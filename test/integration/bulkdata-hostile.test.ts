/**
 * Bulk Data bad input at its real size (issue 20 "Bad input"): a controller gives a profile
 * 100,000 Parameter references (Device.BulkData.MaxNumberOfParameterReferences at its highest
 * setting, 100,000, in Add messages of 10,000 rows each); the 100,001st gets 7005; a 100,000-row
 * Add on the default limit (256) gets 7005 and leaves nothing behind. The profile's collection is
 * bounded (the report's values stop at bulkData maxValues, with a log line saying so), the process
 * keeps answering, and another device's profile keeps reporting throughout.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/app/log.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, add, get, set } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { TestController } from '../helpers/test-controller.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::bulkdata-hostile-ctl';
const lines: Record<string, unknown>[] = [];
const proxies: TestProxy[] = [];
const fleets: Fleet[] = [];
const controllers: UspControllerClient[] = [];

after(async () => {
  for (const c of controllers) await c.close();
  for (const f of fleets) await f.stop();
  for (const p of proxies) await p.stop();
});

async function proxy(overrides: Record<string, unknown>): Promise<TestProxy> {
  const tp = await startTestProxy(
    { 'bulkData.minReportingIntervalS': 1, controllers: [{ endpointId: CTL, role: 'full' }], ...overrides },
    { logger: createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) }) },
  );
  proxies.push(tp);
  return tp;
}

async function cpe(tp: TestProxy, serialPrefix: string): Promise<{ agent: string; ctl: TestController }> {
  const fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp.acsUrl, count: 1, model: 'tr181', serialPrefix, periodicIntervalS: null });
  fleets.push(fleet);
  await fleet.start();
  const serial = fleet.devices[0]!.serial;
  const agent = (await tp.proxy.store.listDevices()).find((d) => d.deviceId.serialNumber === serial)!.endpointId;
  const c = new UspControllerClient({ endpointId: CTL, agentId: agent, transport: { mtp: 'ws', url: tp.uspUrl }, timeoutMs: 120_000 });
  controllers.push(c);
  await c.connect();
  return { agent, ctl: new TestController(c) };
}

const expectType = (m: Msg, type: string) => assert.equal(m.header.msgType, type, JSON.stringify(m.body).slice(0, 2000));
const pushOf = (id: string) => (m: Msg) => m.body.request?.notify?.subscriptionId === id && m.body.request.notify.event?.eventName === 'Push!';

async function pushProfile(ctl: TestController, id: string, enable: boolean): Promise<void> {
  expectType(
    await ctl.req(
      add([
        {
          objPath: 'Device.LocalAgent.Subscription.',
          params: { Enable: 'true', ID: id, NotifType: 'Event', ReferenceList: 'Device.BulkData.Profile.1.Push!' },
          required: true,
        },
      ]),
    ),
    'ADD_RESP',
  );
  expectType(
    await ctl.req(
      add([
        {
          objPath: 'Device.BulkData.Profile.',
          params: { Protocol: 'USPEventNotif', EncodingType: 'JSON', ReportingInterval: '1', Enable: String(enable) },
          required: true,
        },
      ]),
    ),
    'ADD_RESP',
  );
}

/** A Parameter row: one of the device's parameters, or (every third) a name the device does not have. */
const reference = (i: number) =>
  i % 3 === 2 ? `Device.DeviceInfo.X_NOPE_${i}` : i % 3 === 1 ? `Device.WiFi.SSID.${(i % 4) + 1}.SSID` : `Device.DeviceInfo.SerialNumber`;

test('a profile with 100,000 Parameter references: 7005 beyond the limit, a bounded report, other devices keep reporting', { timeout: 600_000 }, async () => {
  const tp = await proxy({ 'bulkData.maxParameterReferences': 100_000 });
  const other = await cpe(tp, 'BDQ');
  await pushProfile(other.ctl, 'other', false);
  expectType(
    await other.ctl.req(add([{ objPath: 'Device.BulkData.Profile.1.Parameter.', params: { Reference: 'Device.DeviceInfo.UpTime' }, required: true }])),
    'ADD_RESP',
  );
  expectType(await other.ctl.req(set([{ objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'true' }, required: true }])), 'SET_RESP');
  await other.ctl.notify(pushOf('other'), 20_000, "the other device's first Push!");

  const { agent, ctl } = await cpe(tp, 'BDR');
  await pushProfile(ctl, 'big', false);
  const pushesBefore = other.ctl.notifies.filter(pushOf('other')).length;
  const ROWS = 100_000;
  const PER_MESSAGE = 10_000;
  const started = Date.now();
  for (let m = 0; m < ROWS / PER_MESSAGE; m++) {
    const rows = Array.from({ length: PER_MESSAGE }, (_, k) => ({
      objPath: 'Device.BulkData.Profile.1.Parameter.',
      params: { Reference: reference(m * PER_MESSAGE + k) },
      required: true,
    }));
    const r = await ctl.req(add(rows), 120_000);
    expectType(r, 'ADD_RESP');
    assert.equal(r.body.response!.addResp!.createdObjResults.length, PER_MESSAGE);
  }
  process.stderr.write(`# 100,000 Parameter rows added in ${Date.now() - started} ms (10 Add messages)\n`);
  const count = await ctl.req(get(['Device.BulkData.Profile.1.ParameterNumberOfEntries']));
  assert.equal(count.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults[0]!.resultParams.ParameterNumberOfEntries, String(ROWS));
  // One more is the data model's error (TR-181 MaxNumberOfParameterReferences), with a log line.
  const over = await ctl.req(add([{ objPath: 'Device.BulkData.Profile.1.Parameter.', params: { Reference: 'Device.DeviceInfo.UpTime' }, required: true }]));
  expectType(over, 'ERROR');
  // USP Add with allow_partial false: 7004 with the row's own error (7005) in param_errs.
  assert.equal(over.body.error!.paramErrs[0]?.errCode, 7005, JSON.stringify(over.body));
  assert.match(JSON.stringify(over.body.error), /MaxNumberOfParameterReferences \(100000\) reached/);
  assert.ok(
    lines.some((l) => l.agent === agent && l.outcome === 'error 7004'),
    'the refused Add is in the log',
  );
  // The other device keeps reporting: a Push! it sent after the Adds began.
  await other.ctl.notify(
    (m: Msg) => pushOf('other')(m) && other.ctl.notifies.filter(pushOf('other')).indexOf(m) >= pushesBefore,
    20_000,
    'Push! during the Adds',
  );

  // The profile runs: the report is bounded, the names the device lacks are left out, in one log line.
  expectType(await ctl.req(set([{ objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'true' }, required: true }])), 'SET_RESP');
  const push = await ctl.notify(pushOf('big'), 120_000, 'the big profile reports').catch((e) => {
    for (const l of lines.filter((l) => (l.level as number) >= 40).slice(-20)) process.stderr.write(`${JSON.stringify(l).slice(0, 400)}\n`);
    throw e;
  });
  const report = (JSON.parse(push.body.request!.notify!.event!.params.Data!) as { Report: Record<string, unknown>[] }).Report[0]!;
  const device = report.Device as { DeviceInfo: Record<string, unknown>; WiFi: { SSID: Record<string, { SSID: string }> } };
  assert.equal(typeof device.DeviceInfo.SerialNumber, 'string');
  assert.ok(Object.keys(device.WiFi.SSID).length >= 1);
  assert.ok(!Object.keys(device.DeviceInfo).some((k) => k.startsWith('X_NOPE')), 'names the device lacks are filtered out');
  // One line for the 33,333 names the device does not have, not one each.
  const left = lines.filter((l) => l.agent === agent && String(l.msg).includes('matches nothing'));
  assert.equal(left.length, 1, JSON.stringify(left).slice(0, 1000));
  assert.equal(left[0]!.unresolved, 33_333);
  const status = tp.proxy.bulkDataScheduler.profileStatus(agent, 1);
  assert.ok(status && ['sent', 'collected'].includes(status.outcome), JSON.stringify(status));
  // Still answering, and the other device still reporting.
  const after = other.ctl.notifies.filter(pushOf('other')).length;
  expectType(await other.ctl.req(get(['Device.DeviceInfo.SerialNumber'])), 'GET_RESP');
  await other.ctl.notify(
    (m: Msg) => pushOf('other')(m) && other.ctl.notifies.filter(pushOf('other')).indexOf(m) >= after,
    20_000,
    'Push! after the big report',
  );
  expectType(await ctl.req(set([{ objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'false' }, required: true }])), 'SET_RESP');
});

test('an Add of 100,000 Parameter rows at the default limit (256) gets 7005 and leaves nothing behind', { timeout: 300_000 }, async () => {
  const tp = await proxy({});
  const { ctl } = await cpe(tp, 'BDS');
  await pushProfile(ctl, 'default', false);
  // Two messages of 50,000 rows each (a Record stays below usp.maxRecordBytes).
  const rows = Array.from({ length: 50_000 }, (_, k) => ({
    objPath: 'Device.BulkData.Profile.1.Parameter.',
    params: { Reference: reference(k) },
    required: true,
  }));
  for (let m = 0; m < 2; m++) {
    const r = await ctl.req(add(rows), 120_000);
    expectType(r, 'ERROR');
    assert.equal(r.body.error!.paramErrs[0]?.errCode, 7005, JSON.stringify(r.body).slice(0, 500));
    assert.match(JSON.stringify(r.body.error), /MaxNumberOfParameterReferences \(256\) reached/);
  }
  const count = await ctl.req(get(['Device.BulkData.Profile.1.ParameterNumberOfEntries']));
  assert.equal(
    count.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults[0]!.resultParams.ParameterNumberOfEntries,
    '0',
    'allow_partial false: the rows created before the refusal are deleted again',
  );
});
