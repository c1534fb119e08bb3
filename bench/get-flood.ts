/**
 * A hostile Get on a CWMP-backed agent (issue 15 item 4): 1,500 copies of "Device." in one Get,
 * in process (the Interworking layer in front of a simulated TR-181 CPE grown to a few thousand
 * parameters; the handlers as the endpoint calls them). Prints, one line per figure, the answer
 * (copies answered, copies refused with 7005, Record size), the CWMP names read, and the process
 * RSS growth (peak) while it is handled. Run: npm run build && node dist/bench/get-flood.js [--hosts N]
 */
import { parseArgs } from 'node:util';
import { encodeRecord, noSessionRecord } from '../src/usp/codec/record.js';
import { OPERATOR, request, TrustWorld } from '../test/helpers/trust-world.js';

const { values } = parseArgs({ options: { hosts: { type: 'string', default: '250' }, copies: { type: 'string', default: '1500' } } });
const HOSTS = Number(values.hosts);
const COPIES = Number(values.copies);
const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
const peakRss = (): number => process.resourceUsage().maxRSS * 1024;

const w = await new TrustWorld('Device').start();
for (let i = 0; i < HOSTS; i++) w.sim.addInstance('Device.Hosts.Host.');
// Learn the model first: the figures below are the Get's own.
await w.ask(OPERATOR, request('getSupportedDm', { objPaths: ['Device.'], returnParams: true }));
const one = (await w.ask(OPERATOR, request('get', { paramPaths: ['Device.'] }))).body.response!.getResp!.reqPathResults[0]!;
const perCopy = one.resolvedPathResults.reduce((n, r) => n + Object.keys(r.resultParams).length, 0);

(globalThis as { gc?: () => void }).gc?.();
const rssBefore = process.memoryUsage().rss;
const peakBefore = peakRss();
const sentBefore = w.port.sent.length;
const t0 = performance.now();
const resp = await w.ask(OPERATOR, request('get', { paramPaths: Array.from({ length: COPIES }, () => 'Device.') }));
const ms = performance.now() - t0;
const peakAfter = peakRss();
const rssAfter = process.memoryUsage().rss;

const results = resp.body.response?.getResp?.reqPathResults ?? [];
const answered = results.filter((r) => !r.errCode).length;
const refused = results.filter((r) => r.errCode === 7005).length;
const names = w.port.sent.slice(sentBefore).flatMap(({ rpc }) => (rpc.method === 'GetParameterValues' ? rpc.parameterNames : [])).length;
const record = encodeRecord(noSessionRecord(w.device.endpointId, OPERATOR, resp)).length;
console.log(`get-flood: ${COPIES} x "Device." on a CWMP-backed agent of ${perCopy} parameters (usp.maxGetParams ${w.config.usp.maxGetParams})`);
console.log(
  `  answer            ${resp.header.msgType}: ${answered} copies answered, ${refused} refused with 7005, Record ${mib(record)} in ${ms.toFixed(0)} ms`,
);
console.log(`  CWMP names read   ${names} (each parameter once)`);
console.log(`  RSS growth        ${mib(Math.max(0, peakAfter - Math.max(peakBefore, rssBefore)))} peak, ${mib(rssAfter - rssBefore)} retained`);
w.close();
