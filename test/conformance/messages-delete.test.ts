/** TP-469 section 1: the Delete message (CONFORMANCE.md 1.24-1.32, 1.34, 1.90, 1.78). */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { harness, requestMsg, type Harness } from './harness.js';

const SUB = 'Device.LocalAgent.Subscription.';
let h: Harness;
beforeEach(async () => {
  h = await harness();
  await h.subscribe({ Alias: 'one', ID: 'id-1', Enable: 'true' });
  await h.subscribe({ Alias: 'two', ID: 'id-2', Enable: 'false' });
});
afterEach(() => h.close());

const success = (requestedPath: string, affectedPaths: string[]) => ({
  requestedPath,
  operStatus: { operStatus: 'operSuccess', operSuccess: { affectedPaths, unaffectedPathErrs: [] } },
});

for (const allowPartial of [false, true]) {
  test(`1.24, 1.25 Delete a Subscription (allow_partial ${allowPartial}): affected_paths, the instance is gone`, async () => {
    const r = await h.delete([`${SUB}1.`], allowPartial);
    assert.equal(r.header.msgType, 'DELETE_RESP');
    assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults, [success(`${SUB}1.`, [`${SUB}1.`])]);
    assert.deepEqual(await h.instances(SUB), [2]);
  });

  test(`1.26, 1.27 Delete a missing instance (allow_partial ${allowPartial}): empty success (R-DEL.2a, as obuspa)`, async () => {
    const r = await h.delete([`${SUB}4242.`], allowPartial);
    assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults, [success(`${SUB}4242.`, [])]);
    assert.deepEqual(await h.instances(SUB), [1, 2]);
  });
}

test('1.28 Delete an invalid object, allow_partial false: Error, nothing deleted', async () => {
  const r = await h.delete([`${SUB}1.`, 'Device.LocalAgent.NoSuchTable.1.']);
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.errCode, 7026);
  assert.deepEqual(
    r.body.error!.paramErrs.map((p) => [p.paramPath, p.errCode]),
    [['Device.LocalAgent.NoSuchTable.1.', 7026]],
  );
  assert.deepEqual(await h.instances(SUB), [1, 2]);
});

test('1.29 Delete an invalid object, allow_partial true: oper_failure for it, the valid one deleted', async () => {
  const r = await h.delete(['Device.LocalAgent.NoSuchTable.1.', `${SUB}1.`], true);
  const [bad, good] = r.body.response!.deleteResp!.deletedObjResults;
  assert.equal(bad!.requestedPath, 'Device.LocalAgent.NoSuchTable.1.');
  assert.equal(bad!.operStatus!.operStatus, 'operFailure');
  assert.equal(bad!.operStatus!.operFailure!.errCode, 7026);
  assert.deepEqual(good, success(`${SUB}1.`, [`${SUB}1.`]));
  assert.deepEqual(await h.instances(SUB), [2]);
});

test('1.30 Delete a non-deletable object (MTP row, a single object): Error (allow_partial false), oper_failure (true)', async () => {
  const r = await h.delete(['Device.LocalAgent.MTP.1.']);
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.errCode, 7024);
  assert.deepEqual(
    r.body.error!.paramErrs.map((p) => [p.paramPath, p.errCode]),
    [['Device.LocalAgent.MTP.1.', 7024]],
  );
  const s = await h.delete(['Device.LocalAgent.'], true);
  assert.equal(s.body.response!.deleteResp!.deletedObjResults[0]!.operStatus!.operStatus, 'operFailure');
  assert.deepEqual(await h.instances('Device.LocalAgent.MTP.'), [1, 2]);
});

test('1.31 Delete several instances in one message: one result each', async () => {
  const r = await h.delete([`${SUB}1.`, `${SUB}2.`]);
  assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults, [success(`${SUB}1.`, [`${SUB}1.`]), success(`${SUB}2.`, [`${SUB}2.`])]);
  assert.deepEqual(await h.instances(SUB), []);
});

test('1.32 Delete with a search expression: the matching instances; no match: empty success', async () => {
  const r = await h.delete([`${SUB}[Enable==false].`]);
  assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults, [success(`${SUB}[Enable==false].`, [`${SUB}2.`])]);
  const none = await h.delete([`${SUB}[Alias=="nobody"].`]);
  assert.deepEqual(none.body.response!.deleteResp!.deletedObjResults, [success(`${SUB}[Alias=="nobody"].`, [])]);
  assert.deepEqual(await h.instances(SUB), [1]);
});

test('1.34, 1.90 Delete with "*." deletes every instance', async () => {
  const r = await h.delete([`${SUB}*.`]);
  assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults, [success(`${SUB}*.`, [`${SUB}1.`, `${SUB}2.`])]);
  assert.deepEqual(await h.instances(SUB), []);
  const again = await h.delete([`${SUB}*.`]);
  assert.deepEqual(again.body.response!.deleteResp!.deletedObjResults, [success(`${SUB}*.`, [])]);
});

test('1.24 Delete by a read-only controller: Error 7006, nothing deleted', async () => {
  const BOOT = 'Device.LocalAgent.Controller.1.BootParameter.';
  await h.add(BOOT, { ParameterName: 'Device.DeviceInfo.SerialNumber' });
  const r = await h.ask(requestMsg('delete', { allowPartial: false, objPaths: [`${BOOT}1.`, `${SUB}1.`] }), 'ro');
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.errCode, 7006);
  assert.match(r.body.error!.errMsg!, /BootParameter\.1\./);
  assert.deepEqual(await h.instances(BOOT), [1]);
  assert.deepEqual(await h.instances(SUB), [1, 2]);
  // allow_partial true: the refused instance is an unaffected_path_err 7006, the permitted one goes.
  const p = await h.ask(requestMsg('delete', { allowPartial: true, objPaths: [`${BOOT}1.`, `${SUB}1.`] }), 'ro');
  const [boot, sub] = p.body.response!.deleteResp!.deletedObjResults;
  assert.deepEqual(boot!.operStatus!.operSuccess!.affectedPaths, []);
  assert.deepEqual(
    boot!.operStatus!.operSuccess!.unaffectedPathErrs.map((e) => [e.unaffectedPath, e.errCode]),
    [[`${BOOT}1.`, 7006]],
  );
  assert.deepEqual(sub!.operStatus!.operSuccess!.affectedPaths, [`${SUB}1.`]);
  assert.deepEqual(await h.instances(BOOT), [1]);
});

test('1.78 Deleting a Controller row deletes the Subscriptions whose Recipient it was', async () => {
  await h.subscribe({ ID: 'for-c2' }, 'c2');
  assert.equal((await h.values(`${SUB}3.`)).Recipient, 'Device.LocalAgent.Controller.2');
  const r = await h.delete(['Device.LocalAgent.Controller.1.']);
  assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults, [success('Device.LocalAgent.Controller.1.', ['Device.LocalAgent.Controller.1.'])]);
  assert.deepEqual(await h.instances(SUB), [3]);
  assert.deepEqual(await h.instances('Device.LocalAgent.Controller.'), [2, 3]);
});
