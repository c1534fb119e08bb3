/** TP-469 section 1: Controller.{i}.BootParameter.{i} rows addressed by unique key and search (CONFORMANCE.md 1.10, 1.33, 1.35, 1.71, 1.83, 1.84, 1.95). */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { C1, harness, requestMsg, type Harness } from './harness.js';

const CTL = `Device.LocalAgent.Controller.[EndpointID=="${C1}"].`;
const BP = 'Device.LocalAgent.Controller.1.BootParameter.';
let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(() => h.close());

async function seed(): Promise<void> {
  for (const [alias, name, enable] of [
    ['bp-a', 'Device.LocalAgent.EndpointID', 'true'],
    ['bp-b', 'Device.LocalAgent.SoftwareVersion', 'false'],
    ['bp-c', 'Device.LocalAgent.UpTime', 'true'],
  ] as const) {
    const r = await h.add(`${CTL}BootParameter.`, { Alias: alias, ParameterName: name, Enable: enable });
    assert.equal(r.header.msgType, 'ADD_RESP', JSON.stringify(r.body));
  }
}

test('1.10 Add a BootParameter under a Controller addressed by unique key: unique_keys Alias + ParameterName', async () => {
  const r = await h.add(`${CTL}BootParameter.`, { Alias: 'bp-a', ParameterName: 'Device.LocalAgent.EndpointID', Enable: 'true' });
  const res = r.body.response!.addResp!.createdObjResults[0]!;
  assert.equal(res.requestedPath, `${CTL}BootParameter.`);
  assert.equal(res.operStatus!.operSuccess!.instantiatedPath, `${BP}1.`);
  assert.deepEqual(res.operStatus!.operSuccess!.uniqueKeys, { Alias: 'bp-a', ParameterName: 'Device.LocalAgent.EndpointID' });
  assert.deepEqual(h.localAgent.bootParameters('os::012345-SN0001', C1), ['Device.LocalAgent.EndpointID']);
});

test('1.10 Add a BootParameter with a duplicate unique key (ParameterName): Error, nothing created', async () => {
  await seed();
  const r = await h.add(`${CTL}BootParameter.`, { ParameterName: 'Device.LocalAgent.EndpointID' });
  assert.equal(r.header.msgType, 'ERROR');
  assert.deepEqual(await h.instances(BP), [1, 2, 3]);
});

test('1.35, 1.71 Get a BootParameter by unique key [Alias=="bp-b"] and by [ParameterName=="..."]', async () => {
  await seed();
  const r = await h.get([`${CTL}BootParameter.[Alias=="bp-b"].`, `${BP}[ParameterName=="Device.LocalAgent.UpTime"].Enable`]);
  const [a, b] = r.body.response!.getResp!.reqPathResults;
  assert.deepEqual(a!.resolvedPathResults, [
    { resolvedPath: `${BP}2.`, resultParams: { Alias: 'bp-b', Enable: 'false', ParameterName: 'Device.LocalAgent.SoftwareVersion' } },
  ]);
  assert.deepEqual(b!.resolvedPathResults, [{ resolvedPath: `${BP}3.`, resultParams: { Enable: 'true' } }]);
});

test('1.83, 1.84 Set and Get BootParameters through [Enable==true]', async () => {
  await seed();
  const s = await h.set(`${BP}[Enable==true].`, { ParameterName: ['Device.LocalAgent.MTPNumberOfEntries', false] });
  // Two rows match; the same ParameterName on both would break the unique key: the second is refused (non-required).
  const insts = s.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults;
  assert.deepEqual(
    insts.map((i) => i.affectedPath),
    [`${BP}1.`, `${BP}3.`],
  );
  assert.deepEqual(
    insts[1]!.paramErrs.map((e) => [e.param, e.errCode]),
    [['ParameterName', 7012]],
  );
  const g = await h.get([`${BP}[Enable==true].ParameterName`]);
  assert.deepEqual(
    g.body.response!.getResp!.reqPathResults[0]!.resolvedPathResults.map((x) => [x.resolvedPath, x.resultParams]),
    [
      [`${BP}1.`, { ParameterName: 'Device.LocalAgent.MTPNumberOfEntries' }],
      [`${BP}3.`, { ParameterName: 'Device.LocalAgent.UpTime' }],
    ],
  );
});

test('1.33 Delete a BootParameter by unique key: affected_paths by instance number', async () => {
  await seed();
  const r = await h.delete([`${CTL}BootParameter.[Alias=="bp-c"].`]);
  assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults, [
    {
      requestedPath: `${CTL}BootParameter.[Alias=="bp-c"].`,
      operStatus: { operStatus: 'operSuccess', operSuccess: { affectedPaths: [`${BP}3.`], unaffectedPathErrs: [] } },
    },
  ]);
  assert.deepEqual(await h.instances(BP), [1, 2]);
});

test('1.95 GetInstances on BootParameter with a search expression: instance paths with their unique keys', async () => {
  await seed();
  const r = await h.ask(requestMsg('getInstances', { objPaths: [`${BP}[Enable==false].`], firstLevelOnly: false }));
  assert.deepEqual(r.body.response!.getInstancesResp!.reqPathResults, [
    {
      requestedPath: `${BP}[Enable==false].`,
      currInsts: [{ instantiatedObjPath: `${BP}2.`, uniqueKeys: { Alias: 'bp-b', ParameterName: 'Device.LocalAgent.SoftwareVersion' } }],
    },
  ]);
});

test('1.84 Set through [Enable==true] that would give two rows the same unique key, allow_partial false: Error, no row changed (R-SET.1)', async () => {
  await seed();
  const r = await h.set(`${BP}[Enable==true].`, { ParameterName: 'Device.LocalAgent.MTPNumberOfEntries' });
  assert.equal(r.header.msgType, 'ERROR');
  assert.equal(r.body.error!.errCode, 7004);
  assert.deepEqual(
    r.body.error!.paramErrs.map((e) => [e.paramPath, e.errCode]),
    [[`${BP}3.ParameterName`, 7012]],
  );
  assert.equal((await h.values(`${BP}1.`)).ParameterName, 'Device.LocalAgent.EndpointID');
  const p = await h.set(`${BP}[Enable==true].`, { ParameterName: 'Device.LocalAgent.MTPNumberOfEntries' }, true);
  assert.equal(p.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operStatus, 'operFailure');
  assert.equal((await h.values(`${BP}1.`)).ParameterName, 'Device.LocalAgent.EndpointID');
});
