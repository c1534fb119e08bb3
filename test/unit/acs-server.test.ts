/** The ACS HTTP front over real loopback HTTP: auth modes, limits and hostile input. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { AcsServer, type AcsServerOptions } from '../../src/cwmp/acs-server.js';
import { SessionEngine } from '../../src/cwmp/session.js';
import { DecodePool } from '../../src/cwmp/decode-pool.js';
import { encodeSoap, decodeSoap } from '../../src/cwmp/soap.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { silentLogger } from '../../src/app/log.js';
import { basicAuthorization, digestAuthorization, parseChallenge } from '../../src/cwmp/http-auth.js';
import type { Inform } from '../../src/cwmp/types.js';
import type { Store } from '../../src/store/types.js';

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function post(port: number, body: string | Buffer, headers: Record<string, string> = {}, agent?: http.Agent, method = 'POST'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const req = http.request(
      { host: '127.0.0.1', port, method, path: '/', agent: agent ?? false, headers: { 'Content-Type': 'text/xml', 'Content-Length': buf.length, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(buf);
  });
}

const informXml = (serial: string, value = 'plain', id = 'i1'): string => {
  const inform: Inform = {
    method: 'Inform',
    deviceId: { manufacturer: 'Acme', oui: 'A1B2C3', productClass: 'Gw', serialNumber: serial },
    event: [{ eventCode: '2 PERIODIC', commandKey: '' }],
    maxEnvelopes: 1,
    currentTime: '2026-11-25T10:00:00Z',
    retryCount: 0,
    parameterList: [{ name: 'Device.DeviceInfo.ProvisioningCode', value, type: 'xsd:string' }],
  };
  return encodeSoap({ cwmpVersion: '1-1', id, body: inform });
};

interface Harness {
  store: Store;
  engine: SessionEngine;
  server: AcsServer;
  port: number;
}

async function harness(auth: AcsServerOptions['auth'], maxBodyBytes = 64 * 1024): Promise<Harness> {
  const store = openSqliteStore(':memory:');
  const engine = new SessionEngine(
    store,
    { request: async () => ({ ok: true }), cancel: () => undefined },
    { sessionTimeoutMs: 2000, rpcDeadlineMs: 2000, holdRequests: false, setConnectionRequestCredentials: false, maxSessions: 100, endpointIdScheme: 'os' },
    silentLogger(),
  );
  const server = new AcsServer(engine, new DecodePool(0, 1 << 30), store, { host: '127.0.0.1', port: 0, maxBodyBytes, auth }, silentLogger());
  const port = await server.listen();
  return { store, engine, server, port };
}

async function close(h: Harness): Promise<void> {
  await h.server.close();
  await h.engine.close();
  await h.store.close();
}

let open: Harness;
before(async () => {
  open = await harness({ mode: 'none', realm: 'r', username: '', password: '' });
});
after(async () => close(open));

test('a full session over HTTP: Inform -> InformResponse with cookie -> empty POST -> 204', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const r = await post(open.port, informXml('H1'), {}, agent);
  assert.equal(r.status, 200);
  assert.match(String(r.headers['set-cookie']), /^session=[0-9a-f]{32}; Path=\/; HttpOnly/);
  assert.match(String(r.headers['content-type']), /text\/xml/);
  const env = decodeSoap(r.body).envelope!;
  assert.equal(env.body.method, 'InformResponse');
  assert.equal(env.cwmpVersion, '1-1');
  // The CPE drops the cookie; the kept-alive connection still identifies the session.
  const end = await post(open.port, '', {}, agent);
  assert.equal(end.status, 204);
  agent.destroy();
});

test('non-ASCII values round-trip and Content-Length counts bytes', async () => {
  const v = 'Grüße 日本 €';
  const r = await post(open.port, informXml('H2', v));
  assert.equal(r.status, 200);
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body, 'utf8'));
  const types = await open.engine.parameterTypes('A1B2C3-Gw-H2', ['Device.DeviceInfo.ProvisioningCode']);
  assert.equal(types.get('Device.DeviceInfo.ProvisioningCode'), 'xsd:string');
});

test('bad input gets a 4xx naming the problem and leaves other sessions untouched', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const live = await post(open.port, informXml('H3'), {}, agent);
  const cookie = String(live.headers['set-cookie']).split(';')[0]!;
  const p = open.engine.enqueue('A1B2C3-Gw-H3', { method: 'GetRPCMethods' });

  const cases: [string, string | Buffer, number, RegExp][] = [
    ['malformed XML', '<soap-env:Envelope><oops', 400, /malformed-xml/],
    ['non-SOAP body', '{"hello": "json"}', 400, /\(malformed-xml|not-soap\)/],
    ['XML that is not SOAP', '<?xml version="1.0"?><html><body>hi</body></html>', 400, /not-soap/],
    ['DOCTYPE / entity trick', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>', 400, /forbidden-dtd|DOCTYPE/],
    ['unknown cwmp namespace', informXml('H9').replace(/cwmp-1-1/g, 'cwmp-9-9'), 400, /unknown-namespace|cwmp-9-9/],
    ['Inform without DeviceId', informXml('H9').replace(/<DeviceId>.*<\/DeviceId>/s, ''), 400, /DeviceId/],
    ['response outside a session', encodeSoap({ cwmpVersion: '1-0', id: 'x', body: { method: 'RebootResponse' } }), 400, /outside a CWMP session/],
  ];
  for (const [name, body, status, re] of cases) {
    const r = await post(open.port, body);
    assert.equal(r.status, status, `${name}: ${r.body}`);
    assert.match(r.body, re, name);
  }
  const get = await post(open.port, '', {}, undefined, 'GET');
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  const big = await post(open.port, Buffer.alloc(70 * 1024, 0x20));
  assert.equal(big.status, 413);
  assert.match(big.body, /exceeds the limit/);

  // The live session still runs its queued RPC.
  const rpc = await post(open.port, '', { Cookie: cookie }, agent);
  assert.equal(decodeSoap(rpc.body).envelope!.body.method, 'GetRPCMethods');
  const id = decodeSoap(rpc.body).envelope!.id;
  const end = await post(
    open.port,
    encodeSoap({ cwmpVersion: '1-1', id, body: { method: 'GetRPCMethodsResponse', methodList: ['Inform'] } }),
    { Cookie: cookie },
    agent,
  );
  assert.equal(end.status, 204);
  assert.equal((await p).kind, 'response');
  agent.destroy();
});

test('an unsupported CPE request inside a session gets cwmp Fault 8000 and the session goes on', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const r = await post(open.port, informXml('H4'), {}, agent);
  const cookie = String(r.headers['set-cookie']).split(';')[0]!;
  // A vendor RPC no codec knows.
  const vendor = `<?xml version="1.0" encoding="UTF-8"?><soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-1"><soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">k1</cwmp:ID></soap-env:Header><soap-env:Body><cwmp:X_00256D_Hello><Arg>x</Arg></cwmp:X_00256D_Hello></soap-env:Body></soap-env:Envelope>`;
  const f = await post(open.port, vendor, { Cookie: cookie }, agent);
  assert.equal(f.status, 200, f.body);
  const fault = decodeSoap(f.body).envelope!;
  assert.equal(fault.body.method, 'Fault');
  assert.ok(fault.body.method === 'Fault' && fault.body.faultCode === 8000);
  assert.equal((await post(open.port, '', { Cookie: cookie }, agent)).status, 204);
  agent.destroy();
});

test('Basic auth: pre-emptive Basic works, wrong password gets 401 with a challenge', async () => {
  const h = await harness({ mode: 'basic', realm: 'acs', username: 'cpe', password: 'pw' });
  try {
    const none = await post(h.port, informXml('B1'));
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Basic realm="acs"/);
    const bad = await post(h.port, informXml('B1'), { Authorization: basicAuthorization('cpe', 'nope') });
    assert.equal(bad.status, 401);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ok = await post(h.port, informXml('B1'), { Authorization: basicAuthorization('cpe', 'pw') }, agent);
    assert.equal(ok.status, 200);
    // Later POSTs of the session need no credentials.
    const cookie = String(ok.headers['set-cookie']).split(';')[0]!;
    assert.equal((await post(h.port, '', { Cookie: cookie }, agent)).status, 204);
    agent.destroy();
  } finally {
    await close(h);
  }
});

test('Digest auth (qop=auth) with the shared pair and with per-device credentials', async () => {
  const h = await harness({ mode: 'digest', realm: 'acs', username: 'cpe', password: 'shared' });
  try {
    const digestPost = async (serial: string, user: string, pass: string): Promise<Res> => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const first = await post(h.port, informXml(serial), {}, agent);
      assert.equal(first.status, 401);
      const [ch] = parseChallenge(String(first.headers['www-authenticate']));
      assert.ok(ch);
      const auth = digestAuthorization({ challenge: ch, method: 'POST', uri: '/', username: user, password: pass, nc: 1, cnonce: 'c0ffee' });
      const r = await post(h.port, informXml(serial), { Authorization: auth }, agent);
      agent.destroy();
      return r;
    };
    assert.equal((await digestPost('D1', 'cpe', 'shared')).status, 200);
    assert.equal((await digestPost('D1', 'cpe', 'wrong')).status, 401);
    // Per-device credentials take precedence over the shared pair: refused with 403 (the shared login only bootstraps).
    const rec = (await h.store.getDevice('A1B2C3-Gw-D1'))!;
    await h.store.upsertDevice({ ...rec, cpeUsername: 'dev-d1', cpePassword: 'own-secret' });
    assert.equal((await digestPost('D1', 'cpe', 'shared')).status, 403);
    assert.equal((await digestPost('D1', 'dev-d1', 'own-secret')).status, 200);
  } finally {
    await close(h);
  }
});

test('Digest: a CPE answering with algorithm=MD5-sess (RFC 2617 3.2.2.2) gets in; a wrong password or a missing cnonce does not', async () => {
  const h = await harness({ mode: 'digest', realm: 'acs', username: 'cpe', password: 'shared' });
  try {
    const attempt = async (password: string, edit: (a: string) => string = (a) => a): Promise<number> => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const first = await post(h.port, informXml('MS1'), {}, agent);
      assert.equal(first.status, 401);
      const [ch] = parseChallenge(String(first.headers['www-authenticate']));
      assert.equal(ch?.params.algorithm, 'MD5');
      // The ACS offers MD5; CPEs that implement only MD5-sess answer with it all the same.
      const sess = { ...ch!, params: { ...ch!.params, algorithm: 'MD5-sess' } };
      const auth = digestAuthorization({ challenge: sess, method: 'POST', uri: '/', username: 'cpe', password, nc: 1, cnonce: '0a4f113b' });
      assert.match(auth, /algorithm=MD5-sess/);
      const r = await post(h.port, informXml('MS1'), { Authorization: edit(auth) }, agent);
      agent.destroy();
      return r.status;
    };
    assert.equal(await attempt('shared'), 200);
    assert.equal(await attempt('wrong'), 401);
    assert.equal(await attempt('shared', (a) => a.replace(/, cnonce="[^"]*"/, '')), 401);
  } finally {
    await close(h);
  }
});
