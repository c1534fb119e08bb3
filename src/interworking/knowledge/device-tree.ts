/**
 * The instantiated names of one CWMP device, as far as the proxy has learned them with
 * GetParameterNames (TR-069 A.3.2.3). Pure data, no I/O.
 *
 * Names are kept per object: each concrete object path ("Device.WiFi.SSID.3.") holds the names of
 * its parameters and of its child objects ("SSID", "3"). The lists are interned per device model
 * (rows of one table mostly have the same names), so a device costs about one map entry per object.
 *
 * Knowledge comes in two depths, each with the time it was learned:
 * - level: GetParameterNames(object, NextLevel=true) told the object's direct parameters and
 *   children (cheap: what a Get of one parameter or a table's instance list needs);
 * - subtree: GetParameterNames(object, NextLevel=false) told every name at and below the object.
 * Nothing outside a learned level or subtree is asserted: unknown is not absent.
 */

/** Interns name lists: equal lists share one frozen array (one interner per device model). */
export class Interner {
  private readonly lists = new Map<string, readonly string[]>();

  intern(list: readonly string[]): readonly string[] {
    if (list.length === 0) return EMPTY;
    const key = list.join('\n');
    let hit = this.lists.get(key);
    if (!hit) {
      hit = Object.freeze([...list]);
      this.lists.set(key, hit);
    }
    return hit;
  }

  get size(): number {
    return this.lists.size;
  }
}

const EMPTY: readonly string[] = Object.freeze([]);

/** One object of the device: its parameter names and child object names, sorted. */
export interface TreeNode {
  readonly params: readonly string[];
  readonly objects: readonly string[];
}

interface Coverage {
  /** Epoch ms when the object's own level was last learned (0: stale or never). */
  levelAt: number;
  /** Epoch ms when its whole subtree was last learned (0: stale or never). */
  deepAt: number;
}

/** The serialised form kept in the store (kind 'device'). */
export interface DeviceTreeJson {
  v: 1;
  /** object path -> [parameter names, child object names] */
  nodes: Record<string, [string[], string[]]>;
  /** object path -> [level learned at (ms), subtree learned at (ms)]; 0: stale or never */
  coverage: Record<string, [number, number]>;
  refused: string[];
}

/** Names in GetParameterNames answers: objects end with '.', parameters do not. */
export interface LearnedName {
  name: string;
  writable?: boolean;
}

const isObject = (name: string): boolean => name.endsWith('.');

/** "Device.WiFi.SSID.3.Enable" -> "Device.WiFi.SSID.3."; "Device.WiFi.SSID.3." -> "Device.WiFi.SSID.". */
export function parentOf(path: string): string {
  const body = isObject(path) ? path.slice(0, -1) : path;
  return body.slice(0, body.lastIndexOf('.') + 1);
}

/** Last segment: "Enable" of a parameter, "3" of "Device.WiFi.SSID.3.". */
export function leafOf(path: string): string {
  const body = isObject(path) ? path.slice(0, -1) : path;
  return body.slice(body.lastIndexOf('.') + 1);
}

export class DeviceTree {
  private readonly nodes = new Map<string, TreeNode>();
  private readonly coverage = new Map<string, Coverage>();
  /** Names the device refused (9005) although asked by their full name: never asked again. */
  private readonly refusedNames = new Set<string>();
  /** Bumped on every change: views built from the tree (a TR-098 mapping) know when to rebuild. */
  version = 0;

  constructor(private readonly interner: Interner) {}

  // ------------------------------------------------------------------ learning

  /**
   * GetParameterNames(objectPath, NextLevel=true) answered `names`: the object's direct
   * parameters and child objects. Names outside the object's level are ignored (the caller logs).
   * A child object that disappeared loses what was known below it.
   */
  learnLevel(objectPath: string, names: readonly LearnedName[], now: number): number {
    const params: string[] = [];
    const objects: string[] = [];
    let ignored = 0;
    for (const { name } of names) {
      if (name === objectPath) continue;
      if (!name.startsWith(objectPath) || parentOf(name) !== objectPath || name.length === objectPath.length) {
        ignored++;
        continue;
      }
      (isObject(name) ? objects : params).push(leafOf(name));
    }
    const before = this.nodes.get(objectPath);
    const next = this.makeNode(params, objects);
    if (before) for (const child of before.objects) if (!next.objects.includes(child)) this.dropSubtree(`${objectPath}${child}.`);
    this.nodes.set(objectPath, next);
    this.linkToParent(objectPath);
    const cov = this.coverage.get(objectPath);
    this.coverage.set(objectPath, { levelAt: now, deepAt: cov?.deepAt ?? 0 });
    this.version++;
    return ignored;
  }

  /**
   * GetParameterNames(root, NextLevel=false) answered `names`: every object and parameter at and
   * below root. Replaces what was known below root. Returns the number of names ignored (outside root).
   */
  learnSubtree(root: string, names: readonly LearnedName[], now: number): number {
    const building = new Map<string, { params: Set<string>; objects: Set<string> }>();
    const ensure = (obj: string): { params: Set<string>; objects: Set<string> } => {
      let b = building.get(obj);
      if (!b) {
        b = { params: new Set(), objects: new Set() };
        building.set(obj, b);
        // Some CPEs list only parameters: their objects (up to root) exist all the same.
        if (obj !== root) ensure(parentOf(obj)).objects.add(leafOf(obj));
      }
      return b;
    };
    ensure(root);
    let ignored = 0;
    for (const { name } of names) {
      if (!name.startsWith(root) || (name !== root && name.length <= root.length)) {
        ignored++;
        continue;
      }
      if (isObject(name)) ensure(name);
      else ensure(parentOf(name)).params.add(leafOf(name));
    }
    this.dropSubtree(root);
    for (const [obj, b] of building) this.nodes.set(obj, this.makeNode([...b.params], [...b.objects]));
    this.linkToParent(root);
    for (const k of [...this.coverage.keys()]) if (k.startsWith(root)) this.coverage.delete(k);
    this.coverage.set(root, { levelAt: now, deepAt: now });
    this.version++;
    return ignored;
  }

  /** A new instance (AddObject) whose own subtree was just learned. */
  addInstance(instancePath: string, names: readonly LearnedName[], now: number): number {
    return this.learnSubtree(instancePath, names, now);
  }

  /** DeleteObject: the instance and everything below it are gone. */
  removeInstance(instancePath: string): void {
    this.dropSubtree(instancePath);
    const parent = parentOf(instancePath);
    const p = this.nodes.get(parent);
    const leaf = leafOf(instancePath);
    if (p?.objects.includes(leaf)) {
      this.nodes.set(
        parent,
        this.makeNode(
          [...p.params],
          p.objects.filter((o) => o !== leaf),
        ),
      );
    }
    for (const k of [...this.coverage.keys()]) if (k.startsWith(instancePath)) this.coverage.delete(k);
    this.version++;
  }

  /** The device refused a name asked by its full name (9005): drop it and never ask again. */
  refuse(name: string): void {
    this.refusedNames.add(name);
    const parent = parentOf(name);
    const node = this.nodes.get(parent);
    const leaf = leafOf(name);
    if (node?.params.includes(leaf)) {
      this.nodes.set(
        parent,
        this.makeNode(
          node.params.filter((p) => p !== leaf),
          [...node.objects],
        ),
      );
      this.version++;
    }
  }

  isRefused(name: string): boolean {
    return this.refusedNames.has(name);
  }

  /** Forget freshness (BOOT, or a table that may have changed) at and below `prefix` (all when omitted). */
  markStale(prefix = ''): void {
    if (prefix === '') {
      for (const c of this.coverage.values()) c.levelAt = c.deepAt = 0;
      this.refusedNames.clear();
      return;
    }
    // A subtree learned above `prefix` stays good everywhere but on the way to it: push its
    // knowledge down to the siblings of that way, then forget it (and everything at or below prefix).
    for (const [k, c] of [...this.coverage]) {
      if (k === prefix || !prefix.startsWith(k) || c.deepAt === 0) continue;
      const t = c.deepAt;
      for (let at = k; at !== prefix; ) {
        const next = prefix.slice(0, prefix.indexOf('.', at.length) + 1);
        const node = this.nodes.get(at);
        for (const child of node?.objects ?? []) {
          const path = `${at}${child}.`;
          if (path === next) continue;
          const own = this.coverage.get(path);
          if (!own || own.deepAt < t) this.coverage.set(path, { levelAt: Math.max(own?.levelAt ?? 0, t), deepAt: t });
        }
        const own = this.coverage.get(at);
        if (at !== k && (!own || own.levelAt < t)) this.coverage.set(at, { levelAt: t, deepAt: own?.deepAt ?? 0 });
        at = next;
      }
      c.deepAt = 0;
      c.levelAt = Math.max(c.levelAt, t);
    }
    for (const [k, c] of this.coverage) if (k.startsWith(prefix)) c.levelAt = c.deepAt = 0;
  }

  // ------------------------------------------------------------------ queries

  /** The object's direct names are known (a fresh level, or inside a fresh subtree). */
  knowsLevel(objectPath: string, freshAfter: number): boolean {
    if (!this.nodes.has(objectPath)) return this.knowsSubtree(objectPath, freshAfter);
    const own = this.coverage.get(objectPath);
    if (own && own.levelAt > freshAfter) return true;
    return this.knowsSubtree(objectPath, freshAfter);
  }

  /** Every name at and below the object is known (a fresh subtree at it or above it). */
  knowsSubtree(objectPath: string, freshAfter: number): boolean {
    for (let p = objectPath; p !== ''; p = parentOf(p)) {
      const c = this.coverage.get(p);
      if (c && c.deepAt > freshAfter) return true;
    }
    return false;
  }

  node(objectPath: string): TreeNode | undefined {
    return this.nodes.get(objectPath);
  }

  hasObject(objectPath: string): boolean {
    return this.nodes.has(objectPath);
  }

  hasParam(paramPath: string): boolean {
    return this.nodes.get(parentOf(paramPath))?.params.includes(leafOf(paramPath)) ?? false;
  }

  /** Instance numbers of a concrete table path, from its known level; null when not known. */
  instances(tablePath: string): number[] | null {
    const n = this.nodes.get(tablePath);
    if (!n) return null;
    return n.objects
      .filter((o) => /^\d+$/.test(o))
      .map(Number)
      .sort((a, b) => a - b);
  }

  /** Every known parameter at and below an object path, in tree order. */
  paramsUnder(objectPath: string): string[] {
    const out: string[] = [];
    const walk = (obj: string): void => {
      const n = this.nodes.get(obj);
      if (!n) return;
      for (const p of n.params) out.push(obj + p);
      for (const o of n.objects) walk(`${obj}${o}.`);
    };
    walk(objectPath);
    return out;
  }

  /** Every known object at and below an object path (itself included when known). */
  objectsUnder(objectPath: string): string[] {
    const out: string[] = [];
    const walk = (obj: string): void => {
      const n = this.nodes.get(obj);
      if (!n) return;
      out.push(obj);
      for (const o of n.objects) walk(`${obj}${o}.`);
    };
    walk(objectPath);
    return out;
  }

  /** Counts for status displays: objects and parameters known. */
  size(): { objects: number; params: number } {
    let params = 0;
    for (const n of this.nodes.values()) params += n.params.length;
    return { objects: this.nodes.size, params };
  }

  // ------------------------------------------------------------------ persistence

  toJSON(): DeviceTreeJson {
    const nodes: DeviceTreeJson['nodes'] = {};
    for (const [k, n] of this.nodes) nodes[k] = [[...n.params], [...n.objects]];
    const coverage: DeviceTreeJson['coverage'] = {};
    for (const [k, c] of this.coverage) coverage[k] = [c.levelAt, c.deepAt];
    return { v: 1, nodes, coverage, refused: [...this.refusedNames] };
  }

  /** Restores a stored tree; anything malformed yields an empty tree (it is only a cache). */
  static fromJSON(json: unknown, interner: Interner): DeviceTree {
    const t = new DeviceTree(interner);
    if (!json || typeof json !== 'object' || (json as DeviceTreeJson).v !== 1) return t;
    const j = json as DeviceTreeJson;
    try {
      for (const [k, v] of Object.entries(j.nodes ?? {})) {
        if (!Array.isArray(v) || !Array.isArray(v[0]) || !Array.isArray(v[1])) return new DeviceTree(interner);
        t.nodes.set(k, t.makeNode(v[0].map(String), v[1].map(String)));
      }
      for (const [k, v] of Object.entries(j.coverage ?? {})) {
        if (Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'number') t.coverage.set(k, { levelAt: v[0], deepAt: v[1] });
      }
      for (const r of Array.isArray(j.refused) ? j.refused : []) t.refusedNames.add(String(r));
    } catch {
      return new DeviceTree(interner);
    }
    return t;
  }

  // ------------------------------------------------------------------ internals

  private makeNode(params: string[], objects: string[]): TreeNode {
    params.sort();
    objects.sort(byName);
    return { params: this.interner.intern(params), objects: this.interner.intern(objects) };
  }

  /** A learned object is a child of its parent, when the parent is known. */
  private linkToParent(objectPath: string): void {
    const parent = parentOf(objectPath);
    if (parent === '') return;
    const p = this.nodes.get(parent);
    const leaf = leafOf(objectPath);
    if (p && !p.objects.includes(leaf)) this.nodes.set(parent, this.makeNode([...p.params], [...p.objects, leaf]));
  }

  private dropSubtree(root: string): void {
    for (const k of [...this.nodes.keys()]) if (k.startsWith(root)) this.nodes.delete(k);
  }
}

/** Instance numbers in numeric order, names alphabetically. */
function byName(a: string, b: string): number {
  const na = /^\d+$/.test(a);
  const nb = /^\d+$/.test(b);
  if (na && nb) return Number(a) - Number(b);
  if (na !== nb) return na ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}
