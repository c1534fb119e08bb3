/**
 * Cost of a TR-098 mapping snapshot: a full build from a device's native name list, and the
 * next snapshot after an AddObject (withAdded: the new instance's GetParameterNames) or a
 * DeleteObject (withRemoved), on a real vendor dump and on the same dump grown to many hosts.
 *   npm run build && node dist/bench/mapping-rebuild.js [MODEL.csv] [rounds]
 * Default model: ../shared/reference/cwmp-models/huawei-EG8145V5-tr098.csv beside the checkout
 * (4,092 rows), else the bundled assets/sim-models/tr098-igd.csv.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeviceMapping, MemoryInstanceMapStore, type NativeParamInfo } from '../src/mapping/engine.js';
import { loadDefaultMapping } from '../src/mapping/load.js';
import { modelParams } from '../src/tools/coverage.js';
import { assetPath } from '../src/util/assets.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const reference = path.resolve(root, '..', 'shared', 'reference', 'cwmp-models', 'huawei-EG8145V5-tr098.csv');
const file = process.argv[2] ?? (existsSync(reference) ? reference : assetPath('sim-models', 'tr098-igd.csv'));
const rounds = Number(process.argv[3] ?? 50);
const rules = loadDefaultMapping();

function median(fn: () => unknown): number {
  for (let i = 0; i < 5; i++) fn(); // warm-up
  const t: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

/** TR-098 LANDevice.{i}.Hosts.Host.{i}. parameters, for a dump that lists no host. */
const HOST = ['IPAddress', 'AddressSource', 'LeaseTimeRemaining', 'MACAddress', 'Layer2Interface', 'VendorClassID', 'HostName', 'InterfaceType', 'Active'];

/** The dump with `n` LAN hosts in place of its own (a busy gateway), for scaling. */
function withHosts(params: NativeParamInfo[], n: number): NativeParamInfo[] {
  const table = 'InternetGatewayDevice.LANDevice.1.Hosts.Host.';
  const out = params.filter((p) => !(p.name.startsWith(table) && p.name !== table));
  if (!out.some((p) => p.name === table)) out.push({ name: table, writable: false });
  for (let i = 1; i <= n; i++) {
    out.push({ name: `${table}${i}.`, writable: false });
    for (const h of HOST) out.push({ name: `${table}${i}.${h}`, writable: false, type: h === 'Active' ? 'xsd:boolean' : 'xsd:string' });
  }
  return out;
}

function report(label: string, params: NativeParamInfo[]): void {
  const store = new MemoryInstanceMapStore();
  const base = new DeviceMapping(rules, { deviceKey: 'bench', params, store });
  // The instance an Add would create: the last row of the largest mapped native table.
  const rows = base.objectsUnder('Device.').filter((p) => /\.\d+\.$/.test(p));
  const victim = base.toNative(rows[rows.length - 1]!)![0]!;
  const subtree = params.filter((p) => p.name.startsWith(victim));
  const without = base.withRemoved(victim);
  const full = median(() => new DeviceMapping(rules, { deviceKey: 'bench', params, store }));
  const added = median(() => without.withAdded(subtree));
  const removed = median(() => base.withRemoved(victim));
  const leaves = params.filter((p) => !p.name.endsWith('.')).length;
  console.log(`  ${label}: Add/Delete of ${victim}`);
  console.log(
    `${label.padEnd(44)} ${String(params.length).padStart(7)} names ${String(leaves).padStart(7)} params  ` +
      `build ${full.toFixed(2).padStart(7)} ms  withAdded(${subtree.length}) ${added.toFixed(2).padStart(7)} ms  withRemoved ${removed.toFixed(2).padStart(7)} ms`,
  );
}

const { params } = modelParams(file);
console.log(`model ${file}, median of ${rounds} rounds`);
report(path.basename(file), params);
for (const n of [256, 2048]) report(`${path.basename(file)} with ${n} hosts`, withHosts(params, n));
