/**
 * Loads and validates a declarative data-model mapping (assets/mappings/*.json, format described by
 * assets/mappings/schema.json). Validation is a small JSON-Schema subset (type, properties, required,
 * additionalProperties, items, minItems, enum, pattern, anyOf, $ref to #/definitions) plus
 * semantic checks; every error names the file, the line and the key (JSON pointer).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { assetPath } from '../util/assets.js';

/** One parameter rule. A string is a native name relative to the object's native path; an array lists alternatives. */
export type ParamSpec = string | string[] | ParamRule;

export interface ComposeRule {
  /** Input name -> native name (relative to the object's native path). */
  inputs: Record<string, string>;
  /**
   * Native -> USP: first rule whose `when` matches (each input equal to one of the values) wins;
   * a value "$name" is that input's value (the WEP key WEPKeyIndex selects).
   */
  toUsp: { when: Record<string, string | string[]>; value: string }[];
  /**
   * USP value -> input values to set (inputs the device lacks are skipped); "*" for any other USP
   * value, where "$value" stands for it. Absent: read-only.
   */
  toNative?: Record<string, Record<string, string>>;
}

export interface ParamRule {
  /** Native name(s), alternatives in order: the first the device has wins. */
  native?: string | string[];
  /** USP type; default from the native xsi:type. Native booleans are always normalized to true/false. */
  type?: string;
  /** false forces read-only; default: the native writability. */
  writable?: boolean;
  invert?: boolean;
  /** Native value -> USP value. Reverse is derived (first native key per USP value) unless enumToNative. */
  enum?: Record<string, string>;
  enumToNative?: Record<string, string>;
  /** USP value for a native value not in `enum` (default: the native value if passthrough). */
  enumDefault?: string;
  /** Values not in `enum` pass unchanged (both directions). */
  passthrough?: boolean;
  /** USP = native * scale. */
  scale?: number;
  /**
   * The native value counts seconds from the time it is read (TR-098 LeaseTimeRemaining, -1 for
   * ever); the USP value is the dateTime it ends (TR-181 DHCPv4 Client LeaseTimeRemaining,
   * 9999-12-31T23:59:59Z for ever). Read-only.
   */
  secondsFromNow?: boolean;
  /** USP value is item N of the native comma-separated list (read-only); -1: the item of its row (listRows). */
  listItem?: number;
  /** The value is a (comma list of) native path reference(s), translated to instances of these Device:2 tables. */
  pathRef?: string[];
  /**
   * The value names a row of another native table by a key parameter's value, not by path (TR-104
   * v1 EntryID numbers, TR-098 QueueKey): presented as the reference to the Device:2 row of `table`
   * whose native `key` has that value (the nearest such row when several have it). Read-only.
   */
  keyRef?: { table: string; key: string };
  /** Computed: number of instances of a Device:2 table ({i} bound to this object's instance numbers). */
  count?: string;
  /** Computed: reference to the instance of a Device:2 table with the same/enclosing/enclosed native object. */
  ref?: string;
  compose?: ComposeRule;
  /** When the row has none of the `native` names: the band its row was grouped by (groupByBand), read-only. */
  derived?: 'band';
}

export interface ObjectRule {
  /** Device:2 object path in {i} notation, ending in '.'. Ending in '{i}.' makes it a table rule. */
  usp: string;
  /**
   * Native object pattern(s), placeholders {a}..{z} for instance numbers. Absolute (starting with
   * nativeRoot) or, for a rule nested in a Device:2 table, relative to that table row's native
   * object ("" = the same object). Several patterns: a table flattens them all (in order); an
   * object takes the first that exists. Absent: a purely computed object.
   */
  native?: string | string[];
  readOnly?: boolean;
  /** Also pass the native object's own vendor parameters (X_...) under the same name. */
  vendorExtensions?: boolean;
  /** Parameters with the same name on both sides. */
  same?: string[];
  params?: Record<string, ParamSpec>;
  /**
   * Table rule: the native rows of one enclosing context are grouped by frequency band, one
   * Device:2 row per band (TR-181 WiFi.Radio is a physical radio; TR-098 repeats it per SSID).
   * Each input lists native name alternatives (relative to the row). Rows whose band cannot be
   * told stay rows of their own. A grouped row reads its first member; a Set writes every member.
   */
  groupByBand?: { band?: string[]; channel?: string[]; possibleChannels?: string[]; standard?: string[] };
  /**
   * Table rule: one Device:2 row per item of this native comma-separated list parameter of each
   * native row (TR-098 DNSServers -> one DNS.Client.Server per server); parameters with
   * `listItem: -1` read the row's item.
   */
  listRows?: string;
  /**
   * Table rule: only native rows whose parameter (relative name) has one of these values (read
   * when the device's mapping is built): a TR-098 WANDevice is a TR-181 Optical.Interface only when
   * its WANAccessType says so. A row whose value is not known is left out: nothing is invented.
   */
  rowsWhen?: Record<string, string[]>;
  /** Table rule whose native is one object without instance numbers: that object is its only row (Layer3Forwarding -> Routing.Router.1). */
  oneRow?: boolean;
}

export interface MappingRules {
  name: string;
  description?: string;
  nativeRoot: string;
  objects: ObjectRule[];
  /** Where it came from (for messages). */
  file?: string;
}

export class MappingLoadError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly key: string,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${key || '(root)'}: ${detail}`);
    this.name = 'MappingLoadError';
  }
}

/** Directory of the bundled mappings (assets/mappings). */
export function mappingsDir(): string {
  return assetPath('mappings');
}

/** The bundled TR-098 -> TR-181 mapping. */
export function loadDefaultMapping(): MappingRules {
  return loadMapping(path.join(mappingsDir(), 'tr098-to-tr181.json'));
}

export function loadMapping(file: string, schemaFile?: string): MappingRules {
  const text = readFileSync(file, 'utf8');
  const schemaPath = schemaFile ?? path.join(path.dirname(file), 'schema.json');
  let schema: unknown;
  try {
    schema = JSON.parse(readFileSync(schemaPath, 'utf8'));
  } catch {
    schema = JSON.parse(readFileSync(path.join(mappingsDir(), 'schema.json'), 'utf8'));
  }
  return parseMapping(text, file, schema as Schema);
}

/** Parses and validates mapping text (exported for tests). */
export function parseMapping(text: string, file: string, schema: Schema): MappingRules {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    const line = m ? lineAt(text, Number(m[1])) : 1;
    throw new MappingLoadError(file, line, '', `invalid JSON: ${(e as Error).message}`);
  }
  const lines = keyLines(text);
  const fail = (ptr: (string | number)[], msg: string): never => {
    const key = ptr.join('/');
    let line = 1;
    for (let n = ptr.length; n >= 0; n--) {
      const l = lines.get(ptr.slice(0, n).join('/'));
      if (l !== undefined) {
        line = l;
        break;
      }
    }
    throw new MappingLoadError(file, line, key, msg);
  };
  const err = validate(doc, schema, schema, []);
  if (err) fail(err.ptr, err.msg);
  const rules = doc as MappingRules;
  semanticChecks(rules, fail);
  rules.file = file;
  return rules;
}

// ------------------------------------------------------------------ semantic checks

function semanticChecks(r: MappingRules, fail: (ptr: (string | number)[], msg: string) => never): void {
  const byUsp = new Map<string, number>();
  r.objects.forEach((o, i) => {
    if (byUsp.has(o.usp)) fail(['objects', i, 'usp'], `duplicate rule for ${o.usp} (first at objects/${byUsp.get(o.usp)})`);
    byUsp.set(o.usp, i);
  });
  const tables = new Set(r.objects.filter((o) => o.usp.endsWith('{i}.')).map((o) => o.usp));
  r.objects.forEach((o, i) => {
    const enclosing = enclosingTable(o.usp);
    if (enclosing && !tables.has(enclosing)) fail(['objects', i, 'usp'], `no rule for the enclosing table ${enclosing}`);
    const natives = o.native === undefined ? [] : Array.isArray(o.native) ? o.native : [o.native];
    natives.forEach((n, k) => {
      const ptr = Array.isArray(o.native) ? ['objects', i, 'native', k] : ['objects', i, 'native'];
      const abs = n.startsWith(r.nativeRoot);
      if (!abs && !enclosing) fail(ptr, `"${n}" must be absolute (start with ${r.nativeRoot}): ${o.usp} is not inside a table`);
      if (o.usp.endsWith('{i}.') && !o.oneRow && !/\{[a-z]\}\.$/.test(n) && abs && !/\{[a-z]\}\./.test(n)) {
        fail(ptr, `table rule ${o.usp} needs a placeholder ({a}..{z}) in its native pattern`);
      }
    });
    if (o.oneRow && (!o.usp.endsWith('{i}.') || natives.some((n) => /\{[a-z]\}/.test(n))))
      fail(['objects', i, 'oneRow'], `oneRow needs a table rule on native objects without placeholders (${o.usp})`);
    if (o.rowsWhen && !o.usp.endsWith('{i}.')) fail(['objects', i, 'rowsWhen'], `rowsWhen needs a table rule (${o.usp})`);
    if (o.listRows && (!o.usp.endsWith('{i}.') || o.groupByBand))
      fail(['objects', i, 'listRows'], `listRows needs a table rule without groupByBand (${o.usp})`);
    if (o.groupByBand && !o.usp.endsWith('{i}.')) fail(['objects', i, 'groupByBand'], `only a table rule can group rows by band (${o.usp} is not a table)`);
    for (const [name, spec] of Object.entries(o.params ?? {})) {
      if (typeof spec !== 'object' || Array.isArray(spec)) {
        if (natives.length === 0) fail(['objects', i, 'params', name], 'a native parameter needs a native object');
        continue;
      }
      const kinds = [spec.native !== undefined, spec.count !== undefined, spec.ref !== undefined, spec.compose !== undefined].filter(Boolean).length;
      if (kinds !== 1) fail(['objects', i, 'params', name], 'exactly one of native, count, ref, compose is required');
      for (const k of ['count', 'ref'] as const) {
        const t = spec[k];
        if (t !== undefined && !tables.has(t)) fail(['objects', i, 'params', name, k], `no table rule for ${t}`);
      }
      for (const t of spec.pathRef ?? []) if (!tables.has(t)) fail(['objects', i, 'params', name, 'pathRef'], `no table rule for ${t}`);
      if (spec.keyRef) {
        if (!tables.has(spec.keyRef.table)) fail(['objects', i, 'params', name, 'keyRef', 'table'], `no table rule for ${spec.keyRef.table}`);
        if (spec.native === undefined) fail(['objects', i, 'params', name, 'keyRef'], 'keyRef needs the native parameter holding the key');
      }
      if (spec.compose) {
        spec.compose.toUsp.forEach((w, k) => {
          for (const inp of Object.keys(w.when)) {
            if (!(inp in spec.compose!.inputs)) fail(['objects', i, 'params', name, 'compose', 'toUsp', k, 'when', inp], `unknown input "${inp}"`);
          }
        });
        for (const [v, set] of Object.entries(spec.compose.toNative ?? {})) {
          for (const inp of Object.keys(set)) {
            if (!(inp in spec.compose.inputs)) fail(['objects', i, 'params', name, 'compose', 'toNative', v, inp], `unknown input "${inp}"`);
          }
        }
      }
      if (spec.derived === 'band' && !o.groupByBand) fail(['objects', i, 'params', name, 'derived'], 'a band is derived only in a rule with groupByBand');
      if ((spec.native !== undefined || spec.compose) && natives.length === 0) fail(['objects', i, 'params', name], 'a native parameter needs a native object');
    }
  });
}

/** The Device:2 table that encloses a rule: "Device.A.{i}.B.{i}." -> "Device.A.{i}.", "Device.A.{i}.X." -> "Device.A.{i}.". */
export function enclosingTable(usp: string): string | null {
  const base = usp.endsWith('{i}.') ? usp.slice(0, -4) : usp;
  const k = base.lastIndexOf('{i}.');
  return k < 0 ? null : base.slice(0, k + 4);
}

// ------------------------------------------------------------------ mini JSON-Schema validator

export interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minItems?: number;
  enum?: unknown[];
  pattern?: string;
  anyOf?: Schema[];
  $ref?: string;
  definitions?: Record<string, Schema>;
  [k: string]: unknown;
}

interface VErr {
  ptr: (string | number)[];
  msg: string;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function validate(v: unknown, s: Schema, root: Schema, ptr: (string | number)[]): VErr | null {
  if (s.$ref) {
    const name = s.$ref.replace(/^#\/definitions\//, '');
    const d = root.definitions?.[name];
    if (!d) return { ptr, msg: `schema error: unknown $ref ${s.$ref}` };
    return validate(v, d, root, ptr);
  }
  if (s.anyOf) {
    let deepest: VErr | null = null;
    for (const alt of s.anyOf) {
      const e = validate(v, alt, root, ptr);
      if (!e) return null;
      // Report the alternative that got furthest (its error is the most specific).
      if (!deepest || e.ptr.length > deepest.ptr.length) deepest = e;
    }
    return deepest && deepest.ptr.length > ptr.length ? deepest : { ptr, msg: `does not match any allowed form${deepest ? ` (${deepest.msg})` : ''}` };
  }
  const t = typeOf(v);
  if (s.type) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const ok = types.some((x) => x === t || (x === 'number' && t === 'integer'));
    if (!ok) return { ptr, msg: `expected ${types.join(' or ')}, got ${t}` };
  }
  if (s.enum && !s.enum.includes(v)) return { ptr, msg: `must be one of ${s.enum.map((x) => JSON.stringify(x)).join(', ')}` };
  if (s.pattern && typeof v === 'string' && !new RegExp(s.pattern).test(v)) return { ptr, msg: `"${v}" does not match ${s.pattern}` };
  if (t === 'array') {
    const a = v as unknown[];
    if (s.minItems !== undefined && a.length < s.minItems) return { ptr, msg: `needs at least ${s.minItems} item(s)` };
    if (s.items) {
      for (let i = 0; i < a.length; i++) {
        const e = validate(a[i], s.items, root, [...ptr, i]);
        if (e) return e;
      }
    }
  }
  if (t === 'object') {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in o)) return { ptr, msg: `missing required key "${r}"` };
    for (const [k, val] of Object.entries(o)) {
      const ps = s.properties?.[k];
      if (ps) {
        const e = validate(val, ps, root, [...ptr, k]);
        if (e) return e;
      } else if (s.additionalProperties === false) {
        return { ptr: [...ptr, k], msg: `unknown key "${k}"` };
      } else if (typeof s.additionalProperties === 'object') {
        const e = validate(val, s.additionalProperties, root, [...ptr, k]);
        if (e) return e;
      }
    }
  }
  return null;
}

// ------------------------------------------------------------------ key -> line

function lineAt(text: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** JSON pointer ("objects/3/params/Status") -> line of its key (or array element). Text is valid JSON. */
function keyLines(text: string): Map<string, number> {
  const out = new Map<string, number>();
  let i = 0;
  let line = 1;
  const ws = (): void => {
    while (i < text.length) {
      const c = text[i];
      if (c === '\n') line++;
      else if (c !== ' ' && c !== '\t' && c !== '\r') break;
      i++;
    }
  };
  const str = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (ptr: string): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        const keyLine = line;
        const k = str();
        const p = ptr ? `${ptr}/${k}` : k;
        out.set(p, keyLine);
        ws();
        i++; // ':'
        value(p);
        ws();
        if (text[i++] === '}') return;
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (let n = 0; ; n++) {
        ws();
        const p = ptr ? `${ptr}/${n}` : String(n);
        out.set(p, line);
        value(p);
        ws();
        if (text[i++] === ']') return;
      }
    } else if (c === '"') {
      str();
    } else {
      while (i < text.length && !/[,\]}\s]/.test(text[i])) i++;
    }
  };
  out.set('', 1);
  value('');
  return out;
}
