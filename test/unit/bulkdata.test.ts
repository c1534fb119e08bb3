/**
 * Device.BulkData. (issue 20): the pure report encoders against the examples of TR-369 "HTTP Bulk
 * Data Collection" (read from ../shared/reference, not copied), and the profile model served for
 * every agent: Add/Set/Delete rules of tr-181-2-bulkdata.xml and persistence across a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { encodeCsv, encodeJson, type Report } from '../../src/bulkdata/encode.js';
import { BulkData } from '../../src/bulkdata/profiles.js';
import { BulkDataScheduler, nextDelay } from '../../src/bulkdata/scheduler.js';
import { DmRouter } from '../../src/usp/dm/router.js';
import type { DmBackend } from '../../src/usp/dm/types.js';
import { SingleInstance } from '../../src/usp/agent/coordination.js';
import { reportName } from '../../src/bulkdata/collect.js';
import { HttpDelivery, retryWaitMs } from '../../src/bulkdata/http-delivery.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { hasReference, REFERENCE } from '../helpers/paths.js';

const SPEC = path.join(REFERENCE, 'usp-spec', 'extensions-http-bulk-data-collection.md');

/** The indented block that follows a line of the extension text (its examples are indented 4). */
function exampleAfter(marker: string, nth = 0): string {
  const lines = readFileSync(SPEC, 'utf8').split('\n');
  let at = -1;
  for (let i = 0, seen = 0; i < lines.length; i++) if (lines[i]!.includes(marker) && seen++ === nth) at = i;
  assert.ok(at >= 0, `marker ${marker} in the extension text`);
  const out: string[] = [];
  let i = at + 1;
  while (i < lines.length && lines[i]!.trim() === '') i++;
  for (; i < lines.length && (lines[i]!.startsWith('    ') || lines[i]!.trim() === ''); i++) out.push(lines[i]!.slice(4));
  return out.join('\n').trim();
}

const MOCA = (n: number, a: string, b: string, c: string, d: string) => [
  { name: `Device.MoCA.Interface.${n}.Stats.BroadPktSent`, value: a, type: 'unsignedLong' as const },
  { name: `Device.MoCA.Interface.${n}.Stats.BytesReceived`, value: b, type: 'unsignedLong' as const },
  { name: `Device.MoCA.Interface.${n}.Stats.BytesSent`, value: c, type: 'unsignedLong' as const },
  { name: `Device.MoCA.Interface.${n}.Stats.MultiPktReceived`, value: d, type: 'unsignedLong' as const },
];
const REPORT: Report = {
  collectedAt: 1364529149_000,
  values: [...MOCA(1, '25248', '200543250', '25248', '200543250'), ...MOCA(2, '93247', '900543250', '93247', '900543250')],
};

test('JSON ObjectHierarchy and NameValuePair reports match the extension examples', (t) => {
  if (!hasReference('usp-spec')) return t.skip('../shared/reference/usp-spec not present');
  const hierarchy = JSON.parse(exampleAfter('The resulting JSON encoded data would look like:'));
  assert.deepEqual(JSON.parse(encodeJson([REPORT], { reportFormat: 'ObjectHierarchy', reportTimestamp: 'Unix-Epoch' })), hierarchy);
  const nvp = JSON.parse(exampleAfter('If the value of the `.BulkData.Profile.1.JSONEncoding.ReportFormat` Parameter was'));
  assert.deepEqual(JSON.parse(encodeJson([REPORT], { reportFormat: 'NameValuePair', reportTimestamp: 'Unix-Epoch' })), nvp);
});

test('JSON values are typed as the extension table says; big unsignedLongs stay exact; retained reports precede the current one', () => {
  const body = encodeJson(
    [
      { collectedAt: 0, values: [{ name: 'Device.A.B', value: '18446744073709551615', type: 'unsignedLong' }] },
      {
        collectedAt: 1000,
        values: [
          { name: 'Device.A.On', value: '1', type: 'boolean' },
          { name: 'Device.A.Empty', value: '', type: 'unsignedInt' },
          { name: 'Device.A.T', value: '2026-01-01T00:00:00Z', type: 'dateTime' },
        ],
      },
    ],
    { reportFormat: 'NameValuePair', reportTimestamp: 'ISO-8601' },
  );
  assert.equal(
    body,
    '{"Report":[{"CollectionTime":"1970-01-01T00:00:00Z","Device.A.B":18446744073709551615},' +
      '{"CollectionTime":"1970-01-01T00:00:01Z","Device.A.On":true,"Device.A.Empty":"","Device.A.T":"2026-01-01T00:00:00Z"}]}',
  );
  assert.equal(encodeJson([{ collectedAt: 0, values: [] }], { reportFormat: 'ObjectHierarchy', reportTimestamp: 'None' }), '{"Report":[{}]}');
});

test('CSV ParameterPerColumn with retained failed reports matches the extension example; ParameterPerRow has R-BULK.12 columns', (t) => {
  if (!hasReference('usp-spec')) return t.skip('../shared/reference/usp-spec not present');
  const names = ['BroadPktSent', 'BytesReceived', 'BytesSent', 'MultiPktReceived'];
  const rows: [number, string[]][] = [
    [1364529149, ['25248', '200543250', '7682161', '890682272']],
    [1464639150, ['25249', '200553250', '7683161', '900683272']],
    [1564749151, ['25255', '200559350', '7684133', '910682272']],
    [1664859152, ['25252', '200653267', '7685167', '9705982277']],
  ];
  const reports: Report[] = rows.map(([s, v]) => ({ collectedAt: s * 1000, values: names.map((n, i) => ({ name: n, value: v[i]!, type: 'unsignedLong' })) }));
  const enc = { fieldSeparator: ',', rowSeparator: '&#13;&#10;', escapeCharacter: '&quot;', rowTimestamp: 'Unix-Epoch' } as const;
  const golden = exampleAfter('The resulting CSV encoded data with transmission of the last 3 reports failed');
  assert.equal(encodeCsv(reports, { ...enc, reportFormat: 'ParameterPerColumn' }), golden.split('\n').join('\r\n') + '\r\n');
  const perRow = encodeCsv([{ collectedAt: 1364529149_000, values: [{ name: 'Device.X.Y', value: 'a,"b"', type: 'string' }] }], {
    ...enc,
    reportFormat: 'ParameterPerRow',
  });
  assert.equal(perRow, 'ReportTimestamp,ParameterName,ParameterValue,ParameterType\r\n1364529149,Device.X.Y,"a,""b""",string\r\n');
});

test('report names: Parameter.{i}.Name replaces the reference, and prefixes the names below a partial path', () => {
  assert.equal(reportName({ name: '', reference: 'Device.A.B' }, 'Device.A.B', 'Device.A.B'), 'Device.A.B');
  assert.equal(reportName({ name: 'Bytes', reference: 'Device.A.B' }, 'Device.A.B', 'Device.A.B'), 'Bytes');
  assert.equal(
    reportName({ name: 'Wifi', reference: 'Device.WiFi.SSID.1.' }, 'Device.WiFi.SSID.1.', 'Device.WiFi.SSID.1.Stats.BytesSent'),
    'Wifi.Stats.BytesSent',
  );
});

test('the next report falls on the TimeReference grid when one is set', () => {
  const ref = '2026-01-01T00:00:00Z';
  const t0 = Date.parse(ref);
  assert.equal(nextDelay(t0 + 10_500, 60, ref), 49_500);
  assert.equal(nextDelay(t0 - 1_000, 60, ref), 1_000);
  assert.equal(nextDelay(t0 + 10_500, 60, '0001-01-01T00:00:00Z'), 60_000);
});

const LIMITS = { minReportingIntervalS: 60, maxProfiles: 2, maxParameterReferences: 3 };
const ctx = { agentEid: 'os::agent-1', controllerEid: 'proto::ctl' };
const setting = (param: string, value: string) => ({ param, value, required: true });

test('Profile Add/Set/Delete follow the data model: 7012 below MinReportingInterval, limits, secrets unread, persisted', async () => {
  const store = openSqliteStore(':memory:');
  const bd = new BulkData(LIMITS, store);
  const top = await bd.model.get(ctx.agentEid, ['Device.BulkData.']);
  assert.equal(top.get('Device.BulkData.MinReportingInterval'), '60');
  assert.equal(top.get('Device.BulkData.Protocols'), 'HTTP,USPEventNotif');
  assert.equal(top.get('Device.BulkData.Status'), 'Enabled');

  const low = await bd.model.add(ctx, 'Device.BulkData.Profile.', [setting('ReportingInterval', '1')]);
  assert.equal(low.ok, false);
  assert.equal(!low.ok && low.paramErrs[0]!.errCode, 7012);
  const bad = await bd.model.add(ctx, 'Device.BulkData.Profile.', [setting('Protocol', 'FTP')]);
  assert.equal(bad.ok, false, 'Protocol outside HTTP, USPEventNotif');

  const a = await bd.model.add(ctx, 'Device.BulkData.Profile.', [setting('Enable', 'true'), setting('ReportingInterval', '60'), setting('Protocol', 'HTTP')]);
  assert.ok(a.ok);
  assert.equal(a.uniqueKeys.Alias, 'cpe-1');
  const set = await bd.model.set(ctx, 'Device.BulkData.Profile.1.', [setting('ReportingInterval', '30')]);
  assert.equal(set.ok, false);
  assert.equal(set.paramErrs[0]!.errCode, 7012);
  assert.ok((await bd.model.set(ctx, 'Device.BulkData.Profile.1.HTTP.', [setting('Password', 's3cret'), setting('URL', 'http://collector.example/r')])).ok);
  assert.equal((await bd.model.get(ctx.agentEid, ['Device.BulkData.Profile.1.HTTP.Password'])).get('Device.BulkData.Profile.1.HTTP.Password'), '');
  assert.equal(bd.profiles(ctx.agentEid)[0]!.http.Password, 's3cret', 'the scheduler still has it for delivery');

  const junk = await bd.model.add(ctx, 'Device.BulkData.Profile.1.Parameter.', [setting('Reference', 'not a path')]);
  assert.equal(!junk.ok && junk.errCode, 7012);
  for (const ref of ['Device.DeviceInfo.UpTime', 'Device.WiFi.SSID.*.Stats.', 'Device.IP.Interface.1.'])
    assert.ok((await bd.model.add(ctx, 'Device.BulkData.Profile.1.Parameter.', [setting('Reference', ref)])).ok, ref);
  const over = await bd.model.add(ctx, 'Device.BulkData.Profile.1.Parameter.', [setting('Reference', 'Device.X.')]);
  assert.equal(!over.ok && over.errCode, 7005, 'MaxNumberOfParameterReferences');
  assert.ok((await bd.model.add(ctx, 'Device.BulkData.Profile.', [])).ok);
  const third = await bd.model.add(ctx, 'Device.BulkData.Profile.', []);
  assert.equal(!third.ok && third.errCode, 7005, 'MaxNumberOfProfiles');
  assert.ok((await bd.model.delete(ctx, 'Device.BulkData.Profile.2.')).ok);
  await new Promise((r) => setImmediate(r));

  // A restart: a new model reads the stored rows back.
  const again = new BulkData(LIMITS, store);
  assert.deepEqual(await again.restore([ctx.agentEid, 'os::no-profiles']), [ctx.agentEid]);
  const [p] = again.profiles(ctx.agentEid);
  assert.equal(again.profiles(ctx.agentEid).length, 1);
  assert.equal(p!.values.Enable, 'true');
  assert.equal(p!.http.URL, 'http://collector.example/r');
  assert.deepEqual(
    p!.parameters.map((x) => x.reference),
    ['Device.DeviceInfo.UpTime', 'Device.WiFi.SSID.*.Stats.', 'Device.IP.Interface.1.'],
  );
  assert.deepEqual(await again.model.instances(ctx.agentEid, 'Device.BulkData.Profile.'), [1]);
  await store.close();
});

test('HTTP retry waits follow the TR-369 Notify retry table, fixed from the tenth retry (R-BULK.3)', () => {
  assert.equal(
    retryWaitMs(1, 5, 2000, () => 0),
    5_000,
  );
  assert.equal(
    retryWaitMs(1, 5, 2000, () => 1),
    10_000,
  );
  assert.equal(
    retryWaitMs(3, 5, 2000, () => 0),
    20_000,
  );
  assert.equal(
    retryWaitMs(10, 5, 2000, () => 1),
    5_120_000,
  );
  assert.equal(
    retryWaitMs(25, 5, 2000, () => 1),
    5_120_000,
  );
});

test('HTTP delivery refuses what the target guard refuses and URLs that are not http(s), before any connection', async () => {
  const asked: string[] = [];
  const d = new HttpDelivery({
    check: async (host, port) => (asked.push(`${host}:${port}`), { ok: false, detail: 'address 169.254.169.254 is link-local' }),
    timeoutMs: 1000,
  });
  const base = {
    method: 'POST',
    username: '',
    password: '',
    gzip: false,
    useDateHeader: true,
    mediaType: 'application/json',
    reportFormat: 'NameValuePair',
    body: '{}',
    agentEid: 'os::a',
  } as const;
  const r = await d.send({ ...base, url: 'http://169.254.169.254/latest' });
  assert.deepEqual(r, { ok: false, detail: 'HTTP.URL refused: address 169.254.169.254 is link-local', refused: true });
  assert.deepEqual(asked, ['169.254.169.254:80']);
  assert.equal((await d.send({ ...base, url: 'file:///etc/passwd' })).ok, false);
  assert.equal((await d.send({ ...base, url: 'not a url' })).ok, false);
  assert.deepEqual(asked, ['169.254.169.254:80'], 'the guard is not even asked');
});

test('profiles of one agent due together are collected in one Get through the router, one Push! each', async () => {
  const store = openSqliteStore(':memory:');
  const bd = new BulkData({ ...LIMITS, minReportingIntervalS: 1, maxParameterReferences: 10 }, store);
  // The agent's model here is Device.BulkData. itself (a real backend); every Get the router passes on is counted.
  const gets: string[][] = [];
  const counted: DmBackend = {
    prefixes: bd.model.prefixes,
    supported: () => bd.model.supported(),
    instances: (a, p) => bd.model.instances(a, p),
    get: (a, paths) => (gets.push([...paths]), bd.model.get(a, paths)),
    set: (c, p, s) => bd.model.set(c, p, s),
    add: (c, p, s) => bd.model.add(c, p, s),
    delete: (c, p) => bd.model.delete(c, p),
    operate: (c, p, i, k) => bd.model.operate(c, p, i, k),
  };
  const events: { objPath: string; name: string; data: string }[] = [];
  const scheduler = new BulkDataScheduler({
    bulkData: bd,
    router: new DmRouter([counted]),
    events: { event: (_a, objPath, name, params) => events.push({ objPath, name, data: params.Data! }) },
    log: { info: () => undefined, warn: () => undefined },
  });
  for (const n of [1, 2]) {
    assert.ok((await bd.model.add(ctx, 'Device.BulkData.Profile.', [setting('ReportingInterval', '3600'), setting('Protocol', 'USPEventNotif')])).ok);
    assert.ok(
      (await bd.model.add(ctx, `Device.BulkData.Profile.${n}.Parameter.`, [setting('Reference', `Device.BulkData.Profile.${n}.ReportingInterval`)])).ok,
    );
    assert.ok((await bd.model.add(ctx, `Device.BulkData.Profile.${n}.Parameter.`, [setting('Reference', 'Device.BulkData.Profile.*.Alias')])).ok);
  }
  await bd.model.set(ctx, 'Device.BulkData.Profile.1.JSONEncoding.', [setting('ReportFormat', 'NameValuePair')]);
  await scheduler.report(ctx.agentEid, [1, 2]);
  scheduler.stop();
  assert.equal(gets.length, 1, `one Get for both profiles: ${JSON.stringify(gets)}`);
  assert.deepEqual(gets[0]!.sort(), [
    'Device.BulkData.Profile.1.Alias',
    'Device.BulkData.Profile.1.ReportingInterval',
    'Device.BulkData.Profile.2.Alias',
    'Device.BulkData.Profile.2.ReportingInterval',
  ]);
  assert.deepEqual(
    events.map((e) => [e.objPath, e.name]),
    [
      ['Device.BulkData.Profile.1.', 'Push!'],
      ['Device.BulkData.Profile.2.', 'Push!'],
    ],
  );
  const nvp = JSON.parse(events[0]!.data).Report[0];
  assert.equal(nvp['Device.BulkData.Profile.1.ReportingInterval'], 3600, 'an unsignedInt is a JSON number');
  assert.equal(nvp['Device.BulkData.Profile.2.Alias'], 'cpe-2');
  assert.deepEqual(JSON.parse(events[1]!.data).Report[0].Device.BulkData.Profile['2'], { ReportingInterval: 3600, Alias: 'cpe-2' });
  assert.deepEqual(scheduler.counts, { 'USPEventNotif|sent': 2 });
  await store.close();
});

test('several instances on one store: a profile added on one is served and scheduled by the other', async () => {
  const store = openSqliteStore(':memory:');
  /** The cluster's relay reduced to its contract: a write here is announced there once stored. */
  class Relay extends SingleInstance {
    peer: Relay | null = null;
    override rowsWritten(agentEid: string, write: Promise<void>): void {
      void write.then(() => this.peer!.emit('rowsChanged', { agentEid, subscriptions: [], requests: [] }));
    }
  }
  const ca = new Relay();
  const cb = new Relay();
  ca.peer = cb;
  cb.peer = ca;
  const a = new BulkData(LIMITS, store, undefined, ca);
  const b = new BulkData(LIMITS, store, undefined, cb);
  assert.deepEqual(b.profiles(ctx.agentEid), [], 'b has read the (empty) rows before a changes them');
  const reloaded = new Promise((r) => b.once('reloaded', r));
  assert.ok((await a.model.add(ctx, 'Device.BulkData.Profile.', [setting('Alias', 'shared'), setting('Enable', 'true')])).ok);
  await reloaded;
  assert.deepEqual(
    b.profiles(ctx.agentEid).map((p) => [p.instance, p.values.Alias, p.values.Enable]),
    [[1, 'shared', 'true']],
  );
  await store.close();
});

test('names the model lacks never reach the Get; values beyond maxValues are left out; one warning each, not per reference or report', async () => {
  const store = openSqliteStore(':memory:');
  const bd = new BulkData({ ...LIMITS, minReportingIntervalS: 1, maxParameterReferences: 1000 }, store);
  const gets: string[][] = [];
  const counted: DmBackend = {
    prefixes: bd.model.prefixes,
    supported: () => bd.model.supported(),
    instances: (a, p) => bd.model.instances(a, p),
    get: (a, paths) => (gets.push([...paths]), bd.model.get(a, paths)),
    set: (c, p, s) => bd.model.set(c, p, s),
    add: (c, p, s) => bd.model.add(c, p, s),
    delete: (c, p) => bd.model.delete(c, p),
    operate: (c, p, i, k) => bd.model.operate(c, p, i, k),
  };
  const warnings: { o: Record<string, unknown>; msg: string }[] = [];
  const events: string[] = [];
  const scheduler = new BulkDataScheduler({
    bulkData: bd,
    router: new DmRouter([counted]),
    events: { event: (_a, _o, _n, params) => events.push(params.Data!) },
    log: { info: () => undefined, warn: (o, msg) => warnings.push({ o: o as Record<string, unknown>, msg }) },
    maxValues: 3,
  });
  assert.ok((await bd.model.add(ctx, 'Device.BulkData.Profile.', [setting('ReportingInterval', '3600'), setting('Protocol', 'USPEventNotif')])).ok);
  const refs = ['Device.BulkData.Profile.1.', ...Array.from({ length: 500 }, (_, i) => `Device.BulkData.Profile.1.X_NOPE_${i}`)];
  for (const Reference of refs) assert.ok((await bd.model.add(ctx, 'Device.BulkData.Profile.1.Parameter.', [setting('Reference', Reference)])).ok);
  await bd.model.set(ctx, 'Device.BulkData.Profile.1.JSONEncoding.', [setting('ReportFormat', 'NameValuePair')]);
  await scheduler.report(ctx.agentEid, [1]);
  await scheduler.report(ctx.agentEid, [1]);
  scheduler.stop();
  assert.deepEqual(gets, [['Device.BulkData.Profile.1.'], ['Device.BulkData.Profile.1.']], 'only the partial path is read');
  assert.equal(events.length, 2);
  assert.equal(Object.keys(JSON.parse(events[0]!).Report[0]).length, 1 + 3, 'CollectionTime and maxValues values');
  assert.deepEqual(
    warnings.map((w) => [w.msg.slice(0, 40), w.o.unresolved ?? w.o.dropped]),
    [
      ['bulk data Parameter.Reference matches no', 500],
      ['bulk data report holds more values than ', (await bd.model.get(ctx.agentEid, ['Device.BulkData.Profile.1.'])).size - 3],
    ],
    'one line each over both reports',
  );
  await store.close();
});

test('the rows one message changes are stored in one write per agent, and a restart reads them back', async () => {
  const store = openSqliteStore(':memory:');
  const writes: string[] = [];
  const put = store.putLearned.bind(store);
  store.putLearned = (kind, key, json) => (writes.push(key), put(kind, key, json));
  const bd = new BulkData({ ...LIMITS, minReportingIntervalS: 1, maxParameterReferences: 100 }, store);
  // What a USP Add of a profile and 20 Parameter rows does: the rows one after the other, awaited, in one message.
  assert.ok((await bd.model.add(ctx, 'Device.BulkData.Profile.', [setting('ReportingInterval', '60')])).ok);
  for (let i = 0; i < 20; i++) assert.ok((await bd.model.add(ctx, 'Device.BulkData.Profile.1.Parameter.', [setting('Reference', `Device.X.${i}`)])).ok);
  await bd.flushed();
  assert.deepEqual(writes, [ctx.agentEid]);
  const again = new BulkData({ ...LIMITS, minReportingIntervalS: 1, maxParameterReferences: 100 }, store);
  await again.restore([ctx.agentEid]);
  assert.equal(again.profiles(ctx.agentEid)[0]!.parameters.length, 20);
  await store.close();
});
