/**
 * Device.LocalAgent.ControllerTrust. and Controller.{i}.AssignedRole/InheritedRole (TR-369
 * "Theory of Operations", TR-181 LocalAgent.ControllerTrust.): the predefined Roles as rows,
 * read-only to controllers; Roles a controller creates and assigns; Targets evaluated by value
 * per request; an untrusted peer's rights; a NotifyResp only from the controller itself.
 */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { C2, harness, requestMsg, settle, type Harness } from './harness.js';

const CT = 'Device.LocalAgent.ControllerTrust.';
const ROLE = `${CT}Role.`;
let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(() => h.close());

const errOf = (m: Awaited<ReturnType<Harness['ask']>>) => {
  assert.equal(m.header.msgType, 'ERROR', JSON.stringify(m.body));
  return m.body.error!;
};

test("ControllerTrust.: the predefined Roles and each Controller's AssignedRole are readable rows (no more 7026)", async () => {
  assert.deepEqual(await h.values(CT), { UntrustedRole: '', SecuredRoles: '', RoleNumberOfEntries: '2', CredentialNumberOfEntries: '0' });
  assert.deepEqual(await h.values(`${ROLE}1.`), { Alias: 'cpe-1', Enable: 'true', Name: 'full', PermissionNumberOfEntries: '1' });
  assert.deepEqual(await h.values(`${ROLE}1.Permission.1.`), {
    Alias: 'cpe-1',
    Enable: 'true',
    Order: '1',
    Targets: 'Device.',
    Param: 'rwxn',
    Obj: 'rwxn',
    InstantiatedObj: 'rwxn',
    CommandEvent: 'rwxn',
  });
  assert.equal((await h.values(`${ROLE}2.`)).Name, 'read-only');
  const c1 = await h.values('Device.LocalAgent.Controller.1.');
  assert.equal(c1.AssignedRole, `${ROLE}1`);
  assert.equal(c1.InheritedRole, '');
  assert.equal((await h.values('Device.LocalAgent.Controller.3.')).AssignedRole, `${ROLE}2`);
  // What the read-only controller sees of it is the same.
  assert.equal((await h.values(`${ROLE}2.`, 'ro')).Name, 'read-only');
  const inst = await h.ask(requestMsg('getInstances', { objPaths: [ROLE], firstLevelOnly: false }));
  assert.deepEqual(
    inst.body.response!.getInstancesResp!.reqPathResults[0]!.currInsts.map((c) => [c.instantiatedObjPath, c.uniqueKeys.Name]),
    [
      [`${ROLE}1.`, 'full'],
      [`${ROLE}1.Permission.1.`, undefined],
      [`${ROLE}2.`, 'read-only'],
      [`${ROLE}2.Permission.1.`, undefined],
      [`${ROLE}2.Permission.2.`, undefined],
    ],
  );
});

test('the predefined Roles are read-only even to a full controller: Error 7006 naming the Role', async () => {
  const set = errOf(await h.set(`${ROLE}1.`, { Name: 'root' }));
  assert.equal(set.errCode, 7006);
  assert.match(set.errMsg!, /Role\.1 \("full"\) is predefined/);
  assert.equal(errOf(await h.set(`${ROLE}2.Permission.1.`, { Param: 'rwxn' })).errCode, 7006);
  assert.equal(errOf(await h.delete([`${ROLE}1.`])).errCode, 7006);
  assert.equal(errOf(await h.add(`${ROLE}2.Permission.`, { Order: '9' })).errCode, 7006);
  assert.equal((await h.values(`${ROLE}1.`)).Name, 'full');
  assert.equal((await h.values(`${ROLE}2.Permission.1.`)).Param, 'r--n');
});

test('a Role created by a controller, assigned, narrowed and deleted: the rights follow at once', async () => {
  const r = await h.add(ROLE, { Name: 'lookup', Enable: 'true' });
  assert.equal(r.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess!.instantiatedPath, `${ROLE}3.`);
  const p = await h.add(`${ROLE}3.Permission.`, { Enable: 'true', Order: '1', Targets: 'Device.LocalAgent.', Param: 'r---', Obj: 'r---' });
  assert.equal(p.header.msgType, 'ADD_RESP', JSON.stringify(p.body));
  assert.equal((await h.set('Device.LocalAgent.Controller.2.', { AssignedRole: `${ROLE}3` })).header.msgType, 'SET_RESP');

  assert.equal((await h.values('Device.LocalAgent.', 'c2')).EndpointID, 'os::012345-SN0001');
  const write = errOf(await h.set('Device.LocalAgent.Controller.2.', { ProvisioningCode: 'x' }, false, 'c2'));
  assert.equal(write.errCode, 7006);
  assert.match(write.errMsg!, /lookup/);

  // The Permission disabled: the Role grants nothing.
  await h.set(`${ROLE}3.Permission.1.`, { Enable: 'false' });
  assert.match(errOf(await h.get(['Device.LocalAgent.EndpointID'], undefined, 'c2')).errMsg!, /not authorised/);
  await h.set(`${ROLE}3.Permission.1.`, { Enable: 'true' });
  assert.equal((await h.get(['Device.LocalAgent.EndpointID'], undefined, 'c2')).header.msgType, 'GET_RESP');

  // Deleted: it leaves every AssignedRole (TR-181 strong reference), and the controller has no Role.
  assert.equal((await h.delete([`${ROLE}3.`])).header.msgType, 'DELETE_RESP');
  await settle();
  assert.equal((await h.values('Device.LocalAgent.Controller.2.')).AssignedRole, '');
  assert.equal(errOf(await h.get(['Device.LocalAgent.EndpointID'], undefined, 'c2')).errCode, 7006);
});

test('Role rows are checked: rwxn flags, path Targets, AssignedRole naming existing Roles (7012)', async () => {
  await h.add(ROLE, { Name: 'x', Enable: 'true' });
  const flags = errOf(await h.add(`${ROLE}3.Permission.`, { Order: '1', Param: 'rw' }));
  assert.deepEqual(
    flags.paramErrs.map((e) => [e.paramPath, e.errCode]),
    [[`${ROLE}3.Permission.{i}.Param`, 7012]],
  );
  const targets = errOf(await h.add(`${ROLE}3.Permission.`, { Order: '1', Targets: 'Device.LocalAgent.,Device..X' }));
  assert.match(targets.paramErrs[0]!.errMsg!, /"Device\.\.X" is not a path/);
  const dup = await h.add(ROLE, { Name: 'x' });
  assert.equal(errOf(dup).paramErrs[0]!.errCode, 7012, 'Name is the unique key of a Role');
  const assigned = errOf(await h.set('Device.LocalAgent.Controller.1.', { AssignedRole: `${ROLE}1,${ROLE}9` }));
  assert.match(assigned.paramErrs[0]!.errMsg!, /Role\.9 is not a/);
  assert.equal((await h.values('Device.LocalAgent.Controller.1.')).AssignedRole, `${ROLE}1`);
});

test('a Target with a search expression is evaluated at each request against the current values', async () => {
  const sub = 'Device.LocalAgent.Subscription.';
  await h.subscribe({ ID: 'on', Enable: 'true', NotifType: 'ValueChange', ReferenceList: 'Device.LocalAgent.EndpointID' });
  await h.subscribe({ ID: 'off', Enable: 'false' });
  await h.add(ROLE, { Name: 'enabled-only', Enable: 'true' });
  await h.add(`${ROLE}3.Permission.`, { Enable: 'true', Order: '1', Targets: `${sub}[Enable==true].`, Param: 'r---', Obj: 'r---' });
  await h.set('Device.LocalAgent.Controller.2.', { AssignedRole: `${ROLE}3` });
  const ids = async () => {
    const r = await h.get([`${sub}*.ID`], undefined, 'c2');
    return r.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults.map((x) => x.resultParams.ID);
  };
  assert.deepEqual(await ids(), ['on']);
  await h.set(`${sub}2.`, { Enable: 'true' });
  assert.deepEqual(await ids(), ['on', 'off']);
});

test('an UntrustedRole: a peer that is not trusted gets its rights, nothing more', async () => {
  h.close();
  h = await harness({ controllerTrust: { untrustedRole: 'read-only' } });
  assert.equal((await h.values(CT)).UntrustedRole, `${ROLE}2`);
  const stranger = { eid: 'proto::stranger', trusted: false };
  const g = await h.ask(requestMsg('get', { paramPaths: ['Device.LocalAgent.EndpointID'] }), stranger);
  assert.equal(g.header.msgType, 'GET_RESP');
  const s = await h.ask(
    requestMsg('set', {
      allowPartial: false,
      updateObjs: [{ objPath: 'Device.LocalAgent.Controller.1.', paramSettings: [{ param: 'ProvisioningCode', value: 'x', required: true }] }],
    }),
    stranger,
  );
  assert.equal(errOf(s).errCode, 7006);
  // A configured controller on a connection that did not prove it is a stranger too.
  const c2 = await h.ask(
    requestMsg('set', {
      allowPartial: false,
      updateObjs: [{ objPath: 'Device.LocalAgent.Controller.2.', paramSettings: [{ param: 'ProvisioningCode', value: 'x', required: true }] }],
    }),
    { eid: C2, trusted: false },
  );
  assert.equal(errOf(c2).errCode, 7006);
});

test('a NotifyResp counts only from the controller itself, not from a peer using its Endpoint ID', async () => {
  await h.subscribe({ Enable: 'true', NotifType: 'ValueChange', NotifRetry: 'true', ReferenceList: 'Device.LocalAgent.Controller.1.ProvisioningCode' });
  await h.set('Device.LocalAgent.Controller.1.', { ProvisioningCode: 'p1' });
  await settle();
  const [n] = h.notifies((x) => x.valueChange?.paramPath === 'Device.LocalAgent.Controller.1.ProvisioningCode');
  assert.ok(n);
  assert.equal(h.notifier.pendingCount, 1);
  const resp = {
    header: { msgId: n.msg.header.msgId, msgType: 'NOTIFY_RESP' as const },
    body: {
      msgBody: 'response' as const,
      response: { respType: 'notifyResp' as const, notifyResp: { subscriptionId: n.msg.body.request!.notify!.subscriptionId } },
    },
  };
  assert.equal(await h.request(resp, { eid: 'proto::controller-1', trusted: false }), null);
  assert.equal(h.notifier.pendingCount, 1, 'still retried');
  await h.request(resp, 'c1');
  assert.equal(h.notifier.pendingCount, 0);
});
