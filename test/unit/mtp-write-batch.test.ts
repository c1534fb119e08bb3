/**
 * src/usp/mtp/write-batch.ts on a real TCP connection: the pieces written in one turn reach the
 * socket as one write, in order; a write with a callback, end() and a destroyed socket keep
 * node's semantics; MQTT packets written through mqtt-packet arrive whole and parse back.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { batchWritesPerTurn } from '../../src/usp/mtp/write-batch.js';

interface Pair {
  client: net.Socket;
  /** Every write node made on the client socket (each one is one syscall's worth of bytes). */
  writes: Buffer[];
  /** Resolves with all bytes the server read, once the client has ended. */
  received: Promise<Buffer>;
  /** The server side (paused until resumed when asked). */
  peer: net.Socket;
}

/** A connected client/server pair, closed after the test. `paused`: the server reads nothing until peer.resume(). */
async function pair(t: TestContext, paused = false): Promise<Pair> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = (await accepted) as [net.Socket];
  const received = new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    peer.on('data', (d: Buffer) => chunks.push(d));
    peer.on('end', () => resolve(Buffer.concat(chunks)));
  });
  if (paused) peer.pause();
  const writes: Buffer[] = [];
  // Spy on the socket's own writes (below stream bookkeeping): one entry per write handed to libuv.
  const s = client as unknown as {
    _write: (c: Buffer | string, e: BufferEncoding, cb: () => void) => void;
    _writev: (c: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>, cb: () => void) => void;
  };
  const w = s._write.bind(client);
  const wv = s._writev.bind(client);
  s._write = (c, e, cb) => {
    writes.push(typeof c === 'string' ? Buffer.from(c, e) : Buffer.from(c));
    w(c, e, cb);
  };
  s._writev = (c, cb) => {
    writes.push(Buffer.concat(c.map((x) => (typeof x.chunk === 'string' ? Buffer.from(x.chunk, x.encoding) : x.chunk))));
    wv(c, cb);
  };
  t.after(async () => {
    client.destroy();
    peer.destroy();
    server.close();
    await once(server, 'close');
  });
  return { client, writes, received, peer };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('the pieces of one turn are one write, in order, strings as UTF-8', async (t) => {
  const p = await pair(t);
  batchWritesPerTurn(p.client);
  assert.equal(p.client.write(Buffer.from([1, 2])), true);
  p.client.write('é/t');
  p.client.write(new Uint8Array([3]));
  p.client.write('x', 'utf8');
  assert.equal(p.writes.length, 0, 'nothing is written before the turn ends');
  await turn();
  assert.equal(p.writes.length, 1);
  assert.deepEqual(p.writes[0], Buffer.concat([Buffer.from([1, 2]), Buffer.from('é/t'), Buffer.from([3]), Buffer.from('x')]));
  p.client.write(Buffer.from([9]));
  await turn();
  assert.equal(p.writes.length, 2, 'the next turn is its own write');
  p.client.end();
  assert.deepEqual(await p.received, Buffer.from([1, 2, ...Buffer.from('é/t'), 3, ...Buffer.from('x'), 9]));
});

test('a write with a callback, another encoding or end() flushes what is held first', async (t) => {
  const p = await pair(t);
  batchWritesPerTurn(p.client);
  p.client.write(Buffer.from('a'));
  let called = false;
  p.client.write(Buffer.from('b'), () => {
    called = true;
  });
  p.client.write('63', 'hex');
  p.client.write(Buffer.from('d'));
  p.client.end(Buffer.from('e'));
  assert.equal(Buffer.concat(p.writes).toString(), 'abcde', 'held pieces go before the pass-through write; end() flushes before ending');
  assert.equal((await p.received).toString(), 'abcde');
  assert.equal(called, true);
});

test('pieces held when the socket is destroyed are dropped, not written after the end', async (t) => {
  const p = await pair(t);
  batchWritesPerTurn(p.client);
  p.client.write(Buffer.from('lost'));
  p.client.destroy();
  await turn();
  assert.equal(p.writes.length, 0);
});

test('write() returns the real back-pressure state', async (t) => {
  const p = await pair(t, true);
  batchWritesPerTurn(p.client);
  // The server reads nothing: a pass-through write (a callback) larger than the kernel's socket
  // buffers stays queued in node, then a held piece answers false until 'drain'.
  const big = Buffer.alloc(64 * 1024 * 1024);
  p.client.write(big, () => {});
  assert.equal(p.client.writableNeedDrain, true);
  p.peer.resume();
  assert.equal(p.client.write(Buffer.from('x')), false);
  await once(p.client, 'drain');
  assert.equal(p.client.write(Buffer.from('y')), true);
  p.client.end();
  const all = await p.received;
  assert.equal(all.length, big.length + 2);
  assert.equal(all.subarray(-2).toString(), 'xy');
});

test('MQTT packets written through mqtt-packet in one turn arrive whole and parse back', async (t) => {
  const p = await pair(t);
  batchWritesPerTurn(p.client);
  const sent: Packet[] = [
    { cmd: 'puback', messageId: 7 },
    {
      cmd: 'publish',
      topic: '/usp/controller',
      payload: Buffer.from([0x0a, 0x03, 0x31, 0x2e, 0x33]),
      qos: 1,
      messageId: 8,
      retain: false,
      dup: false,
      properties: { responseTopic: '/usp/endpoint', contentType: 'usp.msg' },
    },
    { cmd: 'puback', messageId: 9 },
  ];
  for (const pk of sent) mqttPacket.writeToStream(pk, p.client, { protocolVersion: 5 });
  await turn();
  assert.equal(p.writes.length, 1, 'three packets, one write');
  p.client.end();
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  const got: Packet[] = [];
  parser.on('packet', (pk: Packet) => got.push(pk));
  parser.parse(await p.received);
  assert.deepEqual(
    got.map((g) => [g.cmd, 'messageId' in g ? g.messageId : null]),
    [
      ['puback', 7],
      ['publish', 8],
      ['puback', 9],
    ],
  );
  const pub = got[1] as Packet & { topic: string; payload: Buffer; properties: Record<string, unknown> };
  assert.equal(pub.topic, '/usp/controller');
  assert.deepEqual(pub.payload, sent[1]!.cmd === 'publish' ? sent[1]!.payload : null);
  assert.equal(pub.properties.responseTopic, '/usp/endpoint');
  assert.equal(pub.properties.contentType, 'usp.msg');
});
