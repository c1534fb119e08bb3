/**
 * Bulk Data over a real broker (issue 20, "Done when"): a controller on MQTT 5 through a mosquitto
 * started here creates a USPEventNotif profile on the agent of a simulated TR-181 CPE and on the
 * agent of a TR-098 one (read through the mapping), subscribes to Device.BulkData.Profile.1.Push!,
 * and receives Push! Notifies over MQTT whose Data is the extension's JSON report
 * (extensions-http-bulk-data-collection.md "Encoding of JSON Bulk Data": a Report array,
 * CollectionTime in Unix epoch, ObjectHierarchy without trailing dots, TR-106 types as JSON types).
 * The same controller also gives the TR-098 agent an HTTP profile: a collector started here gets
 * the CSV ParameterPerColumn body (header line of the Parameter Names, then a row of values) and
 * then the JSON NameValuePair one, with the oui/pc/sn URI parameters (R-BULK.1).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, add, get, set } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { startMosquitto, type MosquittoHandle } from '../helpers/brokers.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { TestController } from '../helpers/test-controller.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::bulkdata-mqtt-ctl';
const CTL_TOPIC = '/usp/bulkdata-mqtt-ctl';
const AGENT_TOPIC = '/usp/agent';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bulkdata-mqtt-'));
let mosq: MosquittoHandle | null = null;
let tp: TestProxy | null = null;
const fleets: Fleet[] = [];
const controllers: UspControllerClient[] = [];

before(async () => {
  mosq = await startMosquitto();
  if (!mosq) return;
  tp = await startTestProxy({
    dataDir: dir,
    'usp.mqtt.url': mosq.url,
    'usp.mqtt.topic': AGENT_TOPIC,
    'bulkData.minReportingIntervalS': 1,
    controllers: [{ endpointId: CTL, role: 'full', mqtt: { topic: CTL_TOPIC } }],
  });
});

after(async () => {
  for (const c of controllers) await c.close();
  for (const f of fleets) await f.stop();
  await tp?.stop();
  await mosq?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function deviceOverMqtt(model: 'tr181' | 'tr098', serialPrefix: string) {
  const fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp!.acsUrl, count: 1, model, serialPrefix, periodicIntervalS: null });
  fleets.push(fleet);
  await fleet.start();
  const serial = fleet.devices[0]!.serial;
  const rec = (await tp!.proxy.store.listDevices()).find((d) => d.deviceId.serialNumber === serial)!;
  const c = new UspControllerClient({
    endpointId: CTL,
    agentId: rec.endpointId,
    transport: { mtp: 'mqtt', url: mosq!.url, controllerTopic: CTL_TOPIC, agentTopic: AGENT_TOPIC },
    timeoutMs: 20_000,
  });
  controllers.push(c);
  await c.connect();
  return { rec, serial, ctl: new TestController(c) };
}

const expectType = (m: Msg, type: string) => assert.equal(m.header.msgType, type, JSON.stringify(m.body));
const isPush = (m: Msg) => m.body.request?.notify?.event?.eventName === 'Push!';

for (const model of ['tr181', 'tr098'] as const) {
  test(`${model}: Push! Notify over MQTT with Data as the extension's JSON report`, { timeout: 60_000 }, async (t) => {
    if (!tp) return t.skip('mosquitto not installed (apt-get install mosquitto; .ci/run does)');
    const { serial, ctl } = await deviceOverMqtt(model, model === 'tr181' ? 'BDM' : 'BDN');
    expectType(
      await ctl.req(
        add([
          {
            objPath: 'Device.LocalAgent.Subscription.',
            params: { Enable: 'true', ID: `push-mqtt-${model}`, NotifType: 'Event', ReferenceList: 'Device.BulkData.Profile.1.Push!' },
            required: true,
          },
        ]),
        20_000,
      ),
      'ADD_RESP',
    );
    expectType(
      await ctl.req(
        add([
          {
            objPath: 'Device.BulkData.Profile.',
            params: { Alias: 'mqtt', Protocol: 'USPEventNotif', EncodingType: 'JSON', ReportingInterval: '1' },
            required: true,
          },
        ]),
        20_000,
      ),
      'ADD_RESP',
    );
    // Three Parameter rows in one Add message.
    const rows = ['Device.DeviceInfo.SerialNumber', 'Device.DeviceInfo.UpTime', 'Device.WiFi.SSID.*.Enable'].map((Reference) => ({
      objPath: 'Device.BulkData.Profile.1.Parameter.',
      params: { Reference },
      required: true,
    }));
    const added = await ctl.req(add(rows), 20_000);
    expectType(added, 'ADD_RESP');
    assert.equal(added.body.response!.addResp!.createdObjResults.length, 3);
    // ObjectHierarchy and Unix-Epoch are the defaults (TR-181 JSONEncoding.*); set them anyway.
    expectType(
      await ctl.req(
        set([
          { objPath: 'Device.BulkData.Profile.1.JSONEncoding.', params: { ReportFormat: 'ObjectHierarchy', ReportTimestamp: 'Unix-Epoch' }, required: true },
          { objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'true' }, required: true },
        ]),
        20_000,
      ),
      'SET_RESP',
    );
    // What the agent reads for the wildcard, to compare with the report.
    const g = await ctl.req(get(['Device.WiFi.SSID.*.Enable']), 20_000);
    const enables = new Map(
      g.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults.map((r) => [r.resolvedPath ?? '', r.resultParams.Enable === 'true'] as const),
    );
    assert.ok(enables.size >= 1, 'the device has SSIDs');

    const push = await ctl.notify(isPush, 20_000, 'Push! over MQTT');
    const n = push.body.request!.notify!;
    assert.equal(n.subscriptionId, `push-mqtt-${model}`);
    assert.equal(n.event!.objPath, 'Device.BulkData.Profile.1.');
    assert.deepEqual(Object.keys(n.event!.params), ['Data'], 'Push! has one argument, Data');
    const data = JSON.parse(n.event!.params.Data!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(data), ['Report'], '{"Report":[...]}');
    const reports = data.Report as Record<string, unknown>[];
    assert.ok(Array.isArray(reports) && reports.length === 1, 'one report per Notify (no retained reports for USPEventNotif)');
    const r = reports[0]!;
    assert.deepEqual(Object.keys(r).sort(), ['CollectionTime', 'Device']);
    assert.ok(Number.isInteger(r.CollectionTime), '"CollectionTime":1364529149 (Unix-Epoch, a JSON number)');
    assert.ok(Math.abs((r.CollectionTime as number) - Date.now() / 1000) < 30);
    const device = r.Device as { DeviceInfo: Record<string, unknown>; WiFi: { SSID: Record<string, { Enable: unknown }> } };
    assert.deepEqual(Object.keys(device).sort(), ['DeviceInfo', 'WiFi']);
    assert.equal(device.DeviceInfo.SerialNumber, serial, 'string -> JSON String, the device value');
    assert.equal(typeof device.DeviceInfo.UpTime, 'number', 'unsignedInt -> JSON Number');
    for (const [p, enable] of enables) {
      const i = /^Device\.WiFi\.SSID\.(\d+)\.$/.exec(p)![1]!;
      assert.equal(device.WiFi.SSID[i]?.Enable, enable, `boolean -> JSON Boolean (${p}Enable)`);
    }
    assert.deepEqual(Object.keys(device.WiFi.SSID).sort(), [...enables.keys()].map((p) => /(\d+)\.$/.exec(p)![1]!).sort(), 'instance numbers as object names');
    // A second report at the next interval, over the same broker.
    const count = ctl.notifies.filter(isPush).length;
    await ctl.notify((m) => isPush(m) && ctl.notifies.filter(isPush).indexOf(m) >= count, 20_000, 'second Push!');
    expectType(await ctl.req(set([{ objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'false' }, required: true }]), 20_000), 'SET_RESP');
  });
}

test('tr098: HTTP profile, CSV ParameterPerColumn then JSON NameValuePair bodies at a real collector', { timeout: 60_000 }, async (t) => {
  if (!tp) return t.skip('mosquitto not installed (apt-get install mosquitto; .ci/run does)');
  const got: { url: string; type: string; format: string; body: string }[] = [];
  const collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({
        url: req.url ?? '',
        type: String(req.headers['content-type']),
        format: String(req.headers['bbf-report-format']),
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => collector.close(() => r())));
  const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/bdc`;
  const { rec, serial, ctl } = await deviceOverMqtt('tr098', 'BDO');
  expectType(
    await ctl.req(
      add([{ objPath: 'Device.BulkData.Profile.', params: { Alias: 'csv', Protocol: 'HTTP', EncodingType: 'CSV', ReportingInterval: '1' }, required: true }]),
      20_000,
    ),
    'ADD_RESP',
  );
  const refs = [
    ['Serial', 'Device.DeviceInfo.SerialNumber'],
    ['Up', 'Device.DeviceInfo.UpTime'],
    ['Version', 'Device.DeviceInfo.SoftwareVersion'],
  ];
  expectType(
    await ctl.req(
      add(
        refs.map(([Name, Reference]) => ({ objPath: 'Device.BulkData.Profile.1.Parameter.', params: { Name: Name!, Reference: Reference! }, required: true })),
      ),
      20_000,
    ),
    'ADD_RESP',
  );
  expectType(
    await ctl.req(
      set([
        { objPath: 'Device.BulkData.Profile.1.CSVEncoding.', params: { ReportFormat: 'ParameterPerColumn', RowTimestamp: 'Unix-Epoch' }, required: true },
        { objPath: 'Device.BulkData.Profile.1.HTTP.', params: { URL: url }, required: true },
        { objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'true' }, required: true },
      ]),
      20_000,
    ),
    'SET_RESP',
  );
  const until = async (pred: () => boolean, what: string) => {
    const deadline = Date.now() + 20_000;
    while (!pred()) {
      if (Date.now() > deadline) assert.fail(`${what}: ${JSON.stringify(got.map((g) => g.type))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await until(() => got.length > 0, 'a CSV report');
  const csv = got[0]!;
  assert.equal(csv.type, 'text/csv; charset=UTF-8; header=present', 'R-BULK.11');
  assert.equal(csv.format, '"ParameterPerColumn"');
  const version = (await ctl.req(get(['Device.DeviceInfo.SoftwareVersion']), 20_000)).body.response!.getResp!.reqPathResults[0]!.resolvedPathResults[0]!
    .resultParams.SoftwareVersion!;
  const lines = csv.body.split('\r\n').filter((l) => l !== '');
  assert.equal(lines[0], 'ReportTimestamp,Serial,Up,Version', 'the header line: the Parameter Names in order');
  assert.equal(lines.length, 2, 'one row of values');
  const [ts, sn, up, ver] = lines[1]!.split(',');
  assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 30, 'Unix-Epoch row timestamp');
  assert.equal(sn, serial);
  assert.match(up!, /^\d+$/);
  assert.equal(ver, version, 'the TR-098 device value through the mapping');
  const query = [...new URL(csv.url, 'http://x').searchParams];
  assert.deepEqual(query, [
    ['oui', rec.deviceId.oui],
    ['pc', rec.deviceId.productClass],
    ['sn', serial],
  ]);

  const before = got.length;
  expectType(
    await ctl.req(
      set([
        { objPath: 'Device.BulkData.Profile.1.', params: { EncodingType: 'JSON' }, required: true },
        { objPath: 'Device.BulkData.Profile.1.JSONEncoding.', params: { ReportFormat: 'NameValuePair', ReportTimestamp: 'ISO-8601' }, required: true },
      ]),
      20_000,
    ),
    'SET_RESP',
  );
  await until(() => got.slice(before).some((g) => g.type.startsWith('application/json')), 'a JSON report');
  const json = got.slice(before).find((g) => g.type.startsWith('application/json'))!;
  assert.equal(json.type, 'application/json; charset=UTF-8');
  assert.equal(json.format, '"NameValuePair"');
  const body = JSON.parse(json.body) as { Report: Record<string, unknown>[] };
  assert.equal(body.Report.length, 1);
  const r = body.Report[0]!;
  assert.deepEqual(Object.keys(r).sort(), ['CollectionTime', 'Serial', 'Up', 'Version']);
  assert.match(r.CollectionTime as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'ISO-8601 CollectionTime');
  assert.equal(r.Serial, serial);
  assert.equal(typeof r.Up, 'number');
  assert.equal(r.Version, version);
  expectType(await ctl.req(set([{ objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'false' }, required: true }]), 20_000), 'SET_RESP');
});
