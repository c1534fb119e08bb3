/**
 * Admin HTTP hardening (issue 14 item 12) over real sockets against a real proxy: the security
 * headers on every response (static page, API, errors), a CSP that admits the status page's own
 * import map by hash, /metrics behind the bearer token unless admin.metricsPublic, and the Host
 * allow-list that defeats DNS rebinding (a page of another site whose name now resolves to the
 * admin address sends that name as Host), on loopback and bound to every address.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import os from 'node:os';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';

const TOKEN = 'admin-hardening-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One GET with exactly the Host header given (fetch does not let a caller set Host). */
function get(port: number, path: string, headers: Record<string, string> = {}, address = '127.0.0.1'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: address, port, path, headers, agent: false, setHost: !('host' in headers) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

function assertHardened(r: Reply, what: string): void {
  assert.match(String(r.headers['content-security-policy']), /default-src 'none'/, what);
  assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/, what);
  assert.equal(r.headers['x-frame-options'], 'DENY', what);
  assert.equal(r.headers['x-content-type-options'], 'nosniff', what);
  assert.equal(r.headers['referrer-policy'], 'no-referrer', what);
}

describe('admin on loopback', () => {
  let tp: TestProxy;
  let port = 0;
  before(async () => {
    tp = await startTestProxy({ 'admin.token': TOKEN }, { admin: true });
    port = tp.proxy.adminPort;
  });
  after(() => tp?.stop());

  test('every response carries CSP, X-Frame-Options DENY, nosniff and Referrer-Policy', async () => {
    const cases: Array<[string, Record<string, string>, number]> = [
      ['/', {}, 200],
      ['/app.js', {}, 200],
      ['/vendor/preact/preact.mjs', {}, 200],
      ['/healthz', {}, 200],
      ['/readyz', {}, 200],
      ['/metrics', {}, 401],
      ['/metrics', auth, 200],
      ['/api/summary', {}, 401],
      ['/api/summary', auth, 200],
      ['/api/devices/nope', auth, 404],
      ['/no-such-page', {}, 404],
    ];
    for (const [p, h, status] of cases) {
      const r = await get(port, p, h);
      assert.equal(r.status, status, `${p}: ${r.body}`);
      assertHardened(r, p);
    }
    const refused = await get(port, '/healthz', { host: 'rebound.example' });
    assert.equal(refused.status, 403);
    assertHardened(refused, 'a refused Host');
  });

  test("the CSP admits the status page's inline import map by its hash, and no other inline script", async () => {
    const page = await get(port, '/');
    const inline = [...page.body.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/gi)].map((m) => m[1]!).filter((s) => s.trim() !== '');
    assert.equal(inline.length, 1, 'the page has one inline script (the import map)');
    const csp = String(page.headers['content-security-policy']);
    const scriptSrc = /script-src ([^;]*)/.exec(csp)![1]!.split(' ');
    assert.deepEqual(scriptSrc, ["'self'", `'sha256-${createHash('sha256').update(inline[0]!, 'utf8').digest('base64')}'`]);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  });

  test('/metrics needs the token: none and a wrong one get 401 with a Bearer challenge', async () => {
    for (const h of [
      {} as Record<string, string>,
      { authorization: 'Bearer wrong' },
      { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` },
    ]) {
      const r = await get(port, '/metrics', h);
      assert.equal(r.status, 401);
      assert.match(String(r.headers['www-authenticate']), /^Bearer /);
      assert.doesNotMatch(r.body, /cwmp_/);
    }
    const ok = await get(port, '/metrics', auth);
    assert.match(ok.body, /^# HELP /m);
  });

  test('DNS rebinding: a foreign Host is refused before any handler, even with the token; local names are served', async () => {
    for (const host of ['rebound.example', `rebound.example:${port}`, 'attacker.test.', '127.0.0.1.nip.io', '', 'bad host']) {
      const r = await get(port, '/api/summary', { ...auth, host });
      assert.equal(r.status, 403, `Host ${JSON.stringify(host)}: ${r.body}`);
      assert.match(r.body, /Host header is not an allowed name/);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`, `${os.hostname()}:${port}`, 'LOCALHOST.']) {
      const r = await get(port, '/healthz', { host });
      assert.equal(r.status, 200, `Host ${host}: ${r.body}`);
    }
  });
});

describe('admin bound to every address', () => {
  /** A non-loopback IPv4 address of this machine, if it has one. */
  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

  test('defaults: the machine’s addresses and names; a foreign name is refused', async (t) => {
    const tp = await startTestProxy({ 'admin.token': TOKEN, 'admin.host': '0.0.0.0' }, { admin: true });
    t.after(() => tp.stop());
    const port = tp.proxy.adminPort;
    assert.equal((await get(port, '/healthz', { host: `127.0.0.1:${port}` })).status, 200);
    assert.equal((await get(port, '/healthz', { host: `${os.hostname()}:${port}` })).status, 200);
    if (external) assert.equal((await get(port, '/healthz', { host: `${external}:${port}` }, external)).status, 200, external);
    assert.equal((await get(port, '/healthz', { host: `evil.example:${port}` })).status, 403);
  });

  test('admin.allowedHosts replaces the defaults; metricsPublic serves /metrics without the token', async (t) => {
    const tp = await startTestProxy(
      { 'admin.token': TOKEN, 'admin.host': '0.0.0.0', 'admin.allowedHosts': 'proxy.example, 192.0.2.7', 'admin.metricsPublic': true },
      { admin: true },
    );
    t.after(() => tp.stop());
    const port = tp.proxy.adminPort;
    assert.equal((await get(port, '/healthz', { host: `proxy.example:${port}` })).status, 200);
    assert.equal((await get(port, '/healthz', { host: '192.0.2.7' })).status, 200);
    assert.equal((await get(port, '/healthz', { host: `localhost:${port}` })).status, 403, 'not listed');
    const m = await get(port, '/metrics', { host: 'proxy.example' });
    assert.equal(m.status, 200);
    assert.match(m.body, /^# HELP /m);
    assert.equal((await get(port, '/api/summary', { host: 'proxy.example' })).status, 401, 'the API still needs the token');
  });

  test('"*" answers any Host (behind a proxy that checks it)', async (t) => {
    const tp = await startTestProxy({ 'admin.token': TOKEN, 'admin.allowedHosts': '*' }, { admin: true });
    t.after(() => tp.stop());
    assert.equal((await get(tp.proxy.adminPort, '/healthz', { host: 'anything.example' })).status, 200);
  });
});
