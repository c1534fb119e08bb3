/** TP-469 section 1: GetInstances, GetSupportedDM, GetSupportedProtocol (CONFORMANCE.md 1.66-1.68, 1.70, 1.72-1.77, 1.80, 1.97-1.99, 1.105-1.107 P parts). */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { harness, requestMsg, type Harness } from './harness.js';
import type { Msg, SupportedObjectResult } from '../../src/usp/codec/record.js';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(() => h.close());

const CTL = 'Device.LocalAgent.Controller.';
const gi = async (objPaths: string[], firstLevelOnly: boolean) =>
  (await h.ask(requestMsg('getInstances', { objPaths, firstLevelOnly }))).body.response!.getInstancesResp!.reqPathResults;
const gsdm = async (objPaths: string[], firstLevelOnly = false): Promise<Msg> =>
  h.ask(requestMsg('getSupportedDm', { objPaths, firstLevelOnly, returnCommands: true, returnEvents: true, returnParams: true, returnUniqueKeySets: true }));

test('1.66 GetInstances on Controller. (first_level_only true): every Controller row with its unique keys', async () => {
  const [r] = await gi([CTL], true);
  assert.equal(r!.requestedPath, CTL);
  assert.deepEqual(
    r!.currInsts,
    [1, 2, 3].map((n) => ({
      instantiatedObjPath: `${CTL}${n}.`,
      uniqueKeys: { Alias: `cpe-${n}`, EndpointID: ['proto::controller-1', 'proto::controller-2', 'proto::controller-ro'][n - 1]! },
    })),
  );
});

test('1.67 GetInstances on Controller. (first_level_only false): the rows and the tables below them', async () => {
  await h.add(`${CTL}1.BootParameter.`, { Alias: 'bp', ParameterName: 'Device.LocalAgent.EndpointID' });
  const [r] = await gi([CTL], false);
  const paths = r!.currInsts.map((c) => c.instantiatedObjPath);
  assert.ok(paths.includes(`${CTL}1.`) && paths.includes(`${CTL}1.MTP.1.`) && paths.includes(`${CTL}1.BootParameter.1.`), paths.join(' '));
  assert.deepEqual(r!.currInsts.find((c) => c.instantiatedObjPath === `${CTL}1.BootParameter.1.`)!.uniqueKeys, {
    Alias: 'bp',
    ParameterName: 'Device.LocalAgent.EndpointID',
  });
});

test('1.68, 1.70 GetInstances on LocalAgent.MTP. and on an empty table; an invalid path errors alone', async () => {
  const [mtp, subs, bad] = await gi(['Device.LocalAgent.MTP.', 'Device.LocalAgent.Subscription.', 'Device.LocalAgent.Nope.'], true);
  assert.deepEqual(mtp!.currInsts, [
    { instantiatedObjPath: 'Device.LocalAgent.MTP.1.', uniqueKeys: { Alias: 'websocket' } },
    { instantiatedObjPath: 'Device.LocalAgent.MTP.2.', uniqueKeys: { Alias: 'mqtt' } },
  ]);
  assert.deepEqual(subs, { requestedPath: 'Device.LocalAgent.Subscription.', currInsts: [] });
  assert.equal(bad!.errCode, 7026);
});

const obj = (r: Msg, path: string): SupportedObjectResult => {
  const o = r.body.response!.getSupportedDmResp!.reqObjResults.flatMap((x) => x.supportedObjs).find((s) => s.supportedObjPath === path);
  assert.ok(o, `${path} missing`);
  // proto3 enum 0 values (OBJ_READ_ONLY, PARAM_READ_ONLY...) are absent on the wire.
  return {
    ...o,
    access: o.access ?? 'OBJ_READ_ONLY',
    supportedParams: o.supportedParams.map((p) => ({
      ...p,
      access: p.access ?? 'PARAM_READ_ONLY',
      valueType: p.valueType ?? 'PARAM_UNKNOWN',
      valueChange: p.valueChange ?? 'VALUE_CHANGE_UNKNOWN',
    })),
  };
};

test('1.72 GetSupportedDM on Device.LocalAgent.: access, types, value-change, events, sub-objects', async () => {
  const r = await gsdm(['Device.LocalAgent.']);
  const [res] = r.body.response!.getSupportedDmResp!.reqObjResults;
  assert.equal(res!.reqObjPath, 'Device.LocalAgent.');
  assert.equal(res!.errCode, undefined);
  assert.ok(res!.dataModelInstUri);
  const la = obj(r, 'Device.LocalAgent.');
  assert.equal(la.access, 'OBJ_READ_ONLY');
  assert.equal(la.isMultiInstance, undefined); // false on the wire
  assert.deepEqual(
    la.supportedParams.find((p) => p.paramName === 'EndpointID'),
    { paramName: 'EndpointID', access: 'PARAM_READ_ONLY', valueType: 'PARAM_STRING', valueChange: 'VALUE_CHANGE_ALLOWED' },
  );
  assert.equal(la.supportedParams.find((p) => p.paramName === 'UpTime')!.valueChange, 'VALUE_CHANGE_WILL_IGNORE');
  assert.ok(la.supportedEvents.some((e) => e.eventName === 'Periodic!'));
  const sub = obj(r, 'Device.LocalAgent.Subscription.{i}.');
  assert.equal(sub.access, 'OBJ_ADD_DELETE');
  assert.equal(sub.isMultiInstance, true);
  assert.deepEqual(sub.uniqueKeySets, [{ keyNames: ['Alias'] }, { keyNames: ['Recipient', 'ID'] }]);
  assert.equal(sub.supportedParams.find((p) => p.paramName === 'NotifRetry')!.valueType, 'PARAM_BOOLEAN');
  assert.equal(sub.supportedParams.find((p) => p.paramName === 'TimeToLive')!.valueType, 'PARAM_UNSIGNED_INT');
  assert.equal(sub.supportedParams.find((p) => p.paramName === 'CreationDate')!.access, 'PARAM_READ_ONLY');
  obj(r, 'Device.LocalAgent.Controller.{i}.BootParameter.{i}.');
});

test('1.73, 1.74 GetSupportedDM on Controller.{i}. (and by instance number): command, unique keys, first_level_only', async () => {
  for (const path of ['Device.LocalAgent.Controller.{i}.', 'Device.LocalAgent.Controller.1.']) {
    const r = await gsdm([path], true);
    const ctl = obj(r, 'Device.LocalAgent.Controller.{i}.');
    assert.equal(ctl.access, 'OBJ_DELETE_ONLY');
    assert.deepEqual(ctl.uniqueKeySets, [{ keyNames: ['Alias'] }, { keyNames: ['EndpointID'] }]);
    assert.deepEqual(ctl.supportedCommands, [{ commandName: 'SendOnBoardRequest()', commandType: 'CMD_SYNC', inputArgNames: [], outputArgNames: [] }]);
    assert.equal(ctl.supportedParams.find((p) => p.paramName === 'ProvisioningCode')!.access, 'PARAM_READ_WRITE');
    const paths = r.body.response!.getSupportedDmResp!.reqObjResults[0]!.supportedObjs.map((o) => o.supportedObjPath);
    assert.ok(paths.includes('Device.LocalAgent.Controller.{i}.BootParameter.{i}.'));
    assert.ok(!paths.includes('Device.LocalAgent.Controller.{i}.MTP.{i}.WebSocket.'), 'first_level_only');
  }
});

test('1.75 GetSupportedDM on LocalAgent.MTP.{i}.: read-only table with its sub-objects', async () => {
  const r = await gsdm(['Device.LocalAgent.MTP.']);
  assert.equal(obj(r, 'Device.LocalAgent.MTP.{i}.').access, 'OBJ_READ_ONLY');
  obj(r, 'Device.LocalAgent.MTP.{i}.MQTT.');
});

test('1.99, 1.107 GetSupportedDM on one parameter / one command: only that element', async () => {
  const r = await gsdm(['Device.LocalAgent.EndpointID', 'Device.ScheduleTimer()']);
  const [p, c] = r.body.response!.getSupportedDmResp!.reqObjResults;
  assert.deepEqual(
    p!.supportedObjs[0]!.supportedParams.map((x) => x.paramName),
    ['EndpointID'],
  );
  assert.deepEqual(c!.supportedObjs[0]!.supportedCommands, [
    { commandName: 'ScheduleTimer()', commandType: 'CMD_ASYNC', inputArgNames: ['DelaySeconds'], outputArgNames: [] },
  ]);
  assert.deepEqual(c!.supportedObjs[0]!.supportedParams, []);
});

test('1.76, 1.97, 1.105, 1.106 (P part) GetSupportedDM on Device.: the proxy-served model, a type for every parameter', async () => {
  const r = await gsdm(['Device.']);
  const objs = r.body.response!.getSupportedDmResp!.reqObjResults[0]!.supportedObjs;
  assert.ok(objs.some((o) => o.supportedObjPath === 'Device.LocalAgent.Subscription.{i}.'));
  assert.ok(obj(r, 'Device.').supportedCommands.some((c) => c.commandName === 'ScheduleTimer()'));
  for (const o of objs) for (const p of o.supportedParams) assert.ok(p.valueType && p.valueType !== 'PARAM_UNKNOWN', `${o.supportedObjPath}${p.paramName}`);
  for (const o of objs) for (const p of o.supportedParams) assert.ok(p.valueChange, `${o.supportedObjPath}${p.paramName} value_change`);
});

test('1.77 GetSupportedDM on an unsupported object: the error inside the result, others unaffected', async () => {
  const r = await gsdm(['Device.LocalAgent.NoSuchObject.', 'Device.LocalAgent.']);
  assert.equal(r.header.msgType, 'GET_SUPPORTED_DM_RESP');
  const [bad, good] = r.body.response!.getSupportedDmResp!.reqObjResults;
  assert.equal(bad!.reqObjPath, 'Device.LocalAgent.NoSuchObject.');
  assert.equal(bad!.errCode, 7026);
  assert.deepEqual(bad!.supportedObjs, []);
  assert.ok(good!.supportedObjs.length > 0);
});

test('1.80 GetSupportedProtocol: the versions as a comma-separated list', async () => {
  const r = await h.ask(requestMsg('getSupportedProtocol', { controllerSupportedProtocolVersions: '1.3,1.4' }));
  assert.equal(r.header.msgType, 'GET_SUPPORTED_PROTO_RESP');
  assert.deepEqual(r.body.response!.getSupportedProtocolResp, { agentSupportedProtocolVersions: '1.0,1.1,1.2,1.3,1.4' });
});
