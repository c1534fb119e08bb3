/**
 * The QoS 1 PUBLISH of a USP Record, written in one Buffer instead of through MQTT.js's publish()
 * (which spreads its options, deep-copies the packet with its payload into the in-flight store,
 * and has mqtt-packet write it in a dozen pieces with a `debug` call each: more CPU than the rest
 * of a Get's MQTT handling). Only the writing is ours: the Packet Identifier comes from the
 * client's own provider and the PUBLISH is registered as in flight where MQTT.js looks for it, so
 * MQTT.js still matches the PUBACK (its reason code an error as before, MQTT 5 section 3.4.2.1),
 * frees the identifier and fails the callback when the connection closes.
 *
 * Packet layout: MQTT 5.0 section 3.3 (3.1.1 section 3.3 without the properties).
 */
import type { IPublishPacket, MqttClient } from 'mqtt';

/** PUBLISH (3) with QoS 1, DUP 0, RETAIN 0 (MQTT 5 section 3.3.1). */
const PUBLISH_QOS1 = 0x32;
/** Property identifiers (MQTT 5 section 2.2.2.2). */
const CONTENT_TYPE = 0x03;
const RESPONSE_TOPIC = 0x08;
/** Remaining Length's upper bound (section 1.5.5). */
const MAX_REMAINING = 268_435_455;

function varIntSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x20_0000 ? 3 : 4;
}

function writeVarInt(buf: Buffer, at: number, n: number): number {
  let v = n;
  do {
    let b = v % 0x80;
    v = Math.floor(v / 0x80);
    if (v > 0) b |= 0x80;
    buf[at++] = b;
  } while (v > 0);
  return at;
}

function writeUtf8(buf: Buffer, at: number, s: string, len: number): number {
  buf.writeUInt16BE(len, at);
  buf.write(s, at + 2, len, 'utf8');
  return at + 2 + len;
}

/**
 * The PUBLISH packet's bytes. `v5`: the Response Topic and Content Type properties (R-MQTT.22,
 * R-MQTT.27), both optional; without `v5` an MQTT 3.1.1 packet. Throws on a string over 65,535
 * bytes or a packet over the Remaining Length limit.
 */
export function encodePublishQos1(topic: string, packetId: number, payload: Uint8Array, v5: { responseTopic?: string; contentType?: string } | null): Buffer {
  const topicLen = Buffer.byteLength(topic);
  const rtLen = v5?.responseTopic !== undefined ? Buffer.byteLength(v5.responseTopic) : -1;
  const ctLen = v5?.contentType !== undefined ? Buffer.byteLength(v5.contentType) : -1;
  if (topicLen > 0xffff || rtLen > 0xffff || ctLen > 0xffff) throw new RangeError('MQTT string over 65,535 bytes');
  const propsLen = (rtLen >= 0 ? 3 + rtLen : 0) + (ctLen >= 0 ? 3 + ctLen : 0);
  const remaining = 2 + topicLen + 2 + (v5 ? varIntSize(propsLen) + propsLen : 0) + payload.length;
  if (remaining > MAX_REMAINING) throw new RangeError('MQTT packet over the Remaining Length limit');
  const buf = Buffer.allocUnsafe(1 + varIntSize(remaining) + remaining);
  buf[0] = PUBLISH_QOS1;
  let at = writeVarInt(buf, 1, remaining);
  at = writeUtf8(buf, at, topic, topicLen);
  buf.writeUInt16BE(packetId, at);
  at += 2;
  if (v5) {
    at = writeVarInt(buf, at, propsLen);
    if (rtLen >= 0) {
      buf[at++] = RESPONSE_TOPIC;
      at = writeUtf8(buf, at, v5.responseTopic!, rtLen);
    }
    if (ctLen >= 0) {
      buf[at++] = CONTENT_TYPE;
      at = writeUtf8(buf, at, v5.contentType!, ctLen);
    }
  }
  buf.set(payload, at);
  return buf;
}

/**
 * Publishes at QoS 1 on a connected client, MQTT.js keeping the flow: false when this path cannot
 * be used right now (no free Packet Identifier, a stream that is not node's), and the caller
 * falls back to client.publish(). `done` is called on PUBACK (with an Error for a failure reason
 * code) or with an Error when the connection closes first.
 */
export function publishQos1(
  c: MqttClient,
  topic: string,
  payload: Uint8Array,
  v5: { responseTopic?: string; contentType?: string } | null,
  done: (err?: Error) => void,
): boolean {
  const stream = c.stream as { write?: (b: Buffer) => boolean } | undefined;
  if (typeof stream?.write !== 'function') return false;
  const id = c.messageIdProvider.allocate();
  if (id === null) return false;
  let bytes: Buffer;
  try {
    bytes = encodePublishQos1(topic, id, payload, v5);
  } catch (err) {
    c.messageIdProvider.deallocate(id);
    done(err as Error);
    return true;
  }
  // Where MQTT.js's PUBACK handling (handlers/ack.js) and its close (_flush) look: the callback in
  // `outgoing`, a stand-in in the in-flight store (it deletes it, then frees the identifier).
  c.outgoing[id] = { volatile: false, cmd: 'publish', cb: (err) => done(err ?? undefined) };
  // The packet itself (no copy: the payload is ours until PUBACK), as publish() would have stored it.
  const packet: IPublishPacket = {
    cmd: 'publish',
    messageId: id,
    topic,
    payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
    qos: 1,
    retain: false,
    dup: false,
  };
  if (v5) packet.properties = v5;
  c.outgoingStore.put(packet, () => {});
  stream.write(bytes);
  return true;
}
