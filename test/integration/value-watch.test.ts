/**
 * ValueChange subscriptions over a real MTP (WebSocket) on simulated CPEs over real HTTP, one
 * device model per behaviour: a strict CPE that notifies (served by the CPE), a strict CPE that
 * refuses SetParameterAttributes (`no-spa`: compared in its periodic Inform sessions, or polled on
 * request), and a strict CPE that takes the attribute but never sends 4 VALUE CHANGE
 * (`no-value-change`: found out in a periodic session, then compared). For each serving mode a
 * ValueChange Notify arrives after the simulated device changes a value itself; the admin API and
 * `cwmp-usp-proxy devices --json` (read from the store while the proxy runs) say how each
 * subscription is served and what was learned of each model.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Fleet, type SimDevice } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, add } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { ROOT } from '../helpers/paths.js';
import { STRICT_SIM, STRICT_SIM_NO_SPA, STRICT_SIM_NO_VALUE_CHANGE } from '../helpers/sim.js';
import { TestController } from '../helpers/test-controller.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';

const CLI = path.join(ROOT, 'dist', 'src', 'app', 'cli.js');
const TOKEN = 'value-watch-token-0123456789';
const CTL = 'proto::vw-ctl';
const SSID1 = 'Device.WiFi.SSID.1.SSID';

let tp: TestProxy;
const fleets: Fleet[] = [];
const clients: UspControllerClient[] = [];
let notifying: SimDevice;
let noSpa: SimDevice;
let polled: SimDevice;
let noVc: SimDevice;

interface Serving {
  subscription: string;
  id: string;
  servedBy: string | null;
  reason: string;
  parameters: number;
  pollIntervalS: number;
}
interface Learned {
  endpointId: string;
  capabilities: {
    model: string;
    partialPaths: string;
    gpvBatchSize: number;
    setParameterAttributes: string;
    rootNextLevelFalse: string;
    rpcMethods: string[] | null;
    failures: unknown[] | null;
  } | null;
  valueChange: Serving[];
}

before(async () => {
  tp = await startTestProxy(
    {
      controllers: [{ endpointId: CTL }],
      'admin.token': TOKEN,
      'acs.connectionRequest.timeoutMs': 2000,
      'interworking.valueChangePoll.enabled': true,
      'interworking.valueChangePoll.minIntervalS': 1,
    },
    { admin: true },
  );
  const fleet = (productClass: string, quirks: typeof STRICT_SIM, count: number): Fleet =>
    new Fleet({ quirks, acsUrl: tp.acsUrl, count, model: 'tr181', productClass, serialPrefix: productClass, periodicIntervalS: null });
  const all = [fleet('VWNOTIFY', STRICT_SIM, 1), fleet('VWNOSPA', STRICT_SIM_NO_SPA, 2), fleet('VWNOVC', STRICT_SIM_NO_VALUE_CHANGE, 1)];
  fleets.push(...all);
  await Promise.all(all.map((f) => f.start()));
  [notifying, noSpa, polled, noVc] = [all[0]!.devices[0]!, all[1]!.devices[0]!, all[1]!.devices[1]!, all[2]!.devices[0]!];
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(fleets.map((f) => f.stop()));
  await tp?.stop();
});

async function api(p: string, init: RequestInit = {}): Promise<Response> {
  return fetch(tp.adminUrl + p, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } });
}

async function agentOf(dev: SimDevice): Promise<string> {
  const rec = (await tp.proxy.store.listDevices({ search: dev.serial }))[0];
  assert.ok(rec, `device ${dev.serial} registered`);
  return rec.endpointId;
}

async function connect(agent: string): Promise<TestController> {
  const c = new UspControllerClient({ agentId: agent, endpointId: CTL, transport: { mtp: 'ws', url: tp.uspUrl }, timeoutMs: 10_000 });
  clients.push(c);
  await c.connect();
  return new TestController(c);
}

async function subscribe(ctl: TestController, id: string, ref: string): Promise<number> {
  const r = await ctl.req(
    add([{ objPath: 'Device.LocalAgent.Subscription.', params: { Enable: 'true', ID: id, NotifType: 'ValueChange', ReferenceList: ref } }]),
  );
  const p = r.body.response?.addResp?.createdObjResults[0]?.operStatus?.operSuccess?.instantiatedPath;
  assert.ok(p, JSON.stringify(r.body));
  return Number(/(\d+)\.$/.exec(p)![1]);
}

/** The device's entry in the admin API. */
async function entry(agent: string): Promise<Learned> {
  const r = await api(`/api/devices/${encodeURIComponent(agent)}`);
  assert.equal(r.status, 200);
  return (await r.json()) as Learned;
}

/** Waits until the subscription is set up on the device (its serving mode known), and returns it. */
async function servedOnce(agent: string, id: string, servedBy: string): Promise<Serving> {
  const end = Date.now() + 10_000;
  for (;;) {
    const s = (await entry(agent)).valueChange.find((x) => x.id === id);
    if (s?.servedBy === servedBy) return s;
    if (Date.now() > end) throw new Error(`subscription ${id} not served by ${servedBy}: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const valueChangeOf = (id: string, value: string) => (m: Msg) => {
  const n = m.body.request?.notify;
  return n?.subscriptionId === id && n.valueChange?.paramValue === value;
};

test('cpe-notification: a CPE that notifies reports the change itself', async () => {
  const agent = await agentOf(notifying);
  const ctl = await connect(agent);
  await subscribe(ctl, 'by-cpe', SSID1);
  const s = await servedOnce(agent, 'by-cpe', 'cpe-notification');
  assert.equal(s.parameters, 1);
  assert.equal(notifying.model.attr(SSID1).notification, 2);
  const n = ctl.notify(valueChangeOf('by-cpe', 'cpe-told'), 10_000, 'ValueChange');
  notifying.setValue(SSID1, 'cpe-told');
  assert.equal((await n).body.request!.notify!.valueChange!.paramPath, SSID1);
  const caps = (await entry(agent)).capabilities!;
  assert.equal(caps.setParameterAttributes, 'yes');
  assert.equal(caps.partialPaths, 'no');
  assert.equal(caps.gpvBatchSize, 32);
  assert.ok(caps.rpcMethods?.includes('SetParameterAttributes'), String(caps.rpcMethods));
  assert.deepEqual(caps.failures, []);
});

test('periodic-compare: a CPE without SetParameterAttributes is read in its periodic session', async () => {
  const agent = await agentOf(noSpa);
  const ctl = await connect(agent);
  // A partial path: watched as the row's explicit names (the strict CPE drops a partial path in GPV).
  await subscribe(ctl, 'by-compare', 'Device.WiFi.SSID.2.');
  const s = await servedOnce(agent, 'by-compare', 'periodic-compare');
  assert.ok(s.parameters > 3, String(s.parameters));
  assert.match(s.reason, /does not support SetParameterAttributes/);
  const n = ctl.notify(valueChangeOf('by-compare', 'compared'), 10_000, 'ValueChange');
  noSpa.setValue('Device.WiFi.SSID.2.SSID', 'compared');
  await noSpa.inform(['2 PERIODIC']);
  assert.equal((await n).body.request!.notify!.valueChange!.paramPath, 'Device.WiFi.SSID.2.SSID');
  const caps = (await entry(agent)).capabilities!;
  assert.equal(caps.setParameterAttributes, 'no');
  assert.ok(caps.rpcMethods && !caps.rpcMethods.includes('SetParameterAttributes'));
  assert.equal(noSpa.stats.rpcsReceived.SetParameterAttributes ?? 0, 0, 'not asked: GetRPCMethods did not list it');
});

test('periodic-compare: a CPE that never sends 4 VALUE CHANGE is found out in a periodic session', async () => {
  const agent = await agentOf(noVc);
  const ctl = await connect(agent);
  await subscribe(ctl, 'found-out', SSID1);
  await servedOnce(agent, 'found-out', 'cpe-notification');
  assert.equal(noVc.model.attr(SSID1).notification, 2);
  const n = ctl.notify(valueChangeOf('found-out', 'never-told'), 10_000, 'ValueChange');
  noVc.setValue(SSID1, 'never-told');
  await noVc.inform(['2 PERIODIC']);
  await n;
  const s = await servedOnce(agent, 'found-out', 'periodic-compare');
  assert.match(s.reason, /did not send 4 VALUE CHANGE/);
});

test('polling: a subscription polled on request wakes the device and reports the change', async () => {
  const agent = await agentOf(polled);
  const ctl = await connect(agent);
  const inst = await subscribe(ctl, 'by-poll', SSID1);
  await servedOnce(agent, 'by-poll', 'periodic-compare');
  const put = (i: number | string, body: unknown) =>
    api(`/api/devices/${encodeURIComponent(agent)}/value-change/${i}`, { method: 'PUT', body: JSON.stringify(body) });
  assert.equal((await put(inst, { pollIntervalS: -1 })).status, 400);
  assert.equal((await put(inst, { pollIntervalS: 'soon' })).status, 400);
  assert.equal((await put('x', { pollIntervalS: 1 })).status, 400);
  assert.equal((await put(inst + 50, { pollIntervalS: 1 })).status, 404);
  const r = await put(inst, { pollIntervalS: 1 });
  assert.equal(r.status, 200);
  const s = (await r.json()) as Serving;
  assert.equal(s.servedBy, 'polling');
  assert.equal(s.pollIntervalS, 1);
  const sessions = polled.stats.sessions;
  const n = ctl.notify(valueChangeOf('by-poll', 'polled'), 10_000, 'ValueChange');
  polled.setValue(SSID1, 'polled');
  assert.equal((await n).body.request!.notify!.valueChange!.paramPath, SSID1);
  assert.ok(polled.stats.sessions > sessions, 'the poll woke the device (connection request)');
  assert.equal((await put(inst, { pollIntervalS: 0 })).status, 200);
  assert.equal((await servedOnce(agent, 'by-poll', 'periodic-compare')).pollIntervalS, 0);
});

test('devices --json shows the learned capabilities and how each subscription is served, from the store', async () => {
  const r = spawnSync(process.execPath, [CLI, 'devices', '--json', '--data-dir', tp.config.dataDir], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Learned[];
  const row = async (dev: SimDevice): Promise<Learned> => {
    const agent = await agentOf(dev);
    const found = rows.find((x) => x.endpointId === agent);
    assert.ok(found, `${agent} listed`);
    return found;
  };
  const a = await row(notifying);
  assert.equal(a.capabilities!.setParameterAttributes, 'yes');
  assert.equal(a.capabilities!.partialPaths, 'no');
  assert.equal(a.capabilities!.failures, null, 'failures live in the running proxy only');
  assert.deepEqual(
    a.valueChange.map((s) => [s.id, s.servedBy]),
    [['by-cpe', 'cpe-notification']],
  );
  const b = await row(noSpa);
  assert.equal(b.capabilities!.setParameterAttributes, 'no');
  assert.ok(b.capabilities!.rpcMethods && !b.capabilities!.rpcMethods.includes('SetParameterAttributes'));
  assert.deepEqual(
    b.valueChange.map((s) => [s.id, s.servedBy]),
    [['by-compare', 'periodic-compare']],
  );
  const c = await row(noVc);
  assert.equal(c.capabilities!.setParameterAttributes, 'yes');
  assert.deepEqual(
    c.valueChange.map((s) => [s.id, s.servedBy]),
    [['found-out', 'periodic-compare']],
  );
  // The admin API says the same per device.
  for (const dev of [notifying, noSpa, noVc]) {
    const e = await entry(await agentOf(dev));
    const cli = await row(dev);
    assert.deepEqual(
      e.valueChange.map((s) => [s.id, s.servedBy, s.parameters]),
      cli.valueChange.map((s) => [s.id, s.servedBy, s.parameters]),
    );
    assert.equal(e.capabilities!.model, cli.capabilities!.model);
  }
  // Listing carries the same fields.
  const list = (await (await api('/api/devices')).json()) as { devices: Learned[] };
  assert.ok(list.devices.every((d) => d.capabilities && Array.isArray(d.valueChange)));
});
