/**
 * The dual-stack simulator (quirk dual-stack, src/tools/sim/native-agent.ts) over a real
 * mosquitto: settings written over CWMP start the device's native USP Agent, which connects with
 * its own Endpoint ID, sends its MQTTConnect Record and Boot!, answers Get and Set on the data
 * model the CWMP side shows, and stops when disabled.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { SimDevice } from '../../src/tools/sim/device.js';
import { loadModel } from '../../src/tools/sim/model.js';
import { parseQuirks } from '../../src/tools/sim/quirks.js';
import { get, set, UspControllerClient } from '../../src/tools/controller/client.js';
import type { GetParameterValuesResponse, ParameterValueStruct } from '../../src/cwmp/types.js';
import { startMosquitto, type MosquittoHandle } from '../helpers/brokers.js';

const CTL = 'proto::migration-ctl';
let mosq: MosquittoHandle | null = null;

before(async () => {
  mosq = await startMosquitto();
});
after(async () => {
  await mosq?.stop();
});

function spv(d: SimDevice, values: Record<string, string>): void {
  const parameterList: ParameterValueStruct[] = Object.entries(values).map(([name, value]) => ({ name, value, type: 'xsd:string' }));
  const a = d.handleRpc({ method: 'SetParameterValues', parameterList, parameterKey: 'k' });
  assert.equal(a.method, 'SetParameterValuesResponse', JSON.stringify(a));
}

function gpv(d: SimDevice, names: string[]): Record<string, string> {
  const a = d.handleRpc({ method: 'GetParameterValues', parameterNames: names }) as GetParameterValuesResponse;
  return Object.fromEntries(a.parameterList.map((p) => [p.name, p.value]));
}

function settings(port: number, enable: boolean): Record<string, string> {
  return {
    'Device.MQTT.Client.1.BrokerAddress': '127.0.0.1',
    'Device.MQTT.Client.1.BrokerPort': String(port),
    'Device.MQTT.Client.1.ClientID': 'sim-native-1',
    'Device.MQTT.Client.1.Enable': String(enable),
    'Device.LocalAgent.MTP.1.MQTT.ResponseTopicConfigured': '/usp/native/sim-1',
    'Device.LocalAgent.MTP.1.Enable': String(enable),
    'Device.LocalAgent.Controller.1.EndpointID': CTL,
    'Device.LocalAgent.Controller.1.MTP.1.MQTT.Topic': '/usp/ctl/migration',
    'Device.LocalAgent.Controller.1.Enable': String(enable),
  };
}

test('a dual-stack device starts its native agent when configured over CWMP, answers Get/Set under its own Endpoint ID, and stops when disabled', async (t) => {
  if (!mosq) return t.skip('mosquitto not installed');
  const d = new SimDevice({ template: loadModel('tr181'), serial: 'DS0001', acsUrl: 'http://127.0.0.1:9/', quirks: parseQuirks('dual-stack') });
  t.after(() => d.stop());
  const eid = gpv(d, ['Device.LocalAgent.EndpointID'])['Device.LocalAgent.EndpointID'];
  assert.equal(eid, `os::${d.deviceId.oui}-DS0001`);
  assert.equal(d.native?.settings, null, 'disabled until configured');

  const ctl = new UspControllerClient({
    endpointId: CTL,
    agentId: eid,
    transport: { mtp: 'mqtt', url: mosq.url, controllerTopic: '/usp/ctl/migration', agentTopic: '/usp/native/sim-1' },
  });
  await ctl.connect();
  t.after(() => ctl.close());
  const records: string[] = [];
  ctl.on('record', (r) => records.push(`${r.fromId} ${r.recordType.kind}`));
  const boot = once(ctl, 'notify');

  spv(d, settings(mosq.port, true));
  const up = once(d.native!, 'up');
  await d.native!.reconcile();
  const [info] = (await up) as [{ endpointId: string }];
  assert.equal(info.endpointId, eid);
  const [bootMsg] = (await boot) as [import('../../src/usp/codec/record.js').Msg];
  assert.equal(bootMsg.body.request?.notify?.event?.eventName, 'Boot!');
  assert.ok(records.includes(`${eid} mqttConnect`), `MQTTConnect Record from the native agent: ${records.join(', ')}`);
  assert.equal(gpv(d, ['Device.MQTT.Client.1.Status'])['Device.MQTT.Client.1.Status'], 'Connected');

  // Get: the same values as over CWMP.
  const names = ['Device.DeviceInfo.SerialNumber', 'Device.DeviceInfo.SoftwareVersion', 'Device.DeviceInfo.ProvisioningCode'];
  const r = await ctl.request(get([...names, 'Device.MQTT.Client.1.']));
  const results = r.body.response?.getResp?.reqPathResults ?? [];
  const got: Record<string, string> = {};
  for (const rp of results) for (const rr of rp.resolvedPathResults) for (const [k, v] of Object.entries(rr.resultParams)) got[rr.resolvedPath + k] = v;
  const cwmp = gpv(d, names);
  for (const n of names) assert.equal(got[n], cwmp[n], n);
  assert.equal(got['Device.MQTT.Client.1.ClientID'], 'sim-native-1');
  assert.equal(got['Device.MQTT.Client.1.Password'], '', 'secured parameters read empty');

  // Set through the native agent: the CWMP side sees it.
  const s = await ctl.request(set([{ objPath: 'Device.DeviceInfo.', params: { ProvisioningCode: 'native-set' } }]));
  assert.equal(s.body.response?.setResp?.updatedObjResults[0].operStatus?.operStatus, 'operSuccess', JSON.stringify(s.body));
  assert.equal(gpv(d, ['Device.DeviceInfo.ProvisioningCode'])['Device.DeviceInfo.ProvisioningCode'], 'native-set');
  const bad = await ctl.request(set([{ objPath: 'Device.DeviceInfo.', params: { SerialNumber: 'x' } }]));
  assert.equal(bad.body.error?.errCode, 7004, 'a read-only parameter fails the Set');

  // Disabled over CWMP: the agent stops.
  const down = once(d.native!, 'down');
  spv(d, { 'Device.LocalAgent.MTP.1.Enable': 'false' });
  await d.native!.reconcile();
  await down;
  assert.equal(d.native!.settings, null);
  assert.equal(gpv(d, ['Device.MQTT.Client.1.Status'])['Device.MQTT.Client.1.Status'], 'Disabled');
});

test('the native agent refuses a controller that is not configured (7006)', async (t) => {
  if (!mosq) return t.skip('mosquitto not installed');
  const d = new SimDevice({ template: loadModel('tr181'), serial: 'DS0002', acsUrl: 'http://127.0.0.1:9/', quirks: parseQuirks('dual-stack') });
  t.after(() => d.stop());
  const eid = `os::${d.deviceId.oui}-DS0002`;
  spv(d, { ...settings(mosq.port, true), 'Device.LocalAgent.MTP.1.MQTT.ResponseTopicConfigured': '/usp/native/sim-2' });
  const up = once(d.native!, 'up');
  await d.native!.reconcile();
  await up;
  const stranger = new UspControllerClient({
    endpointId: 'proto::stranger',
    agentId: eid,
    transport: { mtp: 'mqtt', url: mosq.url, controllerTopic: '/usp/ctl/stranger', agentTopic: '/usp/native/sim-2' },
  });
  await stranger.connect();
  t.after(() => stranger.close());
  const r = await stranger.request(get(['Device.DeviceInfo.SerialNumber']));
  assert.equal(r.body.error?.errCode, 7006);
});
