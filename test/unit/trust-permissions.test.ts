/**
 * permitted() on its own (src/usp/trust/permissions.ts): the TR-369 "Roles (Access Control)"
 * examples, the TR-181 Permission.{i} rules (Order, Targets, the rwxn flags of Param, Obj,
 * InstantiatedObj and CommandEvent) and the reading documented in the module.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRoles, type Op, type Permission, permitted, type Role } from '../../src/usp/trust/permissions.js';
import { BUILTIN_ROLES, FULL_ROLE, predefinedRoles, READ_ONLY_ROLE, trustConfigProblem } from '../../src/usp/trust/roles.js';

const perm = (order: number, targets: string[], flags: Partial<Omit<Permission, 'order' | 'targets'>>): Permission => ({
  order,
  targets,
  param: flags.param ?? '----',
  obj: flags.obj ?? '----',
  instantiatedObj: flags.instantiatedObj ?? '----',
  commandEvent: flags.commandEvent ?? '----',
});
const all = (order: number, targets: string[], f: string): Permission => perm(order, targets, { param: f, obj: f, instantiatedObj: f, commandEvent: f });
const can = (roles: Role[], path: string, op: Op): boolean => permitted(compileRoles(roles), path, op);

const EVERY_OP: Op[] = [
  'Param.r',
  'Param.w',
  'Param.n',
  'Obj.r',
  'Obj.w',
  'Obj.n',
  'InstantiatedObj.r',
  'InstantiatedObj.w',
  'InstantiatedObj.n',
  'CommandEvent.r',
  'CommandEvent.x',
  'CommandEvent.n',
];

describe('TR-369 "Role Definition" examples', () => {
  // Permission.1: Targets Device, rwxn everywhere.
  const full: Role = { name: 'A', permissions: [all(1, ['Device'], 'rwxn')] };

  it('a single Role with Targets "Device" and rwxn allows everything on the whole model', () => {
    for (const path of ['Device.', 'Device.DeviceInfo.SerialNumber', 'Device.WiFi.SSID.3.', 'Device.Reboot()', 'Device.Boot!', 'Device.WiFi.SSID.{i}.SSID'])
      for (const op of EVERY_OP) assert.ok(can([full], path, op), `${op} ${path}`);
  });

  it('Permission.2 (Order 2) on Device.LocalAgent.ControllerTrust with ---- takes ControllerTrust away, nothing else', () => {
    const role: Role = { name: 'A', permissions: [all(1, ['Device'], 'rwxn'), all(2, ['Device.LocalAgent.ControllerTrust'], '----')] };
    for (const op of EVERY_OP) {
      assert.equal(can([role], 'Device.LocalAgent.ControllerTrust.UntrustedRole', op), false, op);
      assert.equal(can([role], 'Device.LocalAgent.ControllerTrust.Role.1.Permission.2.', op), false, op);
      assert.equal(can([role], 'Device.LocalAgent.ControllerTrust.', op), false, op);
      assert.equal(can([role], 'Device.LocalAgent.EndpointID', op), true, op);
      assert.equal(can([role], 'Device.LocalAgent.', op), true, op);
    }
    // Not a prefix by characters: ControllerTrustX is another object.
    assert.equal(can([role], 'Device.LocalAgent.ControllerTrustX.Y', 'Param.r'), true);
  });

  it('Permission.2 on Role.*.Permission.*.Order: no read, write or ValueChange of Order; the objects stay manageable', () => {
    const role: Role = {
      name: 'A',
      permissions: [
        all(1, ['Device'], 'rwxn'),
        perm(2, ['Device.LocalAgent.ControllerTrust.Role.*.Permission.*.Order'], { param: '----', obj: 'rwxn', instantiatedObj: 'rwxn', commandEvent: 'rwxn' }),
      ],
    };
    const order = 'Device.LocalAgent.ControllerTrust.Role.1.Permission.3.Order';
    for (const op of ['Param.r', 'Param.w', 'Param.n'] as const) assert.equal(can([role], order, op), false, op);
    // An Add of a Permission row with a required Order fails: the new row's Order is not writable.
    assert.equal(can([role], 'Device.LocalAgent.ControllerTrust.Role.1.Permission.{i}.Order', 'Param.w'), false);
    assert.equal(can([role], 'Device.LocalAgent.ControllerTrust.Role.1.Permission.3.Targets', 'Param.w'), true);
    assert.equal(can([role], 'Device.LocalAgent.ControllerTrust.Role.1.Permission.', 'Obj.w'), true);
    assert.equal(can([role], 'Device.LocalAgent.ControllerTrust.Role.1.Permission.3.', 'InstantiatedObj.w'), true);
  });
});

describe('TR-369 "A Controller\'s Role": several Roles', () => {
  it('Roles A and B: per Role the largest Order wins (55 over 3, 78 over 20), then the union: r-xn on the Controller table', () => {
    const a: Role = {
      name: 'A',
      permissions: [perm(3, ['Device.LocalAgent'], { param: 'r---' }), perm(55, ['Device.LocalAgent.Controller'], { param: 'r-xn' })],
    };
    const b: Role = {
      name: 'B',
      permissions: [perm(20, ['Device.LocalAgent'], { param: 'r---' }), perm(78, ['Device.LocalAgent.Controller'], { param: '----' })],
    };
    const p = 'Device.LocalAgent.Controller.1.ProvisioningCode';
    assert.deepEqual(
      (['Param.r', 'Param.w', 'Param.x', 'Param.n'] as Op[]).map((op) => can([a, b], p, op)),
      [true, false, true, true],
    );
    // B alone: Permission.5 (----) hides the Controller table although Permission.1 lets Device.LocalAgent be read.
    assert.equal(can([b], p, 'Param.r'), false);
    assert.equal(can([b], 'Device.LocalAgent.EndpointID', 'Param.r'), true);
    // Outside the Controller table both give r---.
    assert.deepEqual(
      (['Param.r', 'Param.w', 'Param.n'] as Op[]).map((op) => can([a, b], 'Device.LocalAgent.EndpointID', op)),
      [true, false, false],
    );
  });

  it('r--- in one Role and ---n in another on the same Targets: r--n', () => {
    const r: Role = { name: 'r', permissions: [perm(1, ['Device.WiFi.'], { param: 'r---' })] };
    const n: Role = { name: 'n', permissions: [perm(1, ['Device.WiFi.'], { param: '---n' })] };
    assert.equal(can([r, n], 'Device.WiFi.SSID.1.SSID', 'Param.r'), true);
    assert.equal(can([r, n], 'Device.WiFi.SSID.1.SSID', 'Param.n'), true);
    assert.equal(can([r, n], 'Device.WiFi.SSID.1.SSID', 'Param.w'), false);
  });
});

describe('Order, Targets and flags', () => {
  it('Order decides, not the order of the rows', () => {
    const role: Role = { name: 'x', permissions: [all(9, ['Device.WiFi.'], '----'), all(2, ['Device.'], 'rwxn')] };
    assert.equal(can([role], 'Device.WiFi.SSID.1.SSID', 'Param.r'), false);
    assert.equal(can([role], 'Device.IP.Interface.1.Enable', 'Param.w'), true);
  });

  it('a broader Target with a larger Order overrides a narrower one', () => {
    const role: Role = { name: 'x', permissions: [perm(1, ['Device.WiFi.SSID.1.SSID'], { param: 'rw--' }), perm(2, ['Device.WiFi.'], { param: 'r---' })] };
    assert.equal(can([role], 'Device.WiFi.SSID.1.SSID', 'Param.w'), false);
  });

  it('instance numbers, "*" and the "{i}" of supported paths', () => {
    const one: Role = { name: 'one', permissions: [perm(1, ['Device.WiFi.SSID.1.'], { param: 'rw--', obj: 'r---' })] };
    const any: Role = { name: 'any', permissions: [perm(1, ['Device.WiFi.SSID.*.SSID'], { param: 'rw--' })] };
    assert.equal(can([one], 'Device.WiFi.SSID.1.SSID', 'Param.w'), true);
    assert.equal(can([one], 'Device.WiFi.SSID.2.SSID', 'Param.r'), false);
    assert.equal(can([one], 'Device.WiFi.SSID.1.', 'Obj.r'), true);
    assert.equal(can([one], 'Device.WiFi.SSID.', 'Obj.r'), false, 'the table is above the Target');
    // "{i}" is every instance: only a Target covering every instance says yes for it.
    assert.equal(can([one], 'Device.WiFi.SSID.{i}.SSID', 'Param.r'), false);
    assert.equal(can([any], 'Device.WiFi.SSID.{i}.SSID', 'Param.w'), true);
    assert.equal(can([any], 'Device.WiFi.SSID.7.SSID', 'Param.w'), true);
    assert.equal(can([any], 'Device.WiFi.SSID.7.Enable', 'Param.r'), false);
    assert.equal(can([any], 'Device.WiFi.SSID.7.', 'Obj.r'), false, 'a Parameter Target does not cover its object');
  });

  it('Parameter, Command and Event Targets cover exactly that element', () => {
    const role: Role = {
      name: 'x',
      permissions: [
        perm(1, ['Device.Reboot()'], { commandEvent: '--x-' }),
        perm(2, ['Device.Boot!'], { commandEvent: 'r--n' }),
        perm(3, ['Device.DeviceInfo.UpTime'], { param: 'r--n' }),
      ],
    };
    assert.equal(can([role], 'Device.Reboot()', 'CommandEvent.x'), true);
    assert.equal(can([role], 'Device.FactoryReset()', 'CommandEvent.x'), false);
    assert.equal(can([role], 'Device.Boot!', 'CommandEvent.n'), true);
    assert.equal(can([role], 'Device.Boot!', 'CommandEvent.x'), false);
    assert.equal(can([role], 'Device.DeviceInfo.UpTime', 'Param.n'), true);
    assert.equal(can([role], 'Device.DeviceInfo.UpTimeX', 'Param.r'), false);
    assert.equal(can([role], 'Device.DeviceInfo.', 'Obj.r'), false);
  });

  it('each right reads its own flag string', () => {
    const role: Role = {
      name: 'x',
      permissions: [perm(1, ['Device.NAT.PortMapping.'], { param: 'r---', obj: '-w--', instantiatedObj: 'r-x-', commandEvent: '---n' })],
    };
    const t = 'Device.NAT.PortMapping.';
    assert.deepEqual(
      EVERY_OP.filter((op) => can([role], `${t}2.`, op)),
      ['Param.r', 'Obj.w', 'InstantiatedObj.r', 'CommandEvent.n'],
    );
    assert.equal(can([role], t, 'Obj.w'), true);
  });

  it('search expressions left unevaluated, bad Targets and bad flag strings grant nothing', () => {
    const role: Role = {
      name: 'x',
      permissions: [
        perm(1, ['Device.WiFi.SSID.[Enable==true].'], { param: 'rwxn' }),
        perm(2, ['not a path', 'Device..X'], { param: 'rwxn' }),
        perm(3, ['Device.IP.'], { param: 'yes!' }),
      ],
    };
    assert.equal(can([role], 'Device.WiFi.SSID.1.SSID', 'Param.r'), false);
    assert.equal(can([role], 'Device.IP.Interface.1.Enable', 'Param.r'), false);
    assert.equal(compileRoles([role]).empty, true);
  });

  it('no Role, or Roles with no right, is empty (the default UntrustedRole); paths outside Device. are never permitted', () => {
    assert.equal(compileRoles([]).empty, true);
    assert.equal(compileRoles([{ name: 'none', permissions: [all(1, ['Device.'], '----')] }]).empty, true);
    assert.equal(compileRoles([FULL_ROLE]).empty, false);
    assert.equal(can([FULL_ROLE], 'Internal.Secret', 'Param.r'), false);
    assert.equal(can([FULL_ROLE], '', 'Param.r'), false);
  });
});

describe('the built-in and configured Roles', () => {
  it('read-only: reads and notifications everywhere, writes only its Subscriptions, runs nothing', () => {
    const ro = [READ_ONLY_ROLE];
    assert.equal(can(ro, 'Device.WiFi.SSID.1.SSID', 'Param.r'), true);
    assert.equal(can(ro, 'Device.WiFi.SSID.1.SSID', 'Param.n'), true);
    assert.equal(can(ro, 'Device.WiFi.SSID.1.SSID', 'Param.w'), false);
    assert.equal(can(ro, 'Device.NAT.PortMapping.', 'Obj.w'), false);
    assert.equal(can(ro, 'Device.Reboot()', 'CommandEvent.x'), false);
    assert.equal(can(ro, 'Device.LocalAgent.Subscription.', 'Obj.w'), true);
    assert.equal(can(ro, 'Device.LocalAgent.Subscription.{i}.ReferenceList', 'Param.w'), true);
    assert.equal(can(ro, 'Device.LocalAgent.Subscription.4.', 'InstantiatedObj.w'), true);
  });

  it('a configured Role of a built-in name replaces it in place; others follow', () => {
    const roles = predefinedRoles([
      { name: 'wifi', permissions: [{ order: 1, targets: ['Device.WiFi.'], param: 'r---', obj: 'r---', instantiatedObj: 'r---', commandEvent: '----' }] },
      { name: 'full', permissions: [{ order: 1, targets: ['Device.'], param: 'r---', obj: 'r---', instantiatedObj: 'r---', commandEvent: '----' }] },
    ]);
    assert.deepEqual(
      roles.map((r) => r.name),
      ['full', 'read-only', 'wifi'],
    );
    assert.equal(can([roles[0]!], 'Device.X.Y', 'Param.w'), false);
    assert.equal(BUILTIN_ROLES[0], FULL_ROLE);
  });

  it('configuration problems are named', () => {
    const base = { controllerTrust: { untrustedRole: '', roles: [] as never[] }, controllers: [{ endpointId: 'proto::a', role: 'full' }] };
    const p = (over: object) => trustConfigProblem({ ...base, ...over } as Parameters<typeof trustConfigProblem>[0]);
    assert.equal(p({}), null);
    assert.match(p({ controllers: [{ endpointId: 'proto::a', role: 'full,admin' }] })!, /controllers\[0\]\.role "admin" is not a role/);
    assert.match(p({ controllerTrust: { untrustedRole: 'guest', roles: [] } })!, /untrustedRole "guest"/);
    const role = (perm: object) => ({
      controllerTrust: {
        untrustedRole: '',
        roles: [
          { name: 'x', permissions: [{ order: 1, targets: ['Device.'], param: 'r---', obj: '----', instantiatedObj: '----', commandEvent: '----', ...perm }] },
        ],
      },
    });
    assert.match(p(role({ param: 'rw' }))!, /permissions\[0\]\.param must be 4 characters/);
    assert.match(p(role({ targets: ['Device.WiFi.SSID.[Enable==].'] }))!, /targets: "Device\.WiFi\.SSID\.\[Enable==\]\." is not a path/);
    assert.match(p(role({ targets: [] }))!, /at least one path/);
  });
});
