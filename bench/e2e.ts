/**
 * End-to-end benchmark (npm run bench:e2e): USP controller -> proxy -> CWMP simulator and back,
 * all in ONE process (proxy, simulated CPE and controller share the event loop, so every figure
 * is conservative). Prints one line per figure with its workload:
 *  - USP Get round trips/s and p50/p99 for a device kept in its CWMP session (K Gets in flight
 *    on one device: the ACS always has the next GetParameterValues queued, so the session stays
 *    open), and for idle devices woken by a connection request (each Get to a different device);
 *  - the proxy's added latency per Get on the in-session device: controller round trip minus the
 *    time the Get's CWMP RPC spent queued and at the CPE, plus the ACS turn that sent it;
 *  - bytes on the wire for the same Get: USP Records against the CWMP envelopes it took.
 * Instruments: the session engine's enqueue (timing wrapper on the instance), its rpcResult
 * event, and the simulator's HTTP client (timing/byte-counting wrapper on CpeHttpClient.post).
 *  - idle-device Gets with the simulator in a separate process (`simulate` CLI, strict quirks):
 *    `--idle-devices` devices, each Get to a device not in session, `--idle-inflight` in flight,
 *    `--idle-rounds` passes over all of them; Gets/s, round trip, and where the time went; the
 *    controller in its own process (bench/e2e-controller.ts) unless `--idle-controller inproc`.
 *   node dist/bench/e2e.js [--quick] [--devices N] [--seconds S] [--inflight K]
 *     [--idle-devices N] [--idle-inflight K] [--idle-rounds R] [--idle-only]
 *  - `--pair DIR`: the idle-device part as paired rounds (A B, B A, ...) of this build (A) against
 *    another built checkout (B: DIR/dist/bench/e2e.js), each side a fresh `--idle-only` process;
 *    `--pair-rounds N`, `--a-config` / `--b-config '{"key":value}'` (BENCH_PROXY_CONFIG per side).
 */
import { fork, spawn } from 'node:child_process';
import inspector from 'node:inspector/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/app/config.js';
import { silentLogger } from '../src/app/log.js';
import { CwmpUspProxy } from '../src/app/proxy.js';
import { Fleet } from '../src/tools/sim/fleet.js';
import { CpeHttpClient } from '../src/tools/sim/http-client.js';
import type { DeviceRecord } from '../src/store/types.js';
import { deviceKeyOf } from '../src/cwmp/device-id.js';
import { idleCheck, median, paired } from './paired.js';
import { encodeRecord, noSessionRecord, type Msg } from '../src/usp/codec/record.js';
import { UspControllerClient, get as getMsg } from '../src/tools/controller/client.js';
import { STRICT_SIM } from '../test/helpers/sim.js';
import type { PassCommand, PassResult } from './e2e-controller.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    devices: { type: 'string' },
    seconds: { type: 'string' },
    inflight: { type: 'string', default: '4' },
    // Idle-device Gets with the simulator in its own process (item 5 of issue 22).
    'idle-devices': { type: 'string' },
    'idle-inflight': { type: 'string', default: '32' },
    'idle-rounds': { type: 'string', default: '3' },
    // Unmeasured passes first: the first teaches each device's names, the next ones let the JIT
    // settle (a third pass ran 20-30% less CPU per Get than the first measured one after one).
    'idle-warmup': { type: 'string', default: '2' },
    'idle-only': { type: 'boolean', default: false },
    // A V8 CPU profile of this process (proxy + controller) over the measured idle passes, into this folder.
    'idle-cpu-prof': { type: 'string', default: '' },
    // The same for the simulator process (node --cpu-prof over its whole life, written at exit).
    'idle-sim-prof': { type: 'string', default: '' },
    // Simulator processes sharing the idle fleet (each serves IDLE_DEVICES / N devices).
    'idle-sims': { type: 'string', default: '1' },
    // Where the idle passes' controller runs: 'process' (its own, as deployed) or 'inproc' (this
    // process, sharing the proxy's event loop: the figures before 2026-12-06).
    'idle-controller': { type: 'string', default: 'process' },
    // Paired rounds of the idle-device part against another build (see the module comment).
    pair: { type: 'string', default: '' },
    'pair-rounds': { type: 'string', default: '4' },
    'a-config': { type: 'string', default: '' },
    'b-config': { type: 'string', default: '' },
  },
});
if (values.pair) {
  await pairedIdle();
  process.exit(0);
}

/** One side's idle-only run: the median of its passes (Gets/s, main thread and proxy process CPU per Get). */
interface IdleRun {
  rate: number;
  /** Main thread busy (event-loop utilisation) per Get; on a CPU, and waiting for one (schedstat). */
  mainUs: number;
  onCpuUs: number;
  waitUs: number;
  procUs: number;
  passes: number;
}

async function pairedIdle(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const other = path.resolve(values.pair!, 'dist/bench/e2e.js');
  const forward = ['idle-devices', 'idle-inflight', 'idle-rounds', 'idle-warmup', 'idle-sims', 'idle-controller'] as const;
  const args = ['--idle-only', ...forward.flatMap((k) => (values[k] !== undefined ? [`--${k}`, String(values[k])] : []))];
  const run = (file: string, config: string): Promise<IdleRun> =>
    new Promise((resolve, reject) => {
      const env = { ...process.env };
      if (config) env.BENCH_PROXY_CONFIG = config;
      else delete env.BENCH_PROXY_CONFIG;
      const child = spawn(process.execPath, [file, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      child.on('error', reject);
      child.on('exit', (code) => {
        const passes = [
          ...out.matchAll(
            /idle pass \d+: (\d+) Gets\/s.*?proxy(?: \+ controller)? process (\d+) us .*?main thread \d+% busy: (\d+) us per Get, on a CPU (\d+) us per Get, waiting for one (\d+) us/g,
          ),
        ];
        if (code !== 0 || passes.length === 0) return reject(new Error(`${file} exited ${code}:\n${out.slice(-2000)}`));
        resolve({
          rate: median(passes.map((m) => Number(m[1]))),
          procUs: median(passes.map((m) => Number(m[2]))),
          mainUs: median(passes.map((m) => Number(m[3]))),
          onCpuUs: median(passes.map((m) => Number(m[4]))),
          waitUs: median(passes.map((m) => Number(m[5]))),
          passes: passes.length,
        });
      });
    });
  const show = (r: IdleRun): string =>
    `${r.rate.toFixed(0)} Gets/s, main thread busy ${r.mainUs.toFixed(0)} / on a CPU ${r.onCpuUs.toFixed(0)} / waiting ${r.waitUs.toFixed(0)} us per Get, proxy process ${r.procUs.toFixed(0)} us/Get`;
  const res = await paired<IdleRun>({
    title: `idle-device Gets, paired (${args.join(' ')}; each side a fresh process, median of its passes)`,
    rounds: Math.max(1, Number(values['pair-rounds'])),
    a: { label: `this build${values['a-config'] ? ` ${values['a-config']}` : ''}`, run: () => run(self, values['a-config']!) },
    b: { label: `${values.pair}${values['b-config'] ? ` ${values['b-config']}` : ''}`, run: () => run(other, values['b-config']!) },
    value: (r) => r.rate,
    show,
  });
  // CPU per Get: lower is better, so its ratio is read as A/B < 1 = A cheaper.
  const ratioLine = (what: string, f: (r: IdleRun) => number): string => {
    const xs = res.a.map((a, i) => f(a) / f(res.b[i]!));
    return `${what} A/B median ${median(xs).toFixed(2)} (min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}), medians A ${median(res.a.map(f)).toFixed(0)} us, B ${median(res.b.map(f)).toFixed(0)} us`;
  };
  console.log(
    `per idle Get: ${ratioLine('main thread on a CPU', (r) => r.onCpuUs)}; ${ratioLine('main thread busy (event-loop utilisation)', (r) => r.mainUs)}; ${ratioLine('proxy process CPU', (r) => r.procUs)}; load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
}
const QUICK = values.quick;
const IDLE_ONLY = values['idle-only'];
const IDLE_DEVICES = Number(values['idle-devices'] ?? (QUICK ? 200 : 1000));
const IDLE_INFLIGHT = Number(values['idle-inflight']);
const IDLE_ROUNDS = Number(values['idle-rounds']);
const CTL_PROCESS = values['idle-controller'] === 'process';
if (!['process', 'inproc'].includes(values['idle-controller']!)) throw new Error('--idle-controller is process or inproc');
const DEVICES = values['idle-only'] ? 1 : Number(values.devices ?? (QUICK ? 60 : 400));
const SECONDS = Number(values.seconds ?? (QUICK ? 3 : 15));
const K = Number(values.inflight);
const CTL = 'proto::bench-e2e';
const PARAMS = ['SoftwareVersion', 'HardwareVersion', 'Manufacturer', 'ModelName', 'SerialNumber', 'ProductClass', 'ManufacturerOUI', 'Description'].map(
  (p) => `Device.DeviceInfo.${p}`,
);
if (!(K >= 1 && K <= PARAMS.length)) throw new Error(`--inflight must be 1..${PARAMS.length}`);

// ---- instruments -------------------------------------------------------------------------------

interface PostRec {
  t0: number;
  t1: number;
  sent: string;
  got: string;
}
let posts: PostRec[] = [];
const origPost = CpeHttpClient.prototype.post;
CpeHttpClient.prototype.post = async function (this: CpeHttpClient, body: string) {
  const t0 = performance.now();
  const res = await origPost.call(this, body);
  posts.push({ t0, t1: performance.now(), sent: body, got: res.body });
  return res;
};

const q = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (x: number): string => (x < 10 ? x.toFixed(2) : x.toFixed(1));
const lat = (xs: number[]): string => `p50 ${ms(q(xs, 50))} ms, p99 ${ms(q(xs, 99))} ms`;
const B = (s: string): number => Buffer.byteLength(s);
const methodOf = (xml: string): string => (xml === '' ? '(empty)' : (/<cwmp:([A-Za-z]+)[\s>]/.exec(xml.slice(xml.indexOf('Body')))?.[1] ?? '?'));

function check(m: Msg): void {
  if (m.body.error) throw new Error(`USP Error ${m.body.error.errCode}: ${m.body.error.errMsg}`);
  const r = m.body.response?.getResp?.reqPathResults[0];
  if (!r || r.errCode || r.resolvedPathResults.length === 0) throw new Error(`Get failed: ${JSON.stringify(m.body)}`);
}

// ---- setup -------------------------------------------------------------------------------------

const cpu = os.cpus();
console.log(
  `e2e bench on ${cpu.length} x ${cpu[0]?.model.trim() ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, ${os.platform()}; ` +
    `proxy + ${DEVICES} simulated TR-181 CPE + USP controller (WebSocket MTP) in ONE process${QUICK ? ' (--quick)' : ''}; idle passes: simulator and (--idle-controller process) controller in their own processes`,
);
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bench-e2e-'));
const config = loadConfig({
  env: {},
  overrides: {
    dataDir: dir,
    'acs.host': '127.0.0.1',
    'acs.port': 0,
    'usp.websocket.host': '127.0.0.1',
    'usp.websocket.port': 0,
    'usp.mqtt.url': '',
    'usp.stomp.host': '',
    'log.level': 'silent',
    controllers: [{ endpointId: CTL, role: 'full' }],
    // The bench controller measures throughput: lift its request budget (default 100/s). The
    // simulated fleet shares one address, where real CPEs have one each: lift the connection
    // requests per target address (default 200/s) likewise.
    'usp.requestRatePerController': 1_000_000,
    'usp.requestBurstPerController': 1_000_000,
    'acs.connectionRequest.perAddressPerSecond': 1_000_000,
    // The OnBoardRequests of the idle fleet's bootstrap (sent before the controller connects) are
    // retried soon and answered before the measured passes, which then carry Gets only.
    'usp.notifRetryMinWaitS': 1,
    // Extra settings for an experiment, as JSON (e.g. BENCH_PROXY_CONFIG='{"acs.workerThresholdBytes":0}').
    ...(process.env.BENCH_PROXY_CONFIG ? (JSON.parse(process.env.BENCH_PROXY_CONFIG) as Record<string, unknown>) : {}),
  },
});
const proxy = new CwmpUspProxy(config, silentLogger());
await proxy.start();
const wsUrl = `ws://127.0.0.1:${proxy.usp.ws!.serverAddress()!.port}/usp`;
const fleet = new Fleet({
  quirks: STRICT_SIM,
  acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
  count: DEVICES,
  model: 'tr181',
  serialPrefix: 'BE2E',
  periodicIntervalS: null,
});
await fleet.start();
const devices = (await proxy.store.listDevices({ limit: DEVICES + 10 })).sort((a, b) => (a.endpointId < b.endpointId ? -1 : 1));
if (devices.length !== DEVICES) throw new Error(`${devices.length} of ${DEVICES} devices registered`);

// One shared-path WebSocket per controller client would route by to_id; one connection per agent
// is what the CLI does and what a controller with per-agent URLs does.
const clients = new Map<string, UspControllerClient>();
async function client(d: DeviceRecord): Promise<UspControllerClient> {
  let c = clients.get(d.endpointId);
  if (!c) {
    c = new UspControllerClient({ agentId: d.endpointId, endpointId: CTL, transport: { mtp: 'ws', url: wsUrl }, timeoutMs: 60_000 });
    clients.set(d.endpointId, c);
    await c.connect();
  }
  return c;
}
const idle = async (): Promise<void> => {
  while (proxy.engine.activeSessions > 0) await new Promise((r) => setTimeout(r, 20));
};

// Enqueue timing (the backend calls proxy.engine.enqueue at call time, so an own property wins).
interface EnqRec {
  param: string;
  tCall: number;
  tDone: number;
}
let enqs: EnqRec[] = [];
const origEnqueue = proxy.engine.enqueue.bind(proxy.engine);
proxy.engine.enqueue = async (key, rpc, opts) => {
  const r: EnqRec = { param: rpc.method === 'GetParameterValues' ? (rpc.parameterNames[0] ?? '') : rpc.method, tCall: performance.now(), tDone: NaN };
  enqs.push(r);
  try {
    return await origEnqueue(key, rpc, opts);
  } finally {
    r.tDone = performance.now();
  }
};
const rpcCounts = new Map<string, number>();
proxy.engine.on('rpcResult', ({ rpc }) => rpcCounts.set(rpc.method, (rpcCounts.get(rpc.method) ?? 0) + 1));
let sessionEnds = 0;
proxy.engine.on('sessionEnd', () => sessionEnds++);

// Warm-up: every device answers each benchmarked path once (learned types, instance cache).
if (!IDLE_ONLY) {
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < devices.length) {
        const d = devices[next++]!;
        const c = await client(d);
        check(await c.request(getMsg(d === devices[0] ? PARAMS : [PARAMS[0]!])));
      }
    }),
  );
  const c0 = await client(devices[0]!);
  for (const p of PARAMS) check(await c0.request(getMsg([p])));
  await idle();
}

// ---- 1. a device kept in session ---------------------------------------------------------------
if (!IDLE_ONLY) {
  const dev = devices[0]!;
  const sim = fleet.device(dev.deviceId.serialNumber)!;
  const c = await client(dev);
  posts = [];
  enqs = [];
  sessionEnds = 0;
  const cr0 = sim.stats.connectionRequests;
  interface GetRec {
    param: string;
    t0: number;
    t1: number;
  }
  const gets: GetRec[] = [];
  const end = performance.now() + SECONDS * 1000;
  const tStart = performance.now();
  await Promise.all(
    PARAMS.slice(0, K).map(async (param) => {
      // One worker per parameter: at most one Get per path in flight, so every enqueue and every
      // GetParameterValues on the wire is matched to its Get exactly.
      while (performance.now() < end) {
        const g: GetRec = { param, t0: performance.now(), t1: 0 };
        check(await c.request(getMsg([param])));
        g.t1 = performance.now();
        gets.push(g);
      }
    }),
  );
  const wall = (performance.now() - tStart) / 1000;
  await idle();
  const rtt = gets.map((g) => g.t1 - g.t0);
  console.log(
    `USP Get, device in session: ${gets.length} Gets in ${wall.toFixed(1)} s = ${Math.round(gets.length / wall)} Gets/s, round trip ${lat(rtt)} ` +
      `(${K} Gets in flight on one device, each a GetParameterValues of 1 parameter; ${sessionEnds} CWMP session(s), ${sim.stats.connectionRequests - cr0} connection request(s): ` +
      `the session ends only when the pipeline drains)`,
  );

  // Match each Get to its enqueue and to the ACS turn (CPE POST -> next ACS request) that carried its GPV.
  const enqBy = new Map<string, EnqRec[]>();
  for (const e of enqs) (enqBy.get(e.param) ?? enqBy.set(e.param, []).get(e.param)!).push(e);
  const turnsBy = new Map<string, number[]>();
  const cpeOwn: number[] = [];
  for (let i = 0; i < posts.length; i++) {
    const p = posts[i]!;
    const m = /GetParameterValues>[\s\S]*?<string>([^<]+)<\/string>/.exec(p.got);
    if (m && !p.got.includes('GetParameterValuesResponse')) (turnsBy.get(m[1]!) ?? turnsBy.set(m[1]!, []).get(m[1]!)!).push(p.t1 - p.t0);
    const nx = posts[i + 1];
    if (nx && m) cpeOwn.push(nx.t0 - p.t1);
  }
  const added: number[] = [];
  const uspSide: number[] = [];
  const acsTurn: number[] = [];
  const byParam = new Map<string, GetRec[]>();
  for (const g of [...gets].sort((a, b) => a.t0 - b.t0)) (byParam.get(g.param) ?? byParam.set(g.param, []).get(g.param)!).push(g);
  let unmatched = 0;
  for (const [param, gs] of byParam) {
    const es = enqBy.get(param) ?? [];
    const ts = turnsBy.get(param) ?? [];
    gs.forEach((g, i) => {
      const e = es[i];
      const t = ts[i];
      if (!e || t === undefined || e.tCall < g.t0 || e.tDone > g.t1) {
        unmatched++;
        return;
      }
      const u = g.t1 - g.t0 - (e.tDone - e.tCall);
      uspSide.push(u);
      acsTurn.push(t);
      added.push(u + t);
    });
  }
  console.log(
    `proxy added latency per Get, device in session: ${lat(added)} (target p50 < 1 ms) = USP side ${lat(uspSide)} ` +
      `[round trip - enqueue..resolve: WS hops, Record codec, path resolution, response; includes the in-process controller] ` +
      `+ ACS turn ${lat(acsTurn)} [CPE POSTs its response .. receives the next GetParameterValues: ACS decode, settle, encode, loopback HTTP]; ` +
      `CPE's own time per RPC ${lat(cpeOwn)} excluded; ${added.length} Gets matched${unmatched ? `, ${unmatched} not` : ''}`,
  );
}

// ---- 2. idle devices woken by a connection request ---------------------------------------------
async function idleRun(list: DeviceRecord[], inflight: number): Promise<{ rtt: number[]; wall: number; cr: number; rpcs: string }> {
  await idle();
  const cr0 = fleet.totals().connectionRequests;
  rpcCounts.clear();
  const rtt: number[] = [];
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (next < list.length) {
        const d = list[next++]!;
        const c = await client(d);
        const t0 = performance.now();
        check(await c.request(getMsg([PARAMS[0]!])));
        rtt.push(performance.now() - t0);
      }
    }),
  );
  const wall = (performance.now() - t) / 1000;
  const rpcs = [...rpcCounts].map(([m, n]) => `${m} x${(n / list.length).toFixed(2)}`).join(', ');
  return { rtt, wall, cr: fleet.totals().connectionRequests - cr0, rpcs };
}
if (!IDLE_ONLY) {
  const rest = devices.slice(1);
  const nSeq = Math.min(QUICK ? 20 : 50, Math.floor(rest.length / 3));
  const seq = await idleRun(rest.slice(0, nSeq), 1);
  console.log(
    `USP Get, idle device woken by a connection request, one at a time: ${Math.round(seq.rtt.length / seq.wall)} Gets/s, round trip ${lat(seq.rtt)} ` +
      `(${seq.rtt.length} Gets, each to a different idle device; ${seq.cr} connection requests; CWMP per Get: Inform + ${seq.rpcs} + empty POST/204)`,
  );
  const par = await idleRun(rest.slice(nSeq), 16);
  console.log(
    `USP Get, idle devices woken by connection requests, 16 in flight: ${Math.round(par.rtt.length / par.wall)} Gets/s, round trip ${lat(par.rtt)} ` +
      `(${par.rtt.length} Gets, each to a different idle device; ${par.cr} connection requests)`,
  );
}

// ---- 3. bytes on the wire for the same Get ------------------------------------------------------
if (!IDLE_ONLY) {
  await idle();
  const d = devices[devices.length - 1]!;
  const c = await client(d);
  posts = [];
  const req = { ...getMsg([PARAMS[0]!]), header: { msgId: c.nextMsgId(), msgType: 'GET' as const } };
  const resp = await c.request(req);
  check(resp);
  await idle();
  const uspReq = encodeRecord(noSessionRecord(CTL, d.endpointId, req)).length;
  const uspResp = encodeRecord(noSessionRecord(d.endpointId, CTL, resp)).length;
  let rpcBytes = 0;
  let sessionBytes = 0;
  const parts: string[] = [];
  for (const p of posts) {
    sessionBytes += B(p.sent) + B(p.got);
    parts.push(`${methodOf(p.sent)} ${B(p.sent)} -> ${methodOf(p.got)} ${B(p.got)}`);
    if (methodOf(p.got) === 'GetParameterValues') rpcBytes += B(p.got);
    if (methodOf(p.sent) === 'GetParameterValuesResponse') rpcBytes += B(p.sent);
  }
  console.log(
    `bytes for one Get of ${PARAMS[0]}: USP ${uspReq + uspResp} B (Record request ${uspReq} + response ${uspResp}) vs CWMP ${rpcBytes} B ` +
      `(GetParameterValues + GetParameterValuesResponse envelopes, ${(rpcBytes / (uspReq + uspResp)).toFixed(1)}x); the whole CWMP session that woke the idle device ` +
      `${sessionBytes} B [${parts.join('; ')}]; HTTP headers and the connection request GET not counted`,
  );
}

// ---- 4. idle devices, simulator in its own process -------------------------------------------------
/** CPU time (user + system, ms) of another process, from /proc; NaN where there is no /proc. */
function procCpuMs(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in USER_HZ (100)
  } catch {
    return NaN;
  }
}
/**
 * This process's main thread: time on a CPU and time runnable but waiting for one (ns, from
 * /proc/<pid>/task/<pid>/schedstat); null where there is no /proc. On a shared machine the
 * event-loop utilisation counts the waits as busy; the time on CPU is the thread's own cost.
 */
function mainThreadSched(): { runNs: number; waitNs: number } | null {
  try {
    const [run, wait] = readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number);
    return { runNs: run!, waitNs: wait! };
  } catch {
    return null;
  }
}
/** Where one idle-device Get spent its time: timestamps (performance.now) along its way. */
interface Stages {
  /** The controller sent the Get. */
  tU: number;
  /** The proxy queued the GetParameterValues (SessionEngine.enqueue called). */
  tE?: number;
  /** The connection request was handed to the requester, and its answer came. */
  tC0?: number;
  tC1?: number;
  /** The CPE's TCP connection was accepted, the Inform's request headers were parsed, and the Inform reached the engine (decoded). */
  tK?: number;
  tH?: number;
  tI?: number;
  /** The GetParameterValues left in the answer to the CPE's empty POST. */
  tG?: number;
  /** Its answer settled the enqueue; the controller had the USP response. */
  tA?: number;
  tR?: number;
  /** The CWMP session ended (204 to the CPE's empty POST, after the linger if any). */
  tS?: number;
}
if (IDLE_DEVICES > 0) {
  const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/app/cli.js');
  const nSims = Math.max(1, Number(values['idle-sims']));
  const simProf = values['idle-sim-prof'];
  const sims = Array.from({ length: nSims }, (_, i) =>
    spawn(
      process.execPath,
      [
        ...(simProf ? ['--cpu-prof', `--cpu-prof-dir=${simProf}`] : []),
        cli,
        'simulate',
        '--acs',
        `http://127.0.0.1:${proxy.acsPort}/`,
        '--count',
        String(Math.floor(IDLE_DEVICES / nSims) + (i < IDLE_DEVICES % nSims ? 1 : 0)),
        '--serial-prefix',
        `BIDL${i}X`,
        '--periodic',
        '0',
        '--quirks',
        'strict',
        '--concurrency',
        '100',
        '--status-interval',
        '0',
        '--no-progress',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    ),
  );
  let simErr = '';
  for (const sim of sims)
    sim.stderr!.on('data', (b: Buffer) => {
      if (simErr.length < 4000) simErr += b.toString();
    });
  try {
    const isIdleDev = (d: DeviceRecord): boolean => d.deviceId.serialNumber.startsWith('BIDL');
    let list: DeviceRecord[] = [];
    for (let i = 0; i < 600 && list.length < IDLE_DEVICES; i++) {
      await new Promise((r) => setTimeout(r, 100));
      list = (await proxy.store.listDevices({ limit: DEVICES + IDLE_DEVICES + 10 })).filter(isIdleDev);
    }
    if (list.length < IDLE_DEVICES) throw new Error(`${list.length} of ${IDLE_DEVICES} simulated devices registered; simulator said: ${simErr}`);
    // Interleave the simulators' devices, so that every pass loads them alike.
    list.sort((a, b) => {
      const [x, y] = [a.deviceId.serialNumber, b.deviceId.serialNumber].map((s) => s.replace(/^BIDL\d+X/, ''));
      return x! < y! ? -1 : x! > y! ? 1 : a.deviceId.serialNumber < b.deviceId.serialNumber ? -1 : 1;
    });
    await idle();
    // One controller connection on the shared path, routing by to_id (as a controller with many
    // agents does): in its own process (--idle-controller process) or in this one.
    const shared = CTL_PROCESS
      ? null
      : new UspControllerClient({ agentId: list[0]!.endpointId, endpointId: CTL, transport: { mtp: 'ws', url: wsUrl, shared: true }, timeoutMs: 60_000 });
    await shared?.connect();
    const ctlChild = CTL_PROCESS
      ? fork(path.join(path.dirname(fileURLToPath(import.meta.url)), 'e2e-controller.js'), [wsUrl, CTL, list[0]!.endpointId], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
      : null;
    const fromCtl = (): Promise<unknown> =>
      new Promise((resolve, reject) => {
        const onExit = (code: number | null): void => reject(new Error(`the controller process exited (${code})`));
        ctlChild!.once('exit', onExit);
        ctlChild!.once('message', (m) => {
          ctlChild!.off('exit', onExit);
          resolve(m);
        });
      });
    if (ctlChild) await fromCtl();
    const onboarding = proxy.usp.notifier.pendingCount;
    for (let i = 0; i < 300 && proxy.usp.notifier.pendingCount > 0; i++) await new Promise((r) => setTimeout(r, 100));
    console.log(
      `  ${onboarding} OnBoardRequest Notify(s) of the fleet's bootstrap retried to the controller before the passes; ${proxy.usp.notifier.pendingCount} still unanswered`,
    );

    // Stage timestamps of the measured passes, by device key (each Get goes to a different device).
    let stages: Map<string, Stages> | null = null;
    const at = (key: string): Stages | undefined => stages?.get(key);
    const enqueue0 = proxy.engine.enqueue;
    proxy.engine.enqueue = async (key, rpc, opts) => {
      const st = at(key);
      if (st && st.tE === undefined) st.tE = performance.now();
      const r = await enqueue0(key, rpc, opts);
      if (st) st.tA = performance.now();
      return r;
    };
    const connReq0 = proxy.connReq.request.bind(proxy.connReq);
    proxy.connReq.request = (key, url, creds) => {
      const st = at(key);
      if (st) st.tC0 = performance.now();
      return connReq0(key, url, creds).then((r) => {
        if (st) st.tC1 = performance.now();
        return r;
      });
    };
    let peakSessions = 0;
    const onEnd = ({ deviceKey }: { deviceKey: string }): void => {
      const st = at(deviceKey);
      if (st && st.tS === undefined) st.tS = performance.now();
    };
    proxy.engine.on('sessionEnd', onEnd);
    // When the ACS accepted each connection and parsed its latest request's headers.
    const accepted = new WeakMap<object, number>();
    const headed = new WeakMap<object, number>();
    const onConn = (sock: object): void => void accepted.set(sock, performance.now());
    // ACS HTTP exchanges per Get, by status (a 401 is a Digest round trip more).
    const acsStatus = new Map<number, number>();
    const onReq = (req: { socket: object }, res: { statusCode: number; once(e: 'finish', f: () => void): void }): void => {
      headed.set(req.socket, performance.now());
      if (countStore) res.once('finish', () => acsStatus.set(res.statusCode, (acsStatus.get(res.statusCode) ?? 0) + 1));
    };
    proxy.acs.server.prependListener('connection', onConn);
    proxy.acs.server.prependListener('request', onReq);
    const handle0 = proxy.engine.handle.bind(proxy.engine);
    proxy.engine.handle = async (post) => {
      const body = post.envelope?.body;
      if (stages && body?.method === 'Inform') {
        peakSessions = Math.max(peakSessions, proxy.engine.activeSessions + 1);
        const st = at(deviceKeyOf(body.deviceId));
        if (st) {
          st.tI = performance.now();
          st.tK = accepted.get(post.connection);
          st.tH = headed.get(post.connection);
        }
        return handle0(post);
      }
      const reply = await handle0(post);
      if (stages && reply.body.includes('GetParameterValues>')) {
        const s = await proxy.engine.findSessionOf(post.sessionId, post.connection);
        const st = s && at(s.deviceKey);
        if (st && st.tG === undefined) st.tG = performance.now();
      }
      return reply;
    };

    // Store calls per Get (reads and writes by method), counted on the store every part holds.
    const storeCalls = new Map<string, number>();
    let countStore = false;
    const storeObj = proxy.store as unknown as Record<string, unknown>;
    const storeOrig = new Map<string, (...a: unknown[]) => unknown>();
    for (let o = Object.getPrototypeOf(storeObj); o && o !== Object.prototype; o = Object.getPrototypeOf(o))
      for (const name of Object.getOwnPropertyNames(o)) {
        const f = storeObj[name];
        if (name === 'constructor' || typeof f !== 'function' || storeOrig.has(name)) continue;
        storeOrig.set(name, f as (...a: unknown[]) => unknown);
        storeObj[name] = function (this: unknown, ...a: unknown[]) {
          if (countStore) storeCalls.set(name, (storeCalls.get(name) ?? 0) + 1);
          return (f as (...a: unknown[]) => unknown).apply(this, a);
        };
      }

    // Warm-up: each device learned once (its first Get asks the model), then the measured passes.
    /** One Get to every device, IDLE_INFLIGHT at a time, from the controller wherever it runs. */
    const gets = async (): Promise<{ rtt: number[]; failed: number; ctlCpu: number }> => {
      const rtt: number[] = [];
      if (ctlChild) {
        const sts = list.map((d) => {
          const st: Stages = { tU: Number.NaN };
          stages?.set(d.deviceKey, st);
          return st;
        });
        const cmd: PassCommand = { cmd: 'pass', eids: list.map((d) => d.endpointId), inflight: IDLE_INFLIGHT, param: PARAMS[0]! };
        ctlChild.send(cmd);
        const r = (await fromCtl()) as PassResult;
        // Wall-clock times of the controller process on this process's performance.now() scale.
        r.sent.forEach((t, i) => {
          sts[i]!.tU = t - performance.timeOrigin;
          if (!Number.isNaN(r.answered[i]!)) {
            sts[i]!.tR = r.answered[i]! - performance.timeOrigin;
            rtt.push(r.answered[i]! - t);
          }
        });
        return { rtt, failed: r.failed, ctlCpu: r.cpuMs };
      }
      let next = 0;
      let failed = 0;
      await Promise.all(
        Array.from({ length: IDLE_INFLIGHT }, async () => {
          while (next < list.length) {
            const d = list[next++]!;
            const t0 = performance.now();
            const st: Stages = { tU: t0 };
            stages?.set(d.deviceKey, st);
            try {
              check(await shared!.request(getMsg([PARAMS[0]!]), 60_000, d.endpointId));
              st.tR = performance.now();
              rtt.push(st.tR - t0);
            } catch {
              failed++;
            }
          }
        }),
      );
      return { rtt, failed, ctlCpu: Number.NaN };
    };
    const pass = async (): Promise<{
      rtt: number[];
      wall: number;
      failed: number;
      cpu: number;
      simCpu: number;
      ctlCpu: number;
      elu: number;
      loopP50: number;
      loopP99: number;
      onCpuMs: number;
      waitMs: number;
    }> => {
      await idle();
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const elu0 = performance.eventLoopUtilization();
      const sched0 = mainThreadSched();
      const c0 = process.cpuUsage();
      const s0 = sims.reduce((a, p) => a + procCpuMs(p.pid), 0);
      const t = performance.now();
      const { rtt, failed, ctlCpu } = await gets();
      const wall = (performance.now() - t) / 1000;
      loop.disable();
      const elu = performance.eventLoopUtilization(elu0).utilization;
      const sched1 = mainThreadSched();
      const c = process.cpuUsage(c0);
      const simCpu = sims.reduce((a, p) => a + procCpuMs(p.pid), 0) - s0;
      return {
        rtt,
        wall,
        failed,
        cpu: (c.user + c.system) / 1000,
        simCpu,
        ctlCpu,
        elu,
        loopP50: loop.percentile(50) / 1e6,
        loopP99: loop.percentile(99) / 1e6,
        onCpuMs: sched0 && sched1 ? (sched1.runNs - sched0.runNs) / 1e6 : Number.NaN,
        waitMs: sched0 && sched1 ? (sched1.waitNs - sched0.waitNs) / 1e6 : Number.NaN,
      };
    };
    for (let w = Math.max(1, Number(values['idle-warmup'])); w > 0; w--) await pass();
    countStore = true;
    const prof = values['idle-cpu-prof'] ? new inspector.Session() : null;
    if (prof) {
      prof.connect();
      await prof.post('Profiler.enable');
      await prof.post('Profiler.start');
    }
    const rates: number[] = [];
    const all: Stages[] = [];
    for (let r = 1; r <= IDLE_ROUNDS; r++) {
      await idleCheck({ label: `idle pass ${r}` });
      stages = new Map();
      const x = await pass();
      all.push(...stages.values());
      stages = null;
      rates.push(x.rtt.length / x.wall);
      const n = x.rtt.length || 1;
      console.log(
        `  idle pass ${r}: ${Math.round(x.rtt.length / x.wall)} Gets/s, round trip ${lat(x.rtt)} (${x.rtt.length} Gets${x.failed ? `, ${x.failed} failed` : ''}); ` +
          `CPU per Get: ${CTL_PROCESS ? 'proxy' : 'proxy + controller'} process ${((x.cpu * 1000) / n).toFixed(0)} us (${((x.cpu / 1000 / x.wall) * 100).toFixed(0)}% of a core; main thread ${(x.elu * 100).toFixed(0)}% busy: ${((x.elu * x.wall * 1e6) / n).toFixed(0)} us per Get, on a CPU ${((x.onCpuMs * 1000) / n).toFixed(0)} us per Get, waiting for one ${((x.waitMs * 1000) / n).toFixed(0)} us per Get), ${CTL_PROCESS ? `controller process ${((x.ctlCpu * 1000) / n).toFixed(0)} us, ` : ''}` +
          `${nSims} simulator process(es) ${((x.simCpu * 1000) / n).toFixed(0)} us (${((x.simCpu / 1000 / x.wall) * 100).toFixed(0)}% of a core); proxy event-loop delay p50 ${ms(x.loopP50)} ms, p99 ${ms(x.loopP99)} ms`,
      );
    }
    if (prof) {
      const { profile } = await prof.post('Profiler.stop');
      const file = path.join(values['idle-cpu-prof'], `e2e-idle-${process.pid}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      console.log(`  CPU profile of the passes: ${file}`);
      prof.disconnect();
    }
    // Where a Get waits: each stage's p50/p99 over every Get that went through all of them.
    const full = all.filter(
      (s) =>
        s.tE !== undefined &&
        s.tC0 !== undefined &&
        s.tC1 !== undefined &&
        s.tK !== undefined &&
        s.tH !== undefined &&
        s.tI !== undefined &&
        s.tG !== undefined &&
        s.tA !== undefined &&
        s.tR !== undefined &&
        s.tS !== undefined,
    );
    const span = (f: (s: Required<Stages>) => number): string => {
      const xs = full.map((s) => f(s as Required<Stages>));
      return `${ms(q(xs, 50))}/${ms(q(xs, 99))}`;
    };
    console.log(
      `  where an idle-device Get waits, p50/p99 ms over ${full.length} of ${all.length} Gets: USP Get -> RPC queued ${span((s) => s.tE - s.tU)}, ` +
        `-> connection request sent ${span((s) => s.tC0 - s.tE)}, -> CPE answered it ${span((s) => s.tC1 - s.tC0)}, -> CPE's TCP connection accepted ${span((s) => s.tK - s.tC1)}, -> Inform's headers parsed ${span((s) => s.tH - s.tK)}, -> Inform decoded at the engine ${span((s) => s.tI - s.tH)}, ` +
        `-> GetParameterValues out ${span((s) => s.tG - s.tI)}, -> its answer settled ${span((s) => s.tA - s.tG)}, -> USP response at the controller ${span((s) => s.tR - s.tA)}; ` +
        `answer settled -> session ended ${span((s) => s.tS - s.tA)}; at most ${peakSessions} CWMP sessions open at once`,
    );
    countStore = false;
    const nGets = IDLE_ROUNDS * list.length;
    console.log(
      `  store calls per idle-device Get (over ${nGets} Gets): ${
        [...storeCalls]
          .sort((a, b) => b[1] - a[1])
          .map(([m, n]) => `${m} ${(n / nGets).toFixed(2)}`)
          .join(', ') || 'none'
      }; ACS HTTP answers per Get: ${[...acsStatus].map(([st, n]) => `${st} ${(n / nGets).toFixed(2)}`).join(', ')}`,
    );
    for (const [name] of storeOrig) delete storeObj[name];
    rates.sort((a, b) => a - b);
    console.log(
      `USP Get, idle devices, simulator in a separate process: median ${Math.round(rates[Math.floor(rates.length / 2)]!)} Gets/s (min ${Math.round(rates[0]!)}, max ${Math.round(rates[rates.length - 1]!)}) over ${IDLE_ROUNDS} passes ` +
        `(${IDLE_DEVICES} devices in ${nSims} simulator process(es), strict quirks, ${IDLE_INFLIGHT} in flight, controller ${CTL_PROCESS ? 'in its own process' : 'in the proxy process'}, each Get to a device not in session: connection request, Inform, GetParameterValues, empty POST; target >= 1,000)`,
    );
    proxy.engine.enqueue = enqueue0;
    proxy.connReq.request = connReq0;
    proxy.engine.handle = handle0;
    proxy.engine.off('sessionEnd', onEnd);
    proxy.acs.server.off('connection', onConn);
    proxy.acs.server.off('request', onReq);
    await shared?.close();
    if (ctlChild) {
      const exited = new Promise((r) => ctlChild.once('exit', r));
      ctlChild.send({ cmd: 'close' });
      await exited;
    }
  } finally {
    await Promise.all(
      sims.map((sim) => {
        const exited = new Promise((r) => sim.once('exit', r));
        sim.kill('SIGTERM');
        return exited;
      }),
    );
  }
}

for (const c of clients.values()) await c.close();
await fleet.stop();
await proxy.stop();
CpeHttpClient.prototype.post = origPost;
rmSync(dir, { recursive: true, force: true });
