/**
 * Connection requests per second and wake-up latency (issue 19 item 5): N simulated devices
 * reachable over HTTP, N behind NAT reached over UDP through the proxy's STUN server (TR-069
 * Annex G) and, when prosody is installed, N reached over XMPP (Annex K, a local prosody), all on
 * loopback against one proxy. For each transport, every device is woken
 * at once; the wake-up latency of a device is the time from the connection request to its
 * Inform with "6 CONNECTION REQUEST". Prints one line per transport.
 * Run: npm run build && node dist/bench/connreq.js [--devices 1000]
 */
import { parseArgs } from 'node:util';
import { deviceKeyOf } from '../src/cwmp/device-id.js';
import { Fleet } from '../src/tools/sim/fleet.js';
import { startTestProxy } from '../test/helpers/test-proxy.js';
import { startProsody } from '../test/helpers/prosody.js';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '1000' } } });
const N = Number(values.devices);

const xmppd = await startProsody(
  Object.fromEntries([['acs', 'acs-secret'], ...Array.from({ length: N }, (_, i) => [`bx${String(i + 1).padStart(6, '0')}`, 'dev'])]),
);
const tp = await startTestProxy({
  ...(xmppd
    ? {
        'acs.connectionRequest.xmpp.enabled': true,
        'acs.connectionRequest.xmpp.service': xmppd.service,
        'acs.connectionRequest.xmpp.domain': xmppd.domain,
        'acs.connectionRequest.xmpp.password': 'acs-secret',
        'acs.connectionRequest.xmpp.timeoutMs': 30_000,
      }
    : {}),
  'acs.connectionRequest.udp.enabled': true,
  'acs.connectionRequest.udp.host': '127.0.0.1',
  'acs.connectionRequest.udp.port': 0,
  'acs.connectionRequest.udp.stunServerAddress': '127.0.0.1',
  // Loopback sends everything from one source address: no per-source limit for the bench.
  'acs.connectionRequest.udp.ratePerSecond': 1_000_000,
  'acs.connectionRequest.udp.timeoutMs': 30_000,
  // Devices behind NAT are known to be (no HTTP attempt first); HTTP-only devices have no binding.
  'acs.connectionRequest.order': ['udp', 'xmpp', 'http'],
  'acs.connectionRequest.timeoutMs': 30_000,
  'acs.maxSessions': 100_000,
});
const common = { acsUrl: tp.acsUrl, count: N, model: 'tr181', periodicIntervalS: null, concurrency: 200 };
const httpFleet = new Fleet({ ...common, serialPrefix: 'BH' });
const udpFleet = new Fleet({ ...common, serialPrefix: 'BU', nat: { mode: 'udp' } });
const t0 = performance.now();
const xmppFleet = xmppd
  ? new Fleet({ ...common, serialPrefix: 'BX', nat: { mode: 'xmpp', xmpp: { service: xmppd.service, domain: xmppd.domain, password: 'dev', plain: true } } })
  : null;
await httpFleet.start();
await udpFleet.start();
await xmppFleet?.start();
const nat = tp.proxy.nat!;
const deadline = Date.now() + 60_000;
while (udpFleet.devices.some((d) => nat.bindings.get(deviceKeyOf(d.deviceId))?.port !== udpFleet.nat(d.serial)!.port)) {
  if (Date.now() > deadline) throw new Error('bindings not learned within 60 s');
  await new Promise((r) => setTimeout(r, 50));
}
while (xmppFleet?.devices.some((d) => !tp.proxy.xmpp!.reachable(deviceKeyOf(d.deviceId))) || (xmppd && !tp.proxy.xmpp!.connected)) {
  if (Date.now() > deadline) throw new Error('JIDs not learned within 60 s');
  await new Promise((r) => setTimeout(r, 50));
}
console.log(
  `connreq: ${N} devices each over HTTP, UDP via STUN${xmppd ? ', XMPP via prosody' : ' (XMPP skipped: prosody not installed)'} on loopback, booted in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);

const arrived = new Map<string, number>();
tp.proxy.engine.on('inform', ({ device, inform }) => {
  if (inform.event.some((e) => e.eventCode === '6 CONNECTION REQUEST')) arrived.set(device.deviceKey, performance.now());
});

async function wakeAll(label: string, fleet: Fleet): Promise<void> {
  await new Promise((r) => setTimeout(r, 500)); // the boot sessions' lingering ends
  const devices = await Promise.all(fleet.devices.map((d) => tp.proxy.store.getDevice(deviceKeyOf(d.deviceId))));
  const sent = new Map<string, number>();
  const start = performance.now();
  const results = await Promise.all(
    devices.map((d) => {
      sent.set(d!.deviceKey, performance.now());
      const creds = d!.connReqUsername ? { username: d!.connReqUsername, password: d!.connReqPassword ?? '' } : null;
      return tp.proxy.connReq.request(d!.deviceKey, d!.connectionRequestUrl!, creds);
    }),
  );
  const end = Date.now() + 60_000;
  while (devices.some((d) => !arrived.has(d!.deviceKey)) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  const lat = devices
    .map((d) => (arrived.get(d!.deviceKey) ?? Number.NaN) - sent.get(d!.deviceKey)!)
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  const last = Math.max(...devices.map((d) => arrived.get(d!.deviceKey) ?? 0));
  const pct = (p: number): string => `${(lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? Number.NaN).toFixed(0)} ms`;
  const ok = results.filter((r) => r.ok).length;
  console.log(
    `  ${label.padEnd(5)} ${((lat.length / (last - start)) * 1000).toFixed(0)} wake-ups/s, latency p50 ${pct(50)} p99 ${pct(99)}; ${lat.length}/${devices.length} sessions, ${ok} requests ok`,
  );
  for (const d of devices) arrived.delete(d!.deviceKey);
}

await wakeAll('http', httpFleet);
await wakeAll('udp', udpFleet);
if (xmppFleet) await wakeAll('xmpp', xmppFleet);
await httpFleet.stop();
await udpFleet.stop();
await xmppFleet?.stop();
await tp.stop();
await xmppd?.stop();
