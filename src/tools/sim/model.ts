/**
 * The simulator's data model: one immutable template per model (parsed once, shared by
 * every device of a fleet) and a small copy-on-write overlay per device (changed values,
 * added and deleted instances, attributes). 10,000 devices of one model cost the template
 * once plus a few overrides each.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { assetPath } from '../../util/assets.js';
import type { DeviceIdStruct } from '../../cwmp/types.js';

/** One parameter or object of a template. Object paths end in '.'. */
export interface ModelNode {
  readonly object: boolean;
  readonly writable: boolean;
  readonly value: string;
  /** xsi:type ("xsd:string" when the CSV has none). Empty for objects. */
  readonly type: string;
  readonly notification: number;
  readonly accessList: readonly string[];
}

interface MutableNode extends ModelNode {
  children?: string[];
}

/** An immutable parsed model. */
export class ModelTemplate {
  /** 'Device.' or 'InternetGatewayDevice.' */
  readonly root: string;
  /** DeviceId from the `DeviceID.*` rows (fields missing in the CSV are empty). */
  readonly deviceId: DeviceIdStruct;
  private readonly nodes: Map<string, MutableNode>;
  /** Highest instance number per table path seen in the template. */
  private readonly maxInstance = new Map<string, number>();

  constructor(rows: Iterable<ModelRow>, deviceId: Partial<DeviceIdStruct> = {}) {
    this.nodes = new Map();
    let root: string | null = null;
    for (const r of rows) {
      const name = r.object && !r.name.endsWith('.') ? r.name + '.' : r.name;
      if (!name || name === '.') continue;
      const top = name.slice(0, name.indexOf('.') + 1);
      if (root === null) root = top;
      else if (top !== root) continue; // a model has one root; stray rows are dropped
      this.ensureParents(name);
      const prev = this.nodes.get(name);
      const node: MutableNode = {
        object: r.object,
        writable: r.writable,
        value: r.object ? '' : r.value,
        type: r.object ? '' : r.type || 'xsd:string',
        notification: r.notification,
        accessList: r.accessList,
        children: prev?.children,
      };
      if (!r.object) delete node.children;
      this.nodes.set(name, node);
    }
    if (root === null) throw new Error('model has no parameters');
    this.root = root;
    if (!this.nodes.has(root)) this.nodes.set(root, objNode(false));
    // Instances in numeric order; other children keep the file's order.
    for (const [p, n] of this.nodes) {
      if (!n.children) continue;
      n.children.sort(childOrder);
      let max = 0;
      for (const c of n.children) {
        const seg = lastSegment(c);
        if (/^\d+$/.test(seg)) max = Math.max(max, Number(seg));
      }
      if (max > 0) this.maxInstance.set(p, max);
    }
    this.deviceId = {
      manufacturer: deviceId.manufacturer ?? this.nodes.get(root + 'DeviceInfo.Manufacturer')?.value ?? '',
      oui: deviceId.oui ?? this.nodes.get(root + 'DeviceInfo.ManufacturerOUI')?.value ?? '',
      productClass: deviceId.productClass ?? this.nodes.get(root + 'DeviceInfo.ProductClass')?.value ?? '',
      serialNumber: deviceId.serialNumber ?? this.nodes.get(root + 'DeviceInfo.SerialNumber')?.value ?? '',
    };
  }

  /** A copy with these rows added (same-named ones replaced), e.g. the STUN parameters of a device behind NAT. */
  withRows(extra: readonly ModelRow[]): ModelTemplate {
    const rows: ModelRow[] = [];
    for (const [name, n] of this.nodes) rows.push({ ...n, name, accessList: [...n.accessList] });
    return new ModelTemplate([...rows, ...extra], this.deviceId);
  }

  private ensureParents(name: string): void {
    let child = name;
    for (;;) {
      const parent = parentOf(child);
      if (!parent) return;
      let pn = this.nodes.get(parent);
      const existed = pn !== undefined;
      if (!pn) {
        pn = objNode(false);
        this.nodes.set(parent, pn);
      }
      pn.children ??= [];
      if (!pn.children.includes(child)) pn.children.push(child);
      if (existed) return; // its own ancestors are linked already
      child = parent;
    }
  }

  get size(): number {
    return this.nodes.size;
  }
  node(p: string): ModelNode | undefined {
    return this.nodes.get(p);
  }
  children(p: string): readonly string[] {
    return this.nodes.get(p)?.children ?? [];
  }
  maxInstanceOf(table: string): number {
    return this.maxInstance.get(table) ?? 0;
  }
  /** Every path of the template, depth first in child order. */
  *walk(from = this.root): Generator<string> {
    yield from;
    for (const c of this.children(from)) {
      if (c.endsWith('.')) yield* this.walk(c);
      else yield c;
    }
  }
}

function objNode(writable: boolean): MutableNode {
  return { object: true, writable, value: '', type: '', notification: 0, accessList: [], children: [] };
}

export function lastSegment(p: string): string {
  const t = p.endsWith('.') ? p.slice(0, -1) : p;
  return t.slice(t.lastIndexOf('.') + 1);
}

/** Parent object path ("A.B.C." -> "A.B.", "A.B.x" -> "A.B."). */
export function parentOf(p: string): string {
  const t = p.endsWith('.') ? p.slice(0, -1) : p;
  return t.slice(0, t.lastIndexOf('.') + 1);
}

function childOrder(a: string, b: string): number {
  const sa = lastSegment(a);
  const sb = lastSegment(b);
  const na = /^\d+$/.test(sa);
  const nb = /^\d+$/.test(sb);
  if (na && nb) return Number(sa) - Number(sb);
  return 0;
}

// ---------------------------------------------------------------- CSV

export interface ModelRow {
  name: string;
  object: boolean;
  writable: boolean;
  value: string;
  type: string;
  notification: number;
  accessList: string[];
}

/** RFC 4180 CSV: quoted fields with commas, doubled quotes and line breaks. */
export function parseCsv(text: string): string[][] {
  const out: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  const n = text.length;
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  while (i < n) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"') {
      quoted = true;
      i++;
    } else if (c === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (c === '\n' || c === '\r') {
      row.push(field);
      field = '';
      if (row.length > 1 || row[0] !== '') out.push(row);
      row = [];
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
    } else {
      field += c;
      i++;
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    out.push(row);
  }
  return out;
}

/** Parses a model CSV in either layout (see cwmp-models/README.md). */
export function parseModelCsv(text: string): ModelTemplate {
  const rows = parseCsv(text);
  if (rows.length === 0) throw new Error('empty model CSV');
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const col = (name: string): number => header.indexOf(name);
  const iName = col('parameter');
  const iObj = col('object');
  const iW = col('writable');
  const iV = col('value');
  const iT = col('value type');
  const iN = col('notification');
  const iA = col('access list');
  if (iName < 0 || iObj < 0 || iW < 0 || iV < 0) {
    throw new Error(`model CSV header must have Parameter,Object,Writable,Value (got: ${rows[0].join(',')})`);
  }
  const devId: Partial<DeviceIdStruct> = {};
  const out: ModelRow[] = [];
  for (let r = 1; r < rows.length; r++) {
    const f = rows[r];
    const name = (f[iName] ?? '').trim();
    if (!name) continue;
    const value = f[iV] ?? '';
    if (name.startsWith('DeviceID.')) {
      const k = name.slice(9);
      if (k === 'Manufacturer') devId.manufacturer = value;
      else if (k === 'OUI') devId.oui = value;
      else if (k === 'ProductClass') devId.productClass = value;
      else if (k === 'SerialNumber') devId.serialNumber = value;
      continue;
    }
    if (name.startsWith('Events.')) continue;
    const notif = iN >= 0 ? Number.parseInt(f[iN] ?? '', 10) : NaN;
    const acl =
      iA >= 0 && f[iA]
        ? f[iA]
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : [];
    out.push({
      name,
      object: bool(f[iObj]),
      writable: bool(f[iW]),
      value,
      type: iT >= 0 ? (f[iT] ?? '').trim() : '',
      notification: Number.isFinite(notif) && notif >= 0 && notif <= 6 ? notif : 0,
      accessList: acl,
    });
  }
  return new ModelTemplate(out, devId);
}

function bool(s: string | undefined): boolean {
  const t = (s ?? '').trim().toLowerCase();
  return t === 'true' || t === '1';
}

// ---------------------------------------------------------------- bundled models and cache

const BUNDLED: Record<string, string> = { tr181: 'tr181-device.csv', tr098: 'tr098-igd.csv' };

/** Directory of the bundled model CSVs (assets/sim-models). */
export function bundledModelsDir(): string {
  return assetPath('sim-models');
}

const cache = new Map<string, ModelTemplate>();

/**
 * The template for 'tr181', 'tr098' or a CSV file path. Parsed once per process and shared:
 * templates are immutable.
 */
export function loadModel(model: string): ModelTemplate {
  const file = BUNDLED[model] ? path.join(bundledModelsDir(), BUNDLED[model]) : path.resolve(model);
  let t = cache.get(file);
  if (!t) {
    if (!existsSync(file)) throw new Error(`model not found: ${model} (use tr181, tr098 or a CSV path)`);
    t = parseModelCsv(readFileSync(file, 'utf8'));
    cache.set(file, t);
  }
  return t;
}

// ---------------------------------------------------------------- per-device overlay

export interface Attr {
  notification: number;
  accessList: string[];
}

/**
 * One device's view of a template: reads fall through to the template unless the device
 * changed, added or deleted something. Nothing is copied until it changes.
 */
export class DeviceModel {
  private vals: Map<string, string> | null = null;
  private added: Map<string, ModelNode> | null = null;
  private addedChildren: Map<string, string[]> | null = null;
  private deleted: Set<string> | null = null;
  private attrs: Map<string, Attr> | null = null;
  private nextInst: Map<string, number> | null = null;

  constructor(readonly tpl: ModelTemplate) {}

  get root(): string {
    return this.tpl.root;
  }

  /** Forget every change (factory reset). */
  reset(): void {
    this.vals = this.added = this.addedChildren = this.deleted = this.attrs = null;
    // nextInst is kept: instance numbers are not reused after a reset within a run.
  }

  private isDeleted(p: string): boolean {
    if (!this.deleted || this.deleted.size === 0) return false;
    for (const d of this.deleted) if (p.startsWith(d)) return true;
    return false;
  }

  node(p: string): ModelNode | undefined {
    const a = this.added?.get(p);
    if (a) return a;
    if (this.isDeleted(p)) return undefined;
    return this.tpl.node(p);
  }

  has(p: string): boolean {
    return this.node(p) !== undefined;
  }

  children(p: string): string[] {
    const out: string[] = [];
    if (!this.added?.has(p)) {
      for (const c of this.tpl.children(p)) if (!this.isDeleted(c)) out.push(c);
    }
    const extra = this.addedChildren?.get(p);
    if (extra) for (const c of extra) out.push(c);
    return out;
  }

  get(p: string): string | undefined {
    const n = this.node(p);
    if (!n || n.object) return undefined;
    return this.vals?.get(p) ?? n.value;
  }

  /** Sets a value with no checks (the caller validated). */
  set(p: string, v: string): void {
    (this.vals ??= new Map()).set(p, v);
  }

  attr(p: string): Attr {
    const a = this.attrs?.get(p);
    if (a) return a;
    const n = this.node(p);
    return { notification: n?.notification ?? 0, accessList: (n?.accessList ?? []) as string[] };
  }

  setAttr(p: string, a: Attr): void {
    (this.attrs ??= new Map()).set(p, a);
  }

  /** Parameters (not objects) with notification 1 or 2. */
  *notifiedParams(): Generator<[string, number]> {
    if (this.attrs) for (const [p, a] of this.attrs) if (a.notification > 0 && this.has(p)) yield [p, a.notification];
    for (const p of templateNotified(this.tpl)) {
      if (this.attrs?.has(p)) continue;
      const n = this.node(p);
      if (n && n.notification > 0) yield [p, n.notification];
    }
  }

  /** Depth-first walk of the device's tree under `from` (inclusive). */
  *walk(from: string): Generator<string> {
    yield from;
    if (!from.endsWith('.')) return;
    for (const c of this.children(from)) {
      if (c.endsWith('.')) yield* this.walk(c);
      else yield c;
    }
  }

  /** Instance numbers of a table, in order. */
  instances(table: string): number[] {
    const out: number[] = [];
    for (const c of this.children(table)) {
      const s = lastSegment(c);
      if (c.endsWith('.') && /^\d+$/.test(s)) out.push(Number(s));
    }
    return out;
  }

  /**
   * A multi-instance object: one that has numbered instances, a `<Name>NumberOfEntries`
   * sibling, or is writable with a non-numeric name and no parameters of its own.
   */
  isTable(p: string): boolean {
    const n = this.node(p);
    if (!n?.object || /^\d+$/.test(lastSegment(p))) return false;
    if (this.tpl.maxInstanceOf(p) > 0 || this.instances(p).length > 0) return true;
    if (this.node(parentOf(p) + lastSegment(p) + 'NumberOfEntries')) return true;
    return false;
  }

  /**
   * Creates the next instance of a table, copying parameters and defaults from the
   * template's first instance (nested tables start empty). Returns the instance number.
   */
  addInstance(table: string): number {
    const nextMap = (this.nextInst ??= new Map());
    const used = Math.max(this.tpl.maxInstanceOf(table), ...this.instances(table), nextMap.get(table) ?? 0);
    const num = used + 1;
    nextMap.set(table, num);
    const inst = `${table}${num}.`;
    const added = (this.added ??= new Map());
    const kids = (this.addedChildren ??= new Map());
    const link = (parent: string, child: string): void => {
      const l = kids.get(parent);
      if (l) l.push(child);
      else kids.set(parent, [child]);
    };
    const tableNode = this.node(table);
    added.set(inst, { object: true, writable: tableNode?.writable ?? true, value: '', type: '', notification: 0, accessList: [] });
    link(table, inst);
    const protoNum = firstTemplateInstance(this.tpl, table);
    if (protoNum !== null) {
      const proto = `${table}${protoNum}.`;
      const copy = (from: string, to: string): void => {
        for (const c of this.tpl.children(from)) {
          const seg = c.slice(from.length);
          const dst = to + seg;
          const n = this.tpl.node(c)!;
          if (n.object) {
            // Nested instances are not copied: nested tables start empty.
            if (/^\d+\.$/.test(seg)) continue;
            added.set(dst, n);
            link(to, dst);
            copy(c, dst);
          } else {
            let value = n.value;
            if (seg === 'Alias') value = `cpe-${num}`;
            else if (seg.endsWith('NumberOfEntries')) {
              const t = from + seg.slice(0, -'NumberOfEntries'.length) + '.';
              if (this.tpl.maxInstanceOf(t) > 0) value = '0';
            }
            added.set(dst, value === n.value ? n : { ...n, value });
            link(to, dst);
          }
        }
      };
      copy(proto, inst);
    }
    this.updateCount(table);
    return num;
  }

  /**
   * Defines a parameter inside an instance this device added (e.g. RouteHops results when
   * the template has no instance to copy from). Template paths cannot be redefined.
   */
  defineParam(p: string, value: string, type: string, writable = false): void {
    const parent = parentOf(p);
    if (!this.added?.has(parent)) throw new Error(`defineParam: ${parent} is not an added instance`);
    if (!this.added.has(p)) {
      const l = this.addedChildren!.get(parent);
      if (l) l.push(p);
      else this.addedChildren!.set(parent, [p]);
    }
    this.added.set(p, { object: false, writable, value, type, notification: 0, accessList: [] });
  }

  /** Deletes an instance (path ending in "N.") and its subtree. */
  deleteInstance(inst: string): void {
    const table = parentOf(inst);
    if (this.added?.has(inst)) {
      for (const k of [...this.added.keys()]) if (k.startsWith(inst)) this.added.delete(k);
      if (this.addedChildren) {
        for (const k of [...this.addedChildren.keys()]) if (k.startsWith(inst)) this.addedChildren.delete(k);
        const l = this.addedChildren.get(table);
        if (l)
          this.addedChildren.set(
            table,
            l.filter((c) => c !== inst),
          );
      }
    } else {
      (this.deleted ??= new Set()).add(inst);
    }
    if (this.vals) for (const k of [...this.vals.keys()]) if (k.startsWith(inst)) this.vals.delete(k);
    if (this.attrs) for (const k of [...this.attrs.keys()]) if (k.startsWith(inst)) this.attrs.delete(k);
    this.updateCount(table);
  }

  /** Keeps `<Table>NumberOfEntries` in step with the table. */
  updateCount(table: string): void {
    const counter = parentOf(table) + lastSegment(table) + 'NumberOfEntries';
    if (this.node(counter)) this.set(counter, String(this.instances(table).length));
  }

  /** Approximate count of overrides, for memory diagnostics. */
  overrideCount(): number {
    return (this.vals?.size ?? 0) + (this.added?.size ?? 0) + (this.deleted?.size ?? 0) + (this.attrs?.size ?? 0);
  }
}

const sharedNotified = new WeakMap<ModelTemplate, string[]>();

/** Template parameters whose default notification is on (computed once per template). */
function templateNotified(tpl: ModelTemplate): string[] {
  let l = sharedNotified.get(tpl);
  if (!l) {
    l = [];
    for (const p of tpl.walk()) {
      const n = tpl.node(p);
      if (n && !n.object && n.notification > 0) l.push(p);
    }
    sharedNotified.set(tpl, l);
  }
  return l;
}

function firstTemplateInstance(tpl: ModelTemplate, table: string): number | null {
  for (const c of tpl.children(table)) {
    const s = lastSegment(c);
    if (c.endsWith('.') && /^\d+$/.test(s)) return Number(s);
  }
  return null;
}
