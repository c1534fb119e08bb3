/**
 * The northbound tasks API end to end (docs/nbi.md): a real proxy with its admin side, simulated
 * TR-181 devices (strict agent quirks) over real HTTP. One task of every type reaches the
 * simulator and reports its result or fault; a task for an offline device stays queued and
 * completes when the device comes back; bad requests get 400/404; every write is audited with no
 * secret value in the log; secured parameters read empty.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/app/log.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import type { SimDevice } from '../../src/tools/sim/device.js';
import type { DeviceRecord } from '../../src/store/types.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { STRICT_SIM } from '../helpers/sim.js';

const TOKEN = 'nbi-test-token-0123456789';
let tp: TestProxy;
let fleet: Fleet;
let base = '';
let logs = '';

const OVERRIDES = {
  'acs.connectionRequest.deadlineMs': 3000,
  'acs.connectionRequest.timeoutMs': 300,
  'acs.connectionRequest.retries': 0,
  'acs.connectionRequest.retryDelayMs': 100,
  controllers: [{ endpointId: 'proto::nbi-ctl', role: 'full' }],
  'admin.token': TOKEN,
  'admin.tasks.deadlineS': 60,
};

interface Task {
  id: string;
  deviceKey: string;
  type: string;
  status: 'queued' | 'running' | 'done' | 'failed';
  method: string | null;
  result?: Record<string, unknown>;
  fault?: { faultCode: number; faultString: string; parameters?: Array<{ name: string; faultCode: number }> };
  error?: string;
}

async function api(p: string, init: RequestInit = {}): Promise<Response> {
  return fetch(base + p, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) },
  });
}
async function until(what: string, f: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
async function record(sim: SimDevice): Promise<DeviceRecord> {
  return (await tp.proxy.store.listDevices({ search: sim.serial }))[0]!;
}
async function post(key: string, body: unknown): Promise<{ id: string; status: string }> {
  const r = await api(`/api/devices/${encodeURIComponent(key)}/tasks`, { method: 'POST', body: JSON.stringify(body) });
  const text = await r.text();
  assert.equal(r.status, 202, text);
  const out = JSON.parse(text) as { id: string; status: string };
  assert.equal(r.headers.get('location'), `/api/tasks/${out.id}`);
  return out;
}
async function task(id: string): Promise<Task> {
  const r = await api(`/api/tasks/${id}`);
  assert.equal(r.status, 200);
  return (await r.json()) as Task;
}
/** Posts a task and waits until it finished. */
async function run(key: string, body: unknown): Promise<Task> {
  const { id } = await post(key, body);
  let t = await task(id);
  await until(`task ${JSON.stringify(body)}`, async () => {
    t = await task(id);
    return t.status === 'done' || t.status === 'failed';
  });
  return t;
}

before(async () => {
  tp = await startTestProxy(OVERRIDES, { admin: true, logger: createLogger('info', { write: (s: string) => void (logs += s) } as never) });
  base = tp.adminUrl;
  fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: tp.acsUrl,
    count: 4,
    model: 'tr181',
    serialPrefix: 'NBI',
    periodicIntervalS: null,
    timers: { rebootDelayMs: 200, transferDelayMs: 50 },
    transfers: { fetch: false },
  });
  await fleet.start();
});

after(async () => {
  await fleet?.stop();
  await tp?.stop();
});

test('get, set (typed from the learned model), and a Set fault', async () => {
  const sim = fleet.devices[0]!;
  const rec = await record(sim);
  const got = await run(rec.endpointId, { type: 'get', names: ['Device.DeviceInfo.SoftwareVersion'] });
  assert.equal(got.status, 'done', JSON.stringify(got));
  assert.equal(got.method, 'GetParameterValues');
  assert.deepEqual(got.result, {
    parameters: [{ name: 'Device.DeviceInfo.SoftwareVersion', value: sim.getValue('Device.DeviceInfo.SoftwareVersion'), type: 'xsd:string' }],
  });

  const set = await run(rec.deviceKey, { type: 'set', values: [{ name: 'Device.DeviceInfo.ProvisioningCode', value: 'nbi-1' }] });
  assert.equal(set.status, 'done', JSON.stringify(set));
  assert.ok(typeof set.result?.status === 'number');
  assert.equal(sim.getValue('Device.DeviceInfo.ProvisioningCode'), 'nbi-1');

  const bad = await run(rec.deviceKey, { type: 'set', values: [{ name: 'Device.DeviceInfo.NoSuchThing', value: 'x' }] });
  assert.equal(bad.status, 'failed');
  assert.equal(bad.fault?.faultCode, 9003);
  assert.equal(bad.fault?.parameters?.[0]?.name, 'Device.DeviceInfo.NoSuchThing');
});

test('add, then delete the new instance', async () => {
  const sim = fleet.devices[0]!;
  const rec = await record(sim);
  const add = await run(rec.deviceKey, { type: 'add', object: 'Device.NAT.PortMapping.' });
  assert.equal(add.status, 'done', JSON.stringify(add));
  const n = add.result?.instanceNumber as number;
  assert.ok(Number.isInteger(n) && n > 0);
  assert.notEqual(sim.getValue(`Device.NAT.PortMapping.${n}.Enable`), undefined);
  const del = await run(rec.deviceKey, { type: 'delete', object: `Device.NAT.PortMapping.${n}.` });
  assert.equal(del.status, 'done', JSON.stringify(del));
  assert.equal(sim.getValue(`Device.NAT.PortMapping.${n}.Enable`), undefined);
  const again = await run(rec.deviceKey, { type: 'delete', object: `Device.NAT.PortMapping.${n}.` });
  assert.equal(again.status, 'failed');
  assert.ok(again.fault && again.fault.faultCode >= 9000);
});

test('refresh reads a subtree (GetParameterNames then GetParameterValues); secured values read empty', async () => {
  const sim = fleet.devices[1]!;
  sim.model.set('Device.ManagementServer.Password', 'Nbi-S3cret-Value');
  const rec = await record(sim);
  const t = await run(rec.deviceKey, { type: 'refresh', object: 'Device.ManagementServer.' });
  assert.equal(t.status, 'done', JSON.stringify(t));
  const params = (t.result as { parameters: Array<{ name: string; value: string }> }).parameters;
  assert.ok(params.length > 3);
  assert.equal(params.find((p) => p.name === 'Device.ManagementServer.URL')?.value, sim.getValue('Device.ManagementServer.URL'));
  assert.equal(params.find((p) => p.name === 'Device.ManagementServer.Password')?.value, '');
  const got = await run(rec.deviceKey, { type: 'get', names: ['Device.ManagementServer.Password'] });
  assert.doesNotMatch(JSON.stringify(got), /Nbi-S3cret-Value/);
  assert.doesNotMatch(logs, /Nbi-S3cret-Value/);
});

test('reboot and download complete and the device reports back', async () => {
  const sim = fleet.devices[1]!;
  const rec = await record(sim);
  const reboot = await run(rec.deviceKey, { type: 'reboot', commandKey: 'nbi-reboot' });
  assert.equal(reboot.status, 'done', JSON.stringify(reboot));
  await until('the boot Inform', async () => (await record(sim)).lastInformEvents.includes('M Reboot'));

  const dl = await run(rec.deviceKey, { type: 'download', url: 'http://127.0.0.1:1/fw.bin', fileType: '3 Vendor Configuration File', password: 'dl-S3cret' });
  assert.equal(dl.status, 'done', JSON.stringify(dl));
  assert.ok([0, 1].includes(dl.result?.status as number));
  await until('TRANSFER COMPLETE', async () => (await record(sim)).lastInformEvents.includes('7 TRANSFER COMPLETE'));
  assert.doesNotMatch(logs, /dl-S3cret/);
});

test('factoryReset and connectionRequest', async () => {
  const sim = fleet.devices[2]!;
  const rec = await record(sim);
  const before = sim.stats.sessions;
  const cr = await run(rec.deviceKey, { type: 'connectionRequest' });
  assert.equal(cr.status, 'done', JSON.stringify(cr));
  assert.equal(cr.method, null);
  await until('a session after the connection request', () => sim.stats.sessions > before);

  const fr = await run(rec.deviceKey, { type: 'factoryReset' });
  assert.equal(fr.status, 'done', JSON.stringify(fr));
  await until('the BOOTSTRAP Inform', async () => (await record(sim)).lastInformEvents.includes('0 BOOTSTRAP'));
});

test('a task for an offline device stays queued and completes when the device comes back', async () => {
  const sim = fleet.devices[3]!;
  const rec = await record(sim);
  sim.offline = true; // refuses connection requests
  const { id, status } = await post(rec.deviceKey, { type: 'set', values: [{ name: 'Device.DeviceInfo.ProvisioningCode', value: 'came-back' }] });
  assert.equal(status, 'queued');
  // The connection request fails (deadline 3 s); the RPC stays queued past it.
  await new Promise((r) => setTimeout(r, 3500));
  assert.equal((await task(id)).status, 'queued');
  const list = (await (await api(`/api/devices/${encodeURIComponent(rec.endpointId)}/tasks`)).json()) as { tasks: Task[] };
  assert.ok(list.tasks.some((t) => t.id === id && t.status === 'queued'));
  assert.equal(sim.getValue('Device.DeviceInfo.ProvisioningCode') === 'came-back', false);

  // A read waits too (retried at the device's next Inform).
  const read = await post(rec.deviceKey, { type: 'get', names: ['Device.DeviceInfo.ProvisioningCode'] });
  await new Promise((r) => setTimeout(r, 3500));
  assert.equal((await task(read.id)).status, 'queued');

  sim.offline = false;
  await sim.inform(['2 PERIODIC']);
  await until('the queued task done', async () => (await task(id)).status === 'done');
  assert.equal(sim.getValue('Device.DeviceInfo.ProvisioningCode'), 'came-back');
  await until('the read done', async () => (await task(read.id)).status !== 'queued');
  const r = await task(read.id);
  assert.equal(r.status, 'done', JSON.stringify(r));
  const params = (r.result as { parameters: Array<{ value: string }> }).parameters;
  assert.equal(params.length, 1);
  // Sent after the queued Set in the same session.
  assert.equal(params[0]!.value, 'came-back');
});

test('bad task requests: 400, 404, 401; unknown task 404', async () => {
  const rec = await record(fleet.devices[0]!);
  const url = `/api/devices/${encodeURIComponent(rec.deviceKey)}/tasks`;
  for (const body of [
    {},
    { type: 'explode' },
    { type: 'get' },
    { type: 'get', names: ['not a path'] },
    { type: 'get', names: Array.from({ length: 300 }, () => 'Device.X') },
    { type: 'set', values: [{ name: 'Device.A.', value: 'x' }] },
    { type: 'set', values: [{ name: 'Device.A', value: 'x', type: 'int' }] },
    { type: 'add', object: 'Device.NAT.PortMapping' },
    { type: 'download', url: 'file:///etc/passwd' },
    { type: 'refresh' },
  ]) {
    const r = await api(url, { method: 'POST', body: JSON.stringify(body) });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.ok(((await r.json()) as { error: string }).error);
  }
  assert.equal((await api(url, { method: 'POST', body: '{bad json' })).status, 400);
  assert.equal((await api('/api/devices/no-such/tasks', { method: 'POST', body: JSON.stringify({ type: 'factoryReset' }) })).status, 404);
  assert.equal((await fetch(base + url, { method: 'POST', body: '{"type":"factoryReset"}' })).status, 401);
  assert.equal((await api('/api/tasks/00000000-0000-0000-0000-000000000000')).status, 404);
});

test('every task is audited: one info line with the admin identity, paths but no values', async () => {
  const rec = await record(fleet.devices[0]!);
  const { id } = await post(rec.deviceKey, { type: 'set', values: [{ name: 'Device.DeviceInfo.ProvisioningCode', value: 'audit-V4lue' }] });
  const line = logs
    .split('\n')
    .filter((l) => l.includes(id))
    .map((l) => JSON.parse(l) as Record<string, unknown>)[0];
  assert.ok(line, 'an audit line names the task');
  assert.equal(line.audit, true);
  assert.equal(line.admin, 'admin-token');
  assert.equal(line.level, 30);
  assert.deepEqual(line.paths, ['Device.DeviceInfo.ProvisioningCode']);
  assert.doesNotMatch(logs, /audit-V4lue/);
  assert.doesNotMatch(logs, new RegExp(TOKEN));
});

test('DELETE a ghost device: its queued RPC is cancelled, it is gone, a second delete is 404', async () => {
  const key = '000000-GHOST-G1';
  await tp.proxy.store.upsertDevice({
    deviceKey: key,
    endpointId: 'os::000000-G1',
    deviceId: { manufacturer: 'Ghost', oui: '000000', productClass: 'GHOST', serialNumber: 'G1' },
    rootModel: 'Device',
    softwareVersion: null,
    connectionRequestUrl: 'http://127.0.0.1:1/nowhere',
    connReqUsername: null,
    connReqPassword: null,
    cpeUsername: null,
    cpePassword: null,
    periodicInformInterval: null,
    lastInform: null,
    lastInformEvents: [],
    registeredAt: new Date().toISOString(),
  });
  const { id } = await post(key, { type: 'reboot' });
  await until('the reboot queued', async () => (await tp.proxy.store.listQueuedRpcs(key)).length === 1);
  const del = await api(`/api/devices/${encodeURIComponent('os::000000-G1')}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.equal(await tp.proxy.store.getDevice(key), null);
  assert.deepEqual(await tp.proxy.store.listQueuedRpcs(key), []);
  await until('the task failed', async () => (await task(id)).status === 'failed');
  assert.match((await task(id)).error ?? '', /cancelled/);
  assert.equal((await api(`/api/devices/${encodeURIComponent(key)}`, { method: 'DELETE' })).status, 404);
  assert.match(logs, /"action":"delete device"/);
});

test('import devices from JSON and CSV with pre-provisioned CPE credentials; an imported device then Informs', async () => {
  const json = [
    { oui: '00d09e', productClass: 'IMP', serialNumber: 'IMP000001', manufacturer: 'Imp', cpeUsername: 'imp-1', cpePassword: 'Imp-Pa55-1' },
    { oui: '00D09E', productClass: 'IMP', serialNumber: 'IMP000002', rootModel: 'InternetGatewayDevice' },
  ];
  const r = await api('/api/devices/import', { method: 'POST', body: JSON.stringify(json) });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  assert.deepEqual(JSON.parse(text), { rows: 2, created: 2, updated: 0, unchanged: 0, withCredentials: 1 });
  const d1 = (await tp.proxy.store.getDeviceByEndpointId('os::00D09E-IMP000001'))!;
  assert.equal(d1.cpeUsername, 'imp-1');
  assert.equal(d1.cpePassword, 'Imp-Pa55-1');
  assert.equal(d1.lastInform, null);
  assert.equal((await tp.proxy.store.getDeviceByEndpointId('os::00D09E-IMP000002'))!.rootModel, 'InternetGatewayDevice');

  const csv = 'oui,productClass,serialNumber,cpeUsername,cpePassword\n00D09E,IMP,IMP000002,imp-2,"Imp,Pa55-2"\n00D09E,IMP,IMP000003,,\n';
  const c = await api('/api/devices/import', { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } });
  assert.equal(c.status, 200);
  assert.deepEqual(await c.json(), { rows: 2, created: 1, updated: 1, unchanged: 0, withCredentials: 1 });
  assert.equal((await tp.proxy.store.getDeviceByEndpointId('os::00D09E-IMP000002'))!.cpePassword, 'Imp,Pa55-2');
  for (const p of ['/api/devices?search=IMP', '/api/devices/os%3A%3A00D09E-IMP000001']) assert.doesNotMatch(await (await api(p)).text(), /Imp-Pa55|password/i);
  assert.doesNotMatch(logs, /Imp-Pa55|Imp,Pa55/);
  // Another device's username: 409, nothing written.
  const taken = await api('/api/devices/import', {
    method: 'POST',
    body: JSON.stringify([{ oui: '00D09E', serialNumber: 'IMP000009', cpeUsername: 'imp-1', cpePassword: 'x' }]),
  });
  assert.equal(taken.status, 409);
  assert.equal(await tp.proxy.store.getDeviceByEndpointId('os::00D09E-IMP000009'), null);

  for (const [body, type] of [
    ['[]', 'application/json'],
    ['[{"oui":"XYZ","serialNumber":"1"}]', 'application/json'],
    ['[{"oui":"00D09E"}]', 'application/json'],
    ['[{"oui":"00D09E","serialNumber":"1","cpeUsername":"u"}]', 'application/json'],
    ['oui,serial\n00D09E,1\n', 'text/csv'],
    ['oui,serialNumber\n00D09E,"1\n', 'text/csv'],
    ['oui,serialNumber\n00D09E,1\n00D09E,1\n', 'text/csv'],
    ['oui,serialNumber,cpeUsername,cpePassword\n00D09E,9,same,p\n00D09E,8,same,q\n', 'text/csv'],
  ]) {
    const b = await api('/api/devices/import', { method: 'POST', body, headers: { 'content-type': type } });
    assert.equal(b.status, 400, body);
  }

  // The imported (never seen) device Informs: the same record, its Endpoint ID kept.
  const imp = new Fleet({ acsUrl: tp.acsUrl, count: 1, model: 'tr181', serials: ['IMP000003'], oui: '00D09E', productClass: 'IMP', periodicIntervalS: null });
  await imp.start();
  try {
    const d3 = (await tp.proxy.store.getDeviceByEndpointId('os::00D09E-IMP000003'))!;
    assert.ok(d3.lastInform !== null);
    assert.ok(d3.connectionRequestUrl);
    const got = await run(d3.deviceKey, { type: 'get', names: ['Device.DeviceInfo.SerialNumber'] });
    assert.equal((got.result as { parameters: Array<{ value: string }> }).parameters[0]!.value, 'IMP000003');
  } finally {
    await imp.stop();
  }
});

test("PUT cpe-credentials sets a device's own ACS login; a username of another device is refused; audited without the password", async () => {
  const a = await record(fleet.devices[0]!);
  const b = await record(fleet.devices[1]!);
  const url = (k: string) => `/api/devices/${encodeURIComponent(k)}/cpe-credentials`;
  const r = await api(url(a.deviceKey), { method: 'PUT', body: JSON.stringify({ username: 'nbi-cpe-a', password: 'Cpe-Pa55-A' }) });
  assert.equal(r.status, 200);
  const stored = (await tp.proxy.store.getDevice(a.deviceKey))!;
  assert.equal(stored.cpeUsername, 'nbi-cpe-a');
  assert.equal(stored.cpePassword, 'Cpe-Pa55-A');
  assert.equal((await api(url(b.deviceKey), { method: 'PUT', body: JSON.stringify({ username: 'nbi-cpe-a', password: 'x' }) })).status, 409);
  assert.equal((await api(url(b.deviceKey), { method: 'PUT', body: JSON.stringify({ username: '' }) })).status, 400);
  assert.doesNotMatch(logs, /Cpe-Pa55-A/);
  assert.match(logs, /"action":"set CPE credentials"/);
  // Reset (DELETE) puts the device back on the shared login.
  assert.equal((await api(url(a.deviceKey), { method: 'DELETE' })).status, 200);
  assert.equal((await tp.proxy.store.getDevice(a.deviceKey))!.cpeUsername, null);
});

test('tags: PUT replaces them, GET /api/devices?tag= finds the devices, import sets them', async () => {
  const [a, b] = [await record(fleet.devices[0]!), await record(fleet.devices[1]!)];
  const put = (k: string, tags: unknown) => api(`/api/devices/${encodeURIComponent(k)}/tags`, { method: 'PUT', body: JSON.stringify({ tags }) });
  const r = await put(a.endpointId, ['lab', 'east', 'lab']);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { deviceKey: a.deviceKey, tags: ['east', 'lab'] });
  assert.equal((await put(b.deviceKey, ['lab'])).status, 200);
  type List = { total: number; devices: Array<{ deviceKey: string; tags: string[] }> };
  const lab = (await (await api('/api/devices?tag=lab')).json()) as List;
  assert.equal(lab.total, 2);
  assert.deepEqual(lab.devices.map((d) => d.deviceKey).sort(), [a.deviceKey, b.deviceKey].sort());
  const east = (await (await api('/api/devices?tag=east&limit=10')).json()) as List;
  assert.deepEqual(
    east.devices.map((d) => [d.deviceKey, d.tags]),
    [[a.deviceKey, ['east', 'lab']]],
  );
  assert.equal(((await (await api('/api/devices?tag=none')).json()) as List).total, 0);
  for (const bad of [['has space'], 'lab', Array.from({ length: 40 }, (_, i) => `t${i}`), ['x'.repeat(65)]])
    assert.equal((await put(a.deviceKey, bad)).status, 400);
  assert.equal((await api('/api/devices?tag=a%20b')).status, 400);
  assert.equal((await api('/api/devices?tag=lab&search=x')).status, 400);
  assert.equal((await put(a.deviceKey, [])).status, 200);
  assert.equal(((await (await api('/api/devices?tag=east')).json()) as List).total, 0);
  assert.match(logs, /"action":"set tags"/);

  const csv = 'oui,serialNumber,productClass,tags\n00D09E,TAG000001,IMP,imported;batch-7\n';
  assert.equal((await api('/api/devices/import', { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } })).status, 200);
  const batch = (await (await api('/api/devices?tag=batch-7')).json()) as List;
  assert.equal(batch.total, 1);
  assert.deepEqual(batch.devices[0]!.tags, ['batch-7', 'imported']);
  const bad = await api('/api/devices/import', { method: 'POST', body: JSON.stringify([{ oui: '00D09E', serialNumber: 'T2', tags: ['bad tag'] }]) });
  assert.equal(bad.status, 400);
});
