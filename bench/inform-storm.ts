/**
 * Inform storm (npm run bench:informs): N simulated devices, in this process, each open a
 * full CWMP session against a server running in a child process:
 *   Inform (20 parameters) -> InformResponse -> empty POST -> 204
 * as fast as the concurrency allows. The proxy (A) and a bare node:http server that only parses
 * the Inform with the same codec and answers a fixed InformResponse (B) run in paired rounds
 * (bench/paired.ts: A B, B A ..., a CPU-idle check before each) of `--seconds` each; every round
 * and the median and min-max of the paired ratios are printed. Then the event-loop stall while
 * 2,000-parameter GetParameterValuesResponses arrive mid-storm, and memory per device: devices
 * registered through real CWMP sessions, each then asked once over USP (a Get over WebSocket),
 * measured after a forced GC (the child runs with --expose-gc) at each count of `--memory`.
 *
 * Options: --devices N (10000, devices cycled through by the paired rounds) --concurrency C (200)
 *   --rounds R (6) --seconds S (5) --memory 1000,10000 (empty: skip) --big K (10) --quick
 *   --big-rate N (800) --big-rounds R (6) --big-seconds S (4) --big-gap MS (200): the big-response stall rounds (below)
 *   --memory-only (skip the storms) --heap-snapshot DIR (v8 heap snapshot of the proxy at each memory level)
 *   --settle S (30: each memory figure again after S seconds idle, once V8 gave back its young generation)
 */
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { encodeSoap, decodeSoap } from '../src/cwmp/soap.js';
import { endpointIdOf } from '../src/cwmp/device-id.js';
import { UspControllerClient, get as getMsg } from '../src/tools/controller/client.js';
import { heapGrowth } from './heap-diff.js';
import { idleCheck, median, paired } from './paired.js';
import type { Inform, ParameterValueStruct } from '../src/cwmp/types.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '5' },
    memory: { type: 'string', default: '1000,10000' },
    big: { type: 'string', default: '10' },
    // The big-response stall rounds: paced background Inform sessions per second, rounds, seconds each.
    'big-rate': { type: 'string', default: '800' },
    'big-rounds': { type: 'string', default: '6' },
    'big-seconds': { type: 'string', default: '4' },
    'big-gap': { type: 'string', default: '200' },
    quick: { type: 'boolean', default: false },
    // Only the memory part; and/or heap snapshots of the proxy at each memory level into this folder.
    'memory-only': { type: 'boolean', default: false },
    'heap-snapshot': { type: 'string', default: '' },
    // Seconds the proxy idles before the second memory figure of each level (0: only the first).
    settle: { type: 'string', default: '30' },
  },
});
const DEVICES = values.quick ? 1000 : Number(values.devices);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = values.quick ? 2 : Number(values.rounds);
/** Unmeasured seconds before each measured run of the paired rounds. */
const WARM_S = 1;
const SECONDS = values.quick ? 2 : Number(values.seconds);
const MEMORY = (values.quick ? '1000' : values.memory)
  .split(',')
  .filter((x) => x.trim() !== '')
  .map(Number);
const BIG = Number(values.big);
const BIG_RATE = Number(values['big-rate']);
const BIG_ROUNDS = values.quick ? 2 : Number(values['big-rounds']);
const BIG_SECONDS = values.quick ? 2 : Number(values['big-seconds']);
const BIG_GAP = Number(values['big-gap']);
const SETTLE = values.quick ? 0 : Number(values.settle);
const here = path.dirname(fileURLToPath(import.meta.url));

// ------------------------------------------------------------------ child process control

interface Child {
  proc: ChildProcess;
  port: number;
  ask(cmd: string, extra?: Record<string, unknown>): Promise<Record<string, unknown>>;
  onResult: ((m: Record<string, unknown>) => void) | null;
}

function startChild(args: string[]): Promise<Child> {
  const proc = fork(path.join(here, 'child-proxy.js'), args, {
    execArgv: [
      '--expose-gc',
      ...(process.env.BENCH_PROF && args[0] === 'proxy' ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []),
      // Extra node flags for the server child, e.g. BENCH_CHILD_NODE_ARGS=--trace-gc to see its pauses.
      ...(process.env.BENCH_CHILD_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const waiting = new Map<string, (m: Record<string, unknown>) => void>();
    const child: Child = {
      proc,
      port: 0,
      onResult: null,
      ask(cmd, extra = {}) {
        return new Promise((r) => {
          waiting.set(cmd, r);
          proc.send({ cmd, ...extra });
        });
      },
    };
    proc.on('message', (m: Record<string, unknown>) => {
      if (m.cmd === 'ready') {
        child.port = m.port as number;
        resolve(child);
      } else if (m.cmd === 'error') {
        reject(new Error(String(m.message)));
        console.error('child error:', m.message);
      } else if (m.cmd === 'enqueued-result') child.onResult?.(m);
      else {
        const w = waiting.get(m.cmd as string);
        waiting.delete(m.cmd as string);
        w?.(m);
      }
    });
  });
}

async function stopChild(c: Child): Promise<void> {
  const exited = new Promise((r) => c.proc.once('exit', r));
  c.proc.send({ cmd: 'stop' });
  await exited;
}

// ------------------------------------------------------------------ the simulated devices

const OUI = '00BEEF';
const informTemplate = (serial: string, event: string, crUrl: string): string => {
  const params: ParameterValueStruct[] = [
    { name: 'Device.DeviceInfo.HardwareVersion', value: 'HW-1.0', type: 'xsd:string' },
    { name: 'Device.DeviceInfo.SoftwareVersion', value: 'SW-2.4.1', type: 'xsd:string' },
    { name: 'Device.DeviceInfo.ProvisioningCode', value: 'BENCH', type: 'xsd:string' },
    { name: 'Device.DeviceInfo.SpecVersion', value: '1.0', type: 'xsd:string' },
    { name: 'Device.DeviceInfo.UpTime', value: '12345', type: 'xsd:unsignedInt' },
    { name: 'Device.ManagementServer.ParameterKey', value: '', type: 'xsd:string' },
    { name: 'Device.ManagementServer.ConnectionRequestURL', value: crUrl, type: 'xsd:string' },
    { name: 'Device.ManagementServer.PeriodicInformInterval', value: '86400', type: 'xsd:unsignedInt' },
    { name: 'Device.RootDataModelVersion', value: '2.17', type: 'xsd:string' },
    { name: 'Device.IP.Interface.1.IPv4Address.1.IPAddress', value: '10.0.0.2', type: 'xsd:string' },
    { name: 'Device.IP.Interface.1.Status', value: 'Up', type: 'xsd:string' },
    { name: 'Device.IP.Interface.1.Enable', value: 'true', type: 'xsd:boolean' },
    { name: 'Device.WiFi.SSID.1.SSID', value: 'bench-ssid', type: 'xsd:string' },
    { name: 'Device.WiFi.SSID.1.Enable', value: '1', type: 'xsd:boolean' },
    { name: 'Device.WiFi.Radio.1.Channel', value: '6', type: 'xsd:unsignedInt' },
    { name: 'Device.Ethernet.Interface.1.MACAddress', value: '00:11:22:33:44:55', type: 'xsd:string' },
    { name: 'Device.Hosts.HostNumberOfEntries', value: '3', type: 'xsd:unsignedInt' },
    { name: 'Device.Time.CurrentLocalTime', value: '2026-11-25T12:00:00Z', type: 'xsd:dateTime' },
    { name: 'Device.DeviceInfo.MemoryStatus.Free', value: '65536', type: 'xsd:unsignedInt' },
    { name: 'Device.DeviceInfo.ProcessStatus.CPUUsage', value: '7', type: 'xsd:unsignedInt' },
  ];
  const inform: Inform = {
    method: 'Inform',
    deviceId: { manufacturer: 'BenchCo', oui: OUI, productClass: 'StormBox', serialNumber: serial },
    event: [{ eventCode: event, commandKey: '' }],
    maxEnvelopes: 1,
    currentTime: '2026-11-25T12:00:00Z',
    retryCount: 0,
    parameterList: params,
  };
  return encodeSoap({ cwmpVersion: '1-0', id: `inf-${serial}`, body: inform });
};

function request(agent: http.Agent, port: number, body: string, cookie?: string): Promise<{ status: number; body: string; cookie?: string }> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.from(body, 'utf8');
    const headers: Record<string, string | number> = { 'Content-Type': 'text/xml; charset="utf-8"', 'Content-Length': buf.length };
    if (cookie) headers.Cookie = cookie;
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const sc = res.headers['set-cookie']?.[0]?.split(';')[0];
        resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8'), cookie: sc });
      });
    });
    req.on('error', reject);
    req.end(buf);
  });
}

/** One full session on one keep-alive socket; returns its latency in ms. */
async function session(port: number, informBody: string): Promise<number> {
  const agent = sessionAgent();
  const t0 = performance.now();
  const r1 = await request(agent, port, informBody);
  if (r1.status !== 200) throw new Error(`Inform answered ${r1.status}: ${r1.body.slice(0, 200)}`);
  const r2 = await request(agent, port, '', r1.cookie);
  if (r2.status !== 204) throw new Error(`empty POST answered ${r2.status}: ${r2.body.slice(0, 200)}`);
  releaseAgent(agent);
  return performance.now() - t0;
}

// A pool of single-socket keep-alive agents: one TCP connection per concurrent session, reused.
const agents: http.Agent[] = [];
const sessionAgent = (): http.Agent => agents.pop() ?? new http.Agent({ keepAlive: true, maxSockets: 1 });
const releaseAgent = (a: http.Agent): void => {
  agents.push(a);
};
/** After a pause: the server has closed the idle keep-alive connections (a request on one would meet a reset). */
const dropIdleConnections = (): void => {
  for (const a of agents.splice(0)) a.destroy();
};

interface StormResult {
  sessions: number;
  rate: number;
  p50: number;
  p99: number;
  seconds: number;
}

/**
 * Sessions of `count` devices (serials prefix + offset..offset+count-1), `concurrency` at a time:
 * each device once, or with `seconds`, cycling through the devices until that time is up.
 */
async function storm(port: number, count: number, serialPrefix: string, concurrency = CONCURRENCY, seconds = 0, offset = 0): Promise<StormResult> {
  const bodies: string[] = [];
  for (let i = 0; i < count; i++) {
    const serial = `${serialPrefix}${String(offset + i).padStart(7, '0')}`;
    bodies.push(informTemplate(serial, '2 PERIODIC', `http://127.0.0.1:9/${serial}`));
  }
  const lat: number[] = [];
  const inSession = new Set<number>();
  let next = 0;
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  const more = (): boolean => (seconds > 0 ? performance.now() < until : next < count);
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (more()) {
        // A device in session is skipped: its second Inform would end the first session (TR-069 3.7.1).
        let i = next++ % count;
        while (inSession.has(i) && inSession.size < count) i = next++ % count;
        inSession.add(i);
        lat.push(await session(port, bodies[i]!));
        inSession.delete(i);
      }
    }),
  );
  const took = (performance.now() - t0) / 1000;
  lat.sort((x, y) => x - y);
  const n = lat.length;
  return { sessions: n, rate: n / took, p50: lat[Math.floor(n * 0.5)]!, p99: lat[Math.floor(n * 0.99)]!, seconds: took };
}

interface PacedResult {
  sessions: number;
  /** Latencies of the sessions, sorted (ms). */
  lat: number[];
}

/**
 * An open-loop background load: a new session of the next device every 1/rate s for `seconds`
 * (at most 256 at once, so a stalled server is not buried), whatever the server's answers do. Unlike
 * the closed-loop storm, its sessions' latencies show how long another session was held up.
 */
async function pacedStorm(port: number, count: number, serialPrefix: string, rate: number, seconds: number): Promise<PacedResult> {
  const bodies: string[] = [];
  for (let i = 0; i < count; i++) {
    const serial = `${serialPrefix}${String(i).padStart(7, '0')}`;
    bodies.push(informTemplate(serial, '2 PERIODIC', `http://127.0.0.1:9/${serial}`));
  }
  const lat: number[] = [];
  const running = new Set<Promise<void>>();
  const inSession = new Set<number>(); // devices in session: see storm()
  const t0 = performance.now();
  let started = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    while (started < due && running.size < 256) {
      let i = started++ % count;
      while (inSession.has(i)) i = started++ % count;
      inSession.add(i);
      const p: Promise<void> = session(port, bodies[i]!).then((ms) => {
        lat.push(ms);
        running.delete(p);
        inSession.delete(i);
      });
      running.add(p);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(running);
  lat.sort((x, y) => x - y);
  return { sessions: lat.length, lat };
}

// ------------------------------------------------------------------ the 2,000-parameter response

let bigTemplate: string | undefined;
/** The 2,000-parameter answer, encoded once: encoding it per session would stall this (the load's) event loop. */
function bigGpvResponse(id: string): string {
  if (!bigTemplate) {
    const list: ParameterValueStruct[] = [];
    for (let i = 1; i <= 2000; i++)
      list.push({ name: `Device.Hosts.Host.${i}.PhysAddress`, value: `00:11:22:${(i >> 8).toString(16)}:${(i & 255).toString(16)}:00`, type: 'xsd:string' });
    bigTemplate = encodeSoap({ cwmpVersion: '1-0', id: '@@ID@@', body: { method: 'GetParameterValuesResponse', parameterList: list } });
  }
  return bigTemplate.replace('@@ID@@', id);
}

/** A device that, in each session, receives the queued GPV and answers it with 2,000 parameters. */
async function bigSession(port: number, child: Child, serial: string): Promise<number> {
  const result = new Promise<Record<string, unknown>>((r) => (child.onResult = r));
  await child.ask('enqueue', { deviceKey: `${OUI}-StormBox-${serial}` });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const t0 = performance.now();
  const r1 = await request(agent, port, informTemplate(serial, '6 CONNECTION REQUEST', 'http://127.0.0.1:9/big'));
  const r2 = await request(agent, port, '', r1.cookie);
  const env = decodeSoap(r2.body).envelope;
  if (env?.body.method !== 'GetParameterValues') throw new Error(`expected GetParameterValues, got ${r2.status} ${r2.body.slice(0, 200)}`);
  const r3 = await request(agent, port, bigGpvResponse(env.id!), r1.cookie);
  if (r3.status !== 204) throw new Error(`big GPV answered ${r3.status}`);
  agent.destroy();
  const res = await result;
  if (res.kind !== 'response') throw new Error(`big GPV outcome ${JSON.stringify(res)}`);
  return performance.now() - t0;
}

/**
 * Does a 2,000-parameter response hold up other sessions? Paired rounds (without / with, order
 * alternating, a CPU-idle check before each) of a paced background load; in the "with" phase a
 * big response arrives every --big-gap ms after the previous one was answered. Printed per phase: the proxy's worst event-loop
 * delay (its longest main-thread stretch, GC and the OS scheduler included) and the background
 * sessions' latency; the summary gives the medians and what the big responses added.
 */
async function bigStallRounds(proxy: Child, background: number): Promise<void> {
  const q = (xs: number[], f: number): number => xs[Math.min(xs.length - 1, Math.floor(xs.length * f))]!;
  console.log(
    `# big-response stall: ${BIG_ROUNDS} paired rounds of ${BIG_SECONDS} s, background ${BIG_RATE} Inform sessions/s paced (open loop) over ${background} devices; "with": a 2,000-parameter GetParameterValuesResponse session, then ${BIG_GAP} ms, again (decoded on a worker)`,
  );
  type Phase = { elMax: number; elP99: number; p50: number; p99: number; max: number; big: number };
  const phase = async (withBig: boolean): Promise<Phase> => {
    await proxy.ask('reset-el');
    let stop = false;
    let big = 0;
    const bigLoop = (async () => {
      while (withBig && !stop) {
        await bigSession(proxy.port, proxy, 'BIGDEV0000000');
        big++;
        await new Promise((r) => setTimeout(r, BIG_GAP));
      }
    })();
    const r = await pacedStorm(proxy.port, background, 'SN', BIG_RATE, BIG_SECONDS);
    stop = true;
    await bigLoop;
    const st = await proxy.ask('stats');
    return { elMax: st.elMax as number, elP99: st.elP99 as number, p50: q(r.lat, 0.5), p99: q(r.lat, 0.99), max: r.lat[r.lat.length - 1]!, big };
  };
  const show = (p: Phase): string =>
    `event-loop max ${fmt(p.elMax)} ms (p99 ${fmt(p.elP99)}), sessions p50 ${fmt(p.p50)} / p99 ${fmt(p.p99)} / max ${fmt(p.max)} ms${p.big ? `, ${p.big} big responses` : ''}`;
  const without: Phase[] = [];
  const withBig: Phase[] = [];
  for (let i = 0; i < BIG_ROUNDS; i++) {
    const busy = await idleCheck({ label: `stall round ${i + 1}` });
    dropIdleConnections();
    const order = i % 2 === 0 ? [false, true] : [true, false];
    const got = new Map<boolean, Phase>();
    for (const w of order) got.set(w, await phase(w));
    without.push(got.get(false)!);
    withBig.push(got.get(true)!);
    console.log(
      `  round ${i + 1} (${order[0] ? 'with, without' : 'without, with'}${busy === null ? '' : `, ${(busy * 100).toFixed(0)}% busy before`}): without: ${show(got.get(false)!)} | with: ${show(got.get(true)!)}`,
    );
  }
  const sum = (f: (p: Phase) => number): string => {
    const w = withBig.map(f);
    const o = without.map(f);
    const d = withBig.map((p, i) => f(p) - f(without[i]!));
    return `${fmt(median(w))} (${fmt(Math.min(...w))}-${fmt(Math.max(...w))}) with vs ${fmt(median(o))} (${fmt(Math.min(...o))}-${fmt(Math.max(...o))}) without, added ${fmt(median(d))} (${fmt(Math.min(...d))}-${fmt(Math.max(...d))})`;
  };
  console.log(`big-response stall, medians of ${BIG_ROUNDS} paired rounds (min-max): proxy's worst event-loop delay ${sum((p) => p.elMax)} ms`);
  console.log(
    `  background sessions' max latency ${sum((p) => p.max)} ms; p99 ${sum((p) => p.p99)} ms (target: a big response delays no other session by more than 10 ms)`,
  );
}

// ------------------------------------------------------------------ main

const fmt = (n: number, d = 1): string => n.toFixed(d);
const mb = (b: number): string => `${fmt(b / 1048576)} MiB`;

/**
 * RSS by kind (Linux /proc/self/smaps of the proxy child): the JS heap as V8 holds it, glibc's main
 * malloc heap (SQLite, socket buffers, V8's own allocations), other anonymous memory (the decode
 * worker's isolate, threads' malloc arenas, V8 pages outside the heap) and mapped files (code).
 */
interface RssKinds {
  v8: number;
  mallocMain: number;
  otherAnon: number;
  files: number;
}

function rssKinds(st: Record<string, unknown>, smaps: Record<string, number>): RssKinds {
  const v8 = st.heapTotal as number;
  const mallocMain = smaps['[heap]'] ?? 0;
  const anon = smaps['[anon]'] ?? 0;
  const files = Object.entries(smaps)
    .filter(([k]) => k.startsWith('/'))
    .reduce((n, [, v]) => n + v, 0);
  return { v8, mallocMain, otherAnon: anon - v8, files };
}

const subtractKinds = (a: RssKinds, b: RssKinds): RssKinds => ({
  v8: a.v8 - b.v8,
  mallocMain: a.mallocMain - b.mallocMain,
  otherAnon: a.otherAnon - b.otherAnon,
  files: a.files - b.files,
});

function describeKinds(k: RssKinds, per: number): string {
  const v = (b: number): string => (per === 1 ? mb(b) : `${fmt(b / per / 1024, 2)} KiB`);
  return `V8 heap held ${v(k.v8)}, glibc main heap ${v(k.mallocMain)}, other anonymous (threads' malloc arenas, V8 pages pooled, decode worker) ${v(k.otherAnon)}, files (code) ${v(k.files)}`;
}

interface Measured {
  st: Record<string, unknown>;
  kinds: RssKinds;
}

/** The proxy's memory after two forced collections, and its RSS by kind. */
async function measure(proxy: Child): Promise<Measured> {
  const st = await proxy.ask('stats', { gc: true });
  // Taken before any heap snapshot: writing one mallocs hundreds of MiB that glibc then keeps.
  return { st, kinds: rssKinds(st, (await proxy.ask('smaps')).by as Record<string, number>) };
}

/**
 * Waits `seconds` with the proxy idle: V8's memory reducer gives back the young generation grown
 * during a burst (32 MiB) some 10-20 s after allocation stops, which a forced GC does not do.
 */
async function settle(seconds: number): Promise<void> {
  await new Promise((r) => setTimeout(r, seconds * 1000));
  dropIdleConnections();
}

/** One memory figure: at `level` devices, against the empty process measured in the same state. */
function report(label: string, level: number, m: Measured, base: Measured, prev: { level: number; m: Measured } | null): void {
  const kb = (b: number, n = level): string => fmt(b / n / 1024, 2);
  const d = (k: string, a: Measured = m, b: Measured = base): number => (a.st[k] as number) - (b.st[k] as number);
  console.log(
    `  ${label}: RSS ${mb(m.st.rss as number)} = ${kb(m.st.rss as number)} KiB per device all told; above the empty process (${mb(base.st.rss as number)} RSS, ${mb(base.st.heapUsed as number)} JS heap) ${kb(d('rss'))} KiB RSS and ${kb(d('heapUsed'))} KiB JS heap per device`,
  );
  // Where RSS above the empty process goes (V8's heap, glibc's main heap, threads' arenas, code).
  console.log(`    RSS per device above the empty process, by kind: ${describeKinds(subtractKinds(m.kinds, base.kinds), level)}`);
  // Per device added since the previous level: the one-time costs of the first devices (code
  // compiled, caches and pools created, bounded tables filled) are not in it.
  if (prev)
    console.log(
      `    per device added from ${prev.level} to ${level} devices: ${kb(d('heapUsed', m, prev.m), level - prev.level)} KiB JS heap, ${kb(d('rss', m, prev.m), level - prev.level)} KiB RSS`,
    );
}

/** Devices registered through sessions, each asked once over USP, then RSS after GC. */
async function memoryPerDevice(levels: number[]): Promise<void> {
  if (levels.length === 0) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bench-mem-'));
  // The proxy with its USP side on (WebSocket only, no broker): `usp <dir> <mqtt> <stomp> <port>`.
  const proxy = await startChild(['usp', dir, '', '', '61613']);
  try {
    const base = await measure(proxy);
    console.log(`  the empty process, just started: RSS ${mb(base.st.rss as number)}, ${describeKinds(base.kinds, 1)}`);
    let baseSettled = base;
    if (SETTLE > 0) {
      await settle(SETTLE);
      baseSettled = await measure(proxy);
      console.log(`  the empty process, ${SETTLE} s idle: RSS ${mb(baseSettled.st.rss as number)}, ${describeKinds(baseSettled.kinds, 1)}`);
    }
    let prevSnapshot = values['heap-snapshot'] ? ((await proxy.ask('heap-snapshot', { dir: values['heap-snapshot'] })).file as string) : '';
    const { wsPort } = await proxy.ask('ws-port');
    const client = new UspControllerClient({
      agentId: 'os::00BEEF-MEM0000000',
      endpointId: 'proto::bench-ctl',
      transport: { mtp: 'ws', url: `ws://127.0.0.1:${wsPort}/usp`, shared: true },
    });
    await client.connect();
    let registered = 0;
    let prev: { level: number; m: Measured } | null = null;
    let prevSettled: { level: number; m: Measured } | null = null;
    let failed = 0;
    for (const level of [...levels].sort((a, b) => a - b)) {
      if (level <= registered) continue;
      const reg = await storm(proxy.port, level - registered, 'MEM', CONCURRENCY, 0, registered);
      // Each new device's agent answers one USP Get (32 in flight) so that its agent state exists.
      let next = registered;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < level) {
            const serial = `MEM${String(next++).padStart(7, '0')}`;
            const eid = endpointIdOf({ manufacturer: 'BenchCo', oui: OUI, productClass: 'StormBox', serialNumber: serial }, 'os');
            const r = await client.request(getMsg(['Device.LocalAgent.EndpointID']), 10_000, eid).catch((e: Error) => e);
            if (r instanceof Error || r.body.msgBody !== 'response') {
              if (failed++ === 0) console.log(`  first failed Get (${eid}): ${r instanceof Error ? r.message : JSON.stringify(r.body).slice(0, 300)}`);
            }
          }
        }),
      );
      const from = registered;
      registered = level;
      const m = await measure(proxy);
      console.log(
        `memory with ${m.st.devices} devices registered through CWMP sessions (${fmt(reg.rate, 0)} registrations/s, load average ${os.loadavg()[0]!.toFixed(1)}) and each asked once over USP (${failed} Gets failed), after GC (target <= 2 KiB per device all told at 10,000):`,
      );
      report('right after', level, m, base, prev);
      if (process.env.BENCH_SMAPS) console.log('  smaps', JSON.stringify((await proxy.ask('smaps')).by));
      prev = { level, m };
      if (SETTLE > 0) {
        await settle(SETTLE);
        const ms = await measure(proxy);
        report(`after ${SETTLE} s idle`, level, ms, baseSettled, prevSettled);
        prevSettled = { level, m: ms };
      }
      if (values['heap-snapshot']) {
        const file = (await proxy.ask('heap-snapshot', { dir: values['heap-snapshot'] })).file as string;
        console.log(`  heap snapshot: ${file}`);
        // Who keeps what each added device costs: the holders that grew, per device added.
        if (prevSnapshot)
          for (const g of heapGrowth(prevSnapshot, file, 8))
            console.log(`    ${fmt(g.grew / (level - from), 0).padStart(5)} B/device (${mb(g.now)} now) ${g.holder}`);
        prevSnapshot = file;
      }
    }
    await client.close();
  } finally {
    await stopChild(proxy);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(
    `# inform-storm: ${DEVICES} devices, concurrency ${CONCURRENCY}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)}`,
  );
  console.log(
    '# workload: full session per device = Inform (20 params, ~5 KB) -> InformResponse -> empty POST -> 204; load generator in a separate process from the server',
  );

  if (values['memory-only']) return memoryPerDevice(MEMORY);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bench-'));
  try {
    // Both servers live for the whole comparison; only one is loaded at a time.
    const [bare, proxy] = await Promise.all([startChild(['bare']), startChild(['proxy', dir])]);
    await idleCheck({ label: 'registration' });
    await proxy.ask('reset-el');
    const p = await storm(proxy.port, DEVICES, 'SN'); // first sessions: registration (insert)
    const s1 = await proxy.ask('stats');
    console.log(
      `proxy, first Inform of each of ${DEVICES} devices (registers it): ${fmt(p.rate, 0)} sessions/s, p50 ${fmt(p.p50)} ms, p99 ${fmt(p.p99)} ms, event-loop delay p99 ${fmt(s1.elP99 as number)} ms, RSS ${mb(s1.rss as number)}`,
    );
    await storm(bare.port, Math.min(1000, DEVICES), 'WARM'); // JIT warm-up of the baseline

    const show = (r: StormResult): string => `${fmt(r.rate, 0)} sessions/s (${r.sessions} in ${fmt(r.seconds)} s), p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms`;
    await paired<StormResult>({
      title: `Inform sessions, known devices, concurrency ${CONCURRENCY}, ${SECONDS} s per run after ${WARM_S} s unmeasured`,
      rounds: ROUNDS,
      // Each run after WARM_S unmeasured: steady state is compared. While the other side runs the
      // proxy gets no body, and after acs.parseWorkerIdleMs (10 s: two rounds of the other side
      // in a row) its decode worker stops; the next one starts cold (about 230 ms more for its first
      // 200 bodies), a burst's start-up, not the throughput the target is about.
      a: {
        label: 'proxy',
        run: () => storm(proxy.port, DEVICES, 'SN', CONCURRENCY, WARM_S).then(() => storm(proxy.port, DEVICES, 'SN', CONCURRENCY, SECONDS)),
      },
      b: {
        label: 'bare node:http + same parser',
        run: () => storm(bare.port, DEVICES, 'SN', CONCURRENCY, WARM_S).then(() => storm(bare.port, DEVICES, 'SN', CONCURRENCY, SECONDS)),
      },
      value: (r) => r.rate,
      show,
    });
    console.log('(targets: ratio >= 0.9 (issue 22); proxy >= 1,500 sessions/s)');
    await stopChild(bare);

    // 2,000-parameter GetParameterValuesResponses arriving mid-storm. A saturated server's
    // event-loop delay measures queueing, not stalls, so this runs a steady background load
    // (concurrency 8) and compares the worst event-loop delay without and with big responses.
    if (BIG > 0) {
      await storm(proxy.port, 1, 'BIGDEV'); // register the big device
      // Alone first: with nothing else to do, the worst event-loop delay is the longest stretch of
      // main-thread work one big response causes (no queueing behind other sessions).
      await proxy.ask('reset-el');
      const aloneLat: number[] = [];
      for (let i = 0; i < BIG; i++) aloneLat.push(await bigSession(proxy.port, proxy, 'BIGDEV0000000'));
      const alone = await proxy.ask('stats');
      console.log(
        `event-loop delay with ${BIG} x 2,000-parameter GetParameterValuesResponse one after another and no other load: max ${fmt(alone.elMax as number)} ms, p99 ${fmt(alone.elP99 as number)} ms (the longest main-thread stretch one big response causes); big session latency p50 ${fmt(aloneLat.sort((x, y) => x - y)[Math.floor(aloneLat.length / 2)]!)} ms`,
      );
      if (BIG_ROUNDS > 0) await bigStallRounds(proxy, Math.min(DEVICES, 4000));
    }
    await stopChild(proxy);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await memoryPerDevice(MEMORY);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
