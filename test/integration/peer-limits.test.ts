/**
 * Limits per source address on the ACS listener (issue 14 item 5; acs.limits.perAddress), over
 * real sockets from distinct loopback addresses (127.0.0.2, 127.0.0.3, ...; loopback is not
 * exempt here): one address holding many idle connections gets the excess reset while a CPE at
 * another address completes its session, and one address opening sessions in a loop gets 503 +
 * Retry-After while another address is served.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig } from '../../src/app/config.js';
import { silentLogger } from '../../src/app/log.js';
import { fixture } from '../helpers/paths.js';

const MAX_CONNECTIONS = 20;
const SESSIONS_PER_MINUTE = 5;
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-peer-limits-'));
let proxy: CwmpUspProxy;
let port = 0;
const INFORM = readFileSync(fixture('soap', 'cpe', 'Inform.1-0.xml'), 'utf8');
const informOf = (serial: string): string => INFORM.replace(/<SerialNumber>[^<]*<\/SerialNumber>/, `<SerialNumber>${serial}</SerialNumber>`);

before(async () => {
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'acs.host': '127.0.0.1',
      'acs.port': 0,
      'usp.websocket.enabled': false,
      'log.level': 'silent',
      // No SetParameterValues of connection-request credentials: an empty POST ends the session.
      'acs.setConnectionRequestCredentials': false,
      'acs.limits.perAddress.maxConnections': MAX_CONNECTIONS,
      'acs.limits.perAddress.newSessionsPerMinute': SESSIONS_PER_MINUTE,
      'acs.limits.perAddress.exemptLoopback': false,
    },
  });
  proxy = new CwmpUspProxy(config, silentLogger());
  await proxy.start();
  port = (proxy.acs.server.address() as AddressInfo).port;
});

after(async () => {
  await proxy?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function post(from: string, body: string, headers: Record<string, string> = {}): Promise<Answer> {
  const buf = Buffer.from(body, 'utf8');
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, localAddress: from, method: 'POST', path: '/', agent: false, headers: { 'Content-Length': buf.length, ...headers } },
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

/** A whole CWMP session from one address: Inform, InformResponse, empty POST, 204. */
async function sessionFrom(from: string, serial: string): Promise<void> {
  const inform = await post(from, informOf(serial), { 'Content-Type': 'text/xml' });
  assert.equal(inform.status, 200, `Inform from ${from}: ${inform.status} ${inform.body}`);
  assert.match(inform.body, /InformResponse/);
  const cookie = String(inform.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
  assert.ok(cookie.startsWith('session='));
  const empty = await post(from, '', { Cookie: cookie });
  assert.equal(empty.status, 204);
}

/** A connection from `from`; resolves on connect, or on its reset when the server refuses it at once. */
function open(from: string): Promise<net.Socket> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from }, () => resolve(s));
    s.once('error', () => resolve(s));
  });
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('one address with 200 idle connections: the excess is reset, a CPE at another address completes its session', async () => {
  const before = proxy.acs.peerLimits.counts.connectionsRefused;
  const socks: net.Socket[] = [];
  const closed = new Set<net.Socket>();
  for (let i = 0; i < 200; i++) {
    const s = await open('127.0.0.2');
    s.on('error', () => undefined);
    if (s.destroyed) closed.add(s);
    s.on('close', () => closed.add(s));
    socks.push(s);
  }
  try {
    await settle(300);
    assert.equal(socks.length - closed.size, MAX_CONNECTIONS, 'connections left open from the flooding address');
    assert.equal(proxy.acs.peerLimits.counts.connectionsRefused - before, 200 - MAX_CONNECTIONS);
    assert.equal(proxy.acs.peerLimits.connectionsFrom('127.0.0.2'), MAX_CONNECTIONS);
    await sessionFrom('127.0.0.3', 'PL-OTHER');
  } finally {
    for (const s of socks) s.destroy();
  }
  // Its connections closed, the address is served again.
  await settle(100);
  assert.equal(proxy.acs.peerLimits.connectionsFrom('127.0.0.2'), 0);
  await sessionFrom('127.0.0.2', 'PL-BACK');
});

test('one address opening sessions in a loop gets 503 + Retry-After beyond newSessionsPerMinute; another address is served', async () => {
  for (let i = 0; i < SESSIONS_PER_MINUTE; i++) assert.equal((await post('127.0.0.4', informOf(`PL-LOOP-${i}`))).status, 200);
  const refused = await post('127.0.0.4', informOf('PL-LOOP-X'));
  assert.equal(refused.status, 503);
  assert.ok(Number(refused.headers['retry-after']) >= 1, `Retry-After ${refused.headers['retry-after']}`);
  assert.match(refused.body, /too many new sessions/);
  assert.ok(proxy.acs.peerLimits.counts.sessionsRefused >= 1);
  await sessionFrom('127.0.0.5', 'PL-FIVE');
});

test('the refusals are counted in cwmp_peer_refusals_total by reason', async () => {
  const text = await proxy.metrics.metricsText();
  const value = (reason: string): number => Number(new RegExp(`^cwmp_peer_refusals_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
  assert.equal(value('connections'), proxy.acs.peerLimits.counts.connectionsRefused);
  assert.ok(value('connections') >= 180);
  assert.ok(value('new-sessions') >= 1);
  assert.equal(value('parse-budget'), 0);
});
