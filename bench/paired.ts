/**
 * Paired rounds for comparison benchmarks on a shared machine: product (A) and baseline (B) run
 * interleaved A B, B A, A B ... so that drifting load from other jobs hits both alike; every round
 * is printed with its A/B ratio, then the median and min-max of the paired ratios. Before each
 * round the CPU of the whole machine is read from /proc/stat: when it is not idle, the bench waits
 * a little, then prints a warning line and goes on (never waits forever).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** Busy and total jiffies of all cores (first line of /proc/stat); null where there is no /proc. */
function cpuTimes(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** Fraction of the machine's CPU (all cores) busy during `ms`; null where unknown. */
export async function cpuBusy(ms = 500): Promise<number | null> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return null;
  return (b.busy - a.busy) / (b.total - a.total);
}

export interface IdleOptions {
  /** Busy fraction of all cores under which the machine counts as idle (0.15). */
  maxBusy?: number;
  /** How long to wait for idleness before warning and going on (2,000 ms). */
  waitMs?: number;
  /** Printed in front of the warning. */
  label?: string;
}

/** Waits (bounded) for an idle machine; prints a warning and returns the last busy fraction if not. */
export async function idleCheck(o: IdleOptions = {}): Promise<number | null> {
  const maxBusy = o.maxBusy ?? 0.15;
  const deadline = Date.now() + (o.waitMs ?? 2000);
  let busy = await cpuBusy();
  while (busy !== null && busy > maxBusy && Date.now() < deadline) busy = await cpuBusy();
  if (busy !== null && busy > maxBusy)
    console.log(
      `  WARNING${o.label ? ` ${o.label}` : ''}: machine not idle before the round: ${(busy * 100).toFixed(0)}% of ${os.cpus().length} cores busy (load average ${os.loadavg()[0]!.toFixed(1)}); figures are shared with other work`,
    );
  return busy;
}

export interface PairedSide<R> {
  label: string;
  /** One measured run; returns its result. */
  run(): Promise<R>;
}

export interface PairedOptions<R> extends IdleOptions {
  title: string;
  rounds: number;
  a: PairedSide<R>;
  b: PairedSide<R>;
  /** The figure compared (higher is better), e.g. requests per second. */
  value(r: R): number;
  /** How a result is printed in its round line. */
  show(r: R): string;
}

export interface PairedResult<R> {
  a: R[];
  b: R[];
  ratios: number[];
  ratio: { median: number; min: number; max: number };
  medianA: number;
  medianB: number;
  /** Rounds started on a machine that was not idle. */
  busyRounds: number;
}

/** A median as printed: whole numbers for rates, two decimals for small values (milliseconds). */
const figure = (x: number): string => x.toFixed(Math.abs(x) < 10 ? 2 : 0);

export const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const n = s.length;
  if (n === 0) return Number.NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

/** Runs `rounds` paired rounds (order alternating A B / B A) and prints each and the summary. */
export async function paired<R>(o: PairedOptions<R>): Promise<PairedResult<R>> {
  const out: PairedResult<R> = { a: [], b: [], ratios: [], ratio: { median: 0, min: 0, max: 0 }, medianA: 0, medianB: 0, busyRounds: 0 };
  console.log(`# ${o.title}: ${o.rounds} paired rounds (A = ${o.a.label}, B = ${o.b.label}; order A B, B A, ...)`);
  for (let i = 0; i < o.rounds; i++) {
    const busy = await idleCheck({ ...o, label: `round ${i + 1}` });
    if (busy !== null && busy > (o.maxBusy ?? 0.15)) out.busyRounds++;
    const order = i % 2 === 0 ? [o.a, o.b] : [o.b, o.a];
    const res = new Map<PairedSide<R>, R>();
    for (const side of order) res.set(side, await side.run());
    const ra = res.get(o.a)!;
    const rb = res.get(o.b)!;
    const ratio = o.value(ra) / o.value(rb);
    out.a.push(ra);
    out.b.push(rb);
    out.ratios.push(ratio);
    console.log(
      `  round ${i + 1} (${order[0] === o.a ? 'A B' : 'B A'}${busy === null ? '' : `, ${(busy * 100).toFixed(0)}% busy before`}): A ${o.show(ra)} | B ${o.show(rb)} | A/B ${ratio.toFixed(2)}`,
    );
  }
  out.ratio = { median: median(out.ratios), min: Math.min(...out.ratios), max: Math.max(...out.ratios) };
  out.medianA = median(out.a.map(o.value));
  out.medianB = median(out.b.map(o.value));
  console.log(
    `${o.title}: ratio ${o.a.label} / ${o.b.label} median ${out.ratio.median.toFixed(2)} (min ${out.ratio.min.toFixed(2)}, max ${out.ratio.max.toFixed(2)}) over ${o.rounds} paired rounds; medians A ${figure(out.medianA)}, B ${figure(out.medianB)}${out.busyRounds ? `; ${out.busyRounds} round(s) started on a busy machine` : ''}`,
  );
  return out;
}
