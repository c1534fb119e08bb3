/**
 * A controller's rights for one request or one notification: its Roles on the agent (LocalAgent
 * rolesOf) with every Target that selects instances by value ("[Enable==true]", unique keys,
 * reference following) evaluated now against the agent's instantiated model (TR-181
 * Permission.{i}.Targets: "all Parameter Paths that result from the evaluation of the Search Path"),
 * then permitted() of trust/permissions.ts bound to them.
 */
import { type PathBackend, resolvePath } from '../path/index.js';
import { compileRoles, type Op, permitted, type Role, type RoleSet } from './permissions.js';

export interface Access {
  /** The Roles' names, for messages. */
  readonly roles: readonly string[];
  /** No right at all (the default UntrustedRole): every request is refused with 7006. */
  readonly empty: boolean;
  permitted(path: string, op: Op): boolean;
}

/** Targets evaluated by value: their instances are found when the request starts. */
const BY_VALUE = /[[+]/;

/** Instances a Target may select (the resolver's own bound on the work of one path). */
const MAX_TARGET_MATCHES = 10_000;

/**
 * The Roles with their by-value Targets evaluated through the agent's model (unfiltered: the agent
 * evaluates its own ACL), asked for only when a Target needs it; none: such Targets select
 * nothing. A Target that does not resolve (an unknown name, a device that cannot answer) selects
 * nothing either: rights are never widened by a failure.
 */
export async function accessOf(roles: readonly Role[], model: (() => PathBackend) | null): Promise<Access> {
  const known = compiled.get(roles);
  if (known) return known;
  return evaluate(roles, model);
}

/**
 * The rights of Roles whose Targets are all static, compiled once per Role list and without a
 * promise (every request asks); undefined when a Target selects by value (accessOf evaluates it).
 */
export function staticAccess(roles: readonly Role[]): Access | undefined {
  const known = compiled.get(roles);
  if (known) return known;
  if (roles.some((r) => r.permissions.some((p) => p.targets.some((t) => BY_VALUE.test(t))))) return undefined;
  const access = bind(compileRoles(roles));
  compiled.set(roles, access);
  return access;
}

async function evaluate(roles: readonly Role[], model: (() => PathBackend) | null): Promise<Access> {
  const byValue = roles.some((r) => r.permissions.some((p) => p.targets.some((t) => BY_VALUE.test(t))));
  const backend = byValue && model ? model() : null;
  const evaluated: Role[] = [];
  for (const role of roles) {
    const permissions = [];
    for (const p of role.permissions) {
      if (!p.targets.some((t) => BY_VALUE.test(t))) {
        permissions.push(p);
        continue;
      }
      const targets: string[] = [];
      for (const t of p.targets) {
        if (!BY_VALUE.test(t)) targets.push(t);
        else if (backend) targets.push(...(await selected(t, backend)));
      }
      permissions.push({ ...p, targets });
    }
    evaluated.push({ name: role.name, permissions });
  }
  const access = bind(compileRoles(evaluated));
  // Static Targets give the same rights for as long as the Roles are the same (LocalAgent keeps
  // one Role[] per controller until the agent's rows change); by-value ones are evaluated anew.
  if (!byValue) compiled.set(roles, access);
  return access;
}

/** Compiled rights of Role lists with static Targets only, for as long as the list lives. */
const compiled = new WeakMap<readonly Role[], Access>();

/** Answers remembered per Access and operation (a controller asks about the same few paths again and again). */
const MEMO_PATHS = 32;
/** Longer paths (a peer's to choose) are checked without being kept. */
const MEMO_PATH_LENGTH = 256;

function bind(set: RoleSet): Access {
  // Small and per Access: an agent's Access lives with its Roles (released with an idle agent's tree).
  const memo = new Map<Op, Map<string, boolean>>();
  return {
    roles: set.names,
    empty: set.empty,
    permitted: (path, op) => {
      if (path.length > MEMO_PATH_LENGTH) return permitted(set, path, op);
      let known = memo.get(op);
      if (!known) memo.set(op, (known = new Map()));
      let ok = known.get(path);
      if (ok === undefined) {
        ok = permitted(set, path, op);
        if (known.size >= MEMO_PATHS) known.clear();
        known.set(path, ok);
      }
      return ok;
    },
  };
}

async function selected(target: string, backend: PathBackend): Promise<string[]> {
  try {
    return (await resolvePath(target, backend, { maxResults: MAX_TARGET_MATCHES })).map((r) => r.path);
  } catch {
    return [];
  }
}
