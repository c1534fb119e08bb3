/**
 * What one big CPE body costs the main thread on its way to a decode worker and back (issue 22
 * item 4: a 2,000-parameter GetParameterValuesResponse must not hold up other sessions), in paired
 * rounds through the pool as configured by default (acs.parseWorkers 1, acs.bulkParseBytes 64 KiB):
 *   A = DecodePool.decodeBody: the body's chunks, as the socket gave them, posted to the worker,
 *       which joins them and decodes the text;
 *   B = what the ACS did before: the chunks joined and the text decoded on the main thread
 *       (body-text.ts), then the string posted (DecodePool.decode).
 * Each run hands over --bodies bodies one after another (the next once the previous is answered),
 * each in fresh 64 KiB chunks made before the run. Printed per side: the main thread's busy time per
 * body (event-loop utilisation over the run: hand-over, the answer's deserialisation, the rest), the
 * longest hand-over (synchronous) and the worst event-loop delay.
 *   npm run build && node dist/bench/big-body.js [--rounds 6] [--bodies 40] [--params 2000]
 */
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { bodyText } from '../src/cwmp/body-text.js';
import { DecodePool, type DecodeResult } from '../src/cwmp/decode-pool.js';
import { encodeSoap } from '../src/cwmp/soap.js';
import type { ParameterValueStruct } from '../src/cwmp/types.js';
import { paired } from './paired.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    bodies: { type: 'string', default: '40' },
    params: { type: 'string', default: '2000' },
  },
});
const ROUNDS = Number(values.rounds);
const BODIES = Number(values.bodies);
const PARAMS = Number(values.params);
const CHUNK = 64 * 1024;

const list: ParameterValueStruct[] = Array.from({ length: PARAMS }, (_, i) => ({
  name: `Device.Hosts.Host.${i + 1}.PhysAddress`,
  value: `00:11:22:33:${(i >> 8) & 255}:${i & 255}`,
  type: 'xsd:string',
}));
const big = Buffer.from(encodeSoap({ cwmpVersion: '1-0', id: 'acs-2', body: { method: 'GetParameterValuesResponse', parameterList: list } }));
const CONTENT_TYPE = 'text/xml; charset="utf-8"';

/** The body in fresh chunks, as separate socket reads give them. */
function chunksOf(): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < big.length; at += CHUNK) out.push(Buffer.from(big.subarray(at, Math.min(big.length, at + CHUNK))));
  return out;
}

interface Run {
  busyMsPerBody: number;
  handOverMax: number;
  loopMax: number;
}

type HandOver = (chunks: Buffer[]) => Promise<DecodeResult>;

async function run(handOver: HandOver): Promise<Run> {
  const bodies = Array.from({ length: BODIES }, chunksOf);
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const elu0 = performance.eventLoopUtilization();
  let handOverMax = 0;
  for (const chunks of bodies) {
    const t0 = performance.now();
    const answer = handOver(chunks);
    handOverMax = Math.max(handOverMax, performance.now() - t0);
    const r = await answer;
    if (r.envelope?.body.method !== 'GetParameterValuesResponse' || r.envelope.body.parameterList.length !== PARAMS) throw new Error('bad decode');
  }
  const elu = performance.eventLoopUtilization(elu0);
  h.disable();
  return { busyMsPerBody: elu.active / BODIES, handOverMax, loopMax: h.max / 1e6 };
}

const pool = new DecodePool(1, 0, {}, { inlineBytes: 8192 }, { bulkBytes: 65_536 });
const a: HandOver = (chunks) => pool.decodeBody(chunks, big.length, CONTENT_TYPE);
const b: HandOver = (chunks) => pool.decode(bodyText(Buffer.concat(chunks), CONTENT_TYPE).text, big.length);
// Both paths once first: the worker started and its parser compiled before anything is measured.
for (let i = 0; i < 20; i++) await a(chunksOf()).then(() => b(chunksOf()));

console.log(
  `# big-body: ${PARAMS}-parameter GetParameterValuesResponse (${big.length} bytes in ${Math.ceil(big.length / CHUNK)} chunks), ${BODIES} per run one after another, bulk lane worker, Node ${process.version}`,
);
const show = (r: Run): string =>
  `main thread ${r.busyMsPerBody.toFixed(2)} ms per body, longest hand-over ${r.handOverMax.toFixed(2)} ms, event-loop delay max ${r.loopMax.toFixed(1)} ms`;
const res = await paired<Run>({
  title: 'main-thread time per big body (lower is better)',
  rounds: ROUNDS,
  a: { label: 'chunks to the worker', run: () => run(a) },
  b: { label: 'joined and decoded on the main thread', run: () => run(b) },
  value: (r) => r.busyMsPerBody,
  show,
});
const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
console.log(
  `big body, main thread per body: A ${res.medianA.toFixed(2)} ms vs B ${res.medianB.toFixed(2)} ms (A/B ${res.ratio.median.toFixed(2)}, ${res.ratio.min.toFixed(2)}-${res.ratio.max.toFixed(2)}); longest hand-over A ${med(res.a.map((r) => r.handOverMax)).toFixed(2)} vs B ${med(res.b.map((r) => r.handOverMax)).toFixed(2)} ms; event-loop delay max A ${med(res.a.map((r) => r.loopMax)).toFixed(1)} vs B ${med(res.b.map((r) => r.loopMax)).toFixed(1)} ms (medians of ${ROUNDS} rounds)`,
);
await pool.close();
