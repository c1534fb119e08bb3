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
  AtomicSetOutcome,
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
import { UspError } from '../usp/errors.js';
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

/** The supported model of one device model, with what it was built from (to extend it). */
interface SupportedEntry {
  objects: Map<string, ObjectSchema>;
  infos: ParameterInfoStruct[];
  types: ReadonlyMap<string, string>;
}

/** Paths under the CWMP-only ManagementServer stay visible but read-only (DESIGN section 5). */
const READ_ONLY_SUBTREES = ['Device.ManagementServer.'];

const INSTANCE = /\.(\d+)\./g;
const schemaPathOf = (p: string): string => p.replace(INSTANCE, '.{i}.').replace(INSTANCE, '.{i}.');

export function uspErrorOfRpc(e: unknown): { errCode: number; errMsg: string } {
  // Already translated (call() turns RpcErrors into UspErrors; CPE faults are UspErrors too).
  if (e instanceof UspError) return { errCode: e.code, errMsg: e.message };
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
  private readonly supportedCache = new LRUCache<string, SupportedEntry>({ max: 64 });
  private readonly modelFetches = new Map<string, Promise<SupportedEntry>>();
  private readonly instanceCache: LRUCache<string, number[]>;
  private readonly valueCache: LRUCache<string, Map<string, string>>;
  private readonly valueFetches = new Map<string, Promise<Map<string, string>>>();
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

  /**
   * One RPC through the session engine. An RpcError (unreachable, session timeout, ...) becomes
   * a UspError with its own code and message, so that whatever handler catches it (codeOf()
   * knows only PathError/UspError) answers 7002/7003 with a clear text, not "internal error".
   */
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

  // ------------------------------------------------------------------ supported model

  async supported(agentEid: string): Promise<readonly ObjectSchema[]> {
    const d = await this.device(agentEid);
    if (!d) return [];
    return [...(await this.model(d)).objects.values()];
  }

  private async model(d: DeviceRecord): Promise<SupportedEntry> {
    const key = this.modelKey(d);
    const hit = this.supportedCache.get(key);
    if (hit) return hit;
    // Concurrent first requests for a model share one GPN/GPV of the whole tree.
    let fetch = this.modelFetches.get(key);
    if (!fetch) {
      fetch = this.loadModel(d, key).finally(() => this.modelFetches.delete(key));
      this.modelFetches.set(key, fetch);
    }
    return fetch;
  }

  private async loadModel(d: DeviceRecord, key: string): Promise<SupportedEntry> {
    const out = await this.call(d, { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: false });
    if (out.kind === 'fault') throw new UspError(uspCodeOfCwmpFault(out.fault.faultCode), `GetParameterNames failed: ${describeFault(out.fault)}`);
    if (out.response.method !== 'GetParameterNamesResponse') throw new Error('unexpected response to GetParameterNames');
    const infos = out.response.parameterList.filter((p) => !this.excluded(p.name));
    let types = await this.rpc.parameterTypes(
      d.deviceKey,
      infos.filter((p) => !p.name.endsWith('.')).map((p) => p.name),
    );
    if (infos.some((p) => !p.name.endsWith('.') && !types.has(p.name))) {
      // Types not learned yet: one GetParameterValues of the whole tree teaches them (DESIGN section 2).
      const gpv = await this.call(d, { method: 'GetParameterValues', parameterNames: ['Device.'] });
      if (gpv.kind === 'response' && gpv.response.method === 'GetParameterValuesResponse') {
        types = new Map(gpv.response.parameterList.map((p) => [p.name, p.type]));
      }
    }
    const built: SupportedEntry = { objects: this.buildModel(d, infos, types), infos, types };
    this.supportedCache.set(key, built);
    return built;
  }

  /**
   * A table that was empty when the model was read shows no parameters (GetParameterNames has
   * no instance to list): once it has an instance (created by our AddObject, or seen by
   * instances()), learn that instance's names and types and add them to the model.
   */
  private async learnInstance(d: DeviceRecord, instancePath: string): Promise<void> {
    const key = this.modelKey(d);
    const entry = this.supportedCache.get(key);
    if (!entry) return;
    const out = await this.call(d, { method: 'GetParameterNames', parameterPath: instancePath, nextLevel: false });
    if (out.kind !== 'response' || out.response.method !== 'GetParameterNamesResponse') return;
    const known = new Set(entry.infos.map((p) => p.name));
    const fresh = out.response.parameterList.filter((p) => !this.excluded(p.name) && !known.has(p.name));
    if (fresh.length === 0) return;
    const names = fresh.filter((p) => !p.name.endsWith('.')).map((p) => p.name);
    const types = new Map([...entry.types, ...(await this.rpc.parameterTypes(d.deviceKey, names))]);
    if (names.some((n) => !types.has(n))) {
      const gpv = await this.call(d, { method: 'GetParameterValues', parameterNames: [instancePath] });
      if (gpv.kind === 'response' && gpv.response.method === 'GetParameterValuesResponse')
        for (const p of gpv.response.parameterList) types.set(p.name, p.type);
    }
    const infos = [...entry.infos, ...fresh];
    this.supportedCache.set(key, { objects: this.buildModel(d, infos, types), infos, types });
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

  private freeze(
    o: { path: string; multi: boolean; access: ObjectSchema['access']; params: Map<string, ParamSchema> },
    commands: CommandSchema[],
    events: EventSchema[],
  ): ObjectSchema {
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
      throw new UspError(uspCodeOfCwmpFault(out.fault.faultCode), `GetParameterNames ${tablePath} failed: ${describeFault(out.fault)}`);
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
    if (numbers.length > 0 && schema.params.length === 0) await this.learnInstance(d, `${tablePath}${numbers[0]}.`);
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
    const hit = this.valueCache.get(key);
    if (hit) return hit.get(paramPath);
    // The resolver asks for every instance at once: share one GPV of the table between them.
    let fetch = this.valueFetches.get(key);
    if (!fetch) {
      fetch = this.gpv(d, [table])
        .then((list) => {
          const values = new Map(list.map((v) => [v.name, normalize(v)]));
          this.valueCache.set(key, values);
          return values;
        })
        .finally(() => this.valueFetches.delete(key));
      this.valueFetches.set(key, fetch);
    }
    return (await fetch).get(paramPath);
  }

  /** For "Device.X.3.Name": the instance path "Device.X.3." whose table search is being evaluated. */
  private tableOf(param: string): string | null {
    const m = /^(.*\.\d+\.)[^.]+$/.exec(param);
    return m ? m[1]!.replace(/\d+\.$/, '') : null;
  }

  private gpv(d: DeviceRecord, names: string[]): Promise<ParameterValueStruct[]> {
    return gpvIsolating((rpc) => this.call(d, rpc), names);
  }

  // ------------------------------------------------------------------ changes

  async set(ctx: RequestContext, objectPath: string, settings: readonly ParamSetting[]): Promise<SetOutcome> {
    return setOne(this, ctx, objectPath, settings);
  }

  /**
   * Several objects in ONE SetParameterValues (CWMP SPV is atomic: all or nothing, TR-069
   * A.3.2.1). Failed non-required parameters are dropped and the rest is set again (once).
   */
  async setAtomic(ctx: RequestContext, objects: readonly { objectPath: string; settings: readonly ParamSetting[] }[]): Promise<AtomicSetOutcome> {
    const d = await this.device(ctx.agentEid);
    if (!d) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}`, failures: [] };
    const model = await this.model(d);
    interface Entry {
      obj: string;
      s: ParamSetting;
    }
    const errs: { obj: string; e: ParamError; required: boolean }[] = [];
    let todo: Entry[] = [];
    for (const { objectPath, settings } of objects) {
      const schema = model.objects.get(schemaPathOf(objectPath));
      for (const s of settings) {
        const p = schema?.params.find((q) => q.name === s.param);
        if (!p)
          errs.push({ obj: objectPath, required: s.required, e: { param: s.param, errCode: 7010, errMsg: `unsupported parameter ${objectPath}${s.param}` } });
        else if (p.access === 'readOnly')
          errs.push({ obj: objectPath, required: s.required, e: { param: s.param, errCode: 7013, errMsg: `parameter ${objectPath}${s.param} is read-only` } });
        else todo.push({ obj: objectPath, s });
      }
    }
    const failures = (list: typeof errs): { objectPath: string; paramErrs: ParamError[] }[] => {
      const by = new Map<string, ParamError[]>();
      for (const x of list) by.set(x.obj, [...(by.get(x.obj) ?? []), x.e]);
      return [...by].map(([objectPath, paramErrs]) => ({ objectPath, paramErrs }));
    };
    if (errs.some((x) => x.required))
      return { ok: false, errCode: 7021, errMsg: 'failed to set required parameters', failures: failures(errs.filter((x) => x.required)) };
    try {
      for (let attempt = 0; attempt < 2 && todo.length > 0; attempt++) {
        const out = await this.spv(
          d,
          todo.map((t) => ({ name: t.obj + t.s.param, value: t.s.value })),
        );
        if (out.ok) {
          for (const { objectPath } of objects) this.valueCache.delete(`${d.deviceKey}|${objectPath.replace(/\d+\.$/, '')}`);
          break;
        }
        if (out.paramErrs.length === 0) return { ok: false, errCode: out.errCode, errMsg: out.errMsg, failures: [] };
        const failed = new Set<string>();
        let requiredFailed = false;
        for (const pe of out.paramErrs) {
          const t = todo.find((x) => x.obj + x.s.param === pe.name);
          const obj = t?.obj ?? objects[0]!.objectPath;
          errs.push({ obj, required: t?.s.required ?? true, e: { param: t ? t.s.param : pe.name, errCode: pe.errCode, errMsg: pe.errMsg } });
          if (t?.s.required !== false) requiredFailed = true;
          failed.add(pe.name);
        }
        if (requiredFailed)
          return { ok: false, errCode: 7021, errMsg: 'failed to set required parameters', failures: failures(errs.filter((x) => x.required)) };
        // Only non-required parameters failed: set the rest again without them.
        todo = todo.filter((t) => !failed.has(t.obj + t.s.param));
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
      const c = uspErrorOfRpc(e);
      return { ok: false, errCode: c.errCode, errMsg: c.errMsg, failures: [] };
    }
  }

  /** One SetParameterValues with the learned xsi:types (looked up with GPV when unknown). */
  private async spv(
    d: DeviceRecord,
    settings: readonly { name: string; value: string }[],
  ): Promise<{ ok: true } | { ok: false; errCode: number; errMsg: string; paramErrs: { name: string; errCode: number; errMsg: string }[] }> {
    const names = settings.map((s) => s.name);
    let types = await this.rpc.parameterTypes(d.deviceKey, names);
    const unknown = names.filter((n) => !types.has(n));
    if (unknown.length) {
      const values = await this.gpv(d, unknown); // learns them (the engine stores types from every GPV)
      types = new Map([...types, ...values.map((v) => [v.name, v.type] as const)]);
    }
    const out = await this.call(d, {
      method: 'SetParameterValues',
      parameterList: settings.map(({ name, value }) => {
        const type = types.get(name) ?? 'xsd:string';
        return { name, value: type === 'xsd:boolean' ? toCwmpBoolean(value) : value, type };
      }),
      parameterKey: '',
    });
    if (out.kind === 'response') return { ok: true };
    const f = out.fault;
    const paramErrs = f.setParameterValuesFault.map((p) => ({
      name: p.parameterName,
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
    if (schema.access !== 'addDelete' && schema.access !== 'addOnly')
      return { ok: false, errCode: 7019, errMsg: `${tablePath} does not allow Add on this device`, paramErrs: [] };
    try {
      // Unique keys (TR-181 Alias etc.): the CPE does not police them, so refuse a duplicate
      // before creating anything, like the proxy's own tables do (7012 on the key parameter).
      const given = new Map(settings.map((s) => [s.param, s.value]));
      const fullSets = schema.uniqueKeys.filter((ks) => ks.length > 0 && ks.every((k) => given.has(k)));
      if (fullSets.length) {
        const insts = (await this.instances(ctx.agentEid, tablePath)) ?? [];
        const vals = insts.length
          ? await this.get(
              ctx.agentEid,
              insts.flatMap((n) => fullSets.flat().map((k) => `${tablePath}${n}.${k}`)),
            )
          : new Map<string, string>();
        for (const ks of fullSets) {
          const clash = insts.find((n) => ks.every((k) => vals.get(`${tablePath}${n}.${k}`) === given.get(k)));
          if (clash === undefined) continue;
          const e = {
            param: ks[ks.length - 1]!,
            errCode: 7012,
            errMsg: `unique key ${ks.join('+')} = ${ks.map((k) => JSON.stringify(given.get(k))).join('+')} is already used by ${tablePath}${clash}.`,
          };
          return { ok: false, errCode: e.errCode, errMsg: e.errMsg, paramErrs: [e] };
        }
      }
      const out = await this.call(d, { method: 'AddObject', objectName: tablePath, parameterKey: '' });
      this.instanceCache.delete(`${d.deviceKey}|${tablePath}`);
      this.valueCache.delete(`${d.deviceKey}|${tablePath}`);
      if (out.kind === 'fault')
        return {
          ok: false,
          errCode: out.fault.faultCode === 9005 ? 7026 : 7017,
          errMsg: `AddObject ${tablePath} refused: ${describeFault(out.fault)}`,
          paramErrs: [],
        };
      if (out.response.method !== 'AddObjectResponse') return { ok: false, errCode: 7017, errMsg: 'unexpected response to AddObject', paramErrs: [] };
      const instance = out.response.instanceNumber;
      const path = `${tablePath}${instance}.`;
      let keySets = schema.uniqueKeys;
      if (schema.params.length === 0) {
        await this.learnInstance(d, path);
        keySets = (await this.model(d)).objects.get(schema.path)?.uniqueKeys ?? keySets;
      }
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
      if (keySets.length) {
        const values = await this.get(
          ctx.agentEid,
          keySets.flat().map((k) => path + k),
        );
        for (const k of keySets.flat()) {
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
      this.valueCache.delete(`${d.deviceKey}|${instancePath.replace(/\d+\.$/, '')}`);
      if (out.kind === 'response') {
        this.onObjectChange?.('delete', ctx.agentEid, instancePath, {});
        return { ok: true };
      }
      // A missing instance is a success with nothing affected (as the reference agent answers).
      if (out.fault.faultCode === 9005) return { ok: true, deleted: false };
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

/** GPV, isolating the paths a device refuses (one 9005 fails the whole CWMP request). */
export async function gpvIsolating(call: (rpc: AcsRequest) => Promise<RpcOutcome>, names: string[]): Promise<ParameterValueStruct[]> {
  const out = await call({ method: 'GetParameterValues', parameterNames: names });
  if (out.kind === 'response' && out.response.method === 'GetParameterValuesResponse') return out.response.parameterList;
  if (out.kind === 'fault' && out.fault.faultCode === 9005 && names.length > 1) {
    const all: ParameterValueStruct[] = [];
    for (const n of names) all.push(...(await gpvIsolating(call, [n])));
    return all;
  }
  if (out.kind === 'fault' && out.fault.faultCode !== 9005)
    throw new UspError(uspCodeOfCwmpFault(out.fault.faultCode), `GetParameterValues failed: ${describeFault(out.fault)}`);
  return [];
}

/** set() of one object as a one-object setAtomic (both device backends). */
export async function setOne(
  b: { setAtomic(ctx: RequestContext, objects: readonly { objectPath: string; settings: readonly ParamSetting[] }[]): Promise<AtomicSetOutcome> },
  ctx: RequestContext,
  objectPath: string,
  settings: readonly ParamSetting[],
): Promise<SetOutcome> {
  const r = await b.setAtomic(ctx, [{ objectPath, settings }]);
  if (r.ok) return { ok: true, updated: r.results[0]?.updated ?? {}, paramErrs: r.results[0]?.paramErrs ?? [] };
  return { ok: false, errCode: r.errCode, errMsg: r.errMsg, paramErrs: r.failures.flatMap((f) => f.paramErrs) };
}

/** USP booleans are true/false whatever the CPE sends (DESIGN section 5). */
function normalize(v: ParameterValueStruct): string {
  if (v.type === 'xsd:boolean') return v.value === '1' || v.value.toLowerCase() === 'true' ? 'true' : 'false';
  return v.value;
}

function toCwmpBoolean(v: string): string {
  return v === '1' || v.toLowerCase() === 'true' ? 'true' : v === '0' || v.toLowerCase() === 'false' ? 'false' : v;
}
