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
 * TR-135 STBService:1, TR-196 FAPService:1. Their XML is not in this project's inputs, so every
 * name under them without an X_ segment counts as standard: nothing the BBF defines is excluded.
 */
export const BBF_SERVICE_OBJECTS: readonly string[] = ['VoiceService', 'StorageService', 'STBService', 'FAPService'];

export class BbfNameSet {
  private readonly objects: ReadonlyMap<string, ReadonlySet<string>>;
  /** Table object path ("...Host.{i}.") -> its NumberOfEntries parameter path. */
  private readonly numEntries: ReadonlyMap<string, string>;

  constructor(
    readonly root: string,
    objects: Iterable<readonly [string, readonly string[], string?]>,
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
    return BBF_SERVICE_OBJECTS.includes(segs[2] ?? '') || BBF_SERVICE_OBJECTS.some((o) => segs[2] === `${o}NumberOfEntries` && segs.length === 3);
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
export function parseBbfNames(text: string, file: string): BbfNameSet {
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
  return new BbfNameSet(`${root}.`, rows);
}

export const TR098_NAMES_FILE = 'tr098-names.json';

let tr098: BbfNameSet | undefined;

/** The TR-098 name set shipped in assets/mappings/ (read once). */
export function tr098Names(): BbfNameSet {
  const file = assetPath('mappings', TR098_NAMES_FILE);
  return (tr098 ??= parseBbfNames(readFileSync(file, 'utf8'), file));
}
