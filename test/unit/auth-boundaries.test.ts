/**
 * Authentication and authorization boundaries, on a real Proxy:
 *  - CPE Digest on every Inform; a session cookie of device A replayed with an Inform of device B
 *    needs B's own credentials and starts B's session (never acts in A's);
 *  - an expired Digest nonce gets stale=true (from the server, and from authenticate() with a clock);
 *  - USP: unknown from_id answered 7006 (untrusted); a controller with a WebSocket secret must
 *    present it; WebSocket ?eid= differing from from_id dropped; read-only controller gets 7006 on
 *    Set/Add/Delete/Operate;
 *  - no configured or generated secret appears in the trace-level log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Writable } from 'node:stream';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig } from '../../src/app/config.js';
import { createLogger } from '../../src/app/log.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { authenticate, digestAuthorization, digestResponse, makeNonce, parseChallenge } from '../../src/cwmp/http-auth.js';
import { decodeMsg, decodeRecord, encodeRecord, noSessionRecord, type Msg } from '../../src/usp/codec/record.js';
import { runUspCli } from '../../src/tools/controller/cli.js';
import { fixture } from '../helpers/paths.js';
import { deviceKeyOf } from '../../src/cwmp/device-id.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::auth-ctl';
const RO = 'proto::auth-ro';
const SECRETS = {
  acsPassword: 'acsPw-Zq81-secret',
  adminToken: 'adminTok-Xv42-secret',
  mqttPassword: 'mqttPw-Lm07-secret',
  stompPasscode: 'stompPc-Rr19-secret',
  devicePassword: 'devBPw-Kk55-secret',
  wsSecret: 'wsSecret-Hh23-secret',
};
const REALM = 'auth-test';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-auth-'));
let logText = '';
let proxy: CwmpUspProxy;
let fleet: Fleet;
let agent = '';

before(async () => {
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'acs.host': '127.0.0.1',
      'acs.port': 0,
      'acs.auth.mode': 'digest',
      'acs.auth.realm': REALM,
      'acs.auth.username': 'cpe',
      'acs.auth.password': SECRETS.acsPassword,
      'admin.enabled': true,
      'admin.host': '127.0.0.1',
      'admin.port': 0,
      'admin.token': SECRETS.adminToken,
      'usp.mqtt.url': '',
      'usp.mqtt.password': SECRETS.mqttPassword,
      'usp.stomp.host': '',
      'usp.stomp.passcode': SECRETS.stompPasscode,
      'usp.websocket.host': '127.0.0.1',
      'usp.websocket.port': 0,
      controllers: [
        { endpointId: CTL, role: 'full', websocket: { secret: SECRETS.wsSecret } },
        { endpointId: RO, role: 'read-only' },
      ],
      'log.level': 'trace',
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logText += chunk.toString('utf8');
      cb();
    },
  });
  proxy = new CwmpUspProxy(config, createLogger('trace', sink));
  await proxy.start();
  await proxy.startAdmin();
  fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
    count: 1,
    model: 'tr181',
    serialPrefix: 'AU',
    periodicIntervalS: null,
    auth: { mode: 'digest', username: 'cpe', password: SECRETS.acsPassword },
  });
  await fleet.start();
  agent = (await proxy.store.listDevices())[0]!.endpointId;
});

after(async () => {
  await fleet?.stop();
  await proxy?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ CWMP side

const INFORM = readFileSync(fixture('soap', 'cpe', 'Inform.1-0.xml'), 'utf8');
const informOf = (serial: string): string => INFORM.replace(/<SerialNumber>[^<]*<\/SerialNumber>/, `<SerialNumber>${serial}</SerialNumber>`);

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}
function post(body: string, headers: Record<string, string> = {}): Promise<Reply> {
  const buf = Buffer.from(body, 'utf8');
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: proxy.acsPort,
        method: 'POST',
        path: '/',
        agent: false,
        headers: { 'Content-Type': 'text/xml', 'Content-Length': buf.length, ...headers },
      },
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
const cookieOf = (r: Reply): string | null => /session=([^;]+)/.exec(String(r.headers['set-cookie'] ?? ''))?.[1] ?? null;

/** Inform with a fresh challenge answered for (username, password); the reply of the authenticated POST. */
async function informWithDigest(serial: string, username: string, password: string, extra: Record<string, string> = {}): Promise<Reply> {
  const first = await post(informOf(serial), extra);
  assert.equal(first.status, 401, 'an Inform without credentials must be challenged');
  const challenge = parseChallenge(String(first.headers['www-authenticate']))[0]!;
  const authorization = digestAuthorization({ challenge, method: 'POST', uri: '/', username, password });
  return post(informOf(serial), { ...extra, Authorization: authorization });
}

test('Digest on every Inform; a cookie of device A replayed with an Inform of device B needs B credentials', async () => {
  const a = await informWithDigest('AUTH-A', 'cpe', SECRETS.acsPassword);
  assert.equal(a.status, 200);
  const cookieA = cookieOf(a);
  assert.ok(cookieA, 'session cookie for A');

  // Device B is registered with its own credentials (a per-device pair takes precedence).
  const a0 = (await proxy.store.listDevices()).find((d) => d.deviceId.serialNumber === 'AUTH-A')!;
  const idB = { ...a0.deviceId, serialNumber: 'AUTH-B' };
  await proxy.store.upsertDevice({
    ...a0,
    deviceKey: deviceKeyOf(idB),
    endpointId: a0.endpointId.replace('AUTH-A', 'AUTH-B'),
    deviceId: idB,
    cpeUsername: 'dev-b',
    cpePassword: SECRETS.devicePassword,
  });

  // A's authenticated cookie, no credentials, B's Inform: challenged.
  const replayNoAuth = await post(informOf('AUTH-B'), { Cookie: `session=${cookieA}` });
  assert.equal(replayNoAuth.status, 401);
  // A's cookie with the shared (A's) credentials: not B's credentials any more (403: B has its own).
  const replayShared = await informWithDigest('AUTH-B', 'cpe', SECRETS.acsPassword, { Cookie: `session=${cookieA}` });
  assert.equal(replayShared.status, 403);
  // B's own credentials with A's cookie: the cookie is bound to A, refused.
  const crossed = await informWithDigest('AUTH-B', 'dev-b', SECRETS.devicePassword, { Cookie: `session=${cookieA}` });
  assert.equal(crossed.status, 403);
  // B's own credentials: B's session, a new cookie, not A's.
  const ok = await informWithDigest('AUTH-B', 'dev-b', SECRETS.devicePassword);
  assert.equal(ok.status, 200);
  const cookieB = cookieOf(ok);
  assert.ok(cookieB && cookieB !== cookieA, "B must get its own session, not act in A's");
  assert.match(ok.body, /InformResponse/);
  // A's session is untouched: its cookie still continues A's session (A's bootstrap RPCs or 204).
  assert.ok([200, 204].includes((await post('', { Cookie: `session=${cookieA}` })).status));
  // A second Inform of A on its still-valid nonce-less path: every Inform authenticates.
  assert.equal((await post(informOf('AUTH-A'))).status, 401);
});

test('an expired Digest nonce gets stale=true (server and authenticate() with an injected clock)', async () => {
  const secret = (proxy.acs as unknown as { nonceSecret: Buffer }).nonceSecret;
  const old = makeNonce(secret, Date.now() - 3_600_000);
  const authorization = digestAuthorization({
    challenge: { scheme: 'Digest', params: { realm: REALM, nonce: old, qop: 'auth', algorithm: 'MD5' } },
    method: 'POST',
    uri: '/',
    username: 'cpe',
    password: SECRETS.acsPassword,
  });
  const r = await post(informOf('AUTH-STALE'), { Authorization: authorization });
  assert.equal(r.status, 401);
  assert.match(String(r.headers['www-authenticate']), /stale=true/);
  const fresh = parseChallenge(String(r.headers['www-authenticate']))[0]!;
  assert.notEqual(fresh.params.nonce, old);

  const key = Buffer.from('k');
  const t0 = 1_700_000_000_000;
  const nonce = makeNonce(key, t0);
  const response = digestResponse({ username: 'u', realm: 'r', password: 'p', method: 'POST', uri: '/', nonce, qop: 'auth', nc: '00000001', cnonce: 'c' });
  const header = `Digest username="u", realm="r", nonce="${nonce}", uri="/", response="${response}", qop=auth, nc=00000001, cnonce="c"`;
  const opts = { mode: 'digest' as const, realm: 'r', method: 'POST', requestUri: '/', lookup: () => 'p', nonceSecret: key, nonceMaxAgeMs: 300_000 };
  assert.equal((await authenticate(header, { ...opts, now: t0 + 299_000 })).ok, true);
  const late = await authenticate(header, { ...opts, now: t0 + 301_000 });
  assert.equal(late.ok, false);
  assert.ok(!late.ok && late.reason === 'stale-nonce' && /stale=true/.test(late.challenge));
});

// ------------------------------------------------------------------ USP side

const getMsg = (id: string): Msg => ({
  header: { msgId: id, msgType: 'GET' },
  body: { msgBody: 'request', request: { reqType: 'get', get: { paramPaths: ['Device.LocalAgent.EndpointID'] } } },
});

function openWs(eid: string | null, secret?: string): Promise<WebSocket> {
  const port = proxy.usp.ws!.serverAddress()!.port;
  const q = eid === null ? '' : `?eid=${encodeURIComponent(eid)}`;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/usp/${encodeURIComponent(agent)}${q}`, ['v1.usp'], {
    perMessageDeflate: false,
    handshakeTimeout: 10_000,
    ...(secret ? { headers: { Authorization: `Bearer ${secret}` } } : {}),
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** Sends a Get from `from` and resolves with the drop reason (the endpoint's event), failing if a response arrives. */
async function expectDropped(ws: WebSocket, from: string, id: string): Promise<string> {
  const answered: string[] = [];
  const onMsg = (data: Buffer): void => {
    try {
      const rec = decodeRecord(new Uint8Array(data));
      if (rec.recordType.kind === 'noSessionContext' && decodeMsg(rec.recordType.payload).header.msgId === id) answered.push(id);
    } catch {
      // ignore
    }
  };
  ws.on('message', onMsg);
  const reason = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the Record was neither answered nor dropped within 20 s')), 20_000);
    proxy.usp.endpoint.once('dropped', (d) => {
      clearTimeout(timer);
      resolve(d.reason);
    });
  });
  ws.send(encodeRecord(noSessionRecord(from, agent, getMsg(id))));
  const r = await reason;
  // A legitimate Get on the same connection afterwards is answered; the dropped one never is.
  ws.off('message', onMsg);
  assert.deepEqual(answered, []);
  return r;
}

async function expectAnswered(ws: WebSocket, from: string, id: string): Promise<Msg> {
  return new Promise<Msg>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer within 20 s')), 20_000);
    const onMsg = (data: Buffer): void => {
      try {
        const rec = decodeRecord(new Uint8Array(data));
        if (rec.recordType.kind !== 'noSessionContext') return;
        const m = decodeMsg(rec.recordType.payload);
        if (m.header.msgId !== id) return;
        clearTimeout(timer);
        ws.off('message', onMsg);
        resolve(m);
      } catch {
        // ignore
      }
    };
    ws.on('message', onMsg);
    ws.send(encodeRecord(noSessionRecord(from, agent, getMsg(id))));
  });
}

test('USP: an unknown from_id gets 7006; a controller with a secret must present it; a from_id differing from the proved one is dropped', async () => {
  const plain = await openWs(null);
  const untrusted = await expectAnswered(plain, 'proto::intruder', 'x-1');
  assert.equal(untrusted.body.error?.errCode, 7006);
  assert.match(untrusted.body.error?.errMsg ?? '', /proto::intruder is not configured/);
  // CTL has a secret: without it, its Endpoint ID is refused in the handshake, and its Records on an unproved connection are dropped.
  await assert.rejects(openWs(CTL), /HTTP 401/);
  await assert.rejects(openWs(CTL, 'wrong'), /HTTP 401/);
  assert.match(await expectDropped(plain, CTL, 'x-0'), /did not authenticate/);
  plain.close();
  const ws = await openWs(CTL, SECRETS.wsSecret);
  assert.match(await expectDropped(ws, RO, 'x-2'), /does not match the Endpoint ID of the connection/);
  assert.match(await expectDropped(ws, 'proto::intruder', 'x-3'), /does not match/);
  assert.equal((await expectAnswered(ws, CTL, 'x-4')).header.msgType, 'GET_RESP');
  ws.close();
  await new Promise((r) => ws.once('close', r));
});

test('USP: a read-only controller gets 7006 on Set/Add/Delete/Operate, and may Get', async () => {
  const port = proxy.usp.ws!.serverAddress()!.port;
  const tr = ['--mtp', 'ws', '--url', `ws://127.0.0.1:${port}/usp`, '--to', agent, '--from', RO, '--timeout', '10000'];
  const run = async (args: string[]): Promise<{ code: number; out: string }> => {
    let out = '';
    const code = await runUspCli([...args, ...tr], { out: (s) => (out += s), err: (s) => (out += s) });
    return { code, out };
  };
  for (const args of [
    ['set', 'Device.LocalAgent.Controller.1.', 'ProvisioningCode=x', '--required'],
    ['add', 'Device.LocalAgent.Controller.1.BootParameter.', 'ParameterName=Device.DeviceInfo.SerialNumber'],
    ['delete', 'Device.LocalAgent.Controller.1.'],
    ['operate', 'Device.Reboot()'],
  ]) {
    const r = await run(args);
    assert.equal(r.code, 1, `${args[0]}: ${r.out}`);
    assert.match(r.out, /7006/, `${args[0]}: ${r.out}`);
  }
  const get = await run(['get', 'Device.LocalAgent.EndpointID']);
  assert.equal(get.code, 0, get.out);
});

// ------------------------------------------------------------------ secrets in logs

test('no secret (configured or generated) appears in the trace-level log', async () => {
  const device = (await proxy.store.listDevices()).find((d) => d.endpointId === agent)!;
  assert.ok(device.connReqPassword, 'BOOTSTRAP set connection request credentials');
  // A connection request with the generated credentials (the device is not in session).
  const out = await proxy.engine.enqueue(
    device.deviceKey,
    { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.SerialNumber'] },
    { deadlineMs: 20_000 },
  );
  assert.ok(out);
  assert.ok(fleet.totals().connectionRequests >= 1);
  // Failed logins with secrets in the Authorization header, and an admin call with the token.
  await post(informOf('AUTH-LOG'), { Authorization: `Basic ${Buffer.from(`cpe:${SECRETS.acsPassword}`).toString('base64')}` });
  assert.ok(proxy.adminPort > 0);
  await new Promise<void>((resolve, reject) => {
    http
      .get(
        { host: '127.0.0.1', port: proxy.adminPort, path: '/api/devices', headers: { Authorization: `Bearer ${SECRETS.adminToken}` }, agent: false },
        (res) => {
          res.resume();
          res.on('end', resolve);
        },
      )
      .on('error', reject);
  });
  await new Promise((r) => setTimeout(r, 100)); // let the log sink take the last lines
  assert.ok(logText.length > 1000, 'the trace log captured the run');
  const secrets: Record<string, string> = { ...SECRETS, connReqPassword: device.connReqPassword! };
  for (const [name, value] of Object.entries(secrets)) {
    assert.ok(!logText.includes(value), `${name} appears in the log`);
    assert.ok(!logText.includes(Buffer.from(value).toString('base64')), `${name} appears base64-encoded in the log`);
  }
  console.log(`auth-boundaries: ${logText.split('\n').length} log lines checked for ${Object.keys(secrets).length} secrets`);
});
