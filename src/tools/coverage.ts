/**
 * `cwmp-usp-proxy mapping coverage --model FILE.csv [--mapping FILE.json] [--json] [--unplaced]`:
 * which Device:2 parameters resolve on a device model dump; of the device's own parameters, those
 * placed in Device:2 (share of all, and of the standard ones: those the BBF TR-098 model defines,
 * src/mapping/bbf-names.ts; vendor X_ names, TR-106 3.3, and non-standard names, neither X_ nor
 * BBF, are counted apart), those reachable only through the extension object Device.X_<VENDOR>_Native. (the rest of a TR-098
 * tree; a Device:2 device's LocalAgent./MQTT./STOMP. that the proxy shadows); and the native names
 * the mapping would ask for that the device does not list (phantoms: a CPE faults 9005 on them,
 * TR-069 A.3.2.2, or drops the session).
 */
import { existsSync } from 'node:fs';
import { ProgressBar } from '../util/progress.js';
import { loadModel } from './sim/model.js';
import { loadDefaultMapping, loadMapping } from '../mapping/load.js';
import { DeviceMapping, schemaOf, type NativeParamInfo } from '../mapping/engine.js';
import { DEFAULT_EXTENSION_VENDOR, NativeExtension } from '../interworking/extension.js';
import { LOCAL_AGENT_PREFIXES } from '../usp/agent/local-agent-schema.js';
import { type BbfNameSet, type NameOrigin, tr098Names } from '../mapping/bbf-names.js';

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const defaultIo: CliIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

export interface CoverageResult {
  root: string;
  nativeParams: number;
  /** Native parameters of the device placed in Device:2 (some Device:2 parameter reads them). */
  reachable: number;
  /** Native parameters with no vendor (X_) segment, and how many of them are placed. */
  nonVendorParams: number;
  nonVendorPlaced: number;
  /**
   * By origin: defined by the BBF model of the root (the target share counts these only), vendor
   * (X_), non-standard (no X_ yet in no BBF version: TR-106 3.3 asks extensions to carry X_).
   * A TR-181 device's names are told apart by X_ only (passed through, all placed).
   */
  byOrigin: Record<NameOrigin, { params: number; placed: number }>;
  /** The extension object, and the native parameters reachable only through it. */
  extensionObject: string;
  extensionOnly: number;
  /** Native parameters reachable neither way (must be 0). */
  unreachable: number;
  /** The native parameters not placed in Device:2. */
  unplaced: string[];
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
  const ext = new NativeExtension(DEFAULT_EXTENSION_VENDOR, LOCAL_AGENT_PREFIXES);
  const figures = (placed: (n: string) => boolean, viaExtension: (n: string) => boolean, origin: (n: string) => NameOrigin) => {
    const all = [...listed];
    const nonVendor = all.filter((n) => !isVendor(n));
    const unplaced = all.filter((n) => !placed(n));
    const byOrigin: CoverageResult['byOrigin'] = { bbf: { params: 0, placed: 0 }, vendor: { params: 0, placed: 0 }, 'non-standard': { params: 0, placed: 0 } };
    for (const n of all) {
      const o = byOrigin[origin(n)];
      o.params++;
      if (placed(n)) o.placed++;
    }
    return {
      nativeParams: all.length,
      reachable: all.length - unplaced.length,
      nonVendorParams: nonVendor.length,
      nonVendorPlaced: nonVendor.filter(placed).length,
      byOrigin,
      extensionObject: ext.prefix,
      extensionOnly: unplaced.filter(viaExtension).length,
      unreachable: unplaced.filter((n) => !viaExtension(n)).length,
      unplaced,
    };
  };
  if (root === 'Device.') {
    // Passed through: the proxy asks a Device:2 device for its own names only; what its own
    // agent objects shadow is under the extension object.
    const shadowed = (n: string) => ext.isShadowed('Device', n);
    return {
      root,
      ...figures(
        (n) => !shadowed(n),
        shadowed,
        (n) => (isVendor(n) ? 'vendor' : 'bbf'),
      ),
      phantoms: [],
      objects: [],
    };
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
  const names = tr098Names();
  const read = m.reachableNativeParams();
  const counted = countedTablesPlaced(names, listed, params, m);
  const rootModel = root === 'InternetGatewayDevice.' ? 'InternetGatewayDevice' : null;
  return {
    root,
    ...figures(
      (n) => read.has(n) || counted.has(n),
      (n) => rootModel !== null && ext.toUsp(rootModel, n) !== null,
      (n) => (rootModel !== null ? names.origin(n) : isVendor(n) ? 'vendor' : 'bbf'),
    ),
    phantoms: [...phantoms],
    objects,
  };
}

/**
 * A table's NumberOfEntries parameter (by the BBF model) is placed when every row of the table is a
 * Device:2 row (an empty table: when the mapping makes Device:2 rows of that table): the Device:2
 * table's own NumberOfEntries, computed from its rows (TR-106 3.2.2), carries what it says. One row
 * not placed leaves it unplaced.
 */
function countedTablesPlaced(names: BbfNameSet, listed: ReadonlySet<string>, params: readonly NativeParamInfo[], m: DeviceMapping): Set<string> {
  const placedObjects = m.placedNativeObjects();
  const out = new Set<string>();
  const objects = params.filter((p) => p.name.endsWith('.')).map((p) => p.name);
  for (const n of listed) {
    const parent = n.slice(0, n.lastIndexOf('.') + 1);
    const byModel = names.tablesCountedBy(schemaOf(n));
    // Outside the BBF set (TR-104 under Services.): TR-106's convention, <Table>NumberOfEntries beside <Table>.{i}.
    const s = schemaOf(n);
    const odd = byModel.length > 0 ? undefined : tr104v1CountedTable(s);
    const tables =
      byModel.length > 0 ? byModel : odd !== undefined ? [odd] : n.endsWith('NumberOfEntries') ? [`${s.slice(0, -'NumberOfEntries'.length)}.{i}.`] : [];
    for (const table of tables) {
      const rowName = table.slice(0, -'{i}.'.length);
      const prefix = parent + rowName.slice(rowName.slice(0, -1).lastIndexOf('.') + 1);
      const rows = objects.filter((o) => o.startsWith(prefix) && /^\d+\.$/.test(o.slice(prefix.length)));
      if (rows.length > 0 ? rows.every((r) => placedObjects.has(r)) : m.placesRowsOf(table)) out.add(n);
    }
  }
  return out;
}

/**
 * TR-104 v1 tables whose count parameter does not follow the <Table>NumberOfEntries convention
 * (TR-104 Issue 1: SIP.SIPEventSubscribeNumberOfElements counts SIP.EventSubscribe.{i},
 * SIP.SIPResponseMapNumberOfElements counts SIP.ResponseMap.{i}, Tone.PatternNumberOfEntries
 * counts Tone.TonePattern.{i}). "{i}" name in, the table ("{i}" form) out.
 */
const TR104V1_COUNTS: readonly [suffix: string, table: string][] = [
  ['.SIP.SIPEventSubscribeNumberOfElements', '.SIP.EventSubscribe.{i}.'],
  ['.SIP.SIPResponseMapNumberOfElements', '.SIP.ResponseMap.{i}.'],
  ['.Tone.PatternNumberOfEntries', '.Tone.TonePattern.{i}.'],
];

function tr104v1CountedTable(schema: string): string | undefined {
  if (!schema.includes('.Services.VoiceService.')) return undefined;
  for (const [suffix, table] of TR104V1_COUNTS) if (schema.endsWith(suffix)) return schema.slice(0, -suffix.length) + table;
  return undefined;
}

/** A vendor parameter: some segment of its path is a TR-106 vendor extension (X_<VENDOR>_...). */
export function isVendor(name: string): boolean {
  return name.split('.').some((s) => s.startsWith('X_'));
}

/** Unplaced parameters by object ("{i}" form), largest group first: what the mapping leaves to the extension object. */
export function unplacedGroups(unplaced: readonly string[]): { object: string; count: number; params: string[] }[] {
  const by = new Map<string, Set<string>>();
  const counts = new Map<string, number>();
  for (const n of unplaced) {
    const s = schemaOf(n);
    const dot = s.lastIndexOf('.');
    const o = s.slice(0, dot + 1);
    const set = by.get(o) ?? new Set<string>();
    set.add(s.slice(dot + 1));
    by.set(o, set);
    counts.set(o, (counts.get(o) ?? 0) + 1);
  }
  return [...by.entries()]
    .map(([object, ps]) => ({ object, count: counts.get(object)!, params: [...ps].sort() }))
    .sort((a, b) => b.count - a.count || a.object.localeCompare(b.object));
}

const pct = (a: number, b: number): string => (b ? ((100 * a) / b).toFixed(1) : '0.0');

/** Entry point for `mapping ...`; returns the exit code. */
export const MAPPING_USAGE = `Usage: cwmp-usp-proxy mapping coverage --model FILE.csv [--mapping FILE.json] [--json] [--unplaced]

Shows which Device:2 objects and parameters the TR-098 -> Device:2 mapping serves for a device
model dump (CSV as in assets/sim-models); of the device's native parameters, the share placed in
Device:2 (of all, and of the standard ones: those the BBF TR-098 model defines; vendor X_ names and
non-standard ones, in no BBF version, are counted apart), those reachable only through the extension object
Device.X_${DEFAULT_EXTENSION_VENDOR}_Native. (interworking.extensionVendor), and the native names
it would ask for that the device does not list (phantoms; must be 0).

  --model FILE.csv     the device model (required)
  --mapping FILE.json  mapping rules (default assets/mappings/tr098-to-tr181.json)
  --json               the figures as one JSON object (for CI)
  --unplaced           also list the parameters not placed in Device:2, by object, largest first
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
  let json = false;
  let listUnplaced = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') json = true;
    else if (a === '--unplaced') listUnplaced = true;
    else if ((a === '--model' || a === '--mapping') && argv[i + 1] !== undefined) {
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
    const bar = io === defaultIo && process.stderr.isTTY && !json ? new ProgressBar({ label: 'mapping objects', total: 1 }) : null;
    r = coverage(model, mapping, bar ? (done, total) => bar.setTotal(total).update(done) : undefined);
    bar?.finish();
  } catch (e) {
    io.err(`cannot compute coverage: ${(e as Error).message}`);
    return 2;
  }
  const code = r.phantoms.length === 0 && r.unreachable === 0 ? 0 : 1;
  if (json) {
    const { objects, unplaced, ...figures } = r;
    io.out(
      JSON.stringify({
        model,
        ...figures,
        placedShare: Number(pct(r.reachable, r.nativeParams)),
        nonVendorPlacedShare: Number(pct(r.nonVendorPlaced, r.nonVendorParams)),
        bbfPlacedShare: Number(pct(r.byOrigin.bbf.placed, r.byOrigin.bbf.params)),
        reachableShare: Number(pct(r.nativeParams - r.unreachable, r.nativeParams)),
        objects: objects.map((o) => ({ path: o.path, instances: o.instances, params: o.params.length })),
        ...(listUnplaced ? { unplaced: unplacedGroups(unplaced) } : {}),
      }),
    );
    return code;
  }
  const summary = (): void => {
    io.out(
      `placed in Device:2: ${r.reachable}/${r.nativeParams} native parameters (${pct(r.reachable, r.nativeParams)}%); non-vendor: ${r.nonVendorPlaced}/${r.nonVendorParams} (${pct(r.nonVendorPlaced, r.nonVendorParams)}%)`,
    );
    const o = r.byOrigin;
    io.out(
      `standard (${r.root === 'Device.' ? 'no X_' : 'defined by BBF TR-098'}): ${o.bbf.placed}/${o.bbf.params} (${pct(o.bbf.placed, o.bbf.params)}%); vendor X_: ${o.vendor.placed}/${o.vendor.params}; non-standard (no X_, in no BBF version): ${o['non-standard'].placed}/${o['non-standard'].params}`,
    );
    io.out(`reachable only through ${r.extensionObject}: ${r.extensionOnly}`);
    io.out(`reachable in all: ${r.nativeParams - r.unreachable}/${r.nativeParams} (${pct(r.nativeParams - r.unreachable, r.nativeParams)}%)`);
    if (listUnplaced) {
      io.out('not placed in Device:2, by object (count: parameters):');
      for (const g of unplacedGroups(r.unplaced)) io.out(`  ${String(g.count).padStart(5)}  ${g.object}  ${g.params.join(' ')}`);
    }
  };
  if (r.root === 'Device.') {
    io.out(`${model}: root Device. (Device:2): passed through at the device's own paths`);
    summary();
    io.out('names asked but not listed by the device: 0');
    return code;
  }
  io.out(`${model}: root ${r.root} mapped to Device:2 (* computed, (w) writable)`);
  for (const o of r.objects) {
    io.out(`${o.path}${o.path.endsWith('{i}.') ? ` [${o.instances} instance(s)]` : ''}: ${o.params.length} param(s)`);
    if (o.params.length) io.out(`    ${o.params.join(' ')}`);
  }
  io.out(`reachable through Device:2: ${r.reachable}/${r.nativeParams} native parameters (${pct(r.reachable, r.nativeParams)}%)`);
  summary();
  io.out(`names asked but not listed by the device: ${r.phantoms.length}`);
  for (const n of r.phantoms.slice(0, 20)) io.out(`    ${n}`);
  if (r.phantoms.length > 20) io.out(`    ... and ${r.phantoms.length - 20} more`);
  return code;
}
