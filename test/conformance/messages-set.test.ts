/** TP-469 section 1: the Set message (CONFORMANCE.md 1.11-1.23). */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { harness, requestMsg, type Harness } from './harness.js';

const SUB = 'Device.LocalAgent.Subscription.';
let h: Harness;
beforeEach(async () => {
  h = await harness();
  await h.subscribe({ Alias: 'one', ID: 'id-1', Enable: 'true', NotifType: 'ValueChange' });
  await h.subscribe({ Alias: 'two', ID: 'id-2', Enable: 'false', NotifType: 'ObjectCreation' });
});
afterEach(() => h.close());

for (const allowPartial of [false, true]) {
  test(`1.11, 1.12 Set NotifRetry (allow_partial ${allowPartial}): SetResp, affected_path by instance number, updated_params`, async () => {
    const r = await h.set(`${SUB}1.`, { NotifRetry: 'true' }, allowPartial);
    assert.equal(r.header.msgType, 'SET_RESP');
    const [res] = r.body.response!.setResp!.updatedObjResults;
    assert.equal(res!.requestedPath, `${SUB}1.`);
    assert.equal(res!.operStatus!.operStatus, 'operSuccess');
    assert.deepEqual(res!.operStatus!.operSuccess!.updatedInstResults, [{ affectedPath: `${SUB}1.`, updatedParams: { NotifRetry: 'true' }, paramErrs: [] }]);
    assert.equal((await h.values(`${SUB}1.`)).NotifRetry, 'true');
  });
}

test('1.13 Set several parameters of several objects in one message: one UpdatedObjectResult each', async () => {
  const r = await h.ask(
    requestMsg('set', {
      allowPartial: false,
      updateObjs: [
        {
          objPath: `${SUB}1.`,
          paramSettings: [
            { param: 'NotifRetry', value: '1', required: true },
            { param: 'NotifExpiration', value: '30', required: true },
          ],
        },
        { objPath: `${SUB}2.`, paramSettings: [{ param: 'Enable', value: 'true', required: true }] },
      ],
    }),
  );
  const res = r.body.response!.setResp!.updatedObjResults;
  assert.equal(res.length, 2);
  assert.deepEqual(res[0]!.operStatus!.operSuccess!.updatedInstResults[0]!.updatedParams, { NotifRetry: 'true', NotifExpiration: '30' });
  assert.deepEqual(res[1]!.operStatus!.operSuccess!.updatedInstResults[0]!.updatedParams, { Enable: 'true' });
});

test('1.14 Set an unsupported parameter, allow_partial false: Error 7004 with param_errs (full path, 7010), no change', async () => {
  const r = await h.ask(
    requestMsg('set', {
      allowPartial: false,
      updateObjs: [
        { objPath: `${SUB}1.`, paramSettings: [{ param: 'NotifRetry', value: 'true', required: true }] },
        { objPath: `${SUB}2.`, paramSettings: [{ param: 'InvalidParameter', value: 'x', required: true }] },
      ],
    }),
  );
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.errCode, 7004);
  assert.deepEqual(
    r.body.error!.paramErrs.map((e) => [e.paramPath, e.errCode]),
    [[`${SUB}2.InvalidParameter`, 7010]],
  );
  assert.equal((await h.values(`${SUB}1.`)).NotifRetry, 'false');
});

test('1.15 Set a read-only parameter, allow_partial true: oper_failure 7021 with updated_inst_failures (7013), other objects updated', async () => {
  const r = await h.ask(
    requestMsg('set', {
      allowPartial: true,
      updateObjs: [
        { objPath: 'Device.LocalAgent.', paramSettings: [{ param: 'SoftwareVersion', value: '9', required: true }] },
        { objPath: `${SUB}1.`, paramSettings: [{ param: 'NotifRetry', value: 'true', required: true }] },
      ],
    }),
  );
  assert.equal(r.header.msgType, 'SET_RESP');
  const [bad, good] = r.body.response!.setResp!.updatedObjResults;
  assert.equal(bad!.operStatus!.operStatus, 'operFailure');
  assert.equal(bad!.operStatus!.operFailure!.errCode, 7021);
  assert.deepEqual(
    bad!.operStatus!.operFailure!.updatedInstFailures.map((f) => [f.affectedPath, f.paramErrs.map((e) => [e.param, e.errCode])]),
    [['Device.LocalAgent.', [['SoftwareVersion', 7013]]]],
  );
  assert.equal(good!.operStatus!.operStatus, 'operSuccess');
  assert.equal((await h.values(`${SUB}1.`)).NotifRetry, 'true');
});

test('1.16 Set an invalid value, allow_partial true: oper_failure 7021 (7011), no change to that object', async () => {
  const r = await h.set(`${SUB}1.`, { NotifRetry: 'perhaps', NotifExpiration: '10' }, true);
  const st = r.body.response!.setResp!.updatedObjResults[0]!.operStatus!;
  assert.equal(st.operStatus, 'operFailure');
  assert.equal(st.operFailure!.errCode, 7021);
  assert.deepEqual(
    st.operFailure!.updatedInstFailures[0]!.paramErrs.map((e) => [e.param, e.errCode]),
    [['NotifRetry', 7011]],
  );
  assert.equal((await h.values(`${SUB}1.`)).NotifExpiration, '0');
});

test('1.17 Set with a failing non-required parameter: success, the failure in param_errs, the rest applied', async () => {
  for (const allowPartial of [false, true]) {
    const r = await h.set(`${SUB}1.`, { InvalidParameter: ['x', false], NotifExpiration: allowPartial ? '20' : '10' }, allowPartial);
    assert.equal(r.header.msgType, 'SET_RESP');
    const [inst] = r.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults;
    assert.equal(inst!.affectedPath, `${SUB}1.`);
    assert.deepEqual(inst!.updatedParams, { NotifExpiration: allowPartial ? '20' : '10' });
    assert.deepEqual(
      inst!.paramErrs.map((e) => [e.param, e.errCode]),
      [['InvalidParameter', 7010]],
    );
  }
});

test('1.18 Set through a unique key ([Alias=="two"]): affected_path is the instance number path', async () => {
  const r = await h.set(`${SUB}[Alias=="two"].`, { NotifExpiration: '60' });
  const res = r.body.response!.setResp!.updatedObjResults[0]!;
  assert.equal(res.requestedPath, `${SUB}[Alias=="two"].`);
  assert.deepEqual(
    res.operStatus!.operSuccess!.updatedInstResults.map((i) => [i.affectedPath, i.updatedParams]),
    [[`${SUB}2.`, { NotifExpiration: '60' }]],
  );
});

test('1.19, 1.20 Set through a wildcard (*): every instance', async () => {
  const r = await h.set(`${SUB}*.`, { NotifExpiration: '5' });
  const res = r.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults;
  assert.deepEqual(
    res.map((i) => i.affectedPath),
    [`${SUB}1.`, `${SUB}2.`],
  );
  for (const n of [1, 2]) assert.equal((await h.values(`${SUB}${n}.`)).NotifExpiration, '5');
});

test('1.21, 1.22 Set through a search expression ([Enable==true]): only the matching instances', async () => {
  const r = await h.set(`${SUB}[Enable==true].`, { NotifExpiration: '7' });
  const res = r.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults;
  assert.deepEqual(
    res.map((i) => i.affectedPath),
    [`${SUB}1.`],
  );
  assert.equal((await h.values(`${SUB}2.`)).NotifExpiration, '0');
});

test('1.23 Set through a search expression that matches nothing: empty success, not an error', async () => {
  for (const allowPartial of [false, true]) {
    const r = await h.set(`${SUB}[Alias=="nobody"].`, { NotifExpiration: '7' }, allowPartial);
    assert.equal(r.header.msgType, 'SET_RESP');
    const st = r.body.response!.setResp!.updatedObjResults[0]!.operStatus!;
    assert.equal(st.operStatus, 'operSuccess');
    assert.deepEqual(st.operSuccess!.updatedInstResults, []);
  }
});

test('1.14 Set on a missing instance (no search): Error 7026/7016, allow_partial true: oper_failure', async () => {
  const r = await h.set(`${SUB}99.`, { Enable: 'true' });
  assert.equal(r.header.msgType, 'ERROR');
  assert.ok([7016, 7026].includes(r.body.error!.errCode!), String(r.body.error!.errCode));
  const p = await h.set(`${SUB}99.`, { Enable: 'true' }, true);
  assert.equal(p.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operStatus, 'operFailure');
});

test('1.11 Set by a read-only controller: Error 7006 naming the parameter, no change', async () => {
  const CTL = 'Device.LocalAgent.Controller.1.';
  const r = await h.set(CTL, { ProvisioningCode: 'x' }, false, 'ro');
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.errCode, 7006);
  assert.deepEqual(
    r.body.error!.paramErrs.map((e) => [e.paramPath, e.errCode]),
    [[`${CTL}ProvisioningCode`, 7006]],
  );
  assert.equal((await h.values(CTL)).ProvisioningCode, '');
  // Not required: a success naming the refused setting in param_errs, nothing changed.
  const n = await h.set(CTL, { ProvisioningCode: ['x', false] }, false, 'ro');
  const inst = n.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults[0]!;
  assert.deepEqual(inst.updatedParams, {});
  assert.deepEqual(
    inst.paramErrs.map((e) => [e.param, e.errCode]),
    [['ProvisioningCode', 7006]],
  );
  assert.equal((await h.values(CTL)).ProvisioningCode, '');
});

test('1.19 Set through a search path where one matched object fails, allow_partial true: oper_failure and no object changed (R-SET.2a)', async () => {
  const r = await h.set(`${SUB}*.`, { NotifExpiration: '9', ID: 'id-1' }, true);
  const st = r.body.response!.setResp!.updatedObjResults[0]!.operStatus!;
  assert.equal(st.operStatus, 'operFailure');
  assert.equal(st.operFailure!.errCode, 7021);
  assert.deepEqual(
    st.operFailure!.updatedInstFailures.map((f) => f.affectedPath),
    [`${SUB}2.`],
  );
  assert.equal((await h.values(`${SUB}1.`)).NotifExpiration, '0');
  assert.equal((await h.values(`${SUB}2.`)).NotifExpiration, '0');
});
