/** TP-469 section 1: Operate on the proxy's own commands (CONFORMANCE.md 1.79, 1.91, 1.100; Request objects R-OPR.0). */
import { test, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import { C1, harness, requestMsg, settle, type Harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(() => {
  mock.timers.reset();
  h.close();
});

const timer = (inputArgs: Record<string, string>, sendResp = true) =>
  requestMsg('operate', { command: 'Device.ScheduleTimer()', commandKey: 'key-1', sendResp, inputArgs });

test('1.79 Device.ScheduleTimer(): req_obj_path Request.{i}, the Request row while running, OperationComplete after DelaySeconds, the row removed (R-OPR.0)', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  await h.subscribe({ Enable: 'true', ID: 'oc', NotifType: 'OperationComplete', ReferenceList: 'Device.ScheduleTimer()' });
  const r = await h.ask(timer({ DelaySeconds: '3' }));
  assert.equal(r.header.msgType, 'OPERATE_RESP');
  assert.deepEqual(r.body.response!.operateResp!.operationResults, [
    { executedCommand: 'Device.ScheduleTimer()', operationResp: 'reqObjPath', reqObjPath: 'Device.LocalAgent.Request.1.' },
  ]);
  const row = await h.values('Device.LocalAgent.Request.1.');
  assert.equal(row.Command, 'Device.ScheduleTimer()');
  assert.equal(row.CommandKey, 'key-1');
  assert.equal(row.Originator, C1);
  assert.equal(row.Status, 'Active');
  mock.timers.tick(2999);
  await settle();
  assert.equal(h.notifies((n) => n.notification === 'operComplete').length, 0);
  mock.timers.tick(1);
  await settle();
  const n = h.notifies((x) => x.notification === 'operComplete');
  assert.equal(n.length, 1);
  assert.equal(n[0]!.controllerEid, C1);
  assert.deepEqual(n[0]!.msg.body.request!.notify, {
    subscriptionId: 'oc',
    notification: 'operComplete',
    operComplete: {
      objPath: 'Device.',
      commandName: 'ScheduleTimer()',
      commandKey: 'key-1',
      operationResp: 'reqOutputArgs',
      reqOutputArgs: { outputArgs: {} },
    },
  });
  assert.deepEqual(await h.instances('Device.LocalAgent.Request.'), []);
});

test('1.91 Device.ScheduleTimer() with an unknown input argument: ignored (R-OPR.6)', async () => {
  const r = await h.ask(timer({ DelaySeconds: '1', Bogus: 'x' }));
  assert.equal(r.body.response!.operateResp!.operationResults[0]!.operationResp, 'reqObjPath');
});

test('1.100 Device.ScheduleTimer() without DelaySeconds: OperateResp with cmd_failure 7027 (R-OPR.5), no Request row', async () => {
  const r = await h.ask(timer({}));
  assert.equal(r.header.msgType, 'OPERATE_RESP');
  const [res] = r.body.response!.operateResp!.operationResults;
  assert.equal(res!.executedCommand, 'Device.ScheduleTimer()');
  assert.equal(res!.operationResp, 'cmdFailure');
  assert.equal(res!.cmdFailure!.errCode, 7027);
  assert.deepEqual(await h.instances('Device.LocalAgent.Request.'), []);
  const bad = await h.ask(timer({ DelaySeconds: '-1' }));
  assert.equal(bad.body.response!.operateResp!.operationResults[0]!.cmdFailure!.errCode, 7027);
});

test('1.79 Operate with send_resp false: no OperateResp (R-OPR.4), the command still runs', async () => {
  const r = await h.request(timer({ DelaySeconds: '100' }, false));
  assert.equal(r, null);
  assert.deepEqual(await h.instances('Device.LocalAgent.Request.'), [1]);
});

test('1.79 Operate on an unknown command: Error 7026; by a read-only controller: Error 7006', async () => {
  const r = await h.ask(requestMsg('operate', { command: 'Device.LocalAgent.NoSuch()', sendResp: true, inputArgs: {} }));
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.errCode, 7026);
  const ro = await h.ask(timer({ DelaySeconds: '1' }), 'ro');
  assert.equal(ro.body.error!.errCode, 7006);
  await settle();
});
