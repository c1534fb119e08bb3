import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConnectionRequester, sendConnectionRequest, type ConnReqResult } from '../../src/cwmp/connreq.js';
import { authenticate, type AuthenticateOptions } from '../../src/cwmp/http-auth.js';
import { ConnReqTargetGuard, normalizeIp, type ConnReqTargetOptions } from '../../src/cwmp/connreq-target.js';
import { ConnReqReuse } from '../../src/cwmp/connreq-reuse.js';
import { CidrList } from '../../src/util/cidr.js';

interface TestServer {
  url: string;
  requests: number;
  connections: number;
  close(): Promise<void>;
}

/** A loopback CPE connection-request server; `handle` decides each answer. */
async function cpe(handle: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => unknown): Promise<TestServer> {
  const state = { requests: 0, connections: 0 };
  const server = http.createServer((req, res) => {
    state.requests++;
    void handle(req, res, state.requests);
  });
  server.on('connection', () => state.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/cr/abc?x=1`,
    get requests() {
      return state.requests;
    },
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A CPE that authenticates with the real server-side code. */
function authedCpe(mode: 'basic' | 'digest', users: Record<string, string>) {
  const opts: Omit<AuthenticateOptions, 'method'> = { mode, realm: 'cpe', nonceSecret: 'cpe-secret', lookup: (u) => users[u] };
  return async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const r = await authenticate(req.headers.authorization, { ...opts, method: req.method ?? 'GET', requestUri: req.url });
    if (r.ok) {
      res.writeHead(204).end();
    } else {
      res.writeHead(401, { 'www-authenticate': r.challenge, 'content-type': 'text/plain' }).end('unauthorized');
    }
  };
}

const freePort = async (): Promise<number> => {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
};

test('Digest qop=auth: answers the challenge and succeeds on the same connection', async () => {
  const s = await cpe(authedCpe('digest', { acs: 'cr-secret' }));
  try {
    const r = await sendConnectionRequest(s.url, { username: 'acs', password: 'cr-secret' }, { timeoutMs: 5000 });
    assert.deepEqual(r, { ok: true, status: 204 });
    assert.equal(s.requests, 2);
    assert.equal(s.connections, 1, 'the authenticated retry reuses the keep-alive connection');
  } finally {
    await s.close();
  }
});

test('Digest offered alongside Basic: Digest is used', async () => {
  let sawDigest = false;
  const s = await cpe((req, res) => {
    const h = req.headers.authorization;
    if (h?.startsWith('Digest ')) {
      sawDigest = true;
      res.writeHead(200).end();
    } else if (h) {
      res.writeHead(403).end();
    } else {
      res.writeHead(401, { 'www-authenticate': ['Basic realm="x"', 'Digest realm="x", nonce="n", qop="auth"'] }).end();
    }
  });
  try {
    const r = await sendConnectionRequest(s.url, { username: 'a', password: 'b' }, { timeoutMs: 5000 });
    assert.deepEqual(r, { ok: true, status: 200 });
    assert.ok(sawDigest);
  } finally {
    await s.close();
  }
});

test('Basic: succeeds (password with ":")', async () => {
  const s = await cpe(authedCpe('basic', { acs: 'p:w' }));
  try {
    const r = await sendConnectionRequest(s.url, { username: 'acs', password: 'p:w' }, { timeoutMs: 5000, allowBasic: true });
    assert.deepEqual(r, { ok: true, status: 204 });
  } finally {
    await s.close();
  }
});

test('Basic only: without allowBasic the credentials are never sent (auth-failed after one request)', async () => {
  const seen: (string | undefined)[] = [];
  const s = await cpe((req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' }).end();
  });
  try {
    const r = await sendConnectionRequest(s.url, { username: 'acs', password: 'topsecret' }, { timeoutMs: 5000 });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'auth-failed');
    assert.match(!r.ok ? r.detail : '', /allowBasic/);
    assert.deepEqual(seen, [undefined]);
  } finally {
    await s.close();
  }
});

test('reuse: the next request answers the last Digest challenge at once, on the kept-alive connection (RFC 7616 3.4)', async () => {
  const seen: string[] = [];
  const digest = authedCpe('digest', { acs: 'cr-secret' });
  const s = await cpe((req, res) => {
    seen.push(/nc=(\w+)/.exec(req.headers.authorization ?? '')?.[1] ?? 'none');
    return digest(req, res);
  });
  const reuse = new ConnReqReuse();
  try {
    for (let i = 0; i < 3; i++) {
      const r = await sendConnectionRequest(s.url, { username: 'acs', password: 'cr-secret' }, { timeoutMs: 5000, reuse });
      assert.deepEqual(r, { ok: true, status: 204 });
    }
    assert.deepEqual(seen, ['none', '00000001', '00000002', '00000003'], 'one challenge, then the nonce count goes up');
    assert.equal(s.connections, 1, 'one kept-alive connection for all of them');
  } finally {
    reuse.close();
    await s.close();
  }
});

test('reuse: a CPE that refuses a reused nonce gets its new challenge answered; wrong credentials still fail', async () => {
  // Each nonce is good for one request only (as many CPEs do): a reused one is answered with a fresh challenge.
  const used = new Set<string>();
  const digest = authedCpe('digest', { acs: 'cr-secret' });
  const s = await cpe((req, res) => {
    const nonce = /nonce="([^"]+)"/.exec(req.headers.authorization ?? '')?.[1];
    if (nonce && used.has(nonce)) return digest({ method: req.method, url: req.url, headers: {} } as http.IncomingMessage, res);
    if (nonce) used.add(nonce);
    return digest(req, res);
  });
  const reuse = new ConnReqReuse();
  try {
    assert.deepEqual(await sendConnectionRequest(s.url, { username: 'acs', password: 'cr-secret' }, { timeoutMs: 5000, reuse }), { ok: true, status: 204 });
    assert.equal(s.requests, 2);
    assert.deepEqual(await sendConnectionRequest(s.url, { username: 'acs', password: 'cr-secret' }, { timeoutMs: 5000, reuse }), { ok: true, status: 204 });
    assert.equal(s.requests, 4, 'the reused nonce refused (401), the new challenge answered');
    const r = await sendConnectionRequest(s.url, { username: 'acs', password: 'WrongSecret' }, { timeoutMs: 5000, reuse });
    assert.ok(!r.ok && r.reason === 'auth-failed' && r.status === 401);
    assert.ok(!r.detail.includes('WrongSecret'));
    assert.equal(s.requests, 6, 'reused challenge refused, fresh challenge answered and refused: no third try');
  } finally {
    reuse.close();
    await s.close();
  }
});

test('no authentication needed: one request', async () => {
  const s = await cpe((_req, res) => res.writeHead(200).end('ok'));
  try {
    assert.deepEqual(await sendConnectionRequest(s.url, null, { timeoutMs: 5000 }), { ok: true, status: 200 });
    assert.equal(s.requests, 1);
  } finally {
    await s.close();
  }
});

test('wrong credentials -> auth-failed after exactly one retry; detail has no secret', async () => {
  for (const mode of ['digest', 'basic'] as const) {
    const s = await cpe(authedCpe(mode, { acs: 'right' }));
    try {
      const r = await sendConnectionRequest(s.url, { username: 'acs', password: 'WrongSecret' }, { timeoutMs: 5000, allowBasic: true });
      assert.equal(r.ok, false);
      assert.ok(!r.ok && r.reason === 'auth-failed' && r.status === 401, mode);
      assert.ok(!r.ok && !r.detail.includes('WrongSecret'));
      assert.equal(s.requests, 2, mode);
    } finally {
      await s.close();
    }
  }
});

test('401 without credentials -> auth-failed', async () => {
  const s = await cpe(authedCpe('digest', { acs: 'x' }));
  try {
    const r = await sendConnectionRequest(s.url, null, { timeoutMs: 5000 });
    assert.ok(!r.ok && r.reason === 'auth-failed');
    assert.equal(s.requests, 1);
  } finally {
    await s.close();
  }
});

test('other statuses -> http-error', async () => {
  const s = await cpe((_req, res) => res.writeHead(503).end());
  try {
    const r = await sendConnectionRequest(s.url, null, { timeoutMs: 5000 });
    assert.deepEqual(r, { ok: false, reason: 'http-error', status: 503, detail: 'CPE answered HTTP 503' });
  } finally {
    await s.close();
  }
});

test('a CPE that never answers -> timeout', async () => {
  const s = await cpe(() => {
    /* never answers */
  });
  try {
    const r = await sendConnectionRequest(s.url, null, { timeoutMs: 150 });
    assert.ok(!r.ok && r.reason === 'timeout');
  } finally {
    await s.close();
  }
});

test('closed port -> refused', async () => {
  const port = await freePort();
  const r = await sendConnectionRequest(`http://127.0.0.1:${port}/`, null, { timeoutMs: 5000 });
  assert.ok(!r.ok && r.reason === 'refused', JSON.stringify(r));
});

test('bad URLs -> bad-url, and URL userinfo never reaches the detail', async () => {
  for (const url of ['https://127.0.0.1/', 'ftp://x/', 'not a url', '', 'udp://1.2.3.4:7547']) {
    const r = await sendConnectionRequest(url, null, { timeoutMs: 100 });
    assert.ok(!r.ok && r.reason === 'bad-url', url);
  }
  const r = await sendConnectionRequest('https://user:Secret@host/', null, { timeoutMs: 100 });
  assert.ok(!r.ok && !r.detail.includes('Secret'));
});

test('abort signal -> cancelled', async () => {
  const s = await cpe(() => {});
  try {
    const ac = new AbortController();
    const p = sendConnectionRequest(s.url, null, { timeoutMs: 5000, signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    const r = await p;
    assert.ok(!r.ok && r.reason === 'cancelled');
  } finally {
    await s.close();
  }
});

const fast = { timeoutMs: 2000, retries: 3, retryDelayMs: 5, maxDelayMs: 20 };

test('ConnectionRequester: 10 concurrent requests for one device hit the CPE once', async () => {
  const s = await cpe((_req, res) => setTimeout(() => res.writeHead(204).end(), 50));
  try {
    const cr = new ConnectionRequester(fast);
    const events: unknown[] = [];
    cr.on('result', (e) => events.push(e));
    const results = await Promise.all(Array.from({ length: 10 }, () => cr.request('dev1', s.url, null)));
    for (const r of results) assert.deepEqual(r, { ok: true, status: 204 });
    assert.equal(s.requests, 1);
    assert.equal(cr.pending, 0);
    // One 'result' per attempt chain, however many callers joined it.
    assert.deepEqual(events, [{ deviceKey: 'dev1', result: { ok: true, status: 204 } }]);
    // The chain is over: a later request sends again.
    await cr.request('dev1', s.url, null);
    assert.equal(s.requests, 2);
    assert.equal(events.length, 2);
  } finally {
    await s.close();
  }
});

test('ConnectionRequester: different devices are not coalesced', async () => {
  const s = await cpe((_req, res) => res.writeHead(204).end());
  try {
    const cr = new ConnectionRequester(fast);
    await Promise.all(['a', 'b', 'c'].map((k) => cr.request(k, s.url, null)));
    assert.equal(s.requests, 3);
  } finally {
    await s.close();
  }
});

test('ConnectionRequester: retries per policy until success', async () => {
  const s = await cpe((_req, res, n) => res.writeHead(n < 3 ? 503 : 204).end());
  try {
    const cr = new ConnectionRequester(fast);
    const events: unknown[] = [];
    cr.on('result', (e) => events.push(e));
    assert.deepEqual(await cr.request('d', s.url, null), { ok: true, status: 204 });
    assert.equal(s.requests, 3);
    // The retries are one connection request: one 'result', with the final outcome.
    assert.deepEqual(events, [{ deviceKey: 'd', result: { ok: true, status: 204 } }]);
  } finally {
    await s.close();
  }
});

test('ConnectionRequester: gives up after `retries` retries with the last failure', async () => {
  const s = await cpe((_req, res) => res.writeHead(500).end());
  try {
    const cr = new ConnectionRequester({ ...fast, retries: 2 });
    const r = await cr.request('d', s.url, null);
    assert.ok(!r.ok && r.reason === 'http-error' && r.status === 500);
    assert.equal(s.requests, 3);
  } finally {
    await s.close();
  }
});

test('ConnectionRequester: refused and timeout are retried; auth-failed and bad-url are not', async () => {
  const port = await freePort();
  const sent: string[] = [];
  const cr = new ConnectionRequester(fast, {
    send: async (url, creds, opts) => {
      sent.push(url);
      return url.startsWith('http://127.0.0.1') ? sendConnectionRequest(url, creds, opts) : { ok: false, reason: 'auth-failed', detail: 'x' };
    },
  });
  const refused = await cr.request('r', `http://127.0.0.1:${port}/`, null);
  assert.ok(!refused.ok && refused.reason === 'refused');
  assert.equal(sent.length, 4);
  sent.length = 0;
  const auth = await cr.request('a', 'http://cpe.example/', null);
  assert.ok(!auth.ok && auth.reason === 'auth-failed');
  assert.equal(sent.length, 1);
  const badUrl = await new ConnectionRequester(fast).request('b', 'https://x/', null);
  assert.ok(!badUrl.ok && badUrl.reason === 'bad-url');

  const s = await cpe(() => {});
  try {
    const timeouts = await new ConnectionRequester({ ...fast, timeoutMs: 50, retries: 1 }).request('t', s.url, null);
    assert.ok(!timeouts.ok && timeouts.reason === 'timeout');
    assert.equal(s.requests, 2);
  } finally {
    await s.close();
  }
});

test('ConnectionRequester: cancel stops retrying and resolves every waiter', async () => {
  const s = await cpe((_req, res) => res.writeHead(503).end());
  try {
    const cr = new ConnectionRequester({ ...fast, retries: 100, retryDelayMs: 60_000, maxDelayMs: 60_000 });
    const p1 = cr.request('d', s.url, null);
    const p2 = cr.request('d', s.url, null);
    while (s.requests < 1) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20)); // now in the (long) backoff sleep
    assert.equal(cr.cancel('d'), true);
    const [r1, r2] = await Promise.all([p1, p2]);
    assert.ok(!r1.ok && r1.reason === 'cancelled');
    assert.deepEqual(r1, r2);
    assert.equal(s.requests, 1);
    assert.equal(cr.pending, 0);
    assert.equal(cr.cancel('d'), false);
  } finally {
    await s.close();
  }
});

test('ConnectionRequester: bounds attempts in flight across devices', async () => {
  let now = 0;
  let peak = 0;
  const cr = new ConnectionRequester(
    { ...fast, maxInFlight: 3 },
    {
      send: async (): Promise<ConnReqResult> => {
        now++;
        peak = Math.max(peak, now);
        await new Promise((r) => setTimeout(r, 10));
        now--;
        return { ok: true, status: 204 };
      },
    },
  );
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => cr.request(`dev${i}`, 'http://x/', null)));
  assert.equal(results.filter((r) => r.ok).length, 20);
  assert.equal(peak, 3);
  assert.equal(cr.inFlight, 0);
});

test('ConnectionRequester: cancelling a device queued for a slot frees its place', async () => {
  const calls: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const cr = new ConnectionRequester(
    { ...fast, maxInFlight: 1 },
    {
      send: async (url): Promise<ConnReqResult> => {
        calls.push(url);
        await gate;
        return { ok: true, status: 204 };
      },
    },
  );
  const a = cr.request('a', 'http://a/', null);
  const b = cr.request('b', 'http://b/', null);
  const c = cr.request('c', 'http://c/', null);
  await new Promise((r) => setImmediate(r));
  cr.cancel('b');
  assert.ok(!(await b).ok);
  release();
  assert.ok((await a).ok);
  assert.ok((await c).ok);
  assert.deepEqual(calls, ['http://a/', 'http://c/']);
  assert.equal(cr.inFlight, 0);
});

// ---------------------------------------------------------------- the target guard (SSRF)

const guardOf = (over: Partial<ConnReqTargetOptions> = {}): ConnReqTargetGuard =>
  new ConnReqTargetGuard({ allow: [], ports: [], ownPorts: () => [], perAddressPerSecond: 1000, localAddresses: () => [], ...over });

test('CidrList: IPv4, IPv6, IPv4-mapped IPv6, bad input', () => {
  const l = new CidrList(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32']);
  assert.ok(l.has('10.1.2.3'));
  assert.ok(l.has('::ffff:10.1.2.3'));
  assert.ok(l.has('192.168.1.7'));
  assert.ok(!l.has('192.168.1.8'));
  assert.ok(l.has('2001:db8:0:0:0:0:0:1'));
  assert.ok(!l.has('2001:db9::1'));
  assert.ok(!l.has('not-an-ip'));
  assert.throws(() => new CidrList(['10.0.0.0/33']), /prefix/);
  assert.throws(() => new CidrList(['example.com/8']), /not an IPv4 or IPv6/);
  assert.equal(normalizeIp('::ffff:a9fe:a9fe'), '169.254.169.254');
});

test('guard: link-local, multicast and unspecified are refused by default; others allowed', async () => {
  const g = guardOf();
  for (const a of ['169.254.169.254', '::ffff:169.254.169.254', 'fe80::1', '224.0.0.1', 'ff02::1', '0.0.0.0', '::', '255.255.255.255']) {
    const d = await g.check(a, 80);
    assert.equal(d.ok, false, a);
  }
  for (const a of ['127.0.0.1', '10.0.0.1', '203.0.113.9', '::1']) assert.deepEqual(await g.check(a, 7547), { ok: true, address: normalizeIp(a) });
});

test("guard: allow list, port allow-list, the proxy's own ports on local addresses", async () => {
  const g = guardOf({ allow: ['10.0.0.0/8'], ports: [7547, 30005], ownPorts: () => [7547], localAddresses: () => ['10.9.9.9'] });
  assert.match(JSON.stringify(await g.check('192.168.0.1', 7547)), /not in acs.connectionRequest.allow/);
  assert.match(JSON.stringify(await g.check('10.0.0.1', 8080)), /port 8080 is not in acs.connectionRequest.ports/);
  assert.match(JSON.stringify(await g.check('10.9.9.9', 7547)), /own listening port/);
  assert.deepEqual(await g.check('10.0.0.1', 7547), { ok: true, address: '10.0.0.1' }); // another host's 7547
  assert.deepEqual(await g.check('10.0.0.1', 30005), { ok: true, address: '10.0.0.1' });
  const local = guardOf({ ownPorts: () => [7547] });
  assert.equal((await local.check('127.0.0.1', 7547)).ok, false);
  assert.equal((await local.check('::ffff:127.0.0.1', 7547)).ok, false);
});

test('guard: verdicts asked again and again, and of more addresses than it remembers, stay the same', () => {
  let own: number[] = [];
  let ifaces: string[] = [];
  const g = guardOf({ allow: ['10.0.0.0/16', '127.0.0.0/8'], ownPorts: () => own, localAddresses: () => ifaces });
  for (let round = 0; round < 2; round++) {
    // 6,000 addresses: past the 4,096 verdicts kept, so the second round re-learns the first ones.
    for (let i = 0; i < 6000; i++) {
      const a = `10.0.${i >> 8}.${i & 255}`;
      assert.deepEqual(g.checkAddress(a, 7547), { ok: true, address: a });
    }
    assert.match((g.checkAddress('10.1.0.1', 7547) as { detail: string }).detail, /not in acs.connectionRequest.allow/);
    assert.match((g.checkAddress('169.254.169.254', 80) as { detail: string }).detail, /link-local/);
  }
  // The own-port check reads the ports and the interface addresses at each call, not from the verdicts.
  assert.deepEqual(g.checkAddress('127.0.0.1', 7547), { ok: true, address: '127.0.0.1' });
  own = [7547];
  assert.match((g.checkAddress('127.0.0.1', 7547) as { detail: string }).detail, /own listening port/);
  assert.deepEqual(g.checkAddress('10.0.0.9', 7547), { ok: true, address: '10.0.0.9' });
  ifaces = ['10.0.0.9'];
  assert.match((g.checkAddress('10.0.0.9', 7547) as { detail: string }).detail, /own listening port/);
});

test('guard: a DNS name is resolved once and the resolved address is checked', async () => {
  const asked: string[] = [];
  const g = guardOf({
    lookup: async (h) => {
      asked.push(h);
      return h === 'metadata.test' ? '169.254.169.254' : '127.0.0.1';
    },
  });
  assert.match(JSON.stringify(await g.check('metadata.test', 80)), /169.254.169.254 is link-local/);
  assert.deepEqual(await g.check('cpe.test', 80), { ok: true, address: '127.0.0.1' });
  assert.deepEqual(asked, ['metadata.test', 'cpe.test']);
  const failing = guardOf({ lookup: async () => Promise.reject(Object.assign(new Error('x'), { code: 'ENOTFOUND' })) });
  assert.match(JSON.stringify(await failing.check('nowhere.test', 80)), /cannot resolve \\"nowhere.test\\": ENOTFOUND/);
});

test('sendConnectionRequest with a guard: connects to the checked address, Host header as in the URL', async () => {
  let host: string | undefined;
  const s = await cpe((req, res) => {
    host = req.headers.host;
    res.writeHead(204).end();
  });
  try {
    const port = new URL(s.url).port;
    // A name that only the guard's lookup knows: the request reaches the address it returned.
    const g = guardOf({ lookup: async () => '127.0.0.1' });
    const r = await sendConnectionRequest(`http://cpe.invalid:${port}/cr`, null, { timeoutMs: 5000, guard: g });
    assert.deepEqual(r, { ok: true, status: 204 });
    assert.equal(host, `cpe.invalid:${port}`);
    // A refused target: nothing reaches the server.
    const before = s.connections;
    const refused = await sendConnectionRequest(s.url, null, { timeoutMs: 5000, guard: guardOf({ allow: ['10.0.0.0/8'] }) });
    assert.equal(!refused.ok && refused.reason, 'forbidden');
    assert.equal(s.connections, before);
  } finally {
    await s.close();
  }
});

test('guard rate limit: requests to one address are spaced; other addresses are not held up', () => {
  let now = 1_000_000;
  const g = guardOf({ perAddressPerSecond: 10, now: () => now });
  const waits = Array.from({ length: 5 }, () => g.reserve('10.0.0.1'));
  assert.deepEqual(waits, [0, 100, 200, 300, 400]);
  assert.equal(g.reserve('10.0.0.2'), 0);
  now += 1000;
  assert.equal(g.reserve('10.0.0.1'), 0);
});

test('ConnectionRequester with a guard: a refused target is not retried and sends nothing', async () => {
  let sent = 0;
  const r = new ConnectionRequester(
    { timeoutMs: 1000, retries: 3, retryDelayMs: 0, maxDelayMs: 0, guard: guardOf({ allow: ['10.0.0.0/8'] }) },
    {
      send: async () => {
        sent++;
        return { ok: true, status: 204 };
      },
    },
  );
  const res = await r.request('dev', 'http://127.0.0.1:9/cr', null);
  assert.equal(!res.ok && res.reason, 'forbidden');
  assert.equal(sent, 0);
});
