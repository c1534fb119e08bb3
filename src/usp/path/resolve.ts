/**
 * Resolve a USP path expression (wildcards, search expressions, reference following) against
 * any data-model backend into concrete instantiated paths (TR-369 "Searching", R-ARC.9/10,
 * "Reference Following"). The handlers drive it without knowing the grammar.
 */
import {
  PathError,
  parsePath,
  parseReference,
  formatPath,
  hasWildcardOrSearch,
  toSupportedPath,
  type ObjectPath,
  type PathKind,
  type RefFollow,
  type SearchOperator,
  type SearchTerm,
  type SearchValue,
  type Segment,
  type UspPath,
} from './syntax.js';

/** What the resolver needs from a data model (Device.LocalAgent., the CWMP device, a fake). */
export interface PathBackend {
  /**
   * Instance numbers of the table at the instantiated object path `objectPath`
   * (e.g. "Device.LocalAgent.Subscription."), or null when it is not a table / does not exist.
   */
  instances(objectPath: string): Promise<number[] | null>;
  /**
   * Whether `path` exists in the Supported Data Model. Always called with a supported path:
   * instance numbers replaced by `{i}`. Forms: object "Device.DeviceInfo.", table "Device.IP.Interface."
   * and its row "Device.IP.Interface.{i}." (both true for a table), parameter "Device.IP.Interface.{i}.Name",
   * command "Device.Reboot()", event "Device.Boot!". Called at most once per distinct path per resolvePath.
   */
  exists(path: string): Promise<boolean>;
  /** Value of an instantiated parameter path, or undefined if it has none / does not exist. */
  getValue(paramPath: string): Promise<string | undefined>;
}

export interface ResolvedPath {
  /** Concrete path: "Device.IP.Interface.1." (object), "...1.Status", "...1.Reset()", "Device.Boot!". */
  readonly path: string;
  /** The object (instance) path the result sits in: the Get resolved_path (R-GET.2). Ends with '.'. */
  readonly object: string;
  /** Parameter / command / event name without '()' or '!'; absent for object paths. */
  readonly leaf?: string;
  readonly kind: PathKind;
}

export interface ResolveOptions {
  /**
   * 'empty' (default): a non-search path that addresses nothing (missing instance, dangling
   * reference) resolves to []. 'error': throw PathError 7026 instead (R-GET.0 for Get).
   * A Search Path matching nothing is always [] (R-MSG.4a, R-GET.1a).
   */
  readonly onMissing?: 'empty' | 'error';
  /** Upper bound on intermediate/final matches; beyond it PathError 7005. Default 100000. */
  readonly maxResults?: number;
}

const DEFAULT_MAX_RESULTS = 100_000;

/**
 * Expand `path` into the concrete paths it addresses. Errors (PathError): 7008 syntax (when given
 * text), 7026 when a name is not in the Supported Data Model or a `*`/`[...]`/instance number is
 * applied to something that is not a table, 7005 when maxResults is exceeded.
 */
export function resolvePath(path: UspPath | string, backend: PathBackend, opts: ResolveOptions = {}): Promise<ResolvedPath[]> {
  try {
    const ast = typeof path === 'string' ? parsedPath(path) : path;
    // Names only (no instance number, wildcard, search or reference): one question to the supported
    // model, as checkStatic asks it, and no instance walk: the path a controller asks most, answered
    // with one promise (each costs the request scope's hooks).
    if (ast.segments.every((s) => s.type === 'name' && s.ref === undefined)) {
      let object = 'Device.';
      for (const s of ast.segments) object += (s as { name: string }).name + '.';
      if (ast.kind === 'object') {
        const found: ResolvedPath[] = [{ path: object, object, kind: 'object' }];
        return object === 'Device.' ? Promise.resolve(found) : backend.exists(object).then((ok) => (ok ? found : Promise.reject(notInModel(object))));
      }
      const leaf = object + ast.leaf + suffixOf(ast);
      const found: ResolvedPath[] = [{ path: leaf, object, leaf: ast.leaf, kind: ast.kind }];
      return backend.exists(leaf).then((ok) => (ok ? found : Promise.reject(notInModel(leaf))));
    }
    return resolveAny(ast, backend, opts);
  } catch (e) {
    return Promise.reject(e);
  }
}

function suffixOf(ast: UspPath): string {
  return ast.kind === 'command' ? '()' : ast.kind === 'event' ? '!' : '';
}

async function resolveAny(ast: UspPath, backend: PathBackend, opts: ResolveOptions): Promise<ResolvedPath[]> {
  const suffix = suffixOf(ast);
  const r = new Resolver(backend, opts.maxResults ?? DEFAULT_MAX_RESULTS);
  const { prefixes, followed } = await r.resolve(ast);
  const out: ResolvedPath[] = [];
  for (const prefix of prefixes) {
    if (ast.kind === 'object') {
      out.push({ path: prefix, object: prefix, kind: 'object' });
    } else {
      // After reference following the target's model is only known per target: skip the
      // targets that have no such leaf rather than fail the whole path.
      if (followed && !(await r.exists(toSupportedPath(prefix) + ast.leaf + suffix))) continue;
      out.push({ path: prefix + ast.leaf + suffix, object: prefix, leaf: ast.leaf, kind: ast.kind });
    }
  }
  if (out.length === 0 && opts.onMissing === 'error' && !hasWildcardOrSearch(ast)) {
    throw new PathError(7026, `invalid path: ${describePath(ast)} does not match any object or parameter in the instantiated data model`);
  }
  return out;
}

/** Parsed paths by text: controllers ask the same few paths over and over (the parse is pure, its result read-only). */
const PARSED = new Map<string, UspPath>();
const PARSED_MAX = 512;
const PARSED_MAX_LENGTH = 256;

function parsedPath(text: string): UspPath {
  let ast = PARSED.get(text);
  if (ast === undefined) {
    ast = parsePath(text);
    if (text.length <= PARSED_MAX_LENGTH) {
      if (PARSED.size >= PARSED_MAX) PARSED.clear();
      PARSED.set(text, ast);
    }
  }
  return ast;
}

function describePath(ast: UspPath): string {
  return JSON.stringify(formatPath(ast));
}

function notInModel(path: string): PathError {
  return new PathError(7026, `invalid path: ${path} is not in the supported data model`);
}

class Resolver {
  private readonly existsCache = new Map<string, Promise<boolean>>();
  constructor(
    private readonly backend: PathBackend,
    private readonly maxResults: number,
  ) {}

  exists(supportedPath: string): Promise<boolean> {
    let p = this.existsCache.get(supportedPath);
    if (p === undefined) {
      p = this.backend.exists(supportedPath);
      this.existsCache.set(supportedPath, p);
    }
    return p;
  }

  private limit(n: number): void {
    if (n > this.maxResults) throw new PathError(7005, `resources exceeded: path matches more than ${this.maxResults} objects`);
  }

  /** Static checks against the Supported Data Model, then the instance walk. */
  async resolve(ast: UspPath): Promise<{ prefixes: string[]; followed: boolean }> {
    await this.checkStatic(ast);
    let prefixes = ['Device.'];
    let lenient = false;
    const segs = ast.segments;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      if (prefixes.length === 0) break;
      if (seg.type !== 'name') throw new PathError(7008, 'invalid path syntax: instance identifier must follow a table name');
      const next = segs[i + 1];
      if (next !== undefined && next.type !== 'name') {
        prefixes = await this.applyInstance(
          prefixes.map((p) => p + seg.name + '.'),
          next,
          lenient,
        );
        i++;
      } else if (seg.ref !== undefined) {
        const ref = seg.ref;
        const lists = await Promise.all(prefixes.map((p) => this.follow(p + seg.name, ref)));
        prefixes = dedupe(lists.flat());
        lenient = true;
      } else {
        prefixes = prefixes.map((p) => p + seg.name + '.');
      }
      this.limit(prefixes.length);
    }
    if (lenient && ast.kind === 'object') prefixes = await this.filterExisting(prefixes);
    return { prefixes, followed: lenient };
  }

  /**
   * Names up to the first reference following are checked once, on the supported path, so a
   * bad name is 7026 even when a table on the way is empty (R-GET.0). Search-term parameters too.
   */
  private async checkStatic(ast: UspPath): Promise<void> {
    let schema = 'Device.';
    const checks: string[] = [];
    let sawRef = false;
    for (let i = 0; i < ast.segments.length && !sawRef; i++) {
      const seg = ast.segments[i]!;
      if (seg.type === 'name') {
        if (seg.ref !== undefined) {
          checks.push(schema + seg.name);
          sawRef = true;
        } else {
          schema += seg.name + '.';
        }
        continue;
      }
      const row = schema + '{i}.';
      if (seg.type === 'search') {
        for (const t of seg.terms) {
          let rel = '';
          for (const part of t.param) {
            rel += part.name;
            if (part.ref !== undefined) break;
            rel += '.';
          }
          checks.push(row + (rel.endsWith('.') ? rel.slice(0, -1) : rel));
        }
      }
      schema = row;
    }
    if (!sawRef) {
      if (ast.kind === 'object') {
        if (schema !== 'Device.') checks.push(schema);
      } else {
        checks.push(schema + ast.leaf + (ast.kind === 'command' ? '()' : ast.kind === 'event' ? '!' : ''));
      }
    }
    for (const c of checks) {
      if (!(await this.exists(c))) throw notInModel(c);
    }
  }

  /** `tables` are concrete table paths ("Device.IP.Interface."); apply `N`, `*` or `[...]`. */
  private async applyInstance(tables: string[], inst: Segment, lenient: boolean): Promise<string[]> {
    const perTable = await Promise.all(
      tables.map(async (table) => {
        const raw = await this.backend.instances(table);
        if (raw === null) {
          if (lenient) return [];
          const schema = toSupportedPath(table);
          throw new PathError(
            7026,
            `invalid path: ${table} ${(await this.exists(schema)) ? 'is not a table (multi-instance object)' : 'is not in the supported data model'}`,
          );
        }
        const ids = [...new Set(raw.filter((n) => Number.isSafeInteger(n) && n > 0))].sort((a, b) => a - b);
        this.limit(ids.length);
        switch (inst.type) {
          case 'instance':
            return ids.includes(inst.instance) ? [table + inst.instance + '.'] : [];
          case 'wildcard':
            return ids.map((n) => table + n + '.');
          case 'search': {
            const rows = ids.map((n) => table + n + '.');
            const keep = await Promise.all(rows.map((row) => this.matchRow(row, inst.terms)));
            return rows.filter((_r, k) => keep[k]);
          }
          case 'name':
            throw new Error('unreachable');
        }
      }),
    );
    return perTable.flat();
  }

  private async matchRow(row: string, terms: readonly SearchTerm[]): Promise<boolean> {
    // Terms in order, stopping at the first false one: fewer getValue calls.
    for (const t of terms) {
      const values = await this.termValues(row, t);
      if (!values.some((v) => compareValue(v, t.op, t.value))) return false;
    }
    return true;
  }

  /** Values of the expression parameter in `row`; several when a `#*+` is on the way. */
  private async termValues(row: string, t: SearchTerm): Promise<string[]> {
    let prefixes = [row];
    const last = t.param.length - 1;
    for (let i = 0; i < last; i++) {
      const part = t.param[i]!;
      if (part.ref !== undefined) {
        const ref = part.ref;
        prefixes = dedupe((await Promise.all(prefixes.map((p) => this.follow(p + part.name, ref)))).flat());
      } else {
        prefixes = prefixes.map((p) => p + part.name + '.');
      }
    }
    const leaf = t.param[last]!.name;
    const values = await Promise.all(prefixes.map((p) => this.backend.getValue(p + leaf)));
    return values.filter((v): v is string => v !== undefined);
  }

  /**
   * Reference following: read the reference parameter, pick the list item(s) (`+` = `#1+`),
   * and resolve each to an existing object instance. Empty, dangling, unparseable or
   * non-object references match nothing: they are data, not request errors.
   */
  private async follow(paramPath: string, ref: RefFollow): Promise<string[]> {
    const value = await this.backend.getValue(paramPath);
    if (value === undefined || value.trim() === '') return [];
    const items = splitReferenceList(value);
    const picked = ref.index === '*' ? items : ref.index === undefined ? items.slice(0, 1) : items.slice(ref.index - 1, ref.index);
    const out: string[] = [];
    for (const item of picked) {
      if (item === '') continue;
      let target: ObjectPath;
      try {
        // Instance numbers or unique keys only (R-ARC.11), never wildcards or further
        // references: that also bounds the recursion to one level.
        target = parseReference(item);
      } catch {
        continue;
      }
      out.push(...(await this.walkTarget(target.segments)));
    }
    return out;
  }

  private async walkTarget(segs: readonly Segment[]): Promise<string[]> {
    let prefixes = ['Device.'];
    for (let i = 0; i < segs.length && prefixes.length > 0; i++) {
      const seg = segs[i]!;
      if (seg.type !== 'name') return [];
      const next = segs[i + 1];
      if (next !== undefined && next.type !== 'name') {
        prefixes = await this.applyInstance(
          prefixes.map((p) => p + seg.name + '.'),
          next,
          true,
        );
        i++;
      } else {
        prefixes = prefixes.map((p) => p + seg.name + '.');
      }
    }
    return this.filterExisting(prefixes);
  }

  private async filterExisting(prefixes: string[]): Promise<string[]> {
    const ok = await Promise.all(prefixes.map((p) => (p === 'Device.' ? true : this.exists(toSupportedPath(p)))));
    return prefixes.filter((_p, k) => ok[k]);
  }
}

function dedupe(list: string[]): string[] {
  return list.length < 2 ? list : [...new Set(list)];
}

/** Split a list of references on ',' outside `[...]` and "...", trimming each item. */
export function splitReferenceList(value: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === '[') depth++;
    else if (!quoted && c === ']' && depth > 0) depth--;
    else if (!quoted && depth === 0 && c === ',') {
      items.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  items.push(value.slice(start).trim());
  return items;
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const INTEGER = /^[+-]?\d+$/;
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?$/;
const UNKNOWN_TIME = /^0001-01-01T00:00:00(?:\.0+)?Z$/;

function parseBoolean(s: string): boolean | undefined {
  switch (s.toLowerCase()) {
    case 'true':
    case '1':
      return true;
    case 'false':
    case '0':
      return false;
    default:
      return undefined;
  }
}

function ordered(cmp: number, op: SearchOperator): boolean {
  switch (op) {
    case '==':
    case '~=':
      return cmp === 0;
    case '!=':
      return cmp !== 0;
    case '<':
      return cmp < 0;
    case '>':
      return cmp > 0;
    case '<=':
      return cmp <= 0;
    case '>=':
      return cmp >= 0;
  }
}

function equality(eq: boolean, op: SearchOperator): boolean {
  if (op === '==' || op === '~=') return eq;
  if (op === '!=') return !eq;
  return false; // relational operators only evaluate for ordered types (TR-369 "Searching with Expressions")
}

/**
 * Evaluate one expression component against a parameter's value (TR-369 "Searching with
 * Expressions"). The backend gives untyped strings, so the constant's shape picks the type:
 * - '~=': the value is a comma-separated list; true if an item equals the constant.
 * - quoted constant: exact string comparison, '==' / '!=' only (the parser rejects others).
 * - unquoted constant: numeric when both sides are numbers (so 123, +123 and 0123 are equal;
 *   integers compared exactly as BigInt); else boolean when both are true/false/1/0 (== / != only);
 *   else dateTime when both are ISO 8601 (Unknown Time 0001-01-01T00:00:00Z: == / != only);
 *   else exact string comparison (== / != only). A relational operator on a non-ordered
 *   type is false, not an error: the type is the data model's, which the resolver does not know.
 */
export function compareValue(actual: string, op: SearchOperator, constant: SearchValue): boolean {
  if (op === '~=') return actual.split(',').some((item) => compareValue(item.trim(), '==', constant));
  if (constant.type === 'string') return equality(actual === constant.value, op);
  const c = constant.text;
  const a = actual.trim();
  if (NUMBER.test(a) && NUMBER.test(c)) {
    if (INTEGER.test(a) && INTEGER.test(c)) {
      const x = BigInt(a);
      const y = BigInt(c);
      return ordered(x < y ? -1 : x > y ? 1 : 0, op);
    }
    const x = Number(a);
    const y = Number(c);
    return ordered(x < y ? -1 : x > y ? 1 : 0, op);
  }
  const ab = parseBoolean(a);
  const cb = parseBoolean(c);
  if (ab !== undefined && cb !== undefined) return equality(ab === cb, op);
  if (DATETIME.test(a) && DATETIME.test(c)) {
    if (UNKNOWN_TIME.test(a) || UNKNOWN_TIME.test(c)) return equality(UNKNOWN_TIME.test(a) === UNKNOWN_TIME.test(c), op);
    const x = Date.parse(a);
    const y = Date.parse(c);
    if (!Number.isNaN(x) && !Number.isNaN(y)) return ordered(x < y ? -1 : x > y ? 1 : 0, op);
  }
  return equality(a === c, op);
}
