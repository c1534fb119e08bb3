/**
 * A TR-098 (InternetGatewayDevice.) device presented as Device:2 through the declarative
 * mapping (src/mapping/, assets/mappings/tr098-to-tr181.json; DESIGN section 5). Same contract as
 * CwmpDeviceBackend: Device:2 paths in, CWMP RPCs on native paths out, through the RpcPort.
 * The mapping snapshot of a device is rebuilt from GetParameterNames after Add/Delete through
 * the proxy, on BOOT, and when it is older than the instance cache TTL; instance numbers of
 * mapped (and flattened) tables persist per device and are never reused.
 */
import { LRUCache } from 'lru-cache';
import type { AcsRequest, ParameterValueStruct } from '../cwmp/types.js';
import type { RpcOutcome } from '../cwmp/session.js';
import { RpcError } from '../cwmp/session.js';
import type { DeviceRecord } from '../store/types.js';
import { UspError } from '../usp/errors.js';
import type {
  AddOutcome,
  AtomicSetOutcome,
  DeleteOutcome,
  DmBackend,
  ObjectSchema,
  OperateOutcome,
  ParamError,
  ParamSetting,
  ParamType,
  RequestContext,
  SetOutcome,
} from '../usp/dm/types.js';
import { DeviceMapping, MappingError, type InstanceMapStore, type NativeParamInfo } from '../mapping/engine.js';
import type { MappingRules } from '../mapping/load.js';
import type { CommandRunner, DeviceLookup, RpcPort } from './backend.js';
import { CwmpCommandRunner } from './commands.js';
import { gpvIsolating, setOne, uspErrorOfRpc } from './backend.js';
import { describeFault, uspCodeOfCwmpFault } from './faults.js';

export interface MappedBackendOptions {
  excludedPrefixes: readonly string[];
  gpvBatchSize?: number;
  /** A device's mapping snapshot is rebuilt after this long (ms). */
  snapshotTtlMs?: number;
}

/** Persistent instance numbers: loaded before a snapshot is built, written through. */
export interface InstanceMapPersistence {
  load(deviceKey: string): Promise<Record<string, number> | null>;
  save(deviceKey: string, map: Record<string, number>): Promise<void>;
}

/** The TR-181 home of Download(); presented with one row (the running image) for TR-098 devices. */
const FIRMWARE_IMAGE = 'Device.DeviceInfo.FirmwareImage.';

const TYPES: ReadonlySet<string> = new Set(['string', 'base64', 'hexBinary', 'dateTime', 'decimal', 'int', 'long', 'unsignedInt', 'unsignedLong', 'boolean']);

export class MappedDeviceBackend implements DmBackend {
  readonly prefixes = ['Device.'];
  private readonly snapshots: LRUCache<string, DeviceMapping>;
  /** Native tables the device lets the ACS add to / delete from (GetParameterNames Writable on the table object). */
  private readonly writableNative = new LRUCache<string, Set<string>>({ max: 2_000 });
  private readonly building = new Map<string, Promise<DeviceMapping>>();
  private readonly memory = new Map<string, Record<string, number>>();
  private readonly batch: number;
  commandRunner: CommandRunner | null = null;
  onObjectChange: ((kind: 'add' | 'delete', agentEid: string, path: string, uniqueKeys: Record<string, string>) => void) | null = null;

  constructor(
    private readonly rpc: RpcPort,
    private readonly devices: DeviceLookup,
    private readonly rules: MappingRules,
    private readonly persistence: InstanceMapPersistence,
    private readonly opts: MappedBackendOptions,
  ) {
    this.batch = opts.gpvBatchSize ?? 500;
    this.snapshots = new LRUCache({ max: 2_000, ttl: opts.snapshotTtlMs ?? 60_000 });
  }

  /** Forget a device's snapshot (BOOT, Add/Delete). */
  invalidateDevice(deviceKey: string): void {
    this.snapshots.delete(deviceKey);
  }

  private async device(agentEid: string): Promise<DeviceRecord | null> {
    const d = await this.devices.deviceByEndpointId(agentEid);
    return d && d.rootModel === 'InternetGatewayDevice' ? d : null;
  }

  private async call(d: DeviceRecord, rpc: AcsRequest): Promise<RpcOutcome> {
    try {
      return await this.rpc.enqueue(d.deviceKey, rpc);
    } catch (e) {
      if (e instanceof RpcError) {
        const c = uspErrorOfRpc(e);
        throw new UspError(c.errCode, c.errMsg);
      }
      throw e;
    }
  }

  private store(): InstanceMapStore {
    return {
      get: (k) => this.memory.get(k) ?? null,
      put: (k, map) => {
        this.memory.set(k, map);
        void this.persistence.save(k, map).catch(() => undefined);
      },
    };
  }

  /** The device's mapping snapshot: GetParameterNames of the native root + learned types. */
  private async mapping(d: DeviceRecord): Promise<DeviceMapping> {
    const hit = this.snapshots.get(d.deviceKey);
    if (hit) return hit;
    let p = this.building.get(d.deviceKey);
    if (!p) {
      p = this.build(d).finally(() => this.building.delete(d.deviceKey));
      this.building.set(d.deviceKey, p);
    }
    return p;
  }

  private async build(d: DeviceRecord): Promise<DeviceMapping> {
    const root = this.rules.nativeRoot;
    const out = await this.call(d, { method: 'GetParameterNames', parameterPath: root, nextLevel: false });
    if (out.kind === 'fault') throw new UspError(uspCodeOfCwmpFault(out.fault.faultCode), `GetParameterNames failed: ${describeFault(out.fault)}`);
    const infos = out.response.method === 'GetParameterNamesResponse' ? out.response.parameterList : [];
    const leafNames = infos.filter((p) => !p.name.endsWith('.')).map((p) => p.name);
    let types = await this.rpc.parameterTypes(d.deviceKey, leafNames);
    if (leafNames.some((n) => !types.has(n))) {
      const gpv = await this.call(d, { method: 'GetParameterValues', parameterNames: [root] });
      if (gpv.kind === 'response' && gpv.response.method === 'GetParameterValuesResponse')
        types = new Map(gpv.response.parameterList.map((v) => [v.name, v.type]));
    }
    if (!this.memory.has(d.deviceKey)) {
      const stored = await this.persistence.load(d.deviceKey);
      if (stored) this.memory.set(d.deviceKey, stored);
    }
    const params: NativeParamInfo[] = infos.map((p) => ({ name: p.name, writable: p.writable, type: types.get(p.name) }));
    this.writableNative.set(d.deviceKey, new Set(infos.filter((p) => p.name.endsWith('.') && p.writable && !/\.\d+\.$/.test(p.name)).map((p) => p.name)));
    const m = new DeviceMapping(this.rules, { deviceKey: d.deviceKey, params, store: this.store() });
    this.snapshots.set(d.deviceKey, m);
    return m;
  }

  async supported(agentEid: string): Promise<readonly ObjectSchema[]> {
    const d = await this.device(agentEid);
    if (!d) return [];
    const m = await this.mapping(d);
    const commands =
      this.commandRunner?.commands(
        d,
        new Map(
          ['Device.IP.Diagnostics.', 'Device.IP.Diagnostics.IPPing.', 'Device.IP.Diagnostics.TraceRoute.', FIRMWARE_IMAGE + '{i}.'].map((p) => [
            p,
            {} as ObjectSchema,
          ]),
        ),
      ) ?? [];
    const events = this.commandRunner?.events(d) ?? [];
    const objects: ObjectSchema[] = m
      .supportedModel()
      .filter((o) => !this.opts.excludedPrefixes.some((x) => o.path.startsWith(x)))
      .map((o) => ({
        path: o.path,
        multiInstance: o.multiInstance,
        access: o.multiInstance && (o.writable || this.candidateTables(d, m, o.path.slice(0, -'{i}.'.length), null).length > 0) ? 'addDelete' : 'readOnly',
        params: o.params.map((p) => ({
          name: p.name,
          type: (TYPES.has(p.type) ? p.type : 'string') as ParamType,
          access: p.writable && !p.computed ? 'readWrite' : 'readOnly',
        })),
        commands: commands.filter((c) => c.object === o.path).map((c) => c.command),
        events: events.filter((e) => e.object === o.path).map((e) => e.event),
        uniqueKeys: o.multiInstance && o.params.some((p) => p.name === 'Alias') ? [['Alias']] : [],
      }));
    if (!objects.some((o) => o.path === 'Device.')) {
      objects.push({ path: 'Device.', multiInstance: false, access: 'readOnly', params: [], commands: [], events: [], uniqueKeys: [] });
    }
    const root = objects.find((o) => o.path === 'Device.')!;
    // Reboot and FactoryReset are root-agnostic CWMP RPCs; diagnostics run on the mapped native
    // objects; firmware images have no TR-098 counterpart to map.
    const rootCommands = commands
      .filter((c) => c.object === 'Device.' && (c.command.name === 'Reboot()' || c.command.name === 'FactoryReset()'))
      .map((c) => c.command);
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

  async instances(agentEid: string, tablePath: string): Promise<number[] | null> {
    const d = await this.device(agentEid);
    if (!d || this.opts.excludedPrefixes.some((x) => tablePath.startsWith(x))) return null;
    if (tablePath === FIRMWARE_IMAGE) return [1];
    return (await this.mapping(d)).uspInstances(tablePath);
  }

  async get(agentEid: string, paths: readonly string[]): Promise<Map<string, string>> {
    const d = await this.device(agentEid);
    const result = new Map<string, string>();
    if (!d) return result;
    const m = await this.mapping(d);
    const usp = new Set<string>();
    for (const p of paths) {
      if (this.opts.excludedPrefixes.some((x) => p.startsWith(x))) continue;
      if (p.endsWith('.')) {
        for (const q of m.paramsUnder(p)) if (!this.opts.excludedPrefixes.some((x) => q.startsWith(x))) usp.add(q);
      } else usp.add(p);
    }
    const natives = new Set<string>();
    for (const p of usp) for (const n of m.toNative(p) ?? []) natives.add(n);
    const values = new Map<string, string>();
    const list = [...natives];
    for (let i = 0; i < list.length; i += this.batch) for (const v of await this.gpv(d, list.slice(i, i + this.batch))) values.set(v.name, v.value);
    for (const p of usp) {
      const v = m.nativeToUspValue(p, values);
      if (v !== null) result.set(p, v);
    }
    if (paths.some((p) => FIRMWARE_IMAGE.startsWith(p) || p.startsWith(FIRMWARE_IMAGE))) {
      const sw = d.softwareVersion ?? (await this.gpv(d, [`${this.rules.nativeRoot}DeviceInfo.SoftwareVersion`]))[0]?.value ?? '';
      const image: Record<string, string> = { Alias: 'cpe-1', Name: sw, Version: sw, Available: 'true', Status: 'Active' };
      for (const [k, v] of Object.entries(image)) {
        const full = `${FIRMWARE_IMAGE}1.${k}`;
        if (paths.some((p) => (p.endsWith('.') ? full.startsWith(p) : full === p))) result.set(full, v);
      }
    }
    return result;
  }

  private gpv(d: DeviceRecord, names: string[]): Promise<ParameterValueStruct[]> {
    return gpvIsolating((rpc) => this.call(d, rpc), names);
  }

  async set(ctx: RequestContext, objectPath: string, settings: readonly ParamSetting[]): Promise<SetOutcome> {
    return setOne(this, ctx, objectPath, settings);
  }

  /** All mapped settings in one SetParameterValues (CWMP SPV is all-or-nothing). */
  async setAtomic(ctx: RequestContext, objects: readonly { objectPath: string; settings: readonly ParamSetting[] }[]): Promise<AtomicSetOutcome> {
    const d = await this.device(ctx.agentEid);
    if (!d) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}`, failures: [] };
    try {
      const m = await this.mapping(d);
      const errs: { obj: string; e: ParamError; required: boolean }[] = [];
      let todo: { obj: string; s: ParamSetting; natives: { path: string; value: string; type: string }[] }[] = [];
      for (const { objectPath, settings } of objects) {
        for (const s of settings) {
          try {
            todo.push({ obj: objectPath, s, natives: m.uspToNativeValue(objectPath + s.param, s.value) });
          } catch (e) {
            if (!(e instanceof MappingError)) throw e;
            errs.push({ obj: objectPath, required: s.required, e: { param: s.param, errCode: e.code === 7026 ? 7010 : e.code, errMsg: e.message } });
          }
        }
      }
      const failures = (list: typeof errs) => {
        const by = new Map<string, ParamError[]>();
        for (const x of list) by.set(x.obj, [...(by.get(x.obj) ?? []), x.e]);
        return [...by].map(([objectPath, paramErrs]) => ({ objectPath, paramErrs }));
      };
      if (errs.some((x) => x.required))
        return { ok: false, errCode: 7021, errMsg: 'failed to set required parameters', failures: failures(errs.filter((x) => x.required)) };
      for (let attempt = 0; attempt < 2 && todo.length > 0; attempt++) {
        const out = await this.call(d, {
          method: 'SetParameterValues',
          parameterList: todo.flatMap((t) => t.natives.map((n) => ({ name: n.path, value: n.value, type: n.type }))),
          parameterKey: '',
        });
        if (out.kind === 'response') break;
        const f = out.fault;
        if (f.setParameterValuesFault.length === 0)
          return { ok: false, errCode: uspCodeOfCwmpFault(f.faultCode), errMsg: `SetParameterValues refused: ${describeFault(f)}`, failures: [] };
        const failed = new Set<(typeof todo)[number]>();
        for (const pf of f.setParameterValuesFault) {
          const t = todo.find((x) => x.natives.some((n) => n.path === pf.parameterName));
          const e = {
            param: t?.s.param ?? pf.parameterName,
            errCode: uspCodeOfCwmpFault(pf.faultCode),
            errMsg: `${describeFault({ faultCode: pf.faultCode, faultString: pf.faultString })} on ${pf.parameterName}`,
          };
          errs.push({ obj: t?.obj ?? objects[0]!.objectPath, required: t?.s.required ?? true, e });
          if (t) failed.add(t);
        }
        if (errs.some((x) => x.required))
          return { ok: false, errCode: 7021, errMsg: 'failed to set required parameters', failures: failures(errs.filter((x) => x.required)) };
        todo = todo.filter((t) => !failed.has(t));
        if (attempt === 1 && todo.length > 0) return { ok: false, errCode: 7021, errMsg: 'the device kept refusing parameters', failures: failures(errs) };
      }
      return {
        ok: true,
        results: objects.map(({ objectPath }) => ({
          objectPath,
          updated: Object.fromEntries(todo.filter((t) => t.obj === objectPath).map((t) => [t.s.param, t.s.value])),
          paramErrs: errs.filter((x) => x.obj === objectPath).map((x) => x.e),
        })),
      };
    } catch (e) {
      const c = e instanceof UspError ? { errCode: e.code, errMsg: e.message } : uspErrorOfRpc(e);
      return { ok: false, errCode: c.errCode, errMsg: c.errMsg, failures: [] };
    }
  }

  /**
   * Writable native tables an Add on a Device:2 table may create in. A flattened table
   * (NAT.PortMapping from every WAN*Connection.{c}.PortMapping.) takes the connection named by
   * the Add's Interface setting; otherwise the table of its existing rows, else the only one.
   */
  private candidateTables(d: DeviceRecord, m: DeviceMapping, tablePath: string, iface: string | null): string[] {
    if (/\{i\}/.test(tablePath)) return [];
    const writable = this.writableNative.get(d.deviceKey) ?? new Set<string>();
    const rule = this.rules.objects.find((r) => r.usp === tablePath.replace(/\.\d+\./g, '.{i}.') + '{i}.');
    const patterns = rule?.native === undefined ? [] : (Array.isArray(rule.native) ? rule.native : [rule.native]).map((p) => p.replace(/\{[a-z]\}\.$/, ''));
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
    const d = await this.device(ctx.agentEid);
    if (!d) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}`, paramErrs: [] };
    try {
      const m = await this.mapping(d);
      const schema = (await this.supported(ctx.agentEid)).find((o) => o.path === tablePath.replace(/\.\d+\./g, '.{i}.') + '{i}.');
      if (!schema?.multiInstance) return { ok: false, errCode: 7018, errMsg: `${tablePath} is not a mapped multi-instance object`, paramErrs: [] };
      const iface = settings.find((x) => x.param === 'Interface')?.value || null;
      const nativeTable = schema.access === 'addDelete' ? (this.candidateTables(d, m, tablePath, iface)[0] ?? null) : null;
      if (!nativeTable) {
        return {
          ok: false,
          errCode: 7019,
          errMsg: `${tablePath} does not allow Add on this TR-098 device${iface ? ` for Interface ${iface}` : ''} (no writable native table behind it)`,
          paramErrs: [],
        };
      }
      const out = await this.call(d, { method: 'AddObject', objectName: nativeTable, parameterKey: '' });
      if (out.kind === 'fault') return { ok: false, errCode: 7017, errMsg: `AddObject ${nativeTable} refused: ${describeFault(out.fault)}`, paramErrs: [] };
      if (out.response.method !== 'AddObjectResponse') return { ok: false, errCode: 7017, errMsg: 'unexpected response to AddObject', paramErrs: [] };
      const nativeInstance = `${nativeTable}${out.response.instanceNumber}.`;
      this.invalidateDevice(d.deviceKey);
      const fresh = await this.mapping(d);
      const uspPath = fresh.toUsp(nativeInstance);
      const instance = uspPath ? Number(/(\d+)\.$/.exec(uspPath)?.[1]) : NaN;
      if (!uspPath || !Number.isInteger(instance)) {
        await this.call(d, { method: 'DeleteObject', objectName: nativeInstance, parameterKey: '' }).catch(() => undefined);
        this.invalidateDevice(d.deviceKey);
        return { ok: false, errCode: 7017, errMsg: `the new ${nativeInstance} does not map to ${tablePath}`, paramErrs: [] };
      }
      let paramErrs: ParamError[] = [];
      // Interface chose the native table; the mapped row computes it, so it is not set again.
      const rest = settings.filter((x) => !(x.param === 'Interface' && fresh.isComputed(uspPath + 'Interface')));
      if (rest.length) {
        const r = await this.set(ctx, uspPath, rest);
        if (!r.ok) {
          await this.call(d, { method: 'DeleteObject', objectName: nativeInstance, parameterKey: '' }).catch(() => undefined);
          this.invalidateDevice(d.deviceKey);
          return { ok: false, errCode: r.errCode, errMsg: r.errMsg, paramErrs: r.paramErrs };
        }
        paramErrs = r.paramErrs;
      }
      const uniqueKeys: Record<string, string> = {};
      if (schema.uniqueKeys.length) {
        const v = await this.get(
          ctx.agentEid,
          schema.uniqueKeys.flat().map((k) => uspPath + k),
        );
        for (const k of schema.uniqueKeys.flat()) if (v.has(uspPath + k)) uniqueKeys[k] = v.get(uspPath + k)!;
      }
      this.onObjectChange?.('add', ctx.agentEid, uspPath, uniqueKeys);
      return { ok: true, instance, uniqueKeys, paramErrs };
    } catch (e) {
      const c = e instanceof UspError ? { errCode: e.code, errMsg: e.message } : uspErrorOfRpc(e);
      return { ok: false, errCode: c.errCode, errMsg: c.errMsg, paramErrs: [] };
    }
  }

  async delete(ctx: RequestContext, instancePath: string): Promise<DeleteOutcome> {
    const d = await this.device(ctx.agentEid);
    if (!d) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}` };
    try {
      const m = await this.mapping(d);
      const native = m.toNative(instancePath)?.[0];
      if (!native) return { ok: true, deleted: false };
      const out = await this.call(d, { method: 'DeleteObject', objectName: native, parameterKey: '' });
      this.invalidateDevice(d.deviceKey);
      if (out.kind === 'response') {
        this.onObjectChange?.('delete', ctx.agentEid, instancePath, {});
        return { ok: true };
      }
      if (out.fault.faultCode === 9005) return { ok: true, deleted: false };
      return { ok: false, errCode: 7024, errMsg: `DeleteObject ${native} refused: ${describeFault(out.fault)}` };
    } catch (e) {
      const c = e instanceof UspError ? { errCode: e.code, errMsg: e.message } : uspErrorOfRpc(e);
      return { ok: false, errCode: c.errCode, errMsg: c.errMsg };
    }
  }

  async operate(ctx: RequestContext, commandPath: string, input: Record<string, string>, commandKey: string): Promise<OperateOutcome> {
    const d = await this.device(ctx.agentEid);
    if (!d) return { kind: 'error', errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}` };
    if (!this.commandRunner) return { kind: 'error', errCode: 7001, errMsg: `${commandPath} is not supported` };
    const diag = /^Device\.IP\.Diagnostics\.(IPPing|TraceRoute)\(\)$/.exec(commandPath);
    if (diag && this.commandRunner instanceof CwmpCommandRunner) return this.diagnostics(d, diag[1]!, input, this.commandRunner);
    const ok = commandPath === 'Device.Reboot()' || commandPath === 'Device.FactoryReset()' || commandPath === `${FIRMWARE_IMAGE}1.Download()`;
    if (!ok) return { kind: 'error', errCode: 7026, errMsg: `${commandPath} is not mapped for TR-098 devices` };
    return this.commandRunner.operate(ctx, d, commandPath, input, commandKey);
  }

  /** IPPing()/TraceRoute() on the mapped native diagnostics object (e.g. InternetGatewayDevice.IPPingDiagnostics.). */
  private async diagnostics(d: DeviceRecord, name: string, input: Record<string, string>, runner: CwmpCommandRunner): Promise<OperateOutcome> {
    const m = await this.mapping(d);
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
      .runDiagnostics(d, native, parameterList, async (results) => {
        // Results appear as new rows (TraceRoute RouteHops): read them through a fresh snapshot.
        this.invalidateDevice(d.deviceKey);
        const fresh = await this.mapping(d);
        const values = new Map(results.map((r) => [r.name, r.value]));
        const output: Record<string, string> = {};
        for (const p of fresh.paramsUnder(obj)) {
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
  async nativePaths(d: DeviceRecord, uspPaths: readonly string[]): Promise<string[]> {
    const m = await this.mapping(d);
    const out = new Set<string>();
    for (const p of uspPaths) {
      const list = p.endsWith('.') ? m.paramsUnder(p) : [p];
      for (const q of list) for (const n of m.toNative(q) ?? []) out.add(n);
    }
    return [...out];
  }

  /** Native paths of a 4 VALUE CHANGE Inform, as Device:2 paths with mapped values. */
  async uspValueChanges(d: DeviceRecord, params: readonly ParameterValueStruct[]): Promise<{ path: string; value: string }[]> {
    const m = await this.mapping(d);
    const values = new Map(params.map((p) => [p.name, p.value]));
    const out: { path: string; value: string }[] = [];
    for (const p of params) {
      for (const usp of m.toUspAll(p.name)) {
        const v = m.nativeToUspValue(usp, values);
        if (v !== null) out.push({ path: usp, value: v });
      }
    }
    return out;
  }
}

/**
 * The device backend of every agent: Device:2 devices pass through (CwmpDeviceBackend), TR-098
 * devices go through the mapping (MappedDeviceBackend). Chosen per agent from the registry.
 */
export class DeviceBackendSwitch implements DmBackend {
  readonly prefixes = ['Device.'];
  constructor(
    private readonly devices: DeviceLookup,
    private readonly device2: DmBackend,
    private readonly tr098: DmBackend,
  ) {}

  private async pick(agentEid: string): Promise<DmBackend> {
    const d = await this.devices.deviceByEndpointId(agentEid);
    return d?.rootModel === 'InternetGatewayDevice' ? this.tr098 : this.device2;
  }

  async supported(agentEid: string) {
    return (await this.pick(agentEid)).supported(agentEid);
  }
  async instances(agentEid: string, tablePath: string) {
    return (await this.pick(agentEid)).instances(agentEid, tablePath);
  }
  async get(agentEid: string, paths: readonly string[]) {
    return (await this.pick(agentEid)).get(agentEid, paths);
  }
  async searchValue(agentEid: string, paramPath: string) {
    const b = await this.pick(agentEid);
    return b.searchValue ? b.searchValue(agentEid, paramPath) : (await b.get(agentEid, [paramPath])).get(paramPath);
  }
  async set(ctx: RequestContext, objectPath: string, settings: readonly ParamSetting[]) {
    return (await this.pick(ctx.agentEid)).set(ctx, objectPath, settings);
  }
  async setAtomic(ctx: RequestContext, objects: readonly { objectPath: string; settings: readonly ParamSetting[] }[]): Promise<AtomicSetOutcome> {
    const b = await this.pick(ctx.agentEid);
    if (b.setAtomic) return b.setAtomic(ctx, objects);
    return { ok: false, errCode: 7003, errMsg: 'atomic set not supported', failures: [] };
  }
  async add(ctx: RequestContext, tablePath: string, settings: readonly ParamSetting[]) {
    return (await this.pick(ctx.agentEid)).add(ctx, tablePath, settings);
  }
  async delete(ctx: RequestContext, instancePath: string) {
    return (await this.pick(ctx.agentEid)).delete(ctx, instancePath);
  }
  async operate(ctx: RequestContext, commandPath: string, input: Record<string, string>, commandKey: string) {
    return (await this.pick(ctx.agentEid)).operate(ctx, commandPath, input, commandKey);
  }
}
