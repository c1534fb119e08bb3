/**
 * Routes concrete paths to the backend that owns them (longest prefix), and merges the
 * backends' supported models into one Device: model per agent.
 */
import type { PathBackend } from '../path/index.js';
import type { CallScope } from '../request-scope.js';
import { toSchemaPath } from './memory.js';
import type { DmBackend, GetOptions, ObjectSchema } from './types.js';

export class DmRouter {
  constructor(private readonly backends: readonly DmBackend[]) {}

  /** The backend owning a concrete path: the longest prefix that the path starts with. */
  backendFor(path: string): DmBackend | null {
    let best: DmBackend | null = null;
    let len = -1;
    for (const b of this.backends) {
      for (const p of b.prefixes) {
        // "Device.X" also names the object "Device.X." (tested without building that string).
        if (p.length > len && (path.startsWith(p) || (p.length === path.length + 1 && p.endsWith('.') && p.startsWith(path)))) {
          best = b;
          len = p.length;
        }
      }
    }
    return best;
  }

  /** Backends with a prefix strictly below an object path (they contribute to a Get of it). */
  backendsBelow(objectPath: string): { backend: DmBackend; prefixes: string[] }[] {
    const out: { backend: DmBackend; prefixes: string[] }[] = [];
    for (const b of this.backends) {
      const prefixes = b.prefixes.filter((p) => p.startsWith(objectPath) && p !== objectPath && p.endsWith('.'));
      if (prefixes.length) out.push({ backend: b, prefixes });
    }
    return out;
  }

  /** Backends (other than the owner) whose prefixes name an element of this very object ("Device.ScheduleTimer()" for "Device."). */
  backendsTouching(objectPath: string): DmBackend[] {
    return this.backends.filter((b) => b.prefixes.some((p) => !p.endsWith('.') && p.startsWith(objectPath) && !p.slice(objectPath.length).includes('.')));
  }

  /** Backends with a prefix at or below an object path. */
  backendsBelowPath(objectPath: string): DmBackend[] {
    return this.backends.filter((b) => b.prefixes.some((p) => p.startsWith(objectPath)));
  }

  /** Backends a request on these paths touches: their owners, and for object paths the backends below. */
  backendsFor(paths: readonly string[]): DmBackend[] {
    const out = new Set<DmBackend>();
    for (const p of paths) {
      const owner = this.backendFor(p);
      if (owner) out.add(owner);
      if (p.endsWith('.')) for (const { backend } of this.backendsBelow(p)) out.add(backend);
    }
    return this.backends.filter((b) => out.has(b));
  }

  /**
   * The merged supported model: Map from "{i}" object path to its schema. With `forPaths`, only
   * the backends those paths touch are asked, so a request on Device.LocalAgent. never has to
   * load (or wake) the CWMP device.
   */
  async supported(agentEid: string, forPaths?: readonly string[], scope?: CallScope): Promise<Map<string, ObjectSchema>> {
    const merged = new Map<string, ObjectSchema>();
    for (const b of forPaths ? this.backendsFor(forPaths) : this.backends) {
      for (const o of await b.supported(agentEid, scope)) {
        const prev = merged.get(o.path);
        if (!prev) merged.set(o.path, o);
        else
          merged.set(o.path, {
            ...prev,
            params: [...prev.params, ...o.params.filter((p) => !prev.params.some((q) => q.name === p.name))],
            commands: [...prev.commands, ...o.commands.filter((c) => !prev.commands.some((q) => q.name === c.name))],
            events: [...prev.events, ...o.events.filter((e) => !prev.events.some((q) => q.name === e.name))],
          });
      }
    }
    return merged;
  }

  async instances(agentEid: string, tablePath: string, scope?: CallScope): Promise<number[] | null> {
    const b = this.backendFor(tablePath);
    return b ? b.instances(agentEid, tablePath, scope) : null;
  }

  async searchValue(agentEid: string, paramPath: string, scope?: CallScope): Promise<string | undefined> {
    const b = this.backendFor(paramPath);
    if (!b) return undefined;
    if (b.searchValue) return b.searchValue(agentEid, paramPath, scope);
    return (await b.get(agentEid, [paramPath], undefined, scope)).get(paramPath);
  }

  /** Values for concrete object/parameter paths across backends (object paths include whatever lies below). */
  get(agentEid: string, paths: readonly string[], opts?: GetOptions, scope?: CallScope): Promise<Map<string, string>> {
    // One parameter path of a static backend (a Get of Device.LocalAgent.EndpointID): its answer as
    // is, without grouping (a Map and a list per request, issue 22 item 2).
    if (paths.length === 1 && !paths[0]!.endsWith('.')) {
      const owner = this.backendFor(paths[0]!);
      if (owner?.staticModel) return owner.get(agentEid, paths, opts, scope);
    }
    const groups = new Map<DmBackend, string[]>();
    const add = (b: DmBackend, p: string): void => {
      const list = groups.get(b) ?? [];
      list.push(p);
      groups.set(b, list);
    };
    for (const p of paths) {
      const owner = this.backendFor(p);
      if (owner) add(owner, p);
      if (p.endsWith('.')) for (const { backend, prefixes } of this.backendsBelow(p)) if (backend !== owner) for (const q of prefixes) add(backend, q);
    }
    // One static backend (the proxy's own subtrees build a fresh map per call): its answer as is,
    // without the promises of merging.
    if (groups.size === 1) {
      const [b, list] = groups.entries().next().value as [DmBackend, string[]];
      if (b.staticModel) return b.get(agentEid, list, opts, scope);
    }
    return merged(groups, agentEid, opts, scope);
  }
}

async function merged(
  groups: Map<DmBackend, string[]>,
  agentEid: string,
  opts: GetOptions | undefined,
  scope: CallScope | undefined,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [b, list] of groups) for (const [k, v] of await b.get(agentEid, list, opts, scope)) out.set(k, v);
  return out;
}

/**
 * The agent's model as one USP request sees it: each question goes to the backend that owns the
 * path; lazy backends (a CWMP device) learn only what is asked, the others answer from their
 * supported model (read once per view). One view per request: answers are cached for its length.
 */
export interface ModelView {
  /** A supported path ("{i}" form) exists. */
  exists(supportedPath: string): Promise<boolean>;
  /** The supported object of a concrete or "{i}" object path ("Device.WiFi.SSID.3." -> its rows' schema). */
  object(objectPath: string): Promise<ObjectSchema | undefined>;
  /** Whether a concrete path names a table ("Device.WiFi.SSID."). */
  isTable(tablePath: string): Promise<boolean>;
  /** Supported objects directly below an object path ("{i}" form). */
  children(supportedObjectPath: string): Promise<ObjectSchema[]>;
  /** Supported objects at and below an object path, merged across backends, types resolved. */
  subtree(supportedObjectPath: string): Promise<ObjectSchema[]>;
}

export function modelView(router: DmRouter, agentEid: string, scope?: CallScope): ModelView {
  // Made when first needed: a request on the proxy's own subtrees needs neither (issue 22 item 2: allocations per Get).
  let full: Map<DmBackend, Promise<ReadonlyMap<string, ObjectSchema>>> | undefined;
  const fullOf = (b: DmBackend): Promise<ReadonlyMap<string, ObjectSchema>> => {
    full ??= new Map();
    let p = full.get(b);
    if (!p) {
      p = b.staticModel ? Promise.resolve(b.staticModel) : b.supported(agentEid, scope).then((list) => new Map(list.map((o) => [o.path, o])));
      full.set(b, p);
    }
    return p;
  };
  let exists: Map<string, Promise<boolean>> | undefined;
  const objectOf = async (schemaPath: string): Promise<ObjectSchema | undefined> => {
    const owner = router.backendFor(schemaPath);
    const own = !owner ? undefined : owner.lazy ? ((await owner.lazy.object(agentEid, schemaPath, scope)) ?? undefined) : (await fullOf(owner)).get(schemaPath);
    // Another backend may add to the same object (the proxy's Device.ScheduleTimer() on "Device.").
    let merged = own;
    for (const b of router.backendsTouching(schemaPath)) {
      if (b === owner) continue;
      const o = b.lazy ? await b.lazy.object(agentEid, schemaPath, scope) : (await fullOf(b)).get(schemaPath);
      if (o) merged = merged ? mergeObject(merged, o) : o;
    }
    return merged;
  };
  const below = async (schemaPath: string, types: boolean): Promise<ObjectSchema[]> => {
    const merged = new Map<string, ObjectSchema>();
    const add = (o: ObjectSchema): void => {
      if (!o.path.startsWith(schemaPath) && o.path !== schemaPath) return;
      const prev = merged.get(o.path);
      merged.set(o.path, prev ? mergeObject(prev, o) : o);
    };
    const backends = new Set<DmBackend>(router.backendsTouching(schemaPath));
    const owner = router.backendFor(schemaPath);
    if (owner) backends.add(owner);
    for (const b of router.backendsBelowPath(schemaPath)) backends.add(b);
    for (const b of backends) {
      if (b.lazy) {
        // A lazy backend answers for the part it owns: below a prefix of another backend it is not asked.
        if (b === owner || schemaPath === 'Device.' || b.prefixes.some((p) => p.startsWith(schemaPath))) {
          for (const o of await b.lazy.objectsBelow(agentEid, schemaPath, { types }, scope)) add(o);
        }
      } else for (const o of (await fullOf(b)).values()) add(o);
    }
    return [...merged.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  };
  return {
    exists(supportedPath) {
      let p = exists?.get(supportedPath);
      if (!p) {
        const owner = router.backendFor(supportedPath);
        // A static model answers at once (no async step per path asked, nothing worth remembering).
        if (!owner) return Promise.resolve(false);
        if (owner.staticModel) return Promise.resolve(hasSupportedPath(owner.staticModel, supportedPath));
        if (owner.lazy) {
          const lazy = owner.lazy;
          p = (async () => lazy.exists(agentEid, supportedPath, scope))();
        } else p = fullOf(owner).then((m) => hasSupportedPath(m, supportedPath));
        (exists ??= new Map()).set(supportedPath, p);
      }
      return p;
    },
    object: (objectPath) => objectOf(toSchemaPath(objectPath)),
    async isTable(tablePath) {
      return (await objectOf(toSchemaPath(tablePath) + '{i}.'))?.multiInstance === true;
    },
    async children(supportedObjectPath) {
      return (await below(supportedObjectPath, false)).filter((o) => isChildPath(supportedObjectPath, o.path));
    },
    subtree: (supportedObjectPath) => below(supportedObjectPath, true),
  };
}

/**
 * The agent's model as the path resolver needs it, with the request's view of the model. The view
 * asks each backend only about the paths the request touches (a CWMP device learns just those
 * names), so a request on Device.LocalAgent. never wakes the device.
 */
export function modelPaths(router: DmRouter, agentEid: string, scope?: CallScope): { backend: PathBackend; model: ModelView } {
  const model = modelView(router, agentEid, scope);
  const backend: PathBackend = {
    instances: (p) => router.instances(agentEid, p, scope),
    exists: (p) => model.exists(p),
    getValue: (p) => router.searchValue(agentEid, p, scope),
  };
  return { backend, model };
}

/** Direct child objects: one more name (or name + {i}) below. */
export function isChildPath(parent: string, path: string): boolean {
  const rest = path.slice(parent.length);
  return path.startsWith(parent) && (/^[^.{}]+\.$/.test(rest) || /^[^.{}]+\.\{i\}\.$/.test(rest));
}

function mergeObject(prev: ObjectSchema, o: ObjectSchema): ObjectSchema {
  return {
    ...prev,
    params: [...prev.params, ...o.params.filter((p) => !prev.params.some((q) => q.name === p.name))],
    commands: [...prev.commands, ...o.commands.filter((c) => !prev.commands.some((q) => q.name === c.name))],
    events: [...prev.events, ...o.events.filter((e) => !prev.events.some((q) => q.name === e.name))],
  };
}

/** Is the concrete path (object, parameter, command or event) in the supported model (by "{i}" object path)? */
export function hasSupportedPath(objects: ReadonlyMap<string, ObjectSchema>, concretePath: string): boolean {
  if (concretePath.endsWith('.')) return objects.has(toSchemaPath(concretePath)) || objects.has(toSchemaPath(concretePath) + '{i}.');
  const dot = concretePath.lastIndexOf('.');
  const o = objects.get(toSchemaPath(concretePath.slice(0, dot + 1)));
  if (!o) return false;
  const leaf = concretePath.slice(dot + 1);
  if (leaf.endsWith('()')) return o.commands.some((c) => c.name === leaf);
  if (leaf.endsWith('!')) return o.events.some((e) => e.name === leaf);
  return o.params.some((p) => p.name === leaf);
}

/** Schema lookups on a merged model. */
export class SupportedModel {
  constructor(readonly objects: ReadonlyMap<string, ObjectSchema>) {}

  object(concreteObjectPath: string): ObjectSchema | undefined {
    return this.objects.get(toSchemaPath(concreteObjectPath));
  }

  /** Is the concrete path (object, parameter, command or event) in the supported model? */
  has(concretePath: string): boolean {
    return hasSupportedPath(this.objects, concretePath);
  }

  isTable(concreteTablePath: string): boolean {
    return this.objects.get(toSchemaPath(concreteTablePath) + '{i}.')?.multiInstance === true;
  }

  /** Objects directly below an object path in the supported model ("{i}" notation). */
  children(schemaPath: string): ObjectSchema[] {
    const out: ObjectSchema[] = [];
    for (const o of this.objects.values()) {
      if (!o.path.startsWith(schemaPath) || o.path === schemaPath) continue;
      const rest = o.path.slice(schemaPath.length);
      if (/^[^.{}]+\.$/.test(rest) || /^[^.{}]+\.\{i\}\.$/.test(rest)) out.push(o);
    }
    return out;
  }
}
