/**
 * The admin side end to end: a real proxy (startTestProxy: loopback, temp data dir), a few simulated
 * TR-181 devices over real HTTP, the proxy's own metrics and admin server (admin.port 0). Checks
 * health/readiness (and 503 with an unreachable MQTT broker), that /metrics values move with
 * traffic, bearer-token auth of /api, device listing/search/details (no secrets), connection
 * requests, dropping a queued RPC, controllers and the summary.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { CwmpUspProxy } from '../../src/app/proxy.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import type { DeviceRecord } from '../../src/store/types.js';
import { UspControllerClient, get } from '../../src/tools/controller/client.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { STRICT_SIM } from '../helpers/sim.js';

const TOKEN = 'admin-test-token-0123456789';
const CTL = 'proto::admin-ctl';
let tp: TestProxy;
let proxy: CwmpUspProxy;
let fleet: Fleet;
let base = '';

const OVERRIDES = {
  'acs.connectionRequest.deadlineMs': 5000,
  'acs.connectionRequest.timeoutMs': 500,
  'acs.connectionRequest.retries': 0,
  'acs.connectionRequest.retryDelayMs': 100,
  'usp.reconnectBaseMs': 200,
  'usp.reconnectMaxMs': 1000,
  controllers: [{ endpointId: CTL, role: 'full', mqtt: { topic: '/usp/admin-ctl' } }],
  'admin.token': TOKEN,
};

const auth = { authorization: `Bearer ${TOKEN}` };
async function api(p: string, init: RequestInit = {}): Promise<Response> {
  return fetch(base + p, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } });
}
async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(base + '/metrics', { headers: auth })).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
async function until(what: string, f: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function fakeDevice(serial: string, root: DeviceRecord['rootModel'], url: string | null): DeviceRecord {
  return {
    deviceKey: `000000-FAKE-${serial}`,
    endpointId: `os::000000-${serial}`,
    deviceId: { manufacturer: 'Fake', oui: '000000', productClass: 'FAKE', serialNumber: serial },
    rootModel: root,
    softwareVersion: '1.0',
    connectionRequestUrl: url,
    connReqUsername: 'cr-user',
    connReqPassword: 'cr-secret-password',
    cpeUsername: 'cpe-user',
    cpePassword: 'cpe-secret-password',
    periodicInformInterval: null,
    lastInform: null,
    lastInformEvents: [],
    registeredAt: new Date().toISOString(),
  };
}

before(async () => {
  tp = await startTestProxy(OVERRIDES, { admin: true });
  proxy = tp.proxy;
  base = tp.adminUrl;
  fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp.acsUrl, count: 3, model: 'tr181', serialPrefix: 'ADM', periodicIntervalS: null });
  await fleet.start();
});

after(async () => {
  await fleet?.stop();
  await tp?.stop();
});

test('/healthz and /readyz need no token; /readyz names its checks', async () => {
  const h = await fetch(base + '/healthz');
  assert.equal(h.status, 200);
  assert.equal(((await h.json()) as { status: string }).status, 'ok');
  const r = await fetch(base + '/readyz');
  const body = (await r.json()) as { checks: Record<string, { ok: boolean }> };
  assert.equal(r.status, 200, JSON.stringify(body));
  assert.equal(body.checks.store?.ok, true);
  assert.equal(body.checks.acs?.ok, true);
});

test('/readyz is 503 while a configured MQTT broker is unreachable', async () => {
  const p = await startTestProxy({ ...OVERRIDES, 'usp.mqtt.url': 'mqtt://127.0.0.1:1' }, { admin: true });
  try {
    const r = await fetch(`${p.adminUrl}/readyz`);
    const body = (await r.json()) as { checks: Record<string, { ok: boolean; detail: string }> };
    assert.equal(r.status, 503);
    assert.equal(body.checks.mqtt?.ok, false);
    assert.equal(body.checks.store?.ok, true);
  } finally {
    await p.stop();
  }
});

test('/metrics carries the metric names and the values move with traffic', async () => {
  const text = await (await fetch(base + '/metrics', { headers: auth })).text();
  for (const name of [
    'cwmp_informs_total',
    'cwmp_sessions_total',
    'cwmp_queue_depth',
    'cwmp_active_sessions',
    'usp_controllers_connected',
    'devices',
    'process_cpu_user_seconds_total',
  ]) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  assert.ok((await metricValue('devices', { root_model: 'Device' })) >= 3);
  const informs = await metricValue('cwmp_informs_total');
  const periodic = await metricValue('cwmp_informs_total', { event: '2 PERIODIC' });
  const sessions = await metricValue('cwmp_sessions_total', { outcome: 'completed' });
  const handled = await metricValue('cwmp_acs_request_duration_seconds_count', { status: '200' });
  await fleet.informAll(['2 PERIODIC']);
  await until('sessions counted', async () => (await metricValue('cwmp_sessions_total', { outcome: 'completed' })) >= sessions + 3);
  // Each session's Inform answered 200 (InformResponse), timed by the ACS.
  assert.ok((await metricValue('cwmp_acs_request_duration_seconds_count', { status: '200' })) >= handled + 3);
  assert.equal(await metricValue('cwmp_informs_total'), informs + 3);
  assert.equal(await metricValue('cwmp_informs_total', { event: '2 PERIODIC' }), periodic + 3);

  const dev = (await proxy.store.listDevices({ search: fleet.devices[0]!.serial }))[0]!;
  const rpcs = await metricValue('cwmp_rpc_duration_seconds_count', { method: 'GetParameterValues' });
  const crs = await metricValue('cwmp_connection_requests_total', { outcome: 'ok' });
  const out = await proxy.engine.enqueue(dev.deviceKey, { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.SoftwareVersion'] });
  assert.equal(out.kind, 'response');
  assert.equal(await metricValue('cwmp_rpc_duration_seconds_count', { method: 'GetParameterValues' }), rpcs + 1);
  assert.equal((await metricValue('cwmp_rpcs_total', { method: 'GetParameterValues', outcome: 'success' })) >= 1, true);
  assert.equal(await metricValue('cwmp_connection_requests_total', { outcome: 'ok' }), crs + 1);

  const summary = (await (await api('/api/summary')).json()) as { informsPerMinute: number[]; uspRequestsPerMinute: number[] };
  assert.equal(summary.informsPerMinute.length, 60);
  assert.equal(summary.uspRequestsPerMinute.length, 60);
  assert.ok(summary.informsPerMinute.reduce((a, b) => a + b, 0) >= 6);
});

test('/api needs the bearer token', async () => {
  const variants: Record<string, string>[] = [
    {},
    { authorization: 'Bearer wrong' },
    { authorization: `Basic ${TOKEN}` },
    { authorization: `Bearer ${TOKEN}x` },
  ];
  for (const headers of variants) {
    const r = await fetch(base + '/api/devices', { headers });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.ok(((await r.json()) as { error: string }).error);
  }
  assert.equal((await api('/api/devices')).status, 200);
  assert.equal((await api('/api/nothing-here')).status, 404);
  // The status page and its vendored modules are public (the page holds no data).
  const page = await fetch(base + '/');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /html/);
  assert.equal((await fetch(base + '/vendor/preact/preact.mjs')).status, 200);
});

test('devices: list, search, details with the type cache and no secrets', async () => {
  const list = (await (await api('/api/devices')).json()) as { total: number; devices: Array<Record<string, unknown>> };
  assert.ok(list.total >= 3);
  assert.ok(list.devices.every((d) => typeof d.endpointId === 'string' && typeof d.online === 'boolean' && typeof d.queuedRpcs === 'number'));
  const serial = fleet.devices[1]!.serial;
  const found = (await (await api(`/api/devices?search=${encodeURIComponent(serial)}`)).json()) as {
    total: number;
    devices: Array<{ endpointId: string; deviceKey: string; online: boolean; rootModel: string }>;
  };
  assert.equal(found.total, 1);
  assert.equal(found.devices.length, 1);
  assert.equal(found.devices[0]!.online, true);
  assert.equal(found.devices[0]!.rootModel, 'Device');
  assert.equal((await api('/api/devices?limit=abc')).status, 400);
  assert.equal((await api('/api/devices?limit=1')).status, 200);

  for (const key of [found.devices[0]!.endpointId, found.devices[0]!.deviceKey]) {
    const r = await api(`/api/devices/${encodeURIComponent(key)}`);
    assert.equal(r.status, 200);
    const text = await r.text();
    assert.doesNotMatch(text, /password/i);
    const d = JSON.parse(text) as { parameterTypes: Record<string, string>; queue: unknown[]; endpointId: string };
    assert.equal(d.endpointId, found.devices[0]!.endpointId);
    assert.ok(Object.keys(d.parameterTypes).length > 0, 'learned types present');
    assert.ok(Object.keys(d.parameterTypes).some((n) => n.startsWith('Device.')));
    assert.deepEqual(d.queue, []);
  }
  assert.equal((await api('/api/devices/no-such-device')).status, 404);
});

test('connection request endpoint wakes the simulated device', async () => {
  const sim = fleet.devices[2]!;
  const rec = (await proxy.store.listDevices({ search: sim.serial }))[0]!;
  const before = sim.stats.sessions;
  const r = await api(`/api/devices/${encodeURIComponent(rec.endpointId)}/connection-request`, { method: 'POST' });
  assert.equal(r.status, 200);
  const body = (await r.json()) as { ok: boolean };
  assert.equal(body.ok, true);
  await until('a session after the connection request', () => sim.stats.sessions > before);
});

test('a queued RPC can be dropped', async () => {
  const fake = fakeDevice('QDROP1', 'InternetGatewayDevice', 'http://127.0.0.1:1/nowhere');
  await proxy.store.upsertDevice(fake);
  const pending = proxy.engine.enqueue(fake.deviceKey, { method: 'GetRPCMethods' }, { deadlineMs: 600_000 });
  const settled = pending.then(
    () => 'resolved',
    (e: Error & { reason?: string }) => e.reason ?? 'error',
  );
  const d = (await (await api(`/api/devices/${encodeURIComponent(fake.deviceKey)}`)).json()) as {
    queue: Array<{ id: string; method: string }>;
    queuedRpcs: number;
  };
  assert.equal(d.queue.length, 1);
  assert.equal(d.queue[0]!.method, 'GetRPCMethods');
  assert.equal(d.queuedRpcs, 1);
  const del = await api(`/api/queue/${d.queue[0]!.id}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.equal(await settled, 'cancelled');
  assert.equal((await api(`/api/queue/${d.queue[0]!.id}`, { method: 'DELETE' })).status, 404);
  const after = (await (await api(`/api/devices/${encodeURIComponent(fake.endpointId)}`)).json()) as { queue: unknown[] };
  assert.deepEqual(after.queue, []);
  const text = JSON.stringify(after);
  assert.doesNotMatch(text, /secret|password/i);

  const summary = (await (await api('/api/summary')).json()) as {
    devices: { total: number; byRootModel: Record<string, number>; byProductClass: Record<string, number> };
    recentErrors: Array<{ message: string }>;
  };
  assert.ok(summary.devices.total >= 4);
  assert.equal(summary.devices.byRootModel.InternetGatewayDevice, 1);
  assert.equal(summary.devices.byProductClass.FAKE, 1);
  assert.ok(
    summary.recentErrors.some((e) => e.message.includes('connection request')),
    JSON.stringify(summary.recentErrors),
  );
});

test('USP Records and translation latency are counted', async () => {
  const agent = (await proxy.store.listDevices({ search: fleet.devices[0]!.serial }))[0]!.endpointId;
  const c = new UspControllerClient({
    agentId: agent,
    endpointId: CTL,
    transport: { mtp: 'ws', url: tp.uspUrl },
    timeoutMs: 10_000,
  });
  await c.connect();
  try {
    const recIn = await metricValue('usp_records_total', { mtp: 'websocket', direction: 'in', type: 'GET' });
    const m = await c.request(get(['Device.DeviceInfo.SoftwareVersion']));
    assert.equal(m.body.msgBody, 'response');
    await until('records counted', async () => (await metricValue('usp_records_total', { mtp: 'websocket', direction: 'out', type: 'GET_RESP' })) >= 1);
    assert.equal(await metricValue('usp_records_total', { mtp: 'websocket', direction: 'in', type: 'GET' }), recIn + 1);
    assert.ok((await metricValue('usp_translation_duration_seconds_count', { msg_type: 'GET' })) >= 1);
    assert.ok((await metricValue('usp_controllers_connected', { mtp: 'websocket' })) >= 1);
  } finally {
    await c.close();
  }
});

test('a secured parameter the CPE reports reads empty over USP and never reaches the admin API', async () => {
  const sim = fleet.devices[0]!;
  const SECRET = 'Cpe-Reported-S3cret';
  sim.model.set('Device.ManagementServer.Password', SECRET);
  sim.model.set('Device.WiFi.AccessPoint.1.Security.KeyPassphrase', SECRET);
  const rec = (await proxy.store.listDevices({ search: sim.serial }))[0]!;
  const c = new UspControllerClient({ agentId: rec.endpointId, endpointId: CTL, transport: { mtp: 'ws', url: tp.uspUrl }, timeoutMs: 10_000 });
  await c.connect();
  try {
    const m = await c.request(get(['Device.ManagementServer.', 'Device.WiFi.AccessPoint.1.Security.KeyPassphrase']));
    const [ms, key] = m.body.response!.getResp!.reqPathResults;
    assert.equal(ms!.resolvedPathResults[0]!.resultParams.Password, '');
    assert.equal(key!.resolvedPathResults[0]!.resultParams.KeyPassphrase, '');
    assert.doesNotMatch(JSON.stringify(m), new RegExp(SECRET));
  } finally {
    await c.close();
  }
  for (const p of [`/api/devices/${encodeURIComponent(rec.endpointId)}`, '/api/devices', '/api/summary', '/api/controllers']) {
    assert.doesNotMatch(await (await api(p)).text(), new RegExp(SECRET), p);
  }
  assert.doesNotMatch(await (await fetch(base + '/metrics', { headers: auth })).text(), new RegExp(SECRET));
});

test('controllers are listed with their MTP state', async () => {
  const r = (await (await api('/api/controllers')).json()) as {
    controllers: Array<{ endpointId: string; role: string; mtps: Array<{ mtp: string; connected: boolean }> }>;
  };
  assert.equal(r.controllers.length, 1);
  assert.equal(r.controllers[0]!.endpointId, CTL);
  assert.equal(r.controllers[0]!.role, 'full');
  assert.ok(r.controllers[0]!.mtps.some((m) => m.mtp === 'websocket'));
});
