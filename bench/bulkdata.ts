/**
 * Bulk Data collection at fleet scale (npm run bench:bulkdata, issue 20): N simulated TR-181 CPEs
 * (this process) against the proxy in a child process (so that its CPU and RSS are its own), one
 * USPEventNotif profile per device with 20 explicit parameters at a shortened ReportingInterval.
 *   --mode ride  the devices send periodic Informs every interval; the proxy learns them (two
 *                Informs each) before the profiles are created, then collections ride those
 *                sessions (target: no connection request per report).
 *   --mode wake  no periodic Informs: every collection wakes its device within the fleet-wide
 *                budget (bulkData.connectionRequestsPerSecond = --budget).
 * After one interval of warm-up it measures --intervals intervals and prints reports/s, the
 * collection lag p50/p99 (from the slot falling due to the values read), CWMP sessions and
 * connection requests per report (counted at the simulated CPEs), outcomes, proxy CPU and RSS.
 * Options: --devices N (10000) --interval S (30) --intervals K (3) --mode ride|wake --budget R (100)
 *   --concurrency C (200, simulated sessions at once)
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
const RIDE = values.mode !== 'wake';
const BUDGET = Number(values.budget);

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
      const devices = await proxy.store.listDevices();
      for (const d of devices) {
        const ctx = { agentEid: d.endpointId, controllerEid: 'proto::bench' };
        const setting = (param: string, value: string) => ({ param, value, required: true });
        await proxy.bulkData.model.add(ctx, 'Device.BulkData.Profile.', [
          setting('Protocol', 'USPEventNotif'),
          setting('EncodingType', 'JSON'),
          setting('ReportingInterval', String(INTERVAL_S)),
        ]);
        for (const p of PARAMETERS) await proxy.bulkData.model.add(ctx, 'Device.BulkData.Profile.1.Parameter.', [setting('Reference', p)]);
        await proxy.bulkData.model.set(ctx, 'Device.BulkData.Profile.1.', [setting('Enable', 'true')]);
      }
      send({ cmd: 'profiles', n: devices.length });
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
  const fleet = new Fleet({
    acsUrl: ready.acsUrl as string,
    count: N,
    model: 'tr181',
    serialPrefix: 'BDB',
    periodicIntervalS: RIDE ? INTERVAL_S : null,
    concurrency: Number(values.concurrency),
  });
  await fleet.start();
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
  await ask('profiles');
  log(`profiles created; warm-up of ${INTERVAL_S + 5} s`);
  await new Promise((r) => setTimeout(r, (INTERVAL_S + 5) * 1000));
  const before = fleet.totals();
  await ask('measure');
  await new Promise((r) => setTimeout(r, INTERVALS * INTERVAL_S * 1000));
  const st = await ask('stats');
  const after = fleet.totals();
  const reports = st.collected as number;
  const sessions = after.sessions - before.sessions;
  const crs = after.connectionRequests - before.connectionRequests;
  const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  console.log(
    [
      `bench:bulkdata ${new Date().toISOString().slice(0, 10)} mode=${RIDE ? 'ride (periodic Informs every interval)' : `wake (budget ${BUDGET} CR/s)`}`,
      `workload: ${N} simulated TR-181 CPEs, 1 USPEventNotif profile each, ${PARAMETERS.length} parameters, ReportingInterval ${INTERVAL_S} s, measured ${f(st.seconds as number, 0)} s after ${INTERVAL_S + 5} s warm-up; ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), proxy in a child process, simulators in this one`,
      `reports: ${reports} (${f(reports / (st.seconds as number), 1)}/s; expected ${f(N / INTERVAL_S, 1)}/s) via ${JSON.stringify(st.via)}; outcomes ${JSON.stringify(st.outcomes)}`,
      `collection lag: p50 ${f(st.lagP50 as number, 0)} ms, p99 ${f(st.lagP99 as number, 0)} ms`,
      `per report: CWMP sessions ${f(sessions / reports)}, connection requests ${f(crs / reports)} (${sessions} sessions, ${crs} CRs at the CPEs)`,
      `proxy: CPU ${f(st.cpuPercent as number, 0)}% of one core, RSS ${f(st.rssMiB as number, 0)} MiB`,
    ].join('\n'),
  );
  await fleet.stop();
  proc.send({ cmd: 'stop' });
}

if (values.child) await child();
else await main();
