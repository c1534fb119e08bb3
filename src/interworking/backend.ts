/**
 * The CWMP device as a USP data-model backend (DESIGN sections 4, 9.5): get / set / add /
 * delete / instances / supported, turned into CWMP RPCs through the session engine's
 * enqueue(). No I/O of its own: every RPC goes through the `RpcPort`, so the translation can
 * be driven in tests with a scripted device.
 *
 * Caches (bounded, never the truth): the supported model per device model (manufacturer OUI,
 * product class, software version); instance lists per device and table (invalidated by
 * Add/Delete through the proxy and by BOOT); values of a table fetched for a search expression,
 * for the few seconds one USP request takes.
 */
import { LRUCache } from 'lru-cache';
import type { AcsRequest, ParameterInfoStruct, ParameterValueStruct } from '../cwmp/types.js';
import type { RpcOutcome } from '../cwmp/session.js';
import { RpcError } from '../cwmp/session.js';
import type { DeviceRecord } from '../store/types.js';
import type {
  AddOutcome,
  CommandSchema,
  DeleteOutcome,
  DmBackend,
  EventSchema,
  ObjectSchema,
  OperateOutcome,
  ParamError,
  ParamSchema,
  ParamSetting,
  ParamType,
  RequestContext,
  SetOutcome,
} from '../usp/dm/types.js';
import { describeFault, uspCodeOfCwmpFault } from './faults.js';

/** What the backend needs from the CWMP side. */
export interface RpcPort {
  enqueue(deviceKey: string, rpc: AcsRequest): Promise<RpcOutcome>;
  /** Learned xsi:types for concrete parameter paths of the device's model. */
  parameterTypes(deviceKey: string, names: readonly string[]): Promise<Map<string, string>>;
}

export interface DeviceLookup {
  deviceByEndpointId(endpointId: string): Promise<DeviceRecord | null>;
}

/** Operate and events live in operate.ts; the backend delegates commands to it. */
export interface CommandRunner {
  commands(device: DeviceRecord, objects: ReadonlyMap<string, ObjectSchema>): { object: string; command: CommandSchema }[];
  events(device: DeviceRecord): { object: string; event: EventSchema }[];
  operate(ctx: RequestContext, device: DeviceRecord, commandPath: string, input: Record<string, string>, commandKey: string): Promise<OperateOutcome>;
}

export interface CwmpBackendOptions {
  /** Paths the proxy serves itself: never taken from the device (Device.LocalAgent. ...). */
  excludedPrefixes: readonly string[];
  /** Parameters per GetParameterValues (a device may refuse very long lists). */
  gpvBatchSize?: number;
  instanceCacheTtlMs?: number;
  valueCacheTtlMs?: number;
}

const XSD_TO_PARAM: Record<string, ParamType> = {
  'xsd:string': 'string',
  'xsd:int': 'int',
  'xsd:unsignedInt': 'unsignedInt',
  'xsd:long': 'long',
  'xsd:unsignedLong': 'unsignedLong',
  'xsd:boolean': 'boolean',
  'xsd:dateTime': 'dateTime',
  'xsd:base64': 'base64',
  'xsd:base64Binary': 'base64',
  'xsd:hexBinary': 'hexBinary',
  'xsd:decimal': 'decimal',
};

/** Paths under the CWMP-only ManagementServer stay visible but read-only (DESIGN section 5). */
const READ_ONLY_SUBTREES = ['Device.ManagementServer.'];

const INSTANCE = /\.(\d+)\./g;
const schemaPathOf = (p: string): string => p.replace(INSTANCE, '.{i}.').replace(INSTANCE, '.{i}.');

export function uspErrorOfRpc(e: unknown): { errCode: number; errMsg: string } {
  if (e instanceof RpcError) {
    switch (e.reason) {
      case 'unreachable':
      case 'unknown-device':
        return { errCode: 7002, errMsg: `device unreachable: ${e.message}` };
      case 'session-timeout':
      case 'session-ended':
        return { errCode: 7003, errMsg: `the device did not answer: ${e.message}` };
      default:
        return { errCode: 7003, errMsg: e.message };
    }
  }
  return { errCode: 7003, errMsg: `internal error: ${(e as Error)?.message ?? String(e)}` };
}

export class CwmpDeviceBackend implements DmBackend {
  readonly prefixes = ['Device.'];
  private readonly supportedCache = new LRUCache<string, { objects: Map<string, ObjectSchema> }>({ max: 64 });
  private readonly instanceCache: LRUCache<string, number[]>;
  private readonly valueCache: LRUCache<string, Map<string, string>>;
  private readonly batch: number;
  commandRunner: CommandRunner | null = null;
  /** Add/Delete done through the proxy (ObjectCreation/ObjectDeletion notifications). */
  onObjectChange: ((kind: 'add' | 'delete', agentEid: string, path: string, uniqueKeys: Record<string, string>) => void) | null = null;

  constructor(
    private readonly rpc: RpcPort,
    private readonly devices: DeviceLookup,
    private readonly opts: CwmpBackendOptions,
  ) {
    this.batch = opts.gpvBatchSize ?? 500;
    this.instanceCache = new LRUCache({ max: 20_000, ttl: opts.instanceCacheTtlMs ?? 60_000 });
    this.valueCache = new LRUCache({ max: 2_000, ttl: opts.valueCacheTtlMs ?? 3_000 });
  }

  /** Forget what is cached for a device (BOOT, factory reset). */
  invalidateDevice(deviceKey: string): void {
    for (const k of [...this.instanceCache.keys()]) if (k.startsWith(deviceKey + '|')) this.instanceCache.delete(k);
    for (const k of [...this.valueCache.keys()]) if (k.startsWith(deviceKey + '|')) this.valueCache.delete(k);
  }

  private excluded(path: string): boolean {
    return this.opts.excludedPrefixes.some((p) => path.startsWith(p));
  }

  private async device(agentEid: string): Promise<DeviceRecord | null> {
    const d = await this.devices.deviceByEndpointId(agentEid);
    // TR-098 devices are served through the mapping (a later part); until then only Device:2 passes through.
    return d && d.rootModel === 'Device' ? d : null;
  }

  private modelKey(d: DeviceRecord): string {
    return `${d.deviceId.oui}|${d.deviceId.productClass}|${d.softwareVersion ?? ''}`;
  }

  private async call(d: DeviceRecord, rpc: AcsRequest): Promise<RpcOutcome> {
    return this.rpc.enqueue(d.deviceKey, rpc);
  }

  // ------------------------------------------------------------------ supported model

  async supported(agentEid: string): Promise<readonly ObjectSchema[]> {
    const d = await this.device(agentEid);
    if (!d) return [];
    return [...(await this.model(d)).objects.values()];
  }

  private async model(d: DeviceRecord): Promise<{ objects: Map<string, ObjectSchema> }> {
    const key = this.modelKey(d);
    const hit = this.supportedCache.get(key);
    if (hit) return hit;
    const out = await this.call(d, { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: false });
    if (out.kind === 'fault') throw Object.assign(new Error(`GetParameterNames failed: ${describeFault(out.fault)}`), { code: uspCodeOfCwmpFault(out.fault.faultCode) });
    if (out.response.method !== 'GetParameterNamesResponse') throw new Error('unexpected response to GetParameterNames');
    const infos = out.response.parameterList.filter((p) => !this.excluded(p.name));
    let types = await this.rpc.parameterTypes(d.deviceKey, infos.filter((p) => !p.name.endsWith('.')).map((p) => p.name));
    if (infos.some((p) => !p.name.endsWith('.') && !types.has(p.name))) {
      // Types not learned yet: one GetParameterValues of the whole tree teaches them (DESIGN section 2).
      const gpv = await this.call(d, { method: 'GetParameterValues', parameterNames: ['Device.'] });
      if (gpv.kind === 'response' && gpv.response.method === 'GetParameterValuesResponse') {
        types = new Map(gpv.response.parameterList.map((p) => [p.name, p.type]));
      }
    }
    const built = { objects: this.buildModel(d, infos, types) };
    this.supportedCache.set(key, built);
    return built;
  }

  private buildModel(d: DeviceRecord, infos: readonly ParameterInfoStruct[], types: ReadonlyMap<string, string>): Map<string, ObjectSchema> {
    const objects = new Map<string, { path: string; multi: boolean; access: ObjectSchema['access']; params: Map<string, ParamSchema> }>();
    const writableTables = new Set<string>();
    for (const p of infos) if (p.name.endsWith('.') && p.writable && !/\.\d+\.$/.test(p.name)) writableTables.add(schemaPathOf(p.name));
    const ensure = (schemaPath: string): { path: string; multi: boolean; access: ObjectSchema['access']; params: Map<string, ParamSchema> } => {
      let o = objects.get(schemaPath);
      if (!o) {
        const multi = schemaPath.endsWith('{i}.');
        const table = schemaPath.slice(0, -'{i}.'.length);
        o = { path: schemaPath, multi, access: multi && writableTables.has(table) ? 'addDelete' : 'readOnly', params: new Map() };
        objects.set(schemaPath, o);
      }
      return o;
    };
    ensure('Device.');
    for (const p of infos) {
      if (p.name.endsWith('.')) {
        if (/\.\d+\.$/.test(p.name)) ensure(schemaPathOf(p.name));
        else if (!infos.some((q) => q.name.startsWith(p.name) && /^\d+\.$/.test(q.name.slice(p.name.length)))) {
          // An object that is not (visibly) a table container: a single-instance object, unless
          // a <Name>NumberOfEntries sibling says it is an empty table.
          const parent = p.name.slice(0, p.name.slice(0, -1).lastIndexOf('.') + 1);
          const name = p.name.slice(parent.length, -1);
          const isTable = infos.some((q) => q.name === `${parent}${name}NumberOfEntries`);
          ensure(schemaPathOf(p.name) + (isTable ? '{i}.' : ''));
        }
        continue;
      }
      const dot = p.name.lastIndexOf('.');
      const obj = ensure(schemaPathOf(p.name.slice(0, dot + 1)));
      const name = p.name.slice(dot + 1);
      if (obj.params.has(name)) continue;
      const readOnly = !p.writable || READ_ONLY_SUBTREES.some((r) => p.name.startsWith(r));
      obj.params.set(name, { name, type: XSD_TO_PARAM[types.get(p.name) ?? 'xsd:string'] ?? 'string', access: readOnly ? 'readOnly' : 'readWrite' });
    }
    const commands = this.commandRunner?.commands(d, new Map([...objects].map(([k, v]) => [k, this.freeze(v, [], [])]))) ?? [];
    const events = this.commandRunner?.events(d) ?? [];
    const out = new Map<string, ObjectSchema>();
    for (const [k, v] of objects) {
      out.set(
        k,
        this.freeze(
          v,
          commands.filter((c) => c.object === k).map((c) => c.command),
          events.filter((e) => e.object === k).map((e) => e.event),
        ),
      );
    }
    return out;
  }

  private freeze(o: { path: string; multi: boolean; access: ObjectSchema['access']; params: Map<string, ParamSchema> }, commands: CommandSchema[], events: EventSchema[]): ObjectSchema {
    const params = [...o.params.values()];
    return {
      path: o.path,
      multiInstance: o.multi,
      access: o.access,
      params,
      commands,
      events,
      // TR-181 tables with an Alias use it as a unique key; CWMP does not tell us the others.
      uniqueKeys: o.multi && o.params.has('Alias') ? [['Alias']] : [],
    };
  }

  // ------------------------------------------------------------------ instances and values

  async instances(agentEid: string, tablePath: string): Promise<number[] | null> {
    const d = await this.device(agentEid);
    if (!d || this.excluded(tablePath)) return null;
    const model = await this.model(d);
    const schema = model.objects.get(schemaPathOf(tablePath) + '{i}.');
    if (!schema?.multiInstance) return null;
    const key = `${d.deviceKey}|${tablePath}`;
    const hit = this.instanceCache.get(key);
    if (hit) return hit;
    const out = await this.call(d, { method: 'GetParameterNames', parameterPath: tablePath, nextLevel: true });
    if (out.kind === 'fault') {
      if (out.fault.faultCode === 9005) return null; // the parent instance does not exist
      throw Object.assign(new Error(`GetParameterNames ${tablePath} failed: ${describeFault(out.fault)}`), { code: uspCodeOfCwmpFault(out.fault.faultCode) });
    }
    const list = out.response.method === 'GetParameterNamesResponse' ? out.response.parameterList : [];
    const numbers = [
      ...new Set(
        list
          .map((p) => p.name.slice(tablePath.length))
          .map((rest) => /^(\d+)\.?$/.exec(rest)?.[1])
          .filter((n): n is string => n !== undefined)
          .map(Number),
      ),
    ].sort((a, b) => a - b);
    this.instanceCache.set(key, numbers);
    return numbers;
  }

  async get(agentEid: string, paths: readonly string[]): Promise<Map<string, string>> {
    const d = await this.device(agentEid);
    const result = new Map<string, string>();
    if (!d) return result;
    const wanted = paths.filter((p) => !this.excluded(p));
    if (wanted.length === 0) return result;
    for (let i = 0; i < wanted.length; i += this.batch) {
      for (const v of await this.gpv(d, wanted.slice(i, i + this.batch))) {
        if (!this.excluded(v.name)) result.set(v.name, normalize(v));
      }
    }
    return result;
  }

  /**
   * A parameter value for a search expression ([Enable==true]): the resolver asks once per
   * instance, so the whole table is fetched with one GPV and served from a short-lived cache.
   */
  async searchValue(agentEid: string, paramPath: string): Promise<string | undefined> {
    const d = await this.device(agentEid);
    if (!d || this.excluded(paramPath)) return undefined;
    const table = this.tableOf(paramPath);
    if (!table) return (await this.get(agentEid, [paramPath])).get(paramPath);
    const key = `${d.deviceKey}|${table}`;
    let values = this.valueCache.get(key);
    if (!values) {
      values = new Map((await this.gpv(d, [table])).map((v) => [v.name, normalize(v)]));
      this.valueCache.set(key, values);
    }
    return values.get(paramPath);
  }

  /** For "Device.X.3.Name": the instance path "Device.X.3." whose table search is being evaluated. */
  private tableOf(param: string): string | null {
    const m = /^(.*\.\d+\.)[^.]+$/.exec(param);
    return m ? m[1]!.replace(/\d+\.$/, '') : null;
  }

  /** GPV, isolating the paths a device refuses (one 9005 fails the whole CWMP request). */
  private async gpv(d: DeviceRecord, names: string[]): Promise<ParameterValueStruct[]> {
    const out = await this.call(d, { method: 'GetParameterValues', parameterNames: names });
    if (out.kind === 'response' && out.response.method === 'GetParameterValuesResponse') return out.response.parameterList;
    if (out.kind === 'fault' && out.fault.faultCode === 9005 && names.length > 1) {
      const all: ParameterValueStruct[] = [];
      for (const n of names) all.push(...(await this.gpv(d, [n])));
      return all;
    }
    if (out.kind === 'fault' && out.fault.faultCode === 9005) return [];
    if (out.kind === 'fault') throw Object.assign(new Error(`GetParameterValues failed: ${describeFault(out.fault)}`), { code: uspCodeOfCwmpFault(out.fault.faultCode) });
    return [];
  }

  // ------------------------------------------------------------------ changes

  async set(ctx: RequestContext, objectPath: string, settings: readonly ParamSetting[]): Promise<SetOutcome> {
    const d = await this.device(ctx.agentEid);
    if (!d) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}`, paramErrs: [] };
    const model = await this.model(d);
    const schema = model.objects.get(schemaPathOf(objectPath));
    const errs: ParamError[] = [];
    let todo: ParamSetting[] = [];
    for (const s of settings) {
      const p = schema?.params.find((q) => q.name === s.param);
      if (!p) errs.push({ param: s.param, errCode: 7010, errMsg: `unsupported parameter ${objectPath}${s.param}` });
      else if (p.access === 'readOnly') errs.push({ param: s.param, errCode: 7013, errMsg: `parameter ${objectPath}${s.param} is read-only` });
      else todo.push(s);
    }
    const requiredFailed = (list: ParamError[]): ParamError[] => list.filter((e) => settings.find((s) => s.param === e.param)?.required !== false);
    if (requiredFailed(errs).length > 0) return { ok: false, errCode: 7021, errMsg: 'failed to set required parameters', paramErrs: requiredFailed(errs) };
    try {
      for (let attempt = 0; attempt < 2 && todo.length > 0; attempt++) {
        const out = await this.spv(d, objectPath, todo);
        if (out.ok) {
          const updated: Record<string, string> = {};
          for (const s of todo) updated[s.param] = s.value;
          this.valueCache.delete(`${d.deviceKey}|${objectPath.replace(/\d+\.$/, '')}`);
          return { ok: true, updated, paramErrs: errs };
        }
        errs.push(...out.paramErrs);
        if (out.paramErrs.length === 0) return { ok: false, errCode: out.errCode, errMsg: out.errMsg, paramErrs: requiredFailed(errs) };
        if (requiredFailed(out.paramErrs).length > 0) return { ok: false, errCode: 7021, errMsg: 'failed to set required parameters', paramErrs: requiredFailed(errs) };
        // Only non-required parameters failed: set the rest again without them (CWMP SPV is atomic).
        const failed = new Set(out.paramErrs.map((e) => e.param));
        todo = todo.filter((s) => !failed.has(s.param));
      }
      return { ok: true, updated: {}, paramErrs: errs };
    } catch (e) {
      const c = uspErrorOfRpc(e);
      return { ok: false, errCode: c.errCode, errMsg: c.errMsg, paramErrs: [] };
    }
  }

  /** One SetParameterValues with the learned xsi:types (looked up with GPV when unknown). */
  private async spv(d: DeviceRecord, objectPath: string, settings: readonly ParamSetting[]): Promise<{ ok: true } | { ok: false; errCode: number; errMsg: string; paramErrs: ParamError[] }> {
    const names = settings.map((s) => objectPath + s.param);
    let types = await this.rpc.parameterTypes(d.deviceKey, names);
    const unknown = names.filter((n) => !types.has(n));
    if (unknown.length) {
      const values = await this.gpv(d, unknown); // learns them (the engine stores types from every GPV)
      types = new Map([...types, ...values.map((v) => [v.name, v.type] as const)]);
    }
    const out = await this.call(d, {
      method: 'SetParameterValues',
      parameterList: settings.map((s) => {
        const name = objectPath + s.param;
        const type = types.get(name) ?? 'xsd:string';
        return { name, value: type === 'xsd:boolean' ? toCwmpBoolean(s.value) : s.value, type };
      }),
      parameterKey: '',
    });
    if (out.kind === 'response') return { ok: true };
    const f = out.fault;
    const paramErrs = f.setParameterValuesFault.map((p) => ({
      param: p.parameterName.startsWith(objectPath) ? p.parameterName.slice(objectPath.length) : p.parameterName,
      errCode: uspCodeOfCwmpFault(p.faultCode),
      errMsg: `${describeFault({ faultCode: p.faultCode, faultString: p.faultString })} on ${p.parameterName}`,
    }));
    return { ok: false, errCode: uspCodeOfCwmpFault(f.faultCode), errMsg: `SetParameterValues refused: ${describeFault(f)}`, paramErrs };
  }

  async add(ctx: RequestContext, tablePath: string, settings: readonly ParamSetting[]): Promise<AddOutcome> {
    const d = await this.device(ctx.agentEid);
    if (!d) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}`, paramErrs: [] };
    const model = await this.model(d);
    const schema = model.objects.get(schemaPathOf(tablePath) + '{i}.');
    if (!schema?.multiInstance) return { ok: false, errCode: 7018, errMsg: `${tablePath} is not a multi-instance object`, paramErrs: [] };
    if (schema.access !== 'addDelete' && schema.access !== 'addOnly') return { ok: false, errCode: 7019, errMsg: `${tablePath} does not allow Add on this device`, paramErrs: [] };
    try {
      const out = await this.call(d, { method: 'AddObject', objectName: tablePath, parameterKey: '' });
      this.instanceCache.delete(`${d.deviceKey}|${tablePath}`);
      if (out.kind === 'fault') return { ok: false, errCode: out.fault.faultCode === 9005 ? 7026 : 7017, errMsg: `AddObject ${tablePath} refused: ${describeFault(out.fault)}`, paramErrs: [] };
      if (out.response.method !== 'AddObjectResponse') return { ok: false, errCode: 7017, errMsg: 'unexpected response to AddObject', paramErrs: [] };
      const instance = out.response.instanceNumber;
      const path = `${tablePath}${instance}.`;
      let paramErrs: ParamError[] = [];
      if (settings.length) {
        const r = await this.set(ctx, path, settings);
        if (!r.ok) {
          // A required parameter failed: the object must not stay (R-ADD.2; DESIGN section 4).
          await this.call(d, { method: 'DeleteObject', objectName: path, parameterKey: '' }).catch(() => undefined);
          this.instanceCache.delete(`${d.deviceKey}|${tablePath}`);
          return { ok: false, errCode: r.errCode, errMsg: r.errMsg, paramErrs: r.paramErrs };
        }
        paramErrs = r.paramErrs;
      }
      const uniqueKeys: Record<string, string> = {};
      if (schema.uniqueKeys.length) {
        const values = await this.get(ctx.agentEid, schema.uniqueKeys.flat().map((k) => path + k));
        for (const k of schema.uniqueKeys.flat()) {
          const v = values.get(path + k);
          if (v !== undefined) uniqueKeys[k] = v;
        }
      }
      this.onObjectChange?.('add', ctx.agentEid, path, uniqueKeys);
      return { ok: true, instance, uniqueKeys, paramErrs };
    } catch (e) {
      const c = uspErrorOfRpc(e);
      return { ok: false, errCode: c.errCode, errMsg: c.errMsg, paramErrs: [] };
    }
  }

  async delete(ctx: RequestContext, instancePath: string): Promise<DeleteOutcome> {
    const d = await this.device(ctx.agentEid);
    if (!d) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}` };
    try {
      const out = await this.call(d, { method: 'DeleteObject', objectName: instancePath, parameterKey: '' });
      this.instanceCache.delete(`${d.deviceKey}|${instancePath.replace(/\d+\.$/, '')}`);
      if (out.kind === 'response') {
        this.onObjectChange?.('delete', ctx.agentEid, instancePath, {});
        return { ok: true };
      }
      // A missing instance is a success with nothing affected (as the reference agent answers).
      if (out.fault.faultCode === 9005) return { ok: true };
      return { ok: false, errCode: 7024, errMsg: `DeleteObject ${instancePath} refused: ${describeFault(out.fault)}` };
    } catch (e) {
      const c = uspErrorOfRpc(e);
      return { ok: false, errCode: c.errCode, errMsg: c.errMsg };
    }
  }

  async operate(ctx: RequestContext, commandPath: string, input: Record<string, string>, commandKey: string): Promise<OperateOutcome> {
    const d = await this.device(ctx.agentEid);
    if (!d) return { kind: 'error', errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}` };
    if (!this.commandRunner) return { kind: 'error', errCode: 7001, errMsg: `${commandPath} is not supported` };
    return this.commandRunner.operate(ctx, d, commandPath, input, commandKey);
  }
}

/** USP booleans are true/false whatever the CPE sends (DESIGN section 5). */
function normalize(v: ParameterValueStruct): string {
  if (v.type === 'xsd:boolean') return v.value === '1' || v.value.toLowerCase() === 'true' ? 'true' : 'false';
  return v.value;
}

function toCwmpBoolean(v: string): string {
  return v === '1' || v.toLowerCase() === 'true' ? 'true' : v === '0' || v.toLowerCase() === 'false' ? 'false' : v;
}
