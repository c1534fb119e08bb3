/**
 * One device's CWMP RPCs as the interworking layer uses them, with the RPC discipline that works
 * across real fleets:
 * - GetParameterValues carries explicit full names only, names the device listed in
 *   GetParameterNames (or, on a model that is known, names its model has), in batches of the
 *   model's batch size. A partial path is never sent (many CPE agents answer them badly or drop the
 *   connection).
 * - A batch the CPE faults with 9004/9002 or chokes on (drops the connection, times out) halves
 *   the model's batch size (remembered) and is asked again in the smaller form; a 9005/9003 on a
 *   batch is narrowed down by bisection, and a name the CPE refuses by its full name is remembered
 *   for that device and never asked again.
 * - Names are learned per object level (GetParameterNames NextLevel=true) or per subtree
 *   (NextLevel=false), only where a request needs them; a CPE that chokes on NextLevel=false is
 *   walked one level at a time (bounded). A failed learn is remembered per model with a back-off.
 * - Types come from the model's learned types, then the Broadband Forum data models; a parameter
 *   whose type is still unknown is read once (one GPV of exactly that name) before it is Set.
 * No I/O of its own: RPCs go through the RpcPort, knowledge through the KnowledgeBase.
 */
import type { AcsRequest, Fault, ParameterInfoStruct, ParameterValueStruct } from '../cwmp/types.js';
import type { Logger } from '../app/log.js';
import type { DeviceRecord } from '../store/types.js';
import { UspError } from '../usp/errors.js';
import { describeFault, isChokeFault, rpcErrorOf, toUspError, uspCodeOfCwmpFault, uspErrorOfRpc, type RpcFailure } from './faults.js';
import { type DeviceTree, leafOf, parentOf } from './knowledge/device-tree.js';
import type { KnowledgeBase } from './knowledge/knowledge-base.js';
import { type ModelProfile, schemaPathOf } from './knowledge/model-profile.js';
import { standardParameter } from './type-table.js';
import type { RpcOutcome, RpcPort } from './rpc-port.js';
import type { SpvResult } from './set-plan.js';
import { toCwmpValue } from './values.js';
import { RpcError } from '../cwmp/session.js';
import { type CallScope, sharedScope } from '../usp/request-scope.js';

/** RPCs that change nothing on the device: not worth sending once nobody waits for their answer. */
const READ_ONLY_RPCS: ReadonlySet<AcsRequest['method']> = new Set(['GetParameterValues', 'GetParameterNames', 'GetParameterAttributes']);

export interface AccessOptions {
  /** Upper bound of names per GetParameterValues (the model's learned size may be lower). */
  gpvBatchSize: number;
  /** Learned names are trusted for this long (ms); then learned again before use. */
  namesTtlMs: number;
  /** A NextLevel=true walk stops after this many objects (bad input: a CPE that never ends). */
  walkMaxObjects: number;
  /** Names one GetParameterNames answer may carry before it is refused as bad input. */
  maxNames: number;
  /**
   * 'never' (default): GetParameterValues always carries explicit names. 'probe': a whole object
   * may be asked as one partial path on a model that has not failed one; the answer is checked
   * against the names learned with GetParameterNames, and any fault, drop, timeout or missing
   * name turns the capability off for the model (remembered) and the names are asked again.
   */
  partialPaths: 'never' | 'probe';
}

export const DEFAULT_ACCESS_OPTIONS: AccessOptions = {
  gpvBatchSize: 32,
  namesTtlMs: 300_000,
  walkMaxObjects: 20_000,
  maxNames: 200_000,
  partialPaths: 'never',
};

/** What DeviceAccess instances share: the port, the knowledge, and learns in flight. */
export interface AccessContext {
  readonly port: RpcPort;
  readonly knowledge: KnowledgeBase;
  readonly opts: AccessOptions;
  readonly log: Logger;
  now(): number;
  /** Learns in flight, per device and path: concurrent requests share one GetParameterNames. */
  readonly inflight: Map<string, Promise<boolean>>;
  /** Called before the first RPC of a request, in its scope (the layer may queue something to ride the same session). */
  firstUse?(d: DeviceRecord, model: ModelProfile, scope: CallScope | undefined): void;
  /** Logs a peer's oddity once per key (bounded), at warn. */
  warnOnce(key: string, fields: Record<string, unknown>, msg: string): void;
}

/** The model root object of a device ("Device." or "InternetGatewayDevice."). */
export function rootOf(d: DeviceRecord): string {
  return `${d.rootModel}.`;
}

export class DeviceAccess {
  private used = false;

  /** `scope`: what this access's RPCs are made for (src/usp/request-scope.ts); absent: no request, no collection. */
  constructor(
    readonly device: DeviceRecord,
    readonly tree: DeviceTree,
    readonly model: ModelProfile,
    private readonly ctx: AccessContext,
    readonly scope?: CallScope,
  ) {}

  static async open(d: DeviceRecord, ctx: AccessContext, scope?: CallScope): Promise<DeviceAccess> {
    const model = await ctx.knowledge.model(d);
    const tree = await ctx.knowledge.tree(d);
    return new DeviceAccess(d, tree, model, ctx, scope);
  }

  private get freshAfter(): number {
    return this.ctx.now() - this.ctx.opts.namesTtlMs;
  }

  private get log(): Logger {
    return this.ctx.log;
  }

  // ------------------------------------------------------------------ raw RPCs

  /**
   * One RPC; an RpcError (unreachable, dropped, timed out) is thrown as is. A read-only RPC of a
   * USP request whose answer can no longer be delivered (its controller's connection closed) is
   * not enqueued: RpcError 'cancelled'.
   */
  callRaw(rpc: AcsRequest): Promise<RpcOutcome> {
    return this.send(rpc, this.scope);
  }

  /** callRaw() in a given scope: the access's own, or that of work shared by several requests. */
  private send(rpc: AcsRequest, scope: CallScope | undefined): Promise<RpcOutcome> {
    // Not an async function: the port's promise is handed on as it is, one wrapper fewer between
    // the CPE's answer and the USP one (issue 22 item 2); a throw is still a rejection.
    try {
      const signal = scope?.signal;
      const readOnly = READ_ONLY_RPCS.has(rpc.method);
      if (signal?.aborted && readOnly) {
        throw new RpcError(
          'cancelled',
          `${rpc.method} not sent: the controller that asked is gone (${String((signal.reason as Error)?.message ?? signal.reason)})`,
        );
      }
      if (!this.used) {
        this.used = true;
        this.ctx.firstUse?.(this.device, this.model, scope);
      }
      // A read-only RPC still queued when its controller goes is dropped from the queue too.
      return this.ctx.port.enqueue(this.device.deviceKey, rpc, scope && { signal: readOnly ? signal : undefined, scope });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** One RPC; delivery failures become UspErrors that say what happened (7002 unreachable, 7003 ...). */
  async call(rpc: AcsRequest): Promise<RpcOutcome> {
    try {
      return await this.callRaw(rpc);
    } catch (e) {
      const f = rpcErrorOf(e);
      if (!f) throw e;
      const c = uspErrorOfRpc(e);
      throw new UspError(c.errCode, c.errMsg);
    }
  }

  // ------------------------------------------------------------------ learning names

  /** Knowledge of the object's direct names; false when the object does not exist on the device. */
  learnLevel(objectPath: string): Promise<boolean> {
    if (this.tree.knowsLevel(objectPath, this.freshAfter)) return Promise.resolve(this.tree.hasObject(objectPath) || objectPath === rootOf(this.device));
    return this.shared(`L|${objectPath}`, async (scope) => {
      const infos = await this.gpn(objectPath, true, scope).catch((e: unknown) => {
        throw toUspError(e);
      });
      if (infos === null) {
        if (this.tree.hasObject(objectPath)) this.tree.removeInstance(objectPath);
        return false;
      }
      const ignored = this.tree.learnLevel(objectPath, infos, this.ctx.now());
      if (ignored) this.oddity('gpn-extra', `${ignored} names outside ${objectPath} in a GetParameterNames NextLevel=true answer were ignored`);
      this.model.learnNames(infos);
      await this.save();
      return true;
    });
  }

  /**
   * A concrete object exists on the device: known from its parent's level when that is known,
   * else asked directly (a GetParameterNames of a path that does not exist is a 9005, TR-069 A.3.2.3).
   */
  async objectExists(objectPath: string): Promise<boolean> {
    if (objectPath === rootOf(this.device)) return true;
    const parent = parentOf(objectPath);
    if (this.tree.knowsLevel(parent, this.freshAfter)) return this.tree.node(parent)?.objects.includes(leafOf(objectPath)) ?? false;
    return this.learnLevel(objectPath);
  }

  /** Knowledge of every name at and below the object; false when it does not exist on the device. */
  learnSubtree(root: string): Promise<boolean> {
    if (this.tree.knowsSubtree(root, this.freshAfter)) return Promise.resolve(this.tree.hasObject(root));
    return this.shared(`S|${root}`, async (scope) => {
      const what = `GetParameterNames ${root} NextLevel=false`;
      const failed = this.model.failing(what, this.ctx.now());
      if (failed) {
        throw new UspError(
          7003,
          `learning the names under ${root} failed on this device model (${failed.reason}); the proxy tries again after ${new Date(failed.until).toISOString()}`,
        );
      }
      const isRoot = root === rootOf(this.device);
      let infos: ParameterInfoStruct[] | null;
      if (isRoot && this.model.caps.rootNextLevelFalse === 'no') {
        infos = await this.walk(root, scope).catch((e: unknown) => {
          this.remember(what, e);
          throw toUspError(e);
        });
      } else {
        try {
          infos = await this.gpn(root, false, scope);
          if (isRoot) this.model.setCap('rootNextLevelFalse', 'yes');
        } catch (e) {
          const f = chokeOf(e);
          if (!f) {
            this.remember(what, e);
            throw toUspError(e);
          }
          // TR-069 A.3.2.3 lets an ACS ask one level at a time: a CPE that cannot list a whole subtree is walked.
          this.log.warn(
            { endpointId: this.device.endpointId, rpc: what, reason: f.reason },
            'the CPE choked on a GetParameterNames of a whole subtree: walking it one level at a time',
          );
          if (isRoot) this.model.setCap('rootNextLevelFalse', 'no');
          try {
            infos = await this.walk(root, scope);
          } catch (e2) {
            this.remember(what, e2);
            throw toUspError(e2);
          }
        }
      }
      this.model.succeeded(what);
      if (infos === null) {
        if (this.tree.hasObject(root)) this.tree.removeInstance(root);
        return false;
      }
      const ignored = this.tree.learnSubtree(root, infos, this.ctx.now());
      if (ignored) this.oddity('gpn-extra', `${ignored} names outside ${root} in a GetParameterNames answer were ignored`);
      this.model.learnNames(infos);
      if (isRoot) this.model.rootComplete = true;
      await this.save();
      return true;
    });
  }

  /** A new instance (after AddObject): its own names only (TR-069 A.3.2.3 on the instance path). */
  async learnNewInstance(instancePath: string): Promise<void> {
    const infos = await this.gpn(instancePath, false, this.scope).catch((e: unknown) => {
      throw toUspError(e);
    });
    if (infos === null) return;
    this.tree.addInstance(instancePath, infos, this.ctx.now());
    this.model.learnNames(infos);
    await this.save();
  }

  /** After DeleteObject. */
  async forgetInstance(instancePath: string): Promise<void> {
    this.tree.removeInstance(instancePath);
    await this.save();
  }

  /**
   * GetParameterNames; null when the CPE says the path does not exist (9005). Other faults and
   * delivery failures are thrown (UspError, or RpcError for chokes so that callers can fall back).
   */
  async gpn(path: string, nextLevel: boolean, scope: CallScope | undefined): Promise<ParameterInfoStruct[] | null> {
    const out = await this.send({ method: 'GetParameterNames', parameterPath: path, nextLevel }, scope).catch((e: unknown) => {
      if (chokeOf(e)) throw e;
      const c = uspErrorOfRpc(e);
      throw new DeliveryError(c.errCode, c.errMsg);
    });
    if (out.kind === 'fault') {
      if (out.fault.faultCode === 9005) return null;
      throw new FaultError(out.fault, `GetParameterNames ${path} NextLevel=${nextLevel}`);
    }
    if (out.response.method !== 'GetParameterNamesResponse') throw new UspError(7003, `unexpected ${out.response.method} to GetParameterNames`);
    const list = out.response.parameterList;
    if (list.length > this.ctx.opts.maxNames) {
      throw new UspError(7005, `the CPE listed ${list.length} names under ${path}, more than the proxy accepts (${this.ctx.opts.maxNames})`);
    }
    return list;
  }

  /** Walks a subtree with NextLevel=true, one object at a time (bounded). */
  private async walk(root: string, scope: CallScope | undefined): Promise<ParameterInfoStruct[] | null> {
    const first = await this.gpn(root, true, scope);
    if (first === null) return null;
    const out: ParameterInfoStruct[] = [];
    const queue: ParameterInfoStruct[][] = [first];
    let objects = 1;
    const seen = new Set<string>([root]);
    while (queue.length) {
      const level = queue.shift()!;
      for (const info of level) {
        out.push(info);
        if (!info.name.endsWith('.') || seen.has(info.name) || !info.name.startsWith(root)) continue;
        seen.add(info.name);
        if (++objects > this.ctx.opts.walkMaxObjects) {
          throw new UspError(7005, `walking ${root} stopped after ${this.ctx.opts.walkMaxObjects} objects`);
        }
        const below = await this.gpn(info.name, true, scope);
        if (below) queue.push(below.filter((b) => b.name !== info.name));
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ reading values

  /**
   * Is this parameter worth asking for by its full name? true: the device listed it (or its model
   * has it and the device's object is not known yet); false: known absent or refused.
   */
  async knownParam(paramPath: string): Promise<boolean> {
    if (this.tree.isRefused(paramPath)) return false;
    const parent = parentOf(paramPath);
    if (this.tree.knowsLevel(parent, this.freshAfter)) return this.tree.hasParam(paramPath);
    if (this.model.hasParam(schemaPathOf(paramPath))) return true;
    if (!(await this.learnLevel(parent))) return false;
    return this.tree.hasParam(paramPath);
  }

  /** Names confirmed by this device (its own GetParameterNames), not only by its model. */
  private confirmed(name: string): boolean {
    return this.tree.knowsLevel(parentOf(name), this.freshAfter) && this.tree.hasParam(name);
  }

  /**
   * GetParameterValues of explicit names, in batches. Names the device refuses are left out of
   * the answer (and remembered); types are learned from the answer.
   */
  async gpv(names: readonly string[]): Promise<ParameterValueStruct[]> {
    const wanted = [...new Set(names)].filter((n) => !n.endsWith('.') && !this.tree.isRefused(n));
    const out: ParameterValueStruct[] = [];
    let i = 0;
    while (i < wanted.length) {
      const size = Math.max(1, Math.min(this.model.caps.gpvBatch, this.ctx.opts.gpvBatchSize));
      const chunk = wanted.slice(i, i + size);
      i += chunk.length;
      out.push(...(await this.gpvChunk(chunk)));
    }
    if (out.length) this.model.learnTypes(out);
    if (this.model.dirty) await this.ctx.knowledge.saveModel(this.model);
    return out;
  }

  /**
   * Every parameter of an object whose names are known: one partial-path GetParameterValues when
   * the policy and the model allow it and it saves round trips, else explicit names in batches.
   */
  async gpvObject(objectPath: string, names: readonly string[]): Promise<ParameterValueStruct[]> {
    const batch = Math.max(1, Math.min(this.model.caps.gpvBatch, this.ctx.opts.gpvBatchSize));
    if (this.ctx.opts.partialPaths !== 'probe' || this.model.caps.partialPaths === 'no' || names.length <= batch) return this.gpv(names);
    const fallback = (reason: string): Promise<ParameterValueStruct[]> => {
      this.model.setCap('partialPaths', 'no');
      this.log.warn(
        { endpointId: this.device.endpointId, model: this.model.key, path: objectPath, reason },
        'the CPE does not answer GetParameterValues of a partial path correctly: explicit names from now on for this device model',
      );
      return this.gpv(names);
    };
    let out: RpcOutcome;
    try {
      out = await this.callRaw({ method: 'GetParameterValues', parameterNames: [objectPath] });
    } catch (e) {
      const f = chokeOf(e);
      if (!f) throw toUspError(e);
      return fallback(f.reason);
    }
    if (out.kind === 'fault') return fallback(describeFault(out.fault));
    if (out.response.method !== 'GetParameterValuesResponse') return fallback(`unexpected ${out.response.method}`);
    const got = new Map(out.response.parameterList.filter((p) => p.name.startsWith(objectPath)).map((p) => [p.name, p]));
    const missing = names.filter((n) => !got.has(n));
    if (missing.length) return fallback(`${missing.length} of the ${names.length} names below ${objectPath} missing from the answer`);
    if (this.model.caps.partialPaths !== 'yes') {
      this.model.setCap('partialPaths', 'yes');
      this.log.info({ endpointId: this.device.endpointId, model: this.model.key }, 'the CPE answers GetParameterValues of partial paths correctly');
    }
    const list = names.map((n) => got.get(n)!);
    this.model.learnTypes(list);
    if (this.model.dirty) await this.ctx.knowledge.saveModel(this.model);
    return list;
  }

  private async gpvChunk(names: string[]): Promise<ParameterValueStruct[]> {
    let out: RpcOutcome;
    try {
      out = await this.callRaw({ method: 'GetParameterValues', parameterNames: names });
    } catch (e) {
      const f = chokeOf(e);
      if (!f) {
        const c = uspErrorOfRpc(e);
        throw new UspError(c.errCode, c.errMsg);
      }
      return this.afterChoke(names, f.reason, f.dropped);
    }
    if (out.kind === 'fault') {
      const code = out.fault.faultCode;
      if (isChokeFault(code) && names.length > 1) return this.afterChoke(names, describeFault(out.fault), false);
      if (code === 9005 || code === 9003) {
        // One unknown name fails the whole request (TR-069 A.3.2.2): narrow it down.
        if (names.length === 1) {
          this.refuse(names[0]!, describeFault(out.fault));
          return [];
        }
        const half = Math.ceil(names.length / 2);
        return [...(await this.gpvChunk(names.slice(0, half))), ...(await this.gpvChunk(names.slice(half)))];
      }
      throw new UspError(uspCodeOfCwmpFault(code), `GetParameterValues failed: ${describeFault(out.fault)}`);
    }
    if (out.response.method !== 'GetParameterValuesResponse') throw new UspError(7003, `unexpected ${out.response.method} to GetParameterValues`);
    const asked = new Set(names);
    const list = out.response.parameterList.filter((p) => asked.has(p.name));
    if (list.length !== out.response.parameterList.length) {
      this.oddity('gpv-extra', `${out.response.parameterList.length - list.length} parameters not asked for were ignored in a GetParameterValues answer`);
    }
    if (list.length < names.length)
      this.oddity('gpv-short', `a GetParameterValues answer lacked ${names.length - list.length} of the ${names.length} names asked`);
    for (const p of list) {
      const bad = typeMismatch(p.type, p.value);
      if (bad) this.oddity(`type|${schemaPathOf(p.name)}`, `${p.name}: ${bad} (passed on as the device sent it)`);
    }
    return list;
  }

  /**
   * The CPE faulted (9004/9002) or choked (dropped the connection, timed out) on a batch. Names it
   * never listed come first: learn their objects and ask again without the absent ones. A batch of
   * confirmed names is too long for this model: halve the model's batch size and ask again.
   */
  private async afterChoke(names: string[], reason: string, dropped: boolean): Promise<ParameterValueStruct[]> {
    const unconfirmed = names.filter((n) => !this.confirmed(n));
    if (unconfirmed.length) {
      for (const parent of new Set(unconfirmed.map(parentOf))) await this.learnLevel(parent);
      const keep = names.filter((n) => this.tree.hasParam(n));
      for (const n of names) if (!keep.includes(n)) this.tree.refuse(n);
      if (keep.length < names.length) return keep.length ? this.gpvChunk(keep) : [];
    }
    if (names.length === 1) {
      if (dropped) {
        this.refuse(names[0]!, reason);
        return [];
      }
      throw new UspError(7003, `the device did not answer GetParameterValues of ${names[0]}: ${reason}`);
    }
    const half = Math.ceil(names.length / 2);
    const before = this.model.caps.gpvBatch;
    if (half < before) {
      this.model.setCap('gpvBatch', half);
      this.log.warn(
        { endpointId: this.device.endpointId, model: this.model.key, from: before, to: half, reason },
        'the CPE refused a GetParameterValues of this many names: smaller batches for this device model',
      );
    }
    return [...(await this.gpvChunk(names.slice(0, half))), ...(await this.gpvChunk(names.slice(half)))];
  }

  private refuse(name: string, reason: string): void {
    this.tree.refuse(name);
    this.oddity(`refused|${name}`, `the device refused ${name} (${reason}); it will not be asked again until it boots`);
  }

  // ------------------------------------------------------------------ types and Set

  /** xsi:type for SetParameterValues: learned, else the standard's, else read the parameter once. */
  async typesFor(names: readonly string[]): Promise<Map<string, string>> {
    const types = new Map<string, string>();
    const unknown: string[] = [];
    for (const n of names) {
      const t = this.model.typeOf(n) ?? standardParameter(n)?.type;
      if (t) types.set(n, t);
      else unknown.push(n);
    }
    if (unknown.length) {
      for (const v of await this.gpv(unknown)) types.set(v.name, v.type);
    }
    return types;
  }

  /**
   * One SetParameterValues (TR-069 A.3.2.1). xsi:types: the device model's, else the given ones
   * (a mapping's), else the standard's, else read once (typesFor). Booleans go as true/false.
   */
  async setParameterValues(list: readonly { name: string; value: string }[], given: ReadonlyMap<string, string> = new Map()): Promise<SpvResult> {
    const types = await this.typesFor(list.map((l) => l.name).filter((n) => !this.model.typeOf(n) && !given.has(n)));
    const out = await this.call({
      method: 'SetParameterValues',
      parameterList: list.map(({ name, value }) => {
        const type = this.model.typeOf(name) ?? given.get(name) ?? types.get(name) ?? 'xsd:string';
        return { name, value: toCwmpValue(type, value), type };
      }),
      parameterKey: '',
    });
    if (out.kind === 'response') return { ok: true };
    return {
      ok: false,
      errCode: uspCodeOfCwmpFault(out.fault.faultCode),
      errMsg: `SetParameterValues refused: ${describeFault(out.fault)}`,
      perParam: out.fault.setParameterValuesFault,
    };
  }

  /**
   * DeleteObject of an instance; what the device knew of it is forgotten when it is gone. A missing
   * instance (9005) is 'absent': success with nothing affected (TR-369 R-DEL.1, as obuspa answers).
   */
  async deleteObject(instancePath: string): Promise<'deleted' | 'absent' | Fault> {
    const out = await this.call({ method: 'DeleteObject', objectName: instancePath, parameterKey: '' });
    if (out.kind === 'response' || out.fault.faultCode === 9005) await this.forgetInstance(instancePath);
    if (out.kind === 'response') return 'deleted';
    return out.fault.faultCode === 9005 ? 'absent' : out.fault;
  }

  /** Writable per what the device said in GetParameterNames, else the standard; undefined: unknown. */
  writable(paramPath: string): boolean | undefined {
    return this.model.writableOf(paramPath) ?? standardParameter(paramPath)?.writable;
  }

  // ------------------------------------------------------------------ internals

  /** `job` runs once for every request that needs it meanwhile, its RPCs in the scope of shared work. */
  private shared(id: string, job: (scope: CallScope | undefined) => Promise<boolean>): Promise<boolean> {
    const key = `${this.device.deviceKey}|${id}`;
    let p = this.ctx.inflight.get(key);
    if (!p) {
      // Shared by every request that needs it: it must not end with the request that started it.
      p = job(sharedScope(this.scope)).finally(() => this.ctx.inflight.delete(key));
      this.ctx.inflight.set(key, p);
    }
    return p;
  }

  private remember(what: string, e: unknown): void {
    // An unreachable device says nothing about its model.
    if (e instanceof DeliveryError) return;
    const reason = e instanceof FaultError ? describeFault(e.fault) : e instanceof Error ? e.message : String(e);
    const f = this.model.fail(what, reason, this.device.deviceKey, this.ctx.now());
    this.log.warn(
      { endpointId: this.device.endpointId, model: this.model.key, rpc: what, reason, retryAfter: new Date(f.until).toISOString() },
      'learning device names failed; requests that need them fail fast until the retry time',
    );
  }

  private oddity(kind: string, msg: string): void {
    this.ctx.warnOnce(`${this.device.deviceKey}|${kind}`, { endpointId: this.device.endpointId }, msg);
  }

  private async save(): Promise<void> {
    await this.ctx.knowledge.save(this.device, this.tree, this.model);
  }
}

/** The RPC could not be delivered (device unreachable, shutdown): nothing learned about the model. */
class DeliveryError extends UspError {}

/** A cwmp Fault during learning, kept as data for the message. */
export class FaultError extends UspError {
  constructor(
    readonly fault: Fault,
    what: string,
  ) {
    super(uspCodeOfCwmpFault(fault.faultCode), `${what} failed: ${describeFault(fault)}`);
  }
}

/** A value that does not fit its xsi:type (TR-106 3.2): the reason, or null. */
function typeMismatch(type: string, value: string): string | null {
  switch (type) {
    case 'xsd:boolean':
      return /^(true|false|0|1)$/i.test(value.trim()) ? null : `"${value}" is not an xsd:boolean`;
    case 'xsd:int':
    case 'xsd:long':
      return /^-?\d+$/.test(value.trim()) ? null : `"${value}" is not an ${type}`;
    case 'xsd:unsignedInt':
    case 'xsd:unsignedLong':
      return /^\d+$/.test(value.trim()) ? null : `"${value}" is not an ${type}`;
    default:
      return null;
  }
}

/** A delivery failure or fault that means "this CPE cannot do that", as opposed to "unreachable". */
function chokeOf(e: unknown): RpcFailure | null {
  if (e instanceof FaultError) return isChokeFault(e.fault.faultCode) ? { reason: describeFault(e.fault), dropped: false } : null;
  const f = rpcErrorOf(e);
  return f?.choke ? f : null;
}
