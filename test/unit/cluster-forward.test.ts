/**
 * A POST of a session another instance serves is relayed to it over HTTP (src/cluster/forward.ts):
 * real sockets on loopback, a real CPE body. The serving instance stands as a plain HTTP server
 * that records what reached it; the relaying one is an HTTP server whose handler asks the
 * SessionForwarder first, as AcsServer does.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { silentLogger } from '../../src/app/log.js';
import { acsUrlFor, type RelaySettings, routeOf, SessionForwarder, VIA } from '../../src/cluster/forward.js';
import { acsUrlOfLiveness, livenessValue } from '../../src/cluster/cluster.js';
import { watchConnectionDrop } from '../../src/cwmp/connection-drop.js';

const GPV_RESPONSE = readFileSync(new URL('../../../test/fixtures/soap/cpe/GetParameterValuesResponse.1-2.xml', import.meta.url));
const SID = 'a'.repeat(32);

interface Seen {
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  url: string;
}
const seen: Seen[] = [];
const serverSockets = new Set<Socket>();
let dropped = 0;
const serving = http.createServer((req, res) => {
  // What AcsServer does with every request: a close of a CPE's connection would be reported.
  watchConnectionDrop(req, res, () => dropped++);
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    seen.push({ headers: req.headers, body: Buffer.concat(chunks), url: req.url ?? '' });
    res.writeHead(200, { 'Content-Type': 'text/xml; charset="utf-8"', 'Set-Cookie': 'x=1; Path=/' });
    res.end('<soap:Envelope/>');
  });
});
serving.on('connection', (s: Socket) => {
  serverSockets.add(s);
  s.once('close', () => serverSockets.delete(s));
});

let held = new Set<string>();
let urls = new Map<string, string>();
const fw = new SessionForwarder({ instanceId: 'b', holds: (sid) => held.has(sid), acsUrlOf: (id) => urls.get(id), log: silentLogger() }, 60_000);
let local = 0;
const relaying = http.createServer((req, res) => {
  if (fw.forward(req, res)) return;
  local++;
  req.resume();
  res.end('served here');
});

const port = (s: http.Server): number => (s.address() as AddressInfo).port;

before(async () => {
  await new Promise<void>((r) => serving.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => relaying.listen(0, '127.0.0.1', r));
});
after(() => {
  fw.close();
  relaying.close();
  serving.close();
});

function post(
  headers: http.OutgoingHttpHeaders,
  body: Buffer | string = '',
  target = '/acs',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: port(relaying), path: target, method: 'POST', headers: { ...headers, 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('routeOf reads the session and route cookies as CPEs echo them', () => {
  assert.deepEqual(routeOf(`session=${SID}; cup_route=bench-1`), { session: SID, route: 'bench-1' });
  assert.deepEqual(routeOf(`$Version=1, cup_route="a%40b"; Path=/, session="${SID}"; Path=/`), { session: SID, route: 'a@b' });
  assert.equal(routeOf(`session=${SID}`), null, 'no route: nothing to relay to');
  assert.equal(routeOf('cup_route=a'), null, 'no session: an Inform, served here');
  assert.equal(routeOf(`session=${SID}; cup_route=%E0%A4%A`), null, 'bad percent-encoding');
  assert.equal(routeOf(`session=${SID}; cup_route=a; x=${'y'.repeat(9000)}`), null, 'oversized header');
  assert.equal(routeOf(undefined), null);
});

test('a POST of a session served elsewhere reaches that instance whole, and its answer comes back', async () => {
  urls = new Map([['a', `http://127.0.0.1:${port(serving)}`]]);
  held = new Set();
  seen.length = 0;
  const r = await post(
    { Cookie: `session=${SID}; cup_route=a`, 'Content-Type': 'text/xml', SOAPAction: '', Authorization: 'Digest username="cpe"' },
    GPV_RESPONSE,
  );
  assert.equal(r.status, 200);
  assert.equal(r.body, '<soap:Envelope/>');
  assert.equal(r.headers['set-cookie']?.[0], 'x=1; Path=/');
  assert.equal(seen.length, 1);
  const s = seen[0]!;
  assert.deepEqual(s.body, GPV_RESPONSE, 'the body byte for byte');
  assert.equal(s.url, '/acs');
  assert.equal(s.headers.cookie, `session=${SID}; cup_route=a`);
  assert.equal(s.headers.authorization, 'Digest username="cpe"', 'its credentials are checked there as for the CPE');
  assert.equal(s.headers.soapaction, '');
  assert.equal(s.headers.via, `1.1 ${VIA}`);
  assert.equal(s.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(fw.counts.relayed, 1);
});

test('the relay connection closing is never taken for a CPE dropping its session', async () => {
  // Several relayed POSTs over the pooled connections, then the pool closes them (FIN while idle).
  for (let i = 0; i < 3; i++) assert.equal((await post({ Cookie: `session=${SID}; cup_route=a` }, GPV_RESPONSE)).status, 200);
  const closed = [...serverSockets].map((s) => new Promise((r) => s.once('close', r)));
  assert.ok(closed.length > 0);
  fw.close();
  await Promise.all(closed);
  assert.equal(dropped, 0, 'Via and X-Forwarded-For mark the connection as a proxy');
});

test('served here: its own session, a route naming itself or no live instance, a POST relayed once already, a target that names a host', async () => {
  urls = new Map([['a', `http://127.0.0.1:${port(serving)}`]]);
  seen.length = 0;
  local = 0;
  held = new Set([SID]);
  await post({ Cookie: `session=${SID}; cup_route=a` });
  held = new Set();
  await post({ Cookie: `session=${SID}; cup_route=b` });
  await post({ Cookie: `session=${SID}; cup_route=c` });
  await post({ Cookie: `session=${SID}; cup_route=a`, Via: `1.1 ${VIA}` });
  await post({ Cookie: 'cup_route=a' });
  // The CPE's request target never picks the host relayed to (absolute form, protocol-relative).
  await post({ Cookie: `session=${SID}; cup_route=a` }, '', `http://127.0.0.1:${port(serving)}/x`);
  await post({ Cookie: `session=${SID}; cup_route=a` }, '', `//127.0.0.1:${port(serving)}/x`);
  assert.equal(local, 7);
  assert.equal(seen.length, 0);
});

test('an instance that cannot be reached: 503 for that POST, then no relay to it for a while', async () => {
  const gone = http.createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  const deadPort = port(gone);
  await new Promise((r) => gone.close(r));
  urls = new Map([['dead', `http://127.0.0.1:${deadPort}`]]);
  local = 0;
  const failed = fw.counts.failed;
  const r = await post({ Cookie: `session=${SID}; cup_route=dead` }, GPV_RESPONSE);
  assert.equal(r.status, 503);
  assert.equal(r.headers['retry-after'], '1');
  assert.equal(fw.counts.failed, failed + 1);
  const again = await post({ Cookie: `session=${SID}; cup_route=dead` }, GPV_RESPONSE);
  assert.equal(again.body, 'served here', 'the next one moves the session here instead');
  assert.equal(local, 1);
});

test('liveness values carry the ACS URL; anything else gives none', () => {
  assert.equal(acsUrlOfLiveness(livenessValue(1765000000000, 'http://10.0.0.5:7547')), 'http://10.0.0.5:7547');
  assert.equal(acsUrlOfLiveness(livenessValue(1765000000000, '')), undefined, 'relays off on that instance');
  assert.equal(acsUrlOfLiveness('1765000000000'), undefined, 'an older version');
  assert.equal(acsUrlOfLiveness('1 file:///etc/passwd'), undefined);
  assert.equal(acsUrlOfLiveness('1 https://10.0.0.5:7547'), undefined, 'relays are plain HTTP');
  assert.equal(acsUrlOfLiveness('1 http://'), undefined);
  assert.equal(acsUrlOfLiveness(`1 http://h/${'x'.repeat(600)}`), undefined);
  assert.equal(acsUrlOfLiveness(null), undefined);
});

test('the advertised URL: set, none, or the ACS address when it is one address over plain HTTP', () => {
  const c = (host: string, acsUrl = '', cert = ''): RelaySettings => ({ acs: { host, tls: { cert } }, cluster: { acsUrl } });
  assert.equal(acsUrlFor(c('0.0.0.0', 'http://proxy1:7547'), 7547), 'http://proxy1:7547');
  assert.equal(acsUrlFor(c('127.0.0.1', 'none'), 7547), '');
  assert.equal(acsUrlFor(c('127.0.0.1'), 40001), 'http://127.0.0.1:40001');
  assert.equal(acsUrlFor(c('fd00::5'), 7547), 'http://[fd00::5]:7547');
  assert.equal(acsUrlFor(c('0.0.0.0'), 7547), '', 'a wildcard address says nothing to the others');
  assert.equal(acsUrlFor(c('10.0.0.5', '', '/etc/cert.pem'), 7547), '', 'TLS: set cluster.acsUrl');
});
