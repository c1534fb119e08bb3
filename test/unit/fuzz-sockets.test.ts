/**
 * Socket fuzzing: a real Proxy gets ~300 mutated SOAP bodies over HTTP POST and ~300 mutated
 * Records over WebSocket (binary frames to /usp/<agent>?eid=<controller>, v1.usp). Deterministic
 * (seeded mutator, test/fuzz/corpus.ts). Afterwards the process is alive and a legitimate Inform
 * session and a legitimate USP Get still work. Prints the counts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig } from '../../src/app/config.js';
import { silentLogger } from '../../src/app/log.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { decodeMsg, decodeRecord, encodeRecord, noSessionRecord, type Msg } from '../../src/usp/codec/record.js';
import { loadCorpus, mutate, mutateText, Rng } from '../fuzz/corpus.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::fuzz-ctl';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-fuzzsock-'));
let proxy: CwmpUspProxy;
let fleet: Fleet;
let agent = '';
const corpus = loadCorpus();

before(async () => {
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'acs.host': '127.0.0.1',
      'acs.port': 0,
      'acs.connectionRequest.deadlineMs': 10_000,
      'usp.websocket.host': '127.0.0.1',
      'usp.websocket.port': 0,
      controllers: [{ endpointId: CTL, role: 'full' }],
      'log.level': 'silent',
    },
  });
  proxy = new CwmpUspProxy(config, silentLogger());
  await proxy.start();
  fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
    count: 1,
    model: 'tr181',
    serialPrefix: 'FZ',
    periodicIntervalS: null,
  });
  await fleet.start();
  agent = (await proxy.store.listDevices())[0]!.endpointId;
});

after(async () => {
  await fleet?.stop();
  await proxy?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function post(port: number, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/',
        agent: false,
        headers: { 'Content-Type': 'text/xml; charset="utf-8"', 'Content-Length': body.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(-1));
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(-1));
    req.end(body);
  });
}

test('~300 mutated SOAP bodies over HTTP: every one answered, no 5xx', async () => {
  const rng = new Rng(20261125);
  const seeds = corpus.soap.map((s) => Buffer.from(s, 'utf8'));
  const statuses = new Map<number, number>();
  const N = 300;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < N) {
      next++;
      const body = Buffer.from(mutateText(rng.pick(corpus.soap), rng, seeds), 'utf8');
      const status = await post(proxy.acsPort, body);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  console.log(`fuzz-sockets: ${N} mutated SOAP POSTs, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  assert.equal(
    [...statuses.values()].reduce((a, b) => a + b, 0),
    N,
  );
  assert.equal(statuses.get(-1) ?? 0, 0, 'a request got no HTTP answer');
  for (const s of statuses.keys()) assert.ok(s < 500 || s === 503, `HTTP ${s} for a mutated body`);
});

const getMsg = (id: string): Msg => ({
  header: { msgId: id, msgType: 'GET' },
  body: { msgBody: 'request', request: { reqType: 'get', get: { paramPaths: ['Device.LocalAgent.EndpointID', 'Device.LocalAgent.Controller.'] } } },
});

function openWs(): Promise<WebSocket> {
  const port = proxy.usp.ws!.serverAddress()!.port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/usp/${encodeURIComponent(agent)}?eid=${encodeURIComponent(CTL)}`, ['v1.usp'], {
    perMessageDeflate: false,
    handshakeTimeout: 10_000,
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Sends a legitimate Get and waits for its GET_RESP. */
async function legitGet(ws: WebSocket, id: string): Promise<Msg> {
  return new Promise<Msg>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no GET_RESP within 20 s')), 20_000);
    const onMsg = (data: Buffer): void => {
      try {
        const rec = decodeRecord(new Uint8Array(data));
        if (rec.recordType.kind !== 'noSessionContext') return;
        const msg = decodeMsg(rec.recordType.payload);
        if (msg.header.msgId !== id) return;
        clearTimeout(timer);
        ws.off('message', onMsg);
        resolve(msg);
      } catch {
        // not ours
      }
    };
    ws.on('message', onMsg);
    ws.send(encodeRecord(noSessionRecord(CTL, agent, getMsg(id))));
  });
}

test('~300 mutated Records over WebSocket, then a legitimate Get and Inform session still work', async () => {
  const rng = new Rng(369);
  const good = encodeRecord(noSessionRecord(CTL, agent, getMsg('fuzz-seed')));
  const seeds = [good, good, good, ...corpus.records];
  const N = 300;
  let ws = await openWs();
  let sent = 0;
  let reconnects = 0;
  for (let i = 0; i < N; i++) {
    if (ws.readyState !== WebSocket.OPEN) {
      reconnects++;
      ws = await openWs();
    }
    const bytes = mutate(rng.pick<Uint8Array>(seeds), rng, seeds);
    const current = ws;
    await new Promise<void>((resolve) => current.send(bytes, { binary: true }, () => resolve()));
    sent++;
    // Keep the frame rate bounded so a loaded CI machine handles them in order.
    if (i % 25 === 24) await new Promise((r) => setTimeout(r, 20));
  }
  if (ws.readyState !== WebSocket.OPEN) {
    reconnects++;
    ws = await openWs();
  }
  console.log(`fuzz-sockets: ${sent} mutated Records over WebSocket, reconnects ${reconnects}, endpoint stats ${JSON.stringify(proxy.usp.endpoint.stats)}`);
  assert.equal(sent, N);
  assert.ok(proxy.usp.endpoint.stats.recordsIn >= 1);

  const resp = await legitGet(ws, 'after-fuzz');
  assert.equal(resp.header.msgType, 'GET_RESP');
  ws.close();
  await new Promise((r) => ws.once('close', r));

  const before = fleet.totals();
  await fleet.informAll(['2 PERIODIC']);
  const t = fleet.totals();
  assert.equal(t.sessions - before.sessions, 1);
  assert.equal(t.failed - before.failed, 0, 'the legitimate Inform session failed after fuzzing');
  assert.ok(process.uptime() > 0);
});
