/**
 * The native names of one device, as its GetParameterNames listed them (TR-069 A.3.2.3): the
 * ground truth the mapping resolves against. A name is present only if the device listed it (or,
 * for an object, listed something under it): nothing is inferred from another instance of the
 * same table, because CPEs' table rows differ (LAN Ethernet port 2 lacking what port 1 has).
 * Types are the exception: an xsi:type is a property of the schema, so a name without one takes
 * the type another instance of the same schema showed.
 */

/** One native name as GetParameterNames gives it (objects end in '.'); type is the xsi:type if known. */
export interface NativeParamInfo {
  name: string;
  writable: boolean;
  type?: string;
}

const NUM_SEG = /\.(\d+)(?=\.)/g;
/** Native or USP concrete path -> {i} notation. */
export function schemaOf(p: string): string {
  return p.replace(NUM_SEG, '.{i}');
}

/** Path order with instance numbers compared as numbers ("X.2." before "X.10."). */
export function natCompare(a: string, b: string): number {
  const sa = a.split('.');
  const sb = b.split('.');
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    if (sa[i] === sb[i]) continue;
    const na = /^\d+$/.test(sa[i]);
    const nb = /^\d+$/.test(sb[i]);
    if (na && nb) return Number(sa[i]) - Number(sb[i]);
    return sa[i] < sb[i] ? -1 : 1;
  }
  return sa.length - sb.length;
}

/** Immutable once built; iterating gives every name given, in order. */
export class NativeNames implements Iterable<NativeParamInfo> {
  /** Every name given, in the order given (later duplicates replace earlier ones in place). */
  private readonly infos = new Map<string, NativeParamInfo>();
  /** Objects: listed or implied by a listed descendant. */
  private readonly objectSet = new Set<string>();
  /** Object schema ("...WLANConfiguration.{i}.") -> its instances, in first-seen order. */
  private readonly bySchema = new Map<string, string[]>();
  /** Object -> names of the parameters directly under it. */
  private readonly children = new Map<string, string[]>();
  /** Parameter schema -> the first xsi:type any instance showed. */
  private readonly schemaTypes = new Map<string, string>();

  /** Names outside root are ignored (a dump may carry other trees). */
  constructor(
    readonly root: string,
    params: Iterable<NativeParamInfo>,
  ) {
    for (const p of params) this.add(p);
  }

  private add(p: NativeParamInfo): void {
    if (!p.name.startsWith(this.root)) return;
    const old = this.infos.get(p.name);
    // An update without a type (a later GetParameterNames) keeps the type already learned.
    const info = old?.type && !p.type ? { ...p, type: old.type } : p;
    this.infos.set(p.name, info);
    const isObject = p.name.endsWith('.');
    if (isObject) this.addObject(p.name);
    else {
      if (info.type && !this.schemaTypes.has(schemaOf(p.name))) this.schemaTypes.set(schemaOf(p.name), info.type);
      if (!old) {
        const k = p.name.lastIndexOf('.');
        const parent = p.name.slice(0, k + 1);
        const l = this.children.get(parent);
        if (l) l.push(p.name.slice(k + 1));
        else this.children.set(parent, [p.name.slice(k + 1)]);
      }
    }
    // Implied parent objects (a dump may list parameters only).
    let q = isObject ? p.name.slice(0, -1) : p.name;
    for (;;) {
      const k = q.lastIndexOf('.');
      if (k < 0) break;
      q = q.slice(0, k);
      const obj = q + '.';
      if (this.objectSet.has(obj)) break;
      this.addObject(obj);
    }
  }

  private addObject(o: string): void {
    if (this.objectSet.has(o)) return;
    this.objectSet.add(o);
    const s = schemaOf(o);
    const l = this.bySchema.get(s);
    if (l) l.push(o);
    else this.bySchema.set(s, [o]);
  }

  /** True when the device listed this parameter (not an object). */
  hasParam(name: string): boolean {
    return !name.endsWith('.') && this.infos.has(name);
  }

  hasObject(name: string): boolean {
    return this.objectSet.has(name);
  }

  /** Objects of one schema ({i} notation), in first-seen order. */
  objectsOfSchema(schema: string): readonly string[] {
    return this.bySchema.get(schema) ?? [];
  }

  /** The device's own entry for a name (writability is per instance). */
  info(name: string): NativeParamInfo | undefined {
    return this.infos.get(name);
  }

  /** The xsi:type of a parameter: its own, else the one another instance of its schema showed. */
  typeOf(name: string): string | undefined {
    return this.infos.get(name)?.type || this.schemaTypes.get(schemaOf(name));
  }

  /** Names of the parameters directly under an object ("Enable", "X_HW_RFBand"). */
  paramsOf(object: string): readonly string[] {
    return this.children.get(object) ?? [];
  }

  [Symbol.iterator](): Iterator<NativeParamInfo> {
    return this.infos.values();
  }

  /** Every name given (listed objects and parameters), in order. */
  list(): NativeParamInfo[] {
    return [...this.infos.values()];
  }

  /** Parameter names (not objects). */
  paramNames(): string[] {
    const out: string[] = [];
    for (const k of this.infos.keys()) if (!k.endsWith('.')) out.push(k);
    return out;
  }
}
