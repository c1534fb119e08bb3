/**
 * A schema-driven data model held in memory, per agent, created lazily on first use (an
 * agent no controller talks to costs nothing). Serves the proxy's own subtrees
 * (Device.LocalAgent.): tables with unique keys, access rules, defaults, type checks,
 * write-once and immutable parameters, computed read-only values, and change hooks for
 * persistence and notifications.
 */
import type {
  AddOutcome,
  DeleteOutcome,
  DmBackend,
  ObjectSchema,
  OperateOutcome,
  ParamError,
  ParamSchema,
  ParamSetting,
  RequestContext,
  SetOutcome,
} from './types.js';
import { checkValue } from './values.js';

/** One row of a table or a single-instance object: parameter name -> value. */
export type Row = Record<string, string>;

export interface AgentTree {
  /** Concrete table path ("Device.LocalAgent.Controller.1.BootParameter.") -> rows by instance. */
  tables: Map<string, { next: number; rows: Map<number, Row> }>;
  /** Concrete single-instance object path -> its stored values. */
  objects: Map<string, Row>;
  /**
   * The tree holds what its seed cannot rebuild (stored rows it consumed, a change made since):
   * it is never released. An unpinned tree is released when idle and seeded again on next use.
   */
  pinned?: boolean;
  /** Values derived from the rows by a hook (a controller's Roles), dropped on every change. */
  derived?: Map<string, unknown>;
  /** Used since the idle release last passed over it (MemoryModel.releaseIdle). */
  used?: boolean;
}

export interface MemoryModelOptions {
  /**
   * Unpinned trees kept (least recently used released beyond): an agent nobody changed costs
   * nothing once idle. Default: unbounded (every tree kept until forget()).
   */
  maxIdleTrees?: number;
}

export interface ChangeEvent {
  kind: 'add' | 'delete' | 'set';
  agentEid: string;
  /** Concrete object path ("Device.LocalAgent.Subscription.3."). */
  path: string;
  schemaPath: string;
  /** The object's values after the change (before, for delete). */
  values: Row;
  /** For set: the parameters that changed, with their new values. */
  changed?: Row;
}

export interface MemoryHooks {
  /** Fills a new agent's tree (configured rows, persisted rows). */
  seed?(agentEid: string, tree: AgentTree, model: MemoryModel): void;
  /** A read-only value computed on read (EndpointID, UpTime...). undefined = use the stored value. */
  computed?(agentEid: string, objectPath: string, schemaPath: string, param: string): string | undefined;
  /** Extra rules on the values an Add or Set would leave (beyond type and uniqueness checks). */
  validate?(ctx: RequestContext, schemaPath: string, values: Row, before: Row | null, settings: readonly ParamSetting[]): ParamError[];
  /** Fills generated values on Add (unique keys the controller did not give, defaults that depend on the requester). */
  prepareAdd?(ctx: RequestContext, schemaPath: string, tablePath: string, values: Row, tree: AgentTree): void;
  /** After a successful change (persist, notify). Errors are the hook's to log. */
  changed?(e: ChangeEvent): void;
  /**
   * Several instances share the rows (src/cluster/): reserves the instance number of a new row so
   * that two instances never hand out the same one. undefined = take the table's next.
   */
  allocate?(agentEid: string, tablePath: string, next: number): Promise<number> | undefined;
  /**
   * Rows the proxy keeps read-only to controllers whatever their Role allows (the predefined
   * Roles): an error for the change, or null. `path` is the object (set, delete) or table (add).
   */
  guard?(ctx: RequestContext, op: 'set' | 'add' | 'delete', path: string): { errCode: number; errMsg: string } | null;
  /** Commands. */
  operate?(ctx: RequestContext, commandPath: string, schemaPath: string, input: Record<string, string>, commandKey: string): Promise<OperateOutcome>;
}

const INSTANCE = /\.(\d+)\./g;
const DIGIT = /\d/;

/** "Device.LocalAgent.Subscription.3.Enable" -> "Device.LocalAgent.Subscription.{i}.Enable" */
export function toSchemaPath(concrete: string): string {
  // Most paths name no instance: no regex replace (and no new string) for them.
  if (!DIGIT.test(concrete)) return concrete;
  return concrete.replace(INSTANCE, '.{i}.').replace(INSTANCE, '.{i}.');
}

export class MemoryModel implements DmBackend {
  private readonly trees = new Map<string, AgentTree>();
  /** Unpinned trees in the order they were seeded or given a second chance (only with maxIdleTrees). */
  private readonly idle = new Map<string, AgentTree>();
  private readonly maxIdleTrees: number;
  /** Supported objects by "{i}" path. */
  readonly objects = new Map<string, ObjectSchema>();
  private readonly paramIndex = new Map<string, Map<string, ParamSchema>>();

  constructor(
    readonly prefixes: readonly string[],
    schema: readonly ObjectSchema[],
    private readonly hooks: MemoryHooks = {},
    opts: MemoryModelOptions = {},
  ) {
    this.maxIdleTrees = opts.maxIdleTrees ?? Number.POSITIVE_INFINITY;
    for (const o of schema) {
      this.objects.set(o.path, o);
      this.paramIndex.set(o.path, new Map(o.params.map((p) => [p.name, p])));
    }
  }

  /** The schema is fixed at construction. */
  get staticModel(): ReadonlyMap<string, ObjectSchema> {
    return this.objects;
  }

  async supported(): Promise<readonly ObjectSchema[]> {
    return [...this.objects.values()];
  }

  /** The agent's tree, seeded on first use (and again after it was released idle). */
  tree(agentEid: string): AgentTree {
    let t = this.trees.get(agentEid);
    if (t) {
      // Marked, not moved: reordering the idle map on every request was a Map delete + insert
      // per Get; the release below gives a marked tree a second chance instead (CLOCK).
      t.used = true;
      return t;
    }
    t = { tables: new Map(), objects: new Map(), used: false };
    this.trees.set(agentEid, t);
    this.hooks.seed?.(agentEid, t, this);
    if (!t.pinned && this.maxIdleTrees !== Number.POSITIVE_INFINITY) {
      this.idle.set(agentEid, t);
      this.releaseIdle(agentEid);
    }
    return t;
  }

  /**
   * Releases idle trees beyond maxIdleTrees, oldest first; one used since it was last passed over
   * goes to the end, unmarked (second chance), and so does `seeded`, the tree just made. Ends: each
   * step releases a tree or unmarks one.
   */
  private releaseIdle(seeded: string): void {
    while (this.idle.size > this.maxIdleTrees) {
      const [eid, t] = this.idle.entries().next().value as [string, AgentTree];
      this.idle.delete(eid);
      if (t.used || eid === seeded) {
        t.used = false;
        this.idle.set(eid, t);
      } else this.trees.delete(eid);
    }
  }

  /** The agent's tree changed outside what its seed rebuilds: kept from now on; derived values dropped. */
  pin(agentEid: string): void {
    const t = this.tree(agentEid);
    t.pinned = true;
    t.derived = undefined;
    this.idle.delete(agentEid);
  }

  /** Trees held (pinned and idle), for tests and the benches. */
  get treeCount(): number {
    return this.trees.size;
  }

  /** Drops an agent's state (device deleted). */
  forget(agentEid: string): void {
    this.trees.delete(agentEid);
    this.idle.delete(agentEid);
  }

  paramSchema(schemaObjectPath: string, name: string): ParamSchema | undefined {
    return this.paramIndex.get(schemaObjectPath)?.get(name);
  }

  /** Does this concrete object path exist for the agent (every instance on the way exists)? */
  objectExists(agentEid: string, objectPath: string): boolean {
    const schemaPath = toSchemaPath(objectPath);
    const o = this.objects.get(schemaPath);
    if (!o) return false;
    const tree = this.tree(agentEid);
    // Walk every instance segment: "A.1.B.2." needs row 1 of "A." and row 2 of "A.1.B.".
    const parts = objectPath.split('.');
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      const seg = parts[i]!;
      if (/^\d+$/.test(seg)) {
        const table = tree.tables.get(prefix);
        if (!table?.rows.has(Number(seg))) return false;
      }
      prefix += seg + '.';
    }
    return true;
  }

  /** Whether a multi-instance table exists for this agent, without listing its rows. */
  private tableExists(agentEid: string, tablePath: string): boolean {
    const schema = this.objects.get(toSchemaPath(tablePath) + '{i}.');
    if (!schema?.multiInstance) return false;
    const parent = tablePath.slice(0, tablePath.slice(0, -1).lastIndexOf('.') + 1);
    return !(parent && parent !== tablePath && this.objects.has(toSchemaPath(parent)) && !this.objectExists(agentEid, parent));
  }

  async instances(agentEid: string, tablePath: string): Promise<number[] | null> {
    if (!this.tableExists(agentEid, tablePath)) return null;
    const t = this.tree(agentEid).tables.get(tablePath);
    return t ? [...t.rows.keys()].sort((a, b) => a - b) : [];
  }

  /** Stored (or default) values of one concrete object, with computed ones applied. */
  objectValues(agentEid: string, objectPath: string): Row | null {
    if (!this.objectExists(agentEid, objectPath)) return null;
    const schemaPath = toSchemaPath(objectPath);
    const o = this.objects.get(schemaPath)!;
    const stored = this.storedRow(agentEid, objectPath, o) ?? {};
    const out: Row = {};
    for (const p of o.params) {
      if (p.access === 'writeOnly') {
        out[p.name] = '';
        continue;
      }
      const c = this.hooks.computed?.(agentEid, objectPath, schemaPath, p.name) ?? this.numberOfEntries(agentEid, objectPath, p.name);
      out[p.name] = c ?? stored[p.name] ?? p.default ?? '';
    }
    return out;
  }

  /** One parameter's value as objectValues() would give it, without computing its siblings. */
  paramValue(agentEid: string, objectPath: string, name: string): string | undefined {
    const schemaPath = toSchemaPath(objectPath);
    const p = this.paramIndex.get(schemaPath)?.get(name);
    if (!p || !this.objectExists(agentEid, objectPath)) return undefined;
    if (p.access === 'writeOnly') return '';
    const c = this.hooks.computed?.(agentEid, objectPath, schemaPath, name) ?? this.numberOfEntries(agentEid, objectPath, name);
    return c ?? this.storedRow(agentEid, objectPath, this.objects.get(schemaPath)!)?.[name] ?? p.default ?? '';
  }

  private numberOfEntries(agentEid: string, objectPath: string, name: string): string | undefined {
    if (!name.endsWith('NumberOfEntries')) return undefined;
    const table = objectPath + name.slice(0, -'NumberOfEntries'.length) + '.';
    const t = this.tree(agentEid).tables.get(table);
    if (!this.objects.has(toSchemaPath(table) + '{i}.')) return undefined;
    return String(t?.rows.size ?? 0);
  }

  private storedRow(agentEid: string, objectPath: string, o: ObjectSchema): Row | null {
    const tree = this.tree(agentEid);
    if (o.multiInstance) {
      const m = /^(.*\.)(\d+)\.$/.exec(objectPath);
      if (!m) return null;
      return tree.tables.get(m[1]!)?.rows.get(Number(m[2])) ?? null;
    }
    let row = tree.objects.get(objectPath);
    if (!row) tree.objects.set(objectPath, (row = {}));
    return row;
  }

  async get(agentEid: string, paths: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const path of paths) {
      if (path.endsWith('.')) this.collect(agentEid, path, out);
      else {
        const dot = path.lastIndexOf('.');
        const v = this.paramValue(agentEid, path.slice(0, dot + 1), path.slice(dot + 1));
        if (v !== undefined) out.set(path, v);
      }
    }
    return out;
  }

  /** Every parameter at and below a concrete object path. */
  private collect(agentEid: string, objectPath: string, out: Map<string, string>): void {
    const table = this.objects.get(toSchemaPath(objectPath) + '{i}.');
    if (table?.multiInstance) {
      // A table path: every row.
      const t = this.tree(agentEid).tables.get(objectPath);
      for (const n of [...(t?.rows.keys() ?? [])].sort((a, b) => a - b)) this.collect(agentEid, `${objectPath}${n}.`, out);
      return;
    }
    const values = this.objectValues(agentEid, objectPath);
    if (values) for (const [k, v] of Object.entries(values)) out.set(objectPath + k, v);
    const schemaPrefix = toSchemaPath(objectPath);
    // Children: single objects directly below, and tables (with their rows).
    for (const child of this.objects.values()) {
      if (!child.path.startsWith(schemaPrefix) || child.path === schemaPrefix) continue;
      const rest = child.path.slice(schemaPrefix.length);
      if (child.multiInstance) {
        // "X.{i}." directly below
        const m = /^([^.]+)\.\{i\}\.$/.exec(rest);
        if (!m) continue;
        const table = objectPath + m[1] + '.';
        const t = this.tree(agentEid).tables.get(table);
        for (const n of [...(t?.rows.keys() ?? [])].sort((a, b) => a - b)) this.collect(agentEid, `${table}${n}.`, out);
      } else if (/^[^.]+\.$/.test(rest)) this.collect(agentEid, objectPath + rest, out);
    }
  }

  async validateSet(ctx: RequestContext, objectPath: string, settings: readonly ParamSetting[]): Promise<ParamError[]> {
    if (!this.objectExists(ctx.agentEid, objectPath))
      return settings.map((s) => ({ param: s.param, errCode: 7016, errMsg: `object ${objectPath} does not exist` }));
    const refused = this.hooks.guard?.(ctx, 'set', objectPath);
    if (refused) return settings.map((s) => ({ param: s.param, ...refused }));
    return this.planSet(ctx, objectPath, settings).errs;
  }

  private planSet(ctx: RequestContext, objectPath: string, settings: readonly ParamSetting[]) {
    const schemaPath = toSchemaPath(objectPath);
    const o = this.objects.get(schemaPath)!;
    const before = this.objectValues(ctx.agentEid, objectPath)!;
    const stored = this.storedRow(ctx.agentEid, objectPath, o)!;
    const errs: ParamError[] = [];
    const next: Row = { ...before };
    const accepted: ParamSetting[] = [];
    for (const s of settings) {
      const p = this.paramIndex.get(schemaPath)!.get(s.param);
      let err: ParamError | null = null;
      if (!p) err = { param: s.param, errCode: 7010, errMsg: `unsupported parameter ${objectPath}${s.param}` };
      else if (p.access === 'readOnly') err = { param: s.param, errCode: 7013, errMsg: `parameter ${objectPath}${s.param} is read-only` };
      else if (p.immutable && before[s.param] !== s.value)
        err = { param: s.param, errCode: 7013, errMsg: `parameter ${objectPath}${s.param} cannot be changed once set` };
      else if (p.writeOnce && stored[s.param] !== undefined && stored[s.param] !== '' && stored[s.param] !== s.value) {
        err = { param: s.param, errCode: 7013, errMsg: `parameter ${objectPath}${s.param} can be written only once` };
      } else {
        const bad = checkValue(p, s.value);
        if (bad) err = { param: s.param, errCode: bad.code, errMsg: `${objectPath}${s.param}: ${bad.message}` };
      }
      if (err) errs.push(err);
      else {
        next[s.param] = normalize(p!, s.value);
        accepted.push(s);
      }
    }
    errs.push(...this.uniqueErrors(ctx.agentEid, objectPath, o, next, before));
    errs.push(...(this.hooks.validate?.(ctx, schemaPath, next, before, settings) ?? []));
    return { schemaPath, stored, errs, next, accepted };
  }

  async set(ctx: RequestContext, objectPath: string, settings: readonly ParamSetting[]): Promise<SetOutcome> {
    if (!this.objectExists(ctx.agentEid, objectPath)) return { ok: false, errCode: 7016, errMsg: `object ${objectPath} does not exist`, paramErrs: [] };
    const refused = this.hooks.guard?.(ctx, 'set', objectPath);
    if (refused) return { ok: false, ...refused, paramErrs: settings.map((s) => ({ param: s.param, ...refused })) };
    const { schemaPath, stored, errs, next, accepted } = this.planSet(ctx, objectPath, settings);
    const requiredFailed = errs.filter((e) => settings.find((s) => s.param === e.param)?.required !== false);
    if (requiredFailed.length > 0) {
      return { ok: false, errCode: 7021, errMsg: 'failed to set required parameters', paramErrs: requiredFailed };
    }
    // Non-required failures are skipped: apply the rest.
    const failed = new Set(errs.map((e) => e.param));
    const changed: Row = {};
    for (const s of accepted) {
      if (failed.has(s.param)) continue;
      const v = next[s.param]!;
      if (stored[s.param] !== v) changed[s.param] = v;
      stored[s.param] = v;
    }
    const updated: Row = {};
    for (const s of accepted) if (!failed.has(s.param)) updated[s.param] = stored[s.param]!;
    if (Object.keys(changed).length > 0) {
      this.pin(ctx.agentEid);
      this.hooks.changed?.({
        kind: 'set',
        agentEid: ctx.agentEid,
        path: objectPath,
        schemaPath,
        values: this.objectValues(ctx.agentEid, objectPath)!,
        changed,
      });
    }
    return { ok: true, updated, paramErrs: errs };
  }

  async add(ctx: RequestContext, tablePath: string, settings: readonly ParamSetting[]): Promise<AddOutcome> {
    const schemaPath = toSchemaPath(tablePath) + '{i}.';
    const o = this.objects.get(schemaPath);
    if (!o?.multiInstance) return { ok: false, errCode: 7018, errMsg: `${tablePath} is not a multi-instance object`, paramErrs: [] };
    if (o.access === 'readOnly' || o.access === 'deleteOnly') return { ok: false, errCode: 7019, errMsg: `${tablePath} does not allow Add`, paramErrs: [] };
    // Existence only: listing (and sorting) the rows here made N Adds to a large table O(N^2 log N).
    if (!this.tableExists(ctx.agentEid, tablePath)) return { ok: false, errCode: 7016, errMsg: `object ${tablePath} does not exist`, paramErrs: [] };
    const refused = this.hooks.guard?.(ctx, 'add', tablePath);
    if (refused) return { ok: false, ...refused, paramErrs: [] };
    let tree = this.tree(ctx.agentEid);
    let table = tree.tables.get(tablePath);
    if (!table) tree.tables.set(tablePath, (table = { next: 1, rows: new Map() }));

    const values: Row = {};
    for (const p of o.params) if (p.access !== 'readOnly' || p.default !== undefined) values[p.name] = p.default ?? '';
    const errs: ParamError[] = [];
    for (const s of settings) {
      const p = this.paramIndex.get(schemaPath)!.get(s.param);
      let err: ParamError | null = null;
      if (!p) err = { param: s.param, errCode: 7010, errMsg: `unsupported parameter ${schemaPath}${s.param}` };
      else if (p.access === 'readOnly') err = { param: s.param, errCode: 7013, errMsg: `parameter ${schemaPath}${s.param} is read-only` };
      else {
        const bad = checkValue(p, s.value);
        if (bad) err = { param: s.param, errCode: bad.code, errMsg: `${schemaPath}${s.param}: ${bad.message}` };
      }
      if (err) errs.push(err);
      else values[s.param] = normalize(p!, s.value);
    }
    let instance = table.next;
    const reserved = this.hooks.allocate?.(ctx.agentEid, tablePath, table.next);
    if (reserved !== undefined) {
      instance = await reserved;
      // The agent's tree may have been re-seeded meanwhile (another instance changed its rows).
      tree = this.tree(ctx.agentEid);
      table = tree.tables.get(tablePath) ?? { next: 1, rows: new Map() };
      tree.tables.set(tablePath, table);
    }
    const path = `${tablePath}${instance}.`;
    this.hooks.prepareAdd?.(ctx, schemaPath, tablePath, values, tree);
    errs.push(...this.uniqueErrors(ctx.agentEid, path, o, values, null));
    errs.push(...(this.hooks.validate?.(ctx, schemaPath, values, null, settings) ?? []));
    const requiredFailed = errs.filter((e) => settings.find((s) => s.param === e.param)?.required !== false);
    if (requiredFailed.length > 0) {
      const first = requiredFailed[0]!;
      return { ok: false, errCode: first.errCode, errMsg: first.errMsg, paramErrs: requiredFailed };
    }
    for (const e of errs) {
      // A failed non-required setting falls back to the default.
      const p = this.paramIndex.get(schemaPath)!.get(e.param);
      if (p) values[e.param] = p.default ?? '';
    }
    table.next = Math.max(table.next, instance + 1);
    table.rows.set(instance, values);
    this.pin(ctx.agentEid);
    const uniqueKeys: Record<string, string> = {};
    for (const set of o.uniqueKeys) for (const k of set) uniqueKeys[k] = this.objectValues(ctx.agentEid, path)![k] ?? '';
    this.hooks.changed?.({ kind: 'add', agentEid: ctx.agentEid, path, schemaPath, values: this.objectValues(ctx.agentEid, path)! });
    return { ok: true, instance, uniqueKeys, paramErrs: errs };
  }

  async delete(ctx: RequestContext, instancePath: string): Promise<DeleteOutcome> {
    const m = /^(.*\.)(\d+)\.$/.exec(instancePath);
    const schemaPath = toSchemaPath(instancePath);
    const o = this.objects.get(schemaPath);
    if (!m || !o?.multiInstance) return { ok: false, errCode: 7018, errMsg: `${instancePath} is not a table instance` };
    if (o.access === 'readOnly' || o.access === 'addOnly')
      return { ok: false, errCode: 7024, errMsg: `${instancePath} cannot be deleted (object is not deletable)` };
    if (!this.objectExists(ctx.agentEid, instancePath)) return { ok: true, deleted: false }; // TR-369 R-DEL.1: a missing instance is success, nothing affected
    const refused = this.hooks.guard?.(ctx, 'delete', instancePath);
    if (refused) return { ok: false, ...refused };
    const values = this.objectValues(ctx.agentEid, instancePath)!;
    const tree = this.tree(ctx.agentEid);
    tree.tables.get(m[1]!)!.rows.delete(Number(m[2]));
    for (const key of [...tree.tables.keys()]) if (key.startsWith(instancePath)) tree.tables.delete(key);
    for (const key of [...tree.objects.keys()]) if (key.startsWith(instancePath)) tree.objects.delete(key);
    this.pin(ctx.agentEid);
    this.hooks.changed?.({ kind: 'delete', agentEid: ctx.agentEid, path: instancePath, schemaPath, values });
    return { ok: true };
  }

  async operate(ctx: RequestContext, commandPath: string, input: Record<string, string>, commandKey: string): Promise<OperateOutcome> {
    const dot = commandPath.lastIndexOf('.');
    const objectPath = commandPath.slice(0, dot + 1);
    const name = commandPath.slice(dot + 1);
    const schemaPath = toSchemaPath(objectPath);
    const o = this.objects.get(schemaPath);
    if (!o?.commands.some((c) => c.name === name) || !this.objectExists(ctx.agentEid, objectPath)) {
      return { kind: 'error', errCode: 7026, errMsg: `unsupported command ${commandPath}` };
    }
    if (!this.hooks.operate) return { kind: 'error', errCode: 7001, errMsg: `command ${commandPath} is not implemented` };
    return this.hooks.operate(ctx, commandPath, schemaPath + name, input, commandKey);
  }

  /** Rows of a table as stored (for hooks that persist or search them). */
  rows(agentEid: string, tablePath: string): Map<number, Row> {
    return this.tree(agentEid).tables.get(tablePath)?.rows ?? new Map();
  }

  private uniqueErrors(agentEid: string, objectPath: string, o: ObjectSchema, values: Row, before: Row | null): ParamError[] {
    if (!o.multiInstance || o.uniqueKeys.length === 0) return [];
    const m = /^(.*\.)(\d+)\.$/.exec(objectPath);
    if (!m) return [];
    const self = Number(m[2]);
    const rows = this.rows(agentEid, m[1]!);
    const errs: ParamError[] = [];
    for (const set of o.uniqueKeys) {
      if (before && set.every((k) => before[k] === values[k])) continue;
      for (const [n, row] of rows) {
        if (n === self) continue;
        const other = this.objectValues(agentEid, `${m[1]}${n}.`) ?? row;
        if (set.every((k) => (other[k] ?? '') === (values[k] ?? ''))) {
          errs.push({
            param: set[set.length - 1]!,
            errCode: 7012,
            errMsg: `unique key ${set.join('+')} = ${set.map((k) => JSON.stringify(values[k] ?? '')).join('+')} is already used by ${m[1]}${n}.`,
          });
          break;
        }
      }
    }
    return errs;
  }
}

function normalize(p: ParamSchema, v: string): string {
  if (p.type === 'boolean') return v === '1' || v.toLowerCase() === 'true' ? 'true' : 'false';
  return v;
}
