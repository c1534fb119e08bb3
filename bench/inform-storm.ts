/**
 * Inform storm (npm run bench:informs): N simulated devices, in this process, each open a
 * full CWMP session against the proxy running in a child process:
 *   Inform (20 parameters) -> InformResponse -> empty POST -> 204
 * as fast as the concurrency allows. Prints sessions/s, p50/p99 session latency, the proxy's
 * event-loop delay p99 and RSS; the same figure for a bare node:http server that only parses
 * the Inform with the same codec and answers a fixed InformResponse (and for the same bare
 * handler behind express), the ratios; RSS per registered device with 100,000 registered;
 * and the event-loop stall while 2,000-parameter GetParameterValuesResponses arrive mid-storm.
 *
 * Options: --devices N (10000) --concurrency C (200) --registered R (100000) --big K (10) --quick
 */
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { encodeSoap, decodeSoap } from '../src/cwmp/soap.js';
import type { Inform, ParameterValueStruct } from '../src/cwmp/types.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '200' },
    registered: { type: 'string', default: '100000' },
    big: { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
  },
});
const DEVICES = values.quick ? 1000 : Number(values.devices);
const CONCURRENCY = Number(values.concurrency);
const REGISTERED = values.quick ? 10_000 : Number(values.registered);
const BIG = Number(values.big);
const here = path.dirname(fileURLToPath(import.meta.url));

// ------------------------------------------------------------------ child process control

interface Child {
  proc: ChildProcess;
  port: number;
  ask(cmd: string, extra?: Record<string, unknown>): Promise<Record<string, unknown>>;
  onResult: ((m: Record<string, unknown>) => void) | null;
}

function startChild(args: string[]): Promise<Child> {
  const proc = fork(path.join(here, 'child-proxy.js'), args, {
    execArgv: ['--expose-gc', ...(process.env.BENCH_PROF && args[0] === 'proxy' ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const waiting = new Map<string, (m: Record<string, unknown>) => void>();
    const child: Child = {
      proc,
      port: 0,
      onResult: null,
      ask(cmd, extra = {}) {
        return new Promise((r) => {
          waiting.set(cmd, r);
          proc.send({ cmd, ...extra });
        });
      },
    };
    proc.on('message', (m: Record<string, unknown>) => {
      if (m.cmd === 'ready') {
        child.port = m.port as number;
        resolve(child);
      } else if (m.cmd === 'error') {
        reject(new Error(String(m.message)));
        console.error('child error:', m.message);
      } else if (m.cmd === 'enqueued-result') child.onResult?.(m);
      else {
        const w = waiting.get(m.cmd as string);
        waiting.delete(m.cmd as string);
        w?.(m);
      }
    });
  });
}

async function stopChild(c: Child): Promise<void> {
  const exited = new Promise((r) => c.proc.once('exit', r));
  c.proc.send({ cmd: 'stop' });
  await exited;
}

// ------------------------------------------------------------------ the simulated devices

const OUI = '00BEEF';
const informTemplate = (serial: string, event: string, crUrl: string): string => {
  const params: ParameterValueStruct[] = [
    { name: 'Device.DeviceInfo.HardwareVersion', value: 'HW-1.0', type: 'xsd:string' },
    { name: 'Device.DeviceInfo.SoftwareVersion', value: 'SW-2.4.1', type: 'xsd:string' },
    { name: 'Device.DeviceInfo.ProvisioningCode', value: 'BENCH', type: 'xsd:string' },
    { name: 'Device.DeviceInfo.SpecVersion', value: '1.0', type: 'xsd:string' },
    { name: 'Device.DeviceInfo.UpTime', value: '12345', type: 'xsd:unsignedInt' },
    { name: 'Device.ManagementServer.ParameterKey', value: '', type: 'xsd:string' },
    { name: 'Device.ManagementServer.ConnectionRequestURL', value: crUrl, type: 'xsd:string' },
    { name: 'Device.ManagementServer.PeriodicInformInterval', value: '86400', type: 'xsd:unsignedInt' },
    { name: 'Device.RootDataModelVersion', value: '2.17', type: 'xsd:string' },
    { name: 'Device.IP.Interface.1.IPv4Address.1.IPAddress', value: '10.0.0.2', type: 'xsd:string' },
    { name: 'Device.IP.Interface.1.Status', value: 'Up', type: 'xsd:string' },
    { name: 'Device.IP.Interface.1.Enable', value: 'true', type: 'xsd:boolean' },
    { name: 'Device.WiFi.SSID.1.SSID', value: 'bench-ssid', type: 'xsd:string' },
    { name: 'Device.WiFi.SSID.1.Enable', value: '1', type: 'xsd:boolean' },
    { name: 'Device.WiFi.Radio.1.Channel', value: '6', type: 'xsd:unsignedInt' },
    { name: 'Device.Ethernet.Interface.1.MACAddress', value: '00:11:22:33:44:55', type: 'xsd:string' },
    { name: 'Device.Hosts.HostNumberOfEntries', value: '3', type: 'xsd:unsignedInt' },
    { name: 'Device.Time.CurrentLocalTime', value: '2026-11-25T12:00:00Z', type: 'xsd:dateTime' },
    { name: 'Device.DeviceInfo.MemoryStatus.Free', value: '65536', type: 'xsd:unsignedInt' },
    { name: 'Device.DeviceInfo.ProcessStatus.CPUUsage', value: '7', type: 'xsd:unsignedInt' },
  ];
  const inform: Inform = {
    method: 'Inform',
    deviceId: { manufacturer: 'BenchCo', oui: OUI, productClass: 'StormBox', serialNumber: serial },
    event: [{ eventCode: event, commandKey: '' }],
    maxEnvelopes: 1,
    currentTime: '2026-11-25T12:00:00Z',
    retryCount: 0,
    parameterList: params,
  };
  return encodeSoap({ cwmpVersion: '1-0', id: `inf-${serial}`, body: inform });
};

function request(agent: http.Agent, port: number, body: string, cookie?: string): Promise<{ status: number; body: string; cookie?: string }> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.from(body, 'utf8');
    const headers: Record<string, string | number> = { 'Content-Type': 'text/xml; charset="utf-8"', 'Content-Length': buf.length };
    if (cookie) headers.Cookie = cookie;
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const sc = res.headers['set-cookie']?.[0]?.split(';')[0];
        resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8'), cookie: sc });
      });
    });
    req.on('error', reject);
    req.end(buf);
  });
}

/** One full session on one keep-alive socket; returns its latency in ms. */
async function session(port: number, informBody: string): Promise<number> {
  const agent = sessionAgent();
  const t0 = performance.now();
  const r1 = await request(agent, port, informBody);
  if (r1.status !== 200) throw new Error(`Inform answered ${r1.status}: ${r1.body.slice(0, 200)}`);
  const r2 = await request(agent, port, '', r1.cookie);
  if (r2.status !== 204) throw new Error(`empty POST answered ${r2.status}: ${r2.body.slice(0, 200)}`);
  releaseAgent(agent);
  return performance.now() - t0;
}

// A pool of single-socket keep-alive agents: one TCP connection per concurrent session, reused.
const agents: http.Agent[] = [];
const sessionAgent = (): http.Agent => agents.pop() ?? new http.Agent({ keepAlive: true, maxSockets: 1 });
const releaseAgent = (a: http.Agent): void => {
  agents.push(a);
};

async function storm(
  port: number,
  count: number,
  serialPrefix: string,
  concurrency = CONCURRENCY,
): Promise<{ rate: number; p50: number; p99: number; seconds: number }> {
  const bodies: string[] = [];
  for (let i = 0; i < count; i++) {
    const serial = `${serialPrefix}${String(i).padStart(7, '0')}`;
    bodies.push(informTemplate(serial, '2 PERIODIC', `http://127.0.0.1:9/${serial}`));
  }
  const lat = new Float64Array(count);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        lat[i] = await session(port, bodies[i]!);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  lat.sort();
  return { rate: count / seconds, p50: lat[Math.floor(count * 0.5)]!, p99: lat[Math.floor(count * 0.99)]!, seconds };
}

// ------------------------------------------------------------------ the 2,000-parameter response

function bigGpvResponse(id: string): string {
  const list: ParameterValueStruct[] = [];
  for (let i = 1; i <= 2000; i++)
    list.push({ name: `Device.Hosts.Host.${i}.PhysAddress`, value: `00:11:22:${(i >> 8).toString(16)}:${(i & 255).toString(16)}:00`, type: 'xsd:string' });
  return encodeSoap({ cwmpVersion: '1-0', id, body: { method: 'GetParameterValuesResponse', parameterList: list } });
}

/** A device that, in each session, receives the queued GPV and answers it with 2,000 parameters. */
async function bigSession(port: number, child: Child, serial: string): Promise<number> {
  const result = new Promise<Record<string, unknown>>((r) => (child.onResult = r));
  await child.ask('enqueue', { deviceKey: `${OUI}-StormBox-${serial}` });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const t0 = performance.now();
  const r1 = await request(agent, port, informTemplate(serial, '6 CONNECTION REQUEST', 'http://127.0.0.1:9/big'));
  const r2 = await request(agent, port, '', r1.cookie);
  const env = decodeSoap(r2.body).envelope;
  if (env?.body.method !== 'GetParameterValues') throw new Error(`expected GetParameterValues, got ${r2.status} ${r2.body.slice(0, 200)}`);
  const r3 = await request(agent, port, bigGpvResponse(env.id!), r1.cookie);
  if (r3.status !== 204) throw new Error(`big GPV answered ${r3.status}`);
  agent.destroy();
  const res = await result;
  if (res.kind !== 'response') throw new Error(`big GPV outcome ${JSON.stringify(res)}`);
  return performance.now() - t0;
}

// ------------------------------------------------------------------ main

const fmt = (n: number, d = 1): string => n.toFixed(d);
const mb = (b: number): string => `${fmt(b / 1048576)} MiB`;

async function main(): Promise<void> {
  console.log(
    `# inform-storm: ${DEVICES} devices, concurrency ${CONCURRENCY}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}`,
  );
  console.log(
    '# workload: full session per device = Inform (20 params, ~5 KB) -> InformResponse -> empty POST -> 204; load generator in a separate process from the server',
  );

  const bare = await startChild(['bare']);
  await storm(bare.port, Math.min(1000, DEVICES), 'WARM'); // JIT warm-up
  const b = await storm(bare.port, DEVICES, 'BARE');
  console.log(`bare node:http (parse + fixed InformResponse): ${fmt(b.rate, 0)} sessions/s, p50 ${fmt(b.p50)} ms, p99 ${fmt(b.p99)} ms`);
  await stopChild(bare);

  const ex = await startChild(['express']);
  await storm(ex.port, Math.min(1000, DEVICES), 'WARM');
  const e = await storm(ex.port, DEVICES, 'EXPR');
  console.log(
    `bare express (same handler): ${fmt(e.rate, 0)} sessions/s, p50 ${fmt(e.p50)} ms, p99 ${fmt(e.p99)} ms; express/node:http ratio ${fmt(e.rate / b.rate, 2)}`,
  );
  await stopChild(ex);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bench-'));
  try {
    const proxy = await startChild(['proxy', dir]);
    const base = await proxy.ask('stats', { gc: true });
    await storm(proxy.port, Math.min(1000, DEVICES), 'WARM');
    await proxy.ask('reset-el');
    const p = await storm(proxy.port, DEVICES, 'SN'); // first sessions: registration (insert)
    const s1 = await proxy.ask('stats');
    console.log(
      `proxy, first Inform of each device (registers it): ${fmt(p.rate, 0)} sessions/s, p50 ${fmt(p.p50)} ms, p99 ${fmt(p.p99)} ms, event-loop delay p99 ${fmt(s1.elP99 as number)} ms, RSS ${mb(s1.rss as number)}`,
    );
    await proxy.ask('reset-el');
    const p2 = await storm(proxy.port, DEVICES, 'SN'); // known devices: the steady state
    const s2 = await proxy.ask('stats');
    console.log(
      `proxy, known devices (periodic Informs): ${fmt(p2.rate, 0)} sessions/s, p50 ${fmt(p2.p50)} ms, p99 ${fmt(p2.p99)} ms, event-loop delay p99 ${fmt(s2.elP99 as number)} ms, RSS ${mb(s2.rss as number)}`,
    );
    console.log(`ratio proxy/bare node:http: ${fmt(p2.rate / b.rate, 2)} (target >= 0.8); sessions/s target >= 1500`);

    // 2,000-parameter GetParameterValuesResponses arriving mid-storm. A saturated server's
    // event-loop delay measures queueing, not stalls, so this runs a steady background load
    // (concurrency 8) and compares the worst event-loop delay without and with big responses.
    if (BIG > 0) {
      await storm(proxy.port, 1, 'BIGDEV'); // register the big device
      const background = Math.min(DEVICES, 4000);
      await proxy.ask('reset-el');
      await storm(proxy.port, background, 'SN', 8);
      const calm = await proxy.ask('stats');
      await proxy.ask('reset-el');
      const bigLat: number[] = [];
      const stormP = storm(proxy.port, background, 'SN', 8);
      for (let i = 0; i < BIG; i++) bigLat.push(await bigSession(proxy.port, proxy, 'BIGDEV0000000'));
      const s3 = await stormP;
      const st = await proxy.ask('stats');
      console.log(
        `event-loop delay under a steady ${background}-session background load (concurrency 8): max ${fmt(calm.elMax as number)} ms without big responses; max ${fmt(st.elMax as number)} ms, p99 ${fmt(st.elP99 as number)} ms with ${BIG} x 2,000-parameter GetParameterValuesResponse (decoded on a worker) (target: big responses add no stall > 10 ms); background ${fmt(s3.rate, 0)} sessions/s; big session latency max ${fmt(Math.max(...bigLat))} ms`,
      );
    }

    // RSS per registered (idle) device: their truth is in the store, not in RAM.
    const steady = await proxy.ask('stats', { gc: true });
    const registered = steady.devices as number;
    const chunk = 10_000;
    for (let from = 0; from < REGISTERED - registered; from += chunk) {
      await proxy.ask('seed', { from, to: Math.min(from + chunk, REGISTERED - registered) });
    }
    const full = await proxy.ask('stats', { gc: true });
    const n = full.devices as number;
    const added = n - registered;
    console.log(
      `RSS with ${n} registered devices: ${mb(full.rss as number)} = ${fmt((full.rss as number) / n, 0)} bytes per registered device all told (process at start ${mb(base.rss as number)}); growth from ${registered} to ${n} devices: ${fmt(((full.rss as number) - (steady.rss as number)) / Math.max(1, added), 0)} bytes per added idle device (target <= 2048; ${registered} registered through sessions, ${added} seeded into the store)`,
    );
    await stopChild(proxy);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
