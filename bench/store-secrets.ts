/**
 * What sealing per-device secrets at rest (src/store/secrets.ts) and tracking store writes
 * (src/store/health.ts) cost: a SQLite file store registering and reading devices, plain vs sealed,
 * bare vs tracked, and the codec alone. Prints the workload and the figures.
 *   node dist/bench/store-secrets.js [devices=20000]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StoreHealth, trackWrites } from '../src/store/health.js';
import { secretCodec, type SecretCodec } from '../src/store/secrets.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { DeviceRecord, Store } from '../src/store/types.js';

const N = Number(process.argv[2] ?? 20_000);

function device(i: number): DeviceRecord {
  const serial = `SN${String(i).padStart(8, '0')}`;
  return {
    deviceKey: `00D09E-HGW-${serial}`,
    endpointId: `os::00D09E-${serial}`,
    deviceId: { manufacturer: 'Acme', oui: '00D09E', productClass: 'HGW', serialNumber: serial },
    rootModel: 'Device',
    softwareVersion: '1.0',
    connectionRequestUrl: `http://10.0.${(i >> 8) & 255}.${i & 255}:7547/`,
    connReqUsername: serial,
    connReqPassword: randomBytes(12).toString('base64url'),
    cpeUsername: serial,
    cpePassword: randomBytes(12).toString('base64url'),
    periodicInformInterval: 300,
    lastInform: null,
    lastInformEvents: [],
    registeredAt: new Date().toISOString(),
  };
}

async function run(label: string, secrets: SecretCodec | undefined, tracked: boolean): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-bench-secrets-'));
  // A cache of one device: every read below goes to SQLite and opens the sealed values.
  const raw = openSqliteStore(path.join(dir, 'proxy.db'), { secrets, deviceCacheSize: 1 });
  const store: Store = tracked ? trackWrites(raw, new StoreHealth(raw)) : raw;
  const devices = Array.from({ length: N }, (_, i) => device(i));
  try {
    let t = performance.now();
    for (const d of devices) await store.upsertDevice(d);
    const up = performance.now() - t;
    t = performance.now();
    for (const d of devices) await store.getDevice(d.deviceKey);
    const get = performance.now() - t;
    t = performance.now();
    for (const d of devices) await store.touchInform(d.deviceKey, '2026-01-01T00:00:00.000Z', ['2 PERIODIC'], null);
    raw.flush();
    const touch = performance.now() - t;
    const rate = (ms: number): string => `${Math.round((N / ms) * 1000).toLocaleString('en-US')}/s`;
    console.log(`${label.padEnd(26)} upsertDevice ${rate(up).padStart(10)}   getDevice ${rate(get).padStart(10)}   touchInform ${rate(touch).padStart(11)}`);
  } finally {
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const codec = secretCodec(randomBytes(32));
console.log(`store-secrets: ${N} devices, SQLite file (WAL, synchronous=NORMAL), one write per call; ${os.cpus().length} CPUs, node ${process.version}`);
await run('plain, bare store', undefined, false);
await run('sealed, bare store', codec, false);
await run('sealed, tracked writes', codec, true);
const M = 200_000;
let t = performance.now();
let sealed = '';
for (let i = 0; i < M; i++) sealed = codec.seal('cpePassword', 'a-16-char-secret')!;
const sealMs = performance.now() - t;
t = performance.now();
for (let i = 0; i < M; i++) codec.open('cpePassword', sealed);
const openMs = performance.now() - t;
console.log(
  `codec alone: seal ${Math.round((M / sealMs) * 1000).toLocaleString('en-US')}/s, open ${Math.round((M / openMs) * 1000).toLocaleString('en-US')}/s (${M} ops each)`,
);
