import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ChunkedBody, MAX_HEAD_BYTES, parseHead } from '../../src/cwmp/connreq-http.js';
import { sendConnectionRequest } from '../../src/cwmp/connreq.js';
import { ConnReqReuse } from '../../src/cwmp/connreq-reuse.js';

/** A CPE that answers every request on a connection with the next of `answers` (raw bytes), counting connections. */
async function rawCpe(
  answers: (n: number) => string | Buffer[] | null,
): Promise<{ url: string; connections: number; requests: string[]; close(): Promise<void> }> {
  const state = { connections: 0, requests: [] as string[] };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        state.requests.push(buf.slice(0, end));
        buf = buf.slice(end + 4);
        const a = answers(state.requests.length);
        if (a === null) continue; // never answers
        if (typeof a === 'string') s.write(a);
        else for (const part of a) s.write(part);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/cr`,
    get connections() {
      return state.connections;
    },
    requests: state.requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

test('parseHead: status, WWW-Authenticate fields in order, keep-alive rules of HTTP/1.1 and 1.0, the Keep-Alive hint', () => {
  const h = parseHead('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="a"\r\nwww-authenticate: Basic realm="a"\r\nContent-Length: 3');
  assert.deepEqual(h && [h.status, h.wwwAuthenticate, h.keepAlive, h.contentLength], [401, ['Digest realm="a"', 'Basic realm="a"'], true, 3]);
  assert.equal(parseHead('HTTP/1.1 204 No Content\r\nConnection: close')?.keepAlive, false);
  assert.equal(parseHead('HTTP/1.0 204 No Content')?.keepAlive, false);
  assert.equal(parseHead('HTTP/1.0 204 No Content\r\nConnection: Keep-Alive')?.keepAlive, true);
  assert.equal(parseHead('HTTP/1.1 204 No Content\r\nKeep-Alive: timeout=1')?.keepAlive, false, 'a 1 s hint leaves no time to reuse it');
  assert.equal(parseHead('HTTP/1.1 204 No Content\r\nKeep-Alive: timeout=5')?.keepAliveMs, 4000);
  assert.equal(parseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked')?.chunked, true);
  // Chunked with a Content-Length too is read as chunks, never reused; a coding other than chunked runs to the close.
  const both = parseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked');
  assert.deepEqual(both && [both.chunked, both.contentLength, both.keepAlive], [true, null, false]);
  const gzip = parseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip');
  assert.deepEqual(gzip && [gzip.chunked, gzip.contentLength, gzip.keepAlive], [false, null, false]);
  // Not an answer, a header line without a name, or framing that cannot be trusted.
  for (const bad of [
    'HTTP/2 200',
    'SSH-2.0-OpenSSH',
    'HTTP/1.1 20 OK',
    'HTTP/1.1 200 OK\r\nno colon here',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2',
    'HTTP/1.1 200 OK\r\nContent-Length: -1',
  ])
    assert.equal(parseHead(bad), null, bad);
  // A bare LF (or CR) inside a field would carry into our Authorization header: refused.
  assert.equal(parseHead('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="a\nX-Injected: 1", nonce="n"'), null);
  assert.equal(parseHead('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="a\rb", nonce="n"'), null);
});

test('credentials with a CR or LF are never written into a request (no header injection); other devices go on', async () => {
  const cpe = await rawCpe(() => 'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="cpe", nonce="n1", qop="auth"\r\nContent-Length: 0\r\n\r\n');
  try {
    const r = await sendConnectionRequest(cpe.url, { username: 'acs\r\nX-Injected: 1', password: 'pw' }, { timeoutMs: 3000 });
    assert.ok(!r.ok && r.reason === 'auth-failed' && /ERR_INVALID_CHAR/.test(r.detail), JSON.stringify(r));
    assert.equal(cpe.requests.length, 1, 'only the unauthenticated GET went out');
    assert.ok(!cpe.requests.some((q) => q.includes('X-Injected')));
  } finally {
    await cpe.close();
  }
});

test('ChunkedBody: reads through chunks split anywhere, extensions and trailers; extra bytes and bad sizes are told', () => {
  const wire = Buffer.from('5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: 1\r\n\r\n');
  for (let cut = 1; cut < wire.length; cut++) {
    const c = new ChunkedBody();
    assert.equal(c.push(wire.subarray(0, cut)), 'more', `cut ${cut}`);
    assert.equal(c.push(wire.subarray(cut)), 'done', `cut ${cut}`);
  }
  assert.equal(new ChunkedBody().push(Buffer.from('0\r\n\r\nHTTP/1.1')), 'extra');
  assert.equal(new ChunkedBody().push(Buffer.from('zz\r\n')), 'bad');
  assert.equal(new ChunkedBody().push(Buffer.alloc(2000, 0x31)), 'bad', 'an endless size line is refused, not buffered');
});

test('a chunked 401 is drained and its challenge answered on the same connection; the next request reuses it too', async () => {
  const challenge = 'Digest realm="cpe", nonce="n1", qop="auth"';
  const cpe = await rawCpe((n) =>
    n === 1
      ? [Buffer.from(`HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: ${challenge}\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nno!`), Buffer.from('\r\n0\r\n\r\n')]
      : 'HTTP/1.1 204 No Content\r\n\r\n',
  );
  const reuse = new ConnReqReuse();
  try {
    const creds = { username: 'acs', password: 'pw' };
    assert.deepEqual(await sendConnectionRequest(cpe.url, creds, { timeoutMs: 3000, reuse }), { ok: true, status: 204 });
    assert.deepEqual(await sendConnectionRequest(cpe.url, creds, { timeoutMs: 3000, reuse }), { ok: true, status: 204 });
    assert.equal(cpe.connections, 1);
    assert.equal(cpe.requests.length, 3);
    assert.match(cpe.requests[0]!, /^GET \/cr HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\nConnection: keep-alive$/);
    assert.match(cpe.requests[2]!, /nc=00000002/, 'the kept challenge answered at once with the next count');
  } finally {
    reuse.close();
    await cpe.close();
  }
});

test('a 100 Continue before the answer is skipped', async () => {
  const cpe = await rawCpe(() => 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  try {
    assert.deepEqual(await sendConnectionRequest(cpe.url, null, { timeoutMs: 3000 }), { ok: true, status: 200 });
  } finally {
    await cpe.close();
  }
});

test('hostile answers: garbage, an endless head, a body longer than announced, Connection: close; none is reused, the process goes on', async () => {
  const reuse = new ConnReqReuse();
  const cases: Array<[string, string | Buffer[], (r: Awaited<ReturnType<typeof sendConnectionRequest>>) => void]> = [
    ['garbage', 'SSH-2.0-OpenSSH_9.0\r\n\r\n', (r) => assert.deepEqual(r, { ok: false, reason: 'refused', detail: 'connection failed: HPE_INVALID_CONSTANT' })],
    [
      'endless head',
      [Buffer.from('HTTP/1.1 200 OK\r\n'), Buffer.from(`X-Filler: ${'a'.repeat(MAX_HEAD_BYTES + 10)}`)],
      (r) => assert.deepEqual(r, { ok: false, reason: 'refused', detail: 'connection failed: HPE_HEADER_OVERFLOW' }),
    ],
    ['longer body', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n', (r) => assert.deepEqual(r, { ok: true, status: 200 })],
    ['close', 'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n', (r) => assert.deepEqual(r, { ok: true, status: 204 })],
    ['close-delimited', 'HTTP/1.1 200 OK\r\n\r\nsome body', (r) => assert.deepEqual(r, { ok: true, status: 200 })],
  ];
  try {
    for (const [name, answer, check] of cases) {
      const cpe = await rawCpe(() => answer);
      try {
        check(await sendConnectionRequest(cpe.url, null, { timeoutMs: 3000, reuse }));
        // The next request gets a connection of its own: the previous one could not be trusted.
        const again = await sendConnectionRequest(cpe.url, null, { timeoutMs: 3000, reuse });
        assert.equal(again.ok || again.reason, name === 'garbage' || name === 'endless head' ? 'refused' : true, name);
        assert.equal(cpe.connections, 2, name);
      } finally {
        await cpe.close();
      }
    }
    assert.equal(reuse.pool.idleCount, 0);
  } finally {
    reuse.close();
  }
});

test('a kept-alive connection the CPE closes while idle leaves the pool; the next request opens a new one', async () => {
  const cpe = await rawCpe(() => 'HTTP/1.1 204 No Content\r\n\r\n');
  const reuse = new ConnReqReuse({ idleSocketMs: 60_000 });
  try {
    assert.deepEqual(await sendConnectionRequest(cpe.url, null, { timeoutMs: 3000, reuse }), { ok: true, status: 204 });
    assert.equal(reuse.pool.idleCount, 1);
    await cpe.close(); // the CPE drops its side (and stops listening)
    while (reuse.pool.idleCount > 0) await new Promise((r) => setImmediate(r));
    const r = await sendConnectionRequest(cpe.url, null, { timeoutMs: 3000, reuse });
    assert.ok(!r.ok && r.reason === 'refused', JSON.stringify(r));
  } finally {
    reuse.close();
  }
});
