/**
 * CPE authentication cost (npm run bench:cpe-auth): the Inform session rate and the CPU per
 * session of the ACS (AcsServer + SessionEngine + SQLite store, as the proxy builds them), for
 * Digest with the shared login without nonce tracking (the ACS before per-device credentials),
 * the same with nc tracked per nonce, and Digest with per-device credentials (acs.auth.perDevice,
 * every device already provisioned: the steady state) with nc tracked. Each session, as a CPE runs it on one keep-alive
 * connection: Inform with Digest (the device's nonce from its last challenge, nc + 1; a 401 and a
 * fresh challenge the first time) -> InformResponse -> empty POST with the cookie -> 204.
 * Proxy and clients share this process: CPU per session covers both, alike for both modes.
 *
 * Options: --devices N (2000) --sessions S (20000) --concurrency C (50) --rounds R (3)
 */
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { silentLogger } from '../src/app/log.js';
import { AcsServer } from '../src/cwmp/acs-server.js';
import { DecodePool } from '../src/cwmp/decode-pool.js';
import { SessionEngine } from '../src/cwmp/session.js';
import { MemoryNonceTracker, type NonceTracker } from '../src/cwmp/nonce-tracker.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { encodeSoap } from '../src/cwmp/soap.js';
import { deviceKeyOf, endpointIdOf } from '../src/cwmp/device-id.js';
import { digestAuthorization, parseChallenge, type Challenge } from '../src/cwmp/http-auth.js';
import type { DeviceIdStruct } from '../src/cwmp/types.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
  },
});
const DEVICES = Number(values.devices);
const SESSIONS = Number(values.sessions);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
const SHARED = { username: 'bootstrap', password: 'bench-shared-secret' };

interface Cpe {
  id: DeviceIdStruct;
  username: string;
  password: string;
  challenge: Challenge | null;
  nc: number;
  body: string;
}

function informBody(id: DeviceIdStruct): string {
  const root = 'Device';
  return encodeSoap({
    cwmpVersion: '1-0',
    id: '1',
    body: {
      method: 'Inform',
      deviceId: id,
      event: [{ eventCode: '2 PERIODIC', commandKey: '' }],
      maxEnvelopes: 1,
      currentTime: '2026-12-05T00:00:00Z',
      retryCount: 0,
      parameterList: Array.from({ length: 20 }, (_, i) =>
        i === 0
          ? { name: `${root}.ManagementServer.ConnectionRequestURL`, value: `http://127.0.0.1:9/${id.serialNumber}`, type: 'xsd:string' }
          : { name: `${root}.DeviceInfo.X_Bench${i}`, value: `value-${i}`, type: 'xsd:string' },
      ),
    },
  });
}

function post(port: number, agent: http.Agent, body: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/',
        agent,
        headers: { 'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function session(port: number, agent: http.Agent, cpe: Cpe): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = {};
    if (cpe.challenge) {
      cpe.nc++;
      headers.Authorization = digestAuthorization({
        challenge: cpe.challenge,
        method: 'POST',
        uri: '/',
        username: cpe.username,
        password: cpe.password,
        nc: cpe.nc,
      });
    }
    const r = await post(port, agent, cpe.body, headers);
    if (r.status === 401 && attempt < 2) {
      cpe.challenge = parseChallenge(String(r.headers['www-authenticate']))[0] ?? null;
      cpe.nc = 0;
      continue;
    }
    if (r.status !== 200) throw new Error(`Inform answered ${r.status}`);
    const cookie = /session=[0-9a-f]+/.exec(String(r.headers['set-cookie'] ?? ''))?.[0] ?? '';
    const end = await post(port, agent, '', { Cookie: cookie });
    if (end.status !== 204) throw new Error(`empty POST answered ${end.status}`);
    return;
  }
}

type Mode = 'untracked' | 'shared' | 'perDevice';

/** Today's stateless nonces: every nc accepted. */
const UNTRACKED: NonceTracker = { use: async () => 'ok', bind: async () => true };

async function run(mode: Mode): Promise<{ rate: number; cpuUsPerSession: number }> {
  const perDevice = mode === 'perDevice';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bench-auth-'));
  const store = openSqliteStore(path.join(dir, 'proxy.db'));
  const log = silentLogger();
  const engine = new SessionEngine(
    store,
    { request: async () => ({ ok: true }), cancel: () => undefined },
    {
      sessionTimeoutMs: 30_000,
      rpcDeadlineMs: 30_000,
      holdRequests: false,
      setConnectionRequestCredentials: false,
      maxSessions: 20_000,
      endpointIdScheme: 'os',
      perDeviceCredentials: perDevice,
    },
    log,
  );
  const decoder = new DecodePool(1, 64 * 1024);
  const acs = new AcsServer(
    engine,
    decoder,
    store,
    {
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: 8 * 1024 * 1024,
      auth: { mode: 'digest', realm: 'cwmp-usp-proxy', username: SHARED.username, password: SHARED.password, perDevice },
      nonceTracker: mode === 'untracked' ? UNTRACKED : new MemoryNonceTracker(),
    },
    log,
  );
  const port = await acs.listen();
  const now = new Date().toISOString();
  const cpes: Cpe[] = [];
  for (let i = 0; i < DEVICES; i++) {
    const id = { manufacturer: 'Bench', oui: '00BE0C', productClass: 'Box', serialNumber: `AUTH${String(i).padStart(6, '0')}` };
    const own = { username: `cpe-bench-${i}`, password: `per-device-secret-${i}` };
    // Per-device mode: the steady state, every device provisioned already.
    await store.upsertDevice({
      deviceKey: deviceKeyOf(id),
      endpointId: endpointIdOf(id, 'os'),
      deviceId: id,
      rootModel: 'Device',
      softwareVersion: null,
      connectionRequestUrl: `http://127.0.0.1:9/${id.serialNumber}`,
      connReqUsername: null,
      connReqPassword: null,
      cpeUsername: perDevice ? own.username : null,
      cpePassword: perDevice ? own.password : null,
      periodicInformInterval: null,
      lastInform: now,
      lastInformEvents: [],
      registeredAt: now,
    });
    const creds = perDevice ? own : SHARED;
    cpes.push({ id, ...creds, challenge: null, nc: 0, body: informBody(id) });
  }
  const agents = Array.from({ length: CONCURRENCY }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  // Warm-up: one session per device (first challenges, caches).
  let next = 0;
  await Promise.all(
    agents.map(async (agent) => {
      for (let i = next++; i < DEVICES; i = next++) await session(port, agent, cpes[i]!);
    }),
  );
  let done = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    agents.map(async (agent, w) => {
      for (let i = w; done < SESSIONS; i += CONCURRENCY) {
        done++;
        await session(port, agent, cpes[i % DEVICES]!);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  for (const a of agents) a.destroy();
  await acs.close();
  await engine.close();
  await decoder.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { rate: done / seconds, cpuUsPerSession: (cpu.user + cpu.system) / done };
}

const cpus = os.cpus();
console.log(
  `CPE authentication: ${SESSIONS} Inform sessions (Inform with 20 parameters + Digest, InformResponse, empty POST, 204) over ${DEVICES} registered devices, ${CONCURRENCY} keep-alive connections; ACS and clients in one process; ${cpus.length} x ${cpus[0]?.model ?? 'cpu'}; best of ${ROUNDS} rounds`,
);
const best: Record<Mode, { rate: number; cpuUsPerSession: number }> = {
  untracked: { rate: 0, cpuUsPerSession: Infinity },
  shared: { rate: 0, cpuUsPerSession: Infinity },
  perDevice: { rate: 0, cpuUsPerSession: Infinity },
};
// One discarded run first: JIT and first-use costs would otherwise land on the first mode.
await run('shared');
for (let r = 0; r < ROUNDS; r++) {
  for (const mode of ['untracked', 'shared', 'perDevice'] as const) {
    const m = await run(mode);
    if (m.rate > best[mode].rate) best[mode].rate = m.rate;
    if (m.cpuUsPerSession < best[mode].cpuUsPerSession) best[mode].cpuUsPerSession = m.cpuUsPerSession;
  }
}
const line = (name: string, m: { rate: number; cpuUsPerSession: number }): string =>
  `  ${name.padEnd(44)} ${m.rate.toFixed(0).padStart(6)} sessions/s   ${m.cpuUsPerSession.toFixed(0).padStart(5)} us CPU/session`;
console.log(line('Digest, shared login, stateless nonces', best.untracked));
console.log(line('Digest, shared login, nc tracked', best.shared));
console.log(line('Digest, per-device credentials, nc tracked', best.perDevice));
const pct = (a: number, b: number): string => `${((a / b) * 100).toFixed(1)}%`;
console.log(
  `  per-device + nc tracked vs shared stateless: session rate ${pct(best.perDevice.rate, best.untracked.rate)}, CPU/session ${pct(best.perDevice.cpuUsPerSession, best.untracked.cpuUsPerSession)} (the issue asks for a rate >= 90%)`,
);
