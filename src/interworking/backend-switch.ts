/**
 * The device backend of every agent: Device:2 devices pass through (device2-backend.ts), TR-098
 * devices go through the mapping (tr098-backend.ts). Chosen per agent from the device registry.
 */
import type { AtomicSetOutcome, DmBackend, GetOptions, LazyModel, ObjectSchema, ParamSetting, RequestContext } from '../usp/dm/types.js';
import type { CallScope } from '../usp/request-scope.js';
import type { DeviceLookup } from './rpc-port.js';

export class DeviceBackendSwitch implements DmBackend {
  readonly prefixes = ['Device.'];
  readonly lazy: LazyModel;

  constructor(
    private readonly devices: DeviceLookup,
    private readonly device2: DmBackend,
    private readonly tr098: DmBackend,
  ) {
    this.lazy = {
      exists: async (agentEid, p, scope) => {
        const b = await this.pick(agentEid);
        return b.lazy ? b.lazy.exists(agentEid, p, scope) : hasIn(await b.supported(agentEid, scope), p);
      },
      object: async (agentEid, p, scope) => {
        const b = await this.pick(agentEid);
        return b.lazy ? b.lazy.object(agentEid, p, scope) : ((await b.supported(agentEid, scope)).find((o) => o.path === p) ?? null);
      },
      objectsBelow: async (agentEid, p, opts, scope) => {
        const b = await this.pick(agentEid);
        return b.lazy ? b.lazy.objectsBelow(agentEid, p, opts, scope) : (await b.supported(agentEid, scope)).filter((o) => o.path.startsWith(p));
      },
    };
  }

  private async pick(agentEid: string): Promise<DmBackend> {
    const d = await this.devices.deviceByEndpointId(agentEid);
    return d?.rootModel === 'InternetGatewayDevice' ? this.tr098 : this.device2;
  }

  async supported(agentEid: string, scope?: CallScope) {
    return (await this.pick(agentEid)).supported(agentEid, scope);
  }
  async instances(agentEid: string, tablePath: string, scope?: CallScope) {
    return (await this.pick(agentEid)).instances(agentEid, tablePath, scope);
  }
  async get(agentEid: string, paths: readonly string[], opts?: GetOptions, scope?: CallScope) {
    return (await this.pick(agentEid)).get(agentEid, paths, opts, scope);
  }
  async searchValue(agentEid: string, paramPath: string, scope?: CallScope) {
    const b = await this.pick(agentEid);
    return b.searchValue ? b.searchValue(agentEid, paramPath, scope) : (await b.get(agentEid, [paramPath], undefined, scope)).get(paramPath);
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

function hasIn(model: readonly ObjectSchema[], p: string): boolean {
  if (p.endsWith('.')) return model.some((o) => o.path === p || o.path === `${p}{i}.`);
  const dot = p.lastIndexOf('.');
  const o = model.find((x) => x.path === p.slice(0, dot + 1));
  const leaf = p.slice(dot + 1);
  if (!o) return false;
  if (leaf.endsWith('()')) return o.commands.some((c) => c.name === leaf);
  if (leaf.endsWith('!')) return o.events.some((e) => e.name === leaf);
  return o.params.some((x) => x.name === leaf);
}
