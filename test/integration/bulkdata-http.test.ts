/**
 * HTTP delivery toward a collector that authenticates the agent with Digest (the extension: "the
 * Collection Server SHOULD authenticate the Agent using HTTP basic or digest authentication"): a
 * real node:http collector challenges, the proxy answers with a Digest the collector verifies; the
 * password never travels in clear; a wrong password gets the collector's 401 as the outcome.
 * A collector that answers slowly is cut at the delivery timeout with a clear outcome.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpDelivery, type HttpReport } from '../../src/bulkdata/http-delivery.js';
import { digestChallenge, parseAuthorization, verifyDigest } from '../../src/cwmp/http-auth.js';

async function collector(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bdc`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const delivery = (timeoutMs = 5000) => new HttpDelivery({ check: async (host) => ({ ok: true, address: host }), timeoutMs });

const report = (url: string, password: string): HttpReport => ({
  url,
  method: 'POST',
  username: 'cpe-1',
  password,
  gzip: false,
  useDateHeader: true,
  mediaType: 'application/json',
  reportFormat: 'ObjectHierarchy',
  body: '{"Report":[]}',
  agentEid: 'os::F0AD4E-BDH000001',
});

test('Digest: the proxy answers the collector challenge; the password is never sent', async (t) => {
  const seen: (string | undefined)[] = [];
  let bodies = 0;
  const c = await collector((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      seen.push(req.headers.authorization);
      const parsed = parseAuthorization(req.headers.authorization);
      if (parsed && verifyDigest(parsed, { method: req.method ?? '', password: 'collector-secret', realm: 'bdc', requestUri: req.url })) {
        bodies += Buffer.concat(chunks).toString() === '{"Report":[]}' ? 1 : 0;
        res.writeHead(200).end();
        return;
      }
      res.writeHead(401, { 'WWW-Authenticate': digestChallenge({ realm: 'bdc', nonce: `n${seen.length}` }) }).end();
    });
  });
  t.after(() => c.close());
  const d = delivery();
  const ok = await d.send(report(c.url, 'collector-secret'));
  assert.deepEqual(ok, { ok: true, status: 200 });
  assert.equal(bodies, 1, 'the body arrived with the authenticated request');
  assert.equal(seen[0], undefined, 'no credentials before the challenge');
  assert.match(seen[1]!, /^Digest /);
  assert.ok(!seen.some((h) => h?.includes('collector-secret') || h?.startsWith('Basic')), 'the password never travels');
  const wrong = await d.send(report(c.url, 'wrong'));
  assert.equal(wrong.ok, false);
  assert.equal((wrong as { status?: number }).status, 401);
});

test('a collector that does not answer is cut at the delivery timeout', async (t) => {
  const c = await collector(() => undefined);
  t.after(() => c.close());
  const out = await delivery(300).send(report(c.url, ''));
  assert.equal(out.ok, false);
  assert.match((out as { detail: string }).detail, /no answer within 300 ms/);
});
