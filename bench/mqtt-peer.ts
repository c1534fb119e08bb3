/**
 * The benches' own MQTT 5 peers (controller harnesses, the echo responder): connected with
 * TCP_NODELAY (Nagle would cap a request/answer bench, issue 22), and USP Records read off
 * the messages. Not the product's MTP: a bare client, as a third-party controller would be.
 */
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { decodeMsg, decodeRecord, type Msg, type UspRecord } from '../src/usp/codec/record.js';

/** A connected MQTT 5 client with TCP_NODELAY, no reconnect, a clean start. */
export async function connectMqtt5(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, clean: true, ...opts });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  (c.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
  return c;
}

/** Calls `handle` with each NoSessionContext Record's Msg (and the Record and packet) the client receives. */
export function onUspMsg(c: MqttClient, handle: (msg: Msg, rec: UspRecord, packet: IPublishPacket) => void): void {
  c.on('message', (_topic, payload, packet) => {
    const rec = decodeRecord(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
    if (rec.recordType.kind !== 'noSessionContext') return;
    handle(decodeMsg(rec.recordType.payload), rec, packet);
  });
}
