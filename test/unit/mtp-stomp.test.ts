/**
 * STOMP MTP: the pure frame codec, then the MTP against a real RabbitMQ (its STOMP plugin) with
 * @stomp/stompjs as an independent controller, then against the scripted STOMP server for what
 * a real broker can't script (subscribe-dest, heart-beats, drops, refusals, ERROR, garbage).
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Client, type IMessage } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import {
  encodeStompFrame,
  escapeStompHeader,
  negotiateHeartbeat,
  StompMtp,
  StompParser,
  stompHeader,
  unescapeStompHeader,
  type StompFrame,
  type StompMtpOptions,
} from '../../src/usp/mtp/stomp.js';
import { MtpSendError, type InboundRecord, type MtpEvents } from '../../src/usp/mtp/types.js';
import { startRabbitStomp, type RabbitStompHandle } from '../helpers/brokers.js';
import { startStompScriptServer, type ScriptServer } from '../helpers/stomp-script-server.js';

const SKIP = 'rabbitmq-server not installed (apt-get install rabbitmq-server)';
const EID = 'proto::cwmp-usp-proxy:test';
let rabbit: RabbitStompHandle | null = null;
let seq = 0;
const cleanups: Array<() => Promise<unknown> | undefined> = [];

before(async () => {
  rabbit = await startRabbitStomp();
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await rabbit?.stop();
});

function need(t: TestContext): RabbitStompHandle | null {
  if (!rabbit) t.skip(SKIP);
  return rabbit;
}

function makeMtp(host: string, port: number, over: Partial<StompMtpOptions> = {}): StompMtp {
  const m = new StompMtp({
    host,
    port,
    vhost: '/',
    login: 'guest',
    passcode: 'guest',
    endpointId: EID,
    destination: '/queue/usp.agent',
    heartbeatMs: { outgoing: 0, incoming: 0 },
    maxRecordBytes: 64 * 1024,
    backoff: { baseMs: 100, maxMs: 800 },
    connectTimeoutMs: 5000,
    ...over,
  });
  cleanups.push(() => m.stop());
  return m;
}

function next<K extends keyof MtpEvents>(m: StompMtp, ev: K, timeoutMs = 10_000): Promise<MtpEvents[K]> {
  return once(m as never, ev, { signal: AbortSignal.timeout(timeoutMs) }) as unknown as Promise<MtpEvents[K]>;
}

async function scripted(opts: Parameters<typeof startStompScriptServer>[0] = {}): Promise<ScriptServer> {
  const s = await startStompScriptServer(opts);
  cleanups.push(() => s.close());
  return s;
}

const BINARY = Uint8Array.from([0x0a, 0x00, 0x0a, 0x00, 0x5c, 0x3a, 0x0d, 0x0a, 0xff, 0x00, 0x00, 0x0a]);

// --- codec -------------------------------------------------------------------------------------

test('codec: header escaping (STOMP 1.2 value encoding)', () => {
  assert.equal(escapeStompHeader('proto::a\\b\nc\rd'), 'proto\\c\\ca\\\\b\\nc\\rd');
  assert.equal(unescapeStompHeader(escapeStompHeader('proto::a\\b\nc\rd')), 'proto::a\\b\nc\rd');
  assert.equal(unescapeStompHeader('a\\tb'), 'a\\tb'); // undefined escape kept, never throws
});

test('codec: binary body round trip, split at every byte, heart-beats and CRLF', () => {
  const f: StompFrame = {
    command: 'MESSAGE',
    headers: [
      ['destination', '/queue/a:b'],
      ['content-length', String(BINARY.length)],
    ],
    body: BINARY,
  };
  const wire = Buffer.concat([
    Buffer.from('\n\r\n'),
    encodeStompFrame(f),
    Buffer.from('\n'),
    encodeStompFrame({ command: 'RECEIPT', headers: [['receipt-id', 'x']], body: new Uint8Array(0) }),
  ]);
  assert.ok(wire.includes('destination:/queue/a\\cb\n'));
  for (const step of [1, 2, 7, wire.length]) {
    const p = new StompParser();
    const evs = [];
    for (let i = 0; i < wire.length; i += step) evs.push(...p.push(wire.subarray(i, i + step)));
    assert.deepEqual(
      evs.map((e) => e.type),
      ['heartbeat', 'heartbeat', 'frame', 'heartbeat', 'frame'],
      `step ${step}`,
    );
    const fr = evs[2]!.type === 'frame' ? evs[2]!.frame : null;
    assert.deepEqual([...fr!.body], [...BINARY]);
    assert.equal(stompHeader(fr!, 'destination'), '/queue/a:b');
  }
  // CRLF line ends and a body without content-length.
  const crlf = new StompParser().push(Buffer.from('CONNECTED\r\nversion:1.2\r\nheart-beat:0,0\r\n\r\n\0'));
  assert.equal(crlf[0]!.type, 'frame');
  assert.deepEqual(crlf[0]!.type === 'frame' && crlf[0]!.frame.headers, [
    ['version', '1.2'],
    ['heart-beat', '0,0'],
  ]);
});

test('codec: oversize bodies are skipped without buffering; garbage is an error', () => {
  const p = new StompParser({ maxBodyBytes: 4 });
  const big = encodeStompFrame({ command: 'MESSAGE', headers: [['content-length', '10']], body: new Uint8Array(10).fill(1) });
  const ok = encodeStompFrame({ command: 'MESSAGE', headers: [['content-length', '2']], body: new Uint8Array([0, 1]) });
  const evs = [...p.push(big.subarray(0, 20)), ...p.push(Buffer.concat([big.subarray(20), ok]))];
  assert.deepEqual(
    evs.map((e) => e.type),
    ['oversize', 'frame'],
  );
  assert.equal(evs[0]!.type === 'oversize' && evs[0]!.length, 10);
  assert.equal(new StompParser().push(Buffer.from('hello world\n\n\0'))[0]!.type, 'error');
  assert.equal(new StompParser().push(Buffer.from('MESSAGE\ncontent-length:1\n\nab\0'))[0]!.type, 'error');
  assert.equal(new StompParser().push(Buffer.from('MESSAGE\nnocolon\n\n\0'))[0]!.type, 'error');
});

test('codec: heart-beat negotiation (STOMP 1.2 "Heart-beating")', () => {
  assert.deepEqual(negotiateHeartbeat({ outgoing: 200, incoming: 300 }, '100,500'), { outgoingMs: 500, incomingMs: 300 });
  assert.deepEqual(negotiateHeartbeat({ outgoing: 30000, incoming: 300000 }, '300000,30000'), { outgoingMs: 30000, incomingMs: 300000 });
  assert.deepEqual(negotiateHeartbeat({ outgoing: 0, incoming: 300 }, '100,500'), { outgoingMs: 0, incomingMs: 300 });
  assert.deepEqual(negotiateHeartbeat({ outgoing: 200, incoming: 300 }, '0,0'), { outgoingMs: 0, incomingMs: 0 });
  assert.deepEqual(negotiateHeartbeat({ outgoing: 200, incoming: 300 }, undefined), { outgoingMs: 0, incomingMs: 0 });
});

// --- RabbitMQ ----------------------------------------------------------------------------------

async function stompjsController(r: RabbitStompHandle, dest: string): Promise<{ client: Client; messages: IMessage[]; nextMessage(): Promise<IMessage> }> {
  const messages: IMessage[] = [];
  const waiting: Array<(m: IMessage) => void> = [];
  const client = new Client({
    webSocketFactory: () => new TCPWrapper(r.host, r.port),
    connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  const connected = new Promise<void>((resolve, reject) => {
    client.onConnect = () => resolve();
    client.onStompError = (f) => reject(new Error(f.headers.message));
    client.onWebSocketError = (e) => reject(new Error(String(e?.message ?? e)));
  });
  client.activate();
  cleanups.push(() => client.deactivate());
  await connected;
  await new Promise<void>((resolve) => {
    const receipt = `r-${++seq}`;
    client.watchForReceipt(receipt, () => resolve());
    client.subscribe(
      dest,
      (m) => {
        const w = waiting.shift();
        if (w) w(m);
        else messages.push(m);
      },
      { receipt },
    );
  });
  return {
    client,
    messages,
    nextMessage: () => {
      const m = messages.shift();
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no MESSAGE')), 10_000);
        waiting.push((x) => {
          clearTimeout(t);
          resolve(x);
        });
      });
    },
  };
}

test('6.1-6.8, 6.10-6.12 RabbitMQ: connect, subscribe to the configured destination, binary records both ways with headers', async (t) => {
  const r = need(t);
  if (!r) return;
  const n = ++seq;
  const agentDest = `/queue/usp.agent.${n}`;
  const ctlDest = `/queue/usp.controller.${n}`;
  const ctl = await stompjsController(r, ctlDest);
  const m = makeMtp(r.host, r.port, { destination: agentDest });
  const opened = next(m, 'channelOpen');
  await m.start();
  const [ev] = await opened;
  assert.deepEqual(ev, { mtp: 'stomp', agentEid: null, dest: null, peerEid: null });
  assert.equal(m.subscribedDestination, agentDest);
  assert.match(m.status().detail, /RabbitMQ/);

  const got = next(m, 'record');
  ctl.client.publish({
    destination: agentDest,
    binaryBody: BINARY,
    headers: { 'content-type': 'application/vnd.bbf.usp.msg', 'reply-to-dest': ctlDest },
  });
  const [rec] = (await got) as [InboundRecord];
  assert.deepEqual([...rec.bytes], [...BINARY]);
  assert.deepEqual(rec.replyTo, { mtp: 'stomp', address: ctlDest });
  assert.equal(rec.contentType, 'application/vnd.bbf.usp.msg');

  await m.send('os::012345-SN1', rec.replyTo!, BINARY);
  const msg = await ctl.nextMessage();
  assert.deepEqual([...msg.binaryBody], [...BINARY]);
  assert.equal(msg.headers['content-type'], 'application/vnd.bbf.usp.msg');
  assert.equal(msg.headers['reply-to-dest'], agentDest);
  assert.equal(msg.headers['content-length'], String(BINARY.length));
  assert.equal(msg.headers.destination, ctlDest);

  // A MESSAGE without reply-to-dest: replyTo null.
  const got2 = next(m, 'record');
  ctl.client.publish({ destination: agentDest, binaryBody: new Uint8Array([1]), headers: { 'content-type': 'application/vnd.bbf.usp.msg' } });
  const [rec2] = (await got2) as [InboundRecord];
  assert.equal(rec2.replyTo, null);

  const closed = next(m, 'channelClose');
  await m.stop();
  await closed;
  assert.equal(m.status().connected, false);
  await assert.rejects(m.send('os::a', { mtp: 'stomp', address: ctlDest }, new Uint8Array([1])), MtpSendError);
});

test('RabbitMQ throughput: 1,000 round trips of a 1 KB record (controller -> agent -> controller)', async (t) => {
  const r = need(t);
  if (!r) return;
  const n = ++seq;
  const agentDest = `/queue/usp.agent.${n}`;
  const ctlDest = `/queue/usp.controller.${n}`;
  const ctl = await stompjsController(r, ctlDest);
  const m = makeMtp(r.host, r.port, { destination: agentDest });
  const opened = next(m, 'channelOpen');
  await m.start();
  await opened;
  m.on('record', (rec) => void m.send('os::a', rec.replyTo!, rec.bytes).catch(() => {}));
  const body = new Uint8Array(1024).fill(0x5a);
  const N = 1000;
  const run = async (window: number) => {
    let received = 0;
    let sent = 0;
    const t0 = performance.now();
    const pump = () => {
      while (sent < N && sent - received < window) {
        sent++;
        ctl.client.publish({ destination: agentDest, binaryBody: body, headers: { 'content-type': 'application/vnd.bbf.usp.msg', 'reply-to-dest': ctlDest } });
      }
    };
    pump();
    while (received < N) {
      const msg = await ctl.nextMessage();
      assert.equal(msg.binaryBody.length, 1024);
      received++;
      pump();
    }
    return N / ((performance.now() - t0) / 1000);
  };
  const seqRate = await run(1);
  const winRate = await run(32);
  t.diagnostic(`STOMP / RabbitMQ 3.10, 1 KB: ${seqRate.toFixed(0)} round trips/s one at a time, ${winRate.toFixed(0)} round trips/s with 32 in flight`);
  assert.ok(seqRate > 50);
});

// --- scripted server ---------------------------------------------------------------------------

test('6.1-6.8, 6.10-6.12 scripted: STOMP frame (not CONNECT) with escaped endpoint-id, host, login; subscribe-dest honoured; SEND headers', async () => {
  const s = await scripted({ onConnect: () => ({ kind: 'connected', headers: [['subscribe-dest', '/queue/from-server']] }) });
  const m = makeMtp(s.host, s.port, { vhost: 'usp-vhost', heartbeatMs: { outgoing: 30000, incoming: 300000 } });
  const opened = next(m, 'channelOpen');
  await m.start();
  await opened;
  const c = await s.connection(0);
  const rawFirst = Buffer.concat(c.raw).toString('latin1');
  assert.ok(
    rawFirst.startsWith(
      'STOMP\naccept-version:1.2\nhost:usp-vhost\nheart-beat:30000,300000\nendpoint-id:proto\\c\\ccwmp-usp-proxy\\ctest\nlogin:guest\npasscode:guest\n\n\0',
    ),
    JSON.stringify(rawFirst.slice(0, 200)),
  );
  const sub = await c.waitFor('SUBSCRIBE');
  assert.equal(stompHeader(sub, 'destination'), '/queue/from-server'); // R-STOMP.14
  assert.equal(stompHeader(sub, 'ack'), 'auto'); // R-STOMP.17
  assert.equal(m.subscribedDestination, '/queue/from-server');

  await m.send('os::a', { mtp: 'stomp', address: '/queue/ctl:1' }, BINARY);
  const send = await c.waitFor('SEND');
  assert.deepEqual(send.headers, [
    ['content-length', String(BINARY.length)],
    ['content-type', 'application/vnd.bbf.usp.msg'],
    ['reply-to-dest', '/queue/from-server'],
    ['destination', '/queue/ctl:1'],
  ]);
  assert.ok(Buffer.concat(c.raw).includes('destination:/queue/ctl\\c1\n'));
  assert.deepEqual([...send.body], [...BINARY]);

  // Inbound: content-type and reply-to-dest; a foreign content-type is dropped with a warning.
  const got = next(m, 'record');
  c.deliver('/queue/from-server', BINARY, [
    ['content-type', 'application/vnd.bbf.usp.msg'],
    ['reply-to-dest', '/queue/ctl'],
  ]);
  const [rec] = (await got) as [InboundRecord];
  assert.deepEqual([...rec.bytes], [...BINARY]);
  assert.deepEqual(rec.replyTo, { mtp: 'stomp', address: '/queue/ctl' });
  const warned = next(m, 'warning');
  c.deliver('/queue/from-server', Buffer.from('err_code:7000'), [['content-type', 'application/vnd.bbf.usp.error']]);
  assert.match((await warned)[0].message, /content-type application\/vnd\.bbf\.usp\.error dropped/);

  // stop(): DISCONNECT with a receipt (R-STOMP.28); never BEGIN/COMMIT/ABORT/ACK/NACK (R-STOMP.26/27).
  await m.stop();
  const disc = await c.waitFor('DISCONNECT');
  assert.ok(stompHeader(disc, 'receipt'));
  assert.deepEqual(
    c.frames.map((f) => f.command).filter((x) => ['BEGIN', 'COMMIT', 'ABORT', 'ACK', 'NACK', 'CONNECT'].includes(x)),
    [],
  );
});

test('6.1-6.8, 6.10-6.12 scripted: heart-beats sent at the negotiated interval; silence past the incoming interval reconnects', async () => {
  // Server: can send every 100 ms, wants ours every 400 ms. Client: 200,300 -> out 400, in 300.
  const s = await scripted({ onConnect: () => ({ kind: 'connected', headers: [['heart-beat', '100,400']] }) });
  const m = makeMtp(s.host, s.port, { heartbeatMs: { outgoing: 200, incoming: 300 } });
  const warnings: string[] = [];
  m.on('warning', (w) => warnings.push(w.message));
  const opened = next(m, 'channelOpen');
  await m.start();
  await opened;
  assert.deepEqual(m.heartbeat, { outgoingMs: 400, incomingMs: 300 });
  const c = await s.connection(0);
  const t0 = Date.now();
  // Keep our side of the deal (one EOL every 100 ms) for 1.3 s, and watch the client's EOLs.
  const timer = setInterval(() => c.sendRaw('\n'), 100);
  await new Promise((r) => setTimeout(r, 1300));
  clearInterval(timer);
  const beats = c.heartbeats.filter((x) => x >= t0);
  assert.ok(beats.length >= 2 && beats.length <= 6, `client heart-beats: ${beats.length}`);
  for (let i = 1; i < beats.length; i++) assert.ok(beats[i]! - beats[i - 1]! <= 400 + 150, `gap ${beats[i]! - beats[i - 1]!}`);
  assert.equal(m.status().connected, true);
  // Now go silent: the client gives up after 2 x 300 ms and reconnects.
  const closed = next(m, 'channelClose', 5000);
  const reopened = next(m, 'channelOpen', 5000);
  await closed;
  assert.ok(warnings.includes('STOMP heart-beat timeout'), warnings.join('\n'));
  await reopened;
  assert.equal(s.connections.length, 2);
});

test('6.1-6.8, 6.10-6.12 scripted: refused connections retry with growing backoff; ERROR frame and garbage never crash', async () => {
  const s = await scripted();
  s.setBehaviour((n) => (n < 3 ? { kind: 'drop' } : n === 3 ? { kind: 'error', message: 'access refused' } : { kind: 'connected' }));
  const m = makeMtp(s.host, s.port, { backoff: { baseMs: 100, maxMs: 1000 } });
  const warnings: string[] = [];
  m.on('warning', (w) => warnings.push(w.message));
  const opened = next(m, 'channelOpen', 15_000);
  await m.start(); // resolves after the first (failed) attempt
  await opened;
  assert.equal(s.connections.length, 5);
  assert.ok(
    warnings.some((w) => /STOMP ERROR frame: access refused/.test(w)),
    warnings.join('\n'),
  );
  assert.ok(warnings.filter((w) => /retrying in \d+ ms/.test(w)).length >= 4);
  const c = await s.connection(4);
  // Garbage from the server: a warning, the connection is dropped and remade.
  const reopened = next(m, 'channelOpen', 5000);
  c.sendRaw('this is not STOMP\n\n\0');
  await reopened;
  assert.ok(
    warnings.some((w) => /bad STOMP data/.test(w)),
    warnings.join('\n'),
  );
  assert.equal(s.connections.length, 6);
});

test('6.1-6.8, 6.10-6.12 scripted: reconnect after a drop re-subscribes; a new subscribe-dest is used; setDestination does UNSUBSCRIBE + SUBSCRIBE (R-STOMP.29)', async () => {
  const s = await scripted();
  s.setBehaviour((n) => (n === 1 ? { kind: 'connected', headers: [['subscribe-dest', '/queue/new-dest']] } : { kind: 'connected' }));
  const m = makeMtp(s.host, s.port, { destination: '/queue/configured' });
  const opens: number[] = [];
  m.on('channelOpen', () => opens.push(Date.now()));
  let opened = next(m, 'channelOpen');
  await m.start();
  await opened;
  const c0 = await s.connection(0);
  assert.equal(stompHeader(await c0.waitFor('SUBSCRIBE'), 'destination'), '/queue/configured');

  const closed = next(m, 'channelClose');
  opened = next(m, 'channelOpen');
  c0.drop();
  await closed;
  await opened;
  const c1 = await s.connection(1);
  assert.equal(stompHeader(await c1.waitFor('SUBSCRIBE'), 'destination'), '/queue/new-dest');
  assert.equal(m.subscribedDestination, '/queue/new-dest');
  assert.equal(opens.length, 2);
  // The oversize path on a live connection: dropped with a warning, the next record arrives.
  const warned = next(m, 'warning');
  c1.deliver('/queue/new-dest', new Uint8Array(70 * 1024));
  assert.match((await warned)[0].message, /maxRecordBytes/);
  const got = next(m, 'record');
  c1.deliver('/queue/new-dest', BINARY);
  assert.deepEqual([...((await got)[0] as InboundRecord).bytes], [...BINARY]);

  // Server-assigned destination: setDestination only records the configured one.
  await m.setDestination('/queue/other');
  assert.equal(m.subscribedDestination, '/queue/new-dest');

  // Back to a server without subscribe-dest: the configured destination changes live.
  const c1closed = next(m, 'channelClose');
  opened = next(m, 'channelOpen');
  c1.drop();
  await c1closed;
  await opened;
  const c2 = await s.connection(2);
  const sub2 = await c2.waitFor('SUBSCRIBE');
  assert.equal(stompHeader(sub2, 'destination'), '/queue/other');
  opened = next(m, 'channelOpen');
  await m.setDestination('/queue/moved');
  await opened;
  const unsub = await c2.waitFor('UNSUBSCRIBE');
  assert.equal(stompHeader(unsub, 'id'), stompHeader(sub2, 'id'));
  const sub3 = await c2.waitFor('SUBSCRIBE');
  assert.equal(stompHeader(sub3, 'destination'), '/queue/moved');
  assert.notEqual(stompHeader(sub3, 'id'), stompHeader(sub2, 'id'));
  const order = c2.frames.map((f) => f.command);
  assert.ok(order.lastIndexOf('UNSUBSCRIBE') < order.lastIndexOf('SUBSCRIBE'));
  assert.equal(m.subscribedDestination, '/queue/moved');
});

test('6.1-6.8, 6.10-6.12 scripted: no subscribe-dest and no configured destination: DISCONNECT and retry (R-STOMP.16)', async () => {
  const s = await scripted();
  const m = makeMtp(s.host, s.port, { destination: '' });
  const warned = next(m, 'warning');
  await m.start();
  assert.match((await warned)[0].message, /no subscribe-dest/);
  const c = await s.connection(0);
  await c.waitFor('DISCONNECT');
  assert.equal(c.frames.filter((f) => f.command === 'SUBSCRIBE').length, 0);
  await s.connection(1); // retrying
  await m.stop();
});
