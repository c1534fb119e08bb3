/**
 * The USP Controller client and CLI (src/tools/controller) against small fake agents written here:
 * WebSocket (a `ws` server), MQTT 5 / 3.1.1 (real mosquitto), STOMP (real RabbitMQ).
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { Client as StompClient } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeMsg, decodeRecord, encodeRecord, errorMsg, noSessionRecord, type Msg, type UspRecord } from '../../src/usp/codec/record.js';
import { decodeReplyToTopic, encodeReplyToTopic } from '../../src/usp/mtp/mqtt.js';
import { UspControllerClient, get, set, operate, getSupportedDM, type UspControllerTransport } from '../../src/tools/controller/client.js';
import { runUspCli, type UspCliIo } from '../../src/tools/controller/cli.js';
import { startMosquitto, startRabbitStomp, type MosquittoHandle, type RabbitStompHandle } from '../helpers/brokers.js';

const AGENT = 'os::012345-TEST%2D1';
const CTL = 'proto::cwmp-usp-proxy-cli';

/** The fake agent's logic: a Record in, a Record out (or null: no answer). */
function agentAnswer(bytes: Uint8Array, seen: Msg[]): Uint8Array | null {
  const rec = decodeRecord(bytes);
  if (rec.recordType.kind !== 'noSessionContext' || rec.toId !== AGENT) return null;
  const msg = decodeMsg(rec.recordType.payload);
  seen.push(msg);
  const id = msg.header.msgId;
  let resp: Msg;
  switch (msg.header.msgType) {
    case 'GET': {
      const paths = msg.body.request!.get!.paramPaths;
      if (paths.includes('Device.Silent.')) return null;
      if (paths.includes('Device.Bad.')) {
        resp = errorMsg(id, 7026, 'Invalid path');
        break;
      }
      resp = {
        header: { msgId: id, msgType: 'GET_RESP' },
        body: {
          msgBody: 'response',
          response: {
            respType: 'getResp',
            getResp: {
              reqPathResults: paths.map((p) => ({
                requestedPath: p,
                resolvedPathResults: [{ resolvedPath: p, resultParams: { Uptime: '42' } }],
              })),
            },
          },
        },
      };
      break;
    }
    case 'SET': {
      // Every parameter named Bad fails (allow_partial: operSuccess with param_errs); the others are set.
      const objs = msg.body.request!.set!.updateObjs;
      resp = {
        header: { msgId: id, msgType: 'SET_RESP' },
        body: {
          msgBody: 'response',
          response: {
            respType: 'setResp',
            setResp: {
              updatedObjResults: objs.map((o) => ({
                requestedPath: o.objPath,
                operStatus: {
                  operStatus: 'operSuccess',
                  operSuccess: {
                    updatedInstResults: [
                      {
                        affectedPath: o.objPath,
                        updatedParams: Object.fromEntries(o.paramSettings.filter((p) => p.param !== 'Bad').map((p) => [p.param!, p.value!])),
                        paramErrs: o.paramSettings.filter((p) => p.param === 'Bad').map((p) => ({ param: p.param!, errCode: 7012, errMsg: 'Invalid value' })),
                      },
                    ],
                  },
                },
              })),
            },
          },
        },
      };
      break;
    }
    case 'NOTIFY_RESP':
      return null;
    default:
      resp = errorMsg(id, 7001);
  }
  return encodeRecord(noSessionRecord(AGENT, rec.fromId, resp));
}

function notifyRecord(msgId: string, toId = CTL): Uint8Array {
  const msg: Msg = {
    header: { msgId, msgType: 'NOTIFY' },
    body: {
      msgBody: 'request',
      request: {
        reqType: 'notify',
        notify: { subscriptionId: 'sub-1', sendResp: true, notification: 'valueChange', valueChange: { paramPath: 'Device.X', paramValue: '1' } },
      },
    },
  };
  return encodeRecord(noSessionRecord(AGENT, toId, msg));
}

// ------------------------------------------------------------------------------------------------
// WebSocket fake agent

interface WsAgent {
  url: string;
  seen: Msg[];
  notifyResps: Msg[];
  sockets: Set<WebSocket>;
  requests: { path: string; eid: string | null; protocol: string }[];
  close(): Promise<void>;
}

async function startWsAgent(): Promise<WsAgent> {
  const seen: Msg[] = [];
  const notifyResps: Msg[] = [];
  const sockets = new Set<WebSocket>();
  const requests: WsAgent['requests'] = [];
  const server: Server = createServer();
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => (protocols.has('v1.usp') ? 'v1.usp' : false),
    verifyClient: (info, cb) => {
      const offered = String(info.req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((s) => s.trim());
      if (!offered.includes('v1.usp')) return cb(false, 400, 'v1.usp required');
      cb(true);
    },
  });
  wss.on('connection', (ws, req) => {
    const u = new URL(req.url ?? '/', 'http://x');
    requests.push({ path: decodeURIComponent(u.pathname), eid: u.searchParams.get('eid'), protocol: ws.protocol });
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('message', (data, isBinary) => {
      assert.ok(isBinary, 'Records come in binary frames');
      const bytes = new Uint8Array(data as Buffer);
      const rec = decodeRecord(bytes);
      if (rec.recordType.kind === 'noSessionContext') {
        const m = decodeMsg(rec.recordType.payload);
        if (m.header.msgType === 'NOTIFY_RESP') notifyResps.push(m);
      }
      const out = agentAnswer(bytes, seen);
      if (out) ws.send(out, { binary: true });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/usp`,
    seen,
    notifyResps,
    sockets,
    requests,
    close: async () => {
      for (const s of sockets) s.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

let wsAgent: WsAgent;
const clients: UspControllerClient[] = [];
before(async () => {
  wsAgent = await startWsAgent();
});
after(async () => {
  for (const c of clients) await c.close();
  await wsAgent.close();
});

function client(transport: UspControllerTransport, timeoutMs = 5000): UspControllerClient {
  const c = new UspControllerClient({ agentId: AGENT, transport, timeoutMs });
  clients.push(c);
  return c;
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('waitFor timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('ws: Get round trip; URL carries the agent EID path, ?eid= and v1.usp', async () => {
  const c = client({ mtp: 'ws', url: `${wsAgent.url}/` });
  await c.connect();
  const resp = await c.request(get(['Device.DeviceInfo.'], 2));
  assert.equal(resp.header.msgType, 'GET_RESP');
  const req = wsAgent.seen.at(-1)!;
  assert.equal(resp.header.msgId, req.header.msgId);
  assert.deepEqual(req.body.request!.get, { paramPaths: ['Device.DeviceInfo.'], maxDepth: 2 });
  assert.deepEqual(resp.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults[0]!.resultParams, { Uptime: '42' });
  const r = wsAgent.requests.at(-1)!;
  assert.deepEqual(r, { path: `/usp/${AGENT}`, eid: CTL, protocol: 'v1.usp' });
  // msg_ids are unique per client
  const [a, b] = await Promise.all([c.request(get(['Device.A.'])), c.request(get(['Device.B.']))]);
  assert.notEqual(a.header.msgId, b.header.msgId);
  assert.equal(a.body.response!.getResp!.reqPathResults[0]!.requestedPath, 'Device.A.');
  assert.equal(b.body.response!.getResp!.reqPathResults[0]!.requestedPath, 'Device.B.');
  await c.close();
});

test('ws: Error Msg resolves; timeout rejects with a clear message', async () => {
  const c = client({ mtp: 'ws', url: wsAgent.url });
  await c.connect();
  const e = await c.request(get(['Device.Bad.']));
  assert.equal(e.header.msgType, 'ERROR');
  assert.equal(e.body.error!.errCode, 7026);
  await assert.rejects(c.request(get(['Device.Silent.']), 200), (err: Error) => {
    assert.equal(err.name, 'UspTransportError');
    assert.match(err.message, /no response to GET \(msg_id .+\) from os::012345-TEST%2D1 within 200 ms/);
    return true;
  });
  await c.close();
});

test('ws: Notify with send_resp gets a NotifyResp; Records for other EIDs are ignored; Connect Records are events', async () => {
  const c = client({ mtp: 'ws', url: wsAgent.url });
  const notes: Msg[] = [];
  const records: UspRecord[] = [];
  c.on('notify', (m) => notes.push(m));
  c.on('record', (r) => records.push(r));
  await c.connect();
  await waitFor(() => wsAgent.sockets.size > 0);
  const sock = [...wsAgent.sockets].at(-1)!;
  sock.send(notifyRecord('n-other', 'proto::someone-else'), { binary: true });
  sock.send(encodeRecord({ version: '1.4', toId: CTL, fromId: AGENT, recordType: { kind: 'websocketConnect' } }), { binary: true });
  sock.send(notifyRecord('n-1'), { binary: true });
  await waitFor(() => wsAgent.notifyResps.some((m) => m.header.msgId === 'n-1'));
  assert.equal(notes.length, 1);
  assert.equal(notes[0]!.body.request!.notify!.valueChange!.paramPath, 'Device.X');
  assert.equal(records.length, 1);
  assert.equal(records[0]!.recordType.kind, 'websocketConnect');
  const nr = wsAgent.notifyResps.find((m) => m.header.msgId === 'n-1')!;
  assert.equal(nr.body.response!.notifyResp!.subscriptionId, 'sub-1');
  assert.ok(!wsAgent.notifyResps.some((m) => m.header.msgId === 'n-other'));
  await c.close();
});

test('ws: connect to a closed port rejects with UspTransportError', async () => {
  const c = client({ mtp: 'ws', url: 'ws://127.0.0.1:1/usp' });
  await assert.rejects(c.connect(), { name: 'UspTransportError' });
});

test('builders: set/operate/getSupportedDM shapes', () => {
  const s = set([{ objPath: 'Device.X.', params: { A: '1' }, required: true }], true);
  assert.deepEqual(s.body.request!.set, {
    allowPartial: true,
    updateObjs: [{ objPath: 'Device.X.', paramSettings: [{ param: 'A', value: '1', required: true }] }],
  });
  const o = operate('Device.Reboot()', {}, { commandKey: 'k', sendResp: false });
  assert.deepEqual(o.body.request!.operate, { command: 'Device.Reboot()', commandKey: 'k', sendResp: false, inputArgs: {} });
  assert.equal(getSupportedDM(['Device.'], { returnParams: false }).body.request!.getSupportedDm!.returnParams, false);
});

// ------------------------------------------------------------------------------------------------
// CLI

function io(): { out: string[]; err: string[]; io: UspCliIo } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s) => out.push(s), err: (s) => err.push(s), env: {} } };
}

test('cli: usage errors exit 2 naming the flag or argument', async () => {
  const cases: [string[], RegExp][] = [
    [['get', 'Device.', '--to', AGENT, '--mtp', 'ws', '--url', 'ws://x/usp', '--bogus'], /--bogus/],
    [['get', 'Device.', '--to', AGENT, '--mtp', 'carrier-pigeon'], /--mtp/],
    [['get', 'Device.', '--mtp', 'ws', '--url', 'ws://x/usp'], /--to/],
    [['get', 'Device.', '--to', AGENT, '--mtp', 'mqtt', '--url', 'mqtt://x', '--agent-topic', 'a'], /--controller-topic/],
    [['get', 'Device.', '--to', AGENT, '--mtp', 'stomp', '--port', 'x', '--controller-dest', 'c', '--agent-dest', 'a'], /--port/],
    [['get', 'Device.', '--to', AGENT, '--mtp', 'ws', '--url', 'ws://x/usp', '--timeout', '-5'], /--timeout/],
    [['get', 'Device.', '--to', AGENT, '--mtp', 'ws', '--url', 'ws://x/usp', '--max-depth', 'z'], /--max-depth/],
    [['get', '--to', AGENT, '--mtp', 'ws', '--url', 'ws://x/usp'], /PATH/],
    [['set', 'Device.X.', 'novalue', '--to', AGENT, '--mtp', 'ws', '--url', 'ws://x/usp'], /novalue/],
    [['get', 'Device.', '--allow-partial', '--to', AGENT, '--mtp', 'ws', '--url', 'ws://x/usp'], /--allow-partial/],
    [['frobnicate'], /frobnicate/],
    [[], /missing command/],
  ];
  for (const [argv, re] of cases) {
    const x = io();
    const code = await runUspCli(argv, x.io);
    assert.equal(code, 2, `${argv.join(' ')}: ${x.err.join('\n')}`);
    assert.match(x.err.join('\n'), re, argv.join(' '));
    assert.match(x.err.join('\n'), /Usage:/);
    assert.equal(x.out.length, 0);
  }
});

test('cli: --help for the command and a subcommand', async () => {
  let x = io();
  assert.equal(await runUspCli(['--help'], x.io), 0);
  assert.match(x.out.join(''), /supported-dm PATH/);
  x = io();
  assert.equal(await runUspCli(['operate', '--help'], x.io), 0);
  assert.match(x.out.join(''), /--command-key/);
});

test('cli over ws: response exit 0, Error Msg exit 1, timeout exit 3', async () => {
  const base = ['--to', AGENT, '--mtp', 'ws', '--url', wsAgent.url];
  let x = io();
  assert.equal(await runUspCli(['get', 'Device.DeviceInfo.', '--json', ...base], x.io), 0, x.err.join('\n'));
  const out = JSON.parse(x.out.join('')) as Msg;
  assert.equal(out.header.msgType, 'GET_RESP');
  x = io();
  assert.equal(await runUspCli(['get', 'Device.Bad.', '--json', ...base], x.io), 1);
  assert.equal((JSON.parse(x.out.join('')) as Msg).body.error!.errCode, 7026);
  x = io();
  assert.equal(await runUspCli(['get', 'Device.Silent.', ...base, '--timeout', '200'], x.io), 3);
  assert.match(x.err.join(''), /within 200 ms/);
  x = io();
  assert.equal(await runUspCli(['get', 'Device.', '--to', AGENT, '--mtp', 'ws', '--url', 'ws://127.0.0.1:1/usp'], x.io), 3);
  assert.match(x.err.join(''), /ws:/);
});

test('cli: compact output, exit 4 on a param_err inside a SetResp, defaults from the environment and a profile', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-usp-cli-'));
  try {
    const base = ['--to', AGENT, '--mtp', 'ws', '--url', wsAgent.url];
    let x = io();
    assert.equal(await runUspCli(['get', 'Device.DeviceInfo.', ...base], x.io), 0, x.err.join('\n'));
    assert.deepEqual(x.out, ['Device.DeviceInfo.Uptime => 42']);
    x = io();
    assert.equal(await runUspCli(['set', 'Device.X.', 'A=1', ...base], x.io), 0, x.err.join('\n'));
    assert.deepEqual(x.out, ['Device.X.A => 1']);
    x = io();
    assert.equal(await runUspCli(['set', 'Device.X.', 'A=1', 'Bad=2', '--allow-partial', ...base], x.io), 4);
    assert.deepEqual(x.out, ['Device.X.A => 1']);
    assert.deepEqual(x.err, ['Device.X.Bad: error 7012: Invalid value']);
    x = io();
    assert.equal(await runUspCli(['get', 'Device.Bad.', ...base], x.io), 1);
    assert.deepEqual(x.out, []);
    assert.match(x.err.join('\n'), /USP Error 7026: Invalid path/);

    // One call: the transport from a profile in $HOME, the agent from the environment.
    const home = path.join(dir, 'home');
    mkdirSync(path.join(home, '.config', 'cwmp-usp-proxy'), { recursive: true });
    writeFileSync(path.join(home, '.config', 'cwmp-usp-proxy', 'usp.yaml'), `mtp: ws\nurl: ${wsAgent.url}\nfrom: ${CTL}\ntimeout: 5000\n`);
    x = io();
    x.io.env = { HOME: home, USP_TO: AGENT };
    assert.equal(await runUspCli(['get', 'Device.DeviceInfo.'], x.io), 0, x.err.join('\n'));
    assert.deepEqual(x.out, ['Device.DeviceInfo.Uptime => 42']);
    // The command line wins over the environment, which wins over the profile.
    x = io();
    x.io.env = { HOME: home, USP_TO: AGENT, USP_URL: 'ws://127.0.0.1:1/usp' };
    assert.equal(await runUspCli(['get', 'Device.DeviceInfo.'], x.io), 3);
    assert.match(x.err.join('\n'), /127\.0\.0\.1:1/);
    x = io();
    x.io.env = { HOME: home, USP_TO: AGENT, USP_URL: 'ws://127.0.0.1:1/usp' };
    assert.equal(await runUspCli(['get', 'Device.DeviceInfo.', '--url', wsAgent.url], x.io), 0, x.err.join('\n'));
    // Another --mtp on the command line does not take the profile's ws options (url, secret-file).
    x = io();
    x.io.env = { HOME: home, USP_TO: AGENT };
    assert.equal(await runUspCli(['get', 'Device.', '--mtp', 'mqtt', '--agent-topic', 'a', '--controller-topic', 'c'], x.io), 2);
    assert.match(x.err.join('\n'), /--url is required with --mtp mqtt/);
    // --profile names another file; a bad key in it is a usage error naming the file and key.
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'mtp: ws\nadress: x\n');
    x = io();
    assert.equal(await runUspCli(['get', 'Device.', '--to', AGENT, '--profile', bad], x.io), 2);
    assert.match(x.err.join('\n'), /bad\.yaml: unknown key "adress"/);
    x = io();
    assert.equal(await runUspCli(['get', 'Device.', '--to', AGENT, '--profile', path.join(dir, 'none.yaml')], x.io), 2);
    assert.match(x.err.join('\n'), /cannot read profile .*none\.yaml: ENOENT/);
    // No --to anywhere: the error says where it may come from.
    x = io();
    x.io.env = { HOME: home };
    assert.equal(await runUspCli(['get', 'Device.'], x.io), 2);
    assert.match(x.err.join('\n'), /--to AGENT_EID is required \(or USP_TO, or 'to:' in .*usp\.yaml\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cli: a progress line while waiting, only when io.progress is given (a terminal), cleared at the end', async () => {
  const base = ['--to', AGENT, '--mtp', 'ws', '--url', wsAgent.url];
  const x = io();
  const progress: string[] = [];
  x.io.progress = (s) => progress.push(s);
  assert.equal(await runUspCli(['get', 'Device.Silent.', ...base, '--timeout', '1500'], x.io), 3);
  assert.match(progress[0]!, /^waiting for os::012345-TEST%2D1 to answer GET\.\.\. 1 s \(timeout 2 s\)$/);
  assert.equal(progress.at(-1), '');
  assert.ok(x.err.every((l) => !l.includes('waiting for')));
  assert.deepEqual(x.out, []);
});

test('cli listen over ws: prints Notify JSON lines and stops after --count', async () => {
  const x = io();
  const conns = wsAgent.requests.length;
  const run = runUspCli(['listen', '--json', '--count', '2', '--to', AGENT, '--mtp', 'ws', '--url', wsAgent.url], x.io);
  await waitFor(() => wsAgent.requests.length > conns);
  const before = wsAgent.notifyResps.length;
  await new Promise((r) => setTimeout(r, 50));
  const sock = [...wsAgent.sockets].at(-1)!;
  sock.send(notifyRecord('L-1'), { binary: true });
  sock.send(notifyRecord('L-2'), { binary: true });
  assert.equal(await run, 0);
  assert.deepEqual(
    x.out.map((l) => (JSON.parse(l) as Msg).header.msgId),
    ['L-1', 'L-2'],
  );
  // Each line names the sending agent.
  assert.ok(x.out.every((l) => (JSON.parse(l) as { fromId: string }).fromId === AGENT));

  await waitFor(() => wsAgent.notifyResps.length >= before + 1);
});

// ------------------------------------------------------------------------------------------------
// MQTT (mosquitto)

let broker: MosquittoHandle | null = null;
let rabbit: RabbitStompHandle | null = null;
const brokerCleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const f of brokerCleanups.reverse()) await f().catch(() => undefined);
  await broker?.stop();
  await rabbit?.stop();
});

async function mqttAgent(url: string, agentTopic: string, v: 5 | 4): Promise<{ c: MqttClient; seen: Msg[] }> {
  const seen: Msg[] = [];
  const c = await mqtt.connectAsync(url, { protocolVersion: v, reconnectPeriod: 0, clientId: `fake-agent-${v}-${process.pid}` });
  brokerCleanups.push(() => c.endAsync(true));
  c.on('message', (topic, payload, packet) => {
    const replyTo = v === 5 ? packet.properties?.responseTopic : decodeReplyToTopic(topic);
    if (v === 5) assert.equal(packet.properties?.contentType, 'usp.msg');
    const out = agentAnswer(new Uint8Array(payload), seen);
    if (out && replyTo) {
      if (v === 5) c.publish(replyTo, Buffer.from(out), { qos: 1, properties: { responseTopic: agentTopic, contentType: 'usp.msg' } });
      else c.publish(encodeReplyToTopic(replyTo, agentTopic), Buffer.from(out), { qos: 1 });
    }
  });
  await c.subscribeAsync(v === 5 ? agentTopic : `${agentTopic}/#`, { qos: 1 });
  return { c, seen };
}

async function needBroker(t: TestContext): Promise<MosquittoHandle | null> {
  broker ??= await startMosquitto();
  if (!broker) t.skip('mosquitto is not installed');
  return broker;
}

for (const v of [5, 4] as const) {
  test(`mqtt ${v === 5 ? '5' : '3.1.1'}: Get round trip, Notify gets NotifyResp, CLI get`, async (t) => {
    const b = await needBroker(t);
    if (!b) return;
    const agentTopic = `usp/agent/v${v}`;
    const controllerTopic = `usp/controller/v${v}`;
    const agent = await mqttAgent(b.url, agentTopic, v);
    const c = client({ mtp: 'mqtt', url: b.url, agentTopic, controllerTopic, protocolVersion: v });
    const notes: Msg[] = [];
    c.on('notify', (m) => notes.push(m));
    await c.connect();
    const resp = await c.request(get(['Device.DeviceInfo.']));
    assert.equal(resp.header.msgType, 'GET_RESP');
    assert.equal(resp.header.msgId, agent.seen.at(-1)!.header.msgId);

    // Notify from the agent: published to the controller topic; the NotifyResp comes back to the agent.
    const notifyTopic = v === 5 ? controllerTopic : encodeReplyToTopic(controllerTopic, agentTopic);
    agent.c.publish(notifyTopic, Buffer.from(notifyRecord(`mq-${v}`)), {
      qos: 1,
      ...(v === 5 ? { properties: { responseTopic: agentTopic, contentType: 'usp.msg' } } : {}),
    });
    await waitFor(() => agent.seen.some((m) => m.header.msgType === 'NOTIFY_RESP' && m.header.msgId === `mq-${v}`));
    assert.equal(notes.length, 1);
    await c.close();

    const x = io();
    const code = await runUspCli(
      [
        'get',
        'Device.',
        '--to',
        AGENT,
        '--mtp',
        'mqtt',
        '--url',
        b.url,
        '--agent-topic',
        agentTopic,
        '--controller-topic',
        controllerTopic,
        '--mqtt-version',
        String(v),
      ],
      x.io,
    );
    assert.equal(code, 0, x.err.join('\n'));
    assert.deepEqual(x.out, ['Device.Uptime => 42']);
  });
}

// ------------------------------------------------------------------------------------------------
// STOMP (RabbitMQ)

test('stomp: Get round trip and CLI get against RabbitMQ', { timeout: 120_000 }, async (t) => {
  rabbit ??= await startRabbitStomp();
  if (!rabbit) {
    t.skip('rabbitmq-server / epmd are not installed');
    return;
  }
  const r = rabbit;
  const agentDest = '/queue/usp.test.agent';
  const controllerDest = '/queue/usp.test.controller';
  const seen: Msg[] = [];
  const agent = new StompClient({
    webSocketFactory: () => new TCPWrapper(r.host, r.port),
    connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  await new Promise<void>((resolve, reject) => {
    agent.onConnect = () => resolve();
    agent.onStompError = (f) => reject(new Error(f.headers['message']));
    agent.activate();
  });
  brokerCleanups.push(() => agent.deactivate());
  await new Promise<void>((resolve) => {
    agent.watchForReceipt('agent-sub', () => resolve());
    agent.subscribe(
      agentDest,
      (m) => {
        assert.equal(m.headers['content-type'], 'application/vnd.bbf.usp.msg');
        const out = agentAnswer(m.binaryBody, seen);
        const replyTo = m.headers['reply-to-dest'];
        if (out && replyTo) {
          agent.publish({ destination: replyTo, binaryBody: out, headers: { 'content-type': 'application/vnd.bbf.usp.msg', 'reply-to-dest': agentDest } });
        }
      },
      { receipt: 'agent-sub' },
    );
  });
  const c = client({ mtp: 'stomp', host: r.host, port: r.port, login: 'guest', passcode: 'guest', controllerDest, agentDest });
  await c.connect();
  const resp = await c.request(get(['Device.DeviceInfo.']));
  assert.equal(resp.header.msgType, 'GET_RESP');
  assert.equal(resp.header.msgId, seen.at(-1)!.header.msgId);
  await c.close();

  const x = io();
  const code = await runUspCli(
    [
      'get',
      'Device.',
      '--to',
      AGENT,
      '--mtp',
      'stomp',
      '--host',
      r.host,
      '--port',
      String(r.port),
      '--login',
      'guest',
      '--passcode',
      'guest',
      '--controller-dest',
      controllerDest,
      '--agent-dest',
      agentDest,
    ],
    x.io,
  );
  assert.equal(code, 0, x.err.join('\n'));
  assert.deepEqual(x.out, ['Device.Uptime => 42']);
});
