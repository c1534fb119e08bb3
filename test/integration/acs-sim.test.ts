/**
 * The ACS and the in-repo CPE simulator over real HTTP on loopback: 100 devices, Digest
 * both ways (CPE -> ACS and ACS -> CPE connection requests).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig, type Config } from '../../src/app/config.js';
import { silentLogger } from '../../src/app/log.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { deviceKeyOf } from '../../src/cwmp/device-id.js';
import { RpcError } from '../../src/cwmp/session.js';
import { STRICT_SIM } from '../helpers/sim.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-it-'));
let port = 0;
let proxy: CwmpUspProxy;
let fleet: Fleet;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

function config(): Config {
  return loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'acs.host': '127.0.0.1',
      'acs.port': port,
      'acs.auth.mode': 'digest',
      'usp.websocket.port': 0,
      'usp.websocket.host': '127.0.0.1',
      'acs.auth.username': 'cpe',
      'acs.auth.password': 'fleet-secret',
      'acs.sessionTimeoutMs': 5000,
      'acs.connectionRequest.timeoutMs': 2000,
      'acs.connectionRequest.retries': 1,
      'acs.connectionRequest.retryDelayMs': 50,
      'acs.connectionRequest.deadlineMs': 10_000,
      'log.level': 'silent',
    },
  });
}

async function startProxy(): Promise<CwmpUspProxy> {
  const p = new CwmpUspProxy(config(), silentLogger());
  await p.start();
  return p;
}

before(async () => {
  port = await freePort();
  proxy = await startProxy();
  fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${port}/`,
    count: 100,
    model: 'tr181',
    serialPrefix: 'IT',
    auth: { mode: 'digest', username: 'cpe', password: 'fleet-secret' },
    connReqPort: 0,
    connReqHost: '127.0.0.1',
    periodicIntervalS: null,
    bootstrap: true,
    concurrency: 50,
    timers: { rebootDelayMs: 50, transferDelayMs: 50, diagnosticsDelayMs: 50, retryMinWaitS: 0.05, retryMultiplier: 2000 },
  });
  await fleet.start();
});

after(async () => {
  await fleet?.stop();
  await proxy?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const keyOf = (i: number): string => deviceKeyOf(fleet.devices[i]!.deviceId);

test('bootstrap registers all 100 devices and sets per-device connection request credentials', async () => {
  assert.equal(await proxy.store.countDevices(), 100);
  const seen = new Set<string>();
  for (const d of fleet.devices) {
    const rec = await proxy.store.getDevice(deviceKeyOf(d.deviceId));
    assert.ok(rec, `device ${d.serial} registered`);
    assert.equal(rec.rootModel, 'Device');
    assert.ok(rec.connReqUsername && rec.connReqPassword, `${d.serial} has connection request credentials`);
    assert.equal(d.getValue('Device.ManagementServer.ConnectionRequestUsername'), rec.connReqUsername);
    assert.equal(d.getValue('Device.ManagementServer.ConnectionRequestPassword'), rec.connReqPassword);
    assert.equal(rec.connectionRequestUrl, d.connectionRequestUrl);
    seen.add(rec.connReqPassword);
  }
  assert.equal(seen.size, 100, 'every device has its own secret');
});

test('a GetParameterValues enqueued for an idle device is delivered through a connection request', async () => {
  const d = fleet.devices[7]!;
  const before = d.stats.connectionRequests;
  const outcome = await proxy.engine.enqueue(keyOf(7), {
    method: 'GetParameterValues',
    parameterNames: ['Device.DeviceInfo.SerialNumber', 'Device.ManagementServer.PeriodicInformInterval'],
  });
  assert.equal(outcome.kind, 'response');
  assert.ok(outcome.kind === 'response' && outcome.response.method === 'GetParameterValuesResponse');
  const values = Object.fromEntries(outcome.response.parameterList.map((p) => [p.name, p]));
  assert.equal(values['Device.DeviceInfo.SerialNumber']!.value, d.serial);
  assert.equal(values['Device.ManagementServer.PeriodicInformInterval']!.type, 'xsd:unsignedInt');
  assert.equal(d.stats.connectionRequests, before + 1);
});

test('several RPCs for one idle device share one connection request and one session', async () => {
  const d = fleet.devices[8]!;
  const before = d.stats.connectionRequests;
  const sessionsBefore = d.stats.sessions;
  const outcomes = await Promise.all([
    proxy.engine.enqueue(keyOf(8), { method: 'GetParameterNames', parameterPath: 'Device.DeviceInfo.', nextLevel: true }),
    proxy.engine.enqueue(keyOf(8), {
      method: 'SetParameterValues',
      parameterList: [{ name: 'Device.DeviceInfo.ProvisioningCode', value: 'Ünïcode & <x>', type: 'xsd:string' }],
      parameterKey: 'pk-1',
    }),
    proxy.engine.enqueue(keyOf(8), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.ProvisioningCode'] }),
  ]);
  assert.deepEqual(
    outcomes.map((o) => o.kind),
    ['response', 'response', 'response'],
  );
  const gpv = outcomes[2]!;
  assert.ok(gpv.kind === 'response' && gpv.response.method === 'GetParameterValuesResponse');
  assert.equal(gpv.response.parameterList[0]!.value, 'Ünïcode & <x>', 'non-ASCII round-trips');
  assert.equal(d.stats.connectionRequests, before + 1);
  assert.equal(d.stats.sessions, sessionsBefore + 1);
});

test('a fault comes back as a typed fault', async () => {
  const o = await proxy.engine.enqueue(keyOf(9), { method: 'GetParameterNames', parameterPath: 'Device.No.Such.', nextLevel: true });
  assert.equal(o.kind, 'fault');
  assert.ok(o.kind === 'fault');
  assert.equal(o.fault.faultCode, 9005);
  const spv = await proxy.engine.enqueue(keyOf(9), {
    method: 'SetParameterValues',
    parameterList: [
      { name: 'Device.DeviceInfo.SerialNumber', value: 'x', type: 'xsd:string' },
      { name: 'Device.ManagementServer.PeriodicInformInterval', value: 'abc', type: 'xsd:unsignedInt' },
    ],
    parameterKey: '',
  });
  assert.ok(spv.kind === 'fault');
  assert.equal(spv.fault.faultCode, 9003);
  const byName = Object.fromEntries(spv.fault.setParameterValuesFault.map((f) => [f.parameterName, f.faultCode]));
  assert.equal(byName['Device.DeviceInfo.SerialNumber'], 9008);
  assert.equal(byName['Device.ManagementServer.PeriodicInformInterval'], 9007);
});

test('RPCs to many devices at once run concurrently', async () => {
  const outcomes = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      proxy.engine.enqueue(keyOf(20 + i), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.SoftwareVersion'] }),
    ),
  );
  assert.ok(outcomes.every((o) => o.kind === 'response'));
});

test('Reboot completes and the device comes back with 1 BOOT + M Reboot', async () => {
  const d = fleet.devices[10]!;
  const informs: string[][] = [];
  const onInform = ({ device, inform }: { device: { deviceKey: string }; inform: { event: { eventCode: string }[] } }): void => {
    if (device.deviceKey === keyOf(10)) informs.push(inform.event.map((e) => e.eventCode));
  };
  proxy.engine.on('inform', onInform);
  const o = await proxy.engine.enqueue(keyOf(10), { method: 'Reboot', commandKey: 'rb-1' });
  assert.deepEqual(o, { kind: 'response', response: { method: 'RebootResponse' } });
  const deadline = Date.now() + 5000;
  while (!informs.some((e) => e.includes('1 BOOT')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  proxy.engine.off('inform', onInform);
  const boot = informs.find((e) => e.includes('1 BOOT'));
  assert.ok(boot, `boot Inform seen (got ${JSON.stringify(informs)})`);
  assert.ok(boot.includes('M Reboot'));
  assert.ok(d.stats.sessions > 0);
});

test('an unreachable device fails with "device unreachable" at the deadline', async () => {
  const key = keyOf(11);
  const rec = (await proxy.store.getDevice(key))!;
  await proxy.store.upsertDevice({ ...rec, connectionRequestUrl: 'http://127.0.0.1:9/nowhere' });
  await assert.rejects(
    proxy.engine.enqueue(key, { method: 'GetRPCMethods' }, { deadlineMs: 400 }),
    (e: unknown) => e instanceof RpcError && e.reason === 'unreachable' && /unreachable/.test(e.message),
  );
  await proxy.store.upsertDevice(rec);
});

test('a queued RPC survives a proxy restart', async () => {
  const d = fleet.devices[12]!;
  const key = keyOf(12);
  const rec = (await proxy.store.getDevice(key))!;
  // Make the device unreachable so the RPC stays queued, then restart the proxy.
  await proxy.store.upsertDevice({ ...rec, connectionRequestUrl: 'http://127.0.0.1:9/nowhere' });
  const lost = proxy.engine.enqueue(key, { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.HardwareVersion'] }, { deadlineMs: 60_000 });
  lost.catch(() => undefined);
  await new Promise((r) => setTimeout(r, 100));
  await proxy.stop();
  await assert.rejects(lost, (e: unknown) => e instanceof RpcError && e.reason === 'shutdown');

  proxy = await startProxy();
  const results: { method: string; kind?: string }[] = [];
  proxy.engine.on('rpcResult', (r) => results.push({ method: r.rpc.method, kind: r.outcome?.kind }));
  const gpvBefore = d.stats.rpcsReceived['GetParameterValues'] ?? 0;
  await d.inform(['2 PERIODIC']); // the device's next periodic session carries the queued RPC
  assert.equal(d.stats.rpcsReceived['GetParameterValues'], gpvBefore + 1);
  assert.deepEqual(results, [{ method: 'GetParameterValues', kind: 'response' }]);
  assert.equal((await proxy.store.getDevice(key))!.connectionRequestUrl, d.connectionRequestUrl, 'the Inform refreshed the URL');
});
