/**
 * Slow conformance suite (CONFORMANCE.md 1.54, 1.55, 1.56, 1.59) at real speed and the TR-369
 * default retry parameters (m = 5 s, k = 2000). The cases run concurrently: about 65 s in all.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, settle } from '../conformance/harness.js';

const PC = 'Device.LocalAgent.Controller.1.ProvisioningCode';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(50);
  }
}

describe('conformance timers (real time)', { concurrency: true }, () => {
  test('1.54 Notify retry at the defaults: retry #1 after 5-10 s, #2 10-20 s later, none after the NotifyResp', { timeout: 45_000 }, async () => {
    const h = await harness({ usp: { notifRetryMinWaitS: 5, notifRetryMultiplier: 2000 } });
    try {
      await h.subscribe({ Enable: 'true', ID: 'r', NotifType: 'ValueChange', ReferenceList: PC, NotifRetry: 'true' });
      await h.set('Device.LocalAgent.Controller.1.', { ProvisioningCode: 'x' });
      await settle();
      const vc = () => h.notifies((n) => n.notification === 'valueChange');
      await until(() => vc().length >= 3, 35_000);
      const [a, b, c] = vc();
      const g1 = b!.at - a!.at;
      const g2 = c!.at - b!.at;
      assert.ok(g1 >= 5000 - 50 && g1 <= 10_000 + 500, `retry #1 after ${g1} ms`);
      assert.ok(g2 >= 10_000 - 50 && g2 <= 20_000 + 500, `retry #2 after ${g2} ms`);
      await h.notifyResp(a!);
      assert.equal(h.notifier.pendingCount, 0);
    } finally {
      h.close();
    }
  });

  test('1.55 TimeToLive 3 s removes the subscription', { timeout: 15_000 }, async () => {
    const h = await harness();
    try {
      const t0 = Date.now();
      await h.subscribe({ Enable: 'true', ID: 'ttl', NotifType: 'ValueChange', ReferenceList: PC, TimeToLive: '3' });
      await until(async () => (await h.instances('Device.LocalAgent.Subscription.')).length === 0, 6000);
      const dt = Date.now() - t0;
      assert.ok(dt >= 2000 && dt <= 4500, `removed after ${dt} ms`);
    } finally {
      h.close();
    }
  });

  test('1.56 NotifExpiration 8 s stops the retries (m = 5 s)', { timeout: 30_000 }, async () => {
    const h = await harness({ usp: { notifRetryMinWaitS: 5, notifRetryMultiplier: 2000 } });
    try {
      await h.subscribe({ Enable: 'true', ID: 'exp', NotifType: 'ValueChange', ReferenceList: PC, NotifRetry: 'true', NotifExpiration: '8' });
      await h.set('Device.LocalAgent.Controller.1.', { ProvisioningCode: 'x' });
      await settle();
      await sleep(20_000);
      const vc = h.notifies((n) => n.notification === 'valueChange');
      assert.ok(vc.length >= 1 && vc.length <= 2, `sent ${vc.length}`);
      assert.ok(vc.every((n) => n.at - vc[0]!.at <= 8000));
      assert.equal(h.notifier.pendingCount, 0);
    } finally {
      h.close();
    }
  });

  test('1.59 Periodic! every PeriodicNotifInterval = 60 s (+/- 4 s)', { timeout: 90_000 }, async () => {
    const h = await harness();
    try {
      await h.set('Device.LocalAgent.Controller.1.', { PeriodicNotifInterval: '60' });
      const t0 = Date.now();
      await h.subscribe({ Enable: 'true', ID: 'per', NotifType: 'Event', ReferenceList: 'Device.LocalAgent.Periodic!' });
      await until(() => h.notifies((n) => n.notification === 'event').length >= 1, 70_000);
      const [e] = h.notifies((n) => n.notification === 'event');
      const dt = e!.at - t0;
      assert.ok(dt >= 56_000 && dt <= 64_000, `Periodic! after ${dt} ms`);
      assert.equal(e!.msg.body.request!.notify!.event!.eventName, 'Periodic!');
    } finally {
      h.close();
    }
  });
});
