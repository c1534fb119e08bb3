/**
 * Trust at the CPE edge (issue 14 items 1, 4, 6, 7) over real sockets with the simulator: per-device
 * credentials provisioned in the bootstrap session and obeyed by the device; impostors with the
 * bootstrap login or with their own per-device login refused while the real device keeps working;
 * a pending pair accepted after a crash; the admin reset; the body of an unauthenticated request
 * never parsed; a replayed Digest header refused; a cookieless POST joining a session only on a
 * direct connection.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { deviceKeyOf } from '../../src/cwmp/device-id.js';
import { encodeSoap } from '../../src/cwmp/soap.js';
import { digestAuthorization, parseChallenge } from '../../src/cwmp/http-auth.js';
import type { DeviceIdStruct } from '../../src/cwmp/types.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { RawConnection } from '../helpers/raw-http.js';
import { inform as informFixture, postSoap, sessionCookieOf } from '../helpers/cwmp-fixtures.js';
import { STRICT_SIM } from '../helpers/sim.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { findBinary } from '../helpers/brokers.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';

const BOOT = { username: 'bootstrap', password: 'bootstrap-secret' };

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function post(port: number, body: string, headers: Record<string, string> = {}, agent: http.Agent | false = false): Promise<Reply> {
  const buf = Buffer.from(body, 'utf8');
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers: { 'Content-Type': 'text/xml', 'Content-Length': buf.length, ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(buf);
  });
}

/** An Inform of any DeviceId (what an impostor sends). */
function informXml(deviceId: DeviceIdStruct, crUrl = 'http://127.0.0.1:9/impostor'): string {
  const base = informFixture(deviceId.serialNumber, ['2 PERIODIC']);
  return encodeSoap({
    cwmpVersion: '1-0',
    id: '1',
    body: {
      ...base,
      deviceId,
      parameterList: base.parameterList.map((p) => (p.name.endsWith('ConnectionRequestURL') ? { ...p, value: crUrl } : p)),
    },
  });
}

/** Digest Authorization answering a fresh challenge of the ACS. */
async function digestFor(port: number, username: string, password: string, nc = 1): Promise<string> {
  const first = await post(port, '');
  assert.equal(first.status, 401);
  const challenge = parseChallenge(String(first.headers['www-authenticate']))[0]!;
  return digestAuthorization({ challenge, method: 'POST', uri: '/', username, password, nc });
}

describe('per-device CPE credentials (acs.auth.perDevice)', () => {
  let tp: TestProxy;
  let fleet: Fleet;
  let port: number;

  before(async () => {
    tp = await startTestProxy(
      {
        'acs.auth.mode': 'digest',
        'acs.auth.username': BOOT.username,
        'acs.auth.password': BOOT.password,
        'acs.auth.perDevice': true,
        'acs.sessionTimeoutMs': 3000,
        'admin.token': 'admin-token',
      },
      { admin: true },
    );
    port = tp.proxy.acsPort;
    fleet = new Fleet({
      quirks: STRICT_SIM,
      acsUrl: tp.acsUrl,
      count: 2,
      model: 'tr098',
      serialPrefix: 'PD',
      periodicIntervalS: null,
      auth: { mode: 'digest', username: BOOT.username, password: BOOT.password },
    });
    await fleet.start();
  });
  after(async () => {
    await fleet?.stop();
    await tp?.stop();
  });

  const sim = (i: number) => fleet.devices[i]!;

  test('the bootstrap session provisions ManagementServer.Username/Password (TR-098 path); the device uses them from then on', async () => {
    const d = sim(0);
    const rec = (await tp.proxy.store.getDevice(deviceKeyOf(d.deviceId)))!;
    assert.ok(rec.cpeUsername, 'the device has its own username after its first session');
    assert.ok(!rec.cpePendingUsername, 'pending was promoted when the device accepted it');
    assert.equal(d.getValue('InternetGatewayDevice.ManagementServer.Username'), rec.cpeUsername);
    assert.equal(d.getValue('InternetGatewayDevice.ManagementServer.Password'), rec.cpePassword);
    assert.notEqual(rec.cpeUsername, BOOT.username);
    const again = await d.inform(['2 PERIODIC']);
    assert.equal(again.ok, true, again.error);
    assert.ok(!again.rpcs.includes('SetParameterValues'), 'no second provisioning');
    // Both devices got different pairs.
    const other = (await tp.proxy.store.getDevice(deviceKeyOf(sim(1).deviceId)))!;
    assert.ok(other.cpeUsername && other.cpeUsername !== rec.cpeUsername);
  });

  test('an impostor with the bootstrap login or with its own per-device login gets 403; the real device keeps working', async () => {
    const victim = sim(0);
    const key = deviceKeyOf(victim.deviceId);
    const before = (await tp.proxy.store.getDevice(key))!;

    // The shared bootstrap login no longer opens this device's sessions.
    const withBoot = await post(port, informXml(victim.deviceId), { Authorization: await digestFor(port, BOOT.username, BOOT.password) });
    assert.equal(withBoot.status, 403);
    assert.match(withBoot.body, /credentials of its own/);

    // Device 1's own (valid) login with device 0's DeviceId.
    const thief = (await tp.proxy.store.getDevice(deviceKeyOf(sim(1).deviceId)))!;
    const withOwn = await post(port, informXml(victim.deviceId), { Authorization: await digestFor(port, thief.cpeUsername!, thief.cpePassword!) });
    assert.equal(withOwn.status, 403);
    assert.match(withOwn.body, /belong to another device/);

    // Nothing of the victim changed: not its URL, not its credentials.
    const after = (await tp.proxy.store.getDevice(key))!;
    assert.equal(after.connectionRequestUrl, before.connectionRequestUrl);
    assert.equal(after.cpeUsername, before.cpeUsername);
    // The real device still opens sessions and answers RPCs.
    const s = await victim.inform(['2 PERIODIC']);
    assert.equal(s.ok, true, s.error);
    const out = await tp.proxy.engine.enqueue(
      key,
      { method: 'GetParameterValues', parameterNames: ['InternetGatewayDevice.DeviceInfo.SerialNumber'] },
      { deadlineMs: 8000 },
    );
    assert.equal(out.kind, 'response');
    assert.ok(out.kind === 'response' && out.response.method === 'GetParameterValuesResponse');
    assert.equal(
      out.kind === 'response' && out.response.method === 'GetParameterValuesResponse' ? out.response.parameterList[0]?.value : '',
      victim.deviceId.serialNumber,
    );
  });

  test('a pending pair (stored before the SPV, answer lost in a crash) is accepted and promoted', async () => {
    const id: DeviceIdStruct = { manufacturer: 'Acme', oui: '00D09E', productClass: 'Box', serialNumber: 'PENDING-1' };
    const first = await post(port, informXml(id), { Authorization: await digestFor(port, BOOT.username, BOOT.password) });
    assert.equal(first.status, 200);
    const rec = (await tp.proxy.store.getDevice(deviceKeyOf(id)))!;
    assert.ok(rec.cpePendingUsername, 'pending pair stored before the SetParameterValues is sent');
    assert.equal(rec.cpeUsername, null);
    // The device applied it but the proxy never stored the answer: it comes back with the pending pair.
    const second = await post(port, informXml(id), { Authorization: await digestFor(port, rec.cpePendingUsername!, rec.cpePendingPassword!) });
    assert.equal(second.status, 200);
    const now = (await tp.proxy.store.getDevice(deviceKeyOf(id)))!;
    assert.equal(now.cpeUsername, rec.cpePendingUsername);
    assert.ok(!now.cpePendingUsername);
    const boot = await post(port, informXml(id), { Authorization: await digestFor(port, BOOT.username, BOOT.password) });
    assert.equal(boot.status, 403, 'the bootstrap login is over for it');
  });

  test('the admin reset lets the bootstrap login provision the device again', async () => {
    const id: DeviceIdStruct = { manufacturer: 'Acme', oui: '00D09E', productClass: 'Box', serialNumber: 'PENDING-1' };
    const key = deviceKeyOf(id);
    const r = await fetch(`${tp.adminUrl}/api/devices/${encodeURIComponent(key)}/cpe-credentials`, {
      method: 'DELETE',
      headers: { Authorization: 'Bearer admin-token' },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { deviceKey: key, reset: true });
    const boot = await post(port, informXml(id), { Authorization: await digestFor(port, BOOT.username, BOOT.password) });
    assert.equal(boot.status, 200);
    assert.ok((await tp.proxy.store.getDevice(key))!.cpePendingUsername, 'a new pending pair');
  });

  test('a replayed Authorization header is refused, for the same and for another DeviceId', async () => {
    const d = (await tp.proxy.store.getDevice(deviceKeyOf(sim(1).deviceId)))!;
    const captured = await digestFor(port, d.cpeUsername!, d.cpePassword!);
    const ok = await post(port, informXml(sim(1).deviceId, sim(1).connectionRequestUrl), { Authorization: captured });
    assert.equal(ok.status, 200);
    const same = await post(port, informXml(sim(1).deviceId, sim(1).connectionRequestUrl), { Authorization: captured });
    assert.equal(same.status, 401);
    const other = await post(port, informXml({ ...sim(1).deviceId, serialNumber: 'REPLAY-X' }), { Authorization: captured });
    assert.equal(other.status, 401);
    assert.equal(await tp.proxy.store.getDevice(deviceKeyOf({ ...sim(1).deviceId, serialNumber: 'REPLAY-X' })), null);
    // The shared login's nonce, used on with a higher nc for a second device: refused (bound to the first).
    const first = await post(port, '');
    const challenge = parseChallenge(String(first.headers['www-authenticate']))[0]!;
    const a = { manufacturer: 'Acme', oui: '00D09E', productClass: 'Box', serialNumber: 'NONCE-A' };
    const b = { ...a, serialNumber: 'NONCE-B' };
    const auth = (nc: number) => digestAuthorization({ challenge, method: 'POST', uri: '/', username: BOOT.username, password: BOOT.password, nc });
    assert.equal((await post(port, informXml(a), { Authorization: auth(1) })).status, 200);
    assert.equal((await post(port, informXml(b), { Authorization: auth(2) })).status, 403);
    // RFC 2069 (no qop, no cnonce) is refused.
    const { qop: _q, ...noQop } = challenge.params;
    const legacy = digestAuthorization({
      challenge: { ...challenge, params: noQop },
      method: 'POST',
      uri: '/',
      username: BOOT.username,
      password: BOOT.password,
    });
    assert.equal((await post(port, informXml({ ...a, serialNumber: 'LEGACY' }), { Authorization: legacy })).status, 401);
  });

  test('the body of an unauthenticated request is never parsed', async () => {
    const decodes = () => tp.proxy.decoder.decodes;
    const before = decodes();
    // Garbage credentials with a body that would fail to parse: 401 (a parsed body would be 400).
    const r1 = await post(port, '<not-xml', { Authorization: 'Digest username="x", realm="y", nonce="z", uri="/", response="0"' });
    assert.equal(r1.status, 401);
    // A wrong password on a real challenge, and a large body: 401 before the body is read.
    const wrong = await digestFor(port, BOOT.username, 'wrong');
    const r2 = await post(port, `<a>${'<b/>'.repeat(200_000)}</a>`, { Authorization: wrong });
    assert.equal(r2.status, 401);
    assert.equal(r2.headers.connection, 'close', 'a large unauthenticated body closes the connection');
    assert.equal(decodes(), before, 'nothing was decoded');
  });
});

describe('session cookie and trusted proxies (acs.trustedProxies)', () => {
  let direct: TestProxy;
  let behind: TestProxy;
  before(async () => {
    direct = await startTestProxy({ 'acs.auth.mode': 'none' });
    behind = await startTestProxy({ 'acs.auth.mode': 'none', 'acs.trustedProxies': ['127.0.0.0/8'] });
  });
  after(async () => {
    await direct?.stop();
    await behind?.stop();
  });

  const sessionThenCookieless = async (tp: TestProxy): Promise<{ inform: number; cookieless: number; withCookie: number }> => {
    const conn = await RawConnection.open(tp.proxy.acsPort);
    try {
      const id: DeviceIdStruct = { manufacturer: 'Acme', oui: '00D09E', productClass: 'Box', serialNumber: `CK-${tp.proxy.acsPort}` };
      const r = await postSoap(conn, informXml(id), { 'X-Forwarded-For': '198.51.100.7' });
      const cookie = sessionCookieOf(r);
      // Another client's cookieless POST pooled on the same upstream connection.
      const cookieless = await postSoap(conn, '', { 'X-Forwarded-For': '203.0.113.66' });
      const withCookie = await postSoap(conn, '', { 'X-Forwarded-For': '198.51.100.7', Cookie: cookie });
      return { inform: r.status, cookieless: cookieless.status, withCookie: withCookie.status };
    } finally {
      conn.destroy();
    }
  };

  test('direct connection: a cookieless POST continues the session of its connection', async () => {
    const r = await sessionThenCookieless(direct);
    assert.equal(r.inform, 200);
    assert.ok([200, 204].includes(r.cookieless), `got ${r.cookieless}`);
  });

  test('auth none: outside a session only acs.preAuthMaxBodyBytes of body is read, and not parsed beyond it', async () => {
    const before = direct.proxy.decoder.decodes;
    const big = `<a>${'<b/>'.repeat(30_000)}</a>`; // 120 KB > 64 KiB
    const r = await post(direct.proxy.acsPort, big);
    assert.equal(r.status, 413);
    assert.match(r.body, /before authentication/);
    assert.equal(direct.proxy.decoder.decodes, before);
  });

  test('behind a trusted proxy: the cookieless POST joins nothing; the cookie does', async () => {
    const r = await sessionThenCookieless(behind);
    assert.equal(r.inform, 200);
    assert.equal(r.cookieless, 400);
    assert.ok([200, 204].includes(r.withCookie), `got ${r.withCookie}`);
  });
});

describe('Digest replay across instances (nc tracked in Redis)', { skip: findBinary('redis-server') ? false : 'redis-server is not installed' }, () => {
  let redis: RedisHandle | null = null;
  const instances: TestProxy[] = [];
  before(async () => {
    redis = await startRedis();
    for (const name of ['ra', 'rb']) {
      instances.push(
        await startTestProxy({
          'acs.auth.mode': 'digest',
          'acs.auth.username': BOOT.username,
          'acs.auth.password': BOOT.password,
          'store.redis.url': redis!.url,
          'store.redis.prefix': 'replay:',
          'cluster.instanceId': name,
        }),
      );
    }
  });
  after(async () => {
    for (const i of instances) await i.stop();
    await redis?.stop();
  });

  test('a header accepted by one instance is refused by the other; a fresh nc on the same nonce is accepted', async () => {
    const [a, b] = [instances[0]!.proxy.acsPort, instances[1]!.proxy.acsPort];
    const id: DeviceIdStruct = { manufacturer: 'Acme', oui: '00D09E', productClass: 'Box', serialNumber: 'CLUSTER-R' };
    const first = await post(a, '');
    const challenge = parseChallenge(String(first.headers['www-authenticate']))[0]!;
    const auth = (nc: number) => digestAuthorization({ challenge, method: 'POST', uri: '/', username: BOOT.username, password: BOOT.password, nc });
    const captured = auth(1);
    assert.equal((await post(a, informXml(id), { Authorization: captured })).status, 200);
    assert.equal((await post(b, informXml(id), { Authorization: captured })).status, 401, 'replayed to the other instance');
    assert.equal((await post(b, informXml(id), { Authorization: auth(2) })).status, 200, 'the next nc of the same nonce, on the other instance');
  });
});
