/**
 * The info line of one answered USP request (`node dist/bench/log-line.js [lines]`): CPU per line of
 * pino's `log.info(fields, 'USP request')` against app/log.ts `infoLine` (the same bytes), a JSON
 * logger with a child's bindings writing into a sink that only counts; 3 alternated rounds.
 */
import { createLogger, infoLine } from '../src/app/log.js';
import { requestLogFields } from '../src/usp/agent/request-log.js';
import type { Msg } from '../src/usp/codec/record.js';

const LINES = Number(process.argv[2] ?? 300_000);
let bytes = 0;
const log = createLogger('info', { write: (s: string) => void (bytes += s.length) }).child({ module: 'usp' });
const req: Msg = {
  header: { msgId: 'bench-12345', msgType: 'GET' },
  body: { msgBody: 'request', request: { reqType: 'get', get: { paramPaths: ['Device.LocalAgent.EndpointID'] } } },
};
const resp: Msg = {
  header: { msgId: 'bench-12345', msgType: 'GET_RESP' },
  body: { msgBody: 'response', response: { respType: 'getResp', getResp: { reqPathResults: [] } } },
};
const fields = requestLogFields('proto::bench-ctl', 'os::00BENC-SEED00000001', req, resp, 1.2);

const perLine = (write: () => void): number => {
  const t0 = process.cpuUsage();
  for (let i = 0; i < LINES; i++) write();
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / LINES;
};
console.log(`# info line of a USP Get (${LINES} lines per run, Node ${process.version}); us of CPU per line, pino / infoLine`);
for (let round = 1; round <= 3; round++) {
  const a = perLine(() => log.info(fields, 'USP request'));
  const b = perLine(() => infoLine(log, fields, 'USP request'));
  console.log(`round ${round}: pino ${a.toFixed(2)} us, infoLine ${b.toFixed(2)} us, ratio ${(b / a).toFixed(2)}`);
}
if (bytes === 0) throw new Error('nothing written');
