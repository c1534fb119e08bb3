/**
 * TP-469 section 1: subscriptions and Notify (CONFORMANCE.md 1.52-1.60, 1.101-1.103). Timers
 * (retry, TimeToLive, NotifExpiration, Periodic!) run on node:test mock timers here; the same
 * cases at real speed are in test/slow/conformance-timers.test.ts.
 */
import { test, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT, C1, C2, harness, requestMsg, settle, type Harness } from './harness.js';

const SUB = 'Device.LocalAgent.Subscription.';
const PC = 'Device.LocalAgent.Controller.1.ProvisioningCode';
let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(() => {
  mock.timers.reset();
  h.close();
});

async function setPc(value: string): Promise<void> {
  const r = await h.set('Device.LocalAgent.Controller.1.', { ProvisioningCode: value });
  assert.equal(r.header.msgType, 'SET_RESP');
  await settle();
}

test('1.52 ValueChange Notify on Controller.{i}.ProvisioningCode: to the Recipient, subscription_id = ID, no send_resp without NotifRetry', async () => {
  await h.subscribe({ Enable: 'true', ID: 'vc-1', NotifType: 'ValueChange', ReferenceList: PC });
  await settle();
  h.sent.length = 0;
  await setPc('code-1');
  const n = h.notifies((x) => x.notification === 'valueChange');
  assert.equal(n.length, 1);
  assert.equal(n[0]!.agentEid, AGENT);
  assert.equal(n[0]!.controllerEid, C1);
  assert.equal(n[0]!.msg.header.msgType, 'NOTIFY');
  assert.ok(n[0]!.msg.header.msgId);
  assert.deepEqual(n[0]!.msg.body.request!.notify, {
    subscriptionId: 'vc-1',
    notification: 'valueChange',
    valueChange: { paramPath: PC, paramValue: 'code-1' },
  });
  // Another controller's subscription goes to that controller only.
  await h.subscribe({ Enable: 'true', ID: 'vc-2', NotifType: 'ValueChange', ReferenceList: 'Device.LocalAgent.Controller.*.ProvisioningCode' }, 'c2');
  await settle();
  h.sent.length = 0;
  await setPc('code-2');
  assert.deepEqual(
    h
      .notifies()
      .map((x) => [x.controllerEid, x.msg.body.request!.notify!.subscriptionId])
      .sort(),
    [
      [C1, 'vc-1'],
      [C2, 'vc-2'],
    ],
  );
});

test('1.52 A disabled subscription or an unchanged value sends nothing', async () => {
  const p = await h.subscribe({ Enable: 'false', ID: 'vc-1', NotifType: 'ValueChange', ReferenceList: PC });
  await setPc('x');
  await h.set(p, { Enable: 'true' });
  await setPc('x');
  assert.equal(h.notifies((x) => x.notification === 'valueChange').length, 0);
});

test('1.53 After the subscription is deleted: silence', async () => {
  const p = await h.subscribe({ Enable: 'true', ID: 'vc-1', NotifType: 'ValueChange', ReferenceList: PC });
  await setPc('a');
  assert.equal(h.notifies((x) => x.notification === 'valueChange').length, 1);
  await h.delete([p]);
  await setPc('b');
  assert.equal(h.notifies((x) => x.notification === 'valueChange').length, 1);
});

test('1.54 NotifRetry: send_resp true, the same Msg retried (m=1 s, k=2000: 1-2 s, then 2-4 s) until the NotifyResp', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  await h.subscribe({ Enable: 'true', ID: 'vc-r', NotifType: 'ValueChange', ReferenceList: PC, NotifRetry: 'true' });
  await setPc('r');
  const first = h.notifies((x) => x.notification === 'valueChange');
  assert.equal(first.length, 1);
  assert.equal(first[0]!.msg.body.request!.notify!.sendResp, true);
  mock.timers.tick(999);
  await settle();
  assert.equal(h.notifies((x) => x.notification === 'valueChange').length, 1, 'no retry before m');
  mock.timers.tick(1001);
  await settle();
  assert.equal(h.notifies((x) => x.notification === 'valueChange').length, 2, 'retry #1 within m..m*k');
  mock.timers.tick(4000);
  await settle();
  const all = h.notifies((x) => x.notification === 'valueChange');
  assert.equal(all.length, 3, 'retry #2 within m*k..m*k^2');
  assert.deepEqual(new Set(all.map((x) => x.msg.header.msgId)).size, 1, 'retries repeat the same msg_id');
  const gap1 = all[1]!.at - all[0]!.at;
  const gap2 = all[2]!.at - all[1]!.at;
  assert.ok(gap1 >= 1000 && gap1 <= 2000, `gap1 ${gap1}`);
  assert.ok(gap2 >= 2000 && gap2 <= 4000, `gap2 ${gap2}`);
  await h.notifyResp(all[0]!);
  assert.equal(h.notifier.pendingCount, 0);
  mock.timers.tick(60_000);
  await settle();
  assert.equal(h.notifies((x) => x.notification === 'valueChange').length, 3, 'no retry after the NotifyResp');
});

test('1.54 A NotifyResp from another controller does not end the retry', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  await h.subscribe({ Enable: 'true', ID: 'vc-r', NotifType: 'ValueChange', ReferenceList: PC, NotifRetry: 'true' });
  await setPc('r');
  await h.notifyResp(h.notifies()[0]!, 'c2');
  assert.equal(h.notifier.pendingCount, 1);
});

test('1.55 TimeToLive removes the subscription (and its notifications stop)', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  await h.subscribe({ Enable: 'true', ID: 'ttl', NotifType: 'ValueChange', ReferenceList: PC, TimeToLive: '5' });
  mock.timers.tick(3000);
  await settle();
  assert.deepEqual(await h.instances(SUB), [1]);
  mock.timers.tick(2500);
  await settle();
  assert.deepEqual(await h.instances(SUB), []);
  h.sent.length = 0;
  await setPc('after');
  assert.equal(h.notifies().length, 0);
});

test('1.56 NotifExpiration stops the retries', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  await h.subscribe({ Enable: 'true', ID: 'exp', NotifType: 'ValueChange', ReferenceList: PC, NotifRetry: 'true', NotifExpiration: '5' });
  await setPc('e');
  for (let i = 0; i < 30; i++) {
    mock.timers.tick(1000);
    await settle();
  }
  const all = h.notifies((x) => x.notification === 'valueChange');
  assert.ok(all.length >= 2 && all.length <= 4, `sent ${all.length}`);
  assert.ok(
    all.every((x) => x.at - all[0]!.at <= 5000),
    'nothing sent after NotifExpiration',
  );
  assert.equal(h.notifier.pendingCount, 0);
});

test('1.57 ObjectCreation Notify for a new Subscription row: obj_path and unique_keys', async () => {
  await h.subscribe({ Enable: 'true', ID: 'oc', NotifType: 'ObjectCreation', ReferenceList: SUB });
  await settle();
  h.sent.length = 0;
  await h.subscribe({ ID: 'created' }, 'c2');
  await settle();
  const n = h.notifies((x) => x.notification === 'objCreation');
  assert.equal(n.length, 1);
  assert.equal(n[0]!.controllerEid, C1);
  assert.deepEqual(n[0]!.msg.body.request!.notify, {
    subscriptionId: 'oc',
    notification: 'objCreation',
    objCreation: { objPath: `${SUB}2.`, uniqueKeys: { Alias: 'cpe-2', ID: 'created', Recipient: 'Device.LocalAgent.Controller.2' } },
  });
});

test('1.58 ObjectDeletion Notify for a deleted Subscription row', async () => {
  await h.subscribe({ Enable: 'true', ID: 'od', NotifType: 'ObjectDeletion', ReferenceList: SUB });
  const p = await h.subscribe({ ID: 'victim' });
  await h.delete([p]);
  await settle();
  const n = h.notifies((x) => x.notification === 'objDeletion');
  assert.deepEqual(
    n.map((x) => x.msg.body.request!.notify),
    [{ subscriptionId: 'od', notification: 'objDeletion', objDeletion: { objPath: `${SUB}2.` } }],
  );
});

test('1.57 An Add that fails and is rolled back (allow_partial false) sends no ObjectCreation', async () => {
  await h.subscribe({ Enable: 'true', ID: 'oc', NotifType: 'ObjectCreation', ReferenceList: SUB });
  await settle();
  h.sent.length = 0;
  const r = await h.addMany(
    [
      { objPath: SUB, settings: { ID: 'good' } },
      { objPath: SUB, settings: { Enable: 'bad' } },
    ],
    false,
  );
  assert.equal(r.header.msgType, 'ERROR');
  await settle();
  assert.deepEqual(
    h.notifies().map((x) => x.msg.body.request!.notify!.notification),
    [],
  );
});

test('1.59 Device.LocalAgent.Periodic! every PeriodicNotifInterval to the subscribed controller', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  await h.set('Device.LocalAgent.Controller.1.', { PeriodicNotifInterval: '60' });
  await h.subscribe({ Enable: 'true', ID: 'per', NotifType: 'Event', ReferenceList: 'Device.LocalAgent.Periodic!' });
  mock.timers.tick(59_000);
  await settle();
  assert.equal(h.notifies((x) => x.notification === 'event').length, 0);
  mock.timers.tick(1000);
  await settle();
  mock.timers.tick(60_000);
  await settle();
  const n = h.notifies((x) => x.notification === 'event');
  assert.equal(n.length, 2);
  assert.deepEqual(n[0]!.msg.body.request!.notify, {
    subscriptionId: 'per',
    notification: 'event',
    event: { objPath: 'Device.LocalAgent.', eventName: 'Periodic!', params: {} },
  });
  assert.equal(n[0]!.controllerEid, C1);
});

test('1.60, 1.101, 1.102, 1.103 SendOnBoardRequest(): OperateResp, then OnBoardRequest (send_resp, empty subscription_id, identity, versions) retried until NotifyResp', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  h.identity = { oui: '012345', productClass: 'Gateway', serialNumber: 'SN0001' };
  const r = await h.ask(
    requestMsg('operate', { command: 'Device.LocalAgent.Controller.2.SendOnBoardRequest()', commandKey: 'ob', sendResp: true, inputArgs: {} }),
  );
  assert.deepEqual(r.body.response!.operateResp!.operationResults, [
    { executedCommand: 'Device.LocalAgent.Controller.2.SendOnBoardRequest()', operationResp: 'reqOutputArgs', reqOutputArgs: { outputArgs: {} } },
  ]);
  await settle();
  const n = h.notifies((x) => x.notification === 'onBoardReq');
  assert.equal(n.length, 1);
  assert.equal(n[0]!.controllerEid, C2);
  assert.deepEqual(n[0]!.msg.body.request!.notify, {
    sendResp: true,
    notification: 'onBoardReq',
    onBoardReq: { oui: '012345', productClass: 'Gateway', serialNumber: 'SN0001', agentSupportedProtocolVersions: '1.0,1.1,1.2,1.3,1.4' },
  });
  mock.timers.tick(2000);
  await settle();
  assert.equal(h.notifies((x) => x.notification === 'onBoardReq').length, 2);
  await h.notifyResp(n[0]!, 'c2');
  mock.timers.tick(60_000);
  await settle();
  assert.equal(h.notifies((x) => x.notification === 'onBoardReq').length, 2);
});

test('1.57 An ObjectCreation subscription is not notified of its own creation', async () => {
  const own = await h.subscribe({ Enable: 'true', ID: 'self', NotifType: 'ObjectCreation', ReferenceList: SUB });
  await settle();
  assert.deepEqual(
    h.notifies((x) => x.notification === 'objCreation').map((x) => x.msg.body.request!.notify!.objCreation!.objPath),
    [],
    `nothing for ${own}`,
  );
});

test('Subscription.Persistent false: kept by a restart of the proxy, ended (silently) by the device reboot', async () => {
  const store = h.store;
  await h.subscribe({ Enable: 'true', ID: 'np', NotifType: 'ObjectDeletion', ReferenceList: SUB });
  await h.subscribe({ Enable: 'true', ID: 'p', NotifType: 'ObjectDeletion', ReferenceList: SUB, Persistent: 'true' });
  await settle();
  // A second agent process on the same store: the proxy restarted.
  const again = await harness({ store });
  try {
    assert.equal((await again.values(`${SUB}1.`)).Persistent, 'false');
    assert.deepEqual(
      again.localAgent.subscriptions(AGENT).map((s) => s.values.ID),
      ['np', 'p'],
    );
    assert.deepEqual(await again.localAgent.deviceRebooted(AGENT), [`${SUB}1.`]);
    await settle();
    assert.deepEqual(
      again.localAgent.subscriptions(AGENT).map((s) => s.values.ID),
      ['p'],
    );
    assert.deepEqual(again.notifies(), [], 'no ObjectDeletion for state a reboot ended');
    assert.deepEqual(
      (await store.listAllSubscriptions()).map((s) => s.values.ID),
      ['p'],
    );
  } finally {
    again.close();
  }
});
