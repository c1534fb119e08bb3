/**
 * USP benchmark (npm run bench:usp): prints, one line per figure with its workload,
 *  - GetResp Record encode+decode rates (50 and 2,000 parameters), one core;
 *  - MQTT 5 via mosquitto: the proxy (1,000 agents behind one broker connection) against a trivial
 *    echo responder on the same broker (the ceiling), in paired rounds (bench/paired.ts: A B, B A,
 *    a CPU-idle check before each) of `--seconds` each, Gets of Device.LocalAgent.EndpointID spread
 *    over all agents, 32 in flight, from a controller harness with TCP_NODELAY; prints every round,
 *    the proxy/echo ratio (median, min-max), p50 latency and CPU per Get of each responder;
 *  - Get round trips per second over WebSocket and STOMP via RabbitMQ (one run each of `--seconds`);
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
import type { MqttClient } from 'mqtt';
import { median as med, paired } from './paired.js';
import { decodeMsg, decodeRecord, encodeMsg, encodeRecord, noSessionRecord, type Msg } from '../src/usp/codec/record.js';
import { connectMqtt5, onUspMsg } from './mqtt-peer.js';
import { UspControllerClient, get as getMsg } from '../src/tools/controller/client.js';
import { startMosquitto, startRabbitStomp } from '../test/helpers/brokers.js';

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '6' },
    inflight: { type: 'string', default: '32' },
    quick: { type: 'boolean', default: false },
    // Write a V8 CPU profile of the proxy process (node --cpu-prof) into this folder.
    'cpu-prof': { type: 'string', default: '' },
    // Only the MQTT paired rounds (skip the codec rates, WebSocket, STOMP and per-connection memory).
    'mqtt-only': { type: 'boolean', default: false },
    // Another build of the proxy (a checkout's root, built: <dir>/dist/bench/child-proxy.js): paired
    // rounds of this build against it on the same broker, instead of against the echo responder.
    compare: { type: 'string', default: '' },
    // The proxy's log level (JSON lines to /dev/null); silent drops lines before they are built.
    log: { type: 'string', default: 'info' },
  },
});
const MQTT_ONLY = values['mqtt-only'];
const AGENTS = values.quick ? 200 : Number(values.agents);
const SECONDS = values.quick ? 2 : Number(values.seconds);
const ROUNDS = values.quick ? 2 : Number(values.rounds);
const INFLIGHT = Number(values.inflight);
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

function startChild(args: string[], profile = '', script = path.join(here, 'child-proxy.js'), env: Record<string, string> = {}): Promise<Child> {
  // BENCH_CHILD_FLAGS: extra node flags for the children (e.g. --trace-gc).
  const extra = (process.env.BENCH_CHILD_FLAGS ?? '').split(' ').filter(Boolean);
  const execArgv = ['--expose-gc', ...extra, ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [])];
  // A proxy that logs writes its lines to stdout, here /dev/null.
  const stdout = env.BENCH_LOG ? 'ignore' : 'inherit';
  const proc = fork(script, args, { execArgv, stdio: ['ignore', stdout, 'inherit', 'ipc'], env: { ...process.env, ...env } });
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
  // Warm-up, then the measured run: Gets spread over every agent, INFLIGHT in flight.
  for (let i = 0; i < 50; i++) await client.request(getMsg(['Device.LocalAgent.EndpointID']), 10_000, agentEid(i % AGENTS));
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  const until = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (performance.now() < until) {
        const i = next++;
        const r = await client.request(getMsg(['Device.LocalAgent.EndpointID']), 10_000, agentEid(i % AGENTS)).catch(() => null);
        if (r?.body.msgBody !== 'response') failed++;
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  console.log(
    `${label}: ${fmt(next / s)} Get round trips/s (${next} requests in ${s.toFixed(1)} s over ${AGENTS} agents, ${INFLIGHT} in flight, ${failed} failed; one run)`,
  );
  await client.close();
}

/** A bare MQTT 5 controller: TCP_NODELAY, QoS 1, Records built once per request like a real one. */
class MqttHarness {
  private c: MqttClient | undefined;
  private readonly waiting = new Map<string, () => void>();
  private seq = 0;
  constructor(
    private readonly url: string,
    private readonly replyTopic: string,
  ) {}

  async connect(): Promise<void> {
    const c = await connectMqtt5(this.url, { properties: { userProperties: { 'usp-endpoint-id': CTL } } });
    this.c = c;
    onUspMsg(c, (msg) => {
      const w = this.waiting.get(msg.header.msgId);
      this.waiting.delete(msg.header.msgId);
      if (msg.body.msgBody === 'response') w?.();
    });
    await c.subscribeAsync(this.replyTopic, { qos: 1 });
  }

  /** Gets spread over the agents, INFLIGHT in flight, for `seconds`, to an agent topic. */
  async run(topic: string, seconds: number): Promise<{ rate: number; p50: number; count: number; failed: number }> {
    const c = this.c!;
    const lat: number[] = [];
    let next = 0;
    let failed = 0;
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    await Promise.all(
      Array.from({ length: INFLIGHT }, async () => {
        while (performance.now() < until) {
          const i = next++;
          const msg = getMsg(['Device.LocalAgent.EndpointID']);
          msg.header.msgId = `b-${++this.seq}`;
          const bytes = encodeRecord(noSessionRecord(CTL, agentEid(i % AGENTS), msg));
          const s0 = performance.now();
          const ok = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => {
              this.waiting.delete(msg.header.msgId);
              resolve(false);
            }, 10_000);
            this.waiting.set(msg.header.msgId, () => {
              clearTimeout(timer);
              resolve(true);
            });
            c.publish(topic, Buffer.from(bytes), { qos: 1, properties: { responseTopic: this.replyTopic, contentType: 'usp.msg' } });
          });
          if (ok) lat.push(performance.now() - s0);
          else failed++;
        }
      }),
    );
    const took = (performance.now() - t0) / 1000;
    lat.sort((x, y) => x - y);
    return { rate: lat.length / took, p50: lat[Math.floor(lat.length / 2)] ?? Number.NaN, count: lat.length, failed };
  }

  async close(): Promise<void> {
    await this.c?.endAsync(true);
  }
}

async function main(): Promise<void> {
  console.log(`# bench:usp on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}`);
  if (!MQTT_ONLY) {
    console.log(`GetResp Record encode+decode, 50 parameters: ${fmt(codecRate(50))}/s (one core; target >= 30,000)`);
    console.log(`GetResp Record encode+decode, 2,000 parameters: ${fmt(codecRate(2000))}/s (one core)`);
    const size = encodeMsg(getResp(50)).length;
    console.log(`GetResp with 50 parameters is ${size} bytes on the wire`);
  }

  const [mosq, rabbit] = await Promise.all([startMosquitto(), MQTT_ONLY ? Promise.resolve(null) : startRabbitStomp()]);
  if (!mosq) console.log('MQTT: skipped (mosquitto not installed)');
  if (!rabbit) console.log(MQTT_ONLY ? 'STOMP: skipped (--mqtt-only)' : 'STOMP: skipped (rabbitmq-server not installed)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bench-usp-'));
  const child = await startChild(
    ['usp', dir, mosq?.url ?? '', rabbit?.host ?? '', String(rabbit?.port ?? 61613)],
    values['cpu-prof'],
    undefined,
    values.log === 'silent' ? {} : { BENCH_LOG: values.log },
  );
  console.log(
    `proxy log level ${values.log}${values.log === 'silent' ? '' : ' (JSON lines written to /dev/null: one info line per USP request, as deployed)'}`,
  );
  try {
    const empty = await child.ask('stats', { gc: true });
    const seeded = await child.ask('seed', { from: 0, to: AGENTS, agents: true });
    await new Promise((r) => setTimeout(r, 1500)); // Connect Records go out
    const withAgents = await child.ask('stats', { gc: true });
    console.log(
      `proxy RSS: ${mb(empty.rss as number)} with no agents, ${mb(withAgents.rss as number)} with ${AGENTS} registered agents on ${[mosq && 'MQTT', rabbit && 'STOMP', 'WebSocket'].filter(Boolean).join('+')}: ${fmt(((withAgents.rss as number) - (empty.rss as number)) / AGENTS)} bytes RSS, ${fmt(((withAgents.heapUsed as number) - (empty.heapUsed as number)) / AGENTS)} bytes of JS heap per agent (after GC; includes the store's device cache and the Connect Records in flight)`,
    );
    const wsPort = seeded.wsPort as number;
    if (!MQTT_ONLY)
      await roundTrips(
        new UspControllerClient({ agentId: agentEid(0), endpointId: CTL, transport: { mtp: 'ws', url: `ws://127.0.0.1:${wsPort}/usp`, shared: true } }),
        'WebSocket (one connection on the shared path /usp)',
      );
    if (mosq && values.compare) {
      // This build (A) against another build (B) of the proxy, each with its own store and agent topic.
      const dirB = mkdtempSync(path.join(os.tmpdir(), 'cup-bench-usp-b-'));
      const other = await startChild(['usp', dirB, mosq.url, '', '61613'], '', path.resolve(values.compare, 'dist/bench/child-proxy.js'), {
        BENCH_AGENT_TOPIC: '/usp/agent-b',
        ...(values.log === 'silent' ? {} : { BENCH_LOG: values.log }),
      });
      try {
        await other.ask('seed', { from: 0, to: AGENTS, agents: true });
        await new Promise((r) => setTimeout(r, 1500));
        const h = new MqttHarness(mosq.url, '/usp/bench-ctl');
        await h.connect();
        await h.run('/usp/agent', 1);
        await h.run('/usp/agent-b', 1);
        type Run = { rate: number; p50: number; count: number; failed: number; cpuUs: number };
        const measured = async (who: Child, topic: string): Promise<Run> => {
          const c0 = (await who.ask('cpu')).us as number;
          const r = await h.run(topic, SECONDS);
          const c1 = (await who.ask('cpu')).us as number;
          return { ...r, cpuUs: (c1 - c0) / Math.max(1, r.count) };
        };
        const res = await paired<Run>({
          title: `MQTT 5 via mosquitto, Get Device.LocalAgent.EndpointID over ${AGENTS} agents, ${INFLIGHT} in flight, ${SECONDS} s per run: this build against ${values.compare}`,
          rounds: ROUNDS,
          a: { label: 'this build', run: () => measured(child, '/usp/agent') },
          b: { label: 'other build', run: () => measured(other, '/usp/agent-b') },
          value: (r) => r.cpuUs,
          show: (r) => `${fmt(r.rate)} Gets/s, p50 ${r.p50.toFixed(2)} ms, CPU ${fmt(r.cpuUs, 1)} us/Get${r.failed ? `, ${r.failed} failed` : ''}`,
        });
        console.log(
          `CPU per Get, this build / other build: median ${res.ratio.median.toFixed(3)} (min ${res.ratio.min.toFixed(3)}, max ${res.ratio.max.toFixed(3)}); this build ${fmt(med(res.a.map((r) => r.cpuUs)), 1)} us/Get, other ${fmt(med(res.b.map((r) => r.cpuUs)), 1)} us/Get`,
        );
        await h.close();
      } finally {
        const exited = new Promise((r) => other.proc.once('exit', r));
        other.proc.send({ cmd: 'stop' });
        await exited;
        rmSync(dirB, { recursive: true, force: true });
      }
    } else if (mosq) {
      const echo = await startChild(['echo', mosq.url, '/usp/echo']);
      const h = new MqttHarness(mosq.url, '/usp/bench-ctl');
      await h.connect();
      await h.run('/usp/agent', 1); // warm-up of both
      await h.run('/usp/echo', 1);
      type Run = { rate: number; p50: number; count: number; failed: number; cpuUs: number };
      const measured = async (who: Child, topic: string): Promise<Run> => {
        const c0 = (await who.ask('cpu')).us as number;
        const r = await h.run(topic, SECONDS);
        const c1 = (await who.ask('cpu')).us as number;
        return { ...r, cpuUs: (c1 - c0) / Math.max(1, r.count) };
      };
      const res = await paired<Run>({
        title: `MQTT 5 via mosquitto, Get Device.LocalAgent.EndpointID over ${AGENTS} agents, ${INFLIGHT} in flight, ${SECONDS} s per run`,
        rounds: ROUNDS,
        a: { label: 'proxy', run: () => measured(child, '/usp/agent') },
        b: { label: 'echo responder', run: () => measured(echo, '/usp/echo') },
        value: (r) => r.rate,
        show: (r) => `${fmt(r.rate)} Gets/s, p50 ${r.p50.toFixed(2)} ms, CPU ${fmt(r.cpuUs)} us/Get${r.failed ? `, ${r.failed} failed` : ''}`,
      });
      console.log(
        `MQTT proxy/echo ratio ${res.ratio.median.toFixed(2)} (min ${res.ratio.min.toFixed(2)}, max ${res.ratio.max.toFixed(2)}; targets >= 0.95 with one agent, >= 0.9 with 1,000); proxy median ${fmt(res.medianA)} Gets/s, p50 ${med(res.a.map((r) => r.p50)).toFixed(2)} ms, CPU ${fmt(med(res.a.map((r) => r.cpuUs)))} us/Get (target <= 75); echo median ${fmt(res.medianB)} Gets/s, p50 ${med(res.b.map((r) => r.p50)).toFixed(2)} ms, CPU ${fmt(med(res.b.map((r) => r.cpuUs)))} us/Get`,
      );
      await h.close();
      const exited = new Promise((r) => echo.proc.once('exit', r));
      echo.proc.send({ cmd: 'stop' });
      await exited;
    }
    if (rabbit && !MQTT_ONLY)
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
    if (MQTT_ONLY) return;
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
