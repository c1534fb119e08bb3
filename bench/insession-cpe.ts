/**
 * bench:insession's CPE child: one simulated TR-181 CPE (src/tools/sim, strict quirks) in its own
 * process, with timestamps taken at the CPE: when each GetParameterValues arrived (the answer to
 * the POST before it) and when its GetParameterValuesResponse left (the next POST started), on
 * the wall clock (performance.timeOrigin + now, comparable across processes of one machine).
 *   node insession-cpe.js <acs url> <serial>
 * IPC: ready {deviceKey}; {cmd:'take'} -> {cmd:'take', gpv: [arrived, answered][]} (and clears).
 */
import { performance } from 'node:perf_hooks';
import { deviceKeyOf } from '../src/cwmp/device-id.js';
import { Fleet } from '../src/tools/sim/fleet.js';
import { CpeHttpClient } from '../src/tools/sim/http-client.js';
import { STRICT_SIM } from '../test/helpers/sim.js';

const [acsUrl, serial] = process.argv.slice(2);
if (!acsUrl || !serial || !process.send) throw new Error('usage: insession-cpe.js <acs url> <serial> (child of bench/insession.js)');
process.on('disconnect', () => process.exit(0));
const wall = (): number => performance.timeOrigin + performance.now();

let gpv: [number, number][] = [];
/** When the GetParameterValues now at the CPE arrived (NaN: none). */
let arrived = Number.NaN;
const origPost = CpeHttpClient.prototype.post;
CpeHttpClient.prototype.post = async function (this: CpeHttpClient, body: string) {
  const t0 = wall();
  if (!Number.isNaN(arrived)) {
    gpv.push([arrived, t0]);
    arrived = Number.NaN;
  }
  const res = await origPost.call(this, body);
  const t1 = wall();
  // The method is the first element of the SOAP Body; a GetParameterValuesResponse is never sent by the ACS.
  if (/<cwmp:GetParameterValues[\s>]/.test(res.body)) arrived = t1;
  return res;
};

const fleet = new Fleet({ quirks: STRICT_SIM, acsUrl, count: 1, model: 'tr181', serials: [serial], periodicIntervalS: null });
await fleet.start();
const dev = fleet.device(serial);
if (!dev) throw new Error(`no simulated device ${serial}`);

process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'take') {
    process.send!({ cmd: 'take', gpv });
    gpv = [];
  } else if (m.cmd === 'stop') void fleet.stop().then(() => process.exit(0));
});
process.send({ cmd: 'ready', deviceKey: deviceKeyOf(dev.deviceId) });
