/**
 * Detection of a device's own USP Agent (src/migration/detect.ts) on the values of the reference
 * dumps: the TP-Link EX220 (TR-181 with LocalAgent and MQTT.Client), the bundled TR-181 model
 * (none), the dual-stack simulator model, a TR-098 device.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { DETECTION_PARAMS, detectUspAgent } from '../../src/migration/detect.js';
import { DeviceModel, loadModel } from '../../src/tools/sim/model.js';
import { dualStackTemplate } from '../../src/tools/sim/native-agent.js';
import { hasReference, REFERENCE } from '../helpers/paths.js';

const at = new Date('2026-12-05T12:00:00Z');
const valuesOf = (m: DeviceModel): Record<string, string> => Object.fromEntries(DETECTION_PARAMS.filter((p) => m.has(p)).map((p) => [p, m.get(p) ?? '']));

test('the EX220 dump: a dual-stack device with its own Endpoint ID over MQTT', { skip: !hasReference('cwmp-models') && 'reference dumps absent' }, () => {
  const m = new DeviceModel(loadModel(path.join(REFERENCE, 'cwmp-models', 'tplink-EX220-tr181.csv')));
  const d = detectUspAgent('Device', valuesOf(m), at);
  assert.equal(d.dualStack, true, d.reason);
  assert.equal(d.endpointId, 'USP::1C61B4379E1E');
  assert.deepEqual(d.protocols, ['MQTT']);
  assert.equal(d.mtps, 1);
  assert.equal(d.mqttClients, 1);
  assert.equal(d.controllers, 1);
  assert.equal(d.checkedAt, at.toISOString());
});

test('the bundled TR-181 model lists no LocalAgent; with quirk dual-stack it does (Endpoint ID still empty until set)', () => {
  const plain = detectUspAgent('Device', valuesOf(new DeviceModel(loadModel('tr181'))), at);
  assert.equal(plain.dualStack, false);
  assert.match(plain.reason, /lists no Device\.LocalAgent\.EndpointID/);
  const ds = new DeviceModel(dualStackTemplate(loadModel('tr181')));
  assert.match(detectUspAgent('Device', valuesOf(ds), at).reason, /EndpointID is empty/);
  ds.set('Device.LocalAgent.EndpointID', 'os::F0AD4E-1');
  assert.equal(detectUspAgent('Device', valuesOf(ds), at).dualStack, true);
});

test('no MTP and no MQTT client, or a TR-098 device: not dual-stack', () => {
  assert.equal(detectUspAgent('Device', { 'Device.LocalAgent.EndpointID': 'x', 'Device.LocalAgent.MTPNumberOfEntries': '0' }, at).dualStack, false);
  assert.equal(detectUspAgent('InternetGatewayDevice', { 'Device.LocalAgent.EndpointID': 'x' }, at).dualStack, false);
  assert.equal(detectUspAgent('Device', { 'Device.LocalAgent.EndpointID': 'x', 'Device.LocalAgent.MTPNumberOfEntries': 'junk' }, at).mtps, 0);
});
