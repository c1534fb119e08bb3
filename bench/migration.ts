/**
 * Migration benchmark (npm run bench:migration): one proxy, a fleet of dual-stack simulated CPEs
 * (quirks strict,dual-stack) over HTTP, mosquitto as the operator's broker, all in one process.
 * A rollout migrates the whole fleet (waves, concurrency C, no rate limit). Prints, with the
 * workload: the rollout's wall time and migrations/s, per-migration duration p50/p95/max and
 * per step p50, the CWMP RPCs and sessions each migration cost, and the process RSS after it.
 *   node dist/bench/migration.js [--devices N] [--concurrency C] [--wave W]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Fleet } from '../src/tools/sim/fleet.js';
import { parseQuirks } from '../src/tools/sim/quirks.js';
import type { MigrationState } from '../src/migration/machine.js';
import { startMosquitto } from '../test/helpers/brokers.js';
import { startTestProxy } from '../test/helpers/test-proxy.js';

const { values } = parseArgs({
  options: { devices: { type: 'string', default: '200' }, concurrency: { type: 'string', default: '8' }, wave: { type: 'string', default: '50' } },
});
const N = Number(values.devices);
const C = Number(values.concurrency);
const W = Number(values.wave);

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

async function main(): Promise<void> {
  const mosq = await startMosquitto();
  if (!mosq) throw new Error('mosquitto is not installed');
  const tp = await startTestProxy({
    'migration.brokerHost': '127.0.0.1',
    'migration.brokerPort': mosq.port,
    'migration.controllerEndpointId': 'proto::bench-ctl',
    'migration.controllerTopic': '/usp/bench-ctl',
    'migration.pollIntervalMs': 50,
    'migration.requestTimeoutMs': 2000,
    'migration.appearTimeoutMs': 30_000,
  });
  const fleet = new Fleet({
    acsUrl: tp.acsUrl,
    count: N,
    model: 'tr181',
    serialPrefix: 'BMIG',
    periodicIntervalS: null,
    quirks: parseQuirks('strict,dual-stack'),
    concurrency: 50,
  });
  try {
    await fleet.start();
    const before = fleet.totals();
    const rpcCount = (): number => fleet.devices.reduce((n, d) => n + Object.values(d.stats.rpcsReceived).reduce((a, b) => a + b, 0), 0);
    const rpcsBefore = rpcCount();
    const states: MigrationState[] = [];
    tp.proxy.migration.service.on('finished', ({ state }) => states.push(state));
    const t0 = performance.now();
    const r = await tp.proxy.migration.rollouts.create(
      { productClass: fleet.devices[0]!.deviceId.productClass },
      { waveSize: W, concurrency: C, perMinute: 1_000_000, maxFailurePercent: 100 },
    );
    const summary = await r.done;
    const wall = (performance.now() - t0) / 1000;
    const after = fleet.totals();
    const rpcs = rpcCount() - rpcsBefore;
    const durations = states.map((s) => Date.parse(s.finishedAt!) - Date.parse(s.startedAt));
    const steps = new Map<string, number[]>();
    for (const s of states) for (const st of s.steps) steps.set(st.name, [...(steps.get(st.name) ?? []), st.durationMs]);
    const cpu = os.cpus();
    console.log(
      `workload: ${N} dual-stack CPEs (strict quirks), rollout waves of ${W}, concurrency ${C}; one process; ${cpu.length}x ${cpu[0]?.model ?? '?'}, node ${process.version}`,
    );
    console.log(
      `rollout: ${summary.migrated} migrated, ${summary.failed.length} failed, ${wall.toFixed(1)} s wall, ${(summary.migrated / wall).toFixed(1)} migrations/s`,
    );
    console.log(`per migration: p50 ${pct(durations, 50)} ms, p95 ${pct(durations, 95)} ms, max ${Math.max(...durations)} ms`);
    console.log(`per step p50: ${[...steps].map(([k, v]) => `${k} ${pct(v, 50)} ms`).join(', ')}`);
    console.log(
      `CWMP per migration (incl. the proxy learning names): ${(rpcs / N).toFixed(1)} RPCs, ${((after.sessions - before.sessions) / N).toFixed(1)} sessions, ${((after.connectionRequests - before.connectionRequests) / N).toFixed(1)} connection requests`,
    );
    console.log(`rss after: ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB (proxy + ${N} simulated CPEs and their native agents in one process)`);
  } finally {
    await fleet.stop();
    await tp.stop();
    await mosq.stop();
  }
}

void main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
