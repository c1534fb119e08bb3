/**
 * TP-469 section 7 (WebSocket MTP, CONFORMANCE.md 7.1, 7.2, 7.4, 7.7-7.12) on a real proxy: a
 * controller configured with a WebSocket URL is dialed by the agent of a simulated CPE. The
 * controller here is a bare `ws` server so the test sees the handshake, frames and control
 * frames as they are on the wire. TLS (7.10) is proved on wss:// in test/unit/tls.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { get } from '../../src/tools/controller/client.js';
import { decodeMsg, decodeRecord, encodeRecord, noSessionRecord, type UspRecord } from '../../src/usp/codec/record.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::conf-ws-ctl';
let wss: WebSocketServer;
let tp: TestProxy;
let fleet: Fleet;
let agent = '';

interface Session {
  ws: WebSocket;
  req: IncomingMessage;
  openedAt: number;
  records: UspRecord[];
  waiters: { pred: (r: UspRecord) => boolean; resolve: (r: UspRecord) => void }[];
}
const sessions: Session[] = [];
const sessionWaiters: ((s: Session) => void)[] = [];

function nextSession(after: number): Promise<Session> {
  const s = sessions.slice(after)[0];
  if (s) return Promise.resolve(s);
  return new Promise((resolve) => sessionWaiters.push(resolve));
}

function record(s: Session, pred: (r: UspRecord) => boolean, ms = 10_000): Promise<UspRecord> {
  const seen = s.records.find(pred);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no matching Record within ${ms} ms`)), ms);
    s.waiters.push({ pred, resolve: (r) => (clearTimeout(t), resolve(r)) });
  });
}

before(async () => {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has('v1.usp') ? 'v1.usp' : false) });
  wss.on('connection', (ws, req) => {
    const s: Session = { ws, req, openedAt: Date.now(), records: [], waiters: [] };
    sessions.push(s);
    ws.on('message', (data) => {
      const r = decodeRecord(new Uint8Array(data as Buffer));
      s.records.push(r);
      for (const w of [...s.waiters]) if (w.pred(r)) s.waiters.splice(s.waiters.indexOf(w), 1), w.resolve(r);
    });
    for (const w of sessionWaiters.splice(0)) w(s);
  });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/controller`;
  tp = await startTestProxy({
    'usp.reconnectBaseMs': 200,
    'usp.reconnectMaxMs': 1000,
    controllers: [{ endpointId: CTL, role: 'full', websocket: { url } }],
  });
  fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp.acsUrl, count: 1, model: 'tr181', serialPrefix: 'CWS', periodicIntervalS: null });
  await fleet.start();
  agent = (await tp.proxy.store.listDevices())[0]!.endpointId;
});

after(async () => {
  await fleet?.stop();
  await tp?.stop();
  for (const s of sessions) s.ws.terminate();
  await new Promise<void>((r) => wss.close(() => r()));
});

const agentSession = async (): Promise<Session> => {
  for (;;) {
    const s = sessions.find((x) => x.ws.readyState === x.ws.OPEN && new URL(x.req.url!, 'ws://h').searchParams.get('eid') === agent);
    if (s) return s;
    await nextSession(sessions.length);
  }
};

test('7.1, 7.11 The agent connects out to its controller with the v1.usp subprotocol, without needing the bbf-usp-protocol extension', async () => {
  const s = await agentSession();
  assert.equal(s.ws.protocol, 'v1.usp');
  assert.match(String(s.req.headers['sec-websocket-protocol']), /(^|,\s*)v1\.usp(\s*,|$)/);
  // Our server offers no extension at all and the session works (7.11): a Get is answered below.
  assert.equal(s.ws.extensions, '');
});

test('7.2 The first Record on the session is a WebSocketConnect Record from the agent, within 30 s', async () => {
  const s = await agentSession();
  const r = await record(s, () => true);
  assert.equal(r.recordType.kind, 'websocketConnect');
  assert.equal(r.fromId, agent);
  assert.equal(r.toId, CTL);
  assert.ok(Date.now() - s.openedAt < 30_000);
});

test('7.4 One WebSocket session per agent and controller', async () => {
  await agentSession();
  await new Promise((r) => setTimeout(r, 300));
  const open = sessions.filter((x) => x.ws.readyState === x.ws.OPEN && new URL(x.req.url!, 'ws://h').searchParams.get('eid') === agent);
  assert.equal(open.length, 1);
});

test('7.12 A request Record sent in several fragments is reassembled and answered', async () => {
  const s = await agentSession();
  const req = get(['Device.LocalAgent.EndpointID']);
  req.header.msgId = 'frag-7.12';
  const bytes = encodeRecord(noSessionRecord(CTL, agent, req));
  const cut = Math.floor(bytes.length / 2);
  s.ws.send(bytes.subarray(0, cut), { binary: true, fin: false });
  s.ws.send(bytes.subarray(cut), { binary: true, fin: true });
  const r = await record(s, (x) => x.recordType.kind === 'noSessionContext' && decodeMsg(x.recordType.payload).header.msgId === 'frag-7.12');
  const msg = decodeMsg((r.recordType as { payload: Uint8Array }).payload);
  assert.equal(msg.header.msgType, 'GET_RESP');
  assert.equal(msg.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults[0]!.resultParams.EndpointID, agent);
});

test('7.8 Ping is answered with Pong', async () => {
  const s = await agentSession();
  const pong = new Promise<Buffer>((resolve) => s.ws.once('pong', resolve));
  s.ws.ping(Buffer.from('tp469-7.8'));
  assert.equal((await pong).toString(), 'tp469-7.8');
});

test('7.7, 7.9 After the controller closes the session (Close 1000), the agent dials again with back-off and sends a new WebSocketConnect', async () => {
  const s = await agentSession();
  const before = sessions.length;
  const closed = new Promise<number>((resolve) => s.ws.once('close', (code) => resolve(code)));
  const t0 = Date.now();
  s.ws.close(1000, 'tp469 7.7');
  assert.equal(await closed, 1000, 'the agent completes the closing handshake');
  const again = await nextSession(before);
  assert.ok(Date.now() - t0 >= 100, 'not redialed at once (usp.reconnectBaseMs 200 ms, jittered)');
  const r = await record(again, () => true);
  assert.equal(r.recordType.kind, 'websocketConnect');
  assert.equal(new URL(again.req.url!, 'ws://h').searchParams.get('eid'), agent);
});
