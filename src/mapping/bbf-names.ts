/**
 * Which native names a standard defines: the set of TR-098 (InternetGatewayDevice:1) names,
 * generated from the Broadband Forum XML by scripts/gen-bbf-names.ts (every version, deleted names
 * included) and shipped as assets/mappings/tr098-names.json. The coverage command counts its
 * target share against these names only.
 *
 * File format 1: {"format":1,"generator":...,"source":{file,spec,model},"objects":{
 *   "<object path, {i} form>": [[parameter names...], "<NumberOfEntries parameter of a table>"?] }}
 */
import { readFileSync } from 'node:fs';
import { assetPath } from '../util/assets.js';
import { schemaOf } from './native.js';

export const BBF_NAMES_FORMAT = 1;

/** What a native name is, by the standard that defines it. */
export type NameOrigin =
  /** Some segment is a TR-106 vendor extension (X_<VENDOR>_...). */
  | 'vendor'
  /** Defined by the Broadband Forum model of the root (TR-098), or by a BBF service model under Services. */
  | 'bbf'
  /** Neither: no X_ prefix, yet no BBF version defines it (against TR-106's rule for extensions). */
  | 'non-standard';

/**
 * BBF service models that a TR-098 root hosts under `Services.` (TR-098 2.1: Services contains
 * the objects of separate service data models): TR-104 VoiceService:1, TR-140 StorageService:1,
 * TR-135 STBService:1, TR-196 FAPService:1. TR-140's names are shipped (tr140-names.json) and
 * decide under StorageService; the others' XML is not an input, so every name under them without
 * an X_ segment counts as standard: nothing the BBF defines is excluded.
 */
export const BBF_SERVICE_OBJECTS: readonly string[] = ['VoiceService', 'StorageService', 'STBService', 'FAPService'];

export class BbfNameSet {
  private readonly objects: ReadonlyMap<string, ReadonlySet<string>>;
  /** Table object path ("...Host.{i}.") -> its NumberOfEntries parameter path. */
  private readonly numEntries: ReadonlyMap<string, string>;

  constructor(
    readonly root: string,
    objects: Iterable<readonly [string, readonly string[], string?]>,
    /** A service model's own name set, where shipped (TR-140): decides for names under Services.<service>. */
    private readonly serviceSet?: (service: string) => BbfNameSet | undefined,
  ) {
    const o = new Map<string, ReadonlySet<string>>();
    const n = new Map<string, string>();
    for (const [path, params, numEntries] of objects) {
      o.set(path, new Set(params));
      if (numEntries !== undefined) n.set(path, tableParent(path) + numEntries);
    }
    this.objects = o;
    this.numEntries = n;
  }

  /** Whether a concrete or "{i}" native parameter name is defined by the standard. */
  defines(name: string): boolean {
    const s = schemaOf(name);
    const dot = s.lastIndexOf('.');
    if (this.objects.get(s.slice(0, dot + 1))?.has(s.slice(dot + 1))) return true;
    const segs = s.split('.');
    if (segs[0] + '.' !== this.root || segs[1] !== 'Services') return false;
    // Services.VoiceServiceNumberOfEntries is defined by TR-104 with its table.
    if (BBF_SERVICE_OBJECTS.some((o) => segs[2] === `${o}NumberOfEntries` && segs.length === 3)) return true;
    if (!BBF_SERVICE_OBJECTS.includes(segs[2] ?? '')) return false;
    const own = this.serviceSet?.(segs[2]!);
    return own === undefined || own.defines(segs.slice(2).join('.'));
  }

  /** Whether an object ("{i}" or concrete form, ending in '.') is defined by the standard. */
  definesObject(path: string): boolean {
    return this.objects.has(schemaOf(path));
  }

  origin(name: string): NameOrigin {
    if (name.split('.').some((s) => s.startsWith('X_'))) return 'vendor';
    return this.defines(name) ? 'bbf' : 'non-standard';
  }

  /** The tables ("{i}" form) whose NumberOfEntries parameter this is, by the standard ("{i}" name in). */
  tablesCountedBy(paramSchema: string): string[] {
    const out: string[] = [];
    for (const [table, n] of this.numEntries) if (n === paramSchema) out.push(table);
    return out;
  }
}

/** "A.B.{i}." -> "A." (the object holding a table's NumberOfEntries parameter). */
function tableParent(table: string): string {
  const t = table.slice(0, -'{i}.'.length);
  return t.slice(0, t.slice(0, -1).lastIndexOf('.') + 1);
}

export class BbfNamesError extends Error {}

/** Parses a name-set file's text (format 1). */
export function parseBbfNames(text: string, file: string, serviceSet?: (service: string) => BbfNameSet | undefined): BbfNameSet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new BbfNamesError(`${file}: ${(e as Error).message}`);
  }
  const d = doc as { format?: unknown; objects?: unknown };
  if (d.format !== BBF_NAMES_FORMAT || typeof d.objects !== 'object' || d.objects === null)
    throw new BbfNamesError(`${file}: not a format ${BBF_NAMES_FORMAT} name set`);
  const rows: [string, string[], string?][] = [];
  for (const [path, v] of Object.entries(d.objects as Record<string, unknown>)) {
    const [params, numEntries] = v as [unknown, unknown];
    if (!Array.isArray(params) || !params.every((p) => typeof p === 'string') || (numEntries !== undefined && typeof numEntries !== 'string')) {
      throw new BbfNamesError(`${file}: bad entry for ${path}`);
    }
    rows.push(numEntries === undefined ? [path, params as string[]] : [path, params as string[], numEntries as string]);
  }
  const root = rows[0]?.[0].split('.')[0];
  if (root === undefined) throw new BbfNamesError(`${file}: no objects`);
  return new BbfNameSet(`${root}.`, rows, serviceSet);
}

export const TR098_NAMES_FILE = 'tr098-names.json';

let tr098: BbfNameSet | undefined;

/** The TR-098 name set shipped in assets/mappings/ (read once). */
export function tr098Names(): BbfNameSet {
  const file = assetPath('mappings', TR098_NAMES_FILE);
  // TR-140 is shipped (the same StorageService model under both roots): names under it count as
  // standard only when TR-140 defines them; TR-104 v1's XML is not, so every VoiceService name does.
  return (tr098 ??= parseBbfNames(readFileSync(file, 'utf8'), file, (service) => (service === 'StorageService' ? tr140Names() : undefined)));
}

export const TR104V2_NAMES_FILE = 'tr104v2-names.json';
export const TR140_NAMES_FILE = 'tr140-names.json';

const serviceSets = new Map<string, BbfNameSet>();

function serviceNames(file: string): BbfNameSet {
  let set = serviceSets.get(file);
  if (!set) {
    const f = assetPath('mappings', file);
    set = parseBbfNames(readFileSync(f, 'utf8'), f);
    serviceSets.set(file, set);
  }
  return set;
}

/**
 * The TR-104 v2 (VoiceService:2) name set shipped in assets/mappings/, object paths relative to the
 * service ("VoiceService.{i}.CallControl.Line.{i}."): what Device.Services.VoiceService presents is
 * checked against it (read once).
 */
export function tr104v2Names(): BbfNameSet {
  return serviceNames(TR104V2_NAMES_FILE);
}

/** The TR-140 (StorageService:1) name set, the same model under both roots' Services (read once). */
export function tr140Names(): BbfNameSet {
  return serviceNames(TR140_NAMES_FILE);
}

/** The BBF service model name set for a Device:2 Services child ("VoiceService", "StorageService"), if shipped. */
export function serviceModelNames(service: string): BbfNameSet | undefined {
  return service === 'VoiceService' ? tr104v2Names() : service === 'StorageService' ? tr140Names() : undefined;
}
