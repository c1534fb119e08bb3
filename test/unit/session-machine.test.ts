/**
 * The CWMP session machine (src/cwmp/session-machine.ts) on its own: each input in each state,
 * the reply decoded from its wire bytes, the write the port must make, the effects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { step, type Inflight, type MachineOptions, type SessionRecord, type StepResult } from '../../src/cwmp/session-machine.js';
import { RpcError } from '../../src/cwmp/session-types.js';
import { decodeSoap } from '../../src/cwmp/soap.js';
import type { CwmpMessage, SoapEnvelope } from '../../src/cwmp/types.js';
import type { QueuedRpc } from '../../src/store/types.js';

const O: MachineOptions = { holdRequests: false, lingerMs: 0 };
const GPV: Inflight = { id: 'rpc-1', method: 'GetParameterValues', origin: 'a', linger: false };

function session(over: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: '0123456789abcdef0123456789abcdef',
    deviceKey: '00D09E-Box-S1',
    version: '1-2',
    modelKey: '00D09E-Box-1.0',
    endpointId: 'os::00D09E-S1',
    inflight: null,
    rpcs: 0,
    seq: 4,
    lastPost: 4,
    ...over,
  };
}

const post = (body: CwmpMessage, id: string | null = 'cpe-7'): { kind: 'post'; envelope: SoapEnvelope } => ({
  kind: 'post',
  envelope: { cwmpVersion: '1-2', id, body },
});

function wire(r: StepResult): SoapEnvelope {
  assert.ok(r.reply, 'a reply');
  assert.equal(r.reply.status, 200, r.reply.body);
  assert.equal(r.reply.contentType, 'text/xml; charset="utf-8"');
  const d = decodeSoap(r.reply.body);
  assert.ok(d.envelope);
  return d.envelope;
}

const TOUCH = { post: true, take: false, next: null, end: false };

test('opened: InformResponse with MaxEnvelopes 1 in the CPE version, the cookie, HoldRequests only when asked and RPCs wait', () => {
  const s = session({ version: '1-0' });
  const r = step(s, { kind: 'opened', id: 'inf-1', queued: 2 }, O);
  const e = wire(r);
  assert.deepEqual(e.body, { method: 'InformResponse', maxEnvelopes: 1 });
  assert.equal(e.id, 'inf-1');
  assert.equal(e.cwmpVersion, '1-0');
  assert.equal(e.holdRequests, undefined);
  assert.equal(r.reply!.cookie, s.id);
  assert.equal(r.write, null);
  assert.equal(wire(step(s, { kind: 'opened', id: 'inf-1', queued: 2 }, { ...O, holdRequests: true })).holdRequests, true);
  assert.equal(wire(step(s, { kind: 'opened', id: 'inf-1', queued: 0 }, { ...O, holdRequests: true })).holdRequests, undefined);
});

test('a CPE request while an ACS RPC is in flight is answered and never taken for the answer', () => {
  const s = session({ inflight: GPV });
  const tc = {
    method: 'TransferComplete' as const,
    commandKey: 'dl-1',
    fault: { faultCode: 0, faultString: '' },
    startTime: '2026-11-25T10:00:00Z',
    completeTime: '2026-11-25T10:00:05Z',
  };
  const r = step(s, post(tc, 'tc-1'), O);
  const e = wire(r);
  assert.equal(e.body.method, 'TransferCompleteResponse');
  assert.equal(e.id, 'tc-1');
  assert.deepEqual(r.write, TOUCH, 'the RPC in flight stays in flight');
  assert.deepEqual(r.effects, [{ kind: 'transfer-complete', message: tc }]);

  const g = step(s, post({ method: 'GetRPCMethods' }, null), O);
  const ge = wire(g);
  assert.equal(ge.id, s.id, 'no cwmp:ID in the request: the session id');
  assert.ok(ge.body.method === 'GetRPCMethodsResponse' && ge.body.methodList.includes('TransferComplete'));
  assert.deepEqual(g.write, TOUCH);
});

test('the answer to the RPC in flight settles it and gives the ACS its turn; linger only when the caller asked and it is enabled', () => {
  const resp = { method: 'GetParameterValuesResponse' as const, parameterList: [{ name: 'Device.DeviceInfo.UpTime', value: '5', type: 'xsd:unsignedInt' }] };
  const r = step(session({ inflight: GPV }), post(resp, 'rpc-1'), O);
  assert.equal(r.reply, null);
  assert.deepEqual(r.write, { post: true, take: true, next: 'end', end: false });
  assert.deepEqual(r.effects, [{ kind: 'settle', rpc: GPV, outcome: { kind: 'response', response: resp } }]);

  const lingering = { ...GPV, linger: true };
  assert.equal(step(session({ inflight: lingering }), post(resp), { ...O, lingerMs: 300 }).write!.next, 'linger');
  assert.equal(step(session({ inflight: lingering }), post(resp), O).write!.next, 'end', 'linger disabled');

  const fault = {
    method: 'Fault' as const,
    soapFaultCode: 'Client' as const,
    faultCode: 9005,
    faultString: 'Invalid parameter name',
    setParameterValuesFault: [],
  };
  const f = step(session({ inflight: GPV }), post(fault), O);
  assert.deepEqual(f.effects.at(-1), { kind: 'settle', rpc: GPV, outcome: { kind: 'fault', fault } });
  assert.equal(f.write!.take, true);
});

test('RequestDownload, Kicked and the DU completions are answered in their own words; the DU ones are events', () => {
  const s = session({ inflight: GPV });
  const rd = step(s, post({ method: 'RequestDownload', fileType: '1 Firmware Upgrade Image', fileTypeArg: [{ name: 'Version', value: '2' }] }, 'rd-1'), O);
  assert.match(rd.reply!.body, /<cwmp:ID soap-env:mustUnderstand="1">rd-1<\/cwmp:ID>.*<cwmp:RequestDownloadResponse\/>/s);
  assert.deepEqual(rd.write, TOUCH);
  assert.ok(!rd.effects.some((e) => e.kind !== 'log'), 'answered, nothing started');
  const k = step(s, post({ method: 'Kicked', command: 'c', referer: 'r', arg: 'a', next: 'http://cpe/next?a=1&b=2' }, 'k-1'), O);
  assert.match(k.reply!.body, /<cwmp:KickedResponse><NextURL>http:\/\/cpe\/next\?a=1&amp;b=2<\/NextURL><\/cwmp:KickedResponse>/);
  const du = {
    method: 'DUStateChangeComplete' as const,
    commandKey: 'cdus',
    results: [
      {
        uuid: '1b4e28ba-2fa1-41d2-883f-0016d3cca427',
        deploymentUnitRef: 'Device.SoftwareModules.DeploymentUnit.1',
        version: '1',
        currentState: 'Installed',
        resolved: true,
        executionUnitRefList: '',
        startTime: '2026-11-25T09:10:00Z',
        completeTime: '2026-11-25T09:10:05Z',
        fault: { faultCode: 0, faultString: '' },
      },
    ],
  };
  const d = step(s, post(du, 'du-1'), O);
  assert.match(d.reply!.body, /<cwmp:DUStateChangeCompleteResponse\/>/);
  assert.deepEqual(d.effects, [{ kind: 'du-state-change-complete', message: du }]);
  const adu = { method: 'AutonomousDUStateChangeComplete' as const, results: [{ ...du.results[0]!, operationPerformed: 'Install' }] };
  const a = step(s, post(adu, 'adu-1'), O);
  assert.match(a.reply!.body, /<cwmp:AutonomousDUStateChangeCompleteResponse\/>/);
  assert.deepEqual(a.effects, [{ kind: 'du-state-change-complete', message: adu }]);
  for (const r of [rd, k, d, a]) assert.equal(r.write?.take, false, 'the RPC in flight stays in flight');
});

test('a response nobody asked for, or for another RPC, gets 400 and leaves the RPC in flight', () => {
  const none = step(session(), post({ method: 'RebootResponse' }), O);
  assert.equal(none.reply!.status, 400);
  assert.match(none.reply!.body, /no RPC is outstanding/);
  assert.deepEqual(none.write, TOUCH);
  const wrong = step(session({ inflight: GPV }), post({ method: 'RebootResponse' }), O);
  assert.equal(wrong.reply!.status, 400);
  assert.match(wrong.reply!.body, /RPC in flight is GetParameterValues \(expects GetParameterValuesResponse\)/);
  assert.deepEqual(wrong.write, TOUCH);
  assert.ok(!wrong.effects.some((e) => e.kind === 'settle' || e.kind === 'fail'));
});

test('an ACS method sent by the CPE, or one the codec could not read, gets cwmp Fault 8000', () => {
  const r = step(session(), post({ method: 'Reboot', commandKey: 'x' }, 'r-1'), O);
  const e = wire(r);
  assert.ok(e.body.method === 'Fault' && e.body.faultCode === 8000);
  assert.equal(e.id, 'r-1');
  assert.deepEqual(r.write, TOUCH);
  const u = wire(step(session(), { kind: 'unsupported', id: 'u-1', detail: 'unknown method X_Foo' }, O));
  assert.ok(u.body.method === 'Fault' && u.body.faultCode === 8000 && u.body.faultString === 'unknown method X_Foo');
});

test('empty POST: the ACS turn; with an RPC in flight that RPC is lost as empty-post', () => {
  assert.deepEqual(step(session(), { kind: 'empty' }, O), { reply: null, write: { post: true, take: false, next: 'end', end: false }, effects: [] });
  const r = step(session({ inflight: GPV }), { kind: 'empty' }, O);
  assert.deepEqual(r.write, { post: true, take: true, next: 'end', end: false });
  const fail = r.effects.find((e) => e.kind === 'fail');
  assert.ok(fail && fail.kind === 'fail');
  assert.equal(fail.error.reason, 'session-ended');
  assert.equal(fail.error.message, 'the CPE sent an empty POST instead of GetParameterValuesResponse');
  assert.deepEqual(fail.error.detail, { lost: 'empty-post', method: 'GetParameterValues' });
});

test('claimed: the RPC goes out with its id as cwmp:ID, HoldRequests while more are queued (when enabled)', () => {
  const q: QueuedRpc = {
    id: 'rpc-9',
    deviceKey: 'k',
    rpc: { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true },
    createdAt: '2026-01-01T00:00:00Z',
    deadline: 0,
  };
  const e = wire(step(session(), { kind: 'claimed', rpc: q, more: 1 }, O));
  assert.deepEqual(e.body, q.rpc);
  assert.equal(e.id, 'rpc-9');
  assert.equal(e.holdRequests, undefined);
  assert.equal(wire(step(session(), { kind: 'claimed', rpc: q, more: 1 }, { ...O, holdRequests: true })).holdRequests, true);
  assert.equal(wire(step(session(), { kind: 'claimed', rpc: q, more: 0 }, { ...O, holdRequests: true })).holdRequests, undefined);
});

test('queue empty: 204 and the session is over, or a linger; after the linger the ACS turn again', () => {
  const done = step(session({ rpcs: 2 }), { kind: 'queue-empty', ended: true }, O);
  assert.deepEqual(done.reply, { status: 204, body: '', ended: true });
  assert.deepEqual(done.effects, [{ kind: 'ended', reason: 'done', wake: false }]);
  assert.deepEqual(step(session(), { kind: 'queue-empty', ended: false }, { ...O, lingerMs: 250 }), {
    reply: null,
    write: null,
    effects: [{ kind: 'linger', ms: 250 }],
  });
  assert.deepEqual(step(session(), { kind: 'linger-over' }, O).write, { post: false, take: false, next: 'end', end: false });
  assert.equal(step(session({ inflight: GPV }), { kind: 'linger-over' }, O).reply!.status, 409);
});

test('timeout: ignored when armed at an older seq; otherwise the RPC in flight fails as session-timeout and the session ends', () => {
  assert.deepEqual(step(session({ inflight: GPV, seq: 5 }), { kind: 'timeout', seq: 4, timeoutMs: 30_000 }, O), { reply: null, write: null, effects: [] });
  const r = step(session({ inflight: GPV }), { kind: 'timeout', seq: 4, timeoutMs: 30_000 }, O);
  assert.deepEqual(r.write, { post: false, take: true, next: null, end: true });
  const fail = r.effects.find((e) => e.kind === 'fail');
  assert.ok(fail?.kind === 'fail' && fail.error instanceof RpcError);
  assert.equal(fail.error.reason, 'session-timeout');
  assert.equal(fail.error.message, 'CWMP session timed out after 30000 ms waiting for GetParameterValuesResponse');
  assert.deepEqual(fail.error.detail, { lost: 'timeout', method: 'GetParameterValues' });
  assert.deepEqual(r.effects.at(-1), { kind: 'ended', reason: 'timeout', wake: true });
  assert.deepEqual(step(session(), { kind: 'timeout', seq: 4, timeoutMs: 10 }, O).write, { post: false, take: false, next: null, end: true });
});

test('connection closed: the RPC in flight fails as a dropped connection, unless the CPE has posted since', () => {
  const r = step(session({ inflight: GPV }), { kind: 'connection-closed', lastPost: 4 }, O);
  assert.deepEqual(r.write, { post: false, take: true, next: null, end: true });
  const fail = r.effects.find((e) => e.kind === 'fail');
  assert.ok(fail?.kind === 'fail');
  assert.equal(fail.error.reason, 'session-ended');
  assert.equal(fail.error.message, 'the CPE closed the connection with GetParameterValues in flight');
  assert.deepEqual(fail.error.detail, { lost: 'connection-closed', method: 'GetParameterValues' });
  assert.deepEqual(r.effects.at(-1), { kind: 'ended', reason: 'connection closed', wake: true });
  const back = step(session({ inflight: GPV, seq: 6, lastPost: 6 }), { kind: 'connection-closed', lastPost: 4 }, O);
  assert.deepEqual(back, { reply: null, write: null, effects: [] }, 'a later POST came');
  assert.deepEqual(step(session(), { kind: 'connection-closed', lastPost: 4 }, O).write, null, 'nothing in flight: the session timeout decides');
});

test('superseded by a new Inform: the RPC in flight fails as new-session; shutdown fails it as shutdown', () => {
  const r = step(session({ inflight: GPV }), { kind: 'superseded' }, O);
  assert.equal(r.write, null, 'the port removed the session when it opened the new one');
  const fail = r.effects[0];
  assert.ok(fail?.kind === 'fail');
  assert.equal(fail.error.message, 'the CPE started a new session with GetParameterValues in flight');
  assert.deepEqual(fail.error.detail, { lost: 'new-session', method: 'GetParameterValues' });
  const sd = step(session({ inflight: GPV }), { kind: 'shutdown' }, O);
  assert.deepEqual(sd.write, { post: false, take: true, next: null, end: true });
  assert.ok(sd.effects[0]?.kind === 'fail' && sd.effects[0].error.reason === 'shutdown');
});
