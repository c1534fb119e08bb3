/**
 * Controllers' identity on every MTP, end to end over real sockets: one proxy, a simulated TR-181
 * CPE, an authenticated mosquitto (password_file + acl_file binding each controller's topics to its
 * broker user) and RabbitMQ (STOMP, users and permissions set with rabbitmqctl).
 *  - WebSocket: an impostor with a configured eid but no secret is refused; the real controller keeps
 *    its session and its Notify messages.
 *  - MQTT: a Record with a forged Response Topic gets nothing back on it (the answer goes to the
 *    controller's configured topic); the broker refuses a controller publishing on another's topic
 *    or reading another's answers; a Record claiming a controller off its bound topic is dropped.
 *  - STOMP: a forged reply-to-dest gets nothing; RabbitMQ permissions keep one controller out of
 *    another's queue.
 *  - An untrusted controller gets Error 7006 within a second, and nothing reaches the device.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt, { type MqttClient } from 'mqtt';
import { Client as StompClient, type IFrame } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { runUspCli } from '../../src/tools/controller/cli.js';
import { UspControllerClient, add, get, UspTransportError, type UspControllerTransport } from '../../src/tools/controller/client.js';
import { decodeMsg, decodeRecord, encodeRecord, noSessionRecord, type Msg } from '../../src/usp/codec/record.js';
import { startMosquitto, startRabbitStomp, type MosquittoHandle, type RabbitStompHandle } from '../helpers/brokers.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { TestController } from '../helpers/test-controller.js';
import { STRICT_SIM } from '../helpers/sim.js';
import { withTimeout } from '../helpers/ws-peer.js';

const WS_CTL = 'proto::trust-ws-ctl';
const WS_SECRET = 'ws-ctl-secret-0123456789abcdef';
const CTL_A = 'proto::trust-ctl-a';
const CTL_B = 'proto::trust-ctl-b';
const CTL_C = 'proto::trust-ctl-c';
const CTL_D = 'proto::trust-ctl-d';
const CTL_E = 'proto::trust-ctl-e';
const STRANGER = 'proto::trust-stranger';
const MQTT_USERS = { proxy: 'pw-proxy', 'ctl-a': 'pw-a', 'ctl-b': 'pw-b', 'ctl-c': 'pw-c' };

/**
 * The broker ACL of docs/controller-trust.md: each controller publishes on /usp/agent/<user> (bound
 * to its Endpoint ID by controllers[].mqtt.agentTopic) and reads only /usp/ctl/<user>; the proxy
 * reads the agent topics and writes the controllers' topics. ctl-b and ctl-c may also publish on the
 * shared agent topic (ctl-c is not bound; ctl-b plays the attacker there).
 */
const ACL = [
  'pattern write /usp/agent/%u',
  'pattern read /usp/ctl/%u',
  '',
  'user proxy',
  'topic read /usp/agent',
  'topic read /usp/agent/#',
  'topic write /usp/ctl/#',
  '',
  'user ctl-b',
  'topic write /usp/agent',
  '',
  'user ctl-c',
  'topic write /usp/agent',
  '',
].join('\n');

let mosq: MosquittoHandle | null = null;
let rabbit: RabbitStompHandle | null = null;
let tp: TestProxy;
let fleet: Fleet;
let agent = '';
const closers: (() => Promise<unknown>)[] = [];

before(async () => {
  [mosq, rabbit] = await Promise.all([startMosquitto({ auth: { users: MQTT_USERS, acl: ACL } }), startRabbitStomp()]);
  if (rabbit) {
    // docs/controller-trust.md: the operator declares the queues; the proxy and the controllers use
    // /amq/queue/ destinations, which declare nothing (controllers need no configure permission).
    const admin = await stompAs('guest', 'guest');
    for (const q of ['usp.trust-agent', 'usp.trust-ctl-e', 'usp.trust-ctl-f']) {
      await new Promise<void>((resolve) => {
        admin.c.watchForReceipt(`declare-${q}`, () => resolve());
        admin.c.subscribe(`/queue/${q}`, () => undefined, { receipt: `declare-${q}` }).unsubscribe();
      });
    }
  }
  tp = await startTestProxy({
    'usp.mqtt.url': mosq ? mosq.url : '',
    'usp.mqtt.username': 'proxy',
    'usp.mqtt.password': MQTT_USERS.proxy,
    'usp.mqtt.topic': '/usp/agent',
    'usp.stomp.host': rabbit ? rabbit.host : '',
    'usp.stomp.port': rabbit ? rabbit.port : 61613,
    'usp.stomp.destination': '/amq/queue/usp.trust-agent',
    'usp.reconnectBaseMs': 200,
    'usp.reconnectMaxMs': 2000,
    controllers: [
      { endpointId: WS_CTL, websocket: { secret: WS_SECRET } },
      { endpointId: CTL_A, mqtt: { topic: '/usp/ctl/ctl-a', agentTopic: '/usp/agent/ctl-a' } },
      { endpointId: CTL_B, mqtt: { topic: '/usp/ctl/ctl-b', agentTopic: '/usp/agent/ctl-b' } },
      { endpointId: CTL_C, mqtt: { topic: '/usp/ctl/ctl-c' } },
      { endpointId: CTL_D, stomp: { destination: '/queue/usp.trust-ctl-d' } },
      { endpointId: CTL_E, stomp: { destination: '/amq/queue/usp.trust-ctl-e' } },
    ],
  });
  fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp.acsUrl, count: 1, model: 'tr181', serialPrefix: 'TRUST', periodicIntervalS: null });
  await fleet.start();
  agent = (await tp.proxy.store.listDevices())[0]!.endpointId;
  if (mosq) await waitFor(() => tp.proxy.usp.mtps.find((m) => m.kind === 'mqtt')!.status().connected, 'the proxy connected to mosquitto');
  if (rabbit) await waitFor(() => tp.proxy.usp.mtps.find((m) => m.kind === 'stomp')!.status().connected, 'the proxy connected to RabbitMQ');
});

after(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await fleet?.stop();
  await tp?.stop();
  await Promise.all([mosq?.stop(), rabbit?.stop()]);
});

async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function controller(endpointId: string, transport: UspControllerTransport, timeoutMs = 10_000): Promise<TestController> {
  const c = new UspControllerClient({ agentId: agent, endpointId, transport, timeoutMs, connectTimeoutMs: 10_000 });
  c.on('error', () => undefined);
  await c.connect();
  closers.push(() => c.close());
  return new TestController(c);
}

const wsTransport = (secret?: string): UspControllerTransport => ({
  mtp: 'ws',
  url: tp.uspUrl,
  ...(secret !== undefined ? { secret } : {}),
});

const getMsg = (msgId: string, path = 'Device.LocalAgent.EndpointID'): Msg => ({ ...get([path]), header: { msgId, msgType: 'GET' } });

/** An MQTT 5 connection as a broker user, recording what arrives on its subscriptions. */
async function mqttAs(user: keyof typeof MQTT_USERS): Promise<{ c: MqttClient; got: { topic: string; msgId: string; toId: string }[] }> {
  const c = await mqtt.connectAsync(mosq!.url, { protocolVersion: 5, username: user, password: MQTT_USERS[user], reconnectPeriod: 0, clean: true });
  closers.push(() => c.endAsync(true));
  const got: { topic: string; msgId: string; toId: string }[] = [];
  c.on('message', (topic, payload) => {
    try {
      const rec = decodeRecord(new Uint8Array(payload));
      const msgId = rec.recordType.kind === 'noSessionContext' ? decodeMsg(rec.recordType.payload).header.msgId : rec.recordType.kind;
      got.push({ topic, msgId, toId: rec.toId });
    } catch {
      got.push({ topic, msgId: '(undecodable)', toId: '' });
    }
  });
  return { c, got };
}

const recordBytes = (from: string, msg: Msg): Buffer => Buffer.from(encodeRecord(noSessionRecord(from, agent, msg)));

describe('WebSocket', () => {
  test('an impostor with a configured eid but no secret is refused; the real controller keeps its session and its Notify messages', async () => {
    const real = await controller(WS_CTL, wsTransport(WS_SECRET));
    const dev = fleet.devices[0]!;
    const sub = await real.req(
      add([
        {
          objPath: 'Device.LocalAgent.Subscription.',
          params: { Enable: 'true', ID: 'trust-vc', NotifType: 'ValueChange', ReferenceList: 'Device.DeviceInfo.ProvisioningCode' },
        },
      ]),
    );
    assert.ok(sub.body.response?.addResp?.createdObjResults[0]?.operStatus?.operSuccess, JSON.stringify(sub.body));

    // The impostor states the controller's Endpoint ID, with no secret or a wrong one.
    for (const secret of [undefined, 'not-the-secret']) {
      const impostor = new UspControllerClient({ agentId: agent, endpointId: WS_CTL, transport: wsTransport(secret), connectTimeoutMs: 5_000 });
      impostor.on('error', () => undefined);
      await assert.rejects(impostor.connect(), (e: Error) => e instanceof UspTransportError && /HTTP 401/.test(e.message));
    }

    // The real session is still the controller's: requests are answered and Notify messages reach it.
    const g = await real.req(get(['Device.LocalAgent.EndpointID']));
    assert.equal(g.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams.EndpointID, agent);
    for (let i = 0; i < 100 && dev.model.attr('Device.DeviceInfo.ProvisioningCode').notification !== 2; i++) await new Promise((r) => setTimeout(r, 100));
    const n = real.notify((m) => m.body.request?.notify?.subscriptionId === 'trust-vc', 15_000, 'ValueChange');
    dev.setValue('Device.DeviceInfo.ProvisioningCode', 'trust-changed');
    assert.equal((await n).body.request!.notify!.valueChange!.paramValue, 'trust-changed');
  });

  test('the controller CLI presents its secret from --secret-file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-trust-cli-'));
    try {
      const file = path.join(dir, 'secret');
      writeFileSync(file, `${WS_SECRET}\n`, { mode: 0o600 });
      const run = async (extra: string[]): Promise<{ code: number; out: string }> => {
        let out = '';
        const args = ['get', 'Device.LocalAgent.EndpointID', '--mtp', 'ws', '--url', tp.uspUrl, '--to', agent, '--from', WS_CTL, '--timeout', '5000', ...extra];
        const code = await runUspCli(args, { out: (s) => (out += s), err: (s) => (out += s) });
        return { code, out };
      };
      const ok = await run(['--secret-file', file]);
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.out, new RegExp(agent));
      const refused = await run([]);
      assert.equal(refused.code, 3);
      assert.match(refused.out, /HTTP 401/);
      assert.ok(!ok.out.includes(WS_SECRET) && !refused.out.includes(WS_SECRET));
      let usage = '';
      const code = await runUspCli(
        ['get', 'X', '--mtp', 'mqtt', '--url', 'mqtt://127.0.0.1:1', '--controller-topic', 'a', '--agent-topic', 'b', '--to', agent, '--secret-file', file],
        {
          out: (s) => (usage += s),
          err: (s) => (usage += s),
        },
      );
      assert.equal(code, 2);
      assert.match(usage, /--secret-file applies to --mtp ws only/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an untrusted controller gets Error 7006 within a second, naming why; nothing reaches the device', async () => {
    const rpcs: string[] = [];
    const onRpc = ({ method }: { method: string }): void => void rpcs.push(method);
    tp.proxy.engine.on('rpcQueued', onRpc);
    try {
      const stranger = await controller(STRANGER, wsTransport(), 1_000);
      const r = await stranger.req(get(['Device.DeviceInfo.', 'Device.WiFi.SSID.*.SSID']), 1_000);
      assert.equal(r.body.error?.errCode, 7006, JSON.stringify(r.body));
      assert.match(r.body.error?.errMsg ?? '', new RegExp(`${STRANGER} is not configured`));
    } finally {
      tp.proxy.engine.off('rpcQueued', onRpc);
    }
    assert.deepEqual(rpcs, [], 'no CWMP RPC was queued for the untrusted request');
  });
});

describe('MQTT (mosquitto with password_file and acl_file)', () => {
  test("a Record with a forged Response Topic gets nothing back on it: the answer goes to the controller's configured topic", async (t) => {
    if (!mosq) return t.skip('mosquitto not installed (apt-get install mosquitto)');
    const c = await controller(CTL_C, {
      mtp: 'mqtt',
      url: mosq.url,
      username: 'ctl-c',
      password: MQTT_USERS['ctl-c'],
      controllerTopic: '/usp/ctl/ctl-c',
      agentTopic: '/usp/agent',
    });
    const spy = await mqttAs('ctl-b');
    await spy.c.subscribeAsync('/usp/ctl/ctl-b', { qos: 1 });
    const answered = new Promise<Msg>((resolve) => c.c.on('msg', (m) => m.header.msgId === 'forged-1' && resolve(m)));
    // ctl-b speaks as ctl-c on the shared topic and asks for the answer on its own topic.
    await spy.c.publishAsync('/usp/agent', recordBytes(CTL_C, getMsg('forged-1')), {
      qos: 1,
      properties: { responseTopic: '/usp/ctl/ctl-b', contentType: 'usp.msg' },
    });
    const m = await withTimeout(answered, 10_000, 'the answer at ctl-c');
    assert.equal(m.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams.EndpointID, agent);
    // ctl-b's own request next: its answer on /usp/ctl/ctl-b comes after anything the proxy sent there before.
    const b = await controller(CTL_B, {
      mtp: 'mqtt',
      url: mosq.url,
      username: 'ctl-b',
      password: MQTT_USERS['ctl-b'],
      controllerTopic: '/usp/ctl/ctl-b',
      agentTopic: '/usp/agent/ctl-b',
    });
    const own = await b.req(getMsg('b-own-1'));
    assert.equal(own.body.msgBody, 'response');
    await waitFor(() => spy.got.some((g) => g.msgId === 'b-own-1'), 'the spy saw the answer to ctl-b');
    assert.deepEqual(
      spy.got.filter((g) => !g.msgId.endsWith('Connect')).map((g) => g.msgId),
      ['b-own-1'],
      'nothing of the forged request arrived on the forged topic',
    );
  });

  test("the broker ACL binds topics to users: no publishing on another controller's topic, no reading its answers", async (t) => {
    if (!mosq) return t.skip('mosquitto not installed (apt-get install mosquitto)');
    const attacker = await mqttAs('ctl-b');
    const before = tp.proxy.usp.endpoint.stats.recordsIn;
    // MQTT 5: the PUBACK says "not authorized" (0x87); the Record never reaches the proxy.
    await assert.rejects(
      attacker.c.publishAsync('/usp/agent/ctl-a', recordBytes(CTL_A, getMsg('acl-1')), { qos: 1, properties: { contentType: 'usp.msg' } }),
      (e: Error & { code?: number }) => e.code === 0x87 || /not authori[sz]ed/i.test(e.message),
    );
    // mosquitto grants the subscription but checks the read ACL on every message it would deliver.
    await attacker.c.subscribeAsync(['/usp/ctl/ctl-a', '/usp/ctl/ctl-b'], { qos: 1 });
    // The real ctl-a on its own topic is answered, and that is the only Record the proxy received.
    const a = await controller(CTL_A, {
      mtp: 'mqtt',
      url: mosq.url,
      username: 'ctl-a',
      password: MQTT_USERS['ctl-a'],
      controllerTopic: '/usp/ctl/ctl-a',
      agentTopic: '/usp/agent/ctl-a',
    });
    const r = await a.req(getMsg('acl-2'));
    assert.equal(r.body.msgBody, 'response');
    assert.equal(tp.proxy.usp.endpoint.stats.recordsIn, before + 1);
    // An answer for ctl-b afterwards: the proxy's messages reach ctl-b's session in order, so ctl-a's answer would come first.
    const b = await controller(CTL_B, {
      mtp: 'mqtt',
      url: mosq.url,
      username: 'ctl-b',
      password: MQTT_USERS['ctl-b'],
      controllerTopic: '/usp/ctl/ctl-b',
      agentTopic: '/usp/agent/ctl-b',
    });
    await b.req(getMsg('acl-3'));
    await waitFor(() => attacker.got.some((g) => g.msgId === 'acl-3'), 'the attacker session saw the answer to ctl-b');
    assert.deepEqual(
      attacker.got.filter((g) => !g.msgId.endsWith('Connect')).map((g) => `${g.topic} ${g.msgId}`),
      ['/usp/ctl/ctl-b acl-3'],
      'nothing from /usp/ctl/ctl-a reached ctl-b',
    );
  });

  test('a Record claiming a bound controller off its topic is dropped, whatever its Response Topic', async (t) => {
    if (!mosq) return t.skip('mosquitto not installed (apt-get install mosquitto)');
    const attacker = await mqttAs('ctl-b');
    await attacker.c.subscribeAsync('/usp/ctl/ctl-b', { qos: 1 });
    const dropped = new Promise<string>((resolve) => tp.proxy.usp.endpoint.once('dropped', ({ reason }) => resolve(reason)));
    await attacker.c.publishAsync('/usp/agent', recordBytes(CTL_A, getMsg('claim-1')), {
      qos: 1,
      properties: { responseTopic: '/usp/ctl/ctl-b', contentType: 'usp.msg' },
    });
    assert.match(await withTimeout(dropped, 10_000, 'the proxy dropped the Record'), /did not authenticate|bound/);
  });

  test('an untrusted controller (a broker user with an Endpoint ID nobody configured) gets 7006 on its Response Topic within a second', async (t) => {
    if (!mosq) return t.skip('mosquitto not installed (apt-get install mosquitto)');
    const s = await controller(
      STRANGER,
      { mtp: 'mqtt', url: mosq.url, username: 'ctl-b', password: MQTT_USERS['ctl-b'], controllerTopic: '/usp/ctl/ctl-b', agentTopic: '/usp/agent' },
      1_000,
    );
    const r = await s.req(getMsg('stranger-1'), 1_000);
    assert.equal(r.body.error?.errCode, 7006);
    assert.match(r.body.error?.errMsg ?? '', /not configured/);
  });
});

/** A STOMP session as a RabbitMQ user; resolves once CONNECTED. */
async function stompAs(login: string, passcode: string): Promise<{ c: StompClient; errors: IFrame[]; nextError(): Promise<IFrame> }> {
  const errors: IFrame[] = [];
  let waiter: ((f: IFrame) => void) | null = null;
  const c = new StompClient({
    webSocketFactory: () => new TCPWrapper(rabbit!.host, rabbit!.port),
    connectHeaders: { login, passcode, host: '/' },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  c.onStompError = (f) => {
    errors.push(f);
    waiter?.(f);
  };
  await new Promise<void>((resolve, reject) => {
    c.onConnect = () => resolve();
    c.onWebSocketClose = () => reject(new Error(`STOMP connection as ${login} closed`));
    c.activate();
  });
  closers.push(() => c.deactivate({ force: true }));
  return { c, errors, nextError: () => (errors[0] ? Promise.resolve(errors[0]) : new Promise((r) => (waiter = r))) };
}

describe('STOMP (RabbitMQ)', () => {
  test("a forged reply-to-dest gets nothing: the answer goes to the controller's configured destination", async (t) => {
    if (!rabbit) return t.skip('rabbitmq-server not installed (apt-get install rabbitmq-server)');
    const stomp = (endpointId: string, controllerDest: string, agentDest = '/queue/usp.trust-agent') =>
      controller(endpointId, { mtp: 'stomp', host: rabbit!.host, port: rabbit!.port, login: 'guest', passcode: 'guest', controllerDest, agentDest });
    const d = await stomp(CTL_D, '/queue/usp.trust-ctl-d');
    // The spoofer claims CTL_D and names its own queue as reply-to-dest.
    const spoofer = await stomp(CTL_D, '/queue/usp.trust-attacker');
    const seen: string[] = [];
    spoofer.c.on('msg', (m) => seen.push(m.header.msgId));
    const answered = new Promise<Msg>((resolve) => d.c.on('msg', (m) => m.header.msgId.startsWith('cli-') && resolve(m)));
    void spoofer.req(get(['Device.LocalAgent.EndpointID']), 30_000).catch(() => undefined);
    const m = await withTimeout(answered, 10_000, 'the answer at the configured destination');
    assert.equal(m.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams.EndpointID, agent);
    // A marker sent to the attacker's queue after the answer: the queue is in order, so anything before it would be seen first.
    const marker = await stomp('proto::trust-marker', '/queue/usp.trust-marker', '/queue/usp.trust-attacker');
    void marker.c.request(getMsg('marker-1'), 30_000, CTL_D).catch(() => undefined);
    await waitFor(() => seen.includes('marker-1'), 'the marker reached the attacker queue');
    assert.deepEqual(seen, ['marker-1']);
  });

  test('RabbitMQ permissions (rabbitmqctl): a controller reads only its own queue, and works with no more rights', { timeout: 120_000 }, async (t) => {
    if (!rabbit) return t.skip('rabbitmq-server not installed (apt-get install rabbitmq-server)');
    // The queues exist beforehand (declared in before(), as an operator would): controllers need no configure permission.
    const run = async (args: string[]): Promise<void> => {
      const r = await rabbit!.ctl(args);
      assert.equal(r.code, 0, `rabbitmqctl ${args.join(' ')}: ${r.out}`);
    };
    for (const u of ['ctl-e', 'ctl-f']) {
      await run(['add_user', u, `pw-${u}`]);
      // docs/controller-trust.md: configure nothing, write only through the default exchange, read only its own queue.
      await run(['set_permissions', '-p', '/', u, '^$', '^amq\\.default$', `^usp\\.trust-${u}$`]);
    }
    const e = await stompAs('ctl-e', 'pw-ctl-e');
    const got: string[] = [];
    const mine = e.c.subscribe('/amq/queue/usp.trust-ctl-e', (m) => void got.push(m.body));
    e.c.publish({ destination: '/amq/queue/usp.trust-ctl-e', body: 'to-myself' });
    await waitFor(() => got.includes('to-myself'), `ctl-e reads its own queue (errors: ${e.errors.map((x) => `${x.headers.message} ${x.body}`).join('; ')})`);
    const f = await stompAs('ctl-f', 'pw-ctl-f');
    f.c.subscribe('/amq/queue/usp.trust-ctl-e', () => assert.fail("ctl-f must not read ctl-e's queue"));
    const refused = await withTimeout(f.nextError(), 10_000, 'an ERROR frame for ctl-f');
    assert.match(`${refused.headers.message} ${refused.body}`, /access_refused|ACCESS_REFUSED|access refused/i);
    // A second consumer of the queue would take every other answer: gone before the controller starts.
    await new Promise<void>((resolve) => {
      e.c.watchForReceipt('unsub-e', () => resolve());
      mine.unsubscribe({ receipt: 'unsub-e' });
    });
    // With exactly those rights a controller talks to its agents: /amq/queue/ destinations declare nothing.
    const ctl = await controller(CTL_E, {
      mtp: 'stomp',
      host: rabbit.host,
      port: rabbit.port,
      login: 'ctl-e',
      passcode: 'pw-ctl-e',
      controllerDest: '/amq/queue/usp.trust-ctl-e',
      agentDest: '/amq/queue/usp.trust-agent',
    });
    const r = await ctl.req(getMsg('ctl-e-1'));
    assert.equal(r.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams.EndpointID, agent);
  });
});
