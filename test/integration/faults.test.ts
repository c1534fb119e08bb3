/**
 * Fault injection against an in-process Proxy (reliability issue): a broker that restarts, a
 * CPE that drops its TCP connection mid-session, a CPE whose connection request is accepted but
 * never answered, and a controller that disconnects while its request waits on a device.
 * Every wait is on an observable condition with a generous deadline; nothing asserts speed.
 * kill -9 of the proxy process is in kill9.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig } from '../../src/app/config.js';
import { createLogger } from '../../src/app/log.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { RpcError } from '../../src/cwmp/session.js';
import { UspControllerClient, UspTransportError, get, set } from '../../src/tools/controller/client.js';
import { decodeMsg, decodeRecord, type Msg, type UspRecord } from '../../src/usp/codec/record.js';
import { fixture } from '../helpers/paths.js';
import { freePort, startMosquitto } from '../helpers/brokers.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::faults-a';
const CTL_B = 'proto::faults-b';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-faults-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

let seq = 0;
/** A proxy with short CWMP timeouts and a log captured in memory (JSON lines). */
async function startProxy(overrides: Record<string, unknown> = {}): Promise<{ proxy: CwmpUspProxy; logs: () => string }> {
  let logs = '';
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: path.join(dir, `p${++seq}`),
      'acs.host': '127.0.0.1',
      'acs.port': 0,
      'acs.sessionTimeoutMs': 1000,
      'acs.setConnectionRequestCredentials': false,
      'acs.connectionRequest.timeoutMs': 300,
      'acs.connectionRequest.retries': 0,
      'acs.connectionRequest.retryDelayMs': 0,
      'acs.connectionRequest.deadlineMs': 60_000,
      'usp.websocket.host': '127.0.0.1',
      'usp.websocket.port': 0,
      'usp.reconnectBaseMs': 100,
      'usp.reconnectMaxMs': 500,
      controllers: [
        { endpointId: CTL, role: 'full', mqtt: { topic: '/usp/controller' } },
        { endpointId: CTL_B, role: 'full', mqtt: { topic: '/usp/controller-b' } },
      ],
      'log.level': 'debug',
      ...overrides,
    },
  });
  const proxy = new CwmpUspProxy(config, createLogger('debug', { write: (s: string) => void (logs += s) } as never));
  await proxy.start();
  return { proxy, logs: () => logs };
}

const response = (m: Msg) => {
  assert.equal(m.body.msgBody, 'response', `expected a response, got ${JSON.stringify(m.body)}`);
  return m.body.response!;
};

function msgIdOf(rec: UspRecord): string | null {
  if (rec.recordType.kind !== 'noSessionContext') return null;
  return decodeMsg(rec.recordType.payload).header.msgId;
}

/** A TCP forwarder in front of the broker: lets the test decide when the proxy may reach it. */
function gate(upstreamPort: number): Promise<{ port: number; open: boolean; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const g = { port: 0, open: true, close: async (): Promise<void> => undefined };
  const srv = net.createServer((down) => {
    sockets.add(down);
    down.on('close', () => sockets.delete(down));
    down.on('error', () => undefined);
    if (!g.open) return void down.destroy();
    const up = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(up);
    up.on('close', () => {
      sockets.delete(up);
      down.destroy();
    });
    up.on('error', () => down.destroy());
    down.on('close', () => up.destroy());
    down.pipe(up).pipe(down);
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () => {
      g.port = (srv.address() as net.AddressInfo).port;
      g.close = () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          srv.close(() => r());
        });
      resolve(g);
    }),
  );
}

test('broker restart: the proxy reconnects, resends its Connect Record, and a request sent while the broker was down fails clearly', async (t) => {
  const port = await freePort();
  let broker = await startMosquitto({ port });
  if (!broker) return t.skip('mosquitto not installed (apt-get install mosquitto; .ci/run does)');
  // The proxy reaches the broker through a gate so that, after the restart, the observer below
  // is subscribed before the proxy can reconnect (otherwise its Connect Record could race past).
  const g = await gate(port);
  const { proxy, logs } = await startProxy({ 'usp.mqtt.url': `mqtt://127.0.0.1:${g.port}`, 'usp.mqtt.topic': '/usp/agent' });
  const fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
    count: 1,
    model: 'tr181',
    serialPrefix: 'FBR',
    periodicIntervalS: null,
  });
  const mqttMtp = proxy.usp.mtps.find((m) => m.kind === 'mqtt')!;
  const clients: UspControllerClient[] = [];
  let observer: mqtt.MqttClient | null = null;
  const controller = async () => {
    const c = new UspControllerClient({
      agentId: agent,
      endpointId: CTL,
      transport: { mtp: 'mqtt', url: broker!.url, controllerTopic: '/usp/controller', agentTopic: '/usp/agent' },
      timeoutMs: 10_000,
    });
    c.on('error', () => undefined);
    clients.push(c);
    await c.connect();
    return c;
  };
  let agent = '';
  try {
    await fleet.start();
    agent = (await proxy.store.listDevices())[0]!.endpointId;
    await until(() => mqttMtp.status().connected, 20_000, 'the MQTT MTP to connect');

    const c1 = await controller();
    const before = await c1.request(get(['Device.LocalAgent.EndpointID']));
    assert.equal(response(before).getResp!.reqPathResults[0]!.resolvedPathResults[0]!.resultParams.EndpointID, agent);

    // The broker goes away: the proxy notices, the controller's request cannot be answered.
    g.open = false;
    await broker.stop();
    await until(() => !mqttMtp.status().connected, 20_000, 'the MQTT MTP to notice the broker is gone');
    await assert.rejects(c1.request(get(['Device.LocalAgent.EndpointID']), 2000), (e: Error) => {
      assert.ok(e instanceof UspTransportError, `a transport error, got ${e.name}: ${e.message}`);
      return true;
    });
    await c1.close();

    // Same port again; the observer subscribes first, then the proxy may reconnect.
    broker = await startMosquitto({ port });
    assert.ok(broker);
    const records: UspRecord[] = [];
    observer = mqtt.connect(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    observer.on('error', () => undefined);
    observer.on('message', (_topic, payload) => {
      try {
        records.push(decodeRecord(new Uint8Array(payload)));
      } catch {
        /* not a Record */
      }
    });
    await new Promise<void>((resolve, reject) => {
      observer!.once('connect', () => resolve());
      observer!.once('error', reject);
    });
    await observer.subscribeAsync('/usp/controller', { qos: 1 });
    g.open = true;

    await until(() => mqttMtp.status().connected, 20_000, 'the MQTT MTP to reconnect');
    await until(
      () => records.some((r) => r.recordType.kind === 'mqttConnect' && r.fromId === agent && r.toId === CTL),
      20_000,
      `a fresh MQTTConnect Record from ${agent}`,
    );
    const connect = records.find((r) => r.recordType.kind === 'mqttConnect')!;
    assert.equal((connect.recordType as { subscribedTopic?: string }).subscribedTopic, '/usp/agent');

    // The proxy resubscribed: a new controller's Get works.
    const c2 = await controller();
    const again = await c2.request(get(['Device.LocalAgent.EndpointID']));
    assert.equal(response(again).getResp!.reqPathResults[0]!.resolvedPathResults[0]!.resultParams.EndpointID, agent);
    assert.match(logs(), /"level":(30|40)/); // the proxy logged through the outage, and did not crash
  } finally {
    observer?.end(true);
    for (const c of clients) await c.close();
    await fleet.stop();
    await proxy.stop();
    await g.close();
    await broker?.stop();
  }
});

// ---------------------------------------------------------------- hand-written CPE

const INFORM = readFileSync(fixture('soap', 'cpe', 'Inform.1-0.xml'), 'utf8');
const GRM_RESPONSE = readFileSync(fixture('soap', 'cpe', 'GetRPCMethodsResponse.1-0.xml'), 'utf8');

function informFor(serial: string, crUrl: string): string {
  return INFORM.replace('<SerialNumber>000000</SerialNumber>', `<SerialNumber>${serial}</SerialNumber>`).replace('http://10.0.0.7:7547/', crUrl);
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}
function post(agent: http.Agent, port: number, body: string, cookie?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers: { 'Content-Type': 'text/xml', ...(cookie ? { Cookie: cookie } : {}) } },
      (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
const cookieOf = (r: Reply) => r.headers['set-cookie']?.[0]?.split(';')[0];

async function deviceKeyOf(proxy: CwmpUspProxy, serial: string): Promise<string> {
  const d = (await proxy.store.listDevices()).find((x) => x.deviceId.serialNumber === serial);
  assert.ok(d, `device ${serial} registered`);
  return d.deviceKey;
}

/** Settles a promise into a value we can inspect later (no unhandled rejection meanwhile). */
function capture<T>(p: Promise<T>): { done: () => boolean; value?: T; error?: unknown } {
  const box: { done: () => boolean; value?: T; error?: unknown; settled?: boolean } = { done: () => !!box.settled };
  p.then(
    (v) => Object.assign(box, { value: v, settled: true }),
    (e) => Object.assign(box, { error: e, settled: true }),
  );
  return box;
}

test('a CPE that drops the TCP connection mid-session: the RPC fails clearly, the rest stays queued, the next session works', async () => {
  const { proxy } = await startProxy();
  const serial = 'DROP000001';
  const cr = 'http://127.0.0.1:1/'; // connection requests are refused at once
  const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const b = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const r1 = await post(a, proxy.acsPort, informFor(serial, cr));
    assert.equal(r1.status, 200, r1.body);
    assert.match(r1.body, /InformResponse/);
    const key = await deviceKeyOf(proxy, serial);
    const first = capture(proxy.engine.enqueue(key, { method: 'GetRPCMethods' }));
    const second = capture(proxy.engine.enqueue(key, { method: 'GetRPCMethods' }));
    await until(async () => (await proxy.store.listQueuedRpcs(key)).length === 2, 10_000, 'both RPCs stored');

    const r2 = await post(a, proxy.acsPort, '', cookieOf(r1));
    assert.equal(r2.status, 200);
    assert.match(r2.body, /GetRPCMethods/);
    // The CPE goes away with the RPC in flight.
    a.destroy();

    await until(first.done, 20_000, 'the in-flight RPC to fail');
    assert.ok(first.error instanceof RpcError, `an RpcError, got ${String(first.error)}`);
    assert.ok(['session-timeout', 'session-ended'].includes(first.error.reason), first.error.message);
    assert.equal(second.done(), false, 'the second RPC is still waiting');
    assert.equal(proxy.engine.queuedCount(key), 1);
    assert.equal((await proxy.store.listQueuedRpcs(key)).length, 1, 'the second RPC is still stored');

    // The next session of the device delivers it.
    const n1 = await post(b, proxy.acsPort, informFor(serial, cr));
    assert.equal(n1.status, 200, n1.body);
    const n2 = await post(b, proxy.acsPort, '', cookieOf(n1));
    assert.equal(n2.status, 200);
    const id = /<cwmp:ID[^>]*>([^<]*)<\/cwmp:ID>/.exec(n2.body)?.[1] ?? '';
    assert.match(n2.body, /GetRPCMethods/);
    const n3 = await post(b, proxy.acsPort, GRM_RESPONSE.replace('>acs-12<', `>${id}<`), cookieOf(n1));
    assert.equal(n3.status, 204, n3.body);
    await until(second.done, 10_000, 'the second RPC to complete');
    assert.equal(second.error, undefined, String(second.error));
    assert.equal(second.value!.kind, 'response');
    assert.deepEqual(await proxy.store.listQueuedRpcs(key), []);
  } finally {
    a.destroy();
    b.destroy();
    await proxy.stop();
  }
});

test('a CPE whose connection request is accepted but never answered: the RPC fails at its deadline as unreachable (timeout)', async () => {
  const held = new Set<net.Socket>();
  const blackHole = net.createServer((s) => {
    held.add(s);
    s.on('error', () => undefined);
    s.on('close', () => held.delete(s));
  });
  await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', () => r()));
  const bhPort = (blackHole.address() as net.AddressInfo).port;
  const { proxy } = await startProxy();
  const serial = 'MUTE000001';
  const ag = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let accepted = 0;
  blackHole.on('connection', () => accepted++);
  try {
    const r1 = await post(ag, proxy.acsPort, informFor(serial, `http://127.0.0.1:${bhPort}/`));
    assert.equal(r1.status, 200, r1.body);
    const r2 = await post(ag, proxy.acsPort, '', cookieOf(r1));
    assert.equal(r2.status, 204);
    ag.destroy();
    const key = await deviceKeyOf(proxy, serial);
    await until(() => proxy.engine.activeSessions === 0, 10_000, 'the session to end');

    const rpc = capture(proxy.engine.enqueue(key, { method: 'GetRPCMethods' }, { deadlineMs: 3000 }));
    await until(rpc.done, 30_000, 'the RPC to reach its deadline');
    assert.ok(rpc.error instanceof RpcError, `an RpcError, got ${String(rpc.error)}`);
    assert.equal(rpc.error.reason, 'unreachable');
    assert.match(rpc.error.message, /connection request failed: timeout/);
    assert.ok(accepted > 0, 'the proxy did reach the device and was left hanging');
    assert.deepEqual(await proxy.store.listQueuedRpcs(key), [], 'the expired RPC left the store');
  } finally {
    ag.destroy();
    for (const s of held) s.destroy();
    await new Promise<void>((r) => blackHole.close(() => r()));
    await proxy.stop();
  }
});

test('a controller that disconnects while its request waits on a device: the late response is dropped with a log line, never sent to another controller', async () => {
  const { proxy, logs } = await startProxy();
  const fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
    count: 1,
    model: 'tr181',
    serialPrefix: 'FCD',
    periodicIntervalS: null,
  });
  const clients: UspControllerClient[] = [];
  try {
    await fleet.start();
    const dev = fleet.devices[0]!;
    // The device's connection request URL points nowhere: the proxy must wait for its next Inform.
    dev.setConnectionRequestUrl('http://127.0.0.1:1/');
    await dev.inform();
    const { deviceKey: key, endpointId: agent } = (await proxy.store.listDevices())[0]!;
    const wsPort = proxy.usp.ws!.serverAddress()!.port;
    const connect = async (eid: string) => {
      const c = new UspControllerClient({ agentId: agent, endpointId: eid, transport: { mtp: 'ws', url: `ws://127.0.0.1:${wsPort}/usp` }, timeoutMs: 30_000 });
      c.on('error', () => undefined);
      clients.push(c);
      await c.connect();
      return c;
    };
    const a = await connect(CTL);
    const b = await connect(CTL_B);
    // Every Record the WebSocket MTP sends, by connection id and msg_id.
    const ws = proxy.usp.ws!;
    const sent: { to: string; msgId: string | null }[] = [];
    const origSend = ws.send.bind(ws);
    ws.send = (from, dest, bytes) => {
      sent.push({ to: dest.address, msgId: msgIdOf(decodeRecord(bytes)) });
      return origSend(from, dest, bytes);
    };
    await until(() => /\(2 controller connections/.test(proxy.usp.ws!.status().detail), 10_000, 'both controllers connected');

    // What changes the device runs to its end even when the controller that asked is gone (a
    // read-only request's RPCs are dropped instead: the interworking tests show that). A first
    // learns the device's DeviceInfo names with a Get, then asks for a Set: the SPV is queued.
    const a2 = a;
    const learn = get(['Device.DeviceInfo.ProvisioningCode']);
    learn.header.msgId = a2.nextMsgId();
    const learning = capture(a2.request(learn));
    await until(
      async () => {
        if (!learning.done()) await dev.inform();
        return learning.done();
      },
      30_000,
      'the Get to be answered',
    );
    const msg = set([{ objPath: 'Device.DeviceInfo.', params: { ProvisioningCode: 'late-set' } }]);
    msg.header.msgId = a2.nextMsgId();
    const aId = msg.header.msgId;
    const pending = capture(a2.request(msg));
    await until(() => proxy.engine.queuedCount(key) > 0, 10_000, 'the Set to wait on the device');

    await a2.close();
    await until(() => /\(1 controller connections/.test(proxy.usp.ws!.status().detail), 10_000, 'the proxy to see A leave');
    await until(pending.done, 10_000, 'A to give up locally');

    // The device comes back: the RPC runs, the response has nowhere to go.
    // (The Get may take several sessions, e.g. GetParameterNames then GetParameterValues: the
    // device informs until the proxy has its answer and tries to deliver it.)
    await until(
      async () => {
        if (!sent.some((x) => x.msgId === aId)) await dev.inform();
        return sent.some((x) => x.msgId === aId);
      },
      30_000,
      "the proxy to try to deliver A's response",
    );
    assert.ok((dev.stats.rpcsReceived.SetParameterValues ?? 0) > 0, 'the device was asked');
    assert.equal(dev.model.get('Device.DeviceInfo.ProvisioningCode'), 'late-set');
    await until(() => /USP Record could not be sent/.test(logs()), 10_000, 'the proxy to log the undeliverable response');

    // B is unaffected and got nothing with A's msg_id.
    const bMsg = get(['Device.LocalAgent.EndpointID']);
    bMsg.header.msgId = b.nextMsgId();
    const own = await b.request(bMsg);
    assert.equal(response(own).getResp!.reqPathResults[0]!.resolvedPathResults[0]!.resultParams.EndpointID, agent);
    const bConn = sent.find((x) => x.msgId === bMsg.header.msgId)!.to;
    const toA = sent.filter((x) => x.msgId === aId);
    assert.equal(toA.length, 1, `one attempt to answer A: ${JSON.stringify(sent)}`);
    assert.notEqual(toA[0]!.to, bConn, "A's response must not go to B's connection");
    assert.ok(pending.error instanceof UspTransportError, 'A itself saw its request fail (closed)');
  } finally {
    for (const c of clients) await c.close();
    await fleet.stop();
    await proxy.stop();
  }
});
