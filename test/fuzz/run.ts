/**
 * `npm run fuzz [-- --runs N --seed S]`: N mutated inputs (default 100,000) through decodeSoap,
 * decodeRecord+decodeMsg and parsePath. Anything but the typed error (SoapError, UspRecordError,
 * PathError) is a crash: printed with a reproducer and the exit code is 1. Prints counts per target.
 * Then runs/20 inflated SOAP bodies (element, attribute and warning floods spliced into the seeds)
 * through decodeSoap with a small parse budget: each must be refused as over-budget (or another
 * SoapError) when over it, and keep at most the warning cap when decoded (issue 14 item 4).
 */
import { decodeSoap, SoapError } from '../../src/cwmp/soap.js';
import { decodeMsg, decodeRecord, UspRecordError } from '../../src/usp/codec/record.js';
import { parsePath, PathError } from '../../src/usp/path/syntax.js';
import { loadCorpus, mutate, mutateText, Rng } from './corpus.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) {
    console.error(`--${name} needs a non-negative integer`);
    process.exit(2);
  }
  return v;
}

interface Count {
  tried: number;
  ok: number;
  typed: number;
  crashes: number;
  slowestMs: number;
}
const newCount = (): Count => ({ tried: 0, ok: 0, typed: 0, crashes: 0, slowestMs: 0 });

const runs = arg('runs', 100_000);
const seed = arg('seed', 1);
const corpus = loadCorpus();
const rng = new Rng(seed);
const soapBytes = corpus.soap.map((s) => new Uint8Array(Buffer.from(s, 'utf8')));
const pathBytes = corpus.paths.map((s) => new Uint8Array(Buffer.from(s, 'utf8')));
const counts = { soap: newCount(), record: newCount(), path: newCount(), budget: newCount() };
const crashes: string[] = [];

type Target = keyof typeof counts;
const targets: Target[] = corpus.records.length ? ['soap', 'record', 'path'] : ['soap', 'path'];
if (!corpus.records.length) console.log('no ../shared/reference/usp-samples: the Record target is skipped');

function one(target: Target, i: number): void {
  const c = counts[target];
  c.tried++;
  let input: string | Uint8Array;
  let fn: () => unknown;
  let typed: (e: unknown) => boolean;
  if (target === 'soap') {
    const s = mutateText(rng.pick(corpus.soap), rng, soapBytes);
    input = s;
    fn = () => decodeSoap(s);
    typed = (e) => e instanceof SoapError;
  } else if (target === 'record') {
    const b = mutate(rng.pick(corpus.records), rng, corpus.records);
    input = b;
    fn = () => {
      const rec = decodeRecord(b);
      const rt = rec.recordType;
      if (rt.kind === 'noSessionContext') decodeMsg(rt.payload);
      else if (rt.kind === 'sessionContext') for (const p of ([] as Uint8Array[]).concat(rt.payload)) decodeMsg(p);
    };
    typed = (e) => e instanceof UspRecordError;
  } else {
    const s = mutateText(rng.pick(corpus.paths), rng, pathBytes);
    input = s;
    fn = () => parsePath(s);
    typed = (e) => e instanceof PathError;
  }
  const t0 = performance.now();
  try {
    fn();
    c.ok++;
  } catch (e) {
    if (typed(e)) c.typed++;
    else {
      c.crashes++;
      if (crashes.length < 10) {
        const repro =
          typeof input === 'string'
            ? JSON.stringify(input.slice(0, 2000))
            : Buffer.from(input as Uint8Array)
                .toString('base64')
                .slice(0, 4000);
        crashes.push(
          `${target} #${i}: ${String((e as Error)?.stack ?? e)
            .split('\n')
            .slice(0, 3)
            .join(' | ')}\n  input: ${repro}`,
        );
      }
    }
  }
  c.slowestMs = Math.max(c.slowestMs, performance.now() - t0);
}

// The limits phase: floods spliced into the seeds, decoded under a small budget.
const BUDGET = { maxElements: 2000, maxAttributes: 1000, maxMs: 5_000 };
const MAX_WARNINGS = 5;
const FLOODS: { unit: string; elements: number; attributes: number }[] = [
  { unit: '<a/>', elements: 1, attributes: 0 },
  { unit: '<x a="1" b="2" c="3"/>', elements: 1, attributes: 3 },
  { unit: '<Unexpected>t</Unexpected>', elements: 1, attributes: 0 },
  { unit: '<p:q xmlns:p="urn:x"><r/></p:q>', elements: 2, attributes: 1 },
];
let overBudgetRefused = 0;

function budgetOne(i: number): void {
  const c = counts.budget;
  c.tried++;
  const seedText = rng.pick(corpus.soap);
  const flood = rng.pick(FLOODS);
  const n = rng.int(4000);
  // Inside the RPC element when there is one (warnings per unexpected element), else after the first tag.
  const body = seedText.indexOf('<soap-env:Body>');
  const rpcEnd = body === -1 ? -1 : seedText.indexOf('>', seedText.indexOf('<', body + 15) + 1);
  const at = rpcEnd === -1 ? seedText.indexOf('>') + 1 : rpcEnd + 1;
  const input = seedText.slice(0, at) + flood.unit.repeat(n) + seedText.slice(at);
  // Over by the flood alone: must be refused. Within even counting every tag and attribute-like
  // text of the seed: must not be refused as over-budget (a mutation may still make it malformed).
  const over = n * flood.elements > BUDGET.maxElements || n * flood.attributes > BUDGET.maxAttributes;
  const seedElements = seedText.match(/<[A-Za-z_]/g)?.length ?? 0;
  const seedAttributes = seedText.match(/=["']/g)?.length ?? 0;
  const within = n * flood.elements + seedElements <= BUDGET.maxElements && n * flood.attributes + seedAttributes <= BUDGET.maxAttributes;
  const t0 = performance.now();
  let problem: string | null = null;
  try {
    const r = decodeSoap(input, { budget: BUDGET, maxWarnings: MAX_WARNINGS });
    c.ok++;
    if (over) problem = `decoded although ${n} x ${flood.unit} is over the budget`;
    else if (r.warnings.length > MAX_WARNINGS) problem = `${r.warnings.length} warnings kept (cap ${MAX_WARNINGS})`;
  } catch (e) {
    if (!(e instanceof SoapError)) problem = String((e as Error)?.stack ?? e);
    else {
      c.typed++;
      if (e.code === 'over-budget') {
        overBudgetRefused++;
        if (within && !/took more than/.test(e.message)) problem = `refused as over-budget although within it: ${e.message}`;
      }
    }
  }
  c.slowestMs = Math.max(c.slowestMs, performance.now() - t0);
  if (problem !== null) {
    c.crashes++;
    if (crashes.length < 10)
      crashes.push(`budget #${i}: ${problem.split('\n').slice(0, 3).join(' | ')}\n  flood: ${n} x ${flood.unit} in ${JSON.stringify(seedText.slice(0, 200))}`);
  }
}

console.log(`fuzz: ${runs} inputs, seed ${seed}; seeds: ${corpus.soap.length} SOAP, ${corpus.records.length} Records, ${corpus.paths.length} paths`);
const started = Date.now();
for (let i = 0; i < runs; i++) {
  one(targets[i % targets.length]!, i);
  if ((i + 1) % 20_000 === 0) console.log(`  ${i + 1} / ${runs}`);
}
const budgetRuns = Math.ceil(runs / 20);
for (let i = 0; i < budgetRuns; i++) budgetOne(i);
console.log(
  `limits: ${budgetRuns} flooded bodies under a budget of ${BUDGET.maxElements} elements / ${BUDGET.maxAttributes} attributes, ${overBudgetRefused} refused as over-budget`,
);
for (const [name, c] of Object.entries(counts)) {
  console.log(`${name.padEnd(7)} tried ${c.tried}  decoded ${c.ok}  typed errors ${c.typed}  crashes ${c.crashes}  slowest ${c.slowestMs.toFixed(1)} ms`);
}
const total = Object.values(counts).reduce((n, c) => n + c.tried, 0);
console.log(`total ${total} inputs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
if (crashes.length) {
  console.log('CRASHES (not the typed error):\n' + crashes.join('\n'));
  process.exit(1);
}
