/**
 * Device identity at the CPE edge (issue 14 item 2), over real sockets with the simulator: DeviceIds
 * that joined to one registry key before, serial numbers long enough to be cut before, and a second
 * ProductClass with the same OUI and serial (ops:: per device, or 403 under
 * usp.endpointIdCollision: refuse). The first device keeps working in every case.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/app/log.js';
import { deviceKeyOf } from '../../src/cwmp/device-id.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, get } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { STRICT_SIM } from '../helpers/sim.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';

const CTL = 'proto::identity-ctl';

async function withProxy(
  overrides: Record<string, unknown>,
  fn: (p: TestProxy, logs: () => string, start: (oui: string, productClass: string, serial: string) => Promise<Fleet>) => Promise<void>,
): Promise<void> {
  let logs = '';
  const p = await startTestProxy(
    { controllers: [{ endpointId: CTL, role: 'full' }], ...overrides },
    { logger: createLogger('info', { write: (s: string) => void (logs += s) } as never) },
  );
  const fleets: Fleet[] = [];
  const start = async (oui: string, productClass: string, serial: string): Promise<Fleet> => {
    const f = new Fleet({ quirks: STRICT_SIM, acsUrl: p.acsUrl, count: 1, model: 'tr181', serials: [serial], oui, productClass, periodicIntervalS: null });
    fleets.push(f);
    await f.start();
    return f;
  };
  try {
    await fn(p, () => logs, start);
  } finally {
    for (const f of fleets) await f.stop();
    await p.stop();
  }
}

/** The serial number the device reports through its agent: the agent reaches that very device. */
async function serialThrough(p: TestProxy, agent: string): Promise<string> {
  const c = new UspControllerClient({ agentId: agent, endpointId: CTL, transport: { mtp: 'ws', url: p.uspUrl }, timeoutMs: 10_000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const m: Msg = await c.request(get(['Device.DeviceInfo.SerialNumber']));
    assert.equal(m.body.msgBody, 'response', JSON.stringify(m.body));
    return m.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults[0]!.resultParams.SerialNumber!;
  } finally {
    await c.close();
  }
}

test('DeviceIds that joined to one key and serials longer than 50 characters get distinct keys and Endpoint IDs', async () => {
  await withProxy({}, async (p, _logs, start) => {
    const long = 'L'.repeat(60);
    const pairs = [
      [
        ['00D09E', 'IGD', 'X-123'],
        ['00D09E', 'IGD-X', '123'],
      ],
      [
        ['00D09E', 'HGW', `${long}-A`],
        ['00D09E', 'HGW', `${long}-B`],
      ],
    ] as const;
    for (const [[ouiA, pcA, snA], [ouiB, pcB, snB]] of pairs) {
      const a = (await start(ouiA, pcA, snA)).devices[0]!;
      const b = (await start(ouiB, pcB, snB)).devices[0]!;
      assert.equal(a.stats.sessionsOk, 1, a.stats.lastSessionError);
      assert.equal(b.stats.sessionsOk, 1, b.stats.lastSessionError);
      const ra = await p.proxy.store.getDevice(deviceKeyOf(a.deviceId));
      const rb = await p.proxy.store.getDevice(deviceKeyOf(b.deviceId));
      assert.ok(ra && rb, 'both devices are registered');
      assert.notEqual(ra.deviceKey, rb.deviceKey);
      assert.notEqual(ra.endpointId, rb.endpointId);
      assert.equal(ra.deviceId.productClass, pcA);
      assert.equal(rb.deviceId.productClass, pcB);
      // Each agent reaches its own device.
      assert.equal(await serialThrough(p, ra.endpointId), snA);
      assert.equal(await serialThrough(p, rb.endpointId), snB);
    }
    const longOnes = (await p.proxy.store.listDevices()).filter((d) => d.deviceId.serialNumber.startsWith(long));
    assert.deepEqual(longOnes.map((d) => d.endpointId).sort(), [`os::00D09E-${long}-A`, `os::00D09E-${long}-B`], 'not cut at 50 characters');
  });
});

test('a second ProductClass with the same OUI and serial is presented as ops:: (R-ARC.2a); both devices work', async () => {
  await withProxy({}, async (p, logs, start) => {
    const first = (await start('00D09E', 'HGW', 'SQ1')).devices[0]!;
    const second = (await start('00D09E', 'STB', 'SQ1')).devices[0]!;
    assert.equal(second.stats.sessionsOk, 1, second.stats.lastSessionError);
    assert.equal((await p.proxy.store.getDevice(deviceKeyOf(first.deviceId)))?.endpointId, 'os::00D09E-SQ1');
    assert.equal((await p.proxy.store.getDevice(deviceKeyOf(second.deviceId)))?.endpointId, 'ops::00D09E-STB-SQ1');
    assert.match(logs(), /os::00D09E-SQ1 belongs to another ProductClass; registering as ops::00D09E-STB-SQ1/);
    // Both agents answer, each from its device (the STB's Get travels to the STB).
    const before = second.stats.rpcsReceived.GetParameterValues ?? 0;
    assert.equal(await serialThrough(p, 'ops::00D09E-STB-SQ1'), 'SQ1');
    assert.ok((second.stats.rpcsReceived.GetParameterValues ?? 0) > before);
    assert.equal(await serialThrough(p, 'os::00D09E-SQ1'), 'SQ1');
  });
});

test('usp.endpointIdCollision: refuse answers the squatting duplicate 403 with a log line, never 500; the first device keeps working', async () => {
  await withProxy({ 'usp.endpointIdCollision': 'refuse' }, async (p, logs, start) => {
    const first = (await start('00D09E', 'HGW', 'SQ2')).devices[0]!;
    const dup = (await start('00D09E', 'STB', 'SQ2')).devices[0]!;
    assert.equal(dup.stats.sessionsOk, 0);
    assert.match(dup.stats.lastSessionError ?? '', /HTTP 403/);
    assert.match(logs(), /"reason":"Endpoint ID os::00D09E-SQ2 belongs to another device \(HGW\)".*"msg":"CWMP device refused"/);
    assert.equal(await p.proxy.store.getDevice(deviceKeyOf(dup.deviceId)), null);
    // Again: still 403 (not 500), and the first device is untouched.
    await dup.inform(['2 PERIODIC']);
    assert.match(dup.stats.lastSessionError ?? '', /HTTP 403/);
    await first.inform(['2 PERIODIC']);
    assert.equal(first.stats.sessionsFailed, 0, first.stats.lastSessionError);
    assert.equal(await serialThrough(p, 'os::00D09E-SQ2'), 'SQ2');
  });
});
