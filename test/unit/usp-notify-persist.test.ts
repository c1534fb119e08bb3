/** A send_resp Notify that was never answered is retried after a restart (TR-369 NotifRetry), and forgotten once answered. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/app/config.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { silentLogger } from '../../src/app/log.js';
import { LocalAgent } from '../../src/usp/agent/local-agent.js';
import { Notifier, type NotifySender } from '../../src/usp/agent/notify.js';
import type { Msg } from '../../src/usp/codec/record.js';

const AGENT = 'os::000001-N1';
const CTL = 'proto::ctl';

function fakeEndpoint(sent: Msg[]): NotifySender {
  return { sendToController: async (_a: string, _c: string, m: Msg) => (sent.push(m), true) };
}

test('an unanswered send_resp Notify survives a restart and stops after NotifyResp', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-notify-'));
  try {
    const config = loadConfig({ env: {}, overrides: { controllers: [{ endpointId: CTL }], 'usp.notifRetryMinWaitS': 1, 'usp.notifRetryMultiplier': 1000 } });
    const file = path.join(dir, 'p.db');
    let store = openSqliteStore(file);
    let la = new LocalAgent(config, store, '1');
    const sent1: Msg[] = [];
    let n = new Notifier({ localAgent: la, endpoint: fakeEndpoint(sent1), usp: config.usp, log: silentLogger(), store });
    await n.start([]);
    const ctx = { agentEid: AGENT, controllerEid: CTL };
    const r = await la.model.add(ctx, 'Device.LocalAgent.Subscription.', [
      { param: 'Enable', value: 'true', required: true },
      { param: 'ID', value: 's1', required: true },
      { param: 'NotifType', value: 'ValueChange', required: true },
      { param: 'ReferenceList', value: 'Device.LocalAgent.Controller.1.ProvisioningCode', required: true },
      { param: 'NotifRetry', value: 'true', required: true },
      { param: 'Persistent', value: 'true', required: true },
    ]);
    assert.ok(r.ok);
    await la.model.set(ctx, 'Device.LocalAgent.Controller.1.', [{ param: 'ProvisioningCode', value: 'pc-1', required: true }]);
    await new Promise((res) => setTimeout(res, 50));
    const notify = sent1.find((m) => m.body.request?.notify?.valueChange);
    assert.ok(notify, 'ValueChange Notify sent');
    assert.equal(notify.body.request!.notify!.sendResp, true);
    assert.equal((await store.listPendingNotifies()).length, 1);
    n.stop();
    la.close();
    await store.close();

    // Restart: the pending Notify is resent with the same msg_id until answered.
    store = openSqliteStore(file);
    la = new LocalAgent(config, store, '1');
    await la.restore();
    const sent2: Msg[] = [];
    n = new Notifier({ localAgent: la, endpoint: fakeEndpoint(sent2), usp: config.usp, log: silentLogger(), store });
    await n.start(la.agentsWithSubscriptions());
    assert.equal(n.pendingCount, 1);
    const deadline = Date.now() + 3000;
    while (sent2.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    assert.equal(sent2[0]?.header.msgId, notify.header.msgId, 'the same Notify is retried after the restart');
    n.acknowledged(AGENT, CTL, notify.header.msgId);
    assert.equal(n.pendingCount, 0);
    await new Promise((res) => setTimeout(res, 20));
    assert.equal((await store.listPendingNotifies()).length, 0);
    n.stop();
    la.close();
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Request rows of running async commands are stored and come back after a restart', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-req-'));
  try {
    const config = loadConfig({ env: {}, overrides: { controllers: [{ endpointId: CTL }] } });
    const file = path.join(dir, 'r.db');
    let store = openSqliteStore(file);
    let la = new LocalAgent(config, store, '1');
    const p1 = await la.createRequest(AGENT, CTL, 'Device.Reboot()', 'rk');
    const p2 = await la.createRequest(AGENT, CTL, 'Device.IP.Diagnostics.IPPing()', 'pk');
    la.finishRequest(AGENT, p2);
    await new Promise((r) => setTimeout(r, 10));
    la.close();
    await store.close();

    store = openSqliteStore(file);
    la = new LocalAgent(config, store, '1');
    await la.restore();
    const back = la.requestsAfterRestart();
    assert.deepEqual(
      back.map((r) => [r.agentEid, r.path, r.values.Command, r.values.CommandKey]),
      [[AGENT, p1, 'Device.Reboot()', 'rk']],
    );
    assert.equal(la.model.rows(AGENT, 'Device.LocalAgent.Request.').size, 1, 'the row is in the agent model again');
    // A new request never reuses the restored number.
    assert.notEqual(await la.createRequest(AGENT, CTL, 'Device.Reboot()', 'x'), p1);
    la.close();
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
