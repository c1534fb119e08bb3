/**
 * MQTT MTP against a real mosquitto (test/helpers/brokers.ts), with a plain MQTT.js client as
 * the controller and a TCP tap in front of the broker to read our CONNECT packet.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet';
import { decodeReplyToTopic, encodeReplyToTopic, MqttMtp, topicMatches, type MqttMtpOptions } from '../../src/usp/mtp/mqtt.js';
import { MtpSendError, type InboundRecord, type MtpEvents } from '../../src/usp/mtp/types.js';
import { startMosquitto, strayBrokerProcesses, type MosquittoHandle } from '../helpers/brokers.js';

const SKIP = 'mosquitto not installed (apt-get install mosquitto)';
let broker: MosquittoHandle | null = null;
let seq = 0;
const cleanups: Array<() => Promise<void> | void> = [];

before(async () => {
  broker = await startMosquitto();
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await broker?.stop();
  assert.deepEqual(
    strayBrokerProcesses().filter((l) => broker && l.includes(String(broker.port))),
    [],
  );
});

function need(t: TestContext): MosquittoHandle | null {
  if (!broker) t.skip(SKIP);
  return broker;
}

function topics() {
  const n = ++seq;
  return { agent: `/t${n}/usp/endpoint`, controller: `/t${n}/usp/controller` };
}

function makeMtp(url: string, over: Partial<MqttMtpOptions> = {}): MqttMtp {
  const m = new MqttMtp({
    url,
    protocolVersion: 5,
    keepaliveS: 30,
    agentTopic: '/usp/endpoint',
    connectEndpointId: 'proto::cwmp-usp-proxy-test',
    maxRecordBytes: 64 * 1024,
    backoff: { baseMs: 100, maxMs: 1000 },
    ...over,
  });
  cleanups.push(() => m.stop());
  return m;
}

async function controller(url: string, topic: string, version: 5 | 4 = 5): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { protocolVersion: version, clientId: `ctl-${process.pid}-${++seq}`, reconnectPeriod: 0 });
  cleanups.push(() => c.endAsync(true));
  await c.subscribeAsync(topic, { qos: 1 });
  return c;
}

function next<K extends keyof MtpEvents>(m: MqttMtp, ev: K, timeoutMs = 10_000): Promise<MtpEvents[K]> {
  return once(m as never, ev, { signal: AbortSignal.timeout(timeoutMs) }) as unknown as Promise<MtpEvents[K]>;
}

function nextMessage(c: MqttClient, timeoutMs = 10_000): Promise<{ topic: string; payload: Buffer; packet: IPublishPacket }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no message')), timeoutMs);
    c.once('message', (topic, payload, packet) => {
      clearTimeout(t);
      resolve({ topic, payload, packet });
    });
  });
}

/** A TCP tap in front of the broker that parses what the client sends. */
async function tap(brokerPort: number): Promise<{ port: number; packets: Packet[]; close(): Promise<void> }> {
  const packets: Packet[] = [];
  const socks = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    const up = net.connect({ host: '127.0.0.1', port: brokerPort });
    socks.add(client).add(up);
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (p) => packets.push(p));
    parser.on('error', () => {});
    client.on('data', (d) => {
      parser.parse(d);
      up.write(d);
    });
    up.pipe(client);
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    port,
    packets,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => srv.close(() => r()));
    },
  };
}

test('reply-to topic codec (R-MQTT.24/25) and topic filter matching', () => {
  assert.equal(encodeReplyToTopic('usp/agents/a', 'usp/controllers/oui:00256D:x'), 'usp/agents/a/reply-to=usp%2Fcontrollers%2Foui:00256D:x');
  assert.equal(decodeReplyToTopic('usp/agents/a/reply-to=usp%2Fcontrollers%2Foui:00256D:x'), 'usp/controllers/oui:00256D:x');
  assert.equal(decodeReplyToTopic('/usp/endpoint'), null);
  assert.equal(decodeReplyToTopic('/usp/endpoint/reply-to='), null);
  assert.ok(topicMatches('/usp/endpoint/#', '/usp/endpoint'));
  assert.ok(topicMatches('/usp/endpoint/#', '/usp/endpoint/reply-to=%2Fx'));
  assert.ok(topicMatches('/usp/+/x', '/usp/a/x'));
  assert.ok(!topicMatches('/usp/endpoint', '/usp/endpoint/x'));
});

test('send before start rejects with MtpSendError', async () => {
  const m = makeMtp('mqtt://127.0.0.1:1');
  await assert.rejects(m.send('os::a', { mtp: 'mqtt', address: '/x' }, new Uint8Array([1])), MtpSendError);
  assert.equal(m.status().connected, false);
});

test('MQTT 5: CONNECT carries usp-endpoint-id, empty ClientId, Request Response Information; channelOpen fires', async (t) => {
  const b = need(t);
  if (!b) return;
  const tp = await tap(b.port);
  cleanups.push(() => tp.close());
  const { agent } = topics();
  const m = makeMtp(`mqtt://127.0.0.1:${tp.port}`, { agentTopic: agent, keepaliveS: 45 });
  const opened = next(m, 'channelOpen');
  await m.start();
  const [ev] = await opened;
  assert.deepEqual(ev, { mtp: 'mqtt', agentEid: null, dest: null, peerEid: null });
  const connect = tp.packets.find((p) => p.cmd === 'connect') as IConnectPacket;
  assert.equal(connect.protocolVersion, 5);
  assert.equal(connect.clientId, ''); // R-MQTT.8
  assert.equal(connect.keepalive, 45); // R-MQTT.14
  assert.equal(connect.properties?.requestResponseInformation, true); // R-MQTT.12
  assert.deepEqual({ ...connect.properties?.userProperties }, { 'usp-endpoint-id': 'proto::cwmp-usp-proxy-test' }); // R-MQTT.13
  const sub = tp.packets.find((p) => p.cmd === 'subscribe');
  assert.ok(sub && sub.cmd === 'subscribe');
  assert.deepEqual(
    sub.subscriptions.map((s) => [s.topic, s.qos]),
    [[agent, 1]],
  );
  // R-MQTT.9: the ClientId mosquitto assigned is kept for the next connections.
  assert.match(m.clientId, /.+/);
  assert.equal(m.status().connected, true);
  assert.equal(m.status().channels, 1);
  assert.equal(m.replyTopic, agent);
});

test('MQTT 5: records both ways with Response Topic, Content Type and usp-endpoint-id', async (t) => {
  const b = need(t);
  if (!b) return;
  const { agent, controller: ctlTopic } = topics();
  const ctl = await controller(b.url, ctlTopic);
  const m = makeMtp(b.url, { agentTopic: agent });
  const opened = next(m, 'channelOpen');
  await m.start();
  await opened;

  // controller -> agent, with Response Topic and the controller's EID as a user property.
  const payload = Buffer.from([0x0a, 0x03, 0x31, 0x2e, 0x34, 0x00, 0xff, 0x0a]);
  let got = next(m, 'record');
  await ctl.publishAsync(agent, payload, {
    qos: 1,
    properties: { responseTopic: ctlTopic, contentType: 'application/vnd.bbf.usp.msg', userProperties: { 'usp-endpoint-id': 'proto::ctl' } },
  });
  let [rec] = (await got) as [InboundRecord];
  assert.deepEqual(Buffer.from(rec.bytes), payload);
  assert.deepEqual(rec.replyTo, { mtp: 'mqtt', address: ctlTopic });
  assert.equal(rec.peerEid, 'proto::ctl');
  assert.equal(rec.contentType, 'application/vnd.bbf.usp.msg');
  assert.equal(rec.agentEid, null);
  assert.equal(rec.mtp, 'mqtt');

  // agent -> controller: R-MQTT.23 Response Topic = agentTopic, R-MQTT.27 Content Type usp.msg.
  const msg = nextMessage(ctl);
  await m.send('os::012345-SN1', rec.replyTo!, new Uint8Array([1, 2, 0, 10, 3]));
  const { topic, payload: p2, packet } = await msg;
  assert.equal(topic, ctlTopic);
  assert.deepEqual([...p2], [1, 2, 0, 10, 3]);
  assert.equal(packet.properties?.responseTopic, agent);
  assert.equal(packet.properties?.contentType, 'usp.msg');
  assert.equal(packet.qos, 1);

  // Without Response Topic: replyTo null (the endpoint falls back to the configured topic).
  got = next(m, 'record');
  await ctl.publishAsync(agent, Buffer.from('x'), { qos: 0 });
  [rec] = (await got) as [InboundRecord];
  assert.equal(rec.replyTo, null);
  assert.equal(rec.peerEid, null);
  assert.equal(rec.contentType, undefined);

  // A Content Type that is not a USP Record (R-MQTT.27a) is dropped with a warning.
  const warned = next(m, 'warning');
  let records = 0;
  m.on('record', () => records++);
  await ctl.publishAsync(agent, Buffer.from('x'), { qos: 1, properties: { contentType: 'text/plain' } });
  const [w] = await warned;
  assert.match(w.message, /Content Type text\/plain/);
  const last = next(m, 'record');
  await ctl.publishAsync(agent, Buffer.from('y'), { qos: 1 });
  await last;
  assert.equal(records, 1);
});

test('sends of one event-loop turn (written together) each resolve on their PUBACK and arrive in order', async (t) => {
  const b = need(t);
  if (!b) return;
  const { agent, controller: ctlTopic } = topics();
  const ctl = await controller(b.url, ctlTopic);
  t.after(() => ctl.endAsync(true));
  const m = makeMtp(b.url, { agentTopic: agent });
  t.after(() => m.stop());
  const opened = next(m, 'channelOpen');
  await m.start();
  await opened;
  const got: number[] = [];
  const all = new Promise<void>((resolve) =>
    ctl.on('message', (_topic, payload) => {
      got.push(payload[0]!);
      if (got.length === 20) resolve();
    }),
  );
  // Twenty sends started in one turn: held on the corked socket until the turn ends.
  const sends = Array.from({ length: 20 }, (_, i) => m.send('os::012345-SN1', { mtp: 'mqtt', address: ctlTopic }, new Uint8Array([i, 1, 2])));
  await Promise.all(sends);
  await all;
  assert.deepEqual(
    got,
    Array.from({ length: 20 }, (_, i) => i),
  );
  // The socket is written again after the turn: a later send goes out too.
  const later = nextMessage(ctl);
  await m.send('os::012345-SN1', { mtp: 'mqtt', address: ctlTopic }, new Uint8Array([99]));
  assert.deepEqual([...(await later).payload], [99]);
});

test('oversize records are dropped with a warning (inbound) and rejected (outbound)', async (t) => {
  const b = need(t);
  if (!b) return;
  const { agent, controller: ctlTopic } = topics();
  const ctl = await controller(b.url, ctlTopic);
  const m = makeMtp(b.url, { agentTopic: agent, maxRecordBytes: 100 });
  const opened = next(m, 'channelOpen');
  await m.start();
  await opened;
  const records: InboundRecord[] = [];
  m.on('record', (r) => records.push(r));
  const warned = next(m, 'warning');
  await ctl.publishAsync(agent, Buffer.alloc(101, 7), { qos: 1, properties: { responseTopic: ctlTopic } });
  const [w] = await warned;
  assert.match(w.message, /maxRecordBytes/);
  assert.equal(w.detail?.size, 101);
  const got = next(m, 'record');
  await ctl.publishAsync(agent, Buffer.alloc(100, 7), { qos: 1, properties: { responseTopic: ctlTopic } });
  await got;
  assert.equal(records.length, 1);
  assert.equal(records[0]!.bytes.length, 100);
  await assert.rejects(m.send('os::a', { mtp: 'mqtt', address: ctlTopic }, new Uint8Array(101)), MtpSendError);
});

test('MQTT 3.1.1: reply-to carried in the topic name both ways (R-MQTT.24/25)', async (t) => {
  const b = need(t);
  if (!b) return;
  const tp = await tap(b.port);
  cleanups.push(() => tp.close());
  const { agent, controller: ctlTopic } = topics();
  const ctl = await controller(b.url, `${ctlTopic}/#`, 4);
  const m = makeMtp(`mqtt://127.0.0.1:${tp.port}`, { agentTopic: agent, protocolVersion: 4 });
  const opened = next(m, 'channelOpen');
  await m.start();
  await opened;
  const connect = tp.packets.find((p) => p.cmd === 'connect') as IConnectPacket;
  assert.equal(connect.protocolVersion, 4);
  assert.equal(connect.clientId, 'proto::cwmp-usp-proxy-test'); // R-MQTT.8: the EID when no ClientId is configured
  assert.deepEqual(m.subscribedFilters, [`${agent}/#`]);

  let got = next(m, 'record');
  await ctl.publishAsync(encodeReplyToTopic(agent, ctlTopic), Buffer.from([0, 1, 2]), { qos: 1 });
  let [rec] = (await got) as [InboundRecord];
  assert.deepEqual(rec.replyTo, { mtp: 'mqtt', address: ctlTopic });
  assert.deepEqual([...rec.bytes], [0, 1, 2]);
  assert.equal(rec.contentType, undefined);

  const msg = nextMessage(ctl);
  await m.send('os::a', rec.replyTo!, new Uint8Array([9, 0, 9]));
  const { topic, payload } = await msg;
  assert.equal(topic, `${ctlTopic}/reply-to=${agent.replace(/\//g, '%2F')}`);
  assert.equal(decodeReplyToTopic(topic), agent);
  assert.deepEqual([...payload], [9, 0, 9]);

  // A plain publish to the agent topic (version mismatch, R-MQTT.26a): replyTo null.
  got = next(m, 'record');
  await ctl.publishAsync(agent, Buffer.from([5]), { qos: 1 });
  [rec] = (await got) as [InboundRecord];
  assert.equal(rec.replyTo, null);
});

test('broker restart: channelClose, backoff reconnect, channelOpen again, same ClientId', async (t) => {
  const b = need(t);
  if (!b) return;
  const { agent, controller: ctlTopic } = topics();
  const m = makeMtp(b.url, { agentTopic: agent, backoff: { baseMs: 200, maxMs: 1000 } });
  const opened = next(m, 'channelOpen');
  await m.start();
  await opened;
  const firstId = m.clientId;
  const warnings: string[] = [];
  m.on('warning', (w) => warnings.push(w.message));
  const closed = next(m, 'channelClose');
  await b.stop();
  const [c] = await closed;
  assert.equal(c.mtp, 'mqtt');
  assert.equal(m.status().connected, false);
  await assert.rejects(m.send('os::a', { mtp: 'mqtt', address: ctlTopic }, new Uint8Array([1])), MtpSendError);
  await new Promise((r) => setTimeout(r, 700)); // a few failed attempts while the broker is down
  const reopened = next(m, 'channelOpen', 30_000);
  broker = await startMosquitto({ port: b.port });
  await reopened;
  assert.ok(
    warnings.some((w) => /retrying in \d+ ms/.test(w)),
    warnings.join('\n'),
  );
  assert.equal(m.clientId, firstId);
  const ctl = await controller(broker!.url, ctlTopic);
  const msg = nextMessage(ctl);
  await m.send('os::a', { mtp: 'mqtt', address: ctlTopic }, new Uint8Array([4, 2]));
  assert.deepEqual([...(await msg).payload], [4, 2]);
});

test('throughput: 1,000 round trips of a 1 KB record (controller -> agent -> controller)', async (t) => {
  const b = need(t);
  if (!b) return;
  const { agent, controller: ctlTopic } = topics();
  const ctl = await controller(b.url, ctlTopic);
  const m = makeMtp(b.url, { agentTopic: agent });
  const opened = next(m, 'channelOpen');
  await m.start();
  await opened;
  m.on('record', (r) => void m.send('os::a', r.replyTo!, r.bytes).catch(() => {}));
  const body = Buffer.alloc(1024, 0x5a);
  const N = 1000;
  const run = async (window: number) => {
    let received = 0;
    let sent = 0;
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (sent < N && sent - received < window) {
          sent++;
          void ctl.publishAsync(agent, body, { qos: 1, properties: { responseTopic: ctlTopic, contentType: 'usp.msg' } });
        }
      };
      ctl.on('message', (_t, p) => {
        assert.equal(p.length, 1024);
        if (++received === N) resolve();
        else pump();
      });
      pump();
    });
    ctl.removeAllListeners('message');
    return N / ((performance.now() - t0) / 1000);
  };
  const seqRate = await run(1);
  const winRate = await run(32);
  t.diagnostic(`MQTT 5 / mosquitto QoS 1, 1 KB: ${seqRate.toFixed(0)} round trips/s one at a time, ${winRate.toFixed(0)} round trips/s with 32 in flight`);
  assert.ok(seqRate > 50);
});

test('bound topics (controllers[].mqtt.agentTopic) are subscribed; each Record names the topic it came on (5.0 and 3.1.1)', async (t) => {
  const b = need(t);
  if (!b) return;
  for (const version of [5, 4] as const) {
    const { agent, controller: ctlTopic } = topics();
    const bound = `${agent}-bound/ctl-a`;
    const ctl = await controller(b.url, ctlTopic, version);
    const m = makeMtp(b.url, { agentTopic: agent, protocolVersion: version, boundTopics: [bound] });
    const opened = next(m, 'channelOpen');
    await m.start();
    await opened;
    assert.deepEqual(m.subscribedFilters, version === 5 ? [agent, bound] : [`${agent}/#`, `${bound}/#`]);
    for (const topic of [agent, bound]) {
      const got = next(m, 'record');
      const name = version === 5 ? topic : encodeReplyToTopic(topic, ctlTopic);
      await ctl.publishAsync(name, Buffer.from([1]), { qos: 1, ...(version === 5 ? { properties: { responseTopic: ctlTopic } } : {}) });
      const [rec] = (await got) as [InboundRecord];
      assert.equal(rec.channel, topic, `MQTT ${version}: the topic without a reply-to suffix`);
      assert.deepEqual(rec.replyTo, { mtp: 'mqtt', address: ctlTopic });
    }
    await m.stop();
  }
});
