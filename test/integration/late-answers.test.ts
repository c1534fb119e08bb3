/**
 * A late answer for a controller that disconnected (issue 16 item 6): a controller sends a Set on
 * a CPE parameter over a real WebSocket and goes away before the CWMP session behind it ends; the
 * SetResp is kept and delivered, with its msg_id, when the controller connects again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { UspControllerClient, set } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CTL = 'proto::late-ctl';
let tp: TestProxy;
let fleet: Fleet;
let agent = '';

before(async () => {
  tp = await startTestProxy({ controllers: [{ endpointId: CTL, role: 'full' }] });
  fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp.acsUrl, count: 1, model: 'tr181', serialPrefix: 'LATE', periodicIntervalS: null });
  await fleet.start();
  agent = (await tp.proxy.store.listDevices())[0]!.endpointId;
});

after(async () => {
  await fleet?.stop();
  await tp?.stop();
});

const client = () => new UspControllerClient({ endpointId: CTL, agentId: agent, transport: { mtp: 'ws', url: tp.uspUrl } });

test('a SetResp the controller was not there to receive is delivered when it reconnects', async () => {
  const first = client();
  first.on('error', () => undefined);
  await first.connect();
  const req = set([{ objPath: 'Device.DeviceInfo.', params: { ProvisioningCode: 'late-1' }, required: true }]);
  req.header.msgId = 'late-set-1';
  // Sent, then gone at once: the CWMP session that serves the Set ends after the socket closed.
  void first.request(req, 500).catch(() => undefined);
  await new Promise((r) => setImmediate(r));
  await first.close();
  const endpoint = tp.proxy.usp.endpoint;
  const deadline = Date.now() + 15_000;
  while (endpoint.lateAnswers.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(endpoint.lateAnswers.size, 1, 'the answer is kept');
  assert.equal(fleet.devices[0]!.getValue('Device.DeviceInfo.ProvisioningCode'), 'late-1', 'the Set was done');

  const again = client();
  again.on('error', () => undefined);
  const got = new Promise<Msg>((resolve) => again.on('msg', (m) => m.header.msgId === 'late-set-1' && resolve(m)));
  await again.connect();
  const m = await got;
  assert.equal(m.header.msgType, 'SET_RESP');
  assert.equal(m.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operStatus, 'operSuccess');
  assert.equal(endpoint.lateAnswers.size, 0);
  await again.close();
});
