/**
 * Bulk Data collection served by the proxy (issue 20, first slice): a controller over a real
 * WebSocket creates a USPEventNotif profile on the agent of a simulated TR-181 CPE and on the agent
 * of a TR-098 one (read through the mapping), subscribes to its Push! event, and receives reports
 * whose Data is the extension's JSON with the devices' own values, collected through CWMP
 * GetParameterValues. A ReportingInterval below MinReportingInterval gets 7012, and the profiles
 * are still there after a proxy restart on the same data folder. HTTP: reports reach a collector
 * started by the test as JSON and CSV bodies with the extension's headers; while the collector
 * answers 500 they are retained and arrive with the next report; a link-local URL is refused.
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

test('HTTP profile: JSON then CSV bodies reach the collector; reports retained during an outage arrive later', { timeout: 60_000 }, async (t) => {
  const got: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string; status: number }[] = [];
  let failures = 2;
  const collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // A collector asking for Basic: the proxy answers the challenge, then sends it first.
      if (!req.headers.authorization) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="bdc"' }).end();
        return;
      }
      const status = failures-- > 0 ? 500 : 200;
      got.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString(), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => collector.close(() => r())));
  const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/bdc`;
  const { agent, serial, ctl } = await deviceAndController('tr181', 'BDC');
  const ok = (m: Msg, type = 'ADD_RESP') => assert.equal(m.header.msgType, type, JSON.stringify(m.body));
  ok(
    await ctl.req(
      add([
        {
          objPath: 'Device.LocalAgent.Subscription.',
          params: { Enable: 'true', ID: 'bd-created', NotifType: 'ObjectCreation', ReferenceList: 'Device.BulkData.Profile.' },
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
          params: { Alias: 'http', Protocol: 'HTTP', EncodingType: 'JSON', ReportingInterval: '1', NumberOfRetainedFailedReports: '5' },
          required: true,
        },
      ]),
      20_000,
    ),
  );
  ok(
    await ctl.req(add([{ objPath: 'Device.BulkData.Profile.1.Parameter.', params: { Reference: 'Device.DeviceInfo.SerialNumber' }, required: true }]), 20_000),
  );
  ok(
    await ctl.req(
      add([
        {
          objPath: 'Device.BulkData.Profile.1.HTTP.RequestURIParameter.',
          params: { Name: 'serial', Reference: 'Device.DeviceInfo.SerialNumber' },
          required: true,
        },
      ]),
      20_000,
    ),
  );
  const created = await ctl.notify((m) => m.body.request?.notify?.subscriptionId === 'bd-created', 10_000, 'ObjectCreation');
  assert.deepEqual(created.body.request!.notify!.objCreation, { objPath: 'Device.BulkData.Profile.1.', uniqueKeys: { Alias: 'http' } });
  ok(
    await ctl.req(
      set([
        { objPath: 'Device.BulkData.Profile.1.HTTP.', params: { URL: url, Username: 'bdc', Password: 'bdc-secret' }, required: true },
        { objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'true' }, required: true },
      ]),
      20_000,
    ),
    'SET_RESP',
  );
  const until = async (pred: () => boolean, what: string) => {
    const deadline = Date.now() + 20_000;
    while (!pred()) {
      if (Date.now() > deadline) assert.fail(`${what}: ${JSON.stringify(got.map((g) => [g.status, g.headers['content-type']]))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await until(() => got.some((g) => g.status === 200), 'a report accepted after the outage');
  const first = got.find((g) => g.status === 200)!;
  assert.equal(first.method, 'POST');
  assert.equal(first.headers['content-type'], 'application/json; charset=UTF-8');
  assert.equal(first.headers['bbf-report-format'], '"ObjectHierarchy"');
  assert.ok(first.headers.date, 'UseDateHeader defaults to true');
  assert.equal(first.headers.authorization, `Basic ${Buffer.from('bdc:bdc-secret').toString('base64')}`);
  // R-BULK.1: the device's OUI, Product Class and Serial Number, then the RequestURIParameter ones.
  const id = (await tp!.proxy.store.getDeviceByEndpointId(agent))!.deviceId;
  const query = [...new URL(first.url, 'http://x').searchParams];
  assert.deepEqual(query, [
    ['oui', id.oui],
    ['pc', id.productClass],
    ['sn', serial],
    ['serial', serial],
  ]);
  const body = JSON.parse(first.body) as { Report: { CollectionTime: number; Device: { DeviceInfo: { SerialNumber: string } } }[] };
  assert.equal(body.Report.length, 3, 'the two reports of the outage, then the current one');
  for (const r of body.Report) assert.equal(r.Device.DeviceInfo.SerialNumber, serial);
  assert.ok(body.Report[0]!.CollectionTime < body.Report[2]!.CollectionTime, 'oldest first');

  ok(
    await ctl.req(
      set([
        { objPath: 'Device.BulkData.Profile.1.', params: { EncodingType: 'CSV' }, required: true },
        { objPath: 'Device.BulkData.Profile.1.CSVEncoding.', params: { ReportFormat: 'ParameterPerRow' }, required: true },
      ]),
      20_000,
    ),
    'SET_RESP',
  );
  // R-BULK.11: the media type says the header line is present.
  const csvType = 'text/csv; charset=UTF-8; header=present';
  await until(() => got.some((g) => g.headers['content-type'] === csvType), 'a CSV report');
  const csv = got.find((g) => g.headers['content-type'] === csvType)!;
  assert.equal(csv.headers['bbf-report-format'], '"ParameterPerRow"');
  const rows = csv.body.split('\r\n');
  assert.equal(rows[0], 'ReportTimestamp,ParameterName,ParameterValue,ParameterType');
  assert.match(rows[1]!, new RegExp(`^\\d+,Device\\.DeviceInfo\\.SerialNumber,${serial},string$`));

  // A collector URL on a link-local address is refused at Set time (7012), as a connection request would be.
  const linkLocal = await ctl.req(
    set([{ objPath: 'Device.BulkData.Profile.1.HTTP.', params: { URL: 'http://169.254.169.254/latest' }, required: true }]),
    20_000,
  );
  assert.equal(linkLocal.header.msgType, 'ERROR', JSON.stringify(linkLocal.body));
  const urlErr = linkLocal.body.error?.paramErrs?.[0];
  assert.equal(urlErr?.errCode, 7012, JSON.stringify(linkLocal.body));
  assert.match(urlErr?.errMsg ?? '', /link-local/);
  // A host name is checked when a report is sent: one that does not resolve is refused then.
  const scheduler = tp!.proxy.bulkDataScheduler;
  const refusedBefore = scheduler.counts['HTTP|refused'] ?? 0;
  ok(await ctl.req(set([{ objPath: 'Device.BulkData.Profile.1.HTTP.', params: { URL: 'http://collector.invalid/bdc' }, required: true }]), 20_000), 'SET_RESP');
  await until(() => (scheduler.counts['HTTP|refused'] ?? 0) > refusedBefore, 'a refused report');
  const metrics = await tp!.proxy.metrics.metricsText();
  assert.match(metrics, /bulkdata_reports_total\{protocol="HTTP",outcome="sent"\} [1-9]/);
  assert.match(metrics, /bulkdata_reports_total\{protocol="HTTP",outcome="failed"\} 2/);
  assert.match(metrics, /bulkdata_reports_total\{protocol="HTTP",outcome="refused"\} [1-9]/);
  const g = await ctl.req(get(['Device.BulkData.Profile.1.HTTP.Password']), 20_000);
  assert.equal(g.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults[0]!.resultParams.Password, '', 'the password is never read back');
  ok(await ctl.req(set([{ objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'false' }, required: true }]), 20_000), 'SET_RESP');
});

test('profiles are kept in the store after a proxy restart; ForceCollection() reports at once', { timeout: 60_000 }, async () => {
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
  const disabled = await ctl.req(set([{ objPath: 'Device.BulkData.Profile.1.', params: { ReportingInterval: '3600' }, required: true }]), 20_000);
  assert.equal(disabled.header.msgType, 'SET_RESP', JSON.stringify(disabled.body));
  // ForceCollection(): a report now, outside the (now hour-long) interval; a report of the 1 s
  // interval still under way is let through first.
  await new Promise((r) => setTimeout(r, 1500));
  const seen = ctl.notifies.length;
  const forced = await ctl.req(operate('Device.BulkData.Profile.1.ForceCollection()', {}), 20_000);
  assert.equal(forced.header.msgType, 'OPERATE_RESP', JSON.stringify(forced.body));
  const push = await ctl.notify((m) => isPush(m) && ctl.notifies.indexOf(m) >= seen, 10_000, 'Push! of ForceCollection() after the restart');
  assert.equal(push.body.request!.notify!.subscriptionId, 'push-tr181');
});
