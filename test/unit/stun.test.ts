import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import {
  BINDING_REQUEST,
  BINDING_SUCCESS,
  decodeStun,
  encodeBindingRequest,
  encodeBindingResponse,
  type StunMessage,
  verifyMessageIntegrity,
} from '../../src/cwmp/stun/codec.js';
import { StunServer, type StunBinding } from '../../src/cwmp/stun/server.js';
import { silentLogger } from '../../src/app/log.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
// RFC 5769 2.2: the sample IPv4 response (SOFTWARE, XOR-MAPPED-ADDRESS 192.0.2.1:32853, MESSAGE-INTEGRITY, FINGERPRINT).
const RFC5769_IPV4_RESPONSE = hex(`
  0101003c 2112a442 b7e7a701 bc34d686 fa87dfae
  8022000b 74657374 20766563 746f7220
  00200008 0001a147 e112a643
  00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
  80280004 c07d4c96`);
const TID = hex('2112a442 b7e7a701 bc34d686 fa87dfae');

test('decodes the RFC 5769 IPv4 sample response', () => {
  const r = decodeStun(RFC5769_IPV4_RESPONSE);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  assert.equal(r.message.type, BINDING_SUCCESS);
  assert.equal(r.message.rfc5389, true);
  assert.deepEqual(r.message.mappedAddress, { family: 'IPv4', address: '192.0.2.1', port: 32853 });
  assert.equal(r.message.messageIntegrity, true);
});

test('encodes XOR-MAPPED-ADDRESS as in the RFC 5769 samples (IPv4 and IPv6)', () => {
  const req = { type: BINDING_REQUEST, rfc5389: true, transactionId: TID } as StunMessage;
  const v4 = encodeBindingResponse(req, { family: 'IPv4', address: '192.0.2.1', port: 32853 });
  assert.deepEqual(v4, hex('0101000c 2112a442 b7e7a701 bc34d686 fa87dfae 00200008 0001a147 e112a643'));
  const v6 = encodeBindingResponse(req, { family: 'IPv6', address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 });
  // RFC 5769 2.3: the XOR'd IPv6 address bytes.
  assert.deepEqual(v6, hex('01010018 2112a442 b7e7a701 bc34d686 fa87dfae 00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9'));
  assert.equal(v4.length, 32);
  assert.equal(v6.length, 44);
  const back = decodeStun(v6);
  assert.ok(back.ok);
  assert.deepEqual(back.message.mappedAddress, { family: 'IPv6', address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 });
});

test('answers a classic RFC 3489 request with MAPPED-ADDRESS', () => {
  const tid = hex('0102030405060708090a0b0c0d0e0f10');
  const req = { type: BINDING_REQUEST, rfc5389: false, transactionId: tid } as StunMessage;
  const out = encodeBindingResponse(req, { family: 'IPv4', address: '10.1.2.3', port: 5060 });
  assert.deepEqual(out, hex('0101000c 01020304 05060708 090a0b0c 0d0e0f10 00010008 000113c4 0a010203'));
});

test('TR-111 Binding Request: golden bytes with USERNAME, CONNECTION-REQUEST-BINDING and BINDING-CHANGE', () => {
  const buf = encodeBindingRequest({ transactionId: TID, username: 'cpe1', connectionRequestBinding: true, bindingChange: true });
  // "dslforum.org/TR-111 " is TR-111 Part 2's 20-byte value; BINDING-CHANGE has no value.
  const golden = hex(`
    00010024 2112a442 b7e7a701 bc34d686 fa87dfae
    00060004 63706531
    c0010014 6473 6c66 6f72 756d 2e6f 7267 2f54 522d 3131 3120
    c0020000`);
  assert.deepEqual(buf, golden);
  const r = decodeStun(golden);
  assert.ok(r.ok);
  assert.equal(r.message.username, 'cpe1');
  assert.equal(r.message.connectionRequestBinding, true);
  assert.equal(r.message.bindingChange, true);
});

test('malformed messages are refused with a reason, never thrown', () => {
  const good = encodeBindingRequest({ transactionId: TID, username: 'abc', connectionRequestBinding: true });
  const cases: Array<[string, Buffer]> = [
    ['short', Buffer.alloc(10)],
    ['top bits', Buffer.concat([hex('c001'), good.subarray(2)])],
    ['length mismatch', Buffer.concat([good, Buffer.alloc(4)])],
    ['odd length', Buffer.concat([good.subarray(0, 2), hex('0003'), good.subarray(4, 20), Buffer.alloc(3)])],
    ['attribute past end', Buffer.concat([hex('00010004'), TID, hex('00060010')])],
    ['unknown required attribute', Buffer.concat([hex('00010004'), TID, hex('00770000')])],
    ['bad address', Buffer.concat([hex('01010008'), TID, hex('00200004 00050000')])],
  ];
  for (const [name, buf] of cases) {
    const r = decodeStun(buf);
    assert.equal(r.ok, false, name);
  }
  // Unknown comprehension-optional attributes are skipped.
  const r = decodeStun(Buffer.concat([hex('00010008'), TID, hex('80ff0004 01020304')]));
  assert.ok(r.ok);
  for (let i = 0; i < 2000; i++) {
    const junk = Buffer.from(Array.from({ length: (i % 80) + 1 }, (_, j) => (i * 31 + j * 17) & 0xff));
    decodeStun(junk);
  }
});

async function withServer(rate: number, fn: (s: StunServer, client: dgram.Socket) => Promise<void>): Promise<void> {
  const server = new StunServer({ host: '127.0.0.1', port: 0, ratePerSecond: rate }, silentLogger());
  await server.listen();
  const client = dgram.createSocket('udp4');
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
  try {
    await fn(server, client);
  } finally {
    client.close();
    await server.close();
  }
}

const reply = (client: dgram.Socket, ms = 300): Promise<Buffer | null> =>
  new Promise((resolve) => {
    const t = setTimeout(() => {
      client.off('message', on);
      resolve(null);
    }, ms);
    const on = (m: Buffer): void => {
      clearTimeout(t);
      resolve(m);
    };
    client.once('message', on);
  });

test('STUN server: answers a TR-111 Binding Request and learns the binding by USERNAME', async () => {
  await withServer(50, async (server, client) => {
    const bindings: StunBinding[] = [];
    server.on('binding', (b) => bindings.push(b));
    const req = encodeBindingRequest({ transactionId: TID, username: 'OUI-PC-SN1', connectionRequestBinding: true });
    const got = reply(client);
    client.send(req, server.port, '127.0.0.1');
    const res = await got;
    assert.ok(res);
    assert.ok(res.length <= req.length, 'never larger than the request');
    const d = decodeStun(res);
    assert.ok(d.ok);
    assert.equal(d.message.type, BINDING_SUCCESS);
    const port = client.address().port;
    assert.deepEqual(d.message.mappedAddress, { family: 'IPv4', address: '127.0.0.1', port });
    assert.deepEqual(bindings, [{ username: 'OUI-PC-SN1', address: '127.0.0.1', port, changed: false }]);
    // BINDING-CHANGE is reported as a change.
    const again = reply(client);
    client.send(
      encodeBindingRequest({ transactionId: TID, username: 'OUI-PC-SN1', connectionRequestBinding: true, bindingChange: true }),
      server.port,
      '127.0.0.1',
    );
    await again;
    assert.equal(bindings[1]?.changed, true);
  });
});

test('STUN server: no amplification, no reflection of other messages, malformed counted', async () => {
  await withServer(50, async (server, client) => {
    // A bare 20-byte Binding Request would get a 32-byte answer: dropped.
    client.send(encodeBindingRequest({ transactionId: TID }), server.port, '127.0.0.1');
    assert.equal(await reply(client, 200), null);
    assert.equal(server.dropped['too-small'], 1);
    // A Binding response sent to the server is not answered.
    client.send(hex('0101000c 2112a442 b7e7a701 bc34d686 fa87dfae 00200008 0001a147 e112a643'), server.port, '127.0.0.1');
    client.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'), server.port, '127.0.0.1');
    assert.equal(await reply(client, 200), null);
    assert.equal(server.dropped['not-binding-request'], 1);
    assert.equal(server.dropped.malformed, 1);
    assert.equal(server.answered, 0);
  });
});

test('STUN server: rate-limited per source address', async () => {
  await withServer(5, async (server, client) => {
    const req = encodeBindingRequest({ transactionId: TID, username: 'x', connectionRequestBinding: true });
    let answers = 0;
    client.on('message', () => answers++);
    for (let i = 0; i < 40; i++) client.send(req, server.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    // Burst of 2 x 5 plus at most a couple refilled in 300 ms.
    assert.ok(answers >= 10 && answers <= 13, `answered ${answers}`);
    assert.ok(server.dropped['rate-limited'] >= 27);
    assert.equal(server.answered, answers);
  });
});

// RFC 5769 2.1: the sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME "evtj:h6vY", MESSAGE-INTEGRITY, FINGERPRINT).
const RFC5769_REQUEST = hex(`
  00010058 2112a442 b7e7a701 bc34d686 fa87dfae
  80220010 5354554e 20746573 7420636c 69656e74
  00240004 6e0001ff
  80290008 932ff9b1 51263b36
  00060009 6576746a 3a683676 59202020
  00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2
  80280004 e57a3bcf`);

test('MESSAGE-INTEGRITY: the RFC 5769 sample request verifies with its password, not with another', () => {
  const r = decodeStun(RFC5769_REQUEST);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  assert.equal(r.message.username, 'evtj:h6vY');
  assert.ok(verifyMessageIntegrity(RFC5769_REQUEST, r.message, 'VOkJxbRl1RmTxUk/WvJxBt'));
  assert.ok(!verifyMessageIntegrity(RFC5769_REQUEST, r.message, 'VOkJxbRl1RmTxUk/WvJxBT'));
});

test('MESSAGE-INTEGRITY: signed TR-111 requests (RFC 5389 and RFC 3489 forms) verify', () => {
  for (const tid of [TID, hex('0102030405060708090a0b0c0d0e0f10')]) {
    const buf = encodeBindingRequest({ transactionId: tid, username: 'OUI-PC-SN', connectionRequestBinding: true, password: 'stun-pw' });
    const r = decodeStun(buf);
    assert.ok(r.ok);
    assert.ok(verifyMessageIntegrity(buf, r.message, 'stun-pw'));
    assert.ok(!verifyMessageIntegrity(buf, r.message, 'other'));
    const tampered = Buffer.from(buf);
    tampered[tampered.length - 30]! ^= 1;
    const t = decodeStun(tampered);
    assert.ok(!t.ok || !verifyMessageIntegrity(tampered, t.message, 'stun-pw'));
  }
});
