/**
 * USP benchmark (npm run bench:usp): prints, one line per figure with its workload,
 *  - GetResp Record encode+decode rates (50 and 2,000 parameters), one core;
 *  - request/response round trips per second over each MTP (WebSocket, MQTT 5 via mosquitto,
 *    STOMP via RabbitMQ) with 1,000 agents behind one broker connection, the proxy in a
 *    child process, Gets spread over all agents, 32 in flight;
 *  - proxy RSS per registered agent and per open WebSocket connection.
 * Brokers are started like the tests do (test/helpers/brokers.ts); a missing one is reported.
 */
import os from 'node:os';
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { decodeMsg, decodeRecord, encodeMsg, encodeRecord, noSessionRecord, type Msg } from '../src/usp/codec/record.js';
import { UspControllerClient, get as getMsg } from '../src/tools/controller/client.js';
import { startMosquitto, startRabbitStomp } from '../test/helpers/brokers.js';

const { values } = parseArgs({
  options: { agents: { type: 'string', default: '1000' }, requests: { type: 'string', default: '3000' }, quick: { type: 'boolean', default: false } },
});
const AGENTS = values.quick ? 200 : Number(values.agents);
const REQUESTS = values.quick ? 500 : Number(values.requests);
const here = path.dirname(fileURLToPath(import.meta.url));
const CTL = 'proto::bench-ctl';
const agentEid = (i: number): string => `os::00BENC-SEED${String(i).padStart(8, '0')}`;
const fmt = (n: number, d = 0): string => n.toFixed(d);
const mb = (b: number): string => `${fmt(b / 1048576, 1)} MiB`;

function getResp(n: number): Msg {
  const resultParams: Record<string, string> = {};
  for (let i = 1; i <= n; i++) resultParams[`Host.${i}.PhysAddress`] = `00:11:22:33:${(i >> 8).toString(16)}:${(i & 255).toString(16)}`;
  return {
    header: { msgId: 'bench-1', msgType: 'GET_RESP' },
    body: {
      msgBody: 'response',
      response: {
        respType: 'getResp',
        getResp: { reqPathResults: [{ requestedPath: 'Device.Hosts.', resolvedPathResults: [{ resolvedPath: 'Device.Hosts.', resultParams }] }] },
      },
    },
  };
}

function codecRate(n: number): number {
  const msg = getResp(n);
  let count = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 1500) {
    const bytes = encodeRecord(noSessionRecord('os::A-1', CTL, msg));
    const rec = decodeRecord(bytes);
    if (rec.recordType.kind === 'noSessionContext') decodeMsg(rec.recordType.payload);
    count++;
  }
  return count / ((performance.now() - t0) / 1000);
}

interface Child {
  proc: ChildProcess;
  ask(cmd: string, extra?: Record<string, unknown>): Promise<Record<string, unknown>>;
}

function startChild(args: string[]): Promise<Child> {
  const proc = fork(path.join(here, 'child-proxy.js'), args, { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<string, (m: Record<string, unknown>) => void>();
  return new Promise((resolve, reject) => {
    proc.on('message', (m: Record<string, unknown>) => {
      if (m.cmd === 'ready') resolve({ proc, ask: (cmd, extra = {}) => new Promise((r) => (waiting.set(cmd, r), proc.send({ cmd, ...extra }))) });
      else if (m.cmd === 'error') reject(new Error(String(m.message)));
      else {
        const w = waiting.get(m.cmd as string);
        waiting.delete(m.cmd as string);
        w?.(m);
      }
    });
  });
}

async function roundTrips(client: UspControllerClient, label: string): Promise<void> {
  await client.connect();
  // Warm-up, then the measured run: Gets spread over every agent, 32 in flight.
  for (let i = 0; i < 50; i++) await client.request(getMsg(['Device.LocalAgent.EndpointID']), 10_000, agentEid(i % AGENTS));
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < REQUESTS) {
        const i = next++;
        const r = await client.request(getMsg(['Device.LocalAgent.EndpointID']), 10_000, agentEid(i % AGENTS)).catch(() => null);
        if (r?.body.msgBody !== 'response') failed++;
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  console.log(`${label}: ${fmt(REQUESTS / s)} Get round trips/s (${REQUESTS} requests over ${AGENTS} agents, 32 in flight, ${failed} failed)`);
  await client.close();
}

async function main(): Promise<void> {
  console.log(`# bench:usp on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}`);
  console.log(`GetResp Record encode+decode, 50 parameters: ${fmt(codecRate(50))}/s (one core; target >= 30,000)`);
  console.log(`GetResp Record encode+decode, 2,000 parameters: ${fmt(codecRate(2000))}/s (one core)`);
  const size = encodeMsg(getResp(50)).length;
  console.log(`GetResp with 50 parameters is ${size} bytes on the wire`);

  const [mosq, rabbit] = await Promise.all([startMosquitto(), startRabbitStomp()]);
  if (!mosq) console.log('MQTT: skipped (mosquitto not installed)');
  if (!rabbit) console.log('STOMP: skipped (rabbitmq-server not installed)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bench-usp-'));
  const child = await startChild(['usp', dir, mosq?.url ?? '', rabbit?.host ?? '', String(rabbit?.port ?? 61613)]);
  try {
    const empty = await child.ask('stats', { gc: true });
    const seeded = await child.ask('seed', { from: 0, to: AGENTS, agents: true });
    await new Promise((r) => setTimeout(r, 1500)); // Connect Records go out
    const withAgents = await child.ask('stats', { gc: true });
    console.log(
      `proxy RSS: ${mb(empty.rss as number)} with no agents, ${mb(withAgents.rss as number)} with ${AGENTS} registered agents on ${[mosq && 'MQTT', rabbit && 'STOMP', 'WebSocket'].filter(Boolean).join('+')}: ${fmt(((withAgents.rss as number) - (empty.rss as number)) / AGENTS)} bytes RSS, ${fmt(((withAgents.heapUsed as number) - (empty.heapUsed as number)) / AGENTS)} bytes of JS heap per agent (after GC; includes the store's device cache and the Connect Records in flight)`,
    );
    const wsPort = seeded.wsPort as number;
    await roundTrips(
      new UspControllerClient({ agentId: agentEid(0), endpointId: CTL, transport: { mtp: 'ws', url: `ws://127.0.0.1:${wsPort}/usp`, shared: true } }),
      'WebSocket (one connection on the shared path /usp)',
    );
    if (mosq)
      await roundTrips(
        new UspControllerClient({
          agentId: agentEid(0),
          endpointId: CTL,
          transport: { mtp: 'mqtt', url: mosq.url, controllerTopic: '/usp/bench-ctl', agentTopic: '/usp/agent' },
        }),
        'MQTT 5 via mosquitto (one broker connection for all agents)',
      );
    if (rabbit)
      await roundTrips(
        new UspControllerClient({
          agentId: agentEid(0),
          endpointId: CTL,
          transport: {
            mtp: 'stomp',
            host: rabbit.host,
            port: rabbit.port,
            login: 'guest',
            passcode: 'guest',
            controllerDest: '/queue/usp.bench-ctl',
            agentDest: '/queue/usp.agent',
          },
        }),
        'STOMP via RabbitMQ (one broker connection for all agents)',
      );

    // One WebSocket per agent (controllers connecting to /usp/<EID>): memory per open connection.
    const before = await child.ask('stats', { gc: true });
    const sockets: WebSocket[] = [];
    await Promise.all(
      Array.from(
        { length: AGENTS },
        (_, i) =>
          new Promise<void>((resolve) => {
            const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/usp/${encodeURIComponent(agentEid(i))}?eid=${encodeURIComponent(CTL)}`, 'v1.usp');
            sockets.push(ws);
            ws.once('open', () => resolve());
            ws.once('error', () => resolve());
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 1000));
    const after = await child.ask('stats', { gc: true });
    const open = sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
    console.log(
      `proxy memory per open WebSocket connection (controller -> /usp/<agent EID>): ${fmt(((after.heapUsed as number) - (before.heapUsed as number)) / Math.max(1, open))} bytes of JS heap, ${fmt(((after.rss as number) - (before.rss as number)) / Math.max(1, open))} bytes RSS (${open} connections; RSS moves in allocator chunks)`,
    );
    for (const s of sockets) s.terminate();
    const st = await child.ask('usp-stats');
    console.log(`proxy USP records in/out/dropped: ${st.recordsIn}/${st.recordsOut}/${st.dropped}`);
  } finally {
    const exited = new Promise((r) => child.proc.once('exit', r));
    child.proc.send({ cmd: 'stop' });
    await exited;
    await Promise.all([mosq?.stop(), rabbit?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
