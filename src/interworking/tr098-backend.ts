/**
 * A TR-098 (InternetGatewayDevice.) device presented as Device:2 through the declarative mapping
 * (src/mapping/, assets/mappings/tr098-to-tr181.json). Same contract as the Device:2 backend:
 * Device:2 paths in, CWMP RPCs on native paths out, with the same RPC discipline
 * (device-access.ts): the mapping is built from the device's native names, learned once with
 * GetParameterNames and kept in the store; values are read with GetParameterValues of explicit
 * native names only, and only names the device listed. An Add or a Delete updates the names with a
 * GetParameterNames of the new instance only; instance numbers of mapped tables persist per device
 * and are never reused.
 */
import { LRUCache } from 'lru-cache';
import type { ParameterValueStruct } from '../cwmp/types.js';
import { DeviceMapping, type InstanceMapStore, MappingError, type NativeParamInfo } from '../mapping/engine.js';
import type { MappingRules } from '../mapping/load.js';
import type { DeviceRecord } from '../store/types.js';
import type {
  AddOutcome,
  AtomicSetOutcome,
  DmBackend,
  GetOptions,
  LazyModel,
  ObjectSchema,
  OperateOutcome,
  ParamError,
  ParamSetting,
  ParamType,
  RequestContext,
} from '../usp/dm/types.js';
import { withinDepth } from '../usp/dm/depth.js';
import { CwmpCommandRunner } from './commands.js';
import type { CallScope } from '../usp/request-scope.js';
import { DeviceAccess } from './device-access.js';
import { type BackendBaseDeps, CwmpBackendBase } from './backend-base.js';
import { describeFault, toUspError, uspErrorOfRpc } from './faults.js';
import { type PlannedSetting, runAtomicSet, type SetRejection } from './set-plan.js';
import { standardParameter } from './type-table.js';
import { isSecret } from './values.js';

/** Persistent instance numbers: loaded before a mapping is built, written through. */
export interface InstanceMapPersistence {
  load(deviceKey: string): Promise<Record<string, number> | null>;
  save(deviceKey: string, map: Record<string, number>): Promise<void>;
}

export interface Tr098BackendDeps extends BackendBaseDeps {
  rules: MappingRules;
  instanceMaps: InstanceMapPersistence;
}

/** The TR-181 home of Download(); presented with one row (the running image) for TR-098 devices. */
const FIRMWARE_IMAGE = 'Device.DeviceInfo.FirmwareImage.';

const TYPES: ReadonlySet<string> = new Set(['string', 'base64', 'hexBinary', 'dateTime', 'decimal', 'int', 'long', 'unsignedInt', 'unsignedLong', 'boolean']);

/** Commands that need no model: the CWMP RPCs Reboot and FactoryReset work on any root. */
const MODEL_FREE = new Set(['Device.Reboot()', 'Device.FactoryReset()', 'Device.Boot!']);

export class Tr098Backend extends CwmpBackendBase implements DmBackend {
  readonly lazy: LazyModel;
  /** A device's mapping, rebuilt when its learned names change (tree version). */
  private readonly mappings = new LRUCache<string, { version: number; mapping: DeviceMapping; writable: Set<string> }>({ max: 2_000 });
  private readonly building = new Map<string, Promise<{ mapping: DeviceMapping; writable: Set<string> }>>();
  private readonly memory = new LRUCache<string, Record<string, number>>({ max: 10_000 });
  /** Per device: values of the names that group radios by band and split lists into rows (DeviceMapping.groupingNames). */
  private readonly groupingValues = new LRUCache<string, { at: number; values: Map<string, string> }>({ max: 10_000 });
  /**
   * Per device model: the mapping of the model's single-instance part (names without instance
   * numbers are the same on every device of the model), so that a Get of such a parameter on a
   * known model is one GetParameterValues, without learning the device's whole tree.
   */
  private readonly modelMappings = new LRUCache<string, { version: number; mapping: DeviceMapping }>({ max: 256 });

  constructor(private readonly deps: Tr098BackendDeps) {
    super('InternetGatewayDevice', deps);
    this.lazy = {
      exists: async (agentEid, p, scope) => {
        if (MODEL_FREE.has(p)) return (await this.device(agentEid)) !== null;
        if (!p.includes('{i}') && !p.endsWith('.')) {
          const a = await this.open(agentEid, scope);
          if (a && this.modelMapping(a).has(p)) return true;
        }
        const model = await this.supported(agentEid, scope);
        return hasPath(model, p);
      },
      object: async (agentEid, p, scope) => (await this.supported(agentEid, scope)).find((o) => o.path === p) ?? null,
      objectsBelow: async (agentEid, p, _opts, scope) => (await this.supported(agentEid, scope)).filter((o) => o.path.startsWith(p)),
    };
  }

  private instanceStore(): InstanceMapStore {
    return {
      get: (k) => this.memory.get(k) ?? null,
      put: (k, map) => {
        this.memory.set(k, map);
        void this.deps.instanceMaps.save(k, map).catch(() => undefined);
      },
    };
  }

  /** The device's mapping: from its native names (learned once, kept), rebuilt when they change. */
  private async mapping(a: DeviceAccess): Promise<{ mapping: DeviceMapping; writable: Set<string> }> {
    const root = this.deps.rules.nativeRoot;
    await a.learnSubtree(root);
    const key = a.device.deviceKey;
    const hit = this.mappings.get(key);
    if (hit && hit.version === a.tree.version) return hit;
    let p = this.building.get(key);
    if (!p) {
      p = this.build(a).finally(() => this.building.delete(key));
      this.building.set(key, p);
    }
    return p;
  }

  private async build(a: DeviceAccess): Promise<{ mapping: DeviceMapping; writable: Set<string> }> {
    const key = a.device.deviceKey;
    const version = a.tree.version;
    if (!this.memory.has(key)) {
      const stored = await this.deps.instanceMaps.load(key);
      if (stored) this.memory.set(key, stored);
    }
    const root = this.deps.rules.nativeRoot;
    const params: NativeParamInfo[] = [];
    const writable = new Set<string>();
    for (const o of a.tree.objectsUnder(root)) {
      const w = a.model.tableWritable(o) === true;
      params.push({ name: o, writable: w });
      if (w && !/\.\d+\.$/.test(o)) writable.add(o);
    }
    for (const n of a.tree.paramsUnder(root)) {
      params.push({ name: n, writable: a.writable(n) ?? false, type: a.model.typeOf(n) ?? standardParameter(n)?.type });
    }
    // Radios are grouped by band (TR-181 WiFi.Radio is a physical radio): the few values that tell
    // a WLANConfiguration's band, read once per build with explicit names.
    // Kept per device: a rebuild after an unrelated Add/Delete (or in a VALUE CHANGE session) reads only new names.
    const grouping = this.listed(a, DeviceMapping.groupingNames(this.deps.rules, a.tree.paramsUnder(root)));
    // They are read again once older than interworking.namesTtlMs (a DNS server list changes).
    const now = this.deps.access.now();
    const held = this.groupingValues.get(key);
    const fresh = held !== undefined && now - held.at < this.deps.access.opts.namesTtlMs;
    const known = fresh ? held.values : new Map<string, string>();
    const missing = grouping.filter((n) => !known.has(n));
    if (missing.length) for (const v of await a.gpv(missing)) known.set(v.name, v.value);
    if (!fresh) this.groupingValues.set(key, { at: now, values: known });
    const values = new Map(grouping.filter((n) => known.has(n)).map((n) => [n, known.get(n)!]));
    const mapping = new DeviceMapping(this.deps.rules, { deviceKey: key, params, store: this.instanceStore(), values });
    const built = { version, mapping, writable };
    this.mappings.set(key, built);
    return built;
  }

  private modelMapping(a: DeviceAccess): DeviceMapping {
    const hit = this.modelMappings.get(a.model.key);
    if (hit && hit.version === a.model.version) return hit.mapping;
    const root = this.deps.rules.nativeRoot;
    const params: NativeParamInfo[] = [];
    for (const s of a.model.paramsUnder(root)) {
      if (s.includes('{i}')) continue;
      params.push({ name: s, writable: a.model.writableOf(s) ?? false, type: a.model.typeOf(s) ?? standardParameter(s)?.type });
    }
    const mapping = new DeviceMapping(this.deps.rules, { deviceKey: `model|${a.model.key}`, params });
    this.modelMappings.set(a.model.key, { version: a.model.version, mapping });
    return mapping;
  }

  /**
   * Parameters of the model's single-instance part, read without the device's whole tree: their
   * native names are the model's own. null when a path needs more (objects, tables, computed values).
   */
  private async getFromModel(a: DeviceAccess, paths: readonly string[]): Promise<Map<string, string> | null> {
    if (paths.length === 0 || paths.some((p) => p.endsWith('.') || this.excluded(p) || p.startsWith(FIRMWARE_IMAGE))) return null;
    const m = this.modelMapping(a);
    const natives = new Set<string>();
    for (const p of paths) {
      const n = m.toNative(p);
      if (!n || n.length === 0 || n.some((x) => /\.\d+\./.test(x) || !a.model.hasParam(x))) return null;
      for (const x of n) natives.add(x);
    }
    const values = new Map<string, string>();
    for (const v of await a.gpv([...natives])) values.set(v.name, v.value);
    const out = new Map<string, string>();
    for (const p of paths) {
      const v = m.nativeToUspValue(p, values);
      if (v === null) continue;
      out.set(p, isSecret(p) || (m.toNative(p) ?? []).some(isSecret) ? '' : v);
    }
    return out;
  }

  /** Native names the device listed, among those a mapping asks for (no phantom names). */
  private listed(a: DeviceAccess, natives: Iterable<string>): string[] {
    return [...natives].filter((n) => a.tree.hasParam(n));
  }

  async supported(agentEid: string, scope?: CallScope): Promise<readonly ObjectSchema[]> {
    const a = await this.open(agentEid, scope);
    if (!a) return [];
    const { mapping: m } = await this.mapping(a);
    const commands = this.deps.commands.commands(a.device);
    const events = this.deps.commands.events(a.device);
    const objects: ObjectSchema[] = m
      .supportedModel()
      .filter((o) => !this.excluded(o.path))
      .map((o) => ({
        path: o.path,
        multiInstance: o.multiInstance,
        access: o.multiInstance && (o.writable || this.candidateTables(a, m, o.path.slice(0, -'{i}.'.length), null).length > 0) ? 'addDelete' : 'readOnly',
        params: o.params.map((p) => ({
          name: p.name,
          type: (TYPES.has(p.type) ? p.type : 'string') as ParamType,
          access: p.writable && !p.computed ? 'readWrite' : 'readOnly',
        })),
        commands: [],
        events: events.filter((e) => e.object === o.path).map((e) => e.event),
        uniqueKeys: o.multiInstance && o.params.some((p) => p.name === 'Alias') ? [['Alias']] : [],
      }));
    if (!objects.some((o) => o.path === 'Device.')) {
      objects.push({ path: 'Device.', multiInstance: false, access: 'readOnly', params: [], commands: [], events: [], uniqueKeys: [] });
    }
    const root = objects.find((o) => o.path === 'Device.')!;
    // Reboot and FactoryReset are root-agnostic CWMP RPCs; diagnostics run on the mapped native
    // objects; firmware images have no TR-098 counterpart to map.
    const rootCommands = commands.filter((c) => c.object === 'Device.').map((c) => c.command);
    Object.assign(root, { commands: rootCommands, events: events.filter((e) => e.object === 'Device.').map((e) => e.event) });
    // TR-098 has no FirmwareImage table; the running image is presented as FirmwareImage.1 so that
    // Download() (a root-agnostic CWMP Download, FileType 1) has its TR-181 home.
    const download = commands.find((c) => c.command.name === 'Download()');
    if (download && !objects.some((o) => o.path === FIRMWARE_IMAGE + '{i}.')) {
      objects.push({
        path: FIRMWARE_IMAGE + '{i}.',
        multiInstance: true,
        access: 'readOnly',
        params: [
          { name: 'Alias', type: 'string', access: 'readOnly' },
          { name: 'Name', type: 'string', access: 'readOnly' },
          { name: 'Version', type: 'string', access: 'readOnly' },
          { name: 'Available', type: 'boolean', access: 'readOnly' },
          { name: 'Status', type: 'string', access: 'readOnly' },
        ],
        commands: [download.command],
        events: [],
        uniqueKeys: [['Alias']],
      });
    }
    const diag = objects.find((o) => o.path === 'Device.IP.Diagnostics.');
    const diagCommands = commands
      .filter((c) => c.object === 'Device.IP.Diagnostics.' && m.has(`Device.IP.Diagnostics.${c.command.name.replace('()', '')}.`))
      .map((c) => c.command);
    if (diagCommands.length) {
      if (diag) Object.assign(diag, { commands: diagCommands });
      else
        objects.push({
          path: 'Device.IP.Diagnostics.',
          multiInstance: false,
          access: 'readOnly',
          params: [],
          commands: diagCommands,
          events: [],
          uniqueKeys: [],
        });
    }
    return objects;
  }

  async instances(agentEid: string, tablePath: string, scope?: CallScope): Promise<number[] | null> {
    if (this.excluded(tablePath)) return null;
    const a = await this.open(agentEid, scope);
    if (!a) return null;
    if (tablePath === FIRMWARE_IMAGE) return [1];
    return (await this.mapping(a)).mapping.uspInstances(tablePath);
  }

  async get(agentEid: string, paths: readonly string[], opts?: GetOptions, scope?: CallScope): Promise<Map<string, string>> {
    const result = new Map<string, string>();
    const a = await this.open(agentEid, scope);
    if (!a) return result;
    const quick = a.tree.knowsSubtree(this.deps.rules.nativeRoot, 0) ? null : await this.getFromModel(a, paths);
    if (quick) return quick;
    const { mapping: m } = await this.mapping(a);
    const usp = new Set<string>();
    for (const p of paths) {
      if (this.excluded(p)) continue;
      if (p.endsWith('.')) {
        for (const q of m.paramsUnder(p)) if (!this.excluded(q) && withinDepth(p, q, opts?.maxDepth)) usp.add(q);
      } else usp.add(p);
    }
    const natives = new Set<string>();
    for (const p of usp) for (const n of m.toNative(p) ?? []) natives.add(n);
    const values = new Map<string, string>();
    for (const v of await a.gpv(this.listed(a, natives))) values.set(v.name, v.value);
    for (const p of usp) {
      const v = m.nativeToUspValue(p, values);
      if (v === null) continue;
      const secret = isSecret(p) || (m.toNative(p) ?? []).some(isSecret);
      result.set(p, secret ? '' : v);
    }
    if (paths.some((p) => FIRMWARE_IMAGE.startsWith(p) || p.startsWith(FIRMWARE_IMAGE))) {
      const swName = `${this.deps.rules.nativeRoot}DeviceInfo.SoftwareVersion`;
      const sw = a.device.softwareVersion ?? (await a.gpv([swName]))[0]?.value ?? '';
      const image: Record<string, string> = { Alias: 'cpe-1', Name: sw, Version: sw, Available: 'true', Status: 'Active' };
      for (const [k, v] of Object.entries(image)) {
        const full = `${FIRMWARE_IMAGE}1.${k}`;
        if (paths.some((p) => (p.endsWith('.') ? full.startsWith(p) : full === p))) result.set(full, v);
      }
    }
    return result;
  }

  /** All mapped settings in one SetParameterValues (TR-069 A.3.2.1: all or nothing). */
  async setAtomic(ctx: RequestContext, objects: readonly { objectPath: string; settings: readonly ParamSetting[] }[]): Promise<AtomicSetOutcome> {
    try {
      const a = await this.open(ctx.agentEid, ctx.scope);
      if (!a) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}`, failures: [] };
      const { mapping: m } = await this.mapping(a);
      const planned: PlannedSetting[] = [];
      const rejected: SetRejection[] = [];
      const types = new Map<string, string>();
      for (const { objectPath, settings } of objects) {
        for (const s of settings) {
          try {
            const natives = m.uspToNativeValue(objectPath + s.param, s.value);
            const missing = natives.find((n) => !a.tree.hasParam(n.path));
            if (missing) throw new MappingError(7026, `${objectPath}${s.param}: the device has no ${missing.path}`);
            for (const n of natives) types.set(n.path, n.type);
            planned.push({ objectPath, setting: s, natives: natives.map((n) => ({ name: n.path, value: n.value })) });
          } catch (e) {
            if (!(e instanceof MappingError)) throw e;
            rejected.push({ objectPath, setting: s, error: { param: s.param, errCode: e.code === 7026 ? 7010 : e.code, errMsg: e.message } });
          }
        }
      }
      return await runAtomicSet(objects, planned, rejected, (list) => a.setParameterValues(list, types));
    } catch (e) {
      const c = toUspError(e);
      return { ok: false, errCode: c.code, errMsg: c.message, failures: [] };
    }
  }

  /**
   * Writable native tables an Add on a Device:2 table may create in. A flattened table
   * (NAT.PortMapping from every WAN*Connection.{c}.PortMapping.) takes the connection named by
   * the Add's Interface setting; otherwise the table of its existing rows, else the only one.
   */
  private candidateTables(a: DeviceAccess, m: DeviceMapping, tablePath: string, iface: string | null): string[] {
    if (/\{i\}/.test(tablePath)) return [];
    const writable = this.mappings.get(a.device.deviceKey)?.writable ?? new Set<string>();
    const rule = this.deps.rules.objects.find((r) => r.usp === tablePath.replace(/\.\d+\./g, '.{i}.') + '{i}.');
    const sources = rule?.native === undefined ? [] : Array.isArray(rule.native) ? rule.native : [rule.native];
    // Rows grouped from several native objects (radios by band) are not added or deleted as one;
    // native rows presented by several tables (a WAN connection is an IP.Interface, its Ethernet.Link,
    // its NAT.InterfaceSetting) are added through the first rule that presents them only.
    // Rows a value decides (rowsWhen, listRows: a DHCPv4.Client is a WAN connection addressed by DHCP) neither.
    if (rule?.groupByBand || rule?.readOnly || rule?.rowsWhen || rule?.listRows) return [];
    const own = rule?.native === undefined ? [] : Array.isArray(rule.native) ? rule.native : [rule.native];
    const first = this.deps.rules.objects.find(
      (r) => r.usp.endsWith('{i}.') && (Array.isArray(r.native) ? r.native : [r.native]).some((n) => n !== undefined && own.includes(n)),
    );
    if (rule && first !== rule) return [];
    // Rows that are their enclosing row's own native object (native "") cannot be added on their own.
    if (!sources.some((p) => /\{[a-z]\}\.$/.test(p))) return [];
    const patterns = sources.map((p) => p.replace(/\{[a-z]\}\.$/, ''));
    const matches = (t: string): boolean =>
      patterns.some((p) =>
        new RegExp(
          '^' +
            p
              .replace(/[.]/g, '\\.')
              .replace(/\\\.\{[a-z]\}/g, '\\.\\d+')
              .replace(/\{[a-z]\}/g, '\\d+') +
            '$',
        ).test(t),
      );
    const out: string[] = [];
    if (iface) {
      const conn = m.toNative(iface.replace(/\.?$/, '.'))?.[0];
      if (conn) {
        for (const p of patterns) {
          const last = p.slice(0, -1).split('.').pop()!;
          const t = `${conn}${last}.`;
          if (matches(t) && writable.has(t)) out.push(t);
        }
      }
      return out;
    }
    for (const n of m.uspInstances(tablePath) ?? []) {
      const native = m.toNative(`${tablePath}${n}.`)?.[0];
      const t = native?.replace(/\d+\.$/, '');
      if (t && writable.has(t) && !out.includes(t)) out.push(t);
    }
    for (const t of writable) if (matches(t) && !out.includes(t)) out.push(t);
    return out;
  }

  async add(ctx: RequestContext, tablePath: string, settings: readonly ParamSetting[]): Promise<AddOutcome> {
    try {
      const a = await this.open(ctx.agentEid, ctx.scope);
      if (!a) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}`, paramErrs: [] };
      const { mapping: m } = await this.mapping(a);
      const schema = (await this.supported(ctx.agentEid, ctx.scope)).find((o) => o.path === tablePath.replace(/\.\d+\./g, '.{i}.') + '{i}.');
      if (!schema?.multiInstance) return { ok: false, errCode: 7018, errMsg: `${tablePath} is not a mapped multi-instance object`, paramErrs: [] };
      const iface = settings.find((x) => x.param === 'Interface')?.value || null;
      const nativeTable = schema.access === 'addDelete' ? (this.candidateTables(a, m, tablePath, iface)[0] ?? null) : null;
      if (!nativeTable) {
        return {
          ok: false,
          errCode: 7019,
          errMsg: `${tablePath} does not allow Add on this TR-098 device${iface ? ` for Interface ${iface}` : ''} (no writable native table behind it)`,
          paramErrs: [],
        };
      }
      const out = await a.call({ method: 'AddObject', objectName: nativeTable, parameterKey: '' });
      if (out.kind === 'fault') return { ok: false, errCode: 7017, errMsg: `AddObject ${nativeTable} refused: ${describeFault(out.fault)}`, paramErrs: [] };
      if (out.response.method !== 'AddObjectResponse') return { ok: false, errCode: 7017, errMsg: 'unexpected response to AddObject', paramErrs: [] };
      const nativeInstance = `${nativeTable}${out.response.instanceNumber}.`;
      // Only the new instance's names are learned, not the whole tree again.
      await a.learnNewInstance(nativeInstance);
      const { mapping: fresh } = await this.mapping(a);
      // A native row may appear in several Device:2 tables (WANPPPConnection: IP.Interface and PPP.Interface): the requested one.
      const uspPath = fresh.toUspAll(nativeInstance).find((p) => p.startsWith(tablePath) && /^\d+\.$/.test(p.slice(tablePath.length))) ?? null;
      const instance = uspPath ? Number(/(\d+)\.$/.exec(uspPath)?.[1]) : Number.NaN;
      if (!uspPath || !Number.isInteger(instance)) {
        await this.rollback(a, nativeInstance);
        return { ok: false, errCode: 7017, errMsg: `the new ${nativeInstance} does not map to ${tablePath}`, paramErrs: [] };
      }
      let paramErrs: ParamError[] = [];
      // Interface chose the native table; the mapped row computes it, so it is not set again.
      const rest = settings.filter((x) => !(x.param === 'Interface' && fresh.isComputed(uspPath + 'Interface')));
      if (rest.length) {
        const r = await this.set(ctx, uspPath, rest);
        if (!r.ok) {
          await this.rollback(a, nativeInstance);
          return { ok: false, errCode: r.errCode, errMsg: r.errMsg, paramErrs: r.paramErrs };
        }
        paramErrs = r.paramErrs;
      }
      const uniqueKeys: Record<string, string> = {};
      if (schema.uniqueKeys.length) {
        const v = await this.get(
          ctx.agentEid,
          schema.uniqueKeys.flat().map((k) => uspPath + k),
          undefined,
          ctx.scope,
        );
        for (const k of schema.uniqueKeys.flat()) if (v.has(uspPath + k)) uniqueKeys[k] = v.get(uspPath + k)!;
      }
      this.emit('objectChange', { kind: 'add', agentEid: ctx.agentEid, path: uspPath, uniqueKeys });
      return { ok: true, instance, uniqueKeys, paramErrs };
    } catch (e) {
      const c = toUspError(e);
      return { ok: false, errCode: c.code, errMsg: c.message, paramErrs: [] };
    }
  }

  private async rollback(a: DeviceAccess, nativeInstance: string): Promise<void> {
    await a.deleteObject(nativeInstance).catch(() => a.forgetInstance(nativeInstance));
  }

  protected async nativeInstance(a: DeviceAccess, uspInstancePath: string): Promise<string | null> {
    return (await this.mapping(a)).mapping.toNative(uspInstancePath)?.[0] ?? null;
  }

  async operate(ctx: RequestContext, commandPath: string, input: Record<string, string>, commandKey: string): Promise<OperateOutcome> {
    const d = await this.device(ctx.agentEid);
    if (!d) return { kind: 'error', errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}` };
    const diag = /^Device\.IP\.Diagnostics\.(IPPing|TraceRoute)\(\)$/.exec(commandPath);
    const runner = this.deps.commands;
    if (diag && runner instanceof CwmpCommandRunner) {
      const a = await DeviceAccess.open(d, this.deps.access, ctx.scope);
      return this.diagnostics(a, diag[1]!, input, runner);
    }
    const ok = commandPath === 'Device.Reboot()' || commandPath === 'Device.FactoryReset()' || commandPath === `${FIRMWARE_IMAGE}1.Download()`;
    if (!ok) return { kind: 'error', errCode: 7026, errMsg: `${commandPath} is not mapped for TR-098 devices` };
    return runner.operate(ctx, d, commandPath, input, commandKey);
  }

  /** IPPing()/TraceRoute() on the mapped native diagnostics object (e.g. InternetGatewayDevice.IPPingDiagnostics.). */
  private async diagnostics(a: DeviceAccess, name: string, input: Record<string, string>, runner: CwmpCommandRunner): Promise<OperateOutcome> {
    const { mapping: m } = await this.mapping(a);
    const obj = `Device.IP.Diagnostics.${name}.`;
    const native = m.toNative(obj)?.[0];
    if (!native) return { kind: 'error', errCode: 7026, errMsg: `${obj} is not mapped on this device` };
    if (!input.Host) return { kind: 'error', errCode: 7027, errMsg: `${name}() needs the Host input argument` };
    const inputs = CwmpCommandRunner.DIAGNOSTICS_INPUTS[`${name}()`] ?? [];
    const parameterList: { name: string; value: string; type: string }[] = [];
    for (const arg of inputs) {
      if (input[arg] === undefined) continue;
      try {
        // Inputs go through the mapping: Interface (a Device:2 reference) becomes the native path.
        for (const n of m.uspToNativeValue(obj + arg, input[arg]!)) parameterList.push({ name: n.path, value: n.value, type: n.type });
      } catch (e) {
        if (e instanceof MappingError) return { kind: 'error', errCode: 7027, errMsg: `${name}() argument ${arg}: ${e.message}` };
        throw e;
      }
    }
    parameterList.push({ name: `${native}DiagnosticsState`, value: 'Requested', type: 'xsd:string' });
    const completion = runner
      .runDiagnostics(a.device, native, parameterList, a.scope, async (results) => {
        // The runner learned the object's names again (results come as new rows, e.g. RouteHops): a fresh mapping reads them.
        const { mapping: fresh } = await this.mapping(a);
        const usp = fresh.paramsUnder(obj);
        const values = new Map(results.map((v) => [v.name, v.value]));
        const output: Record<string, string> = {};
        for (const p of usp) {
          const rel = p.slice(obj.length);
          if (inputs.includes(rel) || rel.endsWith('NumberOfEntries')) continue;
          const v = fresh.nativeToUspValue(p, values);
          if (v === null) continue;
          if (rel === 'DiagnosticsState') output.Status = v;
          else output[rel] = v;
        }
        return output;
      })
      .catch((e: unknown) => ({ errCode: 7022, errMsg: uspErrorOfRpc(e).errMsg }));
    return { kind: 'async', completion };
  }

  /** Native parameters behind Device:2 parameters (or objects: every mapped parameter below). */
  async nativePaths(d: DeviceRecord, uspPaths: readonly string[], scope?: CallScope): Promise<string[]> {
    const a = await DeviceAccess.open(d, this.deps.access, scope);
    const { mapping: m } = await this.mapping(a);
    const out = new Set<string>();
    for (const p of uspPaths) {
      const list = p.endsWith('.') ? m.paramsUnder(p) : [p];
      for (const q of list) for (const n of m.toNative(q) ?? []) if (a.tree.hasParam(n)) out.add(n);
    }
    return [...out];
  }

  /** Native paths of a 4 VALUE CHANGE Inform, as Device:2 paths with mapped values. */
  async uspValueChanges(d: DeviceRecord, params: readonly ParameterValueStruct[]): Promise<{ path: string; value: string }[]> {
    const a = await DeviceAccess.open(d, this.deps.access);
    const { mapping: m } = await this.mapping(a);
    const values = new Map(params.map((p) => [p.name, p.value]));
    const out: { path: string; value: string }[] = [];
    for (const p of params) {
      for (const usp of m.toUspAll(p.name)) {
        const v = m.nativeToUspValue(usp, values);
        if (v !== null) out.push({ path: usp, value: isSecret(usp) || isSecret(p.name) ? '' : v });
      }
    }
    return out;
  }
}

/** A supported path in a full model (object, table row, parameter, command, event). */
function hasPath(model: readonly ObjectSchema[], p: string): boolean {
  if (p.endsWith('.')) return model.some((o) => o.path === p || o.path === `${p}{i}.`);
  const dot = p.lastIndexOf('.');
  const o = model.find((x) => x.path === p.slice(0, dot + 1));
  if (!o) return false;
  const leaf = p.slice(dot + 1);
  if (leaf.endsWith('()')) return o.commands.some((c) => c.name === leaf);
  if (leaf.endsWith('!')) return o.events.some((e) => e.name === leaf);
  return o.params.some((x) => x.name === leaf);
}
