/**
 * Bulk Data collection that respects CWMP (issue 20 item 2), over real sockets with simulated CPEs
 * counting the connection requests they receive:
 * - a device with periodic Informs: once the proxy has seen two of them its profile's collections
 *   ride those sessions (the GetParameterValues queued for the CPE's own session) and the reports
 *   arrive as Push! Notify with no connection request at all;
 * - bulkData.alignPeriodicInform: a device whose periodic Informs are rare is woken once, its
 *   PeriodicInformInterval set to the ReportingInterval in that session, and every later report
 *   rides its periodic Informs;
 * - the fleet-wide budget (bulkData.connectionRequestsPerSecond = 1): three devices without
 *   periodic Informs whose profiles fall due every second get at most one connection request a
 *   second between them; the collections that get no turn are reported missed (status, metric).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, add, set } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import type { CollectionVia } from '../../src/bulkdata/scheduler.js';
import { freePort } from '../helpers/brokers.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { TestController } from '../helpers/test-controller.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::bulkdata-ride-ctl';
const TOKEN = 'bulkdata-admin-token';
let tp: TestProxy | null = null;
const fleets: Fleet[] = [];
const controllers: UspControllerClient[] = [];
let wsPort = 0;

before(async () => {
  wsPort = await freePort();
  tp = await startTestProxy(
    {
      'usp.websocket.port': wsPort,
      'bulkData.minReportingIntervalS': 1,
      'bulkData.periodicInformGraceMs': 1000,
      'bulkData.connectionRequestsPerSecond': 1,
      'bulkData.alignPeriodicInform': true,
      'admin.token': TOKEN,
      controllers: [{ endpointId: CTL, role: 'full' }],
    },
    { admin: true },
  );
});

after(async () => {
  for (const c of controllers) await c.close();
  for (const f of fleets) await f.stop();
  await tp?.stop();
});

async function devices(serialPrefix: string, count: number, periodicIntervalS: number | null): Promise<{ fleet: Fleet; agents: string[] }> {
  const fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp!.acsUrl, count, model: 'tr181', serialPrefix, periodicIntervalS });
  fleets.push(fleet);
  await fleet.start();
  const all = await tp!.proxy.store.listDevices();
  const agents = fleet.devices.map((d) => all.find((r) => r.deviceId.serialNumber === d.serial)!.endpointId);
  return { fleet, agents };
}

async function controller(agent: string): Promise<TestController> {
  const c = new UspControllerClient({ endpointId: CTL, agentId: agent, transport: { mtp: 'ws', url: `ws://127.0.0.1:${wsPort}/usp` }, timeoutMs: 20_000 });
  controllers.push(c);
  await c.connect();
  return new TestController(c);
}

const ok = (m: Msg, type = 'ADD_RESP') => assert.equal(m.header.msgType, type, JSON.stringify(m.body));

/** A USPEventNotif profile (Push! subscribed) reading two parameters, enabled last. */
async function pushProfile(ctl: TestController, id: string, intervalS: number, extra: string[] = []): Promise<void> {
  ok(
    await ctl.req(
      add([
        {
          objPath: 'Device.LocalAgent.Subscription.',
          params: { Enable: 'true', ID: id, NotifType: 'Event', ReferenceList: 'Device.BulkData.Profile.1.Push!' },
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
          params: { Protocol: 'USPEventNotif', EncodingType: 'JSON', ReportingInterval: String(intervalS) },
          required: true,
        },
      ]),
      20_000,
    ),
  );
  for (const Reference of ['Device.DeviceInfo.SerialNumber', 'Device.DeviceInfo.UpTime', ...extra])
    ok(await ctl.req(add([{ objPath: 'Device.BulkData.Profile.1.Parameter.', params: { Reference }, required: true }]), 20_000));
  ok(await ctl.req(set([{ objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'true' }, required: true }]), 20_000), 'SET_RESP');
}

const isPush = (m: Msg) => m.body.request?.notify?.event?.eventName === 'Push!';

/** Resolves when `n` more Push! Notify have arrived. */
async function pushes(ctl: TestController, n: number, what: string): Promise<void> {
  const from = ctl.notifies.filter(isPush).length;
  await ctl.notify(() => ctl.notifies.filter(isPush).length >= from + n, 30_000, what);
}

/** Resolves when `pred` holds, checked on each collection of the scheduler. */
function until(pred: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const s = tp!.proxy.bulkDataScheduler;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!pred()) return;
      cleanup();
      resolve();
    };
    const timer = setInterval(check, 100);
    const giveUp = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} not within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      s.off('collected', check);
    };
    s.on('collected', check);
    check();
  });
}

test('collections ride the periodic Informs: reports with no connection request', { timeout: 60_000 }, async () => {
  const { fleet, agents } = await devices('BDR', 1, 1);
  const agent = agents[0]!;
  const s = tp!.proxy.bulkDataScheduler;
  // Two periodic Informs teach the proxy when the next ones come.
  await until(() => s.informs.intervalMs(agent) > 0, 'the periodic interval learned');
  const ctl = await controller(agent);
  const crBefore = fleet.totals().connectionRequests;
  const via: CollectionVia[] = [];
  s.on('collected', (e) => e.agentEid === agent && via.push(e.via));
  // A wildcard that matches nothing (no associated devices) is left out of the report, not an error.
  await pushProfile(ctl, 'ride', 2, ['Device.WiFi.AccessPoint.*.AssociatedDevice.*.MACAddress']);
  await pushes(ctl, 4, 'four Push! reports').catch((e) => {
    throw new Error(`${e.message} counts ${JSON.stringify(s.counts)} status ${JSON.stringify(s.profileStatus(agent, 1))}`);
  });
  const data = JSON.parse(ctl.notifies.filter(isPush).at(-1)!.body.request!.notify!.event!.params.Data!) as {
    Report: { Device: { DeviceInfo: { SerialNumber: string } } }[];
  };
  assert.equal(data.Report[0]!.Device.DeviceInfo.SerialNumber, fleet.devices[0]!.serial, 'the values read in the periodic session');
  assert.deepEqual(Object.keys(data.Report[0]!).sort(), ['CollectionTime', 'Device'], 'nothing for the empty wildcard');
  assert.equal(fleet.totals().connectionRequests, crBefore, 'no connection request for any report');
  assert.ok(via.length >= 4 && via.every((v) => v === 'periodic-inform'), via.join(','));
  const st = s.profileStatus(agent, 1)!;
  assert.equal(st.via, 'periodic-inform');
  assert.equal(st.outcome, 'sent');
  assert.equal(st.missed, 0);
  assert.equal(fleet.devices[0]!.model.get('Device.ManagementServer.PeriodicInformInterval'), '1', 'Informs already often enough: not changed');

  // The admin API shows the profile and its latest collection; the lag histogram counts it.
  const r = await fetch(`${tp!.adminUrl}/api/devices/${encodeURIComponent(agent)}/bulkdata`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200);
  const view = (await r.json()) as {
    endpointId: string;
    enabled: boolean;
    periodicInform: { intervalS: number | null; next: string | null };
    profiles: {
      instance: number;
      protocol: string;
      reportingIntervalS: number;
      parameters: { reference: string }[];
      lastCollection: { via: string; outcome: string };
    }[];
  };
  assert.equal(view.endpointId, agent);
  assert.equal(view.enabled, true);
  assert.equal(view.periodicInform.intervalS, 1);
  assert.equal(view.profiles.length, 1);
  const p = view.profiles[0]!;
  assert.deepEqual([p.instance, p.protocol, p.reportingIntervalS], [1, 'USPEventNotif', 2]);
  assert.deepEqual(
    p.parameters.map((x) => x.reference),
    ['Device.DeviceInfo.SerialNumber', 'Device.DeviceInfo.UpTime', 'Device.WiFi.AccessPoint.*.AssociatedDevice.*.MACAddress'],
  );
  assert.equal(p.lastCollection.via, 'periodic-inform');
  const unknown = await fetch(`${tp!.adminUrl}/api/devices/no-such-device/bulkdata`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(unknown.status, 404);
  const metrics = await tp!.proxy.metrics.metricsText();
  assert.match(metrics, /bulkdata_collection_lag_seconds_count\{protocol="USPEventNotif",via="periodic-inform"\} [1-9]/);
});

test('alignPeriodicInform: woken once, PeriodicInformInterval set, then every report rides', { timeout: 60_000 }, async () => {
  const { fleet, agents } = await devices('BDL', 1, 3600);
  const agent = agents[0]!;
  const s = tp!.proxy.bulkDataScheduler;
  const ctl = await controller(agent);
  const crBefore = fleet.totals().connectionRequests;
  const via: CollectionVia[] = [];
  s.on('collected', (e) => e.agentEid === agent && via.push(e.via));
  await pushProfile(ctl, 'align', 2);
  await pushes(ctl, 1, 'the first Push! report');
  assert.deepEqual(via, ['connection-request'], 'nothing known of its periodic Informs: the first collection wakes it');
  await until(() => fleet.devices[0]!.model.get('Device.ManagementServer.PeriodicInformInterval') === '2', 'PeriodicInformInterval set');
  const crAfterFirst = fleet.totals().connectionRequests;
  assert.equal(crAfterFirst, crBefore + 1, 'one connection request for the collection and the alignment');
  await pushes(ctl, 3, 'three more Push! reports');
  assert.equal(fleet.totals().connectionRequests, crAfterFirst, 'no connection request after the alignment');
  assert.ok(
    via.slice(1).every((v) => v === 'periodic-inform'),
    via.join(','),
  );
});

test('the connection-request budget bounds the wakes across the fleet; collections without a turn are reported missed', { timeout: 60_000 }, async () => {
  const { fleet, agents } = await devices('BDM', 3, null);
  const s = tp!.proxy.bulkDataScheduler;
  const crBefore = fleet.totals().connectionRequests;
  const started = Date.now();
  for (const agent of agents) {
    const ctl = await controller(agent);
    ok(
      await ctl.req(
        add([{ objPath: 'Device.BulkData.Profile.', params: { Protocol: 'USPEventNotif', EncodingType: 'JSON', ReportingInterval: '1' }, required: true }]),
        20_000,
      ),
    );
    ok(await ctl.req(add([{ objPath: 'Device.BulkData.Profile.1.Parameter.', params: { Reference: 'Device.DeviceInfo.UpTime' }, required: true }]), 20_000));
  }
  for (const agent of agents) {
    const ctl = new TestController(controllers.find((c) => c.agentId === agent)!);
    ok(await ctl.req(set([{ objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'true' }, required: true }]), 20_000), 'SET_RESP');
  }
  const missed = () => agents.reduce((n, a) => n + (s.profileStatus(a, 1)?.missed ?? 0), 0);
  await until(() => missed() >= 3, 'three missed collections');
  // Three profiles due every second share one connection request a second.
  const crs = fleet.totals().connectionRequests - crBefore;
  const elapsedS = (Date.now() - started) / 1000;
  assert.ok(crs <= Math.ceil(elapsedS) + 1, `${crs} connection requests in ${elapsedS} s with a budget of 1/s`);
  const missedStatus = agents.map((a) => s.profileStatus(a, 1)).find((st) => st?.outcome === 'missed');
  assert.ok(missedStatus, 'a profile whose latest collection was missed shows it');
  assert.equal(missedStatus.collected, undefined);
  const metrics = await tp!.proxy.metrics.metricsText();
  assert.match(metrics, /bulkdata_reports_total\{protocol="USPEventNotif",outcome="missed"\} [1-9]/);
  for (const agent of agents) {
    const ctl = new TestController(controllers.find((c) => c.agentId === agent)!);
    ok(await ctl.req(set([{ objPath: 'Device.BulkData.Profile.1.', params: { Enable: 'false' }, required: true }]), 20_000), 'SET_RESP');
  }
});
