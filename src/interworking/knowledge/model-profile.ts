/**
 * What the proxy learned of one CWMP device model (OUI + ProductClass + software version): the
 * schema (names with instance numbers abstracted to "{i}", their xsi:types and writability) and
 * how the model's CPE agent behaves (capabilities). Shared by every device of the model; pure data.
 *
 * Types come first from what the device said (GetParameterValues answers and Informs carry
 * xsi:type), then from the Broadband Forum data models (type-table.ts). Capabilities start at the
 * safe setting and change only on evidence: a partial path in GetParameterValues is never sent until
 * the model has shown it answers one correctly, a batch size only shrinks after a fault or a drop.
 */
import { Interner } from './device-tree.js';

/** Instance numbers -> "{i}" ("Device.WiFi.SSID.3.SSID" -> "Device.WiFi.SSID.{i}.SSID"). */
export function schemaPathOf(path: string): string {
  return path.replace(/\.\d+(?=\.)/g, '.{i}');
}

export type Tri = 'unknown' | 'yes' | 'no';

export interface ModelCapabilities {
  /** Parameter names per GetParameterValues; learned down (halved) when a CPE faults 9004/9002 or chokes. */
  gpvBatch: number;
  /** GetParameterValues with a partial path answered correctly. */
  partialPaths: Tri;
  /** SetParameterAttributes (Notification) accepted: ValueChange can be left to the CPE. */
  setParameterAttributes: Tri;
  /** GetParameterNames(root, NextLevel=false) answered; 'no': the tree is walked one level at a time. */
  rootNextLevelFalse: Tri;
  /** The CPE's GetRPCMethods answer (null: not asked yet; [] : it refused). */
  rpcMethods: string[] | null;
}

/** A failure remembered with a back-off: requests that need the same thing fail fast meanwhile. */
export interface RememberedFailure {
  /** What failed, e.g. "GetParameterNames Device. NextLevel=false". */
  what: string;
  reason: string;
  count: number;
  /** Epoch ms: retry allowed after this. */
  until: number;
  deviceKey: string;
}

export interface ModelProfileJson {
  v: 1;
  /** schema parameter path -> [xsi:type or "", writable 1/0/-1 unknown] */
  params: Record<string, [string, number]>;
  /** schema object path -> writable 1/0 (a table container: AddObject/DeleteObject allowed) */
  objects: Record<string, number>;
  rootComplete: boolean;
  caps: ModelCapabilities;
}

interface ParamFacts {
  type?: string;
  writable?: boolean;
}

export const DEFAULT_CAPABILITIES: ModelCapabilities = {
  gpvBatch: 32,
  partialPaths: 'unknown',
  setParameterAttributes: 'unknown',
  rootNextLevelFalse: 'unknown',
  rpcMethods: null,
};

export class ModelProfile {
  private readonly params = new Map<string, ParamFacts>();
  private readonly objects = new Map<string, boolean>();
  /** Schema objects that have at least one known parameter (an index of `params`). */
  private readonly withParams = new Set<string>();
  /** A GetParameterNames of the whole root reached this model: the schema lists every name the model has. */
  rootComplete = false;
  caps: ModelCapabilities;
  /** Not persisted: a restart retries at once. */
  private readonly failures = new Map<string, RememberedFailure>();
  readonly interner = new Interner();
  /** Bumped on every schema change (views built from it know when to rebuild). */
  version = 0;
  /** Persisted form out of date. */
  dirty = false;

  constructor(
    readonly key: string,
    defaults: Partial<ModelCapabilities> = {},
  ) {
    this.caps = { ...DEFAULT_CAPABILITIES, ...defaults };
  }

  // ------------------------------------------------------------------ schema

  /** Names and writability from a GetParameterNames answer. */
  learnNames(infos: readonly { name: string; writable: boolean }[]): void {
    for (const { name, writable } of infos) {
      const s = schemaPathOf(name);
      if (name.endsWith('.')) {
        // The writability of a table container ("Device.WiFi.SSID.") is the right to AddObject in it.
        if (this.objects.get(s) !== writable) {
          this.objects.set(s, writable);
          this.touch();
        }
        continue;
      }
      const f = this.params.get(s);
      if (!f) {
        this.params.set(s, { writable });
        this.withParams.add(s.slice(0, s.lastIndexOf('.') + 1));
        this.touch();
      } else if (f.writable !== writable) {
        f.writable = writable;
        this.touch();
      }
    }
  }

  /** xsi:types from GetParameterValues answers and Informs. */
  learnTypes(values: readonly { name: string; type: string }[]): void {
    for (const { name, type } of values) {
      if (!type || name.endsWith('.')) continue;
      const s = schemaPathOf(name);
      const f = this.params.get(s);
      if (!f) {
        this.params.set(s, { type });
        this.withParams.add(s.slice(0, s.lastIndexOf('.') + 1));
        this.touch();
      } else if (f.type !== type) {
        f.type = type;
        this.touch();
      }
    }
  }

  hasParam(schemaPath: string): boolean {
    return this.params.has(schemaPath);
  }

  hasObject(schemaPath: string): boolean {
    return this.objects.has(schemaPath);
  }

  /** The model knows parameters of this schema object (not only that it exists). */
  knowsParamsOf(schemaObjectPath: string): boolean {
    return this.withParams.has(schemaObjectPath);
  }

  /** Learned xsi:type of a parameter (concrete or schema path). */
  typeOf(path: string): string | undefined {
    return this.params.get(schemaPathOf(path))?.type;
  }

  writableOf(path: string): boolean | undefined {
    return this.params.get(schemaPathOf(path))?.writable;
  }

  /** AddObject allowed on a table (learned from the container's Writable flag). */
  tableWritable(tablePath: string): boolean | undefined {
    return this.objects.get(schemaPathOf(tablePath));
  }

  /** Schema parameter paths at and below a schema object path. */
  paramsUnder(schemaObjectPath: string): string[] {
    return [...this.params.keys()].filter((p) => p.startsWith(schemaObjectPath));
  }

  /** Schema object paths at and below a schema object path. */
  objectsUnder(schemaObjectPath: string): string[] {
    return [...this.objects.keys()].filter((p) => p.startsWith(schemaObjectPath));
  }

  get paramCount(): number {
    return this.params.size;
  }

  // ------------------------------------------------------------------ capabilities and failures

  setCap<K extends keyof ModelCapabilities>(k: K, v: ModelCapabilities[K]): void {
    if (JSON.stringify(this.caps[k]) === JSON.stringify(v)) return;
    this.caps = { ...this.caps, [k]: v };
    this.touch();
  }

  /** Remembers a failure with an exponential back-off (30 s, 1 min, 2 min ... at most 1 h). */
  fail(what: string, reason: string, deviceKey: string, now: number): RememberedFailure {
    const prev = this.failures.get(what);
    const count = (prev?.count ?? 0) + 1;
    const f = { what, reason, count, until: now + Math.min(3_600_000, 30_000 * 2 ** (count - 1)), deviceKey };
    this.failures.set(what, f);
    return f;
  }

  /** A failure still in its back-off, if any. */
  failing(what: string, now: number): RememberedFailure | undefined {
    const f = this.failures.get(what);
    return f && f.until > now ? f : undefined;
  }

  succeeded(what: string): void {
    this.failures.delete(what);
  }

  activeFailures(now: number): RememberedFailure[] {
    return [...this.failures.values()].filter((f) => f.until > now);
  }

  // ------------------------------------------------------------------ persistence

  private touch(): void {
    this.version++;
    this.dirty = true;
  }

  toJSON(): ModelProfileJson {
    const params: ModelProfileJson['params'] = {};
    for (const [k, f] of this.params) params[k] = [f.type ?? '', f.writable === undefined ? -1 : f.writable ? 1 : 0];
    const objects: ModelProfileJson['objects'] = {};
    for (const [k, w] of this.objects) objects[k] = w ? 1 : 0;
    return { v: 1, params, objects, rootComplete: this.rootComplete, caps: this.caps };
  }

  /** Restores a stored profile; anything malformed yields a fresh profile (it is only a cache). */
  static fromJSON(key: string, json: unknown, defaults: Partial<ModelCapabilities> = {}): ModelProfile {
    const m = new ModelProfile(key, defaults);
    if (!json || typeof json !== 'object' || (json as ModelProfileJson).v !== 1) return m;
    const j = json as ModelProfileJson;
    for (const [k, v] of Object.entries(j.params ?? {})) {
      if (!Array.isArray(v)) continue;
      m.params.set(k, { type: typeof v[0] === 'string' && v[0] !== '' ? v[0] : undefined, writable: v[1] === 1 ? true : v[1] === 0 ? false : undefined });
      m.withParams.add(k.slice(0, k.lastIndexOf('.') + 1));
    }
    for (const [k, v] of Object.entries(j.objects ?? {})) m.objects.set(k, v === 1);
    m.rootComplete = j.rootComplete === true;
    const c = j.caps;
    if (c && typeof c === 'object') {
      const tri = (x: unknown, d: Tri): Tri => (x === 'yes' || x === 'no' || x === 'unknown' ? x : d);
      m.caps = {
        gpvBatch: Number.isInteger(c.gpvBatch) && c.gpvBatch > 0 ? c.gpvBatch : m.caps.gpvBatch,
        partialPaths: tri(c.partialPaths, m.caps.partialPaths),
        setParameterAttributes: tri(c.setParameterAttributes, m.caps.setParameterAttributes),
        rootNextLevelFalse: tri(c.rootNextLevelFalse, m.caps.rootNextLevelFalse),
        rpcMethods: Array.isArray(c.rpcMethods) ? c.rpcMethods.map(String) : null,
      };
    }
    return m;
  }
}
