/**
 * The predefined Roles (TR-369 "Role Definition": an Agent may define Roles in its code or through
 * its data model): two built in, "full" and "read-only", and those of the configuration
 * (controllerTrust.roles), which may also redefine a built-in one by its name. Each agent shows
 * them as Device.LocalAgent.ControllerTrust.Role.1.. in this order, read-only to controllers.
 */
import { parsePath, splitReferenceList } from '../path/index.js';
import { FLAGS, type Permission, type Role } from './permissions.js';

/** The configuration's shape of a Role (config.ts controllerTrust.roles). */
export interface RoleConfig {
  readonly name: string;
  readonly permissions: readonly {
    readonly order: number;
    readonly targets: readonly string[];
    readonly param: string;
    readonly obj: string;
    readonly instantiatedObj: string;
    readonly commandEvent: string;
  }[];
}

const ALL = 'rwxn';

/** Everything (TR-369's single full-access example: Targets "Device", rwxn everywhere). */
export const FULL_ROLE: Role = {
  name: 'full',
  permissions: [{ order: 1, targets: ['Device.'], param: ALL, obj: ALL, instantiatedObj: ALL, commandEvent: ALL }],
};

/**
 * Reads and notifications everywhere, no change, no command; its own Subscriptions (Add, Set,
 * Delete of Device.LocalAgent.Subscription.) so that it can be notified at all.
 */
export const READ_ONLY_ROLE: Role = {
  name: 'read-only',
  permissions: [
    { order: 1, targets: ['Device.'], param: 'r--n', obj: 'r--n', instantiatedObj: 'r--n', commandEvent: 'r--n' },
    { order: 2, targets: ['Device.LocalAgent.Subscription.'], param: 'rw-n', obj: 'rw-n', instantiatedObj: 'rw-n', commandEvent: 'r--n' },
  ],
};

export const BUILTIN_ROLES: readonly Role[] = [FULL_ROLE, READ_ONLY_ROLE];

/** Built-in Roles (replaced by a configured Role of the same name), then the other configured ones. */
export function predefinedRoles(configured: readonly RoleConfig[]): Role[] {
  const own = (r: RoleConfig): Role => ({ name: r.name, permissions: r.permissions.map((p) => ({ ...p, targets: [...p.targets] })) });
  const byName = new Map(configured.map((r) => [r.name, r]));
  const out = BUILTIN_ROLES.map((b) => (byName.has(b.name) ? own(byName.get(b.name)!) : b));
  for (const r of configured) if (!BUILTIN_ROLES.some((b) => b.name === r.name)) out.push(own(r));
  return out;
}

/** Role names of a controller's `role` setting ("full", "wifi,read-only"). */
export function roleNames(setting: string): string[] {
  return setting
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Why a Permission's Targets value is unusable, or null (each entry must be a path expression). */
export function targetProblem(target: string): string | null {
  const t = target.trim();
  if (t === '') return 'an empty target';
  try {
    parsePath(t === 'Device' ? 'Device.' : t);
    return null;
  } catch (e) {
    return `"${t}" is not a path: ${(e as Error).message}`;
  }
}

/** Targets as the data model lists them (comma-separated, commas inside "[...]" kept). */
export function splitTargets(value: string): string[] {
  return splitReferenceList(value).filter((t) => t !== '');
}

/** The first problem of the configured Roles and of the controllers' role names, or null. */
export function trustConfigProblem(cfg: {
  controllerTrust: { untrustedRole: string; roles: readonly RoleConfig[] };
  controllers: readonly { endpointId: string; role: string }[];
}): string | null {
  const names = new Set<string>();
  for (const [i, r] of cfg.controllerTrust.roles.entries()) {
    const at = `controllerTrust.roles[${i}]`;
    if (!r.name.trim()) return `${at}.name must not be empty`;
    if (r.name.includes(',')) return `${at}.name "${r.name}" must not contain a comma (controllers list role names separated by commas)`;
    if (names.has(r.name)) return `${at}.name "${r.name}" is defined twice`;
    names.add(r.name);
    const orders = new Set<number>();
    for (const [j, p] of r.permissions.entries()) {
      const pat = `${at}.permissions[${j}]`;
      // TR-181 Permission.{i}.Order is the functional unique key of a Role's Permissions.
      if (orders.has(p.order)) return `${pat}.order ${p.order} is used twice in role "${r.name}"`;
      orders.add(p.order);
      for (const k of ['param', 'obj', 'instantiatedObj', 'commandEvent'] as const) {
        if (!FLAGS.test(p[k])) return `${pat}.${k} must be 4 characters rwxn with "-" for a missing right (got "${p[k]}")`;
      }
      if (p.targets.length === 0) return `${pat}.targets must list at least one path`;
      for (const t of p.targets) {
        const bad = targetProblem(t);
        if (bad) return `${pat}.targets: ${bad}`;
      }
    }
  }
  const known = new Set([...BUILTIN_ROLES.map((r) => r.name), ...names]);
  const list = [...known].join(', ');
  if (cfg.controllerTrust.untrustedRole && !known.has(cfg.controllerTrust.untrustedRole))
    return `controllerTrust.untrustedRole "${cfg.controllerTrust.untrustedRole}" is not a role (known: ${list})`;
  for (const [i, c] of cfg.controllers.entries()) {
    for (const n of roleNames(c.role)) if (!known.has(n)) return `controllers[${i}].role "${n}" is not a role (known: ${list})`;
  }
  return null;
}

/** A Permission row's values as a Permission (Order as an unsignedInt; bad flag strings grant nothing). */
export function permissionOf(row: Readonly<Record<string, string>>): Permission {
  const order = Number(row.Order ?? '0');
  return {
    order: Number.isFinite(order) ? order : 0,
    targets: splitTargets(row.Targets ?? ''),
    param: row.Param ?? '----',
    obj: row.Obj ?? '----',
    instantiatedObj: row.InstantiatedObj ?? '----',
    commandEvent: row.CommandEvent ?? '----',
  };
}
