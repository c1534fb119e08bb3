/**
 * `cwmp-usp-proxy mapping coverage --model FILE.csv [--mapping FILE.json]`: which Device:2
 * parameters resolve on a device model dump, the share of the device's own parameters
 * reachable through Device:2, and the native names the mapping would ask for that the device
 * does not list (phantoms: a CPE faults 9005 on them, TR-069 A.3.2.2, or drops the session).
 */
import { existsSync } from 'node:fs';
import { ProgressBar } from '../util/progress.js';
import { loadModel } from './sim/model.js';
import { loadDefaultMapping, loadMapping } from '../mapping/load.js';
import { DeviceMapping, schemaOf, type NativeParamInfo } from '../mapping/engine.js';

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const defaultIo: CliIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

export interface CoverageResult {
  root: string;
  nativeParams: number;
  /** Native parameters of the device that some Device:2 parameter reads. */
  reachable: number;
  /** Native parameter names some Device:2 parameter would read that the device does not list (must be empty). */
  phantoms: string[];
  objects: { path: string; instances: number; params: string[] }[];
}

/** Native parameter infos of a model CSV. */
export function modelParams(file: string): { root: string; params: NativeParamInfo[]; values: Map<string, string> } {
  const tpl = loadModel(file);
  const params: NativeParamInfo[] = [];
  const values = new Map<string, string>();
  for (const p of tpl.walk()) {
    const n = tpl.node(p)!;
    params.push({ name: p, writable: n.writable, type: n.object ? undefined : n.type });
    if (!n.object) values.set(p, n.value);
  }
  return { root: tpl.root, params, values };
}

export function coverage(file: string, mappingFile?: string, onProgress?: (done: number, total: number) => void): CoverageResult {
  const { root, params, values } = modelParams(file);
  const listed = new Set(params.filter((p) => !p.name.endsWith('.')).map((p) => p.name));
  if (root === 'Device.') {
    // Passed through: the proxy asks a Device:2 device for its own names only.
    return { root, nativeParams: listed.size, reachable: listed.size, phantoms: [], objects: [] };
  }
  const rules = mappingFile ? loadMapping(mappingFile) : loadDefaultMapping();
  const m = new DeviceMapping(rules, { deviceKey: file, params, values });
  const supported = m.supportedModel();
  const objects = supported.map((o, i) => {
    onProgress?.(i + 1, supported.length);
    let instances = 1;
    if (o.multiInstance) instances = m.objectsUnder('Device.').filter((p) => schemaOf(p) === o.path).length;
    return { path: o.path, instances, params: o.params.map((p) => p.name + (p.computed ? '*' : p.writable ? '(w)' : '')) };
  });
  // Every native name a Get of Device. would read, checked against the dump itself, not the engine's view of it.
  const phantoms = new Set<string>();
  for (const p of m.paramsUnder('Device.')) for (const n of m.toNative(p) ?? []) if (!listed.has(n)) phantoms.add(n);
  let reachable = 0;
  for (const n of m.reachableNativeParams()) if (listed.has(n)) reachable++;
  return { root, nativeParams: listed.size, reachable, phantoms: [...phantoms], objects };
}

/** Entry point for `mapping ...`; returns the exit code. */
export const MAPPING_USAGE = `Usage: cwmp-usp-proxy mapping coverage --model FILE.csv [--mapping FILE.json]

Shows which Device:2 objects and parameters the TR-098 -> Device:2 mapping serves for a device
model dump (CSV as in assets/sim-models), the share of the device's native parameters reachable,
and the native names it would ask for that the device does not list (phantoms; must be 0).

  --model FILE.csv     the device model (required)
  --mapping FILE.json  mapping rules (default assets/mappings/tr098-to-tr181.json)
  -h, --help           this text

Exit codes: 0 ok, 1 the mapping would ask for names the device does not list,
2 usage error or unreadable model/mapping.`;

export function runMappingCli(argv: readonly string[], io: CliIo = defaultIo): number {
  const usage = 'usage: cwmp-usp-proxy mapping coverage --model FILE.csv [--mapping FILE.json]';
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(MAPPING_USAGE);
    return 0;
  }
  if (argv[0] !== 'coverage') {
    io.err(usage);
    return 2;
  }
  let model: string | undefined;
  let mapping: string | undefined;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if ((a === '--model' || a === '--mapping') && argv[i + 1] !== undefined) {
      if (a === '--model') model = argv[++i];
      else mapping = argv[++i];
    } else {
      io.err(`unknown or incomplete option: ${a}\n${usage}`);
      return 2;
    }
  }
  if (!model) {
    io.err(`--model is required\n${usage}`);
    return 2;
  }
  if (!existsSync(model)) {
    io.err(`model file not found: ${model}`);
    return 2;
  }
  if (mapping && !existsSync(mapping)) {
    io.err(`mapping file not found: ${mapping}`);
    return 2;
  }
  let r: CoverageResult;
  try {
    // The bar only on a terminal: a coverage run is short and its output is the report.
    const bar = io === defaultIo && process.stderr.isTTY ? new ProgressBar({ label: 'mapping objects', total: 1 }) : null;
    r = coverage(model, mapping, bar ? (done, total) => bar.setTotal(total).update(done) : undefined);
    bar?.finish();
  } catch (e) {
    io.err(`cannot compute coverage: ${(e as Error).message}`);
    return 2;
  }
  if (r.root === 'Device.') {
    io.out(`${model}: root Device. (Device:2): passed through unmapped; ${r.nativeParams}/${r.nativeParams} parameters reachable (100.0%)`);
    io.out('names asked but not listed by the device: 0');
    return 0;
  }
  io.out(`${model}: root ${r.root} mapped to Device:2 (* computed, (w) writable)`);
  for (const o of r.objects) {
    io.out(`${o.path}${o.path.endsWith('{i}.') ? ` [${o.instances} instance(s)]` : ''}: ${o.params.length} param(s)`);
    if (o.params.length) io.out(`    ${o.params.join(' ')}`);
  }
  const pct = r.nativeParams ? ((100 * r.reachable) / r.nativeParams).toFixed(1) : '0.0';
  io.out(`reachable through Device:2: ${r.reachable}/${r.nativeParams} native parameters (${pct}%)`);
  io.out(`names asked but not listed by the device: ${r.phantoms.length}`);
  for (const n of r.phantoms.slice(0, 20)) io.out(`    ${n}`);
  if (r.phantoms.length > 20) io.out(`    ... and ${r.phantoms.length - 20} more`);
  return r.phantoms.length === 0 ? 0 : 1;
}
