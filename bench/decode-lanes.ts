/**
 * What a big CPE body's parse does to the other sessions' bodies on the decode workers (issue 22
 * item 4), in paired rounds: A = the pool as configured by default (a 2,000-parameter answer on a
 * worker of its own, acs.bulkParseBytes), B = one shared worker (acs.bulkParseBytes 0). Every body
 * goes to a worker, as when the main thread is busy (acs.inlineDecodeBytes 0). Small bodies (an
 * Inform of 20 parameters, about 3 KB) are handed over at --rate per second in the turns a paced
 * load gives; a 2,000-parameter GetParameterValuesResponse every --gap ms after the previous one
 * was answered. Printed per side: the small bodies' decode latency (hand-over to answer) p50 / p99
 * / max, without big bodies (the first second) and with them.
 *   npm run build && node dist/bench/decode-lanes.js [--rounds 6] [--seconds 3] [--rate 500] [--gap 200]
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { DecodePool } from '../src/cwmp/decode-pool.js';
import { encodeSoap } from '../src/cwmp/soap.js';
import type { ParameterValueStruct } from '../src/cwmp/types.js';
import { median, paired } from './paired.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '3' },
    rate: { type: 'string', default: '500' },
    gap: { type: 'string', default: '200' },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const GAP = Number(values.gap);

function params(n: number, prefix: string): ParameterValueStruct[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `${prefix}.${i + 1}.PhysAddress`,
    value: `00:11:22:33:${(i >> 8) & 255}:${i & 255}`,
    type: 'xsd:string',
  }));
}

const small = encodeSoap({
  cwmpVersion: '1-0',
  id: 'inform-1',
  body: {
    method: 'Inform',
    deviceId: { manufacturer: 'Bench', oui: '00D09E', productClass: 'IGD', serialNumber: 'BENCH000001' },
    event: [{ eventCode: '2 PERIODIC', commandKey: '' }],
    maxEnvelopes: 1,
    currentTime: '2026-12-06T00:00:00Z',
    retryCount: 0,
    parameterList: params(20, 'Device.Hosts.Host'),
  },
});
const big = encodeSoap({ cwmpVersion: '1-0', id: 'acs-2', body: { method: 'GetParameterValuesResponse', parameterList: params(2000, 'Device.Hosts.Host') } });
const smallBytes = Buffer.byteLength(small);
const bigBytes = Buffer.byteLength(big);

interface Latency {
  p50: number;
  p99: number;
  max: number;
  n: number;
}
interface Run {
  quiet: Latency;
  loaded: Latency;
  big: number;
}

function summary(lat: number[]): Latency {
  const s = lat.sort((x, y) => x - y);
  const q = (f: number): number => s[Math.min(s.length - 1, Math.floor(s.length * f))] ?? Number.NaN;
  return { p50: q(0.5), p99: q(0.99), max: s[s.length - 1] ?? Number.NaN, n: s.length };
}

/** Small bodies at RATE/s for `ms`, in 1 ms ticks (several per tick, as a busy poll phase reads them). */
async function smallLoad(pool: DecodePool, ms: number): Promise<number[]> {
  const lat: number[] = [];
  const pending: Promise<void>[] = [];
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < ms) {
    const due = Math.floor(((performance.now() - start) / 1000) * RATE);
    for (; sent < due; sent++) {
      const t0 = performance.now();
      pending.push(pool.decode(small, smallBytes).then(() => void lat.push(performance.now() - t0)));
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  return lat;
}

async function side(bulkBytes: number): Promise<Run> {
  const pool = new DecodePool(1, 0, {}, { inlineBytes: 0 }, { bulkBytes });
  try {
    // Workers started and warm before anything is measured.
    for (let i = 0; i < 3; i++) await Promise.all([pool.decode(big, bigBytes), pool.decode(small, smallBytes)]);
    const quiet = summary(await smallLoad(pool, 1000));
    let stop = false;
    let bigs = 0;
    const bigLoop = (async () => {
      while (!stop) {
        await pool.decode(big, bigBytes);
        bigs++;
        await new Promise((r) => setTimeout(r, GAP));
      }
    })();
    const loaded = summary(await smallLoad(pool, SECONDS * 1000));
    stop = true;
    await bigLoop;
    return { quiet, loaded, big: bigs };
  } finally {
    await pool.close();
  }
}

const f = (x: number): string => x.toFixed(2);
const show = (r: Run): string =>
  `small bodies alone p50/p99/max ${f(r.quiet.p50)}/${f(r.quiet.p99)}/${f(r.quiet.max)} ms; with ${r.big} big ${f(r.loaded.p50)}/${f(r.loaded.p99)}/${f(r.loaded.max)} ms`;

console.log(
  `# decode lanes: ${Math.round(RATE)} Informs/s (${smallBytes} B) for ${SECONDS} s, a 2,000-parameter GetParameterValuesResponse (${bigBytes} B) every ${GAP} ms after the previous answer; every body on a worker`,
);
const res = await paired<Run>({
  title: "decode lanes, small bodies' max latency with big ones (lower is better)",
  rounds: ROUNDS,
  a: { label: 'big bodies on a worker of their own', run: () => side(65_536) },
  b: { label: 'one shared worker', run: () => side(0) },
  value: (r) => r.loaded.max,
  show,
});
const med = (xs: Run[], pick: (r: Run) => number): string => f(median(xs.map(pick)));
for (const [label, runs] of [
  ['A (own worker)', res.a],
  ['B (shared)', res.b],
] as const) {
  console.log(
    `  ${label}: medians of ${ROUNDS} rounds, small bodies' latency with big ones p50 ${med(runs, (r) => r.loaded.p50)} / p99 ${med(runs, (r) => r.loaded.p99)} / max ${med(runs, (r) => r.loaded.max)} ms; alone max ${med(runs, (r) => r.quiet.max)} ms; added to the max ${med(runs, (r) => r.loaded.max - r.quiet.max)} ms (target: a big response delays no other session by more than 10 ms)`,
  );
}
