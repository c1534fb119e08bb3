/**
 * test/helpers/nginx.ts: nginx in front of two tiny node:http servers spreads requests
 * round-robin, skips an upstream that is down, passes Cookie and Authorization through, keeps a
 * session on the instance named by its cup_route cookie in sticky mode, and picks up a new upstream list on reload.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startNginx, type NginxHandle } from '../helpers/nginx.js';
import { findBinary } from '../helpers/brokers.js';

interface Upstream {
  name: string;
  server: http.Server;
  port: number;
  seen: http.IncomingHttpHeaders[];
}

async function upstream(name: string): Promise<Upstream> {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(req.headers);
      res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Upstream': name });
      res.end(name);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { name, server, port: (server.address() as AddressInfo).port, seen };
}

async function stopUpstream(u: Upstream): Promise<void> {
  await new Promise<void>((r) => {
    u.server.close(() => r());
    u.server.closeAllConnections(); // nginx's idle keep-alive connections too
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function post(url: string, headers: Record<string, string> = {}, body = 'x'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(body), ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const toStop: Array<() => Promise<void>> = [];
after(async () => {
  for (const s of toStop.reverse()) await s().catch(() => undefined);
  agent.destroy();
});

const skip = findBinary('nginx') ? false : 'nginx is not installed';

test('round-robin over two upstreams, Cookie/Authorization passed, a stopped upstream skipped, reload', { skip }, async () => {
  const a = await upstream('A');
  const b = await upstream('B');
  toStop.push(
    () => stopUpstream(a),
    () => stopUpstream(b),
  );
  const ngx = (await startNginx({
    upstreams: [
      { host: '127.0.0.1', port: a.port },
      { host: '127.0.0.1', port: b.port },
    ],
  })) as NginxHandle;
  assert.ok(ngx, 'nginx started');
  toStop.push(() => ngx.stop());
  assert.match(ngx.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);

  // Round-robin: 20 requests, 10 each (nginx's smooth weighted round-robin alternates).
  const counts: Record<string, number> = { A: 0, B: 0 };
  for (let i = 0; i < 20; i++) {
    const r = await post(ngx.url);
    assert.equal(r.status, 200);
    counts[r.body] = (counts[r.body] ?? 0) + 1;
  }
  assert.deepEqual(counts, { A: 10, B: 10 });

  // Headers arrive upstream unchanged.
  a.seen.length = 0;
  b.seen.length = 0;
  const auth = 'Digest username="cpe", realm="r", nonce="n1", uri="/", response="abc", qop=auth, nc=00000001, cnonce="c"';
  for (let i = 0; i < 2; i++) await post(ngx.url, { Cookie: 'session=s3cr3t-cookie', Authorization: auth });
  const seen = [...a.seen, ...b.seen];
  assert.equal(seen.length, 2);
  for (const h of seen) {
    assert.equal(h.cookie, 'session=s3cr3t-cookie');
    assert.equal(h.authorization, auth);
    assert.equal(h.connection, undefined, 'Connection "" toward the upstream (keep-alive pool)');
  }

  // Upstream B stops: every new request still succeeds, on A.
  await stopUpstream(b);
  for (let i = 0; i < 10; i++) {
    const r = await post(ngx.url);
    assert.equal(r.status, 200, `request ${i} after B stopped`);
    assert.equal(r.body, 'A');
  }

  // Reload with a new upstream list: C replaces B.
  const c = await upstream('C');
  toStop.push(() => stopUpstream(c));
  await ngx.reload([
    { host: '127.0.0.1', port: a.port },
    { host: '127.0.0.1', port: c.port },
  ]);
  const after: Record<string, number> = {};
  for (let i = 0; i < 10; i++) {
    const r = await post(ngx.url);
    assert.equal(r.status, 200);
    after[r.body] = (after[r.body] ?? 0) + 1;
  }
  assert.deepEqual(after, { A: 5, C: 5 });

  await ngx.stop();
  await assert.rejects(post(ngx.url), 'nginx is gone after stop()');
});

test('sticky: the cup_route cookie picks the instance, no cookie is round robin, a dead instance falls back', { skip }, async () => {
  const a = await upstream('A');
  const b = await upstream('B');
  toStop.push(
    () => stopUpstream(a),
    () => stopUpstream(b),
  );
  const ngx = (await startNginx({
    upstreams: [
      { host: '127.0.0.1', port: a.port, route: 'inst-a' },
      { host: '127.0.0.1', port: b.port, route: 'inst-b' },
    ],
    sticky: true,
  }))!;
  toStop.push(() => ngx.stop());
  const noCookie: Record<string, number> = {};
  for (let i = 0; i < 10; i++) {
    const r = (await post(ngx.url)).body;
    noCookie[r] = (noCookie[r] ?? 0) + 1;
  }
  assert.deepEqual(noCookie, { A: 5, B: 5 }, 'Informs (no cookie yet) are spread');
  for (let i = 0; i < 5; i++) {
    assert.equal((await post(ngx.url, { Cookie: 'session=s1; cup_route=inst-b' })).body, 'B');
    assert.equal((await post(ngx.url, { Cookie: 'cup_route=inst-a; session=s2' })).body, 'A');
  }
  await stopUpstream(b);
  assert.equal((await post(ngx.url, { Cookie: 'session=s1; cup_route=inst-b' })).body, 'A', 'the routed instance is down: a backup serves');
  await ngx.stop();
});
