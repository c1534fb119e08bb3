/**
 * XMPP connection requests (TR-069 Annex K) through a real prosody on loopback: a simulated
 * device behind NAT (HTTP connection requests refused) logs in to the XMPP server and reports its
 * JID with a VALUE CHANGE; a USP Get to it is answered after the proxy's connectionRequest IQ;
 * wrong credentials are refused by the CPE; with the XMPP server gone, XMPP requests fail at once
 * and the proxy keeps serving.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { deviceKeyOf } from '../../src/cwmp/device-id.js';
import { UspControllerClient, get } from '../../src/tools/controller/client.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { startProsody, type ProsodyHandle } from '../helpers/prosody.js';

const CTL = 'proto::xmpp-ctl';
const SKIP = 'prosody not installed (apt-get install prosody; CI installs it with scripts/ci-brokers.sh)';
let xmppd: ProsodyHandle | null = null;
let tp: TestProxy;
let fleet: Fleet;
let client: UspControllerClient | undefined;

async function until(what: string, f: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function metric(labels: Record<string, string>): Promise<number> {
  const text = await tp.proxy.metrics.registry.metrics();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('cwmp_connection_requests_total{')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

before(async () => {
  xmppd = await startProsody({ acs: 'acs-secret', xmp000001: 'dev-secret' });
  if (!xmppd) return;
  tp = await startTestProxy({
    'acs.connectionRequest.xmpp.enabled': true,
    'acs.connectionRequest.xmpp.service': xmppd.service,
    'acs.connectionRequest.xmpp.domain': xmppd.domain,
    'acs.connectionRequest.xmpp.username': 'acs',
    'acs.connectionRequest.xmpp.password': 'acs-secret',
    'acs.connectionRequest.xmpp.timeoutMs': 2000,
    'acs.connectionRequest.timeoutMs': 500,
    'acs.connectionRequest.retries': 0,
    'acs.connectionRequest.deadlineMs': 8000,
    controllers: [{ endpointId: CTL, role: 'full' }],
  });
  fleet = new Fleet({
    acsUrl: tp.acsUrl,
    count: 1,
    model: 'tr181',
    serialPrefix: 'XMP',
    periodicIntervalS: null,
    nat: { mode: 'xmpp', xmpp: { service: xmppd.service, domain: xmppd.domain, password: 'dev-secret' } },
  });
  await fleet.start();
});

after(async () => {
  await client?.close();
  await fleet?.stop();
  await tp?.stop();
  await xmppd?.stop();
});

test('a USP Get to a device behind NAT is answered through an XMPP connection request', async (t) => {
  if (!xmppd) return t.skip(SKIP);
  const d = fleet.devices[0]!;
  const key = deviceKeyOf(d.deviceId);
  const xmpp = tp.proxy.xmpp!;
  await until('the proxy logged in and the JID reported', () => xmpp.connected && xmpp.jids.get(key) === 'xmp000001@localhost/cwmp');
  await until('the VALUE CHANGE session over', () => !tp.proxy.engine.isInSession(key) && !d.busy);
  const rec = (await tp.proxy.store.getDevice(key))!;
  client = new UspControllerClient({ agentId: rec.endpointId, endpointId: CTL, transport: { mtp: 'ws', url: tp.uspUrl }, timeoutMs: 10_000 });
  await client.connect();
  const r = await client.request(get(['Device.DeviceInfo.SerialNumber']), 10_000);
  assert.equal(r.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams.SerialNumber, d.serial);
  assert.equal(fleet.xmpp(d.serial)!.stats.connectionRequests, 1);
  assert.equal(await metric({ transport: 'http', outcome: 'refused' }), 1);
  assert.equal(await metric({ transport: 'xmpp', outcome: 'ok' }), 1);
});

test('wrong credentials: the CPE answers not-authorized, counted as auth-failed', async (t) => {
  if (!xmppd) return t.skip(SKIP);
  const d = fleet.devices[0]!;
  const key = deviceKeyOf(d.deviceId);
  await until('the session over', () => !tp.proxy.engine.isInSession(key) && !d.busy);
  const r = await tp.proxy.connReq.request(key, d.connectionRequestUrl, { username: 'someone', password: 'wrong' });
  assert.equal(r.ok, false);
  assert.equal(await metric({ transport: 'xmpp', outcome: 'auth-failed' }), 1);
  assert.equal(fleet.xmpp(d.serial)!.stats.refused, 1);
});

test('the XMPP server gone: XMPP requests fail at once as xmpp-offline, the proxy keeps running', async (t) => {
  if (!xmppd) return t.skip(SKIP);
  const d = fleet.devices[0]!;
  const key = deviceKeyOf(d.deviceId);
  await xmppd.stop();
  await until('the proxy to see the XMPP server gone', () => !tp.proxy.xmpp!.connected);
  const t0 = Date.now();
  const rec = (await tp.proxy.store.getDevice(key))!;
  const r = await tp.proxy.connReq.request(key, d.connectionRequestUrl, { username: rec.connReqUsername!, password: rec.connReqPassword! });
  assert.equal(r.ok, false);
  assert.equal(await metric({ transport: 'xmpp', outcome: 'xmpp-offline' }), 1);
  assert.ok(Date.now() - t0 < 2000, 'no wait for an XMPP server that is down');
  assert.equal((await fetch(tp.acsUrl)).status > 0, true, 'the ACS still answers');
});
