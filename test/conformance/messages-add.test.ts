/** TP-469 section 1: the Add message on Device.LocalAgent.Subscription (CONFORMANCE.md 1.1-1.9, 1.81/1.88/1.96/1.104). */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { harness, requestMsg, type Harness } from './harness.js';

const SUB = 'Device.LocalAgent.Subscription.';
let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(() => h.close());

for (const allowPartial of [false, true]) {
  test(`1.1, 1.2 Add a Subscription (allow_partial ${allowPartial}): oper_success with unique_keys, a later Get shows the values`, async () => {
    const r = await h.add(
      SUB,
      { Enable: 'true', ID: 'sub-a', NotifType: 'ValueChange', ReferenceList: 'Device.LocalAgent.Controller.1.ProvisioningCode' },
      allowPartial,
    );
    assert.equal(r.header.msgType, 'ADD_RESP');
    assert.equal(r.header.msgId.startsWith('conf-'), true);
    const results = r.body.response!.addResp!.createdObjResults;
    assert.equal(results.length, 1);
    assert.equal(results[0]!.requestedPath, SUB);
    assert.equal(results[0]!.operStatus!.operStatus, 'operSuccess');
    const ok = results[0]!.operStatus!.operSuccess!;
    assert.equal(ok.instantiatedPath, `${SUB}1.`);
    assert.deepEqual(ok.paramErrs, []);
    assert.deepEqual(ok.uniqueKeys, { Alias: 'cpe-1', ID: 'sub-a', Recipient: 'Device.LocalAgent.Controller.1' });
    const v = await h.values(`${SUB}1.`);
    assert.equal(v.Enable, 'true');
    assert.equal(v.ID, 'sub-a');
    assert.equal(v.NotifType, 'ValueChange');
    assert.equal(v.ReferenceList, 'Device.LocalAgent.Controller.1.ProvisioningCode');
    assert.equal(v.Recipient, 'Device.LocalAgent.Controller.1');
    assert.equal(v.Persistent, 'false');
    assert.match(v.CreationDate!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
}

test('1.3 Add with an invalid value (allow_partial false): Error 7004 with one param_err (7011, {i} path), nothing created', async () => {
  const r = await h.add(SUB, { Enable: 'not-a-boolean', ID: 'bad' });
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.msgBody, 'error');
  const e = r.body.error!;
  assert.equal(e.errCode, 7004);
  assert.equal(e.paramErrs.length, 1);
  assert.equal(e.paramErrs[0]!.paramPath, `${SUB}{i}.Enable`);
  assert.equal(e.paramErrs[0]!.errCode, 7011);
  assert.deepEqual(await h.instances(SUB), []);
});

test('1.3 Add with an unsupported parameter (allow_partial false): Error 7004 with one param_err 7010, nothing created', async () => {
  const r = await h.add(SUB, { InvalidParameter: 'x', ID: 'bad' });
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.errCode, 7004);
  assert.equal(r.body.error!.paramErrs.length, 1);
  assert.equal(r.body.error!.paramErrs[0]!.paramPath, `${SUB}{i}.InvalidParameter`);
  assert.equal(r.body.error!.paramErrs[0]!.errCode, 7010);
  assert.deepEqual(await h.instances(SUB), []);
});

test('1.4 Add on an invalid object (allow_partial false): Error, nothing created', async () => {
  const r = await h.add('Device.LocalAgent.NoSuchTable.', { Enable: 'true' });
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.errCode, 7026);
  // Exactly one param_err naming the path (TR-369 "Error Fields", as the reference agent).
  assert.deepEqual(
    r.body.error!.paramErrs.map((p) => [p.paramPath, p.errCode]),
    [['Device.LocalAgent.NoSuchTable.', 7026]],
  );
  assert.deepEqual(await h.instances(SUB), []);
});

test('1.4 Add on an invalid object (allow_partial true): oper_failure 7026, nothing created', async () => {
  const r = await h.add('Device.LocalAgent.NoSuchTable.', { Enable: 'true' }, true);
  assert.equal(r.header.msgType, 'ADD_RESP');
  const f = r.body.response!.addResp!.createdObjResults[0]!.operStatus!;
  assert.equal(f.operStatus, 'operFailure');
  assert.equal(f.operFailure!.errCode, 7026);
  assert.deepEqual(await h.instances(SUB), []);
});

test('1.4 Add on a non-table or read-only table: Error 7018 / 7019', async () => {
  const single = await h.add('Device.LocalAgent.', {});
  assert.equal(single.header.msgType, 'ERROR');
  assert.equal(single.body.error!.errCode, 7018);
  const ro = await h.add('Device.LocalAgent.MTP.', {});
  assert.equal(ro.header.msgType, 'ERROR');
  assert.equal(ro.body.error!.errCode, 7019);
});

test('1.5 Add two objects, allow_partial false, both valid: both created with distinct generated keys', async () => {
  const r = await h.addMany(
    [
      { objPath: SUB, settings: { NotifType: 'ValueChange' } },
      { objPath: SUB, settings: { NotifType: 'ObjectCreation' } },
    ],
    false,
  );
  const res = r.body.response!.addResp!.createdObjResults;
  assert.equal(res.length, 2);
  assert.deepEqual(
    res.map((x) => x.operStatus!.operSuccess!.instantiatedPath),
    [`${SUB}1.`, `${SUB}2.`],
  );
  const [a, b] = res.map((x) => x.operStatus!.operSuccess!.uniqueKeys);
  assert.notEqual(a!.ID, b!.ID);
  assert.notEqual(a!.Alias, b!.Alias);
  assert.deepEqual(await h.instances(SUB), [1, 2]);
});

test('1.6, 1.7 Add two objects, allow_partial false, the second fails: Error, neither created (rollback)', async () => {
  const r = await h.addMany(
    [
      { objPath: SUB, settings: { ID: 'good' } },
      { objPath: SUB, settings: { Enable: 'maybe' } },
    ],
    false,
  );
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.errCode, 7004);
  assert.equal(r.body.error!.paramErrs[0]!.errCode, 7011);
  assert.deepEqual(await h.instances(SUB), []);
  const r2 = await h.addMany(
    [
      { objPath: SUB, settings: { ID: 'good' } },
      { objPath: 'Device.LocalAgent.Nope.', settings: {} },
    ],
    false,
  );
  assert.equal(r2.header.msgType, 'ERROR');
  assert.deepEqual(await h.instances(SUB), []);
  // No ObjectCreation/ObjectDeletion leaks are asserted in notify.test.ts; the Get agrees here.
  const g = await h.get([SUB]);
  assert.deepEqual(g.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults, []);
});

test('1.8, 1.9 Add two objects, allow_partial true, one fails: oper_failure for it, the good one created', async () => {
  const r = await h.addMany(
    [
      { objPath: SUB, settings: { Enable: 'not-a-boolean' } },
      { objPath: SUB, settings: { ID: 'good', Enable: 'true' } },
    ],
    true,
  );
  assert.equal(r.header.msgType, 'ADD_RESP');
  const [bad, good] = r.body.response!.addResp!.createdObjResults;
  assert.equal(bad!.requestedPath, SUB);
  assert.equal(bad!.operStatus!.operStatus, 'operFailure');
  assert.equal(bad!.operStatus!.operFailure!.errCode, 7011); // as obuspa: the failed parameter's code
  assert.equal(good!.operStatus!.operStatus, 'operSuccess');
  assert.equal(good!.operStatus!.operSuccess!.uniqueKeys.ID, 'good');
  assert.deepEqual(await h.instances(SUB), [good!.operStatus!.operSuccess!.instantiatedPath === `${SUB}1.` ? 1 : 2]);
  assert.equal((await h.values(good!.operStatus!.operSuccess!.instantiatedPath!)).Enable, 'true');
});

test('1.8 Add with a failing non-required parameter: oper_success with that param_err (R-ADD.4), the object created with the default', async () => {
  const r = await h.add(SUB, { ID: 'x', Enable: ['not-a-boolean', false] }, true);
  const ok = r.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess!;
  assert.equal(ok.instantiatedPath, `${SUB}1.`);
  assert.equal(ok.paramErrs.length, 1);
  assert.equal(ok.paramErrs[0]!.param, 'Enable');
  assert.equal(ok.paramErrs[0]!.errCode, 7011);
  assert.equal((await h.values(`${SUB}1.`)).Enable, 'false');
});

test('1.81 Unique keys generated when absent are distinct (Alias, ID) and returned in unique_keys (R-ADD.5)', async () => {
  const keys = [];
  for (let i = 0; i < 3; i++) {
    const r = await h.add(SUB, {});
    keys.push(r.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess!.uniqueKeys);
  }
  assert.equal(new Set(keys.map((k) => k.Alias)).size, 3);
  assert.equal(new Set(keys.map((k) => k.ID)).size, 3);
  for (const k of keys) assert.deepEqual(Object.keys(k).sort(), ['Alias', 'ID', 'Recipient']);
});

test('1.88 An Alias starting with a digit ("88InvalidAlias") is refused; a duplicate Alias or Recipient+ID too', async () => {
  const bad = await h.add(SUB, { Alias: '88InvalidAlias' });
  assert.equal(bad.header.msgType, 'ERROR');
  assert.equal(bad.body.error!.paramErrs[0]!.paramPath, `${SUB}{i}.Alias`);
  assert.equal(bad.body.error!.paramErrs[0]!.errCode, 7012);
  await h.subscribe({ Alias: 'mine', ID: 'dup' });
  const dupAlias = await h.add(SUB, { Alias: 'mine' });
  assert.equal(dupAlias.header.msgType, 'ERROR');
  const dupId = await h.add(SUB, { ID: 'dup' });
  assert.equal(dupId.header.msgType, 'ERROR');
  // Same ID for another Recipient is a different unique key value.
  const other = await h.add(SUB, { ID: 'dup', Recipient: 'Device.LocalAgent.Controller.2' });
  assert.equal(other.header.msgType, 'ADD_RESP');
  assert.deepEqual(await h.instances(SUB), [1, 2]);
});

test('1.96 Subscription ID is immutable: a Set of another ID fails, the ID stays', async () => {
  const p = await h.subscribe({ ID: 'first' });
  const r = await h.set(p, { ID: 'second' });
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.paramErrs[0]!.paramPath, `${p}ID`);
  assert.equal(r.body.error!.paramErrs[0]!.errCode, 7013);
  assert.equal((await h.values(p)).ID, 'first');
});

test('1.104 Alias is write-once: a generated Alias cannot be changed by Set', async () => {
  const p = await h.subscribe({});
  const before = (await h.values(p)).Alias;
  const r = await h.set(p, { Alias: 'renamed' });
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.paramErrs[0]!.paramPath, `${p}Alias`);
  assert.equal((await h.values(p)).Alias, before);
});

test('1.1 Add as a read-only controller: Error 7006 outside its own Subscriptions, nothing created', async () => {
  const BOOT = 'Device.LocalAgent.Controller.3.BootParameter.';
  const r = await h.ask(requestMsg('add', { allowPartial: false, createObjs: [{ objPath: BOOT, paramSettings: [] }] }), 'ro');
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.errCode, 7006);
  assert.match(r.body.error!.errMsg!, /read-only.*Controller\.3\.BootParameter\./);
  assert.deepEqual(await h.instances(BOOT), []);
  // The read-only Role may subscribe (it could not be notified otherwise): Recipient is itself.
  const sub = await h.subscribe({ Enable: 'true', NotifType: 'ValueChange', ReferenceList: 'Device.LocalAgent.Controller.1.ProvisioningCode' }, 'ro');
  assert.equal((await h.values(sub)).Recipient, 'Device.LocalAgent.Controller.3');
});
