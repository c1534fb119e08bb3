/**
 * The device console's pure parts: the online-state rule (last Inform and last connection
 * request), the translation trace (RPCs attributed to their request, bounds per agent and over
 * agents, no values kept), the tree's child paths, and the status page's recent-errors order.
 * Requests and answers are real USP Msgs decoded from their wire bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { ConnReqOutcomes, onlineState } from '../../src/ops/online.js';
import { TranslationTrace } from '../../src/ops/trace.js';
import { childPaths } from '../../src/ops/console-api.js';
import { set, get } from '../../src/tools/controller/client.js';
import { decodeMsg, encodeMsg, errorMsg, type Msg } from '../../src/usp/codec/record.js';
import { responseMsg } from '../../src/usp/handlers/context.js';
import { RpcError, type RpcOutcome } from '../../src/cwmp/session-types.js';
import { assetPath } from '../../src/util/assets.js';

const wire = (m: Msg): Msg => decodeMsg(encodeMsg(m));
const MIN = 60_000;

test('onlineState: online within the window; unreachable when a connection request after the last Inform failed; offline otherwise', () => {
  const now = 10 * MIN;
  const base = { lastInformMs: now - MIN, periodicInformIntervalS: 300, onlineWindowS: 900, lastConnReq: null, now };
  assert.equal(onlineState(base), 'online');
  assert.equal(onlineState({ ...base, lastInformMs: null }), 'offline', 'never informed');
  assert.equal(onlineState({ ...base, lastInformMs: now - 11 * MIN }), 'offline', 'silent beyond two periodic intervals');
  assert.equal(onlineState({ ...base, periodicInformIntervalS: null, lastInformMs: now - 14 * MIN }), 'online', 'no interval: the configured window');
  assert.equal(onlineState({ ...base, periodicInformIntervalS: null, lastInformMs: now - 15 * MIN }), 'offline');
  // A failed connection request after the last Inform: the device cannot be woken.
  assert.equal(onlineState({ ...base, lastConnReq: { ok: false, atMs: now - 10_000 } }), 'unreachable');
  assert.equal(onlineState({ ...base, lastConnReq: { ok: true, atMs: now - 10_000 } }), 'online');
  // A session it opened since (an Inform after the failure) clears it.
  assert.equal(onlineState({ ...base, lastConnReq: { ok: false, atMs: now - 2 * MIN } }), 'online');
  // Offline wins over unreachable: a device silent beyond its window is offline whatever was tried.
  assert.equal(onlineState({ ...base, lastInformMs: now - 20 * MIN, lastConnReq: { ok: false, atMs: now - 1000 } }), 'offline');
});

test('ConnReqOutcomes keeps the last outcome per device, bounded (least recently noted dropped)', () => {
  const o = new ConnReqOutcomes(2);
  o.note('a', { ok: false, atMs: 1 });
  o.note('b', { ok: true, atMs: 2 });
  o.note('a', { ok: true, atMs: 3 });
  o.note('c', { ok: false, atMs: 4, detail: 'timeout: no answer' });
  assert.equal(o.size, 2);
  assert.equal(o.get('b'), null, 'b was the least recently noted');
  assert.deepEqual(o.get('a'), { ok: true, atMs: 3 });
  assert.equal(o.get('c')?.detail, 'timeout: no answer');
});

test('the trace attributes each RPC to its request, keeps no values, and answers newest first', async () => {
  const trace = new TranslationTrace({ perAgent: 3, maxAgents: 2, maxRpcs: 2 });
  const scope = {};
  const ok: RpcOutcome = { kind: 'response', response: { method: 'SetParameterValuesResponse', status: 0 } };
  const fault: RpcOutcome = {
    kind: 'fault',
    fault: { method: 'Fault', soapFaultCode: 'Client', faultCode: 9007, faultString: 'Invalid value secret-psk-123', setParameterValuesFault: [] },
  };
  await trace.rpc(scope, { method: 'SetParameterValues', names: 1 }, async () => ok);
  await trace.rpc(scope, { method: 'SetParameterValues', names: 2 }, async () => fault);
  await trace.rpc(scope, { method: 'GetParameterValues', names: 4 }, async () => ok);
  // An RPC outside any request (shared learning) is run but not traced.
  assert.equal(await trace.rpc(undefined, { method: 'GetParameterNames', names: 1 }, async () => ok), ok);
  const req = wire({
    ...set([{ objPath: 'Device.WiFi.AccessPoint.1.Security.', params: { KeyPassphrase: 'secret-psk-123' } }]),
    header: { msgId: 'm1', msgType: 'SET' },
  });
  const resp = wire(
    errorMsg('m1', 7002, 'the device did not answer', [
      { paramPath: 'Device.WiFi.AccessPoint.1.Security.KeyPassphrase', errCode: 7002, errMsg: 'unreachable' },
    ]),
  );
  trace.request({ scope, fromId: 'proto::ctl', toId: 'os::A', msg: req, resp, ms: 12.4 });

  const [e] = trace.forAgent('os::A');
  assert.ok(e);
  assert.equal(e.fromId, 'proto::ctl');
  assert.equal(e.msgType, 'SET');
  assert.deepEqual(e.paths, ['Device.WiFi.AccessPoint.1.Security.']);
  assert.equal(e.outcome, 'error 7002');
  assert.deepEqual(e.errCodes, [7002, 7002], "the Error's code, then its param_errs'");
  assert.deepEqual(
    e.rpcs.map((r) => [r.method, r.names, r.status, r.fault]),
    [
      ['SetParameterValues', 1, 'ok', undefined],
      ['SetParameterValues', 2, 'fault', 9007],
    ],
  );
  assert.equal(e.rpcsNotListed, 1, 'beyond maxRpcs counted');
  assert.ok(e.rpcs.every((r) => typeof r.ms === 'number'));
  assert.doesNotMatch(JSON.stringify(trace.forAgent('os::A')), /secret-psk-123/, 'neither the Set value nor the fault string is kept');
  assert.equal(TranslationTrace.summary('os::A', e), 'SET Device.WiFi.AccessPoint.1.Security. to os::A: error 7002 (SetParameterValues cwmp Fault 9007)');

  // A failed delivery names its reason.
  const s2 = {};
  await assert.rejects(trace.rpc(s2, { method: 'Reboot', names: 0 }, () => Promise.reject(new RpcError('unreachable', 'no session'))));
  const g = wire({ ...get(['Device.DeviceInfo.']), header: { msgId: 'm2', msgType: 'GET' } });
  trace.request({
    scope: s2,
    fromId: 'proto::ctl',
    toId: 'os::A',
    msg: g,
    resp: wire(responseMsg(g, 'GET_RESP', { respType: 'getResp', getResp: { reqPathResults: [] } })),
    ms: 3,
  });
  const [newest] = trace.forAgent('os::A');
  assert.equal(newest?.msgType, 'GET', 'newest first');
  assert.deepEqual(
    newest?.rpcs.map((r) => [r.status, r.error]),
    [['failed', 'unreachable']],
  );
});

test('a traced request without RPCs (kept packed) reads back field for field as it was answered', () => {
  const trace = new TranslationTrace({ perAgent: 4, maxAgents: 2 });
  const long = `Device.X_VENDOR_${'A'.repeat(300)}.`;
  const paths = ['Device.DeviceInfo.UpTime', long, ...Array.from({ length: 9 }, (_, i) => `Device.IP.Interface.${i + 1}.Status`)];
  const g = wire({ ...get(paths), header: { msgId: 'p"1\\', msgType: 'GET' } });
  const resp = wire(
    errorMsg('p"1\\', 7000, 'refused', [
      { paramPath: 'Device.DeviceInfo.UpTime', errCode: 7026, errMsg: 'x' },
      { paramPath: long, errCode: 7016, errMsg: 'y' },
    ]),
  );
  const returned = trace.request({ scope: {}, fromId: 'proto::ctl "q"', toId: 'os::A', msg: g, resp, ms: 2.5 });
  const [e] = trace.forAgent('os::A');
  assert.ok(e);
  const { time, ...read } = e;
  const { at, ...answered } = returned;
  assert.equal(time, new Date(at).toISOString());
  assert.deepEqual(read, answered, 'every field as returned when it was traced');
  assert.equal(read.msgId, 'p"1\\');
  assert.equal(read.paths.length, 8);
  assert.equal(read.paths[1]!.length, 256, 'paths cut at 256 characters');
  assert.equal(read.pathCount, 11);
  assert.deepEqual(read.errCodes, [7000, 7026, 7016]);
  assert.deepEqual(read.rpcs, []);
});

test('the trace bound keeps the newly traced agent, even with room for one', () => {
  const trace = new TranslationTrace({ perAgent: 2, maxAgents: 1 });
  const g = wire({ ...get(['Device.DeviceInfo.UpTime']), header: { msgId: 'x', msgType: 'GET' } });
  const r = wire(responseMsg(g, 'GET_RESP', { respType: 'getResp', getResp: { reqPathResults: [] } }));
  trace.request({ scope: {}, fromId: 'c1', toId: 'os::A', msg: g, resp: r, ms: 1 });
  trace.request({ scope: {}, fromId: 'c2', toId: 'os::A', msg: g, resp: r, ms: 1 });
  trace.request({ scope: {}, fromId: 'c3', toId: 'os::B', msg: g, resp: r, ms: 1 });
  assert.equal(trace.agents, 1);
  assert.deepEqual(
    trace.forAgent('os::B').map((e) => e.fromId),
    ['c3'],
  );
  assert.equal(trace.forAgent('os::A').length, 0);
});

test('the trace is bounded: a ring per agent, least recently traced agents dropped', () => {
  const trace = new TranslationTrace({ perAgent: 3, maxAgents: 2 });
  const g = wire({ ...get(['Device.DeviceInfo.UpTime']), header: { msgId: 'x', msgType: 'GET' } });
  const r = wire(responseMsg(g, 'GET_RESP', { respType: 'getResp', getResp: { reqPathResults: [] } }));
  for (let i = 0; i < 10; i++) trace.request({ scope: {}, fromId: `c${i}`, toId: 'os::A', msg: g, resp: r, ms: 1 });
  assert.deepEqual(
    trace.forAgent('os::A').map((e) => e.fromId),
    ['c9', 'c8', 'c7'],
  );
  trace.request({ scope: {}, fromId: 'c', toId: 'os::B', msg: g, resp: r, ms: 1 });
  trace.request({ scope: {}, fromId: 'c', toId: 'os::A', msg: g, resp: r, ms: 1 });
  trace.request({ scope: {}, fromId: 'c', toId: 'os::C', msg: g, resp: r, ms: 1 });
  assert.equal(trace.agents, 2);
  assert.equal(trace.forAgent('os::B').length, 0, 'B was the least recently traced');
  assert.equal(trace.forAgent('os::A').length, 3);
  // The console's own reads are kept only when they caused CWMP RPCs.
  trace.add(
    'os::C',
    {},
    { fromId: 'admin-console', msgType: 'GET', msgId: '', paths: ['Device.'], pathCount: 1, outcome: 'ok', errCodes: [], ms: 1 },
    { onlyWithRpcs: true },
  );
  assert.equal(trace.forAgent('os::C').length, 1);
});

test('childPaths: objects and tables below a concrete object, from their supported paths', () => {
  assert.deepEqual(
    childPaths('Device.WiFi.SSID.2.', 'Device.WiFi.SSID.{i}.', [
      'Device.WiFi.SSID.{i}.Stats.',
      'Device.WiFi.SSID.{i}.X_Table.{i}.',
      'Device.WiFi.SSID.{i}.Stats.Deeper.',
      'Device.WiFi.Radio.{i}.',
    ]),
    [
      { path: 'Device.WiFi.SSID.2.Stats.', table: false },
      { path: 'Device.WiFi.SSID.2.X_Table.', table: true },
    ],
  );
});

test('the status page lists recent errors newest first, at most n', async () => {
  const { newestErrors } = (await import(pathToFileURL(assetPath('status', 'errors.js')).href)) as {
    newestErrors(list: { time: string; message: string }[], n: number): { time: string; message: string }[];
  };
  const at = (s: number, message: string) => ({ time: new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString(), message });
  // The API's order (newest first): the page must not reverse it (the old slice(-20).reverse() showed the oldest).
  const api = Array.from({ length: 30 }, (_, i) => at(59 - i, `e${59 - i}`));
  assert.deepEqual(
    newestErrors(api, 3).map((e) => e.message),
    ['e59', 'e58', 'e57'],
  );
  assert.deepEqual(
    newestErrors([...api].reverse(), 2).map((e) => e.message),
    ['e59', 'e58'],
    'any order in, newest first out',
  );
  assert.deepEqual(newestErrors(undefined as never, 5), []);
});
