/**
 * TR-369 Controller Trust permissions (TR-369 "Roles (Access Control)"; TR-181
 * Device.LocalAgent.ControllerTrust.Role.{i}.Permission.{i}.): whether a set of Roles allows one
 * operation on one path. Pure: no I/O, no data model; the caller evaluates search expressions first.
 *
 * The rules as read here:
 *  - Rights: Param r (Get, GetSupportedDM), w (Set, Add), n (ValueChange); Obj r (Get resolves the
 *    object, GetSupportedDM), w (Add a row), n (ObjectCreation); InstantiatedObj r (GetInstances),
 *    w (Delete), n (ObjectDeletion); CommandEvent r (GetSupportedDM), x (Operate), n
 *    (OperationComplete, Event). A flag string is "rwxn" with "-" for a missing right.
 *  - Within one Role, of its enabled Permissions whose Targets match the path, the one with the
 *    largest Order decides ("the larger value takes priority"); no match: no right.
 *  - Across Roles the results are united (TR-369 "A Controller's Role": r--- + ---n = r--n).
 *  - A Target ending in "." (a Partial Path or an Object Instance) covers that object and
 *    everything below it. A Target naming a Parameter, Command or Event covers just that. A Target
 *    without a trailing "." that names an object, as the spec's examples write them ("Device",
 *    "Device.LocalAgent.ControllerTrust"), covers it like a Partial Path.
 *  - "*" matches any instance, an instance number that instance. Search expressions and unique-key
 *    addressing ("[Enable==true]") select instances by value: the caller resolves them against the
 *    instantiated model when the request starts (trust/access.ts), replacing each by the paths it
 *    matched then. One left unevaluated here matches nothing.
 *  - Supported Data Model paths ("Device.WiFi.SSID.{i}.SSID": GetSupportedDM, the Parameters of a
 *    row an Add is about to create) stand for every instance: only Targets that cover every
 *    instance ("*", or no instance at all) match "{i}".
 */
import { parsePath, type Segment } from '../path/index.js';

export type Right = 'Param' | 'Obj' | 'InstantiatedObj' | 'CommandEvent';
export type Flag = 'r' | 'w' | 'x' | 'n';
/** One operation: which permission string, which flag ("Param.w" = write a Parameter). */
export type Op = `${Right}.${Flag}`;

/** A Permission.{i} row: Targets are path expressions; flags are 4-character "rwxn" strings. */
export interface Permission {
  readonly order: number;
  readonly targets: readonly string[];
  readonly param: string;
  readonly obj: string;
  readonly instantiatedObj: string;
  readonly commandEvent: string;
}

/** A Role.{i} row with its enabled Permissions. */
export interface Role {
  readonly name: string;
  readonly permissions: readonly Permission[];
}

/** TR-181 Permission.{i}.Param/Obj/InstantiatedObj/CommandEvent: 4 characters, always in rwxn order. */
export const FLAGS = /^[r-][w-][x-][n-]$/;
export const NO_RIGHTS = '----';

const FLAG_INDEX: Record<Flag, number> = { r: 0, w: 1, x: 2, n: 3 };

/** A path segment of a Target: a name, an instance number, "*", or null (an unevaluated search: matches nothing). */
type PatternSeg = { name: string } | { instance: number } | '*' | null;

interface Pattern {
  segs: PatternSeg[];
  /** Parameter "Name", command "Name()", event "Name!"; null: an object Target covering its subtree. */
  leaf: string | null;
  /**
   * Written without a trailing "." and not a command or event: a Parameter, or an object as the
   * spec's examples write it; then these are its segments read as an object Target.
   */
  asObject: PatternSeg[] | null;
}

interface CompiledPermission {
  order: number;
  patterns: Pattern[];
  flags: Record<Right, string>;
}

/** Roles ready for permitted(): Targets parsed once, Permissions by descending Order. */
export interface RoleSet {
  readonly names: readonly string[];
  /** No Permission of any Role grants anything: every request is refused (the default UntrustedRole). */
  readonly empty: boolean;
  readonly roles: readonly (readonly CompiledPermission[])[];
}

export function compileRoles(roles: readonly Role[]): RoleSet {
  const compiled = roles.map((role) =>
    role.permissions
      .map((p) => ({
        order: p.order,
        patterns: p.targets.map(parseTarget).filter((x): x is Pattern => x !== null),
        flags: { Param: flagsOf(p.param), Obj: flagsOf(p.obj), InstantiatedObj: flagsOf(p.instantiatedObj), CommandEvent: flagsOf(p.commandEvent) },
      }))
      .sort((a, b) => b.order - a.order),
  );
  // A Permission grants something when one of its Targets can match and one flag is set.
  const empty = !compiled.some((perms) =>
    perms.some((p) => p.patterns.some((pat) => !pat.segs.includes(null)) && Object.values(p.flags).some((f) => f !== NO_RIGHTS)),
  );
  return { names: roles.map((r) => r.name), empty, roles: compiled };
}

/**
 * Does the Role set allow `op` on `path`? `path` is an instantiated path ("Device.WiFi.SSID.1.SSID",
 * "Device.WiFi.SSID.1.", "Device.Reboot()", "Device.Boot!") or a supported one with "{i}".
 */
export function permitted(set: RoleSet, path: string, op: Op): boolean {
  const dot = op.indexOf('.');
  const right = op.slice(0, dot) as Right;
  const at = FLAG_INDEX[op.slice(dot + 1) as Flag];
  const p = splitPath(path);
  if (!p) return false;
  for (const perms of set.roles) {
    // The matching Permission with the largest Order decides for this Role.
    const winner = perms.find((perm) => perm.patterns.some((pat) => matches(pat, p)));
    if (winner && winner.flags[right][at] !== '-') return true;
  }
  return false;
}

function flagsOf(s: string): string {
  return FLAGS.test(s) ? s : NO_RIGHTS;
}

/** A Target as a pattern; null when it is not a path expression at all. */
function parseTarget(text: string): Pattern | null {
  const t = text.trim();
  if (t === '') return null;
  let ast: ReturnType<typeof parsePath>;
  try {
    ast = parsePath(t === 'Device' ? 'Device.' : t);
  } catch {
    return null;
  }
  const segs = ast.segments.map(patternSeg);
  if (ast.kind === 'object') return { segs, leaf: null, asObject: null };
  const leaf = ast.kind === 'command' ? `${ast.leaf}()` : ast.kind === 'event' ? `${ast.leaf}!` : ast.leaf;
  return { segs, leaf, asObject: ast.kind === 'parameter' ? [...segs, { name: ast.leaf }] : null };
}

function patternSeg(s: Segment): PatternSeg {
  switch (s.type) {
    case 'name':
      return s.ref === undefined ? { name: s.name } : null;
    case 'instance':
      return { instance: s.instance };
    case 'wildcard':
      return '*';
    case 'search':
      return null;
  }
}

/** A path to check: its object segments (names, instance numbers, "{i}" as GENERIC) and its leaf. */
interface CheckPath {
  segs: (string | number)[];
  leaf: string | null;
}

const GENERIC = -1;

function splitPath(path: string): CheckPath | null {
  if (!path.startsWith('Device.')) return null;
  const parts = path.split('.');
  const leaf = path.endsWith('.') ? null : parts[parts.length - 1]!;
  const segs: (string | number)[] = [];
  for (let i = 1; i < parts.length - 1; i++) {
    const s = parts[i]!;
    if (s === '') return null;
    segs.push(s === '{i}' ? GENERIC : /^\d+$/.test(s) ? Number(s) : s);
  }
  return { segs, leaf };
}

function segMatches(pat: PatternSeg, seg: string | number): boolean {
  if (pat === null) return false;
  if (pat === '*') return typeof seg === 'number';
  if ('name' in pat) return seg === pat.name;
  return seg === pat.instance;
}

function prefixMatches(segs: readonly PatternSeg[], path: CheckPath): boolean {
  if (path.segs.length < segs.length) return false;
  for (let i = 0; i < segs.length; i++) if (!segMatches(segs[i]!, path.segs[i]!)) return false;
  return true;
}

function matches(pat: Pattern, path: CheckPath): boolean {
  if (pat.leaf === null) return prefixMatches(pat.segs, path);
  // The exact Parameter, Command or Event.
  if (path.leaf === pat.leaf && path.segs.length === pat.segs.length && prefixMatches(pat.segs, path)) return true;
  // "Device.LocalAgent.ControllerTrust" as an object: the object and its subtree.
  return pat.asObject !== null && prefixMatches(pat.asObject, path);
}
