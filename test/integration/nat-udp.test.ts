/**
 * CPEs behind NAT reached by UDP connection requests (TR-069 Annex G, TR-111 Part 2): the proxy's
 * STUN server on loopback, simulated devices whose HTTP connection requests are refused. The ACS
 * sets the STUN settings on BOOTSTRAP, learns each binding, and a USP Get wakes the device over UDP;
 * after the NAT changes the binding (BINDING-CHANGE), the next Get follows it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { encodeBindingRequest } from '../../src/cwmp/stun/codec.js';
import { deviceKeyOf } from '../../src/cwmp/device-id.js';
import { UspControllerClient, get } from '../../src/tools/controller/client.js';
import { TestController } from '../helpers/test-controller.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';

const CTL = 'proto::nat-ctl';
let tp: TestProxy;
let fleet: Fleet;
let ctl: TestController;
let client: UspControllerClient;

async function until(what: string, f: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = await tp.proxy.metrics.registry.metrics();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

before(async () => {
  tp = await startTestProxy({
    'acs.connectionRequest.udp.enabled': true,
    'acs.connectionRequest.udp.host': '127.0.0.1',
    'acs.connectionRequest.udp.port': 0,
    'acs.connectionRequest.udp.stunServerAddress': '127.0.0.1',
    'acs.connectionRequest.udp.keepAliveS': 1,
    'acs.connectionRequest.udp.stunSecret': 'stun-test-secret',
    'acs.connectionRequest.udp.timeoutMs': 3000,
    'acs.connectionRequest.udp.retransmitMs': 200,
    'acs.connectionRequest.timeoutMs': 500,
    'acs.connectionRequest.retries': 0,
    'acs.connectionRequest.deadlineMs': 8000,
    controllers: [{ endpointId: CTL, role: 'full' }],
  });
  fleet = new Fleet({ acsUrl: tp.acsUrl, count: 2, model: 'tr181', serialPrefix: 'NAT', periodicIntervalS: null, nat: { mode: 'udp' } });
  await fleet.start();
});

after(async () => {
  await client?.close();
  await fleet?.stop();
  await tp?.stop();
});

test('BOOTSTRAP sets the STUN parameters and the STUN server learns each binding', async () => {
  const nat = tp.proxy.nat!;
  for (const d of fleet.devices) {
    const key = deviceKeyOf(d.deviceId);
    // The proxy learns the binding from the Binding Request; the device its address from the answer, a moment later.
    await until(
      `binding of ${d.serial}`,
      () => nat.bindings.get(key)?.port === fleet.nat(d.serial)!.port && d.getValue('Device.ManagementServer.UDPConnectionRequestAddress') !== '',
    );
    assert.equal(d.getValue('Device.ManagementServer.STUNEnable'), 'true');
    assert.equal(d.getValue('Device.ManagementServer.STUNUsername'), key);
    assert.equal(d.getValue('Device.ManagementServer.STUNServerPort'), String(nat.stun.port));
    assert.equal(d.getValue('Device.ManagementServer.UDPConnectionRequestAddress'), `127.0.0.1:${fleet.nat(d.serial)!.port}`);
    assert.equal(nat.bindings.get(key)?.source, 'stun');
    // Signed Binding Requests (MESSAGE-INTEGRITY with the STUNPassword the ACS set).
    assert.equal(d.getValue('Device.ManagementServer.STUNPassword'), nat.stunPassword(key));
  }
  assert.equal(nat.stun.dropped.unauthenticated, 0);
});

test('a forged Binding Request (no MESSAGE-INTEGRITY) does not move a binding', async () => {
  const nat = tp.proxy.nat!;
  const d = fleet.devices[1]!;
  const key = deviceKeyOf(d.deviceId);
  const before = nat.bindings.get(key)!.port;
  const forger = dgram.createSocket('udp4');
  await new Promise<void>((r) => forger.bind(0, '127.0.0.1', r));
  const tid = Buffer.alloc(16, 7);
  tid.writeUInt32BE(0x2112a442, 0);
  forger.send(encodeBindingRequest({ transactionId: tid, username: key, connectionRequestBinding: true, bindingChange: true }), nat.stun.port, '127.0.0.1');
  forger.send(encodeBindingRequest({ transactionId: tid, username: key, connectionRequestBinding: true, password: 'guess' }), nat.stun.port, '127.0.0.1');
  await until('both dropped', () => nat.stun.dropped.unauthenticated === 2);
  forger.close();
  assert.equal(nat.bindings.get(key)!.port, before);
});

test('a USP Get to a device behind NAT is answered through a UDP connection request; a binding change is followed', async () => {
  const d = fleet.devices[0]!;
  const rec = await tp.proxy.store.getDevice(deviceKeyOf(d.deviceId));
  assert.ok(rec);
  client = new UspControllerClient({ agentId: rec.endpointId, endpointId: CTL, transport: { mtp: 'ws', url: tp.uspUrl }, timeoutMs: 10_000 });
  await client.connect();
  ctl = new TestController(client);
  const sim = fleet.nat(d.serial)!;

  const first = await ctl.req(get(['Device.DeviceInfo.SerialNumber']));
  assert.equal(first.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams.SerialNumber, d.serial);
  assert.equal(sim.stats.udpConnectionRequests, 1, 'woken once over UDP');
  assert.equal(sim.stats.udpRejected, 0);
  assert.equal(await metric('cwmp_connection_requests_total', { transport: 'http', outcome: 'refused' }), 1);
  assert.equal(await metric('cwmp_connection_requests_total', { transport: 'udp', outcome: 'ok' }), 1);

  // The NAT moves the device to a new port; its next Binding Request says BINDING-CHANGE.
  const old = sim.port;
  await sim.rebind();
  assert.notEqual(sim.port, old);
  await until('the new binding', () => tp.proxy.nat!.bindings.get(rec.deviceKey)?.port === sim.port);
  // The first session over (else the Get would ride it and need no wake-up).
  await until('the first session to end', () => !tp.proxy.engine.isInSession(rec.deviceKey) && !d.busy);
  const second = await ctl.req(get(['Device.DeviceInfo.SerialNumber']));
  assert.equal(second.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams.SerialNumber, d.serial);
  assert.equal(sim.stats.udpConnectionRequests, 2, 'the second wake-up reached the new binding');
  // The device was last reached over UDP: HTTP is not tried first again.
  assert.equal(await metric('cwmp_connection_requests_total', { transport: 'http' }), 1);
  assert.equal(await metric('cwmp_connection_requests_total', { transport: 'udp', outcome: 'ok' }), 2);
  // The admin API's device view says how the device is reached.
  assert.deepEqual(tp.proxy.adminPorts().reach!(rec), { transports: ['udp', 'http'], udpConnectionRequestAddress: `127.0.0.1:${sim.port}`, jabberId: null });
});
