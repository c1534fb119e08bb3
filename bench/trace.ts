/**
 * What the translation trace (src/ops/trace.ts) costs: the time per traced USP request (its RPC
 * notes and the entry made from the request and answer Msgs) and the heap a full trace holds.
 * Workload: every agent gets perAgent Set requests of 8 paths, each causing 2 CWMP RPCs (one
 * settled, one faulted); the rings are then full. Prints the workload and the figures.
 *   node --expose-gc dist/bench/trace.js [agents=1000] [perAgent=50]
 */
import { TranslationTrace } from '../src/ops/trace.js';
import { set } from '../src/tools/controller/client.js';
import { decodeMsg, encodeMsg, errorMsg, type Msg } from '../src/usp/codec/record.js';
import type { RpcOutcome } from '../src/cwmp/session-types.js';

const AGENTS = Number(process.argv[2] ?? 1000);
const PER_AGENT = Number(process.argv[3] ?? 50);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) console.log('(run with --expose-gc for the heap figure)');

const objs = Array.from({ length: 8 }, (_, i) => ({ objPath: `Device.WiFi.AccessPoint.${i + 1}.Security.`, params: { KeyPassphrase: 'x'.repeat(16) } }));
const req: Msg = decodeMsg(encodeMsg({ ...set(objs), header: { msgId: 'bench-0001', msgType: 'SET' } }));
const resp: Msg = decodeMsg(encodeMsg(errorMsg('bench-0001', 7002, 'the device did not answer')));
const ok: RpcOutcome = { kind: 'response', response: { method: 'SetParameterValuesResponse', status: 0 } };
const fault: RpcOutcome = {
  kind: 'fault',
  fault: { method: 'Fault', soapFaultCode: 'Client', faultCode: 9007, faultString: 'Invalid value', setParameterValuesFault: [] },
};

async function main(): Promise<void> {
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const trace = new TranslationTrace({ perAgent: PER_AGENT, maxAgents: AGENTS });
  const n = AGENTS * PER_AGENT;
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    const scope = {};
    await trace.rpc(scope, { method: 'SetParameterValues', names: 8 }, async () => ok);
    await trace.rpc(scope, { method: 'SetParameterValues', names: 8 }, async () => fault);
    trace.request({ scope, fromId: 'proto::bench-controller', toId: `os::00D09E-SN${String(i % AGENTS).padStart(8, '0')}`, msg: req, resp, ms: 12 });
  }
  const ms = performance.now() - t;
  gc?.();
  const held = process.memoryUsage().heapUsed - before;
  console.log(`workload: ${AGENTS.toLocaleString('en-US')} agents x ${PER_AGENT} SET requests (8 paths, 2 CWMP RPCs each); Node ${process.version}`);
  console.log(`traced requests: ${n.toLocaleString('en-US')} in ${Math.round(ms)} ms = ${((ms * 1000) / n).toFixed(1)} us per request (rpc notes + entry)`);
  if (gc) console.log(`heap held by the full trace: ${(held / 2 ** 20).toFixed(0)} MiB = ${Math.round(held / n)} bytes per entry (${trace.agents} agents)`);
}

void main();
