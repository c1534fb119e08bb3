import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { encodeUdpConnReq, parseUdpConnReq, udpConnReqSignature, verifyUdpConnReq } from '../../src/cwmp/connreq-udp-message.js';
import { parseUdpConnectionRequestAddress, UdpBindings, UdpConnectionRequester } from '../../src/cwmp/connreq-udp.js';
import { ConnReqDispatcher } from '../../src/cwmp/connreq-dispatch.js';
import { ConnectionRequester, type ConnReqResult } from '../../src/cwmp/connreq.js';
import { ConfigError, loadConfig } from '../../src/app/config.js';
import { createLogger } from '../../src/app/log.js';
import { XmppConnectionRequester } from '../../src/cwmp/connreq-xmpp.js';
import net from 'node:net';

const F = { ts: 1120673700, id: 1234, un: 'CPE57689', cn: 'XTGRWIPC6D3IPXS3' };

test('Annex G message: request line, Host, and sig = HMAC-SHA1(password, ts id un cn)', () => {
  const sig = createHmac('sha1', 'pw').update('11206737001234CPE57689XTGRWIPC6D3IPXS3').digest('hex').toUpperCase();
  assert.equal(udpConnReqSignature(F, 'pw'), sig);
  const m = encodeUdpConnReq('10.1.1.1:8080', F, 'pw');
  assert.equal(m, `GET http://10.1.1.1:8080?ts=1120673700&id=1234&un=CPE57689&cn=XTGRWIPC6D3IPXS3&sig=${sig} HTTP/1.1\r\nHost: 10.1.1.1:8080\r\n\r\n`);
  const p = parseUdpConnReq(Buffer.from(m));
  assert.ok(p.ok);
  assert.deepEqual(p.fields, F);
  assert.ok(verifyUdpConnReq(p.fields, p.sig.toLowerCase(), 'pw'));
  assert.ok(!verifyUdpConnReq(p.fields, p.sig, 'other'));
  assert.ok(!verifyUdpConnReq({ ...F, id: 1235 }, p.sig, 'pw'));
  for (const bad of [
    'POST http://x?ts=1 HTTP/1.1\r\n',
    'GET http://x HTTP/1.1\r\n',
    'GET http://x?ts=a&id=1&un=u&cn=c&sig=00 HTTP/1.1\r\n',
    'x'.repeat(2000),
  ]) {
    assert.equal(parseUdpConnReq(Buffer.from(bad)).ok, false, bad.slice(0, 30));
  }
});

test('UDPConnectionRequestAddress parsing', () => {
  assert.deepEqual(parseUdpConnectionRequestAddress('192.0.2.1:5060'), { host: '192.0.2.1', port: 5060 });
  assert.deepEqual(parseUdpConnectionRequestAddress('[2001:db8::1]:7'), { host: '2001:db8::1', port: 7 });
  assert.deepEqual(parseUdpConnectionRequestAddress('cpe.example'), { host: 'cpe.example', port: 80 });
  for (const bad of ['', 'a:b', '1.2.3.4:70000', '[::1', 'a b:1']) assert.equal(parseUdpConnectionRequestAddress(bad), null, bad);
});

function udpRig(policy = { timeoutMs: 300, retransmitMs: 40, retransmissions: 3 }) {
  const bindings = new UdpBindings();
  const sent: Array<{ data: string; port: number; host: string; at: number }> = [];
  const t0 = Date.now();
  const udp = new UdpConnectionRequester(policy, {
    bindings,
    send: async (data, port, host) => void sent.push({ data, port, host, at: Date.now() - t0 }),
  });
  return { bindings, sent, udp };
}

test('UDP requester: copies with one id, doubling gaps, success when the session opens', async () => {
  const { bindings, sent, udp } = udpRig({ timeoutMs: 2000, retransmitMs: 40, retransmissions: 3 });
  bindings.set('dev', { host: '127.0.0.1', port: 4000, source: 'stun', at: 0 });
  const p = udp.request('dev', { username: 'u', password: 'p' });
  await new Promise((r) => setTimeout(r, 400));
  // The first copy and 3 repeats, at 0, 40, 120 and 280 ms.
  assert.equal(sent.length, 4);
  assert.ok(sent[3]!.at >= 270 && sent[2]!.at >= 115 && sent[1]!.at >= 35, JSON.stringify(sent.map((s) => s.at)));
  const ids = new Set(sent.map((s) => /id=(\d+)/.exec(s.data)![1]));
  assert.equal(ids.size, 1);
  assert.ok(udp.sessionOpened('dev'));
  assert.deepEqual(await p, { ok: true, status: 0, detail: 'session opened' });
  assert.equal(sent.length, 4, 'no copy after the session opened');
});

test('UDP requester: sends to the current binding, times out without a session, needs credentials and a binding', async () => {
  const { bindings, sent, udp } = udpRig({ timeoutMs: 150, retransmitMs: 50, retransmissions: 5 });
  assert.equal((await udp.request('dev', { username: 'u', password: 'p' })).ok, false);
  bindings.set('dev', { host: '127.0.0.1', port: 4000, source: 'stun', at: 0 });
  assert.deepEqual(await udp.request('dev', null), { ok: false, reason: 'no-credentials', detail: 'no connection request credentials known' });
  const p = udp.request('dev', { username: 'u', password: 'p' });
  bindings.set('dev', { host: '127.0.0.1', port: 4001, source: 'stun', at: 1 });
  const r = await p;
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'timeout');
  // Copies at 0, 50, 150 (>= timeout: not sent): the repeat went to the new binding.
  assert.deepEqual(
    sent.map((s) => s.port),
    [4000, 4001],
  );
});

test('dispatcher: HTTP first, UDP on failure, then UDP first for that device; one chain per device', async () => {
  const calls: string[] = [];
  const http = new ConnectionRequester(
    { timeoutMs: 100, retries: 0, retryDelayMs: 1, maxDelayMs: 1 },
    { send: async (): Promise<ConnReqResult> => (calls.push('http'), { ok: false, reason: 'refused', detail: 'ECONNREFUSED' }) },
  );
  const { bindings, sent, udp } = udpRig({ timeoutMs: 1000, retransmitMs: 500, retransmissions: 0 });
  const d = new ConnReqDispatcher(['http', 'udp'], { http, udp });
  const attempts: string[] = [];
  d.on('attempt', (a) => attempts.push(`${a.transport}:${a.outcome}`));
  // Without a binding, UDP cannot be tried.
  const none = await d.request('dev', 'http://10.0.0.1/', { username: 'u', password: 'p' });
  assert.equal(none.ok, false);
  assert.deepEqual(attempts, ['http:refused']);
  bindings.set('dev', { host: '127.0.0.1', port: 4000, source: 'stun', at: 0 });
  const p1 = d.request('dev', 'http://10.0.0.1/', { username: 'u', password: 'p' });
  const p2 = d.request('dev', 'http://10.0.0.1/', { username: 'u', password: 'p' });
  assert.equal(p1, p2);
  while (sent.length === 0) await new Promise((r) => setTimeout(r, 5));
  d.cancel('dev'); // the session opened
  assert.deepEqual(await p1, { ok: true, status: 0, transport: 'udp' });
  assert.deepEqual(attempts, ['http:refused', 'http:refused', 'udp:ok']);
  assert.deepEqual(d.plan('dev', 'http://10.0.0.1/'), ['udp', 'http']);
  assert.deepEqual(d.plan('other', 'http://10.0.0.1/'), ['http']);
  assert.deepEqual(calls, ['http', 'http']);
  d.close();
});

test('config: the transport order accepts http, udp and xmpp only; UDP and XMPP are off by default', () => {
  const base = { env: {} };
  const c = loadConfig(base);
  assert.equal(c.acs.connectionRequest.udp.enabled, false);
  assert.equal(c.acs.connectionRequest.udp.port, 3478);
  assert.equal(c.acs.connectionRequest.xmpp.enabled, false);
  assert.deepEqual(loadConfig({ ...base, overrides: { 'acs.connectionRequest.order': 'xmpp,http' } }).acs.connectionRequest.order, ['xmpp', 'http']);
  assert.throws(() => loadConfig({ ...base, overrides: { 'acs.connectionRequest.order': 'http,tcp' } }), ConfigError);
});

test('XMPP server down at start: a clear warning, retries with backoff, requests fail at once as xmpp-offline', async () => {
  const lines: Array<{ msg: string; retryInMs?: number; password?: string }> = [];
  const log = createLogger('warn', { write: (s: string) => void lines.push(JSON.parse(s)) });
  const port = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
  const x = new XmppConnectionRequester(
    {
      service: `xmpp://127.0.0.1:${port}`,
      domain: 'localhost',
      username: 'acs',
      password: 'xmpp-secret',
      resource: 'r',
      timeoutMs: 1000,
      retryBaseMs: 20,
      retryMaxMs: 50,
    },
    log,
  );
  x.learn('dev', 'cpe@localhost/cwmp');
  x.start();
  const t0 = Date.now();
  assert.deepEqual(await x.request('dev', { username: 'u', password: 'p' }), { ok: false, reason: 'xmpp-offline', detail: 'not logged in to the XMPP server' });
  assert.ok(Date.now() - t0 < 100);
  while (lines.filter((l) => /XMPP server unavailable/.test(l.msg)).length < 3) await new Promise((r) => setTimeout(r, 10));
  await x.stop();
  assert.ok(
    lines.every((l) => !JSON.stringify(l).includes('xmpp-secret')),
    'the password is never logged',
  );
  assert.equal(x.connected, false);
});

test('NatReach: a UDP target outside acs.connectionRequest.allow receives nothing (the SSRF guard applies to UDP)', async () => {
  const { NatReach } = await import('../../src/cwmp/nat.js');
  const { ConnReqTargetGuard } = await import('../../src/cwmp/connreq-target.js');
  const dgram = await import('node:dgram');
  const target = dgram.createSocket('udp4');
  let received = 0;
  target.on('message', () => received++);
  await new Promise<void>((r) => target.bind(0, '127.0.0.1', r));
  const port = target.address().port;
  const guard = new ConnReqTargetGuard({ allow: ['10.0.0.0/8'], ports: [], ownPorts: () => [], perAddressPerSecond: 100 });
  const nat = new NatReach(
    {
      host: '127.0.0.1',
      port: 0,
      ratePerSecond: 10,
      stunServerAddress: '',
      stunServerPort: 0,
      keepAliveS: 30,
      stunSecret: '',
      timeoutMs: 300,
      retransmissions: 2,
      retransmitMs: 50,
    },
    { getDevice: async () => null },
    createLogger('silent'),
    guard,
  );
  await nat.start();
  try {
    nat.bindings.set('dev-1', { host: '127.0.0.1', port, source: 'inform', at: Date.now() });
    const r = await nat.udp.request('dev-1', { username: 'u', password: 'p' });
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.detail, /forbidden target: address 127\.0\.0\.1 is not in acs\.connectionRequest\.allow/);
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(received, 0);
  } finally {
    await nat.stop();
    target.close();
  }
});
