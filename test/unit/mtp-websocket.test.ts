import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { connect as netConnect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { WebSocket } from 'ws';
import {
  WebSocketMtp,
  withEidQuery,
  eidFromQuery,
  parseBbfExtension,
  stripBbfExtension,
  offersSubprotocol,
  type WebSocketMtpOptions,
} from '../../src/usp/mtp/websocket.js';
import { MtpSendError, type InboundRecord, type MtpChannelOpen, type MtpEvents } from '../../src/usp/mtp/types.js';
import { connectPeer, HandshakeRefused, TestWsServer, withTimeout, type PeerSocket } from '../helpers/ws-peer.js';

const AGENT = 'os::00D09E-SN0001';
const AGENT2 = 'os::00D09E-SN0002';
const ODD_AGENT = 'os::00D09E-SN%2F3'; // a %-encoded instance part (R-ARC.5)
const CTRL = 'proto::controller-1';
const AGENTS = new Set([AGENT, AGENT2, ODD_AGENT]);
const MAX = 64 * 1024;

type Warning = MtpEvents['warning'][0];
type Close = MtpEvents['channelClose'][0];

interface Harness {
  mtp: WebSocketMtp;
  base: string;
  opens: MtpChannelOpen[];
  closes: Close[];
  records: InboundRecord[];
  warnings: Warning[];
  logs: { level: string; msg: string; extra?: object }[];
  peers: PeerSocket[];
  /** Next event of that kind (including ones already seen after index `from`). */
  waitFor<K extends 'channelOpen' | 'channelClose' | 'record' | 'warning'>(
    kind: K,
    pred?: (v: MtpEvents[K][0]) => boolean,
    timeoutMs?: number,
  ): Promise<MtpEvents[K][0]>;
  connect(path: string, opts?: Parameters<typeof connectPeer>[1]): Promise<PeerSocket>;
  stop(): Promise<void>;
}

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

async function harness(over: Partial<WebSocketMtpOptions> = {}): Promise<Harness> {
  const logs: Harness['logs'] = [];
  const mtp = new WebSocketMtp({
    server: { host: '127.0.0.1', port: 0, path: '/usp', maxRecordBytes: MAX, pingIntervalMs: 60_000 },
    client: null,
    isAgent: (eid) => AGENTS.has(eid),
    log: (level, msg, extra) => logs.push({ level, msg, extra }),
    ...over,
  });
  const h: Harness = {
    mtp,
    base: '',
    opens: [],
    closes: [],
    records: [],
    warnings: [],
    logs,
    peers: [],
    waitFor(kind, pred = () => true, timeoutMs = 3_000) {
      const list = { channelOpen: h.opens, channelClose: h.closes, record: h.records, warning: h.warnings }[kind] as MtpEvents[typeof kind][0][];
      const seen = list.find(pred as (v: unknown) => boolean);
      if (seen) return Promise.resolve(seen);
      return withTimeout(
        new Promise((resolve) => {
          const l = (v: unknown): void => {
            if ((pred as (v: unknown) => boolean)(v)) {
              (mtp as unknown as EventEmitter).off(kind, l);
              resolve(v as MtpEvents[typeof kind][0]);
            }
          };
          (mtp as unknown as EventEmitter).on(kind, l);
        }),
        timeoutMs,
        `mtp event ${kind}`,
      );
    },
    async connect(path, opts) {
      const p = await connectPeer(h.base + path, opts);
      h.peers.push(p);
      return p;
    },
    async stop() {
      for (const p of h.peers) p.ws.terminate();
      await mtp.stop();
    },
  };
  mtp.on('channelOpen', (e) => h.opens.push(e));
  mtp.on('channelClose', (e) => h.closes.push(e));
  mtp.on('record', (r) => h.records.push(r));
  mtp.on('warning', (w) => h.warnings.push(w));
  await mtp.start();
  const addr = mtp.serverAddress();
  if (addr) h.base = `ws://127.0.0.1:${addr.port}`;
  harnesses.push(h);
  return h;
}

const enc = encodeURIComponent;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('handshake helpers', () => {
  test('withEidQuery keeps the existing query and %-encodes the EID (R-WS.10b, R-WS.10c)', () => {
    assert.equal(withEidQuery('ws://h:1/usp/controller', 'proto::obuspa-agent'), 'ws://h:1/usp/controller?eid=proto%3A%3Aobuspa-agent');
    assert.equal(withEidQuery('ws://h/usp?x=a%20b&y', 'doc::agent%21'), 'ws://h/usp?x=a%20b&y&eid=doc%3A%3Aagent%2521');
    assert.equal(withEidQuery('wss://h/usp#frag', 'a'), 'wss://h/usp?eid=a');
  });
  test('eidFromQuery decodes once and keeps +', () => {
    assert.equal(eidFromQuery('eid=doc%3A%3Aagent%2521'), 'doc::agent%21');
    assert.equal(eidFromQuery('x=1&eid=a+b'), 'a+b');
    assert.equal(eidFromQuery('x=1'), null);
    assert.equal(eidFromQuery('eid='), null);
    assert.equal(eidFromQuery('eid=%E0%A4%A'), undefined);
  });
  test('bbf-usp-protocol parsing and stripping', () => {
    assert.deepEqual(parseBbfExtension('bbf-usp-protocol; eid="proto::obuspa-agent"'), { offered: true, eid: 'proto::obuspa-agent' });
    assert.deepEqual(parseBbfExtension('permessage-deflate, BBF-USP-Protocol;eid=x'), { offered: true, eid: 'x' });
    assert.deepEqual(parseBbfExtension('bbf-usp-protocol'), { offered: true, eid: null });
    assert.deepEqual(parseBbfExtension('permessage-deflate'), { offered: false, eid: null });
    assert.deepEqual(parseBbfExtension(undefined), { offered: false, eid: null });
    assert.equal(stripBbfExtension('bbf-usp-protocol; eid="a"'), undefined);
    assert.equal(stripBbfExtension('permessage-deflate; x=1, bbf-usp-protocol; eid="a"'), 'permessage-deflate; x=1');
    assert.ok(offersSubprotocol('foo, v1.usp', 'v1.usp'));
    assert.ok(!offersSubprotocol('v1.usp2', 'v1.usp'));
    assert.ok(!offersSubprotocol(undefined, 'v1.usp'));
  });
});

describe('WebSocket MTP, server role', () => {
  test('accepts v1.usp on /usp/<agent EID>; ?eid= gives the controller EID; no extension unless offered', async () => {
    const h = await harness();
    const peer = await h.connect(`/usp/${enc(AGENT)}?foo=bar&eid=${enc(CTRL)}`);
    assert.equal(peer.ws.protocol, 'v1.usp');
    assert.equal(peer.headers['sec-websocket-protocol'], 'v1.usp');
    assert.equal(peer.headers['sec-websocket-extensions'], undefined); // R-WS.11a: only when offered
    const open = await h.waitFor('channelOpen');
    assert.equal(open.mtp, 'websocket');
    assert.equal(open.agentEid, AGENT);
    assert.equal(open.peerEid, CTRL);
    assert.equal(open.dest?.mtp, 'websocket');
    assert.match(open.dest!.address, /^srv-/);
    assert.equal(h.mtp.status().channels, 1);
    assert.ok(h.mtp.status().connected);
    assert.match(h.mtp.status().detail, /listening on 127\.0\.0\.1:\d+\/usp/);
  });

  test('the shared path /usp gives agentEid null; %-encoded EIDs round-trip (R-WS.10c)', async () => {
    const h = await harness();
    await h.connect(`/usp?eid=${enc('doc::ctrl%21')}`);
    const open = await h.waitFor('channelOpen');
    assert.equal(open.agentEid, null);
    assert.equal(open.peerEid, 'doc::ctrl%21');
    await h.connect(`/usp/${enc(ODD_AGENT)}`);
    const open2 = await h.waitFor('channelOpen', (o) => o.agentEid !== null);
    assert.equal(open2.agentEid, ODD_AGENT);
    assert.equal(open2.peerEid, null); // no ?eid=, no extension: allowed (R-WS.11c)
  });

  test('refuses a handshake without v1.usp (R-WS.12a) with 400 naming the problem', async () => {
    const h = await harness();
    for (const protocols of [[], ['v2.other']]) {
      const err = await h.connect(`/usp/${enc(AGENT)}?eid=${enc(CTRL)}`, { protocols }).then(
        () => assert.fail('handshake accepted'),
        (e: unknown) => e as HandshakeRefused,
      );
      assert.ok(err instanceof HandshakeRefused, String(err));
      assert.equal(err.status, 400);
      assert.match(err.body, /v1\.usp/);
    }
    assert.equal(h.opens.length, 0);
    assert.ok(h.warnings.some((w) => w.message.includes('rejected') && String(w.detail?.reason).includes('v1.usp')));
  });

  test('unknown agent EID or path -> 404; plain HTTP -> 426', async () => {
    const h = await harness();
    for (const path of [`/usp/${enc('os::nobody')}`, '/other', '/usp/', '/uspx']) {
      const err = (await h.connect(path).catch((e: unknown) => e)) as HandshakeRefused;
      assert.ok(err instanceof HandshakeRefused, path);
      assert.equal(err.status, 404, path);
    }
    const status = await new Promise<number>((resolve, reject) => {
      const addr = h.mtp.serverAddress()!;
      httpRequest({ host: '127.0.0.1', port: addr.port, path: '/usp' }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(status, 426);
    assert.equal(h.opens.length, 0);
  });

  test('deprecated extension: echoed with the agent EID only when offered; its eid is the fallback peer EID', async () => {
    const h = await harness();
    const offered = await h.connect(`/usp/${enc(AGENT)}`, {
      headers: { 'Sec-WebSocket-Extensions': `bbf-usp-protocol; eid="${CTRL}"` },
      tolerateBbfExtension: true,
    });
    assert.equal(offered.headers['sec-websocket-extensions'], `bbf-usp-protocol; eid="${AGENT}"`);
    const open = await h.waitFor('channelOpen');
    assert.equal(open.peerEid, CTRL);
    const plain = await h.connect(`/usp/${enc(AGENT2)}?eid=${enc(CTRL)}`);
    assert.equal(plain.headers['sec-websocket-extensions'], undefined);
    // Shared path: no single server EID to state, so no echo even when offered.
    const shared = await h.connect(`/usp`, {
      headers: { 'Sec-WebSocket-Extensions': `bbf-usp-protocol; eid="proto::c9"` },
      tolerateBbfExtension: true,
    });
    assert.equal(shared.headers['sec-websocket-extensions'], undefined);
    assert.equal((await h.waitFor('channelOpen', (o) => o.agentEid === null)).peerEid, 'proto::c9');
  });

  test('record delivered as InboundRecord with replyTo; send() answers on that connection', async () => {
    const h = await harness();
    const peer = await h.connect(`/usp/${enc(AGENT)}?eid=${enc(CTRL)}`);
    const rec = Buffer.from([0x0a, 0x03, 0x31, 0x2e, 0x34, 0x12, 0x01, 0x41]);
    peer.send(rec);
    const got = await h.waitFor('record');
    assert.deepEqual(Buffer.from(got.bytes), rec);
    assert.equal(got.mtp, 'websocket');
    assert.equal(got.agentEid, AGENT);
    assert.equal(got.peerEid, CTRL);
    assert.deepEqual(got.replyTo, h.opens[0]!.dest);
    await h.mtp.send(AGENT, got.replyTo!, Buffer.from('reply'));
    const back = await peer.nextMessage();
    assert.equal(back.isBinary, true);
    assert.equal(back.data.toString(), 'reply');
    // Agent-initiated (Notify): address the controller by EID.
    await h.mtp.send(AGENT, { mtp: 'websocket', address: `controller:${CTRL}` }, Buffer.from('notify'));
    assert.equal((await peer.nextMessage()).data.toString(), 'notify');
    await assert.rejects(h.mtp.send(AGENT2, { mtp: 'websocket', address: `controller:${CTRL}` }, Buffer.from('x')), MtpSendError);
    await assert.rejects(h.mtp.send(AGENT, { mtp: 'websocket', address: 'srv-999' }, Buffer.from('x')), MtpSendError);
    await peer.close();
    await h.waitFor('channelClose');
    await assert.rejects(h.mtp.send(AGENT, got.replyTo!, Buffer.from('late')), MtpSendError);
  });

  test('controller:<eid> falls back to the shared-path connection', async () => {
    const h = await harness();
    const peer = await h.connect(`/usp?eid=${enc(CTRL)}`);
    await h.waitFor('channelOpen');
    await h.mtp.send(AGENT2, { mtp: 'websocket', address: `controller:${CTRL}` }, Buffer.from('n'));
    assert.equal((await peer.nextMessage()).data.toString(), 'n');
  });

  test('fragmented binary message is reassembled (R-WS.14b)', async () => {
    const h = await harness();
    const peer = await h.connect(`/usp/${enc(AGENT)}`);
    const parts = [Buffer.alloc(1000, 1), Buffer.alloc(1000, 2), Buffer.alloc(500, 3)];
    peer.sendFragmented(parts);
    const got = await h.waitFor('record');
    assert.deepEqual(Buffer.from(got.bytes), Buffer.concat(parts));
    assert.equal(h.records.length, 1);
  });

  test('text frame -> close 1003 (R-WS.16) and a warning; other connections unaffected', async () => {
    const h = await harness();
    const bad = await h.connect(`/usp/${enc(AGENT)}?eid=${enc(CTRL)}`);
    const good = await h.connect(`/usp/${enc(AGENT2)}?eid=${enc(CTRL)}`);
    bad.send('hello, I am text');
    const closed = await withTimeout(bad.closed, 3_000, 'close after text frame');
    assert.equal(closed.code, 1003);
    assert.ok(h.warnings.some((w) => w.message.includes('text frame') && w.detail?.agentEid === AGENT));
    // Invalid UTF-8 in a text frame is still "a text frame": 1003, not ws's 1007.
    const worse = await h.connect(`/usp/${enc(AGENT)}`);
    worse.ws.send(Buffer.from([0xc3, 0x28, 0xff]), { binary: false });
    assert.equal((await withTimeout(worse.closed, 3_000, 'close after bad text')).code, 1003);
    assert.equal(h.records.length, 0);
    good.send(Buffer.from('still fine'));
    const rec = await h.waitFor('record');
    assert.equal(rec.agentEid, AGENT2);
    assert.equal(good.ws.readyState, WebSocket.OPEN);
  });

  test('a message over maxRecordBytes -> close 1009; exactly the limit passes', async () => {
    const h = await harness();
    const peer = await h.connect(`/usp/${enc(AGENT)}`);
    peer.send(Buffer.alloc(MAX, 7));
    const ok = await h.waitFor('record');
    assert.equal(ok.bytes.byteLength, MAX);
    peer.send(Buffer.alloc(MAX + 1, 7));
    const closed = await withTimeout(peer.closed, 3_000, 'close after oversize');
    assert.equal(closed.code, 1009);
    // ws sent Close 1009 and then dropped the socket, so our side sees 1006 with ws's error.
    const w = await h.waitFor('warning', (x) => String(x.detail?.error).includes('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'));
    assert.match(String(w.detail?.error), /Max payload size exceeded/);
    assert.equal(h.records.length, 1);
  });

  test('same controller EID on the same agent replaces the older session (R-WS.4); other agents are kept', async () => {
    const h = await harness();
    const first = await h.connect(`/usp/${enc(AGENT)}?eid=${enc(CTRL)}`);
    const other = await h.connect(`/usp/${enc(AGENT2)}?eid=${enc(CTRL)}`);
    const firstOpen = await h.waitFor('channelOpen', (o) => o.agentEid === AGENT);
    const second = await h.connect(`/usp/${enc(AGENT)}?eid=${enc(CTRL)}`);
    const closed = await withTimeout(first.closed, 3_000, 'older session closed');
    assert.equal(closed.code, 1000);
    assert.match(closed.reason, /R-WS\.4/);
    const c = await h.waitFor('channelClose');
    assert.deepEqual(c.dest, firstOpen.dest);
    assert.equal(h.opens.length, 3);
    await h.mtp.send(AGENT, { mtp: 'websocket', address: `controller:${CTRL}` }, Buffer.from('to-new'));
    assert.equal((await second.nextMessage()).data.toString(), 'to-new');
    assert.equal(other.ws.readyState, WebSocket.OPEN);
    assert.equal(h.mtp.status().channels, 2);
  });

  test('keep-alive: a peer that stops answering pings is terminated (R-WS.17); a live one is kept', async () => {
    const h = await harness({
      server: { host: '127.0.0.1', port: 0, path: '/usp', maxRecordBytes: MAX, pingIntervalMs: 60 },
    });
    const dead = await h.connect(`/usp/${enc(AGENT)}?eid=${enc(CTRL)}`, { autoPong: false });
    const live = await h.connect(`/usp/${enc(AGENT2)}?eid=${enc(CTRL)}`);
    const closed = await withTimeout(dead.closed, 3_000, 'dead peer terminated');
    assert.equal(closed.code, 1006); // terminated, no Close frame
    assert.ok(h.warnings.some((w) => w.message.includes('missed a pong') && w.detail?.agentEid === AGENT));
    const c = await h.waitFor('channelClose', (x) => x.agentEid === AGENT);
    assert.match(c.reason, /keep-alive/);
    await sleep(250);
    assert.equal(live.ws.readyState, WebSocket.OPEN);
  });

  test('garbage on the socket and a reset mid-handshake do not hurt the server', async () => {
    const h = await harness();
    const addr = h.mtp.serverAddress()!;
    await new Promise<void>((resolve) => {
      const s = netConnect(addr.port, '127.0.0.1', () => s.end('\x00\x01\xff garbage\r\n\r\n'));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
    await new Promise<void>((resolve) => {
      const s = netConnect(addr.port, '127.0.0.1', () => {
        s.write(`GET /usp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`);
        setTimeout(() => {
          s.resetAndDestroy();
          resolve();
        }, 20);
      });
      s.on('error', () => undefined);
    });
    // A handshake ws itself refuses (no Sec-WebSocket-Key) gets a 400 and a warning too.
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      const s = netConnect(addr.port, '127.0.0.1', () =>
        s.write(
          `GET /usp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v1.usp\r\n\r\n`,
        ),
      );
      s.setEncoding('utf8');
      s.on('data', (d: string) => (got += d));
      s.on('close', () => resolve(got));
      s.on('error', () => undefined);
    });
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.ok(h.warnings.some((w) => String(w.detail?.error).includes('Sec-WebSocket-Key')));
    const peer = await h.connect(`/usp/${enc(AGENT)}`);
    peer.send(Buffer.from('ok'));
    await h.waitFor('record');
  });

  test('removeAgent closes that agent path connections; stop() closes the rest with 1001', async () => {
    const h = await harness();
    const a = await h.connect(`/usp/${enc(AGENT)}?eid=${enc(CTRL)}`);
    const b = await h.connect(`/usp?eid=${enc(CTRL)}`);
    await h.waitFor('channelOpen', () => h.opens.length === 2);
    h.mtp.removeAgent(AGENT);
    assert.equal((await withTimeout(a.closed, 3_000, 'removed')).code, 1001);
    assert.equal(b.ws.readyState, WebSocket.OPEN);
    await h.mtp.stop();
    assert.equal((await withTimeout(b.closed, 3_000, 'stopped')).code, 1001);
    assert.equal(h.mtp.status().connected, false);
    assert.equal(h.mtp.serverAddress(), null);
  });
});

// ------------------------------------------------------------------ client role

interface ClientHarness extends Harness {
  server: TestWsServer;
}

async function clientHarness(
  serverOpts: Parameters<typeof TestWsServer.start>[0] = {},
  clientOver: Partial<NonNullable<WebSocketMtpOptions['client']>> = {},
  query = '',
  extra: Partial<WebSocketMtpOptions> = {},
): Promise<ClientHarness> {
  const server = await TestWsServer.start(serverOpts);
  const h = (await harness({
    server: null,
    client: {
      controllers: [{ endpointId: CTRL, url: server.url('/usp/controller') + query }],
      pingIntervalMs: 60_000,
      backoff: { baseMs: 40, maxMs: 320 },
      maxRecordBytes: MAX,
      ...clientOver,
    },
    ...extra,
  })) as ClientHarness;
  h.server = server;
  const stop = h.stop;
  h.stop = async () => {
    await stop();
    await h.server.close();
  };
  return h;
}

describe('WebSocket MTP, client role', () => {
  test('dials <url>?…&eid=<agent> with v1.usp; channelOpen; records both ways', async () => {
    const h = await clientHarness({}, {}, '?tenant=a%20b');
    h.mtp.addAgent(AGENT);
    await h.server.waitForConnections(1);
    const conn = h.server.connections[0]!;
    assert.equal(conn.url, `/usp/controller?tenant=a%20b&eid=${enc(AGENT)}`);
    assert.equal(conn.eid, AGENT);
    assert.equal(conn.headers['sec-websocket-protocol'], 'v1.usp');
    assert.equal(conn.headers['sec-websocket-extensions'], undefined); // R-WS.10a is deprecated: not sent
    const open = await h.waitFor('channelOpen');
    assert.equal(open.agentEid, AGENT);
    assert.equal(open.peerEid, CTRL);
    assert.match(open.dest!.address, /^cli-/);
    await h.mtp.send(AGENT, open.dest!, Buffer.from('connect-record'));
    assert.equal((await conn.nextMessage()).data.toString(), 'connect-record');
    conn.send(Buffer.from('get'));
    const rec = await h.waitFor('record');
    assert.equal(rec.agentEid, AGENT);
    assert.equal(rec.peerEid, CTRL);
    assert.deepEqual(rec.replyTo, open.dest);
    await h.mtp.send(AGENT, { mtp: 'websocket', address: `controller:${CTRL}` }, Buffer.from('notify'));
    assert.equal((await conn.nextMessage()).data.toString(), 'notify');
    assert.match(h.mtp.status().detail, /1\/1 client connections up/);
    assert.equal(h.mtp.status().connected, true);
  });

  test('tolerates bbf-usp-protocol in the 101 unasked (as obuspa sends it); plain ws would not', async () => {
    const h = await clientHarness({ extensionUnasked: CTRL });
    // The control: Node's ws client refuses this server as it stands.
    const refused = await connectPeer(h.server.url()).then(
      (p) => {
        p.ws.terminate();
        return null;
      },
      (e: Error) => e.message,
    );
    assert.match(String(refused), /Sec-WebSocket-Extensions|extension/);
    h.mtp.addAgent(AGENT);
    const open = await h.waitFor('channelOpen');
    assert.equal(open.peerEid, CTRL);
    const conn = h.server.open.at(-1)!;
    await h.mtp.send(AGENT, open.dest!, Buffer.from('x'));
    assert.equal((await conn.nextMessage()).data.toString(), 'x');
    assert.ok(!h.warnings.some((w) => w.message.includes('different EID')));
  });

  test('a server extension stating another controller EID is tolerated with a warning', async () => {
    const h = await clientHarness({ extensionUnasked: 'proto::someone-else' });
    h.mtp.addAgent(AGENT);
    await h.waitFor('channelOpen');
    assert.ok(h.warnings.some((w) => w.message.includes('different EID')));
  });

  test('no v1.usp in the 101 -> no session (R-WS.12), retried with backoff', async () => {
    const h = await clientHarness({ answerSubprotocol: false });
    h.mtp.addAgent(AGENT);
    await h.server.waitForConnections(2, 3_000); // the server side sees the sockets; the agent refuses them
    assert.equal(h.opens.length, 0);
    const w = await h.waitFor('warning', (x) => x.message.includes('attempt failed'));
    assert.match(String(w.detail?.error), /subprotocol/);
  });

  test('reconnects with exponential backoff after drops; the count resets after an open (R-WS.19, R-WS.20); none after removeAgent', async () => {
    const h = await clientHarness({}, { backoff: { baseMs: 40, maxMs: 160 } }, '', { random: () => 0 });
    h.mtp.addAgent(AGENT);
    await h.waitFor('channelOpen');
    const delays = (): number[] => h.logs.filter((l) => l.msg.startsWith('reconnecting')).map((l) => (l.extra as { delayMs: number }).delayMs);

    const t0 = Date.now();
    h.server.dropAll();
    const c = await h.waitFor('channelClose');
    assert.match(c.reason, /1006/);
    assert.ok(h.warnings.some((w) => w.message === 'WebSocket connection lost' && w.detail?.code === 1006));
    await h.waitFor('channelOpen', () => h.opens.length === 2);
    assert.ok(Date.now() - t0 >= 19, 'waited the backoff'); // random 0: half the 40 ms ceiling
    assert.deepEqual(delays(), [20]);

    // Refuse connections for a while: the delays grow 20, 40, 80, 80 (capped at 160/2).
    const port = h.server.port;
    await h.server.close();
    await h.waitFor('channelClose', () => h.closes.length === 2);
    await withTimeout(
      (async () => {
        while (delays().length < 5) await sleep(10);
      })(),
      3_000,
      'retries',
    );
    assert.deepEqual(delays().slice(0, 5), [20, 20, 40, 80, 80]);

    // Back up on the same port: the agent gets in, and the next drop starts from the base again.
    const again = await TestWsServer.start({ port });
    h.server = again; // so the harness closes it
    await h.waitFor('channelOpen', () => h.opens.length === 3);
    const before = delays().length;
    again.dropAll();
    await h.waitFor('channelOpen', () => h.opens.length === 4);
    assert.deepEqual(delays().slice(before), [20]);

    h.mtp.removeAgent(AGENT);
    const n = delays().length;
    await sleep(250);
    assert.equal(delays().length, n, 'no reconnect after removeAgent');
    assert.equal(h.mtp.status().channels, 0);
  });

  test('removeAgent closes an open client connection with 1001 and does not redial', async () => {
    const h = await clientHarness();
    h.mtp.addAgent(AGENT);
    h.mtp.addAgent(AGENT2);
    await h.waitFor('channelOpen', () => h.opens.length === 2);
    const conn = h.server.connections.find((c) => c.eid === AGENT)!;
    h.mtp.removeAgent(AGENT);
    assert.equal((await withTimeout(conn.closed, 3_000, 'closed')).code, 1001);
    await sleep(200);
    assert.equal(h.server.connections.length, 2);
    assert.equal(h.server.open.length, 1);
    await h.mtp.stop();
    assert.ok((await Promise.all(h.server.connections.map((c) => c.closed))).every((c) => c.code === 1001));
    await sleep(150);
    assert.equal(h.server.connections.length, 2, 'no redial after stop');
  });

  test('keep-alive from the client side: a controller that stops ponging is dropped and redialed', async () => {
    const h = await clientHarness({ autoPong: false }, { pingIntervalMs: 60 });
    h.mtp.addAgent(AGENT);
    await h.waitFor('channelOpen');
    const w = await h.waitFor('warning', (x) => x.message.includes('missed a pong'));
    assert.equal(w.detail?.side, 'client');
    assert.equal((await withTimeout(h.server.connections[0]!.closed, 3_000, 'dropped')).code, 1006);
    await h.waitFor('channelOpen', () => h.opens.length === 2);
  });

  test('1,000 agents dialing one controller all open (time and RSS reported)', async () => {
    const h = await clientHarness({}, { pingIntervalMs: 60_000 });
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) h.mtp.addAgent(`os::00D09E-BULK${String(i).padStart(5, '0')}`);
    await h.waitFor('channelOpen', () => h.opens.length === 1000, 30_000);
    const ms = performance.now() - t0;
    const rss1 = process.memoryUsage().rss;
    assert.equal(h.mtp.status().channels, 1000);
    await h.server.waitForConnections(1000);
    assert.equal(new Set(h.server.connections.map((c) => c.eid)).size, 1000);
    console.log(
      `# 1000 client connections: ${ms.toFixed(0)} ms, RSS +${((rss1 - rss0) / 1048576).toFixed(1)} MiB ` +
        `(both ends in this process; total ${(rss1 / 1048576).toFixed(0)} MiB)`,
    );
    const t1 = performance.now();
    await h.mtp.stop();
    console.log(`# stop() with 1000 connections: ${(performance.now() - t1).toFixed(0)} ms`);
  });
});
