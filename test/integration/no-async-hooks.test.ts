/**
 * No AsyncLocalStorage or async hook runs in a started proxy (issue 22 item 2): once one has run,
 * Node 20 makes every promise of the process pay the async_hooks promise hooks. The request scope
 * (src/usp/request-scope.ts) is passed explicitly instead. async_hooks is watched before anything
 * of the proxy is loaded; then a proxy serves a simulated CWMP device's Gets, a Set and a
 * GetSupportedDM over WebSocket, and a Get of its own Device.LocalAgent., and nothing may have
 * entered an AsyncLocalStorage or enabled a hook.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import asyncHooks from 'node:async_hooks';
import { syncBuiltinESMExports } from 'node:module';

const entered: string[] = [];
const Als = asyncHooks.AsyncLocalStorage;
const run = Als.prototype.run;
const enterWith = Als.prototype.enterWith;
Als.prototype.run = function (this: InstanceType<typeof Als>, ...args: Parameters<typeof run>) {
  entered.push(`AsyncLocalStorage.run\n${new Error().stack}`);
  return run.apply(this, args);
} as typeof run;
Als.prototype.enterWith = function (this: InstanceType<typeof Als>, store: unknown) {
  entered.push(`AsyncLocalStorage.enterWith\n${new Error().stack}`);
  return enterWith.call(this, store);
};
const createHook = asyncHooks.createHook;
asyncHooks.createHook = (callbacks) => {
  const hook = createHook(callbacks);
  const enable = hook.enable.bind(hook);
  hook.enable = () => {
    entered.push(`async_hooks.createHook().enable\n${new Error().stack}`);
    return enable();
  };
  return hook;
};
// `import { createHook } from 'node:async_hooks'` in a module loaded later sees the watched one too.
syncBuiltinESMExports();

test('a started proxy serving USP requests for a CWMP device runs no AsyncLocalStorage and enables no async hook', async () => {
  const { startTestProxy } = await import('../helpers/test-proxy.js');
  const { Fleet } = await import('../../src/tools/sim/fleet.js');
  const { STRICT_SIM } = await import('../helpers/sim.js');
  const { UspControllerClient, get, set, getSupportedDM } = await import('../../src/tools/controller/client.js');
  const CTL = 'proto::no-hooks-ctl';
  const p = await startTestProxy({ controllers: [{ endpointId: CTL, role: 'full' }], 'acs.connectionRequest.retries': 0 });
  const fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: p.acsUrl,
    count: 1,
    model: 'tr181',
    serialPrefix: 'NOH',
    periodicIntervalS: null,
  });
  let client: InstanceType<typeof UspControllerClient> | null = null;
  try {
    await fleet.start();
    const rec = (await p.proxy.store.listDevices()).find((r) => r.deviceId.serialNumber === fleet.devices[0]!.serial);
    assert.ok(rec, 'the device registered');
    client = new UspControllerClient({ agentId: rec.endpointId, endpointId: CTL, transport: { mtp: 'ws', url: p.uspUrl }, timeoutMs: 10_000 });
    await client.connect();
    const g = await client.request(get(['Device.DeviceInfo.SerialNumber', 'Device.WiFi.SSID.*.SSID']));
    const results = g.body.response?.getResp?.reqPathResults ?? [];
    assert.equal(results[0]?.resolvedPathResults[0]?.resultParams.SerialNumber, fleet.devices[0]!.serial, JSON.stringify(g.body));
    assert.ok((results[1]?.resolvedPathResults.length ?? 0) > 0, JSON.stringify(g.body));
    const s = await client.request(set([{ objPath: 'Device.WiFi.SSID.1.', params: { SSID: 'no-hooks' } }]));
    assert.equal(s.header.msgType, 'SET_RESP', JSON.stringify(s.body));
    const again = await client.request(get(['Device.WiFi.SSID.1.SSID', 'Device.LocalAgent.EndpointID']));
    const r2 = again.body.response?.getResp?.reqPathResults ?? [];
    assert.equal(r2[0]?.resolvedPathResults[0]?.resultParams.SSID, 'no-hooks');
    assert.equal(r2[1]?.resolvedPathResults[0]?.resultParams.EndpointID, rec.endpointId);
    const dm = await client.request(getSupportedDM(['Device.WiFi.'], { returnParams: true }));
    assert.equal(dm.header.msgType, 'GET_SUPPORTED_DM_RESP', JSON.stringify(dm.body));
  } finally {
    await client?.close();
    await fleet.stop();
    await p.stop();
  }
  assert.deepEqual(entered, [], entered.join('\n\n'));
  // The watch itself sees a run (so the empty list above is not for want of looking).
  new Als().run({}, () => undefined);
  assert.equal(entered.length, 1);
});
