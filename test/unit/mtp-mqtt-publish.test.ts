/**
 * src/usp/mtp/mqtt-publish.ts: the QoS 1 PUBLISH written in one Buffer is the packet mqtt-packet
 * (MQTT.js's codec) writes, byte for byte, for MQTT 5 with and without properties and for 3.1.1,
 * across the Remaining Length sizes; it reads back with mqtt-packet's parser; bad sizes throw.
 * Through MqttMtp against a scripted broker: MQTT.js still settles each send on its PUBACK (a
 * failure reason code rejects) and fails it when the connection closes.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { encodePublishQos1 } from '../../src/usp/mtp/mqtt-publish.js';
import { MqttMtp } from '../../src/usp/mtp/mqtt.js';
import { MtpSendError } from '../../src/usp/mtp/types.js';

function reference(topic: string, id: number, payload: Buffer, v5: { responseTopic?: string; contentType?: string } | null): Buffer {
  const packet: IPublishPacket = { cmd: 'publish', topic, payload, qos: 1, messageId: id, retain: false, dup: false };
  if (v5) packet.properties = { ...v5 };
  return mqttPacket.generate(packet, { protocolVersion: v5 ? 5 : 4 });
}

test('the PUBLISH bytes equal mqtt-packet generate() for MQTT 5 and 3.1.1 at every Remaining Length size', () => {
  const props = { responseTopic: '/usp/endpoint/é', contentType: 'usp.msg' };
  for (const size of [0, 1, 90, 127, 128, 16_000, 16_383, 16_384, 70_000, 2_097_200]) {
    const payload = Buffer.alloc(size, 0xa5);
    for (const v5 of [props, { responseTopic: '/r' }, { contentType: 'usp.msg' }, {}, null]) {
      for (const id of [1, 255, 256, 65_535]) {
        assert.deepEqual(
          encodePublishQos1('/usp/controller/ctl-1', id, payload, v5),
          reference('/usp/controller/ctl-1', id, payload, v5),
          `size ${size} id ${id} ${JSON.stringify(v5)}`,
        );
      }
    }
  }
});

test('the PUBLISH reads back with mqtt-packet parser, properties and payload intact', () => {
  const payload = Buffer.from([0x0a, 0x03, 0x31, 0x2e, 0x33, 0xff, 0x00]);
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  const got: Packet[] = [];
  parser.on('packet', (p: Packet) => got.push(p));
  parser.parse(encodePublishQos1('/usp/ctl', 42, payload, { responseTopic: '/usp/agent', contentType: 'usp.msg' }));
  assert.equal(got.length, 1);
  const p = got[0] as IPublishPacket;
  assert.equal(p.cmd, 'publish');
  assert.equal(p.qos, 1);
  assert.equal(p.messageId, 42);
  assert.equal(p.topic, '/usp/ctl');
  assert.deepEqual(p.payload, payload);
  assert.equal(p.properties?.responseTopic, '/usp/agent');
  assert.equal(p.properties?.contentType, 'usp.msg');
});

test('a topic over 65,535 bytes is refused', () => {
  assert.throws(() => encodePublishQos1('t'.repeat(65_536), 1, Buffer.alloc(0), null), RangeError);
  assert.throws(() => encodePublishQos1('/t', 1, Buffer.alloc(0), { responseTopic: 'r'.repeat(70_000) }), RangeError);
});

/**
 * A scripted MQTT 5 broker on a real socket (mqtt-packet both ways): CONNACK, SUBACK, then for
 * each PUBLISH what `onPublish` says: a PUBACK with a reason code, or closing the connection.
 */
async function scriptedBroker(t: TestContext, onPublish: (p: IPublishPacket, sock: net.Socket) => void): Promise<{ url: string; published: IPublishPacket[] }> {
  const published: IPublishPacket[] = [];
  const socks = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    socks.add(sock);
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    const send = (p: Packet): void => {
      if (!sock.destroyed) sock.write(mqttPacket.generate(p, { protocolVersion: 5 }));
    };
    parser.on('packet', (p: Packet) => {
      if (p.cmd === 'connect') send({ cmd: 'connack', sessionPresent: false, reasonCode: 0 });
      else if (p.cmd === 'subscribe') send({ cmd: 'suback', messageId: p.messageId, granted: p.subscriptions.map(() => 1) });
      else if (p.cmd === 'publish') {
        published.push(p);
        onPublish(p, sock);
      } else if (p.cmd === 'pingreq') send({ cmd: 'pingresp' });
    });
    parser.on('error', () => sock.destroy());
    sock.on('data', (d) => parser.parse(d));
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of socks) s.destroy();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  return { url: `mqtt://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, published };
}

function mtp(t: TestContext, url: string): MqttMtp {
  const m = new MqttMtp({
    url,
    protocolVersion: 5,
    keepaliveS: 30,
    agentTopic: '/usp/endpoint',
    connectEndpointId: 'proto::cwmp-usp-proxy-test',
    maxRecordBytes: 64 * 1024,
    backoff: { baseMs: 60_000, maxMs: 60_000 },
  });
  t.after(() => m.stop());
  return m;
}

test('MQTT.js still matches our PUBACKs: success resolves, a failure reason code rejects, identifiers distinct', async (t) => {
  const b = await scriptedBroker(t, (p, sock) => {
    const reasonCode = p.topic === '/denied' ? 0x87 : 0;
    sock.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId, reasonCode }, { protocolVersion: 5 }));
  });
  const m = mtp(t, b.url);
  await m.start();
  assert.equal(m.status().connected, true);
  await m.send('os::a', { mtp: 'mqtt', address: '/ctl' }, new Uint8Array([1, 2, 3]));
  await assert.rejects(
    m.send('os::a', { mtp: 'mqtt', address: '/denied' }, new Uint8Array([4])),
    (e: Error) => e instanceof MtpSendError && /Not authorized/i.test(e.message),
  );
  await m.send('os::a', { mtp: 'mqtt', address: '/ctl' }, new Uint8Array([5]));
  assert.deepEqual(
    b.published.map((p) => [p.topic, [...(p.payload as Buffer)], p.properties?.responseTopic, p.properties?.contentType]),
    [
      ['/ctl', [1, 2, 3], '/usp/endpoint', 'usp.msg'],
      ['/denied', [4], '/usp/endpoint', 'usp.msg'],
      ['/ctl', [5], '/usp/endpoint', 'usp.msg'],
    ],
  );
  assert.equal(new Set(b.published.map((p) => p.messageId)).size, 3, 'identifiers in use are distinct');
});

test('a PUBLISH in flight when the connection closes rejects', async (t) => {
  const b = await scriptedBroker(t, (_p, sock) => sock.destroy());
  const m = mtp(t, b.url);
  await m.start();
  await assert.rejects(m.send('os::a', { mtp: 'mqtt', address: '/ctl' }, new Uint8Array([1])), MtpSendError);
  assert.equal(b.published.length, 1);
});
