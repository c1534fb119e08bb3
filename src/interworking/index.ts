/**
 * The interworking layer, built from its ports in one place: the CWMP device as the data-model
 * backend of its USP Agent (Device:2 pass-through or the TR-098 mapping), the knowledge the proxy
 * learns of device models and devices, and the commands. The proxy object gives it the session
 * engine's enqueue(), the store and the configuration, and feeds it every Inform.
 */
import type { CallScope } from '../usp/request-scope.js';
import { DownloadTargets } from './download-targets.js';
import type { Logger } from '../app/log.js';
import type { Inform } from '../cwmp/types.js';
import type { MappingRules } from '../mapping/load.js';
import type { DeviceRecord, RootModel, Store } from '../store/types.js';
import type { DmBackend } from '../usp/dm/types.js';
import { ExtensionBackend } from './extension-backend.js';
import { DEFAULT_EXTENSION_VENDOR, NativeExtension } from './extension.js';
import { DeviceBackendSwitch } from './backend-switch.js';
import { type CommandRunner, CwmpCommandRunner, type DeviceEvent } from './commands.js';
import { type AccessContext, type AccessOptions, DEFAULT_ACCESS_OPTIONS, DeviceAccess } from './device-access.js';
import { Device2Backend } from './device2-backend.js';
import { KnowledgeBase } from './knowledge/knowledge-base.js';
import { type LearnedCapabilities, learnedCapabilities } from './capabilities.js';
import type { RememberedFailure } from './knowledge/model-profile.js';
import type { RpcPort } from './rpc-port.js';
import { RpcError } from '../cwmp/session.js';
import { Tr098Backend } from './tr098-backend.js';
import { isSecret, securedValue, toUspValue } from './values.js';
import { LRUCache } from 'lru-cache';

export interface InterworkingOptions extends Partial<AccessOptions> {
  /** How long a device may take to report back from Reboot/Download/diagnostics (ms). */
  operationTimeoutMs: number;
  /** Paths the proxy serves itself (Device.LocalAgent. ...). */
  excludedPrefixes: readonly string[];
  /** TR-106 vendor token of the extension object Device.X_<VENDOR>_Native. (extension.ts). */
  extensionVendor?: string;
  /** Learned device name trees kept in memory (LRU); beyond them a request reads its device's tree from the store. */
  deviceTreeCache?: number;
}

export interface InterworkingDeps {
  /** The session engine's enqueue (RPCs of a USP request linger for their follow-ups). */
  port: RpcPort;
  store: Pick<Store, 'getDeviceByEndpointId' | 'getInstanceMap' | 'putInstanceMap' | 'getLearned' | 'putLearned' | 'deleteLearned'>;
  rules: MappingRules;
  log: Logger;
  now?: () => number;
  /**
   * Whether the device has a CWMP session open now (for RPCs that may only ride one, see
   * openInSession); absent: never, such RPCs fail as unreachable.
   */
  inSession?(deviceKey: string): boolean | Promise<boolean>;
}

export class Interworking {
  readonly knowledge: KnowledgeBase;
  readonly commands: CwmpCommandRunner;
  readonly device2: Device2Backend;
  readonly tr098: Tr098Backend;
  /** The backend every agent's Device. goes to (picks Device:2 or TR-098 per device). */
  readonly backend: DeviceBackendSwitch;
  /** The native tree (TR-098) or the shadowed subtrees (Device:2) under Device.X_<VENDOR>_Native. */
  readonly extension: ExtensionBackend;
  readonly nativeExtension: NativeExtension;
  /** Every data-model backend of the device side, for the agent's router. */
  readonly backends: readonly DmBackend[];
  private readonly access: AccessContext;
  /** Models whose GetRPCMethods is being asked (once per model). */
  private readonly asking = new Set<string>();
  /** The same, for RPCs that only ride a session the device has open (learns of their own). */
  private readonly riding: AccessContext;

  constructor(
    private readonly deps: InterworkingDeps,
    opts: InterworkingOptions,
  ) {
    const log = deps.log;
    const { deviceTreeCache, ...accessOpts } = opts;
    const access: AccessOptions = { ...DEFAULT_ACCESS_OPTIONS, ...stripUndefined(accessOpts) };
    this.knowledge = new KnowledgeBase(deps.store, {
      ...(deviceTreeCache !== undefined ? { deviceCacheSize: deviceTreeCache } : {}),
      capabilityDefaults: { gpvBatch: access.gpvBatchSize },
      onStoreError: (what, err) => log.warn({ err: err.message }, `${what} failed`),
    });
    const warned = new LRUCache<string, true>({ max: 10_000 });
    this.access = {
      port: deps.port,
      knowledge: this.knowledge,
      opts: access,
      log,
      now: deps.now ?? Date.now,
      inflight: new Map(),
      firstUse: (d, model, scope) => {
        if (model.caps.rpcMethods === null) void this.askRpcMethods(d, model.key, scope);
      },
      warnOnce(key, fields, msg) {
        if (warned.has(key)) return;
        warned.set(key, true);
        log.warn(fields, msg);
      },
    };
    const inSession = deps.inSession ?? (() => false);
    this.riding = {
      ...this.access,
      inflight: new Map(),
      port: {
        enqueue: async (deviceKey, rpc, rpcOpts) => {
          if (!(await inSession(deviceKey))) throw new RpcError('unreachable', 'the device has no CWMP session open: read in its next session');
          return deps.port.enqueue(deviceKey, rpc, rpcOpts);
        },
      },
    };
    const devices = { deviceByEndpointId: (eid: string) => deps.store.getDeviceByEndpointId(eid) };
    this.commands = new CwmpCommandRunner((k, rpc, scope) => deps.port.enqueue(k, rpc, scope && { scope }), {
      completionTimeoutMs: opts.operationTimeoutMs,
      readObject: async (d, object) => {
        const a = await this.open(d);
        a.tree.markStale(object);
        await a.learnSubtree(object);
        return a.gpv(a.tree.paramsUnder(object));
      },
      downloadSent: (d, key, command) => new DownloadTargets(deps.store).remember(d.deviceKey, key, command),
    });
    this.device2 = new Device2Backend({ access: this.access, devices, commands: this.commands, excludedPrefixes: opts.excludedPrefixes });
    this.tr098 = new Tr098Backend({
      access: this.access,
      devices,
      commands: this.commands,
      rules: deps.rules,
      instanceMaps: { load: (k) => deps.store.getInstanceMap(k), save: (k, m) => deps.store.putInstanceMap(k, m) },
      excludedPrefixes: opts.excludedPrefixes,
    });
    this.backend = new DeviceBackendSwitch(devices, this.device2, this.tr098);
    this.nativeExtension = new NativeExtension(opts.extensionVendor ?? DEFAULT_EXTENSION_VENDOR, opts.excludedPrefixes);
    const passThrough = (root: RootModel) => new Device2Backend({ access: this.access, devices, commands: NO_COMMANDS, excludedPrefixes: [], root });
    this.extension = new ExtensionBackend(this.nativeExtension, devices, {
      Device: passThrough('Device'),
      InternetGatewayDevice: passThrough('InternetGatewayDevice'),
    });
    this.backends = [this.backend, this.extension];
  }

  /** A device's RPC access (names learned, explicit-name GetParameterValues), for other modules of the layer. */
  open(d: DeviceRecord, scope?: CallScope): Promise<DeviceAccess> {
    return DeviceAccess.open(d, this.access, scope);
  }

  /**
   * The same, for RPCs that must ride a session the device opened (a periodic Inform) and never
   * wake it: without a session open they fail at once as unreachable.
   */
  openInSession(d: DeviceRecord): Promise<DeviceAccess> {
    return DeviceAccess.open(d, this.riding);
  }

  /**
   * Every Inform: its xsi:types teach the model; a BOOT (or factory reset) means every learned
   * name must be confirmed again; a VALUE CHANGE of a <Table>NumberOfEntries means that table
   * changed.
   */
  async inform(device: DeviceRecord, inform: Inform): Promise<void> {
    const codes = inform.event.map((e) => e.eventCode);
    const model = await this.knowledge.model(device);
    model.learnTypes(inform.parameterList);
    if (codes.includes('0 BOOTSTRAP') || codes.includes('1 BOOT')) this.knowledge.markDeviceStale(device.deviceKey);
    else if (codes.includes('4 VALUE CHANGE')) {
      for (const p of inform.parameterList) {
        const m = /^(.*\.)([^.]+)NumberOfEntries$/.exec(p.name);
        if (m) this.knowledge.markDeviceStale(device.deviceKey, `${m[1]}${m[2]}.`);
      }
    }
    this.commands.deviceEvent({ kind: 'inform', deviceKey: device.deviceKey, inform });
    await this.knowledge.saveModel(model);
  }

  deviceEvent(e: DeviceEvent): void {
    this.commands.deviceEvent(e);
  }

  /**
   * GetRPCMethods (TR-069 A.3.1.1), once per model, queued before the first RPC the layer sends to
   * a device of the model: it rides the same session and never wakes a device on its own.
   */
  private async askRpcMethods(device: DeviceRecord, modelKey: string, scope: CallScope | undefined): Promise<void> {
    if (this.asking.has(modelKey)) return;
    this.asking.add(modelKey);
    try {
      // In the scope of the RPC it goes before: a collection's rides, a request's is traced with it.
      const out = await this.deps.port.enqueue(device.deviceKey, { method: 'GetRPCMethods' }, scope && { scope });
      const model = await this.knowledge.model(device);
      if (out.kind === 'response' && out.response.method === 'GetRPCMethodsResponse') model.setCap('rpcMethods', [...out.response.methodList]);
      else model.setCap('rpcMethods', []);
      if (model.caps.rpcMethods && !model.caps.rpcMethods.includes('SetParameterAttributes') && out.kind === 'response')
        model.setCap('setParameterAttributes', 'no');
      await this.knowledge.saveModel(model);
    } catch (e) {
      this.deps.log.debug({ endpointId: device.endpointId, err: (e as Error).message }, 'GetRPCMethods not answered');
    } finally {
      this.asking.delete(modelKey);
    }
  }

  /**
   * Values of parameters by their full names, as USP reads them (booleans true/false, secured
   * ones empty); names the device never listed are learned first, absent ones left out.
   */
  async readValues(device: DeviceRecord, names: readonly string[]): Promise<Record<string, string>> {
    const a = await this.open(device);
    const known: string[] = [];
    for (const n of names) if (await a.knownParam(n)) known.push(n);
    const out: Record<string, string> = {};
    for (const v of await a.gpv(known)) out[v.name] = isSecret(v.name) ? securedValue(v.type) : toUspValue(v.type, v.value);
    return out;
  }

  /** What was learned of the device's model (defaults when nothing yet). */
  async capabilities(device: DeviceRecord, now = Date.now()): Promise<LearnedCapabilities & { failures: RememberedFailure[] }> {
    const m = await this.knowledge.model(device);
    const failures = m.activeFailures(now);
    return { ...learnedCapabilities(m, this.access.opts.gpvBatchSize, failures), failures };
  }
}

/** The extension object mirrors parameters only: commands stay where the agent offers them. */
const NO_COMMANDS: CommandRunner = {
  commands: () => [],
  events: () => [],
  operate: async (_ctx, _d, commandPath) => ({ kind: 'error', errCode: 7026, errMsg: `${commandPath} is not a command of the extension object` }),
};

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export type { DeviceEvent } from './commands.js';
export type { LearnedCapabilities } from './capabilities.js';
