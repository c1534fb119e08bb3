/**
 * One Mtp contract (src/usp/mtp/types.ts), run against the WebSocket MTP (server role, a `ws`
 * controller), the MQTT MTP (a real mosquitto, an MQTT.js controller) and the STOMP MTP (a real
 * RabbitMQ, a @stomp/stompjs controller). Each MTP's own file tests what is particular to it;
 * this one holds what the endpoint relies on from all of them:
 *  - send() before start(), after stop() and to another MTP's destination rejects with MtpSendError;
 *  - a channel opening is announced, and status() then says connected;
 *  - Records cross both ways byte for byte (every byte value), inbound ones with a reply path of
 *    the same MTP that send() accepts;
 *  - an inbound Record over maxRecordBytes never becomes a 'record' event, and the MTP goes on;
 *  - stop() announces the channel's end, leaves status() disconnected and may be repeated.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Client, type IMessage } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import mqtt from 'mqtt';
import { MqttMtp } from '../../src/usp/mtp/mqtt.js';
import { StompMtp } from '../../src/usp/mtp/stomp.js';
import { MtpSendError, type InboundRecord, type Mtp, type MtpEvents, type MtpKind } from '../../src/usp/mtp/types.js';
import { WebSocketMtp } from '../../src/usp/mtp/websocket.js';
import { startMosquitto, startRabbitStomp, type MosquittoHandle, type RabbitStompHandle } from '../helpers/brokers.js';
import { connectPeer, type PeerSocket } from '../helpers/ws-peer.js';

const AGENT = 'os::012345-CONTRACT';
const CTL = 'proto::contract-ctl';
const MAX = 16 * 1024;
/** Every byte value, and the bytes that frame STOMP and MQTT text (NUL, LF, ':', '\\'). */
const EVERY_BYTE = Uint8Array.from([0, 10, 13, 58, 92, ...Array.from({ length: 256 }, (_, i) => i), 0, 10]);

/** The controller's side of one MTP, as the contract drives it. */
interface Peer {
  /** Sends Record bytes to the agent side, with the peer's own address as the reply path. */
  send(bytes: Uint8Array): Promise<void>;
  /** The next Record the peer received. */
  next(): Promise<Uint8Array>;
  /** After an oversize Record: resolves once the MTP has dealt with it (WebSocket: the connection closed with 1009). */
  afterOversize(): Promise<void>;
  close(): Promise<void>;
}

/** One MTP under test, not started, with the means to attach a controller once it is. */
interface Subject {
  mtp: Mtp;
  /** A destination of this MTP's kind that cannot be reached (nothing is connected to it). */
  nowhere: { mtp: MtpKind; address: string };
  /** Connects a controller (after start()); resolves once the MTP announced the channel. */
  connect(): Promise<Peer>;
}

function next<K extends keyof MtpEvents>(m: Mtp, ev: K, timeoutMs = 15_000): Promise<MtpEvents[K]> {
  return once(m as never, ev, { signal: AbortSignal.timeout(timeoutMs) }) as unknown as Promise<MtpEvents[K]>;
}

/** A queue of received payloads with awaitable next(). */
function inbox(): { push(b: Uint8Array): void; next(): Promise<Uint8Array> } {
  const got: Uint8Array[] = [];
  const waiting: Array<(b: Uint8Array) => void> = [];
  return {
    push: (b) => {
      const w = waiting.shift();
      if (w) w(b);
      else got.push(b);
    },
    next: () => {
      const b = got.shift();
      if (b) return Promise.resolve(b);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('the controller received nothing within 10 s')), 10_000);
        waiting.push((x) => {
          clearTimeout(t);
          resolve(x);
        });
      });
    },
  };
}

let seq = 0;

function webSocketSubject(): Subject {
  const mtp = new WebSocketMtp({
    server: { host: '127.0.0.1', port: 0, path: '/usp', maxRecordBytes: MAX, pingIntervalMs: 60_000 },
    client: null,
    isAgent: (eid) => eid === AGENT,
  });
  return {
    mtp,
    nowhere: { mtp: 'websocket', address: 'srv-nowhere' },
    async connect() {
      const url = `ws://127.0.0.1:${mtp.serverAddress()!.port}/usp/${encodeURIComponent(AGENT)}?eid=${encodeURIComponent(CTL)}`;
      const opened = next(mtp, 'channelOpen');
      let socket: PeerSocket = await connectPeer(url);
      await opened;
      return {
        // A WebSocket closed for an oversize Record (1009) is dialled again, as a controller would.
        async send(bytes) {
          if (socket.ws.readyState !== socket.ws.OPEN) {
            const reopened = next(mtp, 'channelOpen');
            socket = await connectPeer(url);
            await reopened;
          }
          socket.send(bytes);
        },
        next: async () => new Uint8Array((await socket.nextMessage(10_000)).data),
        afterOversize: async () => assert.equal((await socket.closed).code, 1009),
        close: async () => void (await socket.close()),
      };
    },
  };
}

function mqttSubject(broker: MosquittoHandle): Subject {
  const n = ++seq;
  const agentTopic = `/contract${n}/agent`;
  const ctlTopic = `/contract${n}/controller`;
  const mtp = new MqttMtp({
    url: broker.url,
    protocolVersion: 5,
    keepaliveS: 30,
    agentTopic,
    connectEndpointId: 'proto::contract-proxy',
    maxRecordBytes: MAX,
    backoff: { baseMs: 100, maxMs: 1000 },
  });
  return {
    mtp,
    nowhere: { mtp: 'mqtt', address: `/contract${n}/nobody` },
    async connect() {
      const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `contract-${process.pid}-${n}`, reconnectPeriod: 0 });
      const box = inbox();
      c.on('message', (_topic, payload) => box.push(new Uint8Array(payload)));
      await c.subscribeAsync(ctlTopic, { qos: 1 });
      return {
        send: async (bytes) => void (await c.publishAsync(agentTopic, Buffer.from(bytes), { qos: 1, properties: { responseTopic: ctlTopic } })),
        next: box.next,
        afterOversize: async () => undefined,
        close: () => c.endAsync(true),
      };
    },
  };
}

function stompSubject(rabbit: RabbitStompHandle): Subject {
  const n = ++seq;
  const agentDest = `/queue/contract.${n}.agent`;
  const ctlDest = `/queue/contract.${n}.controller`;
  const mtp = new StompMtp({
    host: rabbit.host,
    port: rabbit.port,
    vhost: '/',
    login: 'guest',
    passcode: 'guest',
    endpointId: 'proto::contract-proxy',
    destination: agentDest,
    heartbeatMs: { outgoing: 0, incoming: 0 },
    maxRecordBytes: MAX,
    backoff: { baseMs: 100, maxMs: 800 },
    connectTimeoutMs: 5000,
  });
  return {
    mtp,
    nowhere: { mtp: 'stomp', address: `/queue/contract.${n}.nobody` },
    async connect() {
      const box = inbox();
      const client = new Client({
        webSocketFactory: () => new TCPWrapper(rabbit.host, rabbit.port),
        connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
        reconnectDelay: 0,
        heartbeatIncoming: 0,
        heartbeatOutgoing: 0,
      });
      await new Promise<void>((resolve, reject) => {
        client.onConnect = () => resolve();
        client.onStompError = (f) => reject(new Error(f.headers.message));
        client.activate();
      });
      await new Promise<void>((resolve) => {
        const receipt = `contract-${n}`;
        client.watchForReceipt(receipt, () => resolve());
        client.subscribe(ctlDest, (m: IMessage) => box.push(new Uint8Array(m.binaryBody)), { receipt });
      });
      return {
        send: async (bytes) =>
          client.publish({ destination: agentDest, binaryBody: bytes, headers: { 'content-type': 'application/vnd.bbf.usp.msg', 'reply-to-dest': ctlDest } }),
        next: box.next,
        afterOversize: async () => undefined,
        close: () => client.deactivate(),
      };
    },
  };
}

/** The contract, for one MTP kind; `make` returns null (with the reason) when its broker is missing. */
function contract(kind: MtpKind, make: () => Subject | string): void {
  describe(`Mtp contract: ${kind}`, () => {
    it('sends nothing before start(), nor to a destination of another MTP', async (t) => {
      const s = make();
      if (typeof s === 'string') return t.skip(s);
      assert.equal(s.mtp.kind, kind);
      assert.equal(s.mtp.status().mtp, kind);
      assert.equal(s.mtp.status().connected, false);
      await assert.rejects(s.mtp.send(AGENT, s.nowhere, new Uint8Array([1])), MtpSendError);
      const other: MtpKind = kind === 'mqtt' ? 'stomp' : 'mqtt';
      await assert.rejects(s.mtp.send(AGENT, { mtp: other, address: s.nowhere.address }, new Uint8Array([1])), MtpSendError);
      await s.mtp.stop();
    });

    it('carries Records both ways byte for byte; oversize inbound Records are dropped; stop() ends the channel', async (t) => {
      const s = make();
      if (typeof s === 'string') return t.skip(s);
      const { mtp } = s;
      mtp.addAgent(AGENT);
      const records: InboundRecord[] = [];
      mtp.on('record', (r) => records.push(r));
      try {
        const opened = kind === 'websocket' ? null : next(mtp, 'channelOpen');
        await mtp.start();
        if (opened) {
          const [open] = await opened;
          assert.deepEqual(open, { mtp: kind, agentEid: null, dest: null, peerEid: null });
        }
        const peer = await s.connect();
        assert.equal(mtp.status().connected, true);
        assert.ok(mtp.status().channels >= 1);

        // Inbound: one 'record' with the exact bytes and a reply path of this MTP.
        let got = next(mtp, 'record');
        await peer.send(EVERY_BYTE);
        const [rec] = await got;
        assert.equal(rec.mtp, kind);
        assert.deepEqual([...rec.bytes], [...EVERY_BYTE]);
        assert.equal(rec.replyTo?.mtp, kind);

        // Outbound on that reply path: the exact bytes reach the controller.
        const reply = Uint8Array.from(EVERY_BYTE).reverse();
        await mtp.send(AGENT, rec.replyTo!, reply);
        assert.deepEqual([...(await peer.next())], [...reply]);

        // Oversize inbound: never a 'record'; the next Record within the limit still arrives.
        const before = records.length;
        await peer.send(new Uint8Array(MAX + 1).fill(7));
        await peer.afterOversize();
        got = next(mtp, 'record');
        await peer.send(Uint8Array.from([42]));
        const [small] = await got;
        assert.deepEqual([...small.bytes], [42]);
        assert.equal(records.length, before + 1, 'the oversize Record was not delivered');

        // A destination nobody is connected to, of this MTP's kind (WebSocket: an unknown connection).
        if (kind === 'websocket') await assert.rejects(mtp.send(AGENT, s.nowhere, Uint8Array.from([1])), MtpSendError);

        const closed = next(mtp, 'channelClose');
        await mtp.stop();
        await closed;
        await peer.close();
        assert.equal(mtp.status().connected, false);
        await assert.rejects(mtp.send(AGENT, rec.replyTo!, Uint8Array.from([1])), MtpSendError);
        await mtp.stop();
        mtp.removeAgent(AGENT);
      } finally {
        await mtp.stop();
      }
    });
  });
}

let mosquitto: MosquittoHandle | null = null;
let rabbit: RabbitStompHandle | null = null;

before(async () => {
  [mosquitto, rabbit] = await Promise.all([startMosquitto(), startRabbitStomp()]);
});
after(async () => {
  await Promise.all([mosquitto?.stop(), rabbit?.stop()]);
});

contract('websocket', webSocketSubject);
contract('mqtt', () => (mosquitto ? mqttSubject(mosquitto) : 'mosquitto not installed (apt-get install mosquitto)'));
contract('stomp', () => (rabbit ? stompSubject(rabbit) : 'rabbitmq-server not installed (apt-get install rabbitmq-server)'));
