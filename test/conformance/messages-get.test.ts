/** TP-469 section 1: the Get message (CONFORMANCE.md 1.36-1.51, 1.82, 1.86, 1.87, 1.89). */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT, harness, type Harness } from './harness.js';
import type { Msg } from '../../src/usp/codec/record.js';

const SUB = 'Device.LocalAgent.Subscription.';
let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(() => h.close());

const results = (r: Msg) => r.body.response!.getResp!.reqPathResults;

test('1.36 Get Device.LocalAgent.EndpointID: resolved_path is the parent object, result key relative (R-GET.2, R-GET.3)', async () => {
  const r = await h.get(['Device.LocalAgent.EndpointID']);
  assert.equal(r.header.msgType, 'GET_RESP');
  assert.deepEqual(results(r), [
    { requestedPath: 'Device.LocalAgent.EndpointID', resolvedPathResults: [{ resolvedPath: 'Device.LocalAgent.', resultParams: { EndpointID: AGENT } }] },
  ]);
});

test('1.37 Get two parameters in one message: one req_path_result each', async () => {
  const r = await h.get(['Device.LocalAgent.EndpointID', 'Device.LocalAgent.SoftwareVersion']);
  assert.deepEqual(
    results(r).map((x) => [x.requestedPath, x.resolvedPathResults[0]!.resultParams]),
    [
      ['Device.LocalAgent.EndpointID', { EndpointID: AGENT }],
      ['Device.LocalAgent.SoftwareVersion', { SoftwareVersion: '1.2.3-test' }],
    ],
  );
});

test('1.38, 1.39 Get an object path: the object and its sub-objects, relative keys, no errors', async () => {
  const r = await h.get(['Device.LocalAgent.']);
  const [res] = results(r);
  assert.equal(res!.errCode, undefined);
  const byPath = new Map(res!.resolvedPathResults.map((x) => [x.resolvedPath, x.resultParams]));
  assert.equal(byPath.get('Device.LocalAgent.')!.EndpointID, AGENT);
  assert.equal(byPath.get('Device.LocalAgent.')!.ControllerNumberOfEntries, '3');
  assert.equal(byPath.get('Device.LocalAgent.Controller.1.')!.EndpointID, 'proto::controller-1');
  assert.equal(byPath.get('Device.LocalAgent.Controller.2.')!.EndpointID, 'proto::controller-2');
  assert.equal(byPath.get('Device.LocalAgent.Controller.1.MTP.1.')!.Protocol, 'MQTT');
  assert.equal(byPath.get('Device.LocalAgent.Controller.1.MTP.1.MQTT.')!.Topic, '/usp/controller-1');
  for (const [p, params] of byPath) for (const k of Object.keys(params)) assert.ok(!k.includes('.'), `${String(p)} has a non-relative key ${k}`);
});

test('1.40, 1.41 Get with one invalid path among valid ones: only that path errors (7026, R-GET.0)', async () => {
  const r = await h.get(['Device.LocalAgent.EndpointID', 'Device.LocalAgent.InvalidParameter', 'Device.LocalAgent.Controller.99.']);
  const [ok, bad, missing] = results(r);
  assert.equal(ok!.resolvedPathResults[0]!.resultParams.EndpointID, AGENT);
  assert.equal(bad!.errCode, 7026);
  assert.deepEqual(bad!.resolvedPathResults, []);
  assert.equal(missing!.errCode, 7026);
});

test('1.42 Get with an invalid path syntax: an error in that result', async () => {
  const r = await h.get(['Device..LocalAgent']);
  assert.equal(r.header.msgType, 'GET_RESP');
  assert.ok([7008, 7026].includes(results(r)[0]!.errCode!));
});

async function twoSubs(): Promise<void> {
  await h.subscribe({ Alias: 's-a', ID: 'a', Enable: 'true', NotifExpiration: '10' });
  await h.subscribe({ Alias: 's-b', ID: 'b', Enable: 'false', NotifExpiration: '20' });
}

test('1.43 Get with a unique key [Alias=="s-b"]', async () => {
  await twoSubs();
  const r = await h.get([`${SUB}[Alias=="s-b"].ID`]);
  assert.deepEqual(results(r)[0]!.resolvedPathResults, [{ resolvedPath: `${SUB}2.`, resultParams: { ID: 'b' } }]);
});

test('1.44 Get with a wildcard: every instance', async () => {
  await twoSubs();
  const r = await h.get([`${SUB}*.ID`]);
  assert.deepEqual(results(r)[0]!.resolvedPathResults, [
    { resolvedPath: `${SUB}1.`, resultParams: { ID: 'a' } },
    { resolvedPath: `${SUB}2.`, resultParams: { ID: 'b' } },
  ]);
});

const cases: [string, string, string[]][] = [
  ['1.45', '[Enable==true]', ['a']],
  ['1.46', '[Enable!=true]', ['b']],
  ['1.47', '[NotifExpiration>10]', ['b']],
  ['1.48', '[NotifExpiration<20]', ['a']],
  ['1.49', '[NotifExpiration>=10]', ['a', 'b']],
  ['1.50', '[NotifExpiration<=10]', ['a']],
  ['1.51', '[Enable==true&&NotifExpiration==10]', ['a']],
];
for (const [n, expr, ids] of cases) {
  test(`${n} Get with the search expression ${expr}`, async () => {
    await twoSubs();
    const r = await h.get([`${SUB}${expr}.ID`]);
    assert.deepEqual(
      results(r)[0]!.resolvedPathResults.map((x) => x.resultParams.ID),
      ids,
    );
  });
}

test('1.82 Get on an empty table: no error, empty result (R-GET.1b)', async () => {
  const r = await h.get([SUB]);
  assert.deepEqual(results(r), [{ requestedPath: SUB, resolvedPathResults: [] }]);
});

test('1.86, 1.87 Get with a search that matches nothing (and * on an empty table): no error, empty result (R-GET.1a)', async () => {
  await twoSubs();
  const r = await h.get([`${SUB}[Alias=="nobody"].`, `${SUB}[NotifExpiration>99].ID`, 'Device.LocalAgent.Request.*.Status']);
  for (const x of results(r)) {
    assert.equal(x.errCode, undefined, x.requestedPath);
    assert.deepEqual(x.resolvedPathResults, []);
  }
});

test('1.89 Get with max_depth 0/1/2 (R-GET.5)', async () => {
  const paths = async (d: number) => results(await h.get(['Device.LocalAgent.'], d))[0]!.resolvedPathResults.map((x) => x.resolvedPath);
  const d1 = await paths(1);
  assert.deepEqual(d1, ['Device.LocalAgent.']);
  const d2 = await paths(2);
  assert.ok(d2.includes('Device.LocalAgent.Controller.1.') && d2.includes('Device.LocalAgent.MTP.1.'));
  assert.ok(!d2.some((p) => p!.startsWith('Device.LocalAgent.Controller.1.MTP.')));
  const d3 = await paths(3);
  assert.ok(d3.includes('Device.LocalAgent.Controller.1.MTP.1.') && !d3.includes('Device.LocalAgent.Controller.1.MTP.1.MQTT.'));
  const d0 = await paths(0);
  assert.ok(d0.includes('Device.LocalAgent.Controller.1.MTP.1.MQTT.'));
  assert.ok(d0.length > d2.length);
});
