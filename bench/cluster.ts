/**
 * Scale-out benchmark (npm run bench:cluster): 1, 2 and 3 proxy instances on one Redis store,
 * each a real `node dist/src/app/cli.js start` process configured by CUP_* variables, behind nginx
 * (round-robin, test/helpers/nginx.ts), with mosquitto for USP (each instance subscribes with the
 * MQTT 5 shared subscription $share/<cluster.shareGroup>/<topic>/#). In this process: a simulated
 * TR-181 fleet (src/tools/sim) whose ACS URL is nginx, and a USP controller over MQTT
 * (src/tools/controller/client.ts). For each instance count it prints one line per figure:
 *  (a) CWMP sessions/s through nginx: every device sends a 2 PERIODIC Inform as fast as the
 *      fleet's concurrency allows (Inform -> InformResponse -> empty POST -> 204);
 *  (b) USP Get round trips/s and p50/p99: Gets of one device parameter to random devices with a
 *      fixed number in flight (an idle device is woken by a connection request and runs a CWMP
 *      session through nginx; a Get unanswered within 10 s counts as an error, not in the rate);
 *  (c) Redis round trips per USP Get: delta of the sum of cmdstat_*:calls in INFO commandstats
 *      over the Get phase (Informs quiet) until the fleet is quiet again, minus our own INFO calls
 *      and the background rate measured with nothing to do just before (heartbeats, timers),
 *      divided by the Gets answered;
 *  (d) CPU% of each instance (from /proc/<pid>/stat) and of nginx, Redis, mosquitto and this
 *      load generator, during (a) and during (b): is any one instance the bottleneck?
 *  (e) CPU per USP Get: all instances' CPU seconds during (b) over the Gets answered, and Redis's;
 *      the summary compares it with one instance (the SQLite baseline with --sqlite, else the
 *      1-instance run). A CPU-idle check (bench/paired.ts) runs before (b) and warns if busy.
 *   node dist/bench/cluster.js [--instances 1,2,3] [--devices 2000] [--seconds 15]
 *        [--concurrency 32] [--inform-concurrency 200] [--sticky | --balance round-robin,sticky] [--move] [--sqlite]
 * --sticky routes on the cup_route cookie in nginx (an Inform, without it, round robin); --balance
 * runs each instance count > 1 under each balancing named; --move turns the instances' relay off
 * (cluster.acsUrl none: a POST landing off its session moves the session); --sqlite first runs one instance on its own
 * SQLite store (no Redis, no cluster) as a baseline. BENCH_KEEP_LOGS=1 keeps the instances' logs
 * (BENCH_LOG_LEVEL, default warn). BENCH_CUP='{"CUP_...":"..."}' adds settings to every instance;
 * BENCH_PROF=DIR writes a V8 CPU profile of each instance into DIR when it stops.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { idleCheck } from './paired.js';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { Fleet } from '../src/tools/sim/fleet.js';
import { UspControllerClient, UspTransportError, get as getMsg } from '../src/tools/controller/client.js';
import { decodeMsg, decodeRecord, type Msg } from '../src/usp/codec/record.js';
import { findBinary, freePort, startMosquitto, type MosquittoHandle } from '../test/helpers/brokers.js';
import { startNginx, type NginxHandle } from '../test/helpers/nginx.js';
import { startRedis } from '../test/helpers/redis.js';
import { liveDirs, liveGroups, stopGroup } from '../test/helpers/cleanup.js';
import { STRICT_SIM_WITH_COOKIES } from '../test/helpers/sim.js';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '1,2,3' },
    devices: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '15' },
    concurrency: { type: 'string', default: '32' },
    'inform-concurrency': { type: 'string', default: '200' },
    sticky: { type: 'boolean', default: false },
    move: { type: 'boolean', default: false },
    balance: { type: 'string', default: '' },
    /** First a baseline: one instance on its own SQLite store (no Redis, no cluster). */
    sqlite: { type: 'boolean', default: false },
  },
});
const COUNTS = values.instances.split(',').map((s) => Number(s.trim()));
const DEVICES = Number(values.devices);
const SECONDS = Number(values.seconds);
const GET_K = Number(values.concurrency);
const INFORM_K = Number(values['inform-concurrency']);
/** How nginx spreads POSTs: round-robin, or sticky on the cup_route cookie (--sticky, or --balance round-robin,sticky for both). */
const BALANCES = (values.balance ? values.balance.split(',').map((s) => s.trim()) : [values.sticky ? 'sticky' : 'round-robin']) as Array<
  'round-robin' | 'sticky'
>;
if (!BALANCES.length || !BALANCES.every((b) => b === 'round-robin' || b === 'sticky'))
  throw new Error('--balance: round-robin, sticky or both (comma-separated)');
if (!COUNTS.every((n) => Number.isInteger(n) && n >= 1 && n <= 16)) throw new Error('--instances: a comma-separated list of 1..16');
if (!(DEVICES >= 1 && SECONDS > 0 && GET_K >= 1 && INFORM_K >= 1))
  throw new Error('--devices, --seconds, --concurrency, --inform-concurrency must be positive');

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(here, '../src/app/cli.js');
const CTL = 'proto::bench-cluster';
const CTL_TOPIC = '/usp/bench-cluster-ctl';
const AGENT_TOPIC = '/usp/bench-cluster-agent';
const SHARE_GROUP = 'cup-bench';
const OUI = '00C1A5';
const PARAM = 'Device.DeviceInfo.UpTime';
const REDIS_PREFIX = 'cupbench:';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const q = (sorted: ArrayLike<number>, p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : NaN);
const f = (x: number, d = 0): string => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : 'n/a');
const ms = (x: number): string => (Number.isFinite(x) ? (x < 10 ? x.toFixed(1) : x.toFixed(0)) : 'n/a');

// ---- children: own process groups, all killed when we exit (test/helpers/cleanup.ts) -----------------

// ---- /proc: CPU time of processes ---------------------------------------------------------------

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

interface ProcStat {
  pid: number;
  pgrp: number;
  ticks: number;
}
function readStat(pid: number | string): ProcStat | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // Fields 5 (pgrp), 14 (utime), 15 (stime); rest[0] is field 3. Threads are included.
    return { pid: Number(pid), pgrp: Number(rest[2]), ticks: Number(rest[11]) + Number(rest[12]) };
  } catch {
    return null;
  }
}
function allPids(): string[] {
  try {
    return readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
}
function cmdline(pid: string | number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}
/** CPU seconds of a whole process group (a master and its workers). */
function groupSeconds(pgid: number): number {
  let t = 0;
  for (const p of allPids()) {
    const s = readStat(p);
    if (s && s.pgrp === pgid) t += s.ticks;
  }
  return t / CLK_TCK;
}
function pidSeconds(pid: number): number {
  const s = readStat(pid);
  return s ? s.ticks / CLK_TCK : NaN;
}
/** The redis-server serving 127.0.0.1:<port> (its process title names the port). */
function findRedisPid(port: number): number | null {
  for (const p of allPids()) {
    const c = cmdline(p).join(' ');
    if (/redis-server/.test(c) && c.includes(`:${port}`)) return Number(p);
  }
  return null;
}
/** Our mosquitto: `mosquitto -c <conf>` whose conf listens on <port>. */
function findMosquittoPid(port: number): number | null {
  for (const p of allPids()) {
    const c = cmdline(p);
    if (!c[0]?.endsWith('mosquitto')) continue;
    const i = c.indexOf('-c');
    try {
      if (i >= 0 && readFileSync(c[i + 1]!, 'utf8').includes(`listener ${port} `)) return Number(p);
    } catch {
      /* not ours */
    }
  }
  return null;
}

interface CpuProbe {
  name: string;
  seconds(): number;
}
function cpuSnapshot(probes: CpuProbe[]): { at: number; s: number[] } {
  return { at: performance.now(), s: probes.map((p) => p.seconds()) };
}
function cpuLine(probes: CpuProbe[], a: { at: number; s: number[] }, b: { at: number; s: number[] }): string {
  const wall = (b.at - a.at) / 1000;
  return probes.map((p, i) => `${p.name} ${f(((b.s[i]! - a.s[i]!) / wall) * 100)}%`).join(', ');
}

// ---- Redis: INFO commandstats over a bare RESP connection (our own calls are easy to count) ------

/** One command over a fresh connection; the reply as a string (+, -, :, $ replies). */
function redisCommand(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const done = (err: Error | null, v?: string): void => {
      s.destroy();
      if (err) reject(err);
      else resolve(v!);
    };
    s.on('error', (e) => done(e));
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const head = buf.subarray(1, eol).toString('utf8');
      switch (buf[0]) {
        case 0x2b: // +
        case 0x3a: // :
          return done(null, head);
        case 0x2d: // -
          return done(new Error(`redis: ${head}`));
        case 0x24: {
          // $
          const len = Number(head);
          if (len < 0) return done(null, '');
          if (buf.length >= eol + 2 + len + 2) done(null, buf.subarray(eol + 2, eol + 2 + len).toString('utf8'));
          return;
        }
        default:
          return done(new Error(`redis: unexpected reply ${JSON.stringify(buf.subarray(0, 40).toString())}`));
      }
    });
    s.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
  });
}

/**
 * MONITOR on its own connection: counts the commands clients send (round trips; a pipeline's
 * commands count one each) apart from those run inside Lua scripts, which INFO commandstats mixes.
 */
function monitorCounter(port: number): { stop(): { client: number; lua: number; by: Map<string, number> } } {
  const s = net.connect({ host: '127.0.0.1', port });
  let client = 0;
  let lua = 0;
  // Per command, apart for scripts' own commands (`lua <CMD>`): where a Get's commands come from.
  const by = new Map<string, number>();
  const tally = (k: string): void => {
    by.set(k, (by.get(k) ?? 0) + 1);
  };
  let rest = '';
  s.setEncoding('utf8');
  s.on('error', () => undefined);
  s.on('data', (d: string) => {
    const text = rest + d;
    const lines = text.split('\r\n');
    rest = lines.pop() ?? '';
    for (const l of lines) {
      if (!l.startsWith('+') || l === '+OK') continue;
      const m = /^\+\d+\.\d+ \[\d+ (lua|[^\]]+)\] "([^"]+)"(?: "([^"]*)")?/.exec(l);
      if (!m) continue;
      const cmd = m[2]!.toUpperCase();
      if (m[1] === 'lua') {
        lua++;
        tally(`lua ${cmd}`);
      } else {
        client++;
        tally(cmd);
      }
    }
  });
  s.write('*1\r\n$7\r\nMONITOR\r\n');
  return {
    stop() {
      s.destroy();
      return { client, lua, by };
    },
  };
}

interface CmdStats {
  total: number;
  by: Map<string, number>;
}
async function commandStats(port: number): Promise<CmdStats> {
  const text = await redisCommand(port, 'INFO', 'commandstats');
  const by = new Map<string, number>();
  let total = 0;
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const n = Number(m[2]);
    by.set(m[1]!, n);
    total += n;
  }
  return { total, by };
}
function statsDelta(a: CmdStats, b: CmdStats): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of b.by) {
    const d = v - (a.by.get(k) ?? 0);
    if (d > 0) out.set(k, d);
  }
  return out;
}

// ---- proxy instances ------------------------------------------------------------------------------

interface Instance {
  id: string;
  acsPort: number;
  adminPort: number;
  proc: ChildProcess;
  log: string;
}

function logTail(file: string, chars = 3000): string {
  try {
    const s = readFileSync(file, 'utf8');
    return s.slice(-chars);
  } catch {
    return '';
  }
}

async function startInstance(i: number, workDir: string, redisPort: number | null, mqttUrl: string): Promise<Instance> {
  const id = `bench-${i}`;
  const dataDir = path.join(workDir, id);
  mkdirSync(dataDir, { recursive: true });
  const [acsPort, adminPort] = [await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CUP_')));
  Object.assign(env, {
    CUP_DATA_DIR: dataDir,
    CUP_LOG__LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    CUP_ACS__HOST: '127.0.0.1',
    CUP_ACS__PORT: String(acsPort),
    CUP_ADMIN__HOST: '127.0.0.1',
    CUP_ADMIN__PORT: String(adminPort),
    CUP_ADMIN__TOKEN: randomBytes(16).toString('hex'),
    CUP_ADMIN__SHUTDOWN_GRACE_MS: '2000',
    CUP_USP__WEBSOCKET__ENABLED: 'false',
    CUP_USP__STOMP__HOST: '',
    CUP_USP__MQTT__URL: mqttUrl,
    CUP_USP__MQTT__TOPIC: AGENT_TOPIC,
    // The bench controller measures throughput: lift its request budget (usp.requestRatePerController).
    CUP_USP__REQUEST_RATE_PER_CONTROLLER: '1000000',
    CUP_USP__REQUEST_BURST_PER_CONTROLLER: '1000000',
    CUP_CONTROLLERS: JSON.stringify([{ endpointId: CTL, role: 'full', mqtt: { topic: CTL_TOPIC } }]),
    CUP_STORE__REDIS__URL: redisPort === null ? '' : `redis://127.0.0.1:${redisPort}`,
    CUP_STORE__REDIS__PREFIX: REDIS_PREFIX,
    CUP_CLUSTER__INSTANCE_ID: id,
    CUP_CLUSTER__SHARE_GROUP: SHARE_GROUP,
    // --move: a POST landing on another instance than its session's moves the session there
    // (the handover) instead of being relayed to it over HTTP (src/cluster/forward.ts).
    ...(values.move ? { CUP_CLUSTER__ACS_URL: 'none' } : {}),
    // BENCH_CUP='{"CUP_ACS__PARSE_WORKER_IDLE_MS":"0"}': more settings for every instance.
    ...(process.env.BENCH_CUP ? (JSON.parse(process.env.BENCH_CUP) as Record<string, string>) : {}),
  });
  const log = path.join(workDir, `${id}.log`);
  const fd = openSync(log, 'a');
  // BENCH_PROF=DIR: a V8 CPU profile of every instance, written into DIR when it stops.
  const prof = process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
  const proc = spawn(process.execPath, [...prof, CLI, 'start'], { env, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  liveGroups.add(proc.pid!);
  const inst: Instance = { id, acsPort, adminPort, proc, log };
  // Ready = /readyz 200: store, ACS listening, MQTT connected.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`${id} exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${logTail(log)}`);
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
      const body = await r.text();
      if (r.status === 200) break;
      if (Date.now() > deadline) throw new Error(`${id} not ready after 30 s: ${body}\n${logTail(log)}`);
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${id} not ready after 30 s: ${(err as Error).message}\n${logTail(log)}`);
    }
    await sleep(100);
  }
  return inst;
}

// ---- one run: N instances ------------------------------------------------------------------------

interface RunResult {
  n: number;
  label: string;
  sessionsPerS: number;
  getsPerS: number;
  getP50: number;
  getP99: number;
  redisPerGet: number;
  /** Redis commands executed per Get, scripts' commands included (INFO commandstats deltas). */
  redisCmdsPerGet: number;
  /** The same for Gets to devices already in session (no connection request, no session of their own). */
  inSessionCmdsPerGet: number;
  /** CPU of all instances together per answered Get (us), and of Redis. */
  cpuPerGetUs: number;
  redisCpuPerGetUs: number;
  maxInstCpuInforms: number;
  maxInstCpuGets: number;
  notes: string[];
}

async function run(
  n: number,
  redisPort: number,
  redisPid: () => number | null,
  mosq: MosquittoHandle,
  mosqPid: number | null,
  selfInfoCalls: number,
  sqlite = false,
  sticky = false,
): Promise<RunResult> {
  const how = n > 1 && BALANCES.length > 1 ? (sticky ? ' sticky' : ' round-robin') : '';
  const tag = sqlite ? '1 instance, SQLite store (baseline, no Redis):' : `${n} instance${n > 1 ? 's' : ''}${how}:`;
  const out = (line: string): void => console.log(`${tag} ${line}`);
  const notes: string[] = [];
  await redisCommand(redisPort, 'FLUSHALL');
  const workDir = mkdtempSync(path.join(os.tmpdir(), `cup-bench-cluster-${n}-`));
  liveDirs.add(workDir);
  const instances: Instance[] = [];
  let ngx: NginxHandle | null = null;
  let fleet: Fleet | null = null;
  let ctl: UspControllerClient | null = null;
  let tap: mqtt.MqttClient | null = null;
  try {
    for (let i = 1; i <= n; i++) instances.push(await startInstance(i, workDir, sqlite ? null : redisPort, mosq.url));
    ngx = await startNginx({ upstreams: instances.map((x) => ({ host: '127.0.0.1', port: x.acsPort, route: x.id })), sticky });
    if (!ngx) throw new Error('nginx is not installed');
    const ng = ngx;
    const probes: CpuProbe[] = [
      ...instances.map((x) => ({ name: x.id, seconds: () => pidSeconds(x.proc.pid!) })),
      { name: 'nginx', seconds: () => groupSeconds(ng.pid) },
      {
        name: 'redis',
        seconds: () => {
          const p = redisPid();
          return p ? pidSeconds(p) : NaN;
        },
      },
      { name: 'mosquitto', seconds: () => (mosqPid ? pidSeconds(mosqPid) : NaN) },
      {
        name: 'load generator (fleet + controller)',
        seconds: () => {
          const u = process.cpuUsage();
          return (u.user + u.system) / 1e6;
        },
      },
    ];
    const instCpu = (a: { at: number; s: number[] }, b: { at: number; s: number[] }): number[] =>
      instances.map((_, i) => ((b.s[i]! - a.s[i]!) / ((b.at - a.at) / 1000)) * 100);

    // Boot: every device registers (0 BOOTSTRAP + 1 BOOT) through nginx.
    fleet = new Fleet({
      quirks: STRICT_SIM_WITH_COOKIES,
      acsUrl: ngx.url,
      count: DEVICES,
      model: 'tr181',
      serialPrefix: 'CLU',
      oui: OUI,
      periodicIntervalS: null,
      concurrency: Math.max(INFORM_K, GET_K * 2),
    });
    const fl = fleet;
    const tBoot = performance.now();
    await fleet.start();
    const bootS = (performance.now() - tBoot) / 1000;
    const booted = fleet.totals();
    out(
      `boot through nginx: ${DEVICES} devices registered in ${f(bootS, 1)} s = ${f(DEVICES / bootS)} sessions/s ` +
        `(0 BOOTSTRAP + 1 BOOT, Inform + SetParameterValues of connection-request credentials; ${booted.failed} failed)`,
    );
    if (booted.failed > 0) notes.push(`${booted.failed} of ${DEVICES} boot sessions failed`);
    const quiet = async (): Promise<void> => {
      for (let i = 0; i < 600 && fl.totals().busy > 0; i++) await sleep(50);
    };

    // (a) Informs as fast as the fleet allows.
    let sessionsPerS = NaN;
    let maxInstCpuInforms = NaN;
    {
      await quiet();
      const devs = fl.devices;
      const lat: number[] = [];
      let failed = 0;
      let next = 0;
      const c0 = cpuSnapshot(probes);
      const t0 = performance.now();
      const end = t0 + SECONDS * 1000;
      await Promise.all(
        Array.from({ length: Math.min(INFORM_K, devs.length) }, async () => {
          while (performance.now() < end) {
            const s = await devs[next++ % devs.length]!.inform(['2 PERIODIC']);
            if (s.ok) lat.push(s.durationMs);
            else failed++;
          }
        }),
      );
      const wall = (performance.now() - t0) / 1000;
      const c1 = cpuSnapshot(probes);
      const sorted = Float64Array.from(lat).sort();
      const rate = lat.length / wall;
      out(
        `(a) CWMP sessions/s through nginx: ${f(rate)} sessions/s, p50 ${ms(q(sorted, 0.5))} ms, p99 ${ms(q(sorted, 0.99))} ms ` +
          `(2 PERIODIC Inform -> InformResponse -> empty POST -> 204, ${Math.min(INFORM_K, devs.length)} sessions in flight over ${DEVICES} known devices, ` +
          `${f(wall, 1)} s, ${f(lat.length)} sessions ok, ${failed} failed)`,
      );
      out(`(d) CPU during (a), 100% = one core: ${cpuLine(probes, c0, c1)}`);
      if (failed > 0) notes.push(`${failed} Inform sessions failed`);
      sessionsPerS = rate;
      maxInstCpuInforms = Math.max(...instCpu(c0, c1));
    }

    // (b) + (c) USP Gets to random idle devices, Informs quiet.
    await quiet();
    // Background Redis traffic (heartbeats, timers) over 2 s with nothing to do, before any USP
    // request: subtracted from the Get phase below.
    const b0 = await commandStats(redisPort);
    const bgMon = sqlite ? null : monitorCounter(redisPort);
    const tb0 = performance.now();
    await sleep(2000);
    const bgTrips = bgMon?.stop() ?? { client: 0, lua: 0, by: new Map<string, number>() };
    const b1 = await commandStats(redisPort);
    const bgWindow = (performance.now() - tb0) / 1000;
    const bgPerS = (b1.total - b0.total - selfInfoCalls) / bgWindow;
    const bgBy = statsDelta(b0, b1);
    bgBy.set('info', (bgBy.get('info') ?? 0) - selfInfoCalls);

    const agents = fl.devices.map((d) => `os::${OUI}-${d.serial}`);
    ctl = new UspControllerClient({
      agentId: agents[0]!,
      endpointId: CTL,
      transport: { mtp: 'mqtt', url: mosq.url, controllerTopic: CTL_TOPIC, agentTopic: AGENT_TOPIC },
      timeoutMs: 10_000,
    });
    ctl.on('error', () => undefined);
    await ctl.connect();
    const c = ctl;
    // A second subscriber on the controller topic counts responses per msg_id: more than one
    // means a Record reached more than one instance.
    const answers = new Map<string, number>();
    let counting = false;
    tap = mqtt.connect(mosq.url, { protocolVersion: 5, reconnectPeriod: 0, clean: true });
    const tp = tap;
    await new Promise<void>((resolve, reject) => {
      tp.once('connect', () => resolve());
      tp.once('error', reject);
    });
    tp.on('message', (_t, payload: Buffer) => {
      if (!counting) return;
      try {
        const rec = decodeRecord(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
        if (rec.toId !== CTL || rec.recordType.kind !== 'noSessionContext') return;
        const m = decodeMsg(rec.recordType.payload);
        if (m.body.msgBody === 'request') return;
        answers.set(m.header.msgId, (answers.get(m.header.msgId) ?? 0) + 1);
      } catch {
        /* not a Record of ours */
      }
    });
    await tp.subscribeAsync(CTL_TOPIC, { qos: 1 });

    const errors: Record<string, number> = {};
    const bump = (k: string): void => {
      errors[k] = (errors[k] ?? 0) + 1;
    };
    const classify = (r: Msg): string | null => {
      if (r.body.error) return `usp-${r.body.error.errCode}`;
      const rr = r.body.response?.getResp?.reqPathResults[0];
      if (!rr) return `unexpected-${r.header.msgType}`;
      if (rr.errCode) return `param-${rr.errCode}`;
      if (rr.resolvedPathResults.length === 0) return 'empty-result';
      return null;
    };
    const getLoop = async (endAt: number, lat: number[] | null, maxGets = Infinity, pool = agents): Promise<number> => {
      let sent = 0;
      await Promise.all(
        Array.from({ length: GET_K }, async () => {
          while (performance.now() < endAt && sent < maxGets) {
            sent++;
            const agent = pool[Math.floor(Math.random() * pool.length)]!;
            const t0 = performance.now();
            try {
              const r = await c.request(getMsg([PARAM]), 10_000, agent);
              const bad = classify(r);
              if (bad) bump(bad);
              else lat?.push(performance.now() - t0);
            } catch (err) {
              bump(err instanceof UspTransportError && /within \d+ ms/.test((err as Error).message) ? 'timeout' : 'send-failed');
            }
          }
        }),
      );
      return sent;
    };
    // Warm-up (JIT, MQTT path): a few Gets per worker, not measured.
    await getLoop(performance.now() + 5000, null, GET_K * 4);
    for (const k of Object.keys(errors)) delete errors[k];
    await quiet();

    await idleCheck({ label: 'before (b)', maxBusy: 0.5 });
    const lat: number[] = [];
    answers.clear();
    counting = true;
    const r0 = await commandStats(redisPort);
    const tr0 = performance.now();
    const cpu0 = cpuSnapshot(probes);
    const cr0 = fl.totals().connectionRequests;
    const tg0 = performance.now();
    const sent = await getLoop(tg0 + SECONDS * 1000, lat);
    const wall = (performance.now() - tg0) / 1000;
    const cpu1 = cpuSnapshot(probes);
    const crs = fl.totals().connectionRequests - cr0;
    // The sessions the last Gets opened end after their linger: count their Redis calls too.
    await quiet();
    await sleep(200);
    const r1 = await commandStats(redisPort);
    const redisWindow = (performance.now() - tr0) / 1000;
    counting = false;
    const sorted = Float64Array.from(lat).sort();
    const getsPerS = lat.length / wall;
    const dup = [...answers.values()].reduce((a, v) => a + Math.max(0, v - 1), 0);
    const errText = Object.keys(errors).length
      ? Object.entries(errors)
          .map(([k, v]) => `${k} x${v}`)
          .join(', ')
      : 'none';
    out(
      `(b) USP Get round trips/s: ${f(getsPerS)} Gets/s, p50 ${ms(q(sorted, 0.5))} ms, p99 ${ms(q(sorted, 0.99))} ms ` +
        `(Get ${PARAM} over MQTT via mosquitto, ${GET_K} in flight, each to a random one of ${DEVICES} devices; an idle device is woken by a ` +
        `connection request and runs a CWMP session through nginx, one still lingering in a session takes the Get in it: ${f(crs)} connection requests; ` +
        `${f(wall, 1)} s, ${f(lat.length)} of ${f(sent)} answered ok, errors: ${errText}; ` +
        `duplicate responses ${dup})`,
    );
    if (dup > 0) notes.push(`${dup} duplicate USP responses: a Record reached more than one instance (shared subscription not in effect?)`);
    if (Object.keys(errors).length) notes.push(`Get errors: ${errText}`);

    // Round trips apart from commands inside Lua: a shorter Get run under MONITOR (which slows
    // Redis, hence not during the throughput run above).
    let tripsPerGet = NaN;
    let luaPerGet = NaN;
    let tripGets = 0;
    let tripsBy = '';
    let inSession = '';
    let inSessionPerGet = NaN;
    if (!sqlite) {
      const lat2: number[] = [];
      const mon = monitorCounter(redisPort);
      const t2 = performance.now();
      await getLoop(t2 + Math.min(5, SECONDS) * 1000, lat2);
      await quiet();
      await sleep(200);
      const trips = mon.stop();
      const w2 = (performance.now() - t2) / 1000;
      tripGets = lat2.length;
      tripsPerGet = tripGets ? (trips.client - (bgTrips.client / bgWindow) * w2) / tripGets : NaN;
      luaPerGet = tripGets ? (trips.lua - (bgTrips.lua / bgWindow) * w2) / tripGets : NaN;
      tripsBy = [...trips.by]
        .map(([k, v]): [string, number] => [k, (v - ((bgTrips.by.get(k) ?? 0) / bgWindow) * w2) / Math.max(1, tripGets)])
        .filter(([, v]) => v >= 0.05)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${f(v, 2)}`)
        .join(', ');

      // In-session Gets: the same in flight over a few devices (8 per device), so that each
      // device's session serves one Get after another and hardly any Get needs a session of its own.
      const hot = agents.slice(0, Math.max(1, Math.floor(GET_K / 8)));
      await getLoop(performance.now() + 2000, null, Infinity, hot); // the sessions open
      const lat3: number[] = [];
      const cr3 = fl.totals().connectionRequests;
      const mon3 = monitorCounter(redisPort);
      const t3 = performance.now();
      await getLoop(t3 + Math.min(5, SECONDS) * 1000, lat3, Infinity, hot);
      const trips3 = mon3.stop();
      const w3 = (performance.now() - t3) / 1000;
      await quiet();
      const crs3 = fl.totals().connectionRequests - cr3;
      const bgc = ((bgTrips.client + bgTrips.lua) / bgWindow) * w3;
      const per3 = lat3.length ? (trips3.client + trips3.lua - bgc) / lat3.length : NaN;
      const by3 = [...trips3.by]
        .map(([k, v]): [string, number] => [k, v / Math.max(1, lat3.length)])
        .filter(([, v]) => v >= 0.05)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${f(v, 2)}`)
        .join(', ');
      inSessionPerGet = per3;
      inSession =
        `${f(per3, 1)} Redis commands per in-session Get, scripts' included (${f(lat3.length ? (trips3.client - (bgTrips.client / bgWindow) * w3) / lat3.length : NaN, 1)} round trips; ` +
        `MONITOR over ${f(lat3.length)} Gets, ${GET_K} in flight over ${hot.length} devices, ${f(crs3)} connection requests, until the last Get's answer; by command: ${by3 || 'none'})`;
    }
    const raw = r1.total - r0.total - selfInfoCalls;
    const bg = Math.max(0, bgPerS) * redisWindow;
    const perGet = lat.length ? (raw - bg) / lat.length : NaN;
    const delta = statsDelta(r0, r1);
    delta.set('info', (delta.get('info') ?? 0) - selfInfoCalls);
    const top = [...delta]
      .map(([k, v]): [string, number] => [k, v - (Math.max(0, bgBy.get(k) ?? 0) / bgWindow) * redisWindow])
      .filter(([, v]) => v / Math.max(1, lat.length) >= 0.05)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([k, v]) => `${k} ${f(v / Math.max(1, lat.length), 1)}`)
      .join(', ');
    if (sqlite) {
      out('(c) Redis round trips per USP Get: n/a (SQLite store)');
    } else if (raw <= 0) {
      out(`(c) Redis round trips per USP Get: 0 (${f(lat.length)} Gets and no Redis command: this build does not use store.redis.url yet)`);
      notes.push('no Redis traffic: store.redis.url not used by this build');
    } else {
      out(
        `(c) Redis round trips per USP Get: ${f(tripsPerGet, 1)} (commands sent by the instances, counted with MONITOR over a further ${f(tripGets)} Gets, ` +
          `Informs quiet, background heartbeats subtracted; ${f(luaPerGet, 1)} more run inside Lua scripts); Redis commands executed per Get during (b), scripts' included: ${f(perGet, 1)} ` +
          `(INFO commandstats, by command: ${top || 'none'})`,
      );
      out(`(c) per idle-device Get under MONITOR, by command (\`lua X\` = run inside a script): ${tripsBy || 'none'}`);
      out(`(c) in-session Get: ${inSession}`);
    }
    out(`(d) CPU during (b), 100% = one core: ${cpuLine(probes, cpu0, cpu1)}`);
    // Per-Get CPU: every instance's CPU seconds during (b) over the Gets answered (the sessions
    // the Gets cause included); Redis apart.
    const instSeconds = instances.reduce((a, _, i) => a + (cpu1.s[i]! - cpu0.s[i]!), 0);
    const cpuPerGetUs = lat.length ? (instSeconds / lat.length) * 1e6 : NaN;
    const ri = instances.length + 1; // probes: instances, nginx, redis, ...
    const redisCpuPerGetUs = lat.length && !sqlite ? ((cpu1.s[ri]! - cpu0.s[ri]!) / lat.length) * 1e6 : NaN;
    out(
      `(e) CPU per USP Get: ${f(cpuPerGetUs)} us in the instances together${sqlite ? '' : `, ${f(redisCpuPerGetUs)} us in Redis`} (CPU seconds during (b) / Gets answered; the CWMP session each Get causes included)`,
    );
    return {
      n,
      label: sqlite ? '1 (SQLite)' : `${n}${how}`,
      sessionsPerS,
      maxInstCpuInforms,
      getsPerS,
      getP50: q(sorted, 0.5),
      getP99: q(sorted, 0.99),
      redisPerGet: sqlite ? NaN : raw > 0 ? tripsPerGet : 0,
      maxInstCpuGets: Math.max(...instCpu(cpu0, cpu1)),
      redisCmdsPerGet: sqlite ? NaN : perGet,
      inSessionCmdsPerGet: inSessionPerGet,
      cpuPerGetUs,
      redisCpuPerGetUs,
      notes,
    };
  } finally {
    await tap?.endAsync(true).catch(() => undefined);
    await ctl?.close().catch(() => undefined);
    await fleet?.stop().catch(() => undefined);
    await ngx?.stop().catch(() => undefined);
    await Promise.all(
      instances.map(async (x) => {
        await stopGroup(x.proc, 8000);
        if (x.proc.exitCode !== 0 && x.proc.exitCode !== null) console.log(`# ${x.id} exited ${x.proc.exitCode}; log tail:\n${logTail(x.log, 1500)}`);
      }),
    );
    if (process.env.BENCH_KEEP_LOGS) {
      liveDirs.delete(workDir);
      console.log(`# logs kept in ${workDir}`);
    } else {
      rmSync(workDir, { recursive: true, force: true });
      liveDirs.delete(workDir);
    }
  }
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const cores = os.availableParallelism();
  const cpu = os.cpus()[0]?.model.trim() ?? '?';
  console.log(
    `# cluster bench: ${cores} cores (os.availableParallelism()) ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}; ` +
      `${DEVICES} simulated TR-181 CPE, ${SECONDS} s per phase, instances ${COUNTS.join(',')}, nginx ${BALANCES.map((b) => (b === 'sticky' ? 'sticky on the cup_route cookie' : b)).join(' and ')}` +
      `${values.move ? ', a POST landing off its session moves it (--move)' : ', a POST landing off its session is relayed to its instance'}`,
  );
  console.log(
    `# On ${cores} cores the point is that nothing serializes on one instance (no instance pinned at 100% while the others idle), not a linear speed-up: ` +
      `the instances, nginx, Redis, mosquitto and this load generator all share the same ${cores} cores.`,
  );
  console.log(
    '# topology: fleet (this process) -> nginx -> N x `node dist/src/app/cli.js start` (CUP_* env) -> one redis-server; ' +
      `controller (this process) -> mosquitto -> $share/${SHARE_GROUP}${AGENT_TOPIC}/# -> one instance; connection requests instance -> fleet directly`,
  );
  if (!existsSync(CLI)) throw new Error(`${CLI} not found: run npm run build first`);
  const redis = await startRedis();
  if (!redis) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const mosq = await startMosquitto();
  if (!mosq) {
    await redis.stop();
    throw new Error('mosquitto is not installed (apt-get install mosquitto)');
  }
  if (!findBinary('nginx')) {
    await Promise.all([redis.stop(), mosq.stop()]);
    throw new Error('nginx is not installed (apt-get install nginx)');
  }
  const results: RunResult[] = [];
  try {
    // How many calls one INFO snapshot adds to the sum (itself), measured with Redis idle.
    const s0 = await commandStats(redis.port);
    const s1 = await commandStats(redis.port);
    const selfInfoCalls = s1.total - s0.total;
    let redisPid: number | null = null;
    const rp = (): number | null => (redisPid ??= findRedisPid(redis.port));
    const mosqPid = findMosquittoPid(mosq.port);
    // One instance: the balancer has nothing to choose; more: each balancing asked for.
    const runs: Array<{ n: number; sqlite: boolean; sticky: boolean }> = [
      ...(values.sqlite ? [{ n: 1, sqlite: true, sticky: false }] : []),
      ...COUNTS.flatMap((n) => (n === 1 ? [BALANCES[0]!] : BALANCES).map((b) => ({ n, sqlite: false, sticky: b === 'sticky' }))),
    ];
    for (const { n, sqlite, sticky } of runs) {
      try {
        results.push(await run(n, redis.port, rp, mosq, mosqPid, selfInfoCalls, sqlite, sticky));
      } catch (err) {
        console.log(`${n} instance${n > 1 ? 's' : ''}: run failed: ${(err as Error).message}`);
      }
    }
  } finally {
    await mosq.stop();
    await redis.stop();
  }
  if (results.length) {
    console.log(
      '# summary: instances | CWMP sessions/s (a) | USP Gets/s (b), p50/p99 ms | Redis round trips per Get (c) | Redis commands per Get, scripts included (c) (target <= 10): idle device / in session | instances CPU per Get, us (e), and vs one instance (target <= 1.5x) | busiest instance CPU% during (a) / (b)',
    );
    // "One instance": the SQLite baseline when run (--sqlite), else the 1-instance Redis run.
    const single = results.find((r) => r.label === '1 (SQLite)') ?? results.find((r) => r.n === 1);
    for (const r of results) {
      const vs = single && r !== single ? ` (${f(r.cpuPerGetUs / single.cpuPerGetUs, 2)}x ${single.label})` : '';
      console.log(
        `#   ${r.label} | ${f(r.sessionsPerS)} | ${f(r.getsPerS)}, ${ms(r.getP50)}/${ms(r.getP99)} | ${f(r.redisPerGet, 1)} | ${f(r.redisCmdsPerGet, 1)} / ${f(r.inSessionCmdsPerGet, 1)} | ${f(r.cpuPerGetUs)}${vs} | ${f(r.maxInstCpuInforms)}% / ${f(r.maxInstCpuGets)}%` +
          (r.notes.length ? `   [${r.notes.join('; ')}]` : ''),
      );
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:cluster failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
