/**
 * The mapping engine: presents a TR-098 device's native parameters as Device:2 (TR-181) through
 * declarative rules (load.ts). Pure: built from the rules, the device's native parameter list
 * (as GetParameterNames / GetParameterValues / a model CSV give it) and a persistent instance map.
 *
 * A DeviceMapping is a snapshot of one device's instances: it materializes every concrete Device:2
 * object and parameter it can resolve (a few thousand entries for a real CPE), so every call is a
 * map lookup. Each Device:2 parameter resolves against the names of its own native instance:
 * rows of one native table may differ, and a name the device did not list in GetParameterNames
 * is never asked for (a conforming CPE faults 9005 on it, TR-069 A.3.2.2; others drop the session).
 *
 * When the device's instances change (Add/Delete, BOOT, a new GPN), withAdded()/withRemoved() give
 * the next snapshot from the updated name list, without re-reading the device. Device:2 instance
 * numbers stay stable across snapshots (InstanceMapStore), and the number of a row that
 * disappeared is never given to another row.
 *
 * Paths: objects end in '.', parameters do not. Supported-model paths use '{i}'.
 */
import type { MappingRules, ObjectRule, ParamRule, ParamSpec } from './load.js';
import { enclosingTable } from './load.js';
import { NativeNames, natCompare, schemaOf, type NativeParamInfo } from './native.js';
import { type Band, type BandInputs, bandOf } from './band.js';

export { schemaOf, type NativeParamInfo };

/** Persistent Device:2 instance numbers per device ("<usp table>|<native object>" -> number, "<usp table>#next" -> next). */
export interface InstanceMapStore {
  get(deviceKey: string): Record<string, number> | null;
  put(deviceKey: string, map: Record<string, number>): void;
}

export class MemoryInstanceMapStore implements InstanceMapStore {
  private readonly maps = new Map<string, Record<string, number>>();
  get(deviceKey: string): Record<string, number> | null {
    const m = this.maps.get(deviceKey);
    return m ? { ...m } : null;
  }
  put(deviceKey: string, map: Record<string, number>): void {
    this.maps.set(deviceKey, { ...map });
  }
}

export interface MappedParam {
  name: string;
  /** USP type name (string, boolean, int, unsignedInt, long, unsignedLong, dateTime, base64, hexBinary, decimal). */
  type: string;
  writable: boolean;
  /** Computed by the proxy (NumberOfEntries, references): never sent to the device. */
  computed: boolean;
}

export interface MappedObject {
  /** Device:2 path in {i} notation, ending in '.'. */
  path: string;
  multiInstance: boolean;
  /** Add/Delete can be mapped (a table with one native source table that is writable). */
  writable: boolean;
  params: MappedParam[];
}

/** One SetParameterValues entry. */
export interface NativeSetting {
  path: string;
  value: string;
  /** xsi:type for SetParameterValues. */
  type: string;
}

/** A mapping failure with the USP error code to answer (7026 invalid path, 7013 read-only, 7012 invalid value). */
export class MappingError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'MappingError';
  }
}

interface NormSpec {
  alts?: string[];
  rule: ParamRule;
}

interface ConcreteParam {
  spec: NormSpec;
  objRule: ObjectRule;
  /** Native object this parameter's names are relative to. */
  nativeObj: string | null;
  /** Resolved native parameter paths (1 for a plain parameter, the present inputs for compose). */
  native: string[];
  /** compose: input name -> native path (present inputs only). */
  inputs?: Record<string, string>;
  computedValue?: string;
  type: string;
  writable: boolean;
  nativeTypes: string[];
  /** groupByBand: the same parameter on the row's other members (a Set writes them too). */
  siblings?: string[];
  /** listRows: the item of the native list this parameter reads (listItem -1). */
  item?: number;
  /** keyRef: the rows the key may name, each with its native key parameter (read with the value, not placed by it). */
  keyRows?: { usp: string; native: string; key: string }[];
}

interface Row {
  num: number;
  /** Concrete USP instance path, ending in '.'. */
  usp: string;
  /** Concrete native object, ending in '.'. */
  native: string;
  /** groupByBand: every native object of the row (native first), and the band they share. */
  members?: string[];
  band?: Band;
  /** listRows: the row's item of the native list. */
  item?: number;
}

const XSD: Record<string, string> = {
  'xsd:string': 'string',
  'xsd:int': 'int',
  'xsd:unsignedInt': 'unsignedInt',
  'xsd:long': 'long',
  'xsd:unsignedLong': 'unsignedLong',
  'xsd:boolean': 'boolean',
  'xsd:dateTime': 'dateTime',
  'xsd:base64': 'base64',
  'xsd:hexBinary': 'hexBinary',
  'xsd:decimal': 'decimal',
};
/** TR-181 types of common parameter names, for mapped parameters no native instance shows a type for. */
const TR181_TYPES: Record<string, string> = {
  Enable: 'boolean',
  ExternalPort: 'unsignedInt',
  ExternalPortEndRange: 'unsignedInt',
  InternalPort: 'unsignedInt',
  LeaseDuration: 'unsignedInt',
  AllInterfaces: 'boolean',
  MaxMTUSize: 'unsignedInt',
  LastChange: 'unsignedInt',
  Active: 'boolean',
};
const TO_XSD: Record<string, string> = Object.fromEntries(Object.entries(XSD).map(([k, v]) => [v, k]));

function patternRegex(p: string): RegExp {
  const esc = p.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[a-z]\\?\}/g, '(\\d+)');
  return new RegExp(`^${esc}$`);
}

/**
 * A native pattern relative to a row's native object; each leading "../" climbs one object (a
 * TR-098 LANDevice's Hosts seen from its LANHostConfigManagement: "../Hosts.Host.{d}.").
 */
function joinRelative(base: string, rel: string): string {
  let b = base;
  let r = rel;
  while (r.startsWith('../')) {
    r = r.slice(3);
    b = b.slice(0, b.lastIndexOf('.', b.length - 2) + 1);
  }
  return b + r;
}

/** Seconds from `now` as the dateTime they end (TR-106 3.2.1: -1 for ever; not a number: unknown, 0001-01-01T00:00:00Z). */
function secondsToDateTime(v: string, now: number): string {
  const n = Number(v.trim());
  if (v.trim() === '' || !Number.isInteger(n)) return '0001-01-01T00:00:00Z';
  if (n < 0) return '9999-12-31T23:59:59Z';
  return `${new Date(Math.floor(now / 1000) * 1000 + n * 1000).toISOString().slice(0, 19)}Z`;
}

/** Whether a table rule's rows are the rows of one native table, so that Add/Delete may reach it. */
function rowsOwnTable(r: ObjectRule, srcs: readonly string[]): boolean {
  return srcs.length === 1 && !r.readOnly && !r.groupByBand && !r.rowsWhen && !r.listRows && /\{[a-z]\}\.$/.test(srcs[0]!);
}

function normSpec(s: ParamSpec): NormSpec {
  if (typeof s === 'string') return { alts: [s], rule: {} };
  if (Array.isArray(s)) return { alts: s, rule: {} };
  const n = s.native;
  return { alts: n === undefined ? undefined : Array.isArray(n) ? n : [n], rule: s };
}

function ruleDepth(usp: string): number {
  const n = (usp.match(/\{i\}/g) ?? []).length;
  return usp.endsWith('{i}.') ? n * 2 - 1 : n * 2;
}

function normBool(v: string): string | null {
  const t = v.trim().toLowerCase();
  if (t === 'true' || t === '1') return 'true';
  if (t === 'false' || t === '0') return 'false';
  return null;
}

export interface DeviceMappingOptions {
  /** Key of the device in the InstanceMapStore. */
  deviceKey: string;
  /** Every native object and parameter (GetParameterNames of the root, or a model dump). */
  params: Iterable<NativeParamInfo>;
  /** Where Device:2 instance numbers persist; default: a store private to this mapping and the snapshots derived from it. */
  store?: InstanceMapStore;
  /** Values of the native names groupingNames() lists (rows grouped by band); absent: no grouping. */
  values?: ReadonlyMap<string, string>;
  /** Clock for values relative to the time they are read (secondsFromNow); default Date.now. */
  now?: () => number;
}

export class DeviceMapping {
  readonly nativeRoot: string;
  readonly deviceKey: string;
  private readonly native: NativeNames;
  private readonly store: InstanceMapStore;
  private readonly rules: ObjectRule[];
  private readonly ruleByUsp = new Map<string, ObjectRule>();
  /** Rows per rule (table rules) over all contexts. */
  private readonly rowsByRule = new Map<string, Row[]>();
  /** Concrete USP table path ("Device.IP.Interface.") -> rows. */
  private readonly tables = new Map<string, Row[]>();
  /** Concrete USP object path -> its native object (null: computed-only). */
  private readonly objects = new Map<string, { rule: ObjectRule; native: string | null }>();
  private readonly params = new Map<string, ConcreteParam>();
  private readonly reverse = new Map<string, string[]>();
  /**
   * Native parameters whose value decides which Device:2 rows exist (rowsWhen, listRows) or which
   * row a reference names (keyRef keys: TR-104 v1 EntryIDs, TR-098 QueueKey): what they say is in
   * the presence of those rows or in the reference (an empty DNSServers is zero DNS.Client.Server
   * rows; a Host's AddressSource DHCP is its DHCPv4 Server Client row, TR-181 2.2 having deleted
   * the name).
   */
  private readonly rowDeciding = new Set<string>();
  /** Native tables ("{i}" form) whose rows become Device:2 rows, in a context the device has. */
  private readonly rowSources = new Set<string>();
  private instanceMap: Record<string, number>;
  /** Native rows of the stored instance map per Device:2 table (to retire the numbers of rows that are gone). */
  private readonly storedRows = new Map<string, string[]>();
  private readonly values: ReadonlyMap<string, string>;
  private readonly now: () => number;
  /** groupByBand rows by their native object: members and band. */
  private readonly groups = new Map<string, { members: string[]; band?: Band }>();

  constructor(
    readonly mapping: MappingRules,
    opts: DeviceMappingOptions,
  ) {
    this.nativeRoot = mapping.nativeRoot;
    this.deviceKey = opts.deviceKey;
    this.native = new NativeNames(this.nativeRoot, opts.params);
    this.store = opts.store ?? new MemoryInstanceMapStore();
    this.values = opts.values ?? new Map();
    this.now = opts.now ?? Date.now;
    this.rules = [...mapping.objects].sort((a, b) => ruleDepth(a.usp) - ruleDepth(b.usp));
    for (const r of this.rules) this.ruleByUsp.set(r.usp, r);
    const stored = this.store.get(opts.deviceKey);
    this.instanceMap = { ...(stored ?? {}) };
    for (const k of Object.keys(this.instanceMap)) {
      const bar = k.indexOf('|');
      if (bar < 0) continue;
      const t = k.slice(0, bar);
      const l = this.storedRows.get(t);
      if (l) l.push(k.slice(bar + 1));
      else this.storedRows.set(t, [k.slice(bar + 1)]);
    }
    const before = JSON.stringify(this.instanceMap);
    for (const r of this.rules) this.materializeRule(r);
    // Forget rows whose native object is gone (their numbers stay used through "#next").
    for (const k of Object.keys(this.instanceMap)) {
      const bar = k.indexOf('|');
      if (bar >= 0 && !this.native.hasObject(k.slice(bar + 1).replace(/#\d+$/, ''))) delete this.instanceMap[k];
    }
    this.computePass();
    if (JSON.stringify(this.instanceMap) !== before) this.store.put(opts.deviceKey, this.instanceMap);
  }

  // ------------------------------------------------------------------ materialization

  private contexts(rule: ObjectRule): { usp: string; native: string; encl: string | null }[] {
    const encl = enclosingTable(rule.usp);
    if (!encl) return [{ usp: '', native: '', encl: null }];
    return (this.rowsByRule.get(encl) ?? []).map((r) => ({ usp: r.usp, native: r.native, encl }));
  }

  private sources(rule: ObjectRule, ctxNative: string): string[] {
    const n = rule.native;
    const list = n === undefined ? [] : Array.isArray(n) ? n : [n];
    return list.map((p) => (p.startsWith(this.nativeRoot) ? p : joinRelative(ctxNative, p)));
  }

  private materializeRule(rule: ObjectRule): void {
    const isTable = rule.usp.endsWith('{i}.');
    const rows: Row[] = [];
    for (const ctx of this.contexts(rule)) {
      const rest = ctx.encl ? rule.usp.slice(ctx.encl.length) : rule.usp;
      const uspObj = ctx.usp + rest;
      if (isTable) {
        const table = uspObj.slice(0, -4);
        const found = new Set<string>();
        for (const src of this.sources(rule, ctx.native)) {
          if (src.endsWith('}.')) this.rowSources.add(schemaOf(src.replace(/\{[a-z]\}/g, '0')));
          if (!/\{[a-z]\}/.test(src)) {
            if (this.native.hasObject(src)) found.add(src);
            continue;
          }
          const re = patternRegex(src);
          const m = this.native
            .objectsOfSchema(schemaOf(src.replace(/\{[a-z]\}/g, '0')))
            .filter((o) => re.test(o))
            .sort(natCompare);
          for (const o of m) found.add(o);
        }
        if (rule.rowsWhen)
          for (const n of [...found]) {
            for (const k of Object.keys(rule.rowsWhen)) if (this.native.hasParam(n + k)) this.rowDeciding.add(n + k);
            if (!this.rowWanted(rule.rowsWhen, n)) found.delete(n);
          }
        if (rule.listRows) for (const n of found) if (this.native.hasParam(n + rule.listRows)) this.rowDeciding.add(n + rule.listRows);
        const groups = rule.groupByBand ? this.groupByBand(rule, [...found]) : [...found].map((n) => ({ members: [n] }) as { members: string[]; band?: Band });
        // listRows: one row per list item, keyed "<native object>#<item>" in the instance map.
        const ids = rule.listRows
          ? groups.flatMap((g) => this.listItems(g.members[0]!, rule.listRows!).map((k) => `${g.members[0]}#${k}`))
          : groups.map((g) => g.members[0]!);
        const tRows = this.assign(table, ids).map((r) => {
          const hash = r.native.lastIndexOf('#');
          return hash < 0 ? r : { ...r, native: r.native.slice(0, hash), item: Number(r.native.slice(hash + 1)) };
        });
        for (const g of groups) if (rule.groupByBand) this.groups.set(g.members[0]!, g);
        this.tables.set(table, tRows);
        for (const r of tRows) {
          const g = this.groups.get(r.native);
          if (rule.groupByBand && g) {
            r.members = g.members;
            r.band = g.band;
          }
          rows.push(r);
          this.objects.set(r.usp, { rule, native: r.native });
          for (const m of r.members ?? [r.native]) this.addReverse(m, r.usp);
          this.materializeParams(rule, r.usp, r.native, r);
        }
      } else {
        let native: string | null = null;
        const srcs = this.sources(rule, ctx.native);
        if (srcs.length > 0) {
          native = srcs.find((s) => this.native.hasObject(s)) ?? null;
          if (native === null) continue; // the device has no such object
        }
        this.objects.set(uspObj, { rule, native });
        this.materializeParams(rule, uspObj, native);
      }
    }
    this.rowsByRule.set(rule.usp, rows);
  }

  /**
   * Native rows of one context grouped by band (TR-181 WiFi.Radio: one row per physical radio),
   * in native order; a row whose band cannot be told is a group of its own.
   */
  private groupByBand(rule: ObjectRule, natives: string[]): { members: string[]; band?: Band }[] {
    const g = rule.groupByBand!;
    const pick = (obj: string, alts: readonly string[] | undefined): string | undefined => {
      for (const a of alts ?? []) {
        const v = this.values.get(obj + a);
        if (v !== undefined && this.native.hasParam(obj + a)) return v;
      }
      return undefined;
    };
    const out: { members: string[]; band?: Band }[] = [];
    const byBand = new Map<Band, { members: string[]; band?: Band }>();
    for (const n of natives) {
      const inputs: BandInputs = {
        band: pick(n, g.band),
        channel: pick(n, g.channel),
        possibleChannels: pick(n, g.possibleChannels),
        standard: pick(n, g.standard),
      };
      const band = bandOf(inputs);
      if (!band) {
        out.push({ members: [n] });
        continue;
      }
      const hit = byBand.get(band);
      if (hit) hit.members.push(n);
      else {
        const grp = { members: [n], band };
        byBand.set(band, grp);
        out.push(grp);
      }
    }
    return out;
  }

  /** Native parameter names whose values group rows by band (read them before building a mapping with `values`). */
  static groupingNames(rules: MappingRules, names: Iterable<string>): string[] {
    const res: RegExp[] = [];
    for (const r of rules.objects) {
      if (!r.groupByBand && !r.listRows && !r.rowsWhen) continue;
      const srcs = r.native === undefined ? [] : Array.isArray(r.native) ? r.native : [r.native];
      const alts = [...Object.values(r.groupByBand ?? {}).flat(), ...(r.listRows ? [r.listRows] : []), ...Object.keys(r.rowsWhen ?? {})];
      for (const src of srcs) {
        if (src.startsWith(rules.nativeRoot)) for (const a of alts) res.push(patternRegex(src + a));
        else {
          // Relative to the enclosing row (any depth under the root): the values of every such name.
          const rel = src.replace(/^(\.\.\/)+/, '');
          for (const a of alts) res.push(new RegExp(`${patternRegex(rules.nativeRoot).source.slice(0, -1)}(?:.*\\.)?${patternRegex(rel + a).source.slice(1)}`));
        }
      }
    }
    if (res.length === 0) return [];
    const out: string[] = [];
    for (const n of names) if (res.some((re) => re.test(n))) out.push(n);
    return out;
  }

  /** Whether a native row's parameters have the values a rowsWhen rule asks (known values only). */
  private rowWanted(when: Record<string, string[]>, native: string): boolean {
    return Object.entries(when).every(([param, want]) => {
      const v = this.native.hasParam(native + param) ? this.values.get(native + param) : undefined;
      return v !== undefined && want.includes(v);
    });
  }

  /** Items of a native list parameter of a row (values known at build): 0..n-1; one item (0) when its value is not known. */
  private listItems(native: string, param: string): number[] {
    const name = native + param;
    if (!this.native.hasParam(name)) return [];
    const v = this.values.get(name);
    if (v === undefined) return [0];
    const n = v.split(',').filter((x) => x.trim() !== '').length;
    return Array.from({ length: n }, (_, i) => i);
  }

  /** Stable numbering: known rows keep their number, new rows get "#next" (never reused). */
  private assign(table: string, natives: string[]): Row[] {
    const m = this.instanceMap;
    const nextKey = `${table}#next`;
    const present = new Set(natives);
    for (const n of this.storedRows.get(table) ?? []) if (!present.has(n)) delete m[`${table}|${n}`];
    let next = m[nextKey] ?? 1;
    const rows: Row[] = [];
    for (const n of natives) {
      const key = `${table}|${n}`;
      let num = m[key];
      if (num === undefined) {
        num = next++;
        m[key] = num;
      }
      rows.push({ num, usp: `${table}${num}.`, native: n });
    }
    m[nextKey] = next;
    return rows.sort((a, b) => a.num - b.num);
  }

  private expandedParams(rule: ObjectRule, native: string | null): [string, NormSpec][] {
    const out: [string, NormSpec][] = [];
    const seen = new Set<string>();
    for (const [k, s] of Object.entries(rule.params ?? {})) {
      out.push([k, normSpec(s)]);
      seen.add(k);
    }
    for (const k of rule.same ?? []) if (!seen.has(k)) out.push([k, { alts: [k], rule: {} }]), seen.add(k);
    if (rule.vendorExtensions && native) {
      for (const name of this.native.paramsOf(native))
        if (name.startsWith('X_') && !seen.has(name)) out.push([name, { alts: [name], rule: {} }]), seen.add(name);
    }
    return out;
  }

  /** The first alternative this native instance has (its own GetParameterNames entries, not its siblings'). */
  private resolveAlt(nativeObj: string, alts: readonly string[]): string | null {
    for (const a of alts) if (this.native.hasParam(joinRelative(nativeObj, a))) return a;
    return null;
  }

  private materializeParams(rule: ObjectRule, uspObj: string, native: string | null, row?: Row): void {
    for (const [name, spec] of this.expandedParams(rule, native)) {
      const r = spec.rule;
      const usp = uspObj + name;
      const ro = rule.readOnly === true || r.writable === false;
      if (r.derived === 'band' && native && row?.band && !this.resolveAlt(native, spec.alts ?? [])) {
        // The device does not say its band: the one its row was grouped by.
        this.params.set(usp, { spec, objRule: rule, nativeObj: native, native: [], computedValue: row.band, type: 'string', writable: false, nativeTypes: [] });
        continue;
      }
      if (r.count !== undefined || r.ref !== undefined) {
        this.params.set(usp, {
          spec,
          objRule: rule,
          nativeObj: native,
          native: [],
          type: r.count ? 'unsignedInt' : 'string',
          writable: false,
          nativeTypes: [],
        });
        continue;
      }
      if (!native) continue;
      if (r.compose) {
        const inputs: Record<string, string> = {};
        for (const [inp, rel] of Object.entries(r.compose.inputs)) {
          if (this.resolveAlt(native, [rel])) inputs[inp] = joinRelative(native, rel);
        }
        const paths = Object.values(inputs);
        if (paths.length === 0) continue;
        const infos = paths.map((p) => this.native.info(p));
        this.params.set(usp, {
          spec,
          objRule: rule,
          nativeObj: native,
          native: paths,
          inputs,
          type: r.type ?? 'string',
          writable: !ro && r.compose.toNative !== undefined && infos.every((i) => i?.writable === true),
          nativeTypes: paths.map((p) => this.native.typeOf(p) ?? 'xsd:string'),
        });
        for (const p of paths) this.addReverse(p, usp);
        continue;
      }
      const alt = this.resolveAlt(native, spec.alts ?? []);
      if (!alt) continue;
      const path = joinRelative(native, alt);
      const info = this.native.info(path);
      const nt = this.native.typeOf(path) || 'xsd:string';
      // A grouped row (one radio of several WLANConfigurations): a Set writes every member that has the name.
      const siblings = (row?.members ?? [])
        .slice(1)
        .map((m) => joinRelative(m, alt))
        .filter((p) => this.native.hasParam(p) && this.native.info(p)?.writable === true);
      this.params.set(usp, {
        spec,
        objRule: rule,
        nativeObj: native,
        native: [path],
        type: r.keyRef ? 'string' : r.secondsFromNow ? 'dateTime' : (r.type ?? XSD[nt] ?? 'string'),
        writable: !ro && r.listItem === undefined && r.keyRef === undefined && !r.secondsFromNow && info?.writable === true,
        nativeTypes: [nt],
        ...(siblings.length ? { siblings } : {}),
        ...(r.listItem === -1 && row?.item !== undefined ? { item: row.item } : {}),
      });
      this.addReverse(path, usp);
    }
  }

  private addReverse(native: string, usp: string): void {
    const l = this.reverse.get(native);
    if (l) l.push(usp);
    else this.reverse.set(native, [usp]);
  }

  /** NumberOfEntries and references, once every row is known. */
  private computePass(): void {
    for (const [usp, cp] of this.params) {
      const r = cp.spec.rule;
      if (r.count !== undefined) {
        const nums = this.instanceNumbers(usp, cp.objRule.usp);
        let t = r.count.slice(0, -4);
        for (const n of nums) t = t.replace('{i}', String(n));
        cp.computedValue = String(this.tables.get(t)?.length ?? 0);
      } else if (r.ref !== undefined) {
        cp.computedValue = cp.nativeObj ? this.refTo(r.ref, cp.nativeObj) : '';
      } else if (r.keyRef !== undefined) {
        const key = r.keyRef.key;
        cp.keyRows = (this.rowsByRule.get(r.keyRef.table) ?? [])
          .filter((row) => this.native.hasParam(row.native + key))
          .map((row) => ({ usp: row.usp.slice(0, -1), native: row.native, key: row.native + key }));
        // A row's key says which row a reference names: the Device:2 reference carries it.
        for (const k of cp.keyRows) this.rowDeciding.add(k.key);
      }
    }
  }

  /** Instance numbers of a concrete path along its rule's {i} positions. */
  private instanceNumbers(concrete: string, pattern: string): number[] {
    const c = concrete.split('.');
    const p = pattern.split('.');
    const out: number[] = [];
    for (let i = 0; i < p.length && i < c.length; i++) if (p[i] === '{i}') out.push(Number(c[i]));
    return out;
  }

  /** The row of a Device:2 table related to a native object: same object, else enclosing, else enclosed. */
  private refTo(tableRule: string, native: string): string {
    const rows = this.rowsByRule.get(tableRule) ?? [];
    const hit =
      rows.find((r) => r.native === native || r.members?.includes(native)) ??
      rows.find((r) => native.startsWith(r.native)) ??
      rows.find((r) => r.native.startsWith(native));
    return hit ? hit.usp.slice(0, -1) : '';
  }

  // ------------------------------------------------------------------ public API

  /** The Device:2 supported model of this device: objects ({i} notation) with their parameters. */
  supportedModel(): MappedObject[] {
    const out = new Map<string, MappedObject>();
    for (const r of this.rules) {
      // Always list a rule whose native object type exists on the model, even with 0 instances.
      const obj: MappedObject = { path: r.usp, multiInstance: r.usp.endsWith('{i}.'), writable: false, params: [] };
      out.set(r.usp, obj);
    }
    // Rows may differ: a parameter is listed if any instance has it, writable if any instance's is.
    const seen = new Map<string, MappedParam>();
    for (const [usp, cp] of this.params) {
      const objPath = schemaOf(usp.slice(0, usp.lastIndexOf('.') + 1));
      const name = usp.slice(usp.lastIndexOf('.') + 1);
      const k = objPath + name;
      const known = seen.get(k);
      if (known) {
        known.writable ||= cp.writable;
        continue;
      }
      const mp: MappedParam = { name, type: cp.type, writable: cp.writable, computed: cp.native.length === 0 };
      seen.set(k, mp);
      out.get(objPath)?.params.push(mp);
    }
    for (const r of this.rules) {
      const o = out.get(r.usp)!;
      if (o.multiInstance) {
        const srcs = r.native === undefined ? [] : Array.isArray(r.native) ? r.native : [r.native];
        // Rows that are their enclosing row's own native object (native "", IPv4Address of a
        // WANIPConnection) come and go with it: no Add/Delete of their own. Nor rows that a value
        // decides (rowsWhen, listRows): a DHCPv4.Client is a WAN connection addressed by DHCP, and
        // deleting it must not delete the connection.
        if (rowsOwnTable(r, srcs)) {
          const anyRow = this.rowsByRule.get(r.usp)?.[0];
          const tableNative = anyRow ? anyRow.native.replace(/\d+\.$/, '') : null;
          o.writable = tableNative !== null && this.native.info(tableNative)?.writable === true;
        }
      }
    }
    // A mapped table with no (learnable) rows whose native table object exists on the device is
    // presented with the parameters its rule maps, so that Add works on it.
    for (const r of this.rules) {
      const o = out.get(r.usp)!;
      if (!o.multiInstance || o.params.length > 0) continue;
      const tables = this.nativeTableObjects(r);
      if (tables.length === 0) continue;
      o.params.push(
        ...this.ruleParams(
          r,
          tables.some((t) => this.native.info(t)?.writable === true),
        ),
      );
      const srcs = r.native === undefined ? [] : Array.isArray(r.native) ? r.native : [r.native];
      if (rowsOwnTable(r, srcs) && !o.writable) o.writable = tables.some((t) => this.native.info(t)?.writable === true);
    }
    // Objects that resolve nothing on this device are not presented.
    return [...out.values()].filter((o) => o.params.length > 0 || (o.multiInstance && (this.rowsByRule.get(o.path)?.length ?? 0) > 0));
  }

  /** Native table objects ("...PortMapping.") a table rule's sources name on this device, rows or not. */
  private nativeTableObjects(rule: ObjectRule): string[] {
    const out: string[] = [];
    for (const ctx of this.contexts(rule)) {
      for (const src of this.sources(rule, ctx.native)) {
        if (!/\{[a-z]\}\.$/.test(src)) continue;
        const table = src.replace(/\{[a-z]\}\.$/, '');
        if (!/\{[a-z]\}/.test(table)) {
          if (this.native.hasObject(table) && !out.includes(table)) out.push(table);
          continue;
        }
        const re = patternRegex(table);
        for (const o of this.native.objectsOfSchema(schemaOf(table.replace(/\{[a-z]\}/g, '0')))) if (re.test(o) && !out.includes(o)) out.push(o);
      }
    }
    return out;
  }

  /** The Device:2 parameters a rule maps, typed from the rule (else TR-181), for a table with no instance to learn from. */
  private ruleParams(rule: ObjectRule, nativeWritable: boolean): MappedParam[] {
    const out: MappedParam[] = [];
    for (const [name, spec] of this.expandedParams(rule, null)) {
      const r = spec.rule;
      const ro = rule.readOnly === true || r.writable === false;
      if (r.count !== undefined || r.ref !== undefined) {
        out.push({ name, type: r.count !== undefined ? 'unsignedInt' : 'string', writable: false, computed: true });
        continue;
      }
      const writable = !ro && nativeWritable && (r.compose ? r.compose.toNative !== undefined : r.listItem === undefined);
      out.push({ name, type: r.type ?? TR181_TYPES[name] ?? 'string', writable, computed: false });
    }
    return out;
  }

  /** True when the Device:2 path (object or parameter, concrete) exists on this device. */
  has(uspPath: string): boolean {
    return this.objects.has(uspPath) || this.params.has(uspPath) || this.tables.has(uspPath);
  }

  /**
   * Native path(s) behind a concrete Device:2 path: an object -> [its native object] ([] for a
   * computed-only object); a parameter -> its native parameter (the present inputs of a composed
   * one; [] for a computed one). null: not mapped (answer 7026).
   */
  toNative(uspPath: string): string[] | null {
    const cp = this.params.get(uspPath);
    if (cp) return cp.keyRows ? [...cp.native, ...cp.keyRows.map((k) => k.key)] : [...cp.native];
    const o = this.objects.get(uspPath);
    if (o) return o.native ? [o.native] : [];
    return null;
  }

  /** The Device:2 path of a native object or parameter (the first, when several map to it). */
  toUsp(nativePath: string): string | null {
    return this.reverse.get(nativePath)?.[0] ?? null;
  }

  /** Every Device:2 path a native object or parameter feeds (for value-change notifications). */
  toUspAll(nativePath: string): string[] {
    return [...(this.reverse.get(nativePath) ?? [])];
  }

  /** Whether the parameter is computed by the proxy (no native read needed). */
  isComputed(uspParam: string): boolean {
    const cp = this.params.get(uspParam);
    return cp !== undefined && cp.native.length === 0;
  }

  /** Type and writability of a concrete Device:2 parameter, or null. */
  paramInfo(uspParam: string): MappedParam | null {
    const cp = this.params.get(uspParam);
    if (!cp) return null;
    return { name: uspParam.slice(uspParam.lastIndexOf('.') + 1), type: cp.type, writable: cp.writable, computed: cp.native.length === 0 };
  }

  /**
   * The Device:2 value of a parameter from the native values of toNative(uspParam) (a Map or a
   * record keyed by native path). Computed parameters ignore the input. null: not mapped, or a
   * native value is missing.
   */
  nativeToUspValue(uspParam: string, nativeValues: ReadonlyMap<string, string> | Record<string, string>): string | null {
    const cp = this.params.get(uspParam);
    if (!cp) return null;
    if (cp.computedValue !== undefined) return cp.computedValue;
    const get = (p: string): string | undefined => (nativeValues instanceof Map ? nativeValues.get(p) : (nativeValues as Record<string, string>)[p]);
    const r = cp.spec.rule;
    if (r.compose && cp.inputs) {
      const vals: Record<string, string> = {};
      for (const [inp, p] of Object.entries(cp.inputs)) {
        const v = get(p);
        if (v !== undefined) vals[inp] = v;
      }
      for (const w of r.compose.toUsp) {
        const ok = Object.entries(w.when).every(
          ([inp, want]) => vals[inp] !== undefined && (Array.isArray(want) ? want.includes(vals[inp]) : want === vals[inp]),
        );
        if (ok) return w.value.startsWith('$') ? (vals[w.value.slice(1)] ?? '') : w.value;
      }
      return '';
    }
    let v = get(cp.native[0]);
    if (v === undefined) return null;
    if (cp.keyRows) return this.keyRowOf(cp, v.trim(), get);
    if (r.listItem !== undefined)
      v = (v.split(',').filter((x) => r.listItem !== -1 || x.trim() !== '')[r.listItem === -1 ? (cp.item ?? 0) : r.listItem] ?? '').trim();
    if (cp.type === 'boolean' || cp.nativeTypes[0] === 'xsd:boolean') {
      const b = normBool(v);
      if (b !== null) v = r.invert ? (b === 'true' ? 'false' : 'true') : b;
    }
    if (r.enum) {
      const m = r.enum[v];
      v = m !== undefined ? m : r.passthrough ? v : (r.enumDefault ?? v);
    }
    if (r.scale !== undefined && v !== '' && Number.isFinite(Number(v))) v = String(Number(v) * r.scale);
    if (r.secondsFromNow) v = secondsToDateTime(v, this.now());
    if (r.pathRef) v = this.translateRefs(v, r.pathRef);
    return v;
  }

  /**
   * keyRef: the row whose key has the value; among several (EntryIDs are unique per TR-104 v1
   * VoiceProfile only), the one sharing the longest native path with the referencing object.
   * A value no row has (0, empty: "none") is the empty reference.
   */
  private keyRowOf(cp: ConcreteParam, v: string, get: (p: string) => string | undefined): string {
    if (v === '') return '';
    const from = cp.nativeObj ?? '';
    let best = '';
    let bestLen = -1;
    for (const k of cp.keyRows ?? []) {
      if (get(k.key)?.trim() !== v) continue;
      let n = 0;
      while (n < from.length && n < k.native.length && from[n] === k.native[n]) n++;
      if (n > bestLen) {
        best = k.usp;
        bestLen = n;
      }
    }
    return best;
  }

  private translateRefs(v: string, tables: readonly string[]): string {
    if (v.trim() === '') return '';
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => {
        // Some agents write the reference relative to the root ("LANDevice.1.WLANConfiguration.1").
        const dotted = s.endsWith('.') ? s : s + '.';
        const n = dotted.startsWith(this.nativeRoot) ? dotted : this.nativeRoot + dotted;
        for (const t of tables) {
          const row = (this.rowsByRule.get(t) ?? []).find((r) => r.native === n || r.members?.includes(n));
          if (row) return row.usp.slice(0, -1);
        }
        return '';
      })
      .filter(Boolean)
      .join(',');
  }

  /**
   * The native SetParameterValues entries for setting a Device:2 parameter. Throws MappingError:
   * 7026 not mapped, 7013 read-only or computed, 7012 a value the mapping cannot express.
   */
  uspToNativeValue(uspParam: string, value: string): NativeSetting[] {
    const cp = this.params.get(uspParam);
    if (!cp) throw new MappingError(7026, `${uspParam} is not mapped on this device`);
    if (!cp.writable) throw new MappingError(7013, `${uspParam} is read-only`);
    const r = cp.spec.rule;
    if (r.compose && cp.inputs) {
      const set = r.compose.toNative?.[value] ?? r.compose.toNative?.['*'];
      if (!set) throw new MappingError(7012, `${uspParam}: unsupported value "${value}"`);
      const out: NativeSetting[] = [];
      for (const [inp, v] of Object.entries(set)) {
        const p = cp.inputs[inp];
        if (p) out.push({ path: p, value: v === '$value' ? value : v, type: cp.nativeTypes[cp.native.indexOf(p)] ?? 'xsd:string' });
      }
      return out;
    }
    let v = value;
    const nt = cp.nativeTypes[0];
    if (cp.type === 'boolean' || nt === 'xsd:boolean') {
      const b = normBool(v);
      if (b === null) throw new MappingError(7012, `${uspParam}: "${value}" is not a boolean`);
      v = r.invert ? (b === 'true' ? 'false' : 'true') : b;
    }
    if (r.enum) {
      let n = r.enumToNative?.[v];
      if (n === undefined) n = Object.keys(r.enum).find((k) => r.enum![k] === v);
      if (n === undefined) {
        if (!r.passthrough) throw new MappingError(7012, `${uspParam}: unsupported value "${value}"`);
        n = v;
      }
      v = n;
    }
    if (r.scale !== undefined) {
      if (!Number.isFinite(Number(v))) throw new MappingError(7012, `${uspParam}: "${value}" is not a number`);
      v = String(Number(v) / r.scale);
    }
    if (r.pathRef) {
      v = v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map((s) => {
          const o = this.objects.get(s.endsWith('.') ? s : s + '.');
          if (!o?.native) throw new MappingError(7012, `${uspParam}: "${s}" is not a mapped object`);
          return o.native.slice(0, -1);
        })
        .join(',');
    }
    const type = nt ?? TO_XSD[cp.type] ?? 'xsd:string';
    return [cp.native[0]!, ...(cp.siblings ?? [])].map((path) => ({ path, value: v, type }));
  }

  /** Instance numbers of a concrete Device:2 table ("Device.IP.Interface."), or null if not mapped. */
  uspInstances(uspTable: string): number[] | null {
    const rows = this.tables.get(uspTable);
    if (rows) return rows.map((r) => r.num);
    // A mapped table with no rows (its enclosing instance, if any, must exist).
    const s = schemaOf(uspTable) + '{i}.';
    if (!this.ruleByUsp.has(s)) return null;
    const encl = enclosingTable(s);
    if (!encl) return [];
    const parent =
      uspTable
        .split('.')
        .slice(0, encl.split('.').length - 1)
        .join('.') + '.';
    return this.objects.has(parent) ? [] : null;
  }

  /**
   * Native object paths to re-read (GetParameterNames, NextLevel=false) to learn the current rows
   * of a Device:2 table: for a flattened table, the shortest concrete prefix of each source pattern.
   */
  nativeTablesFor(uspTableRule: string): string[] {
    const rule = this.ruleByUsp.get(uspTableRule);
    if (!rule) return [];
    const out = new Set<string>();
    const ctxs = (() => {
      const encl = enclosingTable(rule.usp);
      if (!encl) return [''];
      return (this.rowsByRule.get(encl) ?? []).map((r) => r.native);
    })();
    for (const c of ctxs) {
      for (const src of this.sources(rule, c)) {
        const k = src.search(/\{[a-z]\}/);
        out.add(k < 0 ? src : src.slice(0, k));
      }
    }
    return [...out];
  }

  /** Concrete Device:2 parameters under a path (object path or partial path ending in '.'). */
  paramsUnder(uspPrefix: string): string[] {
    const out: string[] = [];
    for (const p of this.params.keys()) if (p.startsWith(uspPrefix)) out.push(p);
    return out.sort(natCompare);
  }

  /** Concrete Device:2 objects (instances included) under a path. */
  objectsUnder(uspPrefix: string): string[] {
    return [...this.objects.keys()].filter((p) => p.startsWith(uspPrefix)).sort(natCompare);
  }

  /** Native parameters (not objects) placed in Device:2: read by some Device:2 parameter, or deciding which rows exist. */
  reachableNativeParams(): Set<string> {
    const s = new Set<string>(this.rowDeciding);
    for (const k of this.reverse.keys()) if (!k.endsWith('.')) s.add(k);
    return s;
  }

  /** Native objects (table rows and single objects) some Device:2 object stands for. */
  placedNativeObjects(): Set<string> {
    const s = new Set<string>();
    for (const k of this.reverse.keys()) if (k.endsWith('.')) s.add(k);
    return s;
  }

  /** Whether rows of this native table ("{i}" form) become Device:2 rows (the table may be empty). */
  placesRowsOf(nativeTable: string): boolean {
    return this.rowSources.has(nativeTable);
  }

  /** Native parameters of the device (not objects). */
  nativeParamNames(): string[] {
    return this.native.paramNames();
  }

  /** The device's native name list this snapshot was built from (to persist it, or to derive the next snapshot). */
  nativeParamList(): NativeParamInfo[] {
    return this.native.list();
  }

  /**
   * The native parameters to read (GetParameterValues, TR-069 A.3.2.2) for Device:2 paths: a
   * parameter -> the native parameter(s) behind it, an object or partial path ('.'-terminated)
   * -> those of every mapped parameter under it. Only full parameter names the device listed,
   * never a partial path; computed parameters need none. Unmapped paths contribute nothing.
   * Paths under an `exclude` prefix (served elsewhere) are skipped. Order: Device:2 order, each
   * native name once, so that consecutive batches read neighbouring parameters.
   */
  nativeNamesFor(uspPaths: Iterable<string>, opts: { exclude?: readonly string[] } = {}): string[] {
    const exclude = opts.exclude ?? [];
    const out = new Set<string>();
    const take = (usp: string): void => {
      if (exclude.some((x) => usp.startsWith(x))) return;
      for (const n of this.toNative(usp) ?? []) if (!n.endsWith('.') && this.native.hasParam(n)) out.add(n);
    };
    for (const p of uspPaths) {
      if (exclude.some((x) => p.startsWith(x))) continue;
      if (p.endsWith('.')) for (const q of this.paramsUnder(p)) take(q);
      else take(p);
    }
    return [...out];
  }

  /**
   * The next snapshot after native names were learned: the GetParameterNames of a new instance
   * (after AddObject, TR-069 A.3.2.6), or types learned from GetParameterValues answers. A name
   * already known is updated (keeping its type when the update has none). Instance numbers
   * carry over through the same InstanceMapStore; this snapshot is unchanged.
   */
  withAdded(params: Iterable<NativeParamInfo>): DeviceMapping {
    const merged = this.native.list();
    const at = new Map(merged.map((p, i) => [p.name, i]));
    for (const p of params) {
      const i = at.get(p.name);
      if (i === undefined) {
        at.set(p.name, merged.length);
        merged.push(p);
      } else merged[i] = p.type || !merged[i]!.type ? p : { ...p, type: merged[i]!.type };
    }
    return this.next(merged);
  }

  /**
   * The next snapshot with xsi:types learned for names already known (from GetParameterValues
   * answers, TR-069 A.3.2.2), their writability unchanged. Unknown names and objects are ignored;
   * returns this snapshot when nothing changes.
   */
  withTypes(types: Iterable<readonly [string, string]> | ReadonlyMap<string, string>): DeviceMapping {
    const list = this.native.list();
    const at = new Map(list.map((p, i) => [p.name, i]));
    let changed = false;
    for (const [name, type] of types) {
      const i = at.get(name);
      if (i === undefined || name.endsWith('.') || !type || list[i]!.type === type) continue;
      list[i] = { ...list[i]!, type };
      changed = true;
    }
    return changed ? this.next(list) : this;
  }

  /**
   * The next snapshot after a native object is gone (DeleteObject, TR-069 A.3.2.7): every name
   * equal to or under `nativePath` is dropped. The Device:2 numbers of the rows it carried are
   * retired, never given to another row.
   */
  withRemoved(nativePath: string): DeviceMapping {
    const gone = (n: string): boolean => n === nativePath || (nativePath.endsWith('.') && n.startsWith(nativePath));
    return this.next(this.native.list().filter((p) => !gone(p.name)));
  }

  private next(params: NativeParamInfo[]): DeviceMapping {
    return new DeviceMapping(this.mapping, { deviceKey: this.deviceKey, params, store: this.store, values: this.values });
  }
}
