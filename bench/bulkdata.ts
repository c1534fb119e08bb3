/**
 * Bulk Data collection at fleet scale (npm run bench:bulkdata, issue 20): N simulated TR-181 CPEs
 * (in --sim-procs processes) against the proxy in a child process (so that its CPU and RSS are its own), one
 * USPEventNotif profile per device with 20 explicit parameters at a shortened ReportingInterval.
 *   --mode ride  the devices send periodic Informs every interval; the proxy learns them (two
 *                Informs each) before the profiles are created, then collections ride those
 *                sessions (target: no connection request per report).
 *   --mode wake  no periodic Informs: every collection wakes its device within the fleet-wide
 *                budget (bulkData.connectionRequestsPerSecond = --budget).
 *   --mode create  only creates the --devices profiles (no CPEs), timed, with store writes counted.
 *   --mode align  periodic Informs hourly (the simulator model's); bulkData.alignPeriodicInform on:
 *                the first collection (made at once for every profile) wakes each device and sets
 *                its PeriodicInformInterval to the ReportingInterval, later ones ride.
 * After one interval of warm-up it measures --intervals intervals and prints reports/s, the
 * collection lag p50/p99 (from the slot falling due to the values read), CWMP sessions and
 * connection requests per report (counted at the simulated CPEs), outcomes, proxy CPU and RSS.
 * Options: --devices N (10000) --interval S (30) --intervals K (3) --mode ride|align|wake|create
 *   --budget R (100) --concurrency C (200, simulated sessions at once, over all simulator processes)
 *   --sim-procs P (2: the CPEs in P processes of their own; 0: in this one)
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/app/config.js';
import { createLogger, silentLogger } from '../src/app/log.js';
import { CwmpUspProxy } from '../src/app/proxy.js';
import { Fleet } from '../src/tools/sim/fleet.js';

const { values } = parseArgs({
  options: {
    child: { type: 'boolean', default: false },
    sim: { type: 'string' },
    'acs-url': { type: 'string', default: '' },
    'sim-procs': { type: 'string', default: '2' },
    devices: { type: 'string', default: '10000' },
    interval: { type: 'string', default: '30' },
    intervals: { type: 'string', default: '3' },
    mode: { type: 'string', default: 'ride' },
    budget: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '200' },
  },
});
const N = Number(values.devices);
const INTERVAL_S = Number(values.interval);
const INTERVALS = Number(values.intervals);
const RIDE = values.mode === 'ride';
/** --mode align: periodic Informs hourly (the model's); the proxy aligns them with the profile (one wake each), then rides. */
const ALIGN = values.mode === 'align';
const SIM_PROCS = Number(values['sim-procs']);
const BUDGET = Number(values.budget);
/** --mode create: only the profiles' creation (no devices, no reports), timed. */
const CREATE_ONLY = values.mode === 'create';

/** 20 parameters every simulated TR-181 CPE has (assets/sim-models/tr181-device.csv). */
const PARAMETERS = [
  ...['Manufacturer', 'ManufacturerOUI', 'ModelName', 'ProductClass', 'SerialNumber', 'HardwareVersion', 'SoftwareVersion', 'UpTime', 'FirstUseDate'].map(
    (p) => `Device.DeviceInfo.${p}`,
  ),
  ...['Enable', 'Status', 'MaxBitRate', 'MACAddress'].map((p) => `Device.Ethernet.Interface.1.${p}`),
  ...['Enable', 'Status', 'Channel', 'TransmitPower', 'OperatingFrequencyBand'].map((p) => `Device.WiFi.Radio.1.${p}`),
  ...['BytesSent', 'BytesReceived'].map((p) => `Device.IP.Interface.1.Stats.${p}`),
];

type Msg = Record<string, unknown> & { cmd: string };

// ------------------------------------------------------------------ the proxy (child process)

async function child(): Promise<void> {
  process.on('disconnect', () => process.exit(0));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'cup-bench-bulkdata-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      'acs.host': '127.0.0.1',
      'acs.port': 0,
      'log.level': process.env.BENCH_LOG ?? 'silent',
      'usp.websocket.enabled': false,
      'usp.stomp.host': '',
      'bulkData.minReportingIntervalS': 1,
      'bulkData.maxProfiles': 1,
      'bulkData.connectionRequestsPerSecond': BUDGET,
      'bulkData.alignPeriodicInform': ALIGN,
      'bulkData.periodicInformGraceMs': Math.min(30_000, INTERVAL_S * 250),
      // The simulated CPEs answer every connection request; loopback is one source address.
      'acs.connectionRequest.perAddressPerSecond': 1_000_000,
    },
  });
  const proxy = new CwmpUspProxy(config, process.env.BENCH_LOG ? createLogger(config.log.level) : silentLogger());
  await proxy.start();
  const s = proxy.bulkDataScheduler;
  let lags: number[] = [];
  let via: Record<string, number> = {};
  s.on('collected', (e) => {
    lags.push(e.lagMs);
    via[e.via] = (via[e.via] ?? 0) + 1;
  });
  let cpu = process.cpuUsage();
  let t0 = Date.now();
  let counts0: Record<string, number> = {};
  const send = (m: Msg) => process.send!(m);
  process.on('message', async (m: Msg) => {
    if (m.cmd === 'learned') {
      const devices = await proxy.store.listDevices();
      send({ cmd: 'learned', n: devices.filter((d) => s.informs.intervalMs(d.endpointId) > 0).length, of: devices.length });
    } else if (m.cmd === 'profiles') {
      const agents = CREATE_ONLY ? Array.from({ length: N }, (_, i) => `os::bench-${i}`) : (await proxy.store.listDevices()).map((d) => d.endpointId);
      // Store writes counted at the store, time from the first Add to the last row stored.
      let writes = 0;
      const put = proxy.store.putLearned.bind(proxy.store);
      proxy.store.putLearned = (kind, key, json) => (writes++, put(kind, key, json));
      const t = process.hrtime.bigint();
      const cpu0 = process.cpuUsage();
      // What a controller sends: three messages per device (Add the profile, Add its 20 Parameter
      // rows, Set Enable), each ending before the next starts (the proxy stores at a message's end).
      const message = () => new Promise((r) => setImmediate(r));
      for (const agentEid of agents) {
        const ctx = { agentEid, controllerEid: 'proto::bench' };
        const setting = (param: string, value: string) => ({ param, value, required: true });
        await proxy.bulkData.model.add(ctx, 'Device.BulkData.Profile.', [
          setting('Protocol', 'USPEventNotif'),
          setting('EncodingType', 'JSON'),
          setting('ReportingInterval', String(INTERVAL_S)),
        ]);
        await message();
        for (const p of PARAMETERS) await proxy.bulkData.model.add(ctx, 'Device.BulkData.Profile.1.Parameter.', [setting('Reference', p)]);
        await message();
        await proxy.bulkData.model.set(ctx, 'Device.BulkData.Profile.1.', [setting('Enable', 'true')]);
        await message();
      }
      await proxy.bulkData.flushed();
      const used = process.cpuUsage(cpu0);
      send({ cmd: 'profiles', n: agents.length, ms: Number(process.hrtime.bigint() - t) / 1e6, cpuMs: (used.user + used.system) / 1000, writes });
    } else if (m.cmd === 'align') {
      // The first collection of every profile now (a controller's ForceCollection()): it wakes the
      // device within the budget and sets its PeriodicInform* to the ReportingInterval.
      const devices = await proxy.store.listDevices();
      const t = Date.now();
      await Promise.all(devices.map((d) => s.report(d.endpointId, [1], Date.now(), true)));
      const aligned = devices.filter((d) => s.informs.intervalMs(d.endpointId) === INTERVAL_S * 1000).length;
      send({ cmd: 'align', n: aligned, of: devices.length, ms: Date.now() - t });
    } else if (m.cmd === 'measure') {
      lags = [];
      via = {};
      counts0 = { ...s.counts };
      cpu = process.cpuUsage();
      t0 = Date.now();
      send({ cmd: 'measure' });
    } else if (m.cmd === 'stats') {
      const used = process.cpuUsage(cpu);
      const seconds = (Date.now() - t0) / 1000;
      const outcomes: Record<string, number> = {};
      for (const [k, n] of Object.entries(s.counts)) if (n - (counts0[k] ?? 0) > 0) outcomes[k] = n - (counts0[k] ?? 0);
      lags.sort((a, b) => a - b);
      const q = (f: number) => (lags.length ? lags[Math.min(lags.length - 1, Math.floor(f * lags.length))]! : NaN);
      send({
        cmd: 'stats',
        seconds,
        collected: lags.length,
        via,
        outcomes,
        lagP50: q(0.5),
        lagP99: q(0.99),
        cpuPercent: ((used.user + used.system) / 1000 / (seconds * 1000)) * 100,
        rssMiB: process.memoryUsage().rss / 2 ** 20,
      });
    } else if (m.cmd === 'stop') {
      await proxy.stop();
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    }
  });
  send({ cmd: 'ready', acsUrl: `http://127.0.0.1:${proxy.acsPort}/` });
}

// ------------------------------------------------------------------ the devices and the report

async function main(): Promise<void> {
  const proc = fork(fileURLToPath(import.meta.url), ['--child', ...process.argv.slice(2)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<string, (m: Msg) => void>();
  proc.on('message', (m: Msg) => {
    const w = waiting.get(m.cmd);
    waiting.delete(m.cmd);
    w?.(m);
  });
  const reply = (cmd: string) => new Promise<Msg>((r) => waiting.set(cmd, r));
  const ask = (cmd: string) => {
    const p = reply(cmd);
    proc.send({ cmd });
    return p;
  };
  const ready = await reply('ready');
  const started = Date.now();
  const created = (p: Msg) =>
    `profiles: ${String(p.n)} created (1 profile + ${PARAMETERS.length} Parameter rows + Enable each, 3 messages) in ${((p.ms as number) / 1000).toFixed(1)} s, ${((p.ms as number) / (p.n as number)).toFixed(2)} ms and ${((p.writes as number) / (p.n as number)).toFixed(1)} store writes per profile (CPU ${((p.cpuMs as number) / 1000).toFixed(1)} s)`;
  if (CREATE_ONLY) {
    console.log(`bench:bulkdata ${new Date().toISOString().slice(0, 10)} mode=create; SQLite store; ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`);
    console.log(created(await ask('profiles')));
    proc.send({ cmd: 'stop' });
    return;
  }
  const fleet = await simulators(ready.acsUrl as string);
  const log = (msg: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${msg}\n`);
  log(`${N} devices registered`);
  if (RIDE) {
    // Two periodic Informs per device teach the proxy when the next ones come.
    for (;;) {
      const l = await ask('learned');
      if ((l.n as number) >= N || Date.now() - started > (4 * INTERVAL_S + 60) * 1000) {
        log(`periodic Informs learned for ${String(l.n)} of ${String(l.of)} devices`);
        break;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  log(created(await ask('profiles')));
  if (ALIGN) {
    const a = await ask('align');
    log(`first collection woke and aligned ${String(a.n)} of ${String(a.of)} devices in ${((a.ms as number) / 1000).toFixed(0)} s`);
  }
  log(`warm-up of ${INTERVAL_S + 5} s`);
  await new Promise((r) => setTimeout(r, (INTERVAL_S + 5) * 1000));
  const before = await fleet.totals();
  await ask('measure');
  await new Promise((r) => setTimeout(r, INTERVALS * INTERVAL_S * 1000));
  const st = await ask('stats');
  const after = await fleet.totals();
  const reports = st.collected as number;
  const sessions = after.sessions - before.sessions;
  const crs = after.connectionRequests - before.connectionRequests;
  const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  console.log(
    [
      `bench:bulkdata ${new Date().toISOString().slice(0, 10)} mode=${RIDE ? 'ride (periodic Informs every interval)' : ALIGN ? `align (PeriodicInform* set by the proxy; budget ${BUDGET} CR/s)` : `wake (budget ${BUDGET} CR/s)`}`,
      `workload: ${N} simulated TR-181 CPEs, 1 USPEventNotif profile each, ${PARAMETERS.length} parameters, ReportingInterval ${INTERVAL_S} s, measured ${f(st.seconds as number, 0)} s after ${INTERVAL_S + 5} s warm-up; ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average ${os.loadavg()[0]!.toFixed(1)}; proxy in a child process, simulators ${SIM_PROCS > 0 ? `in ${SIM_PROCS} other processes` : 'in this one'}`,
      `reports: ${reports} (${f(reports / (st.seconds as number), 1)}/s; expected ${f(N / INTERVAL_S, 1)}/s) via ${JSON.stringify(st.via)}; outcomes ${JSON.stringify(st.outcomes)}`,
      `collection lag: p50 ${f(st.lagP50 as number, 0)} ms, p99 ${f(st.lagP99 as number, 0)} ms`,
      `per report: CWMP sessions ${f(sessions / reports)}, connection requests ${f(crs / reports)} (${sessions} sessions, ${crs} CRs at the CPEs)`,
      `proxy: CPU ${f(st.cpuPercent as number, 0)}% of one core, RSS ${f(st.rssMiB as number, 0)} MiB`,
    ].join('\n'),
  );
  await fleet.stop();
  proc.send({ cmd: 'stop' });
}

// ------------------------------------------------------------------ the simulated CPEs

interface Totals {
  sessions: number;
  connectionRequests: number;
}

function fleetOf(acsUrl: string, count: number, serialPrefix: string): Fleet {
  return new Fleet({
    acsUrl,
    count,
    model: 'tr181',
    serialPrefix,
    // ride: every interval from boot; align: the model's own (hourly) until the proxy sets them; wake: none.
    periodicIntervalS: RIDE ? INTERVAL_S : ALIGN ? undefined : null,
    concurrency: Math.max(1, Math.round(Number(values.concurrency) / Math.max(1, SIM_PROCS))),
  });
}

/**
 * The CPEs: in --sim-procs processes of their own (so that their CPU is not the proxy's nor this
 * process's timers), or in this one with --sim-procs 0.
 */
async function simulators(acsUrl: string): Promise<{ totals(): Promise<Totals>; stop(): Promise<void> }> {
  if (SIM_PROCS <= 0) {
    const fleet = fleetOf(acsUrl, N, 'BDB');
    await fleet.start();
    return { totals: async () => fleet.totals(), stop: () => fleet.stop() };
  }
  const procs = Array.from({ length: SIM_PROCS }, (_, i) => {
    const count = Math.floor(N / SIM_PROCS) + (i < N % SIM_PROCS ? 1 : 0);
    const proc = fork(fileURLToPath(import.meta.url), ['--sim', String(i), '--acs-url', acsUrl, '--devices', String(count), ...process.argv.slice(2)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return proc;
  });
  const ask = (cmd: string) =>
    Promise.all(
      procs.map(
        (p) =>
          new Promise<Msg>((resolve) => {
            const on = (m: Msg) => {
              if (m.cmd !== cmd) return;
              p.off('message', on);
              resolve(m);
            };
            p.on('message', on);
            p.send({ cmd });
          }),
      ),
    );
  await ask('start');
  return {
    totals: async () => {
      const all = await ask('totals');
      return {
        sessions: all.reduce((a, m) => a + (m.sessions as number), 0),
        connectionRequests: all.reduce((a, m) => a + (m.connectionRequests as number), 0),
      };
    },
    stop: async () => {
      await ask('stop');
    },
  };
}

/** One slice of the CPEs (--sim i), driven over IPC by the main process. */
async function sim(slice: number): Promise<void> {
  process.on('disconnect', () => process.exit(0));
  // The main process passes its own --devices after this slice's: the first one is this slice's count.
  const count = Number(process.argv[process.argv.indexOf('--devices') + 1]);
  const fleet = fleetOf(values['acs-url']!, count, `BD${slice}`);
  process.on('message', async (m: Msg) => {
    if (m.cmd === 'start') {
      await fleet.start();
      process.send!({ cmd: 'start' });
    } else if (m.cmd === 'totals') process.send!({ cmd: 'totals', ...fleet.totals() });
    else if (m.cmd === 'stop') {
      await fleet.stop();
      process.send!({ cmd: 'stop' });
      process.exit(0);
    }
  });
}

if (values.child) await child();
else if (values.sim !== undefined) await sim(Number(values.sim));
else await main();
