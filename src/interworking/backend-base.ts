/**
 * What the Device:2 and the TR-098 backends share: finding the device behind an agent, opening its
 * DeviceAccess, Set of one object as a one-object atomic Set, and Delete through DeleteObject.
 * A backend supplies its root model and where a Device:2 instance lives on the device.
 */
import { EventEmitter } from 'node:events';
import type { DeviceRecord, RootModel } from '../store/types.js';
import type { CallScope } from '../usp/request-scope.js';
import type { AtomicSetOutcome, DeleteOutcome, ParamSetting, RequestContext, SetOutcome } from '../usp/dm/types.js';
import type { CommandRunner } from './commands.js';
import { type AccessContext, DeviceAccess } from './device-access.js';
import { toUspError } from './faults.js';
import type { DeviceLookup } from './rpc-port.js';
import { deleteOutcome, setOutcomeOf } from './set-plan.js';

export interface DeviceBackendEvents {
  /** An Add or Delete done through the proxy (ObjectCreation / ObjectDeletion notifications). */
  objectChange: [{ kind: 'add' | 'delete'; agentEid: string; path: string; uniqueKeys: Record<string, string> }];
}

export interface BackendBaseDeps {
  access: AccessContext;
  devices: DeviceLookup;
  commands: CommandRunner;
  /** Paths the proxy serves itself (Device.LocalAgent. ...): never taken from the device. */
  excludedPrefixes: readonly string[];
}

export abstract class CwmpBackendBase extends EventEmitter<DeviceBackendEvents> {
  readonly prefixes = ['Device.'];

  constructor(
    private readonly root: RootModel,
    private readonly base: BackendBaseDeps,
  ) {
    super();
  }

  /** The native instance behind a Device:2 instance path; null when there is none (nothing to delete). */
  protected abstract nativeInstance(a: DeviceAccess, uspInstancePath: string): Promise<string | null>;

  abstract setAtomic(ctx: RequestContext, objects: readonly { objectPath: string; settings: readonly ParamSetting[] }[]): Promise<AtomicSetOutcome>;

  protected excluded(path: string): boolean {
    return this.base.excludedPrefixes.some((p) => path.startsWith(p) || p === path);
  }

  protected async device(agentEid: string): Promise<DeviceRecord | null> {
    const d = await this.base.devices.deviceByEndpointId(agentEid);
    return d && d.rootModel === this.root ? d : null;
  }

  /** The device's RPC access for a call made in `scope` (src/usp/request-scope.ts). */
  protected async open(agentEid: string, scope: CallScope | undefined): Promise<DeviceAccess | null> {
    const d = await this.device(agentEid);
    return d ? DeviceAccess.open(d, this.base.access, scope) : null;
  }

  async set(ctx: RequestContext, objectPath: string, settings: readonly ParamSetting[]): Promise<SetOutcome> {
    return setOutcomeOf(await this.setAtomic(ctx, [{ objectPath, settings }]));
  }

  async delete(ctx: RequestContext, instancePath: string): Promise<DeleteOutcome> {
    try {
      const a = await this.open(ctx.agentEid, ctx.scope);
      if (!a) return { ok: false, errCode: 7026, errMsg: `no CWMP device behind ${ctx.agentEid}` };
      const native = await this.nativeInstance(a, instancePath);
      if (!native) return { ok: true, deleted: false };
      const r = await a.deleteObject(native);
      if (r === 'deleted') this.emit('objectChange', { kind: 'delete', agentEid: ctx.agentEid, path: instancePath, uniqueKeys: {} });
      return deleteOutcome(r, native);
    } catch (e) {
      const c = toUspError(e);
      return { ok: false, errCode: c.code, errMsg: c.message };
    }
  }
}
