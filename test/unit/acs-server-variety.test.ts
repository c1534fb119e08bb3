/**
 * The variety of CPE HTTP stacks at the ACS URL, with the exact bytes such stacks put on the
 * wire (raw sockets): HTTP/1.0 with and without keep-alive, half-closing clients, close-delimited
 * HTTP/1.0 bodies, bare-LF heads, the three forms of the empty POST, Content-Type and charset
 * variants, BOM / whitespace / CRLF in the body, Expect: 100-continue, quoted cookies, envelopes
 * of other SOAP stacks, MaxEnvelopes other than 1 and a cwmp:ID that must be escaped on the way
 * back. Limits still hold for the new framings.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { AcsServer, type AcsServerOptions } from '../../src/cwmp/acs-server.js';
import { SessionEngine } from '../../src/cwmp/session.js';
import { DecodePool } from '../../src/cwmp/decode-pool.js';
import { decodeSoap, encodeSoap } from '../../src/cwmp/soap.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { silentLogger } from '../../src/app/log.js';
import { basicAuthorization } from '../../src/cwmp/http-auth.js';
import type { Inform, SoapEnvelope } from '../../src/cwmp/types.js';
import type { Store } from '../../src/store/types.js';
import { fixture, hasReference, REFERENCE } from '../helpers/paths.js';
import { deviceKeyOf } from '../../src/cwmp/device-id.js';
import type { AcsRequest } from '../../src/cwmp/types.js';
import path from 'node:path';
import { RawConnection, rawRequest, type RawResponse } from '../helpers/raw-http.js';

const MAX_BODY = 64 * 1024;

interface Harness {
  store: Store;
  engine: SessionEngine;
  server: AcsServer;
  port: number;
}

async function harness(
  auth: AcsServerOptions['auth'] = { mode: 'none', realm: 'r', username: '', password: '' },
  extra: Partial<AcsServerOptions> = {},
  store: Store = openSqliteStore(':memory:'),
): Promise<Harness> {
  const engine = new SessionEngine(
    store,
    { request: async () => ({ ok: true }), cancel: () => undefined },
    { sessionTimeoutMs: 5000, rpcDeadlineMs: 5000, holdRequests: false, setConnectionRequestCredentials: false, maxSessions: 100, endpointIdScheme: 'os' },
    silentLogger(),
  );
  const server = new AcsServer(
    engine,
    new DecodePool(0, 1 << 30),
    store,
    { host: '127.0.0.1', port: 0, maxBodyBytes: MAX_BODY, auth, closeDelimitedGraceMs: 200, ...extra },
    silentLogger(),
  );
  const port = await server.listen();
  return { store, engine, server, port };
}

async function close(h: Harness): Promise<void> {
  await h.server.close();
  await h.engine.close();
  await h.store.close();
}

function inform(serial: string, manufacturer = 'Acme', id = 'i1', version: SoapEnvelope['cwmpVersion'] = '1-0'): string {
  const body: Inform = {
    method: 'Inform',
    deviceId: { manufacturer, oui: '00D09E', productClass: 'Gw', serialNumber: serial },
    event: [{ eventCode: '2 PERIODIC', commandKey: '' }],
    maxEnvelopes: 1,
    currentTime: '2026-11-25T10:00:00Z',
    retryCount: 0,
    parameterList: [{ name: 'Device.DeviceInfo.SoftwareVersion', value: '1.0', type: 'xsd:string' }],
  };
  return encodeSoap({ cwmpVersion: version, id, body });
}

const keyOf = (serial: string): string => `00D09E-Gw-${serial}`;
const envelopeOf = (r: RawResponse): SoapEnvelope => decodeSoap(r.body.toString('utf8')).envelope!;
const cookieOf = (r: RawResponse): string => /session=([0-9a-f]+)/.exec(r.headers['set-cookie'] ?? '')![1]!;

let h: Harness;
before(async () => {
  h = await harness();
});
after(async () => close(h));

test('HTTP/1.0 with Keep-Alive: one connection carries the whole session, no cookie needed', async () => {
  const c = await RawConnection.open(h.port);
  const body = inform('K10');
  c.send(rawRequest({ version: '1.0', headers: { Connection: 'Keep-Alive', 'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(body) }, body }));
  const r1 = await c.response();
  assert.equal(r1.status, 200);
  assert.match(r1.headers.connection ?? '', /keep-alive/i);
  assert.equal(envelopeOf(r1).body.method, 'InformResponse');
  const rpc = h.engine.enqueue(keyOf('K10'), { method: 'GetRPCMethods' });
  c.send(rawRequest({ version: '1.0', headers: { Connection: 'Keep-Alive', 'Content-Length': 0 } }));
  const r2 = await c.response();
  const req = envelopeOf(r2);
  assert.equal(req.body.method, 'GetRPCMethods');
  const answer = encodeSoap({ cwmpVersion: '1-0', id: req.id, body: { method: 'GetRPCMethodsResponse', methodList: ['Inform'] } });
  c.send(rawRequest({ version: '1.0', headers: { Connection: 'Keep-Alive', 'Content-Length': Buffer.byteLength(answer) }, body: answer }));
  assert.equal((await c.response()).status, 204);
  assert.equal((await rpc).kind, 'response');
  c.destroy();
});

test('HTTP/1.0 without keep-alive: a connection per POST, the session carried by the cookie; the server closes each', async () => {
  const post = async (headers: Record<string, string | number>, body?: string): Promise<RawResponse> => {
    const c = await RawConnection.open(h.port);
    const all = body === undefined ? headers : { ...headers, 'Content-Length': Buffer.byteLength(body) };
    c.send(rawRequest({ version: '1.0', headers: all, body }));
    const r = await c.response();
    await c.closed();
    return r;
  };
  const r1 = await post({ 'Content-Type': 'text/xml; charset="utf-8"' }, inform('N10'));
  assert.equal(r1.status, 200);
  assert.match(r1.headers.connection ?? '', /close/i);
  const cookie = `session=${cookieOf(r1)}`;
  const rpc = h.engine.enqueue(keyOf('N10'), { method: 'GetRPCMethods' });
  const r2 = await post({ Cookie: cookie, 'Content-Length': 0 });
  const req = envelopeOf(r2);
  assert.equal(req.body.method, 'GetRPCMethods');
  const r3 = await post({ Cookie: cookie }, encodeSoap({ cwmpVersion: '1-0', id: req.id, body: { method: 'GetRPCMethodsResponse', methodList: ['Inform'] } }));
  assert.equal(r3.status, 204);
  assert.equal((await rpc).kind, 'response');
});

test('HTTP/1.0 body until close: no Content-Length, the client half-closes; in one write or split', async () => {
  for (const split of [false, true]) {
    const serial = split ? 'C10S' : 'C10';
    const c = await RawConnection.open(h.port);
    const body = inform(serial);
    const head = rawRequest({ version: '1.0', headers: { 'Content-Type': 'text/xml', Host: 'acs' } });
    if (split) {
      c.send(head);
      c.send(body.slice(0, 100));
      c.send(Buffer.from(body.slice(100), 'utf8'));
    } else c.send(Buffer.concat([head, Buffer.from(body, 'utf8')]));
    c.halfClose();
    const r = await c.response();
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(envelopeOf(r).body.method, 'InformResponse');
    assert.ok(await h.store.getDevice(keyOf(serial)), `${serial} registered`);
    await c.closed();
  }
});

/** Opens a session with an Inform on its own connection; returns the Cookie header value. */
async function openSession(serial: string): Promise<string> {
  const c = await RawConnection.open(h.port);
  const body = inform(serial);
  c.send(rawRequest({ headers: { 'Content-Length': Buffer.byteLength(body) }, body }));
  const res = await c.response();
  c.destroy();
  return cookieOf(res);
}

test('the empty POST without Content-Length: HTTP/1.0 half-closing or waiting, HTTP/1.1; and chunked zero-length', async () => {
  let cookie = '';
  const forms: [string, (c: RawConnection) => void][] = [
    ['HTTP/1.0, half-close', (c) => (c.send(rawRequest({ version: '1.0', headers: { Cookie: cookie } })), c.halfClose())],
    ['HTTP/1.0, waits', (c) => c.send(rawRequest({ version: '1.0', headers: { Cookie: cookie } }))],
    ['HTTP/1.1, no length', (c) => c.send(rawRequest({ headers: { Cookie: cookie, Host: 'acs' } }))],
    ['HTTP/1.1, Content-Length: 0', (c) => c.send(rawRequest({ headers: { Cookie: cookie, 'Content-Length': 0 } }))],
    [
      'HTTP/1.1, chunked zero-length',
      (c) => c.send(`${rawRequest({ headers: { Cookie: cookie, 'Transfer-Encoding': 'chunked' } }).toString('latin1')}0\r\n\r\n`),
    ],
  ];
  for (const [i, [name, send]] of forms.entries()) {
    // Each form in a session of its own: the 204 at the end of the previous one ended it.
    cookie = `session=${await openSession(`E${i}`)}`;
    const rpc = h.engine.enqueue(keyOf(`E${i}`), { method: 'GetRPCMethods' });
    const c = await RawConnection.open(h.port);
    send(c);
    const res = await c.response();
    assert.equal(res.status, 200, name);
    const req = envelopeOf(res);
    assert.equal(req.body.method, 'GetRPCMethods', name);
    c.destroy();
    const c2 = await RawConnection.open(h.port);
    const answer = encodeSoap({ cwmpVersion: '1-0', id: req.id, body: { method: 'GetRPCMethodsResponse', methodList: [] } });
    c2.send(rawRequest({ headers: { Cookie: cookie, 'Content-Length': Buffer.byteLength(answer) }, body: answer }));
    assert.equal((await c2.response()).status, 204, name);
    assert.equal((await rpc).kind, 'response', name);
    c2.destroy();
  }
});

/** The store with device reads delayed: the ACS answers an authenticated Inform only after it. */
function slowDeviceReads(store: Store, ms: number): Store {
  return new Proxy(store, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver) as unknown;
      if (key === 'getDevice') {
        return async (...args: Parameters<Store['getDevice']>) => {
          await new Promise((r) => setTimeout(r, ms));
          return target.getDevice(...args);
        };
      }
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

test('a client that half-closes right after its request gets the answer, however long the ACS takes', async () => {
  // Basic auth makes the ACS read the device before answering; the read is slowed so that the
  // client's close arrives first (node alone would drop the request and close).
  const slow = await harness({ mode: 'basic', realm: 'acs', username: 'cpe', password: 'pw' }, {}, slowDeviceReads(openSqliteStore(':memory:'), 150));
  try {
    const forms: [string, '1.0' | '1.1', Record<string, string>][] = [
      ['HTTP/1.0 with Content-Length', '1.0', {}],
      ['HTTP/1.1 Connection: close', '1.1', { Connection: 'close' }],
    ];
    for (const [i, [name, version, headers]] of forms.entries()) {
      const c = await RawConnection.open(slow.port);
      const body = inform(`HC${i}`);
      c.send(rawRequest({ version, headers: { ...headers, Authorization: basicAuthorization('cpe', 'pw'), 'Content-Length': Buffer.byteLength(body) }, body }));
      c.halfClose();
      const r = await c.response();
      assert.equal(r.status, 200, name);
      assert.equal(envelopeOf(r).body.method, 'InformResponse', name);
      await c.closed();
    }
  } finally {
    await close(slow);
  }
});

test('bare LF heads (RFC 9112 2.2), keep-alive, Content-Length then chunked with LF chunk lines', async () => {
  const c = await RawConnection.open(h.port);
  const body = inform('LF1');
  c.send(rawRequest({ eol: '\n', headers: { Host: 'acs', 'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(body) }, body }));
  const r1 = await c.response();
  assert.equal(r1.status, 200, r1.body.toString());
  const rpc = h.engine.enqueue(keyOf('LF1'), { method: 'GetRPCMethods' });
  // The empty POST, chunked, every line with bare LF: found by the connection.
  c.send('POST / HTTP/1.1\nHost: acs\nTransfer-Encoding: chunked\n\n0\n\n');
  const r2 = await c.response();
  const req = envelopeOf(r2);
  assert.equal(req.body.method, 'GetRPCMethods');
  const answer = Buffer.from(encodeSoap({ cwmpVersion: '1-0', id: req.id, body: { method: 'GetRPCMethodsResponse', methodList: ['Inform'] } }), 'utf8');
  const half = Math.floor(answer.length / 2);
  c.send(
    Buffer.concat([
      Buffer.from(`POST / HTTP/1.1\nHost: acs\nTransfer-Encoding: chunked\n\n${half.toString(16)}\n`, 'latin1'),
      answer.subarray(0, half),
      Buffer.from(`\n${(answer.length - half).toString(16)}\r\n`, 'latin1'),
      answer.subarray(half),
      Buffer.from('\r\n0\nX-Trailer: 1\n\n', 'latin1'),
    ]),
  );
  assert.equal((await c.response()).status, 204);
  assert.equal((await rpc).kind, 'response');
  c.destroy();
});

test('Content-Type variants and a missing Content-Type: the body decides', async () => {
  const types = [
    'text/xml; charset="utf-8"',
    'text/xml;charset=UTF-8',
    'text/xml',
    'application/soap+xml',
    'application/soap+xml; charset=utf-8; action="Inform"',
    undefined,
  ];
  for (const [i, ct] of types.entries()) {
    const c = await RawConnection.open(h.port);
    const body = inform(`CT${i}`);
    const headers: Record<string, string | number> = { 'Content-Length': Buffer.byteLength(body) };
    if (ct !== undefined) headers['Content-Type'] = ct;
    c.send(rawRequest({ headers, body }));
    const r = await c.response();
    assert.equal(r.status, 200, String(ct));
    assert.equal(envelopeOf(r).body.method, 'InformResponse', String(ct));
    c.destroy();
  }
});

test('charsets: ISO-8859-1 by header or by XML declaration, UTF-16 with a BOM; BOM, leading whitespace and CRLF in UTF-8', async () => {
  const name = 'Société Générale Ü€';
  const latin = (serial: string, decl: string): Buffer =>
    Buffer.from(inform(serial, 'Société Générale Ü').replace('<?xml version="1.0" encoding="UTF-8"?>', decl), 'latin1');
  const cases: [string, Buffer, string | undefined, string][] = [
    ['latin1 by header', latin('CS1', '<?xml version="1.0"?>'), 'text/xml; charset=ISO-8859-1', 'Société Générale Ü'],
    ['latin1 by declaration', latin('CS2', '<?xml version="1.0" encoding="ISO-8859-1"?>'), 'text/xml', 'Société Générale Ü'],
    // A fixed charset="utf-8" header over ISO-8859-1 bytes that the declaration names.
    ['latin1 under a utf-8 header', latin('CS3', "<?xml version='1.0' encoding='iso-8859-1'?>"), 'text/xml; charset="utf-8"', 'Société Générale Ü'],
    ['UTF-16LE with BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(inform('CS4', name), 'utf16le')]), 'text/xml; charset=utf-16', name],
    [
      'UTF-8: BOM, CRLF, whitespace before the declaration',
      Buffer.from(`\uFEFF\r\n  ${inform('CS5', name).replace(/(<\/[^>]+>|\?>)(?=<)/g, '$1\r\n')}\r\n`, 'utf8'),
      'text/xml;charset=UTF-8',
      name,
    ],
  ];
  for (const [label, body, ct, manufacturer] of cases) {
    const c = await RawConnection.open(h.port);
    const headers: Record<string, string | number> = { 'Content-Length': body.length };
    if (ct) headers['Content-Type'] = ct;
    c.send(rawRequest({ headers, body }));
    const r = await c.response();
    assert.equal(r.status, 200, `${label}: ${r.body.toString()}`);
    const serial = /<SerialNumber>([^<]+)</.exec(body.toString(label.startsWith('UTF-16') ? 'utf16le' : 'latin1'))![1]!;
    assert.equal((await h.store.getDevice(keyOf(serial)))?.deviceId.manufacturer, manufacturer, label);
    c.destroy();
  }
});

test('MaxEnvelopes 5 and a cwmp:ID with XML specials: InformResponse says 1 and echoes the ID escaped', async () => {
  const xml = readFileSync(fixture('soap', 'foreign', 'Inform-SOAP-ENV-CRLF-maxenvelopes.1-0.xml'));
  const c = await RawConnection.open(h.port);
  c.send(rawRequest({ headers: { 'Content-Type': 'text/xml; charset="utf-8"', 'Content-Length': xml.length }, body: xml }));
  const r = await c.response();
  assert.equal(r.status, 200);
  const text = r.body.toString('utf8');
  assert.ok(text.includes('<cwmp:ID soap-env:mustUnderstand="1">&lt;id&gt; &quot;7&quot; &amp; &apos;x&apos; é ]]&gt;</cwmp:ID>'), text);
  assert.ok(text.includes('<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>'), text);
  assert.equal(envelopeOf(r).id, `<id> "7" & 'x' é ]]>`);
  c.destroy();
});

test('every foreign-style Inform fixture opens a session; the answer uses its cwmp version and echoes its ID', async () => {
  const dir = fixture('soap', 'foreign');
  const files = readdirSync(dir).filter((f) => f.startsWith('Inform') && f.endsWith('.xml'));
  assert.ok(files.length >= 6);
  for (const f of files) {
    const want = JSON.parse(readFileSync(`${dir}/${f.replace(/\.xml$/, '.json')}`, 'utf8')) as SoapEnvelope;
    const xml = readFileSync(`${dir}/${f}`);
    const c = await RawConnection.open(h.port);
    c.send(rawRequest({ headers: { 'Content-Length': xml.length }, body: xml }));
    const r = await c.response();
    assert.equal(r.status, 200, `${f}: ${r.body.toString()}`);
    const env = envelopeOf(r);
    assert.equal(env.body.method, 'InformResponse', f);
    assert.equal(env.cwmpVersion, want.cwmpVersion, f);
    // An Inform without cwmp:ID is answered with an ID of the ACS's choosing.
    if (want.id !== null) assert.equal(env.id, want.id, f);
    c.destroy();
  }
});

test('Expect: 100-continue (libcurl-based agents): 100 first, then the answer', async () => {
  const c = await RawConnection.open(h.port);
  const body = inform('EX1');
  c.send(rawRequest({ headers: { Expect: '100-continue', 'Content-Length': Buffer.byteLength(body) } }));
  const cont = await c.response();
  assert.equal(cont.status, 100);
  c.send(body);
  const r = await c.response();
  assert.equal(r.status, 200);
  c.destroy();
});

test('cookies echoed quoted, with $Version, or with the Set-Cookie attributes continue the session', async () => {
  const forms = [
    (id: string) => `$Version="1"; session="${id}"; $Path="/"`,
    (id: string) => `session=${id}; Path=/; HttpOnly`,
    (id: string) => `other=1; session="${id}"`,
  ];
  for (const [i, form] of forms.entries()) {
    const header = form(await openSession(`QC${i}`));
    const rpc = h.engine.enqueue(keyOf(`QC${i}`), { method: 'GetRPCMethods' });
    const c2 = await RawConnection.open(h.port);
    c2.send(rawRequest({ headers: { Cookie: header, 'Content-Length': 0 } }));
    const req = envelopeOf(await c2.response());
    assert.equal(req.body.method, 'GetRPCMethods', header);
    const answer = encodeSoap({ cwmpVersion: '1-0', id: req.id, body: { method: 'GetRPCMethodsResponse', methodList: [] } });
    c2.send(rawRequest({ headers: { Cookie: header, 'Content-Length': Buffer.byteLength(answer) }, body: answer }));
    assert.equal((await c2.response()).status, 204, header);
    assert.equal((await rpc).kind, 'response');
    c2.destroy();
  }
});

test('limits hold for the new framings: close-delimited body over the limit 413, never-ending 408, bare-LF head over 16 KiB 431', async () => {
  const big = await RawConnection.open(h.port);
  big.send(rawRequest({ version: '1.0' }));
  big.send(Buffer.alloc(MAX_BODY + 1024, 0x20));
  const r413 = await big.response();
  assert.equal(r413.status, 413);
  await big.closed();

  const slow = await harness(undefined, { requestTimeoutMs: 600, headersTimeoutMs: 600 });
  try {
    const c = await RawConnection.open(slow.port);
    c.send(rawRequest({ version: '1.0' }));
    c.send('<soap-env:Envelope'); // and never the rest, nor the close
    const r408 = await c.response();
    assert.equal(r408.status, 408);
    await c.closed();
  } finally {
    await close(slow);
  }

  const huge = await RawConnection.open(h.port);
  huge.send(`POST / HTTP/1.1\nHost: acs\n${'X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n'.repeat(300)}\n`);
  const r431 = await huge.response();
  assert.equal(r431.status, 431);
  await huge.closed();
});

test('auth is unchanged by the framing: a close-delimited HTTP/1.0 Inform needs the right Basic credentials', async () => {
  const b = await harness({ mode: 'basic', realm: 'acs', username: 'cpe', password: 'pw' });
  try {
    for (const [auth, status] of [
      [basicAuthorization('cpe', 'nope'), 401],
      [basicAuthorization('cpe', 'pw'), 200],
    ] as const) {
      const c = await RawConnection.open(b.port);
      c.send(rawRequest({ version: '1.0', headers: { Authorization: auth }, body: inform('AU1') }));
      c.halfClose();
      const r = await c.response();
      assert.equal(r.status, status);
      if (status === 401) assert.match(r.headers['www-authenticate'] ?? '', /^Basic realm="acs"/);
      await c.closed();
    }
  } finally {
    await close(b);
  }
});

/** A captured request file: head lines as stored (LF) or as node's client sent them (CRLF), body byte for byte. */
function captured(file: string, crlfHead: boolean): Buffer {
  const raw = readFileSync(path.join(REFERENCE, 'cwmp-samples', file));
  const split = raw.indexOf('\n\n');
  const head = raw.subarray(0, split + 2).toString('latin1');
  return Buffer.concat([Buffer.from(crlfHead ? head.replace(/\r?\n/g, '\r\n') : head, 'latin1'), raw.subarray(split + 2)]);
}

test('captured CPE sessions replayed byte for byte, heads as stored (bare LF) and as sent (CRLF)', async (t) => {
  if (!hasReference('cwmp-samples')) return t.skip('reference absent: ../shared/reference/cwmp-samples');
  const files = readdirSync(path.join(REFERENCE, 'cwmp-samples'));
  const file = (n: string): string => files.find((f) => f.startsWith(`${n}-`))!;
  const acsRpc = (n: string): AcsRequest => decodeSoap(readFileSync(path.join(REFERENCE, 'cwmp-samples', file(n)), 'utf8')).envelope!.body as AcsRequest;
  // Each session: the CPE's POSTs in order, the RPCs the ACS has queued, what each POST must get.
  const sessions: { posts: [string, number, string | null][]; rpcs: string[] }[] = [
    {
      posts: [
        ['01', 200, 'InformResponse'],
        ['03', 200, 'GetParameterValues'],
        ['05', 204, null],
      ],
      rpcs: ['04'],
    },
    {
      posts: [
        ['06', 200, 'InformResponse'],
        ['03', 200, 'SetParameterValues'],
        ['08', 200, 'Download'],
        ['10', 204, null],
      ],
      rpcs: ['07', '09'],
    },
    {
      posts: [
        ['11', 200, 'InformResponse'],
        ['12', 200, 'TransferCompleteResponse'],
        ['03', 204, null],
      ],
      rpcs: [],
    },
    {
      posts: [
        ['22', 200, 'InformResponse'],
        ['03', 204, null],
      ],
      rpcs: [],
    },
    {
      posts: [
        ['24', 200, 'InformResponse'],
        ['03', 204, null],
      ],
      rpcs: [],
    },
    // The fork's TransferComplete nested in the Inform: the Inform is taken, the rest ignored.
    {
      posts: [
        ['25', 200, 'InformResponse'],
        ['03', 204, null],
      ],
      rpcs: [],
    },
  ];
  for (const crlf of [false, true]) {
    for (const { posts, rpcs } of sessions) {
      const c = await RawConnection.open(h.port);
      const pending: Promise<unknown>[] = [];
      for (const [n, status, method] of posts) {
        const bytes = captured(file(n), crlf);
        c.send(bytes);
        const r = await c.response();
        const what = `${file(n)} (${crlf ? 'CRLF' : 'LF'} head)`;
        assert.equal(r.status, status, `${what}: ${r.body.toString()}`);
        if (method !== null) assert.equal(envelopeOf(r).body.method, method, what);
        if (method === 'InformResponse') {
          const sent = decodeSoap(bytes.subarray(bytes.indexOf('<?xml')).toString('utf8')).envelope!;
          assert.equal(envelopeOf(r).id, sent.id, `${what}: cwmp:ID echoed`);
          const key = sent.body.method === 'Inform' ? deviceKeyOf(sent.body.deviceId) : '';
          for (const rpc of rpcs) pending.push(h.engine.enqueue(key, acsRpc(rpc)));
        }
      }
      const outcomes = (await Promise.all(pending)) as { kind: string }[];
      assert.deepEqual(
        outcomes.map((o) => o.kind),
        rpcs.map(() => 'response'),
      );
      c.destroy();
    }
  }
  // Sample 21: a wrong Content-Length cut the body's last byte: refused, and the server stays up.
  const c = await RawConnection.open(h.port);
  c.send(captured(file('21'), true));
  const r = await c.response();
  assert.equal(r.status, 400);
  assert.match(r.body.toString(), /malformed-xml/);
  c.destroy();
});
