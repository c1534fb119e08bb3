/**
 * Who is speaking: ControllerIdentities' decisions on their own (WebSocket handshakes, the trust of
 * each Record, configuration errors), the limits' building blocks, then the WebSocket MTP with those
 * decisions over real loopback sockets: secrets, pinned and CA-issued client certificates
 * (subjectAltName urn:bbf:usp:id, TR-369 R-SEC.0a), R-WS.4 replacement only by a proved session,
 * the handshake deadline and the limits on untrusted connections.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { ConfigError, loadConfig, type ControllerConfig } from '../../src/app/config.js';
import { createLogger } from '../../src/app/log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { AgentSide } from '../../src/usp/agent/agent-side.js';
import { ControllerIdentities } from '../../src/usp/agent/controller-identity.js';
import { LogLimiter, RequestLimits } from '../../src/usp/agent/limits.js';
import type { InboundRecord, MtpChannelOpen, WsHandshakeFacts } from '../../src/usp/mtp/types.js';
import { WebSocketMtp, bearerToken, endpointIdsOfSubjectAltName } from '../../src/usp/mtp/websocket.js';
import { issueClientCert, makeTestPki, OPENSSL_MISSING, selfSignedCert, type TestPki } from '../helpers/certs.js';
import { connectPeer, HandshakeRefused, type PeerSocket, withTimeout } from '../helpers/ws-peer.js';

const SECRET_CTL = 'proto::secret-ctl';
const PINNED_CTL = 'proto::pinned-ctl';
const LAB_CTL = 'proto::lab-ctl';
const AGENT = 'os::00D09E-AUTH1';
const SECRET = 'a-long-random-secret-for-the-test';
const FP = 'AB:'.repeat(31) + 'AB';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cup-ctl-auth-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function controllers(extra: Record<string, unknown>[] = [], fingerprint = FP): ControllerConfig[] {
  return loadConfig({
    env: {},
    overrides: {
      controllers: [
        { endpointId: SECRET_CTL, websocket: { secret: SECRET }, mqtt: { topic: '/secret-ctl' } },
        { endpointId: PINNED_CTL, tls: { fingerprint } },
        { endpointId: LAB_CTL, mqtt: { topic: '/lab', agentTopic: '/usp/agent/lab' } },
        ...extra,
      ],
    },
  }).controllers;
}

const facts = (f: Partial<WsHandshakeFacts>): WsHandshakeFacts => ({ claimedEid: null, bearer: null, certificate: null, ...f });
const cert = (endpointIds: string[], authorized = true, fingerprint256 = 'CD:'.repeat(31) + 'CD') => ({ authorized, fingerprint256, endpointIds });

describe('ControllerIdentities: the WebSocket handshake', () => {
  const ids = new ControllerIdentities(controllers(), { requireWsAuth: false, allowUntrusted: false });
  const lenient = new ControllerIdentities(controllers(), { requireWsAuth: false, allowUntrusted: true });
  const strict = new ControllerIdentities(controllers(), { requireWsAuth: true, allowUntrusted: false });

  test('a secret proves the controller it belongs to, with or without ?eid=', () => {
    assert.deepEqual(ids.decideWs(facts({ claimedEid: SECRET_CTL, bearer: SECRET })), {
      accept: true,
      peerEid: SECRET_CTL,
      authenticated: true,
      authFailed: false,
      untrusted: false,
      method: 'secret',
    });
    const d = ids.decideWs(facts({ bearer: SECRET }));
    assert.ok(d.accept && d.peerEid === SECRET_CTL && d.authenticated);
  });

  test('a configured controller with a credential that does not present it, or a wrong secret: 401, or untrusted under allowUntrusted', () => {
    for (const f of [facts({ claimedEid: SECRET_CTL }), facts({ claimedEid: SECRET_CTL, bearer: 'guess' }), facts({ claimedEid: PINNED_CTL })]) {
      const d = ids.decideWs(f);
      assert.equal(d.accept, false);
      assert.equal(!d.accept && d.status, 401);
      const l = lenient.decideWs(f);
      assert.deepEqual(l, { accept: true, peerEid: f.claimedEid, authenticated: false, authFailed: true, untrusted: true });
    }
    const wrong = ids.decideWs(facts({ claimedEid: 'proto::nobody', bearer: 'guess' }));
    assert.ok(!wrong.accept && wrong.status === 401 && /belongs to no configured controller/.test(wrong.reason));
  });

  test('credentials of one controller cannot be used to speak as another: 403', () => {
    const d = ids.decideWs(facts({ claimedEid: LAB_CTL, bearer: SECRET }));
    assert.ok(!d.accept && d.status === 403 && d.reason.includes(SECRET_CTL));
    const c = ids.decideWs(facts({ claimedEid: SECRET_CTL, certificate: cert([LAB_CTL]) }));
    assert.ok(!c.accept && c.status === 403);
  });

  test('a controller without a credential is taken at its word (labs), unless requireAuth', () => {
    assert.deepEqual(ids.decideWs(facts({ claimedEid: LAB_CTL })), {
      accept: true,
      peerEid: LAB_CTL,
      authenticated: false,
      authFailed: false,
      untrusted: false,
    });
    const s = strict.decideWs(facts({ claimedEid: LAB_CTL }));
    assert.ok(!s.accept && s.status === 401);
  });

  test('a controller that is not configured is accepted as untrusted (it gets answers: 7006)', () => {
    assert.deepEqual(ids.decideWs(facts({ claimedEid: 'proto::stranger' })), {
      accept: true,
      peerEid: 'proto::stranger',
      authenticated: false,
      authFailed: false,
      untrusted: true,
    });
    assert.deepEqual(strict.decideWs(facts({})), { accept: true, peerEid: null, authenticated: false, authFailed: false, untrusted: true });
  });

  test('certificates: the subjectAltName Endpoint ID of a CA-verified certificate (R-SEC.0a), or a pinned fingerprint', () => {
    const san = ids.decideWs(facts({ claimedEid: LAB_CTL, certificate: cert([LAB_CTL]) }));
    assert.ok(san.accept && san.authenticated && san.method === 'certificate');
    const noCa = ids.decideWs(facts({ claimedEid: LAB_CTL, certificate: cert([LAB_CTL], false) }));
    assert.ok(noCa.accept && !noCa.authenticated, 'a subjectAltName without a trusted chain proves nothing');
    const pinned = ids.decideWs(facts({ certificate: cert([], false, FP.toLowerCase()) }));
    assert.ok(pinned.accept && pinned.peerEid === PINNED_CTL && pinned.authenticated && pinned.method === 'fingerprint');
    const two = ids.decideWs(facts({ certificate: cert([LAB_CTL, SECRET_CTL]) }));
    assert.ok(!two.accept && two.status === 400);
  });
});

describe('ControllerIdentities: the trust of a Record', () => {
  const ids = new ControllerIdentities(controllers(), { requireWsAuth: false, allowUntrusted: false });
  const lenient = new ControllerIdentities(controllers(), { requireWsAuth: false, allowUntrusted: true });
  const inbound = (r: Partial<InboundRecord>): InboundRecord => ({
    mtp: 'websocket',
    bytes: new Uint8Array(0),
    replyTo: null,
    agentEid: null,
    peerEid: null,
    ...r,
  });
  const kind = (t: ReturnType<ControllerIdentities['trustOf']>): string => (t.kind === 'untrusted' ? `untrusted: ${t.reason}` : t.kind);

  test('WebSocket: proved, stated, contradicted, failed', () => {
    assert.equal(kind(ids.trustOf(SECRET_CTL, inbound({ peerEid: SECRET_CTL, authenticated: true }))), 'trusted');
    assert.equal(kind(ids.trustOf(SECRET_CTL, inbound({}))), 'refused', 'on the shared path without proof');
    assert.equal(kind(lenient.trustOf(SECRET_CTL, inbound({}))), 'untrusted: not authenticated');
    assert.equal(kind(ids.trustOf(LAB_CTL, inbound({}))), 'trusted');
    assert.equal(kind(ids.trustOf(LAB_CTL, inbound({ peerEid: SECRET_CTL, authenticated: true }))), 'refused');
    assert.equal(kind(lenient.trustOf(LAB_CTL, inbound({ peerEid: LAB_CTL, authFailed: true }))), 'untrusted: not authenticated');
    assert.equal(kind(ids.trustOf('proto::stranger', inbound({ peerEid: 'proto::stranger' }))), 'untrusted: not configured');
  });

  test('MQTT: a bound topic speaks only for its controller; that controller only there. STOMP: the broker authenticates', () => {
    assert.equal(kind(ids.trustOf(LAB_CTL, inbound({ mtp: 'mqtt', channel: '/usp/agent/lab' }))), 'trusted');
    assert.equal(kind(ids.trustOf(LAB_CTL, inbound({ mtp: 'mqtt', channel: '/usp/agent' }))), 'refused');
    assert.equal(kind(ids.trustOf(SECRET_CTL, inbound({ mtp: 'mqtt', channel: '/usp/agent/lab' }))), 'refused');
    assert.equal(kind(ids.trustOf('proto::stranger', inbound({ mtp: 'mqtt', channel: '/usp/agent/lab' }))), 'refused');
    assert.equal(kind(ids.trustOf(SECRET_CTL, inbound({ mtp: 'mqtt', channel: '/usp/agent' }))), 'trusted');
    assert.equal(kind(ids.trustOf(SECRET_CTL, inbound({ mtp: 'stomp' }))), 'trusted');
    assert.equal(kind(ids.trustOf('proto::stranger', inbound({ mtp: 'stomp' }))), 'untrusted: not configured');
  });
});

describe('configuration of controller credentials', () => {
  test('secretFile is read once (whitespace trimmed); a missing or empty file names its key', () => {
    const f = path.join(tmp, 'secret');
    writeFileSync(f, `${SECRET}\n`);
    const ids = new ControllerIdentities(controllers([{ endpointId: 'proto::file-ctl', websocket: { secretFile: f } }]), {
      requireWsAuth: false,
      allowUntrusted: false,
    });
    const d = ids.decideWs(facts({ claimedEid: 'proto::file-ctl', bearer: SECRET }));
    assert.ok(d.accept && d.authenticated);
    assert.throws(
      () =>
        new ControllerIdentities(controllers([{ endpointId: 'proto::x', websocket: { secretFile: path.join(tmp, 'nope') } }]), {
          requireWsAuth: false,
          allowUntrusted: false,
        }),
      (e: Error) => e instanceof ConfigError && /controllers\[3\]\.websocket\.secretFile: cannot read .*nope: ENOENT/.test(e.message),
    );
    const empty = path.join(tmp, 'empty');
    writeFileSync(empty, '\n');
    assert.throws(
      () =>
        new ControllerIdentities(controllers([{ endpointId: 'proto::x', websocket: { secretFile: empty } }]), { requireWsAuth: false, allowUntrusted: false }),
      /is empty/,
    );
  });

  test('bad combinations fail at load, naming the key; the secret itself is never in a message', () => {
    const load =
      (c: Record<string, unknown>[], extra: Record<string, unknown> = {}) =>
      () =>
        loadConfig({ env: {}, overrides: { controllers: c, ...extra } });
    assert.throws(
      load([{ endpointId: 'a', websocket: { secret: 'hunter2', secretFile: '/x' } }]),
      (e: Error) => /secret or secretFile, not both/.test(e.message) && !e.message.includes('hunter2'),
    );
    assert.throws(load([{ endpointId: 'a', tls: { fingerprint: 'AB:CD' } }]), /controllers\[0\]\.tls\.fingerprint: expected SHA-256/);
    assert.throws(load([{ endpointId: 'a' }, { endpointId: 'a' }]), /configured twice/);
    assert.throws(
      load([
        { endpointId: 'a', mqtt: { agentTopic: '/t' } },
        { endpointId: 'b', mqtt: { agentTopic: '/t' } },
      ]),
      /already bound to a/,
    );
    assert.throws(load([{ endpointId: 'a', mqtt: { agentTopic: '/usp/endpoint' } }]), /every controller shares/);
    assert.throws(load([{ endpointId: 'a', mqtt: { agentTopic: '/t/#' } }]), /not a filter/);
    const ok = load([{ endpointId: 'a', tls: { fingerprint: `${FP.replace(/:/g, '').toLowerCase()}, ${FP}` } }])();
    assert.equal(ok.controllers[0]!.tls.fingerprint.split(',').length, 2);
  });
});

describe('limits', () => {
  test('in progress: beyond the limit 7005 until one is done; done() counts once', () => {
    const l = new RequestLimits({ maxInFlight: 2, ratePerS: 1000, burst: 1000, now: () => 0 });
    const a = l.admit('k', 'k');
    const b = l.admit('k', 'k');
    const c = l.admit('k', 'k');
    assert.ok(a.ok && b.ok);
    assert.ok(!c.ok && c.code === 7005 && /limit 2/.test(c.message));
    a.done();
    a.done();
    assert.equal(l.inFlight('k'), 1);
    assert.ok(l.admit('k', 'k').ok);
    assert.ok(l.admit('other', 'other').ok, 'keys are independent');
  });

  test('the log limiter: one line per key per interval, over a bounded set of keys', () => {
    let now = 0;
    const lim = new LogLimiter(1000, 3, () => now);
    assert.deepEqual(lim.allow('a'), { log: true, suppressed: 0 });
    assert.deepEqual(lim.allow('a'), { log: false });
    assert.ok(lim.allow('b').log && lim.allow('c').log);
    assert.deepEqual(lim.allow('d'), { log: false }, 'full of recent keys: a new key waits');
    now = 1000;
    assert.deepEqual(lim.allow('d'), { log: true, suppressed: 1 }, 'the oldest expired: d takes its place; the line held back since b is reported');
    assert.deepEqual(lim.allow('a'), { log: true, suppressed: 0 });
  });
});

describe('helpers', () => {
  test('bearer tokens and subjectAltName Endpoint IDs', () => {
    assert.equal(bearerToken('Bearer abc.def'), 'abc.def');
    assert.equal(bearerToken('bearer   xyz  '), 'xyz');
    assert.equal(bearerToken('Basic dXNlcjpwYXNz'), null);
    assert.equal(bearerToken(undefined), null);
    assert.deepEqual(endpointIdsOfSubjectAltName('DNS:ctl.example, URI:urn:bbf:usp:id:proto::a, URI:https://x, URI:urn:bbf:usp:id:oui:00D09E:b'), [
      'proto::a',
      'oui:00D09E:b',
    ]);
    assert.deepEqual(endpointIdsOfSubjectAltName(undefined), []);
  });
});

// ------------------------------------------------------------------ over real sockets

interface Server {
  mtp: WebSocketMtp;
  url: string;
  records: InboundRecord[];
  opens: MtpChannelOpen[];
  stop(): Promise<void>;
}

const servers: Server[] = [];
const peers: PeerSocket[] = [];
after(async () => {
  for (const p of peers) await p.close().catch(() => undefined);
  for (const s of servers) await s.stop();
});

async function server(
  ids: ControllerIdentities,
  over: {
    tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
    handshakeTimeoutMs?: number;
    maxUntrusted?: number;
    perAddress?: number;
    untrustedIdleTimeoutMs?: number;
  } = {},
): Promise<Server> {
  const records: InboundRecord[] = [];
  const opens: MtpChannelOpen[] = [];
  const mtp = new WebSocketMtp({
    server: {
      host: '127.0.0.1',
      port: 0,
      path: '/usp',
      maxRecordBytes: 64 * 1024,
      pingIntervalMs: 60_000,
      tls: over.tls ?? null,
      authenticate: (f) => ids.decideWs(f),
      handshakeTimeoutMs: over.handshakeTimeoutMs,
      maxUntrustedConnections: over.maxUntrusted,
      maxUntrustedConnectionsPerAddress: over.perAddress,
      untrustedIdleTimeoutMs: over.untrustedIdleTimeoutMs,
    },
    client: null,
    isAgent: (eid) => eid === AGENT,
  });
  mtp.on('record', (r) => records.push(r));
  mtp.on('channelOpen', (c) => opens.push(c));
  await mtp.start();
  const port = mtp.serverAddress()!.port;
  const s: Server = { mtp, url: `${over.tls ? 'wss' : 'ws'}://127.0.0.1:${port}/usp`, records, opens, stop: () => mtp.stop() };
  servers.push(s);
  return s;
}

async function dial(url: string, opts: Parameters<typeof connectPeer>[1] = {}): Promise<PeerSocket> {
  const p = await connectPeer(url, opts);
  peers.push(p);
  return p;
}

async function refused(url: string, opts: Parameters<typeof connectPeer>[1] = {}): Promise<HandshakeRefused> {
  try {
    const p = await connectPeer(url, opts);
    peers.push(p);
  } catch (e) {
    if (e instanceof HandshakeRefused) return e;
    throw e;
  }
  assert.fail(`the handshake to ${url} was accepted`);
}

const eidUrl = (base: string, eid: string, agent = true): string => `${agent ? `${base}/${encodeURIComponent(AGENT)}` : base}?eid=${encodeURIComponent(eid)}`;
const bearer = (s: string) => ({ headers: { Authorization: `Bearer ${s}` } });

/** A marker sent to the controller's session (as a Notify would go), and which peer got it. */
async function sendToController(s: Server, eid: string, marker: string): Promise<void> {
  await s.mtp.send(AGENT, { mtp: 'websocket', address: `controller:${eid}` }, new TextEncoder().encode(marker));
}

describe('WebSocket MTP with controller identities (real sockets)', () => {
  test('an impostor with a configured eid but no secret is refused (401); the real controller keeps its session and what is sent to it', async () => {
    const s = await server(new ControllerIdentities(controllers(), { requireWsAuth: false, allowUntrusted: false }));
    const real = await dial(eidUrl(s.url, SECRET_CTL), bearer(SECRET));
    const r = await refused(eidUrl(s.url, SECRET_CTL));
    assert.equal(r.status, 401);
    assert.equal(r.responseHeaders['www-authenticate'], 'Bearer realm="usp"');
    assert.match(r.body, /must authenticate/);
    assert.ok(!r.body.includes(SECRET));
    const wrong = await refused(eidUrl(s.url, SECRET_CTL), bearer('not-it'));
    assert.equal(wrong.status, 401);
    // Spoofing the credential of another controller: 403.
    assert.equal((await refused(eidUrl(s.url, LAB_CTL), bearer(SECRET))).status, 403);
    await sendToController(s, SECRET_CTL, 'notify-1');
    assert.equal((await real.nextMessage()).data.toString(), 'notify-1');
    real.send(new Uint8Array([1, 2, 3]));
    const rec = await withTimeout(new Promise<InboundRecord>((resolve) => s.mtp.once('record', resolve)), 2000, 'record');
    assert.equal(rec.peerEid, SECRET_CTL);
    assert.equal(rec.authenticated, true);
  });

  test("allowUntrusted: the impostor is let in as untrusted, never as the controller's session", async () => {
    const s = await server(new ControllerIdentities(controllers(), { requireWsAuth: false, allowUntrusted: true }));
    const real = await dial(eidUrl(s.url, SECRET_CTL), bearer(SECRET));
    const impostor = await dial(eidUrl(s.url, SECRET_CTL));
    await sendToController(s, SECRET_CTL, 'notify-2');
    assert.equal((await real.nextMessage()).data.toString(), 'notify-2');
    impostor.send(new Uint8Array([9]));
    const rec = await withTimeout(new Promise<InboundRecord>((resolve) => s.mtp.once('record', resolve)), 2000, 'record');
    assert.equal(rec.authFailed, true);
    assert.equal(rec.authenticated, false);
    assert.equal(impostor.messages.length, 0);
    assert.equal(real.ws.readyState, real.ws.OPEN);
  });

  test('R-WS.4 still holds for proved sessions: the same controller reconnecting with its secret replaces its older session', async () => {
    const s = await server(new ControllerIdentities(controllers(), { requireWsAuth: false, allowUntrusted: false }));
    const first = await dial(eidUrl(s.url, SECRET_CTL), bearer(SECRET));
    const second = await dial(eidUrl(s.url, SECRET_CTL), bearer(SECRET));
    const closed = await withTimeout(first.closed, 3000, 'older session closed');
    assert.equal(closed.code, 1000);
    await sendToController(s, SECRET_CTL, 'to-the-newer');
    assert.equal((await second.nextMessage()).data.toString(), 'to-the-newer');
  });

  test('handshake deadline: a peer that opens TCP and sends nothing, or half a request, is disconnected', async () => {
    const s = await server(new ControllerIdentities(controllers(), { requireWsAuth: false, allowUntrusted: false }), { handshakeTimeoutMs: 200 });
    const port = s.mtp.serverAddress()!.port;
    const idle = net.connect({ host: '127.0.0.1', port });
    const half = net.connect({ host: '127.0.0.1', port });
    half.on('connect', () => half.write('GET /usp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'));
    const closed = [idle, half].map((sock) => {
      sock.on('error', () => undefined);
      return new Promise((r) => sock.once('close', r));
    });
    await withTimeout(Promise.all(closed), 10_000, 'both sockets closed by the server');
    assert.equal(s.mtp.handshakeTimeouts, 2);
    // A peer that completes its handshake is not affected.
    const ok = await dial(eidUrl(s.url, LAB_CTL));
    assert.equal(ok.ws.readyState, ok.ws.OPEN);
  });

  test('untrusted connections are limited per address and in all; configured controllers still get in', async () => {
    const s = await server(new ControllerIdentities(controllers(), { requireWsAuth: false, allowUntrusted: false }), { maxUntrusted: 10, perAddress: 2 });
    const a = await dial(eidUrl(s.url, 'proto::stranger-a'));
    await dial(eidUrl(s.url, 'proto::stranger-b'));
    const over = await refused(eidUrl(s.url, 'proto::stranger-c'));
    assert.equal(over.status, 503);
    assert.match(over.body, /untrusted/);
    await dial(eidUrl(s.url, LAB_CTL));
    await dial(eidUrl(s.url, SECRET_CTL), bearer(SECRET));
    const gone = new Promise((r) => s.mtp.once('channelClose', r));
    await a.close();
    await withTimeout(gone, 3000, 'server saw the close');
    await dial(eidUrl(s.url, 'proto::stranger-c'));
  });

  test('an untrusted connection that sends no Record is closed (1008) after untrustedIdleTimeoutMs; Records keep one open; configured controllers are not timed', async () => {
    const s = await server(new ControllerIdentities(controllers(), { requireWsAuth: false, allowUntrusted: false }), { untrustedIdleTimeoutMs: 300 });
    const silent = await dial(eidUrl(s.url, 'proto::silent'));
    const talker = await dial(eidUrl(s.url, 'proto::talker'));
    const lab = await dial(eidUrl(s.url, LAB_CTL));
    // The talker sends a Record every 100 ms for 900 ms: three idle deadlines pass meanwhile.
    for (let i = 0; i < 9; i++) {
      talker.send(new Uint8Array([i]));
      await new Promise((r) => setTimeout(r, 100));
    }
    const closed = await withTimeout(silent.closed, 3000, 'the silent untrusted connection was not closed');
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /no USP Record within 300 ms/);
    assert.equal(s.mtp.untrustedIdleCloses, 1);
    assert.equal(talker.ws.readyState, talker.ws.OPEN);
    assert.equal(lab.ws.readyState, lab.ws.OPEN, 'a configured controller waiting for Notifies stays connected');
    await withTimeout(talker.closed, 3000, 'the talker, silent now, was not closed');
    assert.equal(s.mtp.untrustedIdleCloses, 2);
    assert.equal(lab.ws.readyState, lab.ws.OPEN);
  });
});

describe('WebSocket MTP over TLS with client certificates (real sockets)', { concurrency: false }, () => {
  let pki: TestPki | null = null;
  after(() => pki?.cleanup());

  test('a pinned self-signed certificate proves its controller; another certificate does not', async (t) => {
    pki = pki ?? makeTestPki();
    if (!pki) return t.skip(OPENSSL_MISSING);
    const mine = selfSignedCert(pki, 'pinned-ctl');
    const theirs = selfSignedCert(pki, 'someone-else');
    const fp = new X509Certificate(mine.cert).fingerprint256;
    const ids = new ControllerIdentities(controllers([], fp), { requireWsAuth: false, allowUntrusted: false });
    const s = await server(ids, { tls: { cert: pki.ca.server.cert, key: pki.ca.server.key } });
    const tls = (c: typeof mine) => ({ tls: { ca: pki!.ca.cert, cert: c.cert, key: c.key } });
    const ok = await dial(eidUrl(s.url, PINNED_CTL), tls(mine));
    ok.send(new Uint8Array([7]));
    const rec = await withTimeout(new Promise<InboundRecord>((resolve) => s.mtp.once('record', resolve)), 2000, 'record');
    assert.deepEqual([rec.peerEid, rec.authenticated], [PINNED_CTL, true]);
    // Without ?eid= the pinned certificate alone names the controller.
    await dial(s.url, tls(mine));
    assert.equal((await refused(eidUrl(s.url, PINNED_CTL), tls(theirs))).status, 401);
    assert.equal((await refused(eidUrl(s.url, PINNED_CTL), { tls: { ca: pki.ca.cert } })).status, 401);
  });

  test('with usp.websocket.tls.ca: the subjectAltName urn:bbf:usp:id names the controller (R-SEC.0a); a certificate without it cannot replace that session', async (t) => {
    pki = pki ?? makeTestPki();
    if (!pki) return t.skip(OPENSSL_MISSING);
    const named = issueClientCert(pki, pki.ca, 'lab-ctl-named', { endpointId: LAB_CTL });
    const ids = new ControllerIdentities(controllers(), { requireWsAuth: false, allowUntrusted: false });
    const s = await server(ids, { tls: { cert: pki.ca.server.cert, key: pki.ca.server.key, ca: pki.ca.cert } });
    const real = await dial(eidUrl(s.url, LAB_CTL), { tls: { ca: pki.ca.cert, cert: named.cert, key: named.key } });
    // The certificate names LAB_CTL: it cannot speak as another controller.
    assert.equal((await refused(eidUrl(s.url, SECRET_CTL), { tls: { ca: pki.ca.cert, cert: named.cert, key: named.key } })).status, 403);
    // A certificate of the same CA without the name only states LAB_CTL: it cannot take over the proved session.
    const plain = { tls: { ca: pki.ca.cert, cert: pki.ca.client.cert, key: pki.ca.client.key } };
    const conflict = await refused(eidUrl(s.url, LAB_CTL), plain);
    assert.equal(conflict.status, 409);
    await sendToController(s, LAB_CTL, 'still-mine');
    assert.equal((await real.nextMessage()).data.toString(), 'still-mine');
    // With requireAuth, such a certificate gets nowhere at all.
    const strict = await server(new ControllerIdentities(controllers(), { requireWsAuth: true, allowUntrusted: false }), {
      tls: { cert: pki.ca.server.cert, key: pki.ca.server.key, ca: pki.ca.cert },
    });
    assert.equal((await refused(eidUrl(strict.url, LAB_CTL), plain)).status, 401);
    await dial(eidUrl(strict.url, LAB_CTL), { tls: { ca: pki.ca.cert, cert: named.cert, key: named.key } });
  });
});

describe('start-up warning', () => {
  test('a WebSocket listener beyond loopback where controllers have no credential says so once, naming them', () => {
    const warnings = (overrides: Record<string, unknown>): string[] => {
      const lines: { msg: string; controllers?: string[] }[] = [];
      const log = createLogger('warn', { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string }) });
      const config = loadConfig({ env: {}, overrides: { 'usp.websocket.port': 0, ...overrides } });
      new AgentSide({ config, store: openSqliteStore(':memory:'), log });
      return lines.map((l) => `${l.msg}${l.controllers ? ` [${l.controllers.join(',')}]` : ''}`);
    };
    const lab = [{ endpointId: LAB_CTL }];
    const open = warnings({ 'usp.websocket.host': '0.0.0.0', controllers: lab });
    assert.equal(open.length, 1);
    assert.match(open[0]!, /reachable beyond loopback and no controller has a credential.*\[proto::lab-ctl\]/);
    assert.deepEqual(warnings({ 'usp.websocket.host': '127.0.0.1', controllers: lab }), [], 'loopback: a lab');
    assert.deepEqual(warnings({ 'usp.websocket.host': '0.0.0.0', controllers: [{ endpointId: SECRET_CTL, websocket: { secret: SECRET } }] }), []);
    const partly = warnings({ 'usp.websocket.host': '0.0.0.0', controllers: [...lab, { endpointId: SECRET_CTL, websocket: { secret: SECRET } }] });
    assert.match(partly[0]!, /these controllers have no credential.*\[proto::lab-ctl\]/);
    const strict = warnings({ 'usp.websocket.host': '0.0.0.0', 'usp.websocket.requireAuth': true, controllers: lab });
    assert.match(strict[0]!, /requireAuth is set but no controller has a credential/);
    assert.ok(!open.join('').includes(SECRET) && !partly.join('').includes(SECRET), 'no secret in the log');
  });
});
