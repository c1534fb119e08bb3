/**
 * The vendor-extension object `Device.X_<VENDOR>_Native.` (extension.ts) as a DmBackend: paths are
 * rewritten to the native tree and served by a pass-through backend on the device's own root
 * (device2-backend.ts with root InternetGatewayDevice or Device), so Get, Set, Add, Delete,
 * GetInstances and GetSupportedDM follow the same RPC discipline as everywhere else. Commands and
 * events are not mirrored: they stay where the agent offers them (Device.Reboot() ...).
 */
import { EventEmitter } from 'node:events';
import type { RootModel } from '../store/types.js';
import type {
  AddOutcome,
  AtomicSetOutcome,
  DeleteOutcome,
  DmBackend,
  GetOptions,
  LazyModel,
  ObjectSchema,
  OperateOutcome,
  ParamSetting,
  RequestContext,
  SetOutcome,
} from '../usp/dm/types.js';
import type { CallScope } from '../usp/request-scope.js';
import type { DeviceBackendEvents } from './backend-base.js';
import type { Device2Backend } from './device2-backend.js';
import type { NativeExtension } from './extension.js';
import type { DeviceLookup } from './rpc-port.js';

export class ExtensionBackend extends EventEmitter<DeviceBackendEvents> implements DmBackend {
  readonly prefixes: readonly string[];
  readonly lazy: LazyModel;

  /** `inner`: a pass-through backend per root model, with nothing excluded and no commands. */
  constructor(
    private readonly ext: NativeExtension,
    private readonly devices: DeviceLookup,
    private readonly inner: Readonly<Record<RootModel, Device2Backend>>,
  ) {
    super();
    this.prefixes = [ext.prefix];
    for (const root of ['Device', 'InternetGatewayDevice'] as const) {
      inner[root].on('objectChange', (e) => {
        const path = ext.toUsp(root, e.path);
        if (path) this.emit('objectChange', { ...e, path });
      });
    }
    this.lazy = {
      exists: async (agentEid, p, scope) => {
        const at = await this.at(agentEid, p);
        if (!at) return false;
        if (at.top) return true;
        return this.inner[at.root].lazy.exists(agentEid, at.native, scope);
      },
      object: async (agentEid, p, scope) => {
        const at = await this.at(agentEid, p);
        if (!at) return null;
        if (at.top) return this.topObject();
        return this.rename(at.root, await this.inner[at.root].lazy.object(agentEid, at.native, scope));
      },
      objectsBelow: async (agentEid, p, opts, scope) => {
        const at = await this.at(agentEid, p);
        if (!at) return [];
        const out: ObjectSchema[] = at.top ? [this.topObject()] : [];
        for (const n of at.top ? this.ext.shadowed : [at.native]) {
          for (const o of await this.inner[at.root].lazy.objectsBelow(agentEid, n, opts, scope)) {
            const r = this.rename(at.root, o);
            if (r) out.push(r);
          }
        }
        return out;
      },
    };
  }

  private async rootOf(agentEid: string): Promise<RootModel | null> {
    return (await this.devices.deviceByEndpointId(agentEid))?.rootModel ?? null;
  }

  /**
   * Where an extension path lies on the agent's device. `top`: the extension object of a Device:2
   * device, which holds only the shadowed subtrees (the device's "Device." is the agent's own).
   */
  private async at(agentEid: string, path: string): Promise<{ root: RootModel; native: string; top: boolean } | null> {
    const root = await this.rootOf(agentEid);
    if (!root) return null;
    const native = this.ext.toNative(root, path);
    if (native === null) return null;
    return { root, native, top: root === 'Device' && native === 'Device.' };
  }

  private topObject(): ObjectSchema {
    return { path: this.ext.prefix, multiInstance: false, access: 'readOnly', params: [], commands: [], events: [], uniqueKeys: [] };
  }

  private rename(root: RootModel, o: ObjectSchema | null): ObjectSchema | null {
    if (!o) return null;
    const path = this.ext.toUsp(root, o.path);
    return path ? { ...o, path, commands: [], events: [] } : null;
  }

  private notHere(path: string): { errCode: number; errMsg: string } {
    return { errCode: 7026, errMsg: `${path} is not under ${this.ext.prefix} on this device` };
  }

  async supported(agentEid: string, scope?: CallScope): Promise<readonly ObjectSchema[]> {
    return this.lazy.objectsBelow(agentEid, this.ext.prefix, { types: true }, scope);
  }

  async instances(agentEid: string, tablePath: string, scope?: CallScope): Promise<number[] | null> {
    const at = await this.at(agentEid, tablePath);
    if (!at || at.top) return null;
    return this.inner[at.root].instances(agentEid, at.native, scope);
  }

  async get(agentEid: string, paths: readonly string[], opts?: GetOptions, scope?: CallScope): Promise<Map<string, string>> {
    const root = await this.rootOf(agentEid);
    const out = new Map<string, string>();
    if (!root) return out;
    const natives: string[] = [];
    for (const p of paths) {
      const n = this.ext.toNative(root, p);
      if (n === null) continue;
      if (root === 'Device' && n === 'Device.') natives.push(...this.ext.shadowed);
      else natives.push(n);
    }
    if (natives.length === 0) return out;
    for (const [k, v] of await this.inner[root].get(agentEid, natives, opts, scope)) {
      const u = this.ext.toUsp(root, k);
      if (u) out.set(u, v);
    }
    return out;
  }

  async searchValue(agentEid: string, paramPath: string, scope?: CallScope): Promise<string | undefined> {
    const at = await this.at(agentEid, paramPath);
    if (!at || at.top) return undefined;
    return this.inner[at.root].searchValue(agentEid, at.native, scope);
  }

  async set(ctx: RequestContext, objectPath: string, settings: readonly ParamSetting[]): Promise<SetOutcome> {
    const at = await this.at(ctx.agentEid, objectPath);
    if (!at || at.top) return { ok: false, ...this.notHere(objectPath), paramErrs: [] };
    return this.inner[at.root].set(ctx, at.native, settings);
  }

  async setAtomic(ctx: RequestContext, objects: readonly { objectPath: string; settings: readonly ParamSetting[] }[]): Promise<AtomicSetOutcome> {
    const root = await this.rootOf(ctx.agentEid);
    const back = new Map<string, string>();
    const natives: { objectPath: string; settings: readonly ParamSetting[] }[] = [];
    for (const o of objects) {
      const n = root ? this.ext.toNative(root, o.objectPath) : null;
      if (!root || n === null || (root === 'Device' && n === 'Device.')) return { ok: false, ...this.notHere(o.objectPath), failures: [] };
      back.set(n, o.objectPath);
      natives.push({ objectPath: n, settings: o.settings });
    }
    const r = await this.inner[root!].setAtomic(ctx, natives);
    if (r.ok) return { ok: true, results: r.results.map((x) => ({ ...x, objectPath: back.get(x.objectPath) ?? x.objectPath })) };
    return { ...r, failures: r.failures.map((x) => ({ ...x, objectPath: back.get(x.objectPath) ?? x.objectPath })) };
  }

  async add(ctx: RequestContext, tablePath: string, settings: readonly ParamSetting[]): Promise<AddOutcome> {
    const at = await this.at(ctx.agentEid, tablePath);
    if (!at || at.top) return { ok: false, ...this.notHere(tablePath), paramErrs: [] };
    return this.inner[at.root].add(ctx, at.native, settings);
  }

  async delete(ctx: RequestContext, instancePath: string): Promise<DeleteOutcome> {
    const at = await this.at(ctx.agentEid, instancePath);
    if (!at || at.top) return { ok: false, ...this.notHere(instancePath) };
    return this.inner[at.root].delete(ctx, at.native);
  }

  async operate(_ctx: RequestContext, commandPath: string): Promise<OperateOutcome> {
    return { kind: 'error', ...this.notHere(commandPath) };
  }
}
