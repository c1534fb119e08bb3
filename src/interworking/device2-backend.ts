/**
 * A Device:2 (TR-181) CWMP device as the USP data-model backend of its agent: paths pass through,
 * each USP request becomes the CWMP RPCs that do the same job (TR-369 / TR-069 interworking).
 *
 * Nothing is read in bulk: a request learns the names it needs (the object level of a parameter,
 * the subtree of a partial path or a table) with GetParameterNames and reads values with
 * GetParameterValues of explicit names (device-access.ts). A Get of one parameter on a device
 * model the proxy knows is one GetParameterValues of that name.
 */
import type { ParameterValueStruct } from '../cwmp/types.js';
import type {
  AddOutcome,
  AtomicSetOutcome,
  DmBackend,
  GetOptions,
  LazyModel,
  ObjectSchema,
  OperateOutcome,
  ParamError,
  ParamSchema,
  ParamSetting,
  RequestContext,
} from '../usp/dm/types.js';
import { withinDepth } from '../usp/dm/depth.js';
import type { CallScope } from '../usp/request-scope.js';
import type { RootModel } from '../store/types.js';
import { type BackendBaseDeps, CwmpBackendBase } from './backend-base.js';
import type { DeviceAccess } from './device-access.js';
import { describeFault, toUspError } from './faults.js';
import { leafOf, parentOf } from './knowledge/device-tree.js';
import { schemaPathOf } from './knowledge/model-profile.js';
import { type PlannedSetting, runAtomicSet, type SetRejection } from './set-plan.js';
import { standardObject, standardParameter } from './type-table.js';
import { isSecret, paramTypeOf, securedValue, toUspValue } from './values.js';

/** Paths under the CWMP-only ManagementServer stay visible but read-only: the ACS owns them. */
const READ_ONLY_OBJECT = 'ManagementServer.';

export interface DeviceBackendDeps extends BackendBaseDeps {
  /**
   * The device root served as it is (default Device:2). The extension object
   * (extension-backend.ts) passes a TR-098 tree through with InternetGatewayDevice.
   */
  root?: RootModel;
}

/** How long a column read for a search expression is shared between the rows of one request (ms). */
const COLUMN_TTL_MS = 1_000;

export class Device2Backend extends CwmpBackendBase implements DmBackend {
  readonly lazy: LazyModel;
  private readonly columns = new Map<string, Promise<Map<string, string>>>();
  /** "Device." or "InternetGatewayDevice.". */
  private readonly rootPath: string;
  private readonly readOnly: readonly string[];

  constructor(private readonly deps: DeviceBackendDeps) {
    super(deps.root ?? 'Device', deps);
    this.rootPath = `${deps.root ?? 'Device'}.`;
    this.readOnly = [this.rootPath + READ_ONLY_OBJECT];
    this.lazy = {
      exists: (agentEid, p, scope) => this.exists(agentEid, p, scope),
      object: (agentEid, p, scope) => this.object(agentEid, p, scope),
      objectsBelow: (agentEid, p, opts, scope) => this.objectsBelow(agentEid, p, opts?.types === true, scope),
    };
  }

  // ------------------------------------------------------------------ the model, lazily

  private async exists(agentEid: string, sp: string, scope: CallScope | undefined): Promise<boolean> {
    if (this.excluded(sp)) return false;
    const a = await this.open(agentEid, scope);
    if (!a) return false;
    if (sp === this.rootPath) return true;
    if (sp.endsWith('()') || sp.endsWith('!')) {
      const dot = sp.lastIndexOf('.');
      const obj = sp.slice(0, dot + 1);
      const name = sp.slice(dot + 1);
      const list = sp.endsWith('()') ? this.deps.commands.commands(a.device) : this.deps.commands.events(a.device);
      const hit = list.find((c) => c.object === obj && ('command' in c ? c.command.name : c.event.name) === name);
      if (!hit) return false;
      return 'requires' in hit && hit.requires ? this.allExist(agentEid, hit.requires, scope) : true;
    }
    if (sp.endsWith('.'))
      return (await this.object(agentEid, sp, scope)) !== null || (!sp.endsWith('{i}.') && (await this.object(agentEid, `${sp}{i}.`, scope)) !== null);
    if (a.model.hasParam(sp)) return true;
    await this.learnFor(a, sp);
    if (a.model.hasParam(sp)) return true;
    // A standard table without rows on this device: its rows' parameters are in the supported model.
    return standardParameter(sp) !== undefined && this.inEmptyStandardTable(a, sp);
  }

  /** A supported object the device is known to have (no learning: for objects being described). */
  private present(a: DeviceAccess, sp: string): boolean {
    if (sp.endsWith('{i}.')) return this.isTableSchema(a, sp);
    return a.model.hasObject(sp) || a.tree.hasObject(sp);
  }

  private async allExist(agentEid: string, paths: readonly string[], scope: CallScope | undefined): Promise<boolean> {
    for (const p of paths) if (!(await this.exists(agentEid, p, scope))) return false;
    return true;
  }

  /**
   * Learns what decides whether a supported path exists on this device: for a path inside a table
   * the table's subtree (its rows' names), otherwise the level of the object that holds it.
   */
  private async learnFor(a: DeviceAccess, sp: string): Promise<void> {
    const i = sp.indexOf('{i}');
    if (i >= 0) {
      await a.learnSubtree(sp.slice(0, i));
      return;
    }
    const parent = parentOf(sp);
    if (parent !== '' && (await this.concreteExists(a, parent))) await a.learnLevel(parent);
  }

  private concreteExists(a: DeviceAccess, objectPath: string): Promise<boolean> {
    return a.objectExists(objectPath);
  }

  private inEmptyStandardTable(a: DeviceAccess, sp: string): boolean {
    const i = sp.lastIndexOf('{i}.');
    if (i < 0) return false;
    const table = sp.slice(0, i);
    const concrete = table.includes('{i}') ? null : table;
    return concrete !== null && a.tree.hasObject(concrete) && (a.tree.instances(concrete)?.length ?? 0) === 0;
  }

  /** Whether a supported table path ("X.{i}.") is a table on this device. */
  private isTableSchema(a: DeviceAccess, rowSchema: string): boolean {
    const table = rowSchema.slice(0, -'{i}.'.length);
    // A row is not a table container ("X.{i}." + "{i}." is nothing).
    if (!rowSchema.endsWith('{i}.') || table.endsWith('{i}.')) return false;
    if (a.model.hasObject(rowSchema)) return true;
    if (standardObject(table)?.table) return true;
    // A vendor table with no rows: its <Name>NumberOfEntries sibling says it is one.
    const parent = parentOf(table);
    const name = leafOf(table);
    return !table.includes('{i}') && a.tree.hasParam(`${parent}${name}NumberOfEntries`);
  }

  private async object(agentEid: string, sp: string, scope: CallScope | undefined): Promise<ObjectSchema | null> {
    if (this.excluded(sp)) return null;
    const a = await this.open(agentEid, scope);
    if (!a) return null;
    const i = sp.indexOf('{i}');
    if (i >= 0 && !a.model.knowsParamsOf(sp)) await a.learnSubtree(sp.slice(0, i));
    else if (sp !== this.rootPath && !a.model.hasObject(sp)) {
      if (i >= 0) await a.learnSubtree(sp.slice(0, i));
      else if (!(await this.concreteExists(a, sp))) return null;
      else await a.learnLevel(sp);
    }
    const row = sp.endsWith('{i}.');
    if (row ? !this.isTableSchema(a, sp) : sp !== this.rootPath && !a.model.hasObject(sp) && !a.tree.hasObject(sp)) return null;
    // A table's container ("Device.WiFi.SSID.") is not an object of its own: its rows are.
    if (!row && sp !== this.rootPath && this.isTableSchema(a, `${sp}{i}.`)) return null;
    return this.schemaOf(a, sp, false);
  }

  private async objectsBelow(agentEid: string, sp: string, types: boolean, scope: CallScope | undefined): Promise<ObjectSchema[]> {
    if (this.excluded(sp)) return [];
    const a = await this.open(agentEid, scope);
    if (!a) return [];
    const i = sp.indexOf('{i}');
    const concrete = i >= 0 ? sp.slice(0, i) : sp;
    if (!(await a.learnSubtree(concrete))) return [];
    const paths = new Set<string>();
    for (const o of a.model.objectsUnder(sp)) if (!this.excluded(o)) paths.add(o);
    for (const o of a.tree.objectsUnder(concrete)) {
      const s = schemaPathOf(o);
      if (s.startsWith(sp) && !this.excluded(s)) paths.add(s);
    }
    // Tables: the container ("X.") and its rows ("X.{i}.") are one supported object, the rows'.
    const out: ObjectSchema[] = [];
    for (const p of [...paths].sort()) {
      if (!p.endsWith('{i}.') && this.isTableSchema(a, `${p}{i}.`)) {
        if (!paths.has(`${p}{i}.`)) out.push(await this.schemaOf(a, `${p}{i}.`, types));
        continue;
      }
      out.push(await this.schemaOf(a, p, types));
    }
    if (sp === this.rootPath && !paths.has(this.rootPath)) out.unshift(await this.schemaOf(a, this.rootPath, types));
    return out;
  }

  /** The supported object from the model's schema, the standard's definitions and the commands. */
  private async schemaOf(a: DeviceAccess, sp: string, types: boolean): Promise<ObjectSchema> {
    const multi = sp.endsWith('{i}.');
    const names = a.model
      .paramsUnder(sp)
      .filter((p) => !p.slice(sp.length).includes('.'))
      .filter((p) => !this.excluded(p));
    if (types) await this.learnTypes(a, names);
    const params: ParamSchema[] = names.map((p) => {
      const std = standardParameter(p);
      const writable = (a.model.writableOf(p) ?? std?.writable ?? false) && !this.readOnly.some((r) => p.startsWith(r));
      return { name: p.slice(sp.length), type: paramTypeOf(a.model.typeOf(p) ?? std?.type), access: writable ? 'readWrite' : 'readOnly' };
    });
    const table = multi ? sp.slice(0, -'{i}.'.length) : '';
    const std = multi ? standardObject(table) : undefined;
    const addable = multi && (a.model.tableWritable(table) ?? std?.writable ?? false);
    const have = new Set(params.map((p) => p.name));
    const uniqueKeys = (std?.uniqueKeys ?? []).filter((k) => k.length > 0 && k.every((n) => have.has(n)));
    if (multi && have.has('Alias') && !uniqueKeys.some((k) => k.length === 1 && k[0] === 'Alias')) uniqueKeys.unshift(['Alias']);
    const commands = [];
    for (const c of this.deps.commands.commands(a.device)) {
      if (c.object !== sp) continue;
      if (c.requires && !c.requires.every((r) => this.present(a, r))) continue;
      commands.push(c.command);
    }
    const events = this.deps.commands
      .events(a.device)
      .filter((e) => e.object === sp)
      .map((e) => e.event);
    return { path: sp, multiInstance: multi, access: addable ? 'addDelete' : 'readOnly', params, commands, events, uniqueKeys };
  }

  /**
   * GetSupportedDM must give a type for every parameter (TP-469 1.76): vendor parameters the
   * standard does not define and the device never reported are read once (explicit names, in
   * batches), and their types stay learned for the model.
   */
  private async learnTypes(a: DeviceAccess, schemaParams: readonly string[]): Promise<void> {
    const unknown = new Set(schemaParams.filter((p) => !a.model.typeOf(p) && !standardParameter(p)));
    if (unknown.size === 0) return;
    const concrete: string[] = [];
    const covered = new Set<string>();
    for (const p of [...unknown].map((s) => s.slice(0, s.indexOf('{i}') >= 0 ? s.indexOf('{i}') : s.lastIndexOf('.') + 1))) {
      if (covered.has(p)) continue;
      covered.add(p);
      for (const n of a.tree.paramsUnder(p)) if (unknown.has(schemaPathOf(n)) && !concrete.includes(n)) concrete.push(n);
    }
    // One instance of each schema parameter is enough to learn its type.
    const one = new Map<string, string>();
    for (const n of concrete) if (!one.has(schemaPathOf(n))) one.set(schemaPathOf(n), n);
    await a.gpv([...one.values()]);
  }

  // ------------------------------------------------------------------ the DmBackend contract

  async supported(agentEid: string, scope?: CallScope): Promise<readonly ObjectSchema[]> {
    return this.objectsBelow(agentEid, this.rootPath, true, scope);
  }

  async instances(agentEid: string, tablePath: string, scope?: CallScope): Promise<number[] | null> {
    if (this.excluded(tablePath)) return null;
    const a = await this.open(agentEid, scope);
    if (!a) return null;
    if (!(await this.concreteExists(a, tablePath))) return null;
    if (!(await a.learnLevel(tablePath))) return null;
    const node = a.tree.node(tablePath);
    const numbers = a.tree.instances(tablePath) ?? [];
    if (numbers.length === 0) {
      // No rows: a table only if the model, the standard or a NumberOfEntries sibling says so.
      if (node && node.objects.length > 0) return null;
      return this.isTableSchema(a, `${schemaPathOf(tablePath)}{i}.`) ? [] : null;
    }
    return numbers;
  }

  async get(agentEid: string, paths: readonly string[], opts?: GetOptions, scope?: CallScope): Promise<Map<string, string>> {
    const result = new Map<string, string>();
    const a = await this.open(agentEid, scope);
    if (!a) return result;
    const names: string[] = [];
    const values: ParameterValueStruct[] = [];
    for (const p of paths) {
      if (this.excluded(p)) continue;
      if (p.endsWith('.')) {
        if (!(await a.learnSubtree(p))) continue;
        const under = a.tree.paramsUnder(p).filter((n) => !this.excluded(n) && withinDepth(p, n, opts?.maxDepth));
        // A whole object (no depth limit, nothing excluded below it) may go as one partial path
        // to a model that has shown it answers them (AccessOptions.partialPaths).
        if (!opts?.maxDepth && !this.deps.excludedPrefixes.some((x) => x.startsWith(p))) values.push(...(await a.gpvObject(p, under)));
        else names.push(...under);
      } else if (await a.knownParam(p)) names.push(p);
    }
    values.push(...(await a.gpv(names)));
    for (const v of values) {
      if (this.excluded(v.name)) continue;
      result.set(v.name, isSecret(v.name) ? securedValue(v.type) : toUspValue(v.type, v.value));
    }
    return result;
  }

  /**
   * A value for a search expression ([Enable==true]): the resolver asks per row, so the whole
   * column is read once with one GetParameterValues (explicit names) and kept for the request.
   */
  async searchValue(agentEid: string, paramPath: string, scope?: CallScope): Promise<string | undefined> {
    const m = /^(.*\.)(\d+)\.(.*)$/.exec(paramPath);
    if (!m || this.excluded(paramPath)) return (await this.get(agentEid, [paramPath], undefined, scope)).get(paramPath);
    const table = m[1]!;
    const rel = m[3]!;
    const key = `${agentEid}|${table}|${rel}`;
    let column = this.columns.get(key);
    if (!column) {
      column = this.readColumn(agentEid, table, rel, scope);
      this.columns.set(key, column);
      // Kept for the few milliseconds one request's resolver needs, not as a value cache.
      void column.finally(() => setTimeout(() => this.columns.get(key) === column && this.columns.delete(key), COLUMN_TTL_MS).unref());
    }
    return (await column).get(paramPath);
  }

  private async readColumn(agentEid: string, table: string, rel: string, scope: CallScope | undefined): Promise<Map<string, string>> {
    const rows = (await this.instances(agentEid, table, scope)) ?? [];
    return this.get(
      agentEid,
      rows.map((n) => `${table}${n}.${rel}`),
      undefined,
      scope,
    );
  }

  /** A write makes every column read for a search of this agent stale. */
  private forgetColumns(agentEid: string): void {
    for (const k of [...this.columns.keys()]) if (k.startsWith(`${agentEid}|`)) this.columns.delete(k);
  }

  /** Several objects in ONE SetParameterValues (TR-069 A.3.2.1: all or nothing). */
  async setAtomic(ctx: RequestContext, objects: readonly { objectPath: string; settings: readonly ParamSetting[] }[]): Promise<AtomicSetOutcome> {
    this.forgetColumns(ctx.agentEid);
    try {
      const a = await this.open(ctx.agentEid, ctx.scope);
      if (!a) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}`, failures: [] };
      const planned: PlannedSetting[] = [];
      const rejected: SetRejection[] = [];
      for (const { objectPath, settings } of objects) {
        for (const s of settings) {
          const name = objectPath + s.param;
          const reject = (errCode: number, errMsg: string): void => void rejected.push({ objectPath, setting: s, error: { param: s.param, errCode, errMsg } });
          if (this.excluded(name) || !(await a.knownParam(name))) reject(7010, `unsupported parameter ${name}`);
          else if (a.writable(name) === false || this.readOnly.some((r) => name.startsWith(r))) reject(7013, `parameter ${name} is read-only`);
          else planned.push({ objectPath, setting: s, natives: [{ name, value: s.value }] });
        }
      }
      return await runAtomicSet(objects, planned, rejected, (list) => a.setParameterValues(list));
    } catch (e) {
      const c = toUspError(e);
      return { ok: false, errCode: c.code, errMsg: c.message, failures: [] };
    }
  }

  async add(ctx: RequestContext, tablePath: string, settings: readonly ParamSetting[]): Promise<AddOutcome> {
    this.forgetColumns(ctx.agentEid);
    try {
      const a = await this.open(ctx.agentEid, ctx.scope);
      if (!a) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}`, paramErrs: [] };
      const schema = await this.object(ctx.agentEid, `${schemaPathOf(tablePath)}{i}.`, ctx.scope);
      if (!schema?.multiInstance) return { ok: false, errCode: 7018, errMsg: `${tablePath} is not a multi-instance object`, paramErrs: [] };
      if (schema.access !== 'addDelete' && schema.access !== 'addOnly')
        return { ok: false, errCode: 7019, errMsg: `${tablePath} does not allow Add on this device`, paramErrs: [] };
      // Unique keys (TR-181 Alias etc.): the CPE does not police them; refuse a duplicate first (7012 on the key).
      const given = new Map(settings.map((s) => [s.param, s.value]));
      const fullSets = schema.uniqueKeys.filter((ks) => ks.length > 0 && ks.every((k) => given.has(k)));
      if (fullSets.length) {
        const rows = (await this.instances(ctx.agentEid, tablePath, ctx.scope)) ?? [];
        const vals = rows.length
          ? await this.get(
              ctx.agentEid,
              rows.flatMap((n) => fullSets.flat().map((k) => `${tablePath}${n}.${k}`)),
              undefined,
              ctx.scope,
            )
          : new Map<string, string>();
        for (const ks of fullSets) {
          const clash = rows.find((n) => ks.every((k) => vals.get(`${tablePath}${n}.${k}`) === given.get(k)));
          if (clash === undefined) continue;
          const e = {
            param: ks[ks.length - 1]!,
            errCode: 7012,
            errMsg: `unique key ${ks.join('+')} = ${ks.map((k) => JSON.stringify(given.get(k))).join('+')} is already used by ${tablePath}${clash}.`,
          };
          return { ok: false, errCode: e.errCode, errMsg: e.errMsg, paramErrs: [e] };
        }
      }
      const out = await a.call({ method: 'AddObject', objectName: tablePath, parameterKey: '' });
      if (out.kind === 'fault') {
        return {
          ok: false,
          errCode: out.fault.faultCode === 9005 ? 7026 : 7017,
          errMsg: `AddObject ${tablePath} refused: ${describeFault(out.fault)}`,
          paramErrs: [],
        };
      }
      if (out.response.method !== 'AddObjectResponse') return { ok: false, errCode: 7017, errMsg: 'unexpected response to AddObject', paramErrs: [] };
      const instance = out.response.instanceNumber;
      const path = `${tablePath}${instance}.`;
      // Only the new instance's names are learned (TR-069 A.3.2.3 on the instance path), not the table again.
      await a.learnNewInstance(path);
      let paramErrs: ParamError[] = [];
      if (settings.length) {
        const r = await this.set(ctx, path, settings);
        if (!r.ok) {
          // A required parameter failed: the object must not stay (TR-369 R-ADD.2).
          await a.deleteObject(path).catch(() => a.forgetInstance(path));
          return { ok: false, errCode: r.errCode, errMsg: r.errMsg, paramErrs: r.paramErrs };
        }
        paramErrs = r.paramErrs;
      }
      const keySets = (await this.object(ctx.agentEid, `${schemaPathOf(tablePath)}{i}.`, ctx.scope))?.uniqueKeys ?? schema.uniqueKeys;
      const uniqueKeys: Record<string, string> = {};
      if (keySets.length) {
        const values = await this.get(
          ctx.agentEid,
          [...new Set(keySets.flat())].map((k) => path + k),
          undefined,
          ctx.scope,
        );
        for (const k of keySets.flat()) {
          const v = values.get(path + k);
          if (v !== undefined) uniqueKeys[k] = v;
        }
      }
      this.emit('objectChange', { kind: 'add', agentEid: ctx.agentEid, path, uniqueKeys });
      return { ok: true, instance, uniqueKeys, paramErrs };
    } catch (e) {
      const c = toUspError(e);
      return { ok: false, errCode: c.code, errMsg: c.message, paramErrs: [] };
    }
  }

  protected async nativeInstance(a: DeviceAccess, uspInstancePath: string): Promise<string | null> {
    this.forgetColumns(a.device.endpointId);
    return uspInstancePath;
  }

  async operate(ctx: RequestContext, commandPath: string, input: Record<string, string>, commandKey: string): Promise<OperateOutcome> {
    const d = await this.device(ctx.agentEid);
    if (!d) return { kind: 'error', errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}` };
    return this.deps.commands.operate(ctx, d, commandPath, input, commandKey);
  }
}
