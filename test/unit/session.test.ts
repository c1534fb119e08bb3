import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SessionEngine, RpcError, type CwmpReply, type SessionEngineOptions } from '../../src/cwmp/session.js';
import { decodeSoap } from '../../src/cwmp/soap.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { MemorySessionState } from '../../src/cwmp/session-state-memory.js';
import type { SessionWrite } from '../../src/cwmp/session-machine.js';
import type { ApplyResult, SessionSignals } from '../../src/cwmp/session-state.js';
import { silentLogger } from '../../src/app/log.js';
import type { CwmpMessage, SoapEnvelope, CwmpVersion } from '../../src/cwmp/types.js';
import type { QueuedRpc, Store } from '../../src/store/types.js';
import { FakeConnReq, inform } from '../helpers/cwmp-fixtures.js';

const OPTS: SessionEngineOptions = {
  sessionTimeoutMs: 5000,
  rpcDeadlineMs: 5000,
  holdRequests: false,
  setConnectionRequestCredentials: false,
  maxSessions: 100,
  endpointIdScheme: 'os',
};

const env = (body: CwmpMessage, id: string | null = 'cpe-1', cwmpVersion: CwmpVersion = '1-2'): SoapEnvelope => ({ cwmpVersion, id, body });
const KEY = (serial: string): string => `00D09E-Box-${serial}`;

function parse(reply: CwmpReply): SoapEnvelope {
  assert.equal(reply.status, 200, reply.body);
  const d = decodeSoap(reply.body);
  assert.ok(d.envelope);
  return d.envelope;
}

function setup(opts: Partial<SessionEngineOptions> = {}, store?: Store) {
  const s = store ?? openSqliteStore(':memory:');
  const cr = new FakeConnReq();
  const engine = new SessionEngine(s, cr, { ...OPTS, ...opts }, silentLogger());
  return { store: s, cr, engine };
}

test('Inform -> InformResponse in the CPE version with the ID echoed; device registered', async () => {
  const { engine, store } = setup();
  const conn = {};
  const r = await engine.handle({ envelope: env(inform('S1', ['1 BOOT']), 'abc', '1-0'), sessionId: null, connection: conn });
  const e = parse(r);
  assert.equal(e.body.method, 'InformResponse');
  assert.equal(e.id, 'abc');
  assert.equal(e.cwmpVersion, '1-0');
  assert.ok(r.cookie);
  const dev = await store.getDevice(KEY('S1'));
  assert.equal(dev?.endpointId, 'os::00D09E-S1');
  assert.equal(dev?.rootModel, 'Device');
  assert.equal(dev?.connectionRequestUrl, 'http://127.0.0.1:1/S1');
  assert.equal(dev?.periodicInformInterval, 300);
  // learned types from the Inform
  const types = await engine.parameterTypes(KEY('S1'), ['Device.ManagementServer.PeriodicInformInterval']);
  assert.equal(types.get('Device.ManagementServer.PeriodicInformInterval'), 'xsd:unsignedInt');
  const end = await engine.handle({ envelope: null, sessionId: r.cookie!, connection: conn });
  assert.equal(end.status, 204);
  assert.equal(engine.activeSessions, 0);
  await engine.close();
  await store.close();
});

test('queued RPCs wake an idle device with ONE connection request and run one per response', async () => {
  const { engine, store, cr } = setup();
  const conn = {};
  const first = await engine.handle({ envelope: env(inform('S2', ['1 BOOT'])), sessionId: null, connection: conn });
  await engine.handle({ envelope: null, sessionId: first.cookie!, connection: conn });

  const p1 = engine.enqueue(KEY('S2'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.'] });
  const p2 = engine.enqueue(KEY('S2'), { method: 'Reboot', commandKey: 'r1' });
  const p3 = engine.enqueue(KEY('S2'), { method: 'AddObject', objectName: 'Device.NAT.PortMapping.', parameterKey: '' });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(engine.queuedCount(KEY('S2')), 3);
  // one connreq chain per device (the real ConnectionRequester coalesces concurrent calls too)
  assert.ok(cr.calls.length >= 1 && cr.calls.every((k) => k === KEY('S2')));

  const conn2 = {};
  const ir = await engine.handle({ envelope: env(inform('S2', ['6 CONNECTION REQUEST'])), sessionId: null, connection: conn2 });
  assert.ok(cr.cancels.includes(KEY('S2')), 'connection request retries stop when the session starts');
  const sid = ir.cookie!;
  let req = parse(await engine.handle({ envelope: null, sessionId: sid, connection: conn2 }));
  assert.equal(req.body.method, 'GetParameterValues');
  req = parse(
    await engine.handle({
      envelope: env(
        { method: 'GetParameterValuesResponse', parameterList: [{ name: 'Device.DeviceInfo.UpTime', value: '5', type: 'xsd:unsignedInt' }] },
        req.id,
      ),
      sessionId: sid,
      connection: conn2,
    }),
  );
  assert.equal(req.body.method, 'Reboot');
  req = parse(await engine.handle({ envelope: env({ method: 'RebootResponse' }, req.id), sessionId: sid, connection: conn2 }));
  assert.equal(req.body.method, 'AddObject');
  const end = await engine.handle({ envelope: env({ method: 'AddObjectResponse', instanceNumber: 3, status: 0 }, req.id), sessionId: sid, connection: conn2 });
  assert.equal(end.status, 204);

  const o1 = await p1;
  assert.equal(o1.kind, 'response');
  assert.equal(o1.kind === 'response' && o1.response.method, 'GetParameterValuesResponse');
  assert.deepEqual(await p2, { kind: 'response', response: { method: 'RebootResponse' } });
  const o3 = await p3;
  assert.equal(o3.kind === 'response' && o3.response.method === 'AddObjectResponse' && o3.response.instanceNumber, 3);
  assert.deepEqual(await store.listQueuedRpcs(KEY('S2')), []);
  // types learned from the GPV answer
  const t = await engine.parameterTypes(KEY('S2'), ['Device.DeviceInfo.UpTime']);
  assert.equal(t.get('Device.DeviceInfo.UpTime'), 'xsd:unsignedInt');
  await engine.close();
  await store.close();
});

test('a cwmp Fault is an outcome, not an exception; SetParameterValuesFault kept', async () => {
  const { engine, store } = setup();
  const conn = {};
  const ir = await engine.handle({ envelope: env(inform('S3', ['2 PERIODIC'])), sessionId: null, connection: conn });
  const p = engine.enqueue(KEY('S3'), {
    method: 'SetParameterValues',
    parameterList: [{ name: 'Device.X', value: 'y', type: 'xsd:string' }],
    parameterKey: 'k',
  });
  await new Promise((r) => setTimeout(r, 5));
  const req = parse(await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn }));
  assert.equal(req.body.method, 'SetParameterValues');
  const fault = {
    method: 'Fault' as const,
    soapFaultCode: 'Client' as const,
    faultCode: 9003,
    faultString: 'Invalid arguments',
    setParameterValuesFault: [{ parameterName: 'Device.X', faultCode: 9005, faultString: 'Invalid parameter name' }],
  };
  const end = await engine.handle({ envelope: env(fault, req.id), sessionId: ir.cookie!, connection: conn });
  assert.equal(end.status, 204);
  const o = await p;
  assert.equal(o.kind, 'fault');
  assert.equal(o.kind === 'fault' && o.fault.setParameterValuesFault[0]!.faultCode, 9005);
  await engine.close();
  await store.close();
});

test('a CPE that drops the cookie but keeps the TCP connection stays in its session', async () => {
  const { engine, store } = setup();
  const conn = {};
  await engine.handle({ envelope: env(inform('S4', ['2 PERIODIC'])), sessionId: null, connection: conn });
  const p = engine.enqueue(KEY('S4'), { method: 'GetRPCMethods' });
  await new Promise((r) => setTimeout(r, 5));
  const req = parse(await engine.handle({ envelope: null, sessionId: null, connection: conn }));
  assert.equal(req.body.method, 'GetRPCMethods');
  const end = await engine.handle({
    envelope: env({ method: 'GetRPCMethodsResponse', methodList: ['GetRPCMethods'] }, req.id),
    sessionId: null,
    connection: conn,
  });
  assert.equal(end.status, 204);
  assert.equal((await p).kind, 'response');
  await engine.close();
  await store.close();
});

test('CPE requests in session: TransferComplete answered and emitted; GetRPCMethods answered', async () => {
  const { engine, store } = setup();
  const conn = {};
  const seen: string[] = [];
  engine.on('transferComplete', ({ message }) => seen.push(message.method + ':' + (message.method === 'TransferComplete' ? message.commandKey : '')));
  const ir = await engine.handle({ envelope: env(inform('S5', ['7 TRANSFER COMPLETE', 'M Download'])), sessionId: null, connection: conn });
  const tc = parse(
    await engine.handle({
      envelope: env(
        {
          method: 'TransferComplete',
          commandKey: 'dl-1',
          fault: { faultCode: 0, faultString: '' },
          startTime: '2026-11-25T10:00:00Z',
          completeTime: '2026-11-25T10:00:05Z',
        },
        'tc-1',
      ),
      sessionId: ir.cookie!,
      connection: conn,
    }),
  );
  assert.equal(tc.body.method, 'TransferCompleteResponse');
  assert.equal(tc.id, 'tc-1');
  assert.deepEqual(seen, ['TransferComplete:dl-1']);
  const g = parse(await engine.handle({ envelope: env({ method: 'GetRPCMethods' }, 'g-1'), sessionId: ir.cookie!, connection: conn }));
  assert.equal(g.body.method, 'GetRPCMethodsResponse');
  assert.ok(g.body.method === 'GetRPCMethodsResponse' && g.body.methodList.includes('Inform'));
  await engine.close();
  await store.close();
});

test('a response for an RPC that was not sent gets 400 and leaves the session and queue untouched', async () => {
  const { engine, store } = setup();
  const conn = {};
  const ir = await engine.handle({ envelope: env(inform('S6', ['2 PERIODIC'])), sessionId: null, connection: conn });
  const stray = await engine.handle({ envelope: env({ method: 'RebootResponse' }), sessionId: ir.cookie!, connection: conn });
  assert.equal(stray.status, 400);
  assert.match(stray.body, /no RPC is outstanding/);
  const p = engine.enqueue(KEY('S6'), { method: 'FactoryReset' });
  await new Promise((r) => setTimeout(r, 5));
  const req = parse(await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn }));
  assert.equal(req.body.method, 'FactoryReset');
  const wrong = await engine.handle({ envelope: env({ method: 'RebootResponse' }, req.id), sessionId: ir.cookie!, connection: conn });
  assert.equal(wrong.status, 400);
  assert.match(wrong.body, /RPC in flight is FactoryReset/);
  const end = await engine.handle({ envelope: env({ method: 'FactoryResetResponse' }, req.id), sessionId: ir.cookie!, connection: conn });
  assert.equal(end.status, 204);
  assert.equal((await p).kind, 'response');
  const outside = await engine.handle({ envelope: null, sessionId: null, connection: {} });
  assert.equal(outside.status, 400);
  await engine.close();
  await store.close();
});

test('idle session times out: in-flight RPC fails with a clear reason, queued RPCs stay queued', async () => {
  const { engine, store } = setup({ sessionTimeoutMs: 50 });
  const conn = {};
  const ir = await engine.handle({ envelope: env(inform('S7', ['2 PERIODIC'])), sessionId: null, connection: conn });
  const p1 = engine.enqueue(KEY('S7'), { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true });
  const p2 = engine.enqueue(KEY('S7'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] });
  p2.catch(() => undefined);
  await new Promise((r) => setTimeout(r, 5));
  const req = parse(await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn }));
  assert.equal(req.body.method, 'GetParameterNames');
  await assert.rejects(p1, (e: unknown) => e instanceof RpcError && e.reason === 'session-timeout' && /GetParameterNamesResponse/.test(e.message));
  assert.equal(engine.activeSessions, 0);
  assert.equal(engine.queuedCount(KEY('S7')), 1);
  assert.equal((await store.listQueuedRpcs(KEY('S7'))).length, 1);
  await engine.close();
  await store.close();
});

test('device unreachable: the RPC fails at its deadline naming the connection request failure', async () => {
  const { engine, store, cr } = setup();
  cr.result = { ok: false, reason: 'refused', detail: 'ECONNREFUSED' } as never;
  const conn = {};
  const ir = await engine.handle({ envelope: env(inform('S8', ['1 BOOT'])), sessionId: null, connection: conn });
  await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn });
  const p = engine.enqueue(KEY('S8'), { method: 'GetRPCMethods' }, { deadlineMs: 60 });
  await assert.rejects(p, (e: unknown) => e instanceof RpcError && e.reason === 'unreachable' && /refused/.test(e.message));
  assert.equal(engine.queuedCount(KEY('S8')), 0);
  assert.deepEqual(await store.listQueuedRpcs(KEY('S8')), []);
  await assert.rejects(engine.enqueue('nope', { method: 'GetRPCMethods' }), (e: unknown) => e instanceof RpcError && e.reason === 'unknown-device');
  await engine.close();
  await store.close();
});

test('BOOTSTRAP: the ACS sets per-device random connection request credentials and stores them', async () => {
  const { engine, store } = setup({ setConnectionRequestCredentials: true });
  const conn = {};
  const ir = await engine.handle({ envelope: env(inform('S9', ['0 BOOTSTRAP', '1 BOOT'], 'InternetGatewayDevice')), sessionId: null, connection: conn });
  const req = parse(await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn }));
  assert.equal(req.body.method, 'SetParameterValues');
  assert.ok(req.body.method === 'SetParameterValues');
  const names = req.body.parameterList.map((p) => p.name);
  assert.deepEqual(names, [
    'InternetGatewayDevice.ManagementServer.ConnectionRequestUsername',
    'InternetGatewayDevice.ManagementServer.ConnectionRequestPassword',
  ]);
  const [u, pw] = req.body.parameterList.map((p) => p.value);
  assert.ok(u && pw && pw.length >= 16);
  const end = await engine.handle({ envelope: env({ method: 'SetParameterValuesResponse', status: 0 }, req.id), sessionId: ir.cookie!, connection: conn });
  assert.equal(end.status, 204);
  const dev = await store.getDevice(KEY('S9'));
  assert.equal(dev?.connReqUsername, u);
  assert.equal(dev?.connReqPassword, pw);
  // a second device gets different credentials
  const ir2 = await engine.handle({ envelope: env(inform('S10', ['0 BOOTSTRAP'], 'InternetGatewayDevice')), sessionId: null, connection: {} });
  const req2 = parse(await engine.handle({ envelope: null, sessionId: ir2.cookie!, connection: {} }));
  assert.ok(req2.body.method === 'SetParameterValues' && req2.body.parameterList[1]!.value !== pw);
  await engine.close();
  await store.close();
});

test('HoldRequests: InformResponse carries cwmp:HoldRequests while the ACS has RPCs queued', async () => {
  const { engine, store } = setup({ holdRequests: true });
  await engine
    .handle({ envelope: env(inform('S11', ['1 BOOT'])), sessionId: null, connection: {} })
    .then((r) => engine.handle({ envelope: null, sessionId: r.cookie!, connection: {} }));
  const p = engine.enqueue(KEY('S11'), { method: 'GetRPCMethods' });
  await new Promise((r) => setTimeout(r, 5));
  const conn = {};
  const ir = await engine.handle({ envelope: env(inform('S11', ['6 CONNECTION REQUEST'])), sessionId: null, connection: conn });
  assert.equal(parse(ir).holdRequests, true);
  const req = parse(await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn }));
  assert.equal(req.body.method, 'GetRPCMethods');
  await engine.handle({ envelope: env({ method: 'GetRPCMethodsResponse', methodList: [] }, req.id), sessionId: ir.cookie!, connection: conn });
  await p;
  await engine.close();
  await store.close();
});

test('queued RPCs survive a restart and run in the next session', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-session-'));
  const file = path.join(dir, 'proxy.db');
  try {
    const a = setup({}, openSqliteStore(file));
    a.cr.result = { ok: false, reason: 'refused' } as never;
    const conn = {};
    const ir = await a.engine.handle({ envelope: env(inform('S12', ['1 BOOT'])), sessionId: null, connection: conn });
    await a.engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn });
    const lost = a.engine.enqueue(KEY('S12'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.SoftwareVersion'] }, { deadlineMs: 60_000 });
    lost.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 10));
    await a.engine.close();
    await assert.rejects(lost, (e: unknown) => e instanceof RpcError && e.reason === 'shutdown');
    await a.store.close();

    const b = setup({}, openSqliteStore(file));
    const results: string[] = [];
    b.engine.on('rpcResult', (r) => results.push(`${r.rpc.method}:${r.outcome?.kind}`));
    assert.equal(await b.engine.restoreQueue(), 1);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(b.cr.calls, [KEY('S12')], 'the restored queue wakes its device');
    const conn2 = {};
    const ir2 = await b.engine.handle({ envelope: env(inform('S12', ['6 CONNECTION REQUEST'])), sessionId: null, connection: conn2 });
    const req = parse(await b.engine.handle({ envelope: null, sessionId: ir2.cookie!, connection: conn2 }));
    assert.equal(req.body.method, 'GetParameterValues');
    await b.engine.handle({ envelope: env({ method: 'GetParameterValuesResponse', parameterList: [] }, req.id), sessionId: ir2.cookie!, connection: conn2 });
    assert.deepEqual(results, ['GetParameterValues:response']);
    await b.engine.close();
    await b.store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('at-most-once across a crash: a SetParameterValues in flight is finished as outcome unknown, a GetParameterValues is sent again', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-session-'));
  const file = path.join(dir, 'proxy.db');
  try {
    const a = setup({}, openSqliteStore(file));
    const sent: Record<string, string> = {};
    for (const [serial, rpc] of [
      ['S13', { method: 'SetParameterValues', parameterList: [{ name: 'Device.X.Y', value: '1', type: 'xsd:string' }], parameterKey: 'k' }],
      ['S14', { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.SoftwareVersion'] }],
    ] as const) {
      const conn = {};
      const ir = await a.engine.handle({ envelope: env(inform(serial, ['6 CONNECTION REQUEST'])), sessionId: null, connection: conn });
      const p = a.engine.enqueue(KEY(serial), rpc as never, { deadlineMs: 60_000 });
      p.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 10));
      const req = parse(await a.engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn }));
      sent[serial] = req.body.method;
      // Marked sent in the store before the reply carrying it was handed to the HTTP front.
      const stored = await a.store.listQueuedRpcs(KEY(serial));
      assert.equal(stored.length, 1);
      assert.ok(typeof stored[0]!.sentAt === 'number', `${serial}: sentAt stored`);
    }
    assert.deepEqual(sent, { S13: 'SetParameterValues', S14: 'GetParameterValues' });
    // The crash: neither engine nor store is closed; a second process opens the file.
    const b = setup({}, openSqliteStore(file));
    const results: string[] = [];
    b.engine.on('rpcResult', (r) => results.push(`${r.rpc.method}:${r.error?.reason ?? r.outcome?.kind}`));
    assert.equal(await b.engine.restoreQueue(), 2);
    assert.deepEqual(results, ['SetParameterValues:outcome-unknown']);
    assert.deepEqual(await b.store.listQueuedRpcs(KEY('S13')), [], 'the SetParameterValues is not sent again');
    const { uspErrorOfRpc } = await import('../../src/interworking/faults.js');
    assert.equal(uspErrorOfRpc(new RpcError('outcome-unknown', 'x')).errCode, 7022);
    // The read-only one is sent again in the device's next session.
    const conn = {};
    const ir = await b.engine.handle({ envelope: env(inform('S14', ['6 CONNECTION REQUEST'])), sessionId: null, connection: conn });
    const again = parse(await b.engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn }));
    assert.equal(again.body.method, 'GetParameterValues');
    await b.engine.handle({ envelope: env({ method: 'GetParameterValuesResponse', parameterList: [] }, again.id), sessionId: ir.cookie!, connection: conn });
    assert.deepEqual(results, ['SetParameterValues:outcome-unknown', 'GetParameterValues:response']);
    await b.engine.close();
    await b.store.close();
    await a.store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('load shedding: Informs beyond maxSessions get 503 with Retry-After', async () => {
  const { engine, store } = setup({ maxSessions: 1 });
  const r1 = await engine.handle({ envelope: env(inform('L1', ['2 PERIODIC'])), sessionId: null, connection: {} });
  assert.equal(r1.status, 200);
  const r2 = await engine.handle({ envelope: env(inform('L2', ['2 PERIODIC'])), sessionId: null, connection: {} });
  assert.equal(r2.status, 503);
  assert.equal(r2.headers?.['Retry-After'], '30');
  await engine.close();
  await store.close();
});

/** Whether a promise is still pending once everything runnable now has run. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return !settled;
}

test('adaptive linger: a lingering session ends as soon as the last open request for the device closes', async () => {
  // lingerMs far beyond the test: only the close can end this linger.
  const { engine, store, cr } = setup({ lingerMs: 60_000 });
  const conn = {};
  await engine
    .handle({ envelope: env(inform('AL1', ['1 BOOT'])), sessionId: null, connection: conn })
    .then((r) => engine.handle({ envelope: null, sessionId: r.cookie!, connection: conn }));
  const close = engine.beginRequest(KEY('AL1'));
  const answer = engine.enqueue(KEY('AL1'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.'] }, { linger: true });
  await new Promise((r) => setTimeout(r, 10));
  const c2 = {};
  const ir = await engine.handle({ envelope: env(inform('AL1', ['6 CONNECTION REQUEST'])), sessionId: null, connection: c2 });
  const gpv = parse(await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: c2 }));
  assert.equal(gpv.body.method, 'GetParameterValues');
  const end = engine.handle({ envelope: env({ method: 'GetParameterValuesResponse', parameterList: [] }, gpv.id), sessionId: ir.cookie!, connection: c2 });
  assert.equal((await answer).kind, 'response');
  assert.ok(await pending(end), 'the request is still open: the session lingers for a follow-up');
  close();
  close(); // idempotent
  assert.equal((await end).status, 204, 'the last request closed: the linger ends');
  assert.equal(cr.calls.length, 1);
  await engine.close();
  await store.close();
});

test('adaptive linger: a request closed before the linger begins ends the session at once; another open request keeps it', async () => {
  const { engine, store } = setup({ lingerMs: 60_000 });
  const conn = {};
  await engine
    .handle({ envelope: env(inform('AL2', ['1 BOOT'])), sessionId: null, connection: conn })
    .then((r) => engine.handle({ envelope: null, sessionId: r.cookie!, connection: conn }));
  const closeA = engine.beginRequest(KEY('AL2'));
  const closeB = engine.beginRequest(KEY('AL2'));
  // Request A closes as soon as its answer arrives, B stays open and follows up.
  const a = engine.enqueue(KEY('AL2'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.'] }, { linger: true }).then((o) => {
    closeA();
    return o;
  });
  await new Promise((r) => setTimeout(r, 10));
  const c2 = {};
  const ir = await engine.handle({ envelope: env(inform('AL2', ['6 CONNECTION REQUEST'])), sessionId: null, connection: c2 });
  const gpv = parse(await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: c2 }));
  const held = engine.handle({ envelope: env({ method: 'GetParameterValuesResponse', parameterList: [] }, gpv.id), sessionId: ir.cookie!, connection: c2 });
  assert.equal((await a).kind, 'response');
  assert.ok(await pending(held), 'B is still open: the session lingers');
  // B's follow-up rides the lingering session; B closes with its answer, before the next linger.
  const b = engine.enqueue(KEY('AL2'), { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true }, { linger: true }).then((o) => {
    closeB();
    return o;
  });
  const gpn = parse(await held);
  assert.equal(gpn.body.method, 'GetParameterNames', 'the follow-up came in the same session');
  const end = await engine.handle({ envelope: env({ method: 'GetParameterNamesResponse', parameterList: [] }, gpn.id), sessionId: ir.cookie!, connection: c2 });
  assert.equal(end.status, 204, 'no request open any more: no linger');
  assert.equal((await b).kind, 'response');
  await engine.close();
  await store.close();
});

/**
 * Queues an RPC the way another instance does (into the queue, then the work signal) right after a
 * step found the device's queue empty and before its linger begins: the gap the signal can fall in.
 */
class QueueEmptyGap extends MemorySessionState {
  rpc: QueuedRpc | null = null;
  private signals: SessionSignals | null = null;
  override async start(signals?: SessionSignals): Promise<void> {
    this.signals = signals ?? null;
  }
  override async apply(sessionId: string, expectSeq: number, w: SessionWrite): Promise<ApplyResult> {
    const r = await super.apply(sessionId, expectSeq, w);
    const q = this.rpc;
    if (q && r.kind === 'done' && r.next?.kind === 'queue-empty' && !r.ended) {
      this.rpc = null;
      void this.enqueue(q, false, false);
      this.signals!.work(q.deviceKey);
    }
    return r;
  }
}

test('linger: an RPC signalled between the empty queue look and the linger is sent at once, not after the window', { timeout: 20_000 }, async () => {
  const store = openSqliteStore(':memory:');
  const state = new QueueEmptyGap(store, silentLogger());
  // lingerMs far beyond the test's timeout: an RPC whose signal were lost would wait it out.
  const engine = new SessionEngine(store, new FakeConnReq(), { ...OPTS, lingerMs: 60_000 }, silentLogger(), state);
  await engine.start();
  const conn = {};
  await engine
    .handle({ envelope: env(inform('LW1', ['1 BOOT'])), sessionId: null, connection: conn })
    .then((r) => engine.handle({ envelope: null, sessionId: r.cookie!, connection: conn }));
  const close = engine.beginRequest(KEY('LW1'));
  const first = engine.enqueue(KEY('LW1'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.'] }, { linger: true });
  await new Promise((r) => setTimeout(r, 10));
  const c2 = {};
  const ir = await engine.handle({ envelope: env(inform('LW1', ['6 CONNECTION REQUEST'])), sessionId: null, connection: c2 });
  const gpv = parse(await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: c2 }));
  state.rpc = {
    id: 'gap-1',
    deviceKey: KEY('LW1'),
    rpc: { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true },
    createdAt: new Date().toISOString(),
    deadline: Date.now() + 5000,
    linger: true,
  };
  const next = parse(
    await engine.handle({ envelope: env({ method: 'GetParameterValuesResponse', parameterList: [] }, gpv.id), sessionId: ir.cookie!, connection: c2 }),
  );
  assert.equal(state.rpc, null, 'the RPC was queued in the gap');
  assert.equal(next.body.method, 'GetParameterNames', 'the RPC queued in the gap is the reply to the answer');
  assert.equal(next.id, 'gap-1');
  assert.equal((await first).kind, 'response');
  close();
  const end = await engine.handle({
    envelope: env({ method: 'GetParameterNamesResponse', parameterList: [] }, next.id),
    sessionId: ir.cookie!,
    connection: c2,
  });
  assert.equal(end.status, 204, 'no request open: the linger ends');
  await engine.close();
  await store.close();
});

test('linger: a follow-up RPC enqueued right after an answer rides the same session (one connection request)', async () => {
  const { engine, store, cr } = setup({ lingerMs: 500 });
  const conn = {};
  await engine
    .handle({ envelope: env(inform('LG1', ['1 BOOT'])), sessionId: null, connection: conn })
    .then((r) => engine.handle({ envelope: null, sessionId: r.cookie!, connection: conn }));
  // A USP request: GPN first, then (after its answer) GPV.
  const flow = (async () => {
    const a = await engine.enqueue(KEY('LG1'), { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: false }, { linger: true });
    await new Promise((r) => setTimeout(r, 30)); // the caller works a little before the next RPC
    const b = await engine.enqueue(KEY('LG1'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.'] }, { linger: true });
    return [a.kind, b.kind];
  })();
  await new Promise((r) => setTimeout(r, 10));
  const c2 = {};
  const ir = await engine.handle({ envelope: env(inform('LG1', ['6 CONNECTION REQUEST'])), sessionId: null, connection: c2 });
  const gpn = parse(await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: c2 }));
  assert.equal(gpn.body.method, 'GetParameterNames');
  const gpv = parse(
    await engine.handle({ envelope: env({ method: 'GetParameterNamesResponse', parameterList: [] }, gpn.id), sessionId: ir.cookie!, connection: c2 }),
  );
  assert.equal(gpv.body.method, 'GetParameterValues', 'the follow-up came in the same session');
  const end = await engine.handle({
    envelope: env({ method: 'GetParameterValuesResponse', parameterList: [] }, gpv.id),
    sessionId: ir.cookie!,
    connection: c2,
  });
  assert.equal(end.status, 204, 'after the linger window the session ends');
  assert.deepEqual(await flow, ['response', 'response']);
  assert.equal(cr.calls.length, 1, 'one connection request for the whole USP request');
  await engine.close();
  await store.close();
});

test('dropped connection: the RPC in flight fails after the grace with a reason; a connection that carried two live sessions (a proxy) is ignored', async () => {
  const { engine, store } = setup({ droppedConnectionGraceMs: 20 });
  const conn = {};
  const ir = await engine.handle({ envelope: env(inform('D1', ['2 PERIODIC'])), sessionId: null, connection: conn });
  const p = engine.enqueue(KEY('D1'), { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: false });
  const q = engine.enqueue(KEY('D1'), { method: 'Reboot', commandKey: 'r' });
  q.catch(() => undefined);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(parse(await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn })).body.method, 'GetParameterNames');
  engine.connectionClosed(conn);
  await assert.rejects(
    p,
    (e: unknown) =>
      e instanceof RpcError &&
      e.reason === 'session-ended' &&
      e.message === 'the CPE closed the connection with GetParameterNames in flight' &&
      e.detail?.lost === 'connection-closed' &&
      e.detail.method === 'GetParameterNames',
  );
  assert.equal(engine.activeSessions, 0);
  assert.equal(engine.queuedCount(KEY('D1')), 1, 'the Reboot stays queued for the next session');

  // Two devices' sessions over one connection: a proxy's; its close and cookie-less POSTs say nothing.
  const shared = {};
  const a = await engine.handle({ envelope: env(inform('D2', ['2 PERIODIC'])), sessionId: null, connection: shared });
  await engine.handle({ envelope: env(inform('D3', ['2 PERIODIC'])), sessionId: null, connection: shared });
  const pa = engine.enqueue(KEY('D2'), { method: 'GetRPCMethods' });
  await new Promise((r) => setTimeout(r, 5));
  const rpc = parse(await engine.handle({ envelope: null, sessionId: a.cookie!, connection: shared }));
  assert.equal((await engine.handle({ envelope: null, sessionId: null, connection: shared })).status, 400, 'no session by connection');
  engine.connectionClosed(shared);
  await new Promise((r) => setTimeout(r, 60));
  const end = await engine.handle({ envelope: env({ method: 'GetRPCMethodsResponse', methodList: [] }, rpc.id), sessionId: a.cookie!, connection: {} });
  assert.equal(end.status, 204);
  assert.equal((await pa).kind, 'response');
  await engine.close();
  await store.close();
});

test('an RPC whose caller is gone (signal aborted) leaves the queue unsent; one aborted before it is queued is never queued', async () => {
  const { engine, store } = setup();
  const conn = {};
  const ir = await engine.handle({ envelope: env(inform('SIG', ['1 BOOT'])), sessionId: null, connection: conn });
  await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn });
  const ac = new AbortController();
  const p = engine.enqueue(KEY('SIG'), { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true }, { signal: ac.signal, deadlineMs: 60_000 });
  await new Promise((r) => setImmediate(r));
  assert.equal(engine.queuedCount(KEY('SIG')), 1);
  ac.abort(new Error('the controller is gone'));
  await assert.rejects(p, (e: unknown) => e instanceof RpcError && e.reason === 'cancelled');
  assert.equal(engine.queuedCount(KEY('SIG')), 0);
  assert.deepEqual(await store.listQueuedRpcs(KEY('SIG')), []);
  await assert.rejects(
    engine.enqueue(KEY('SIG'), { method: 'GetRPCMethods' }, { signal: ac.signal }),
    (e: unknown) => e instanceof RpcError && e.reason === 'cancelled',
  );
  assert.equal(engine.queuedCount(KEY('SIG')), 0);
  await engine.close();
  await store.close();
});

test('a GPV answer settles its caller only after a new or changed xsi:type is stored (the store writing a turn later)', async () => {
  // Types written a turn later, as over the network (Redis): the caller must still find them.
  const sqlite = openSqliteStore(':memory:');
  const putParameterTypes: Store['putParameterTypes'] = async (key, types) => {
    await new Promise((r) => setImmediate(r));
    return sqlite.putParameterTypes(key, types);
  };
  const { engine, store } = setup({}, new Proxy(sqlite, { get: (t, p) => (p === 'putParameterTypes' ? putParameterTypes : Reflect.get(t, p, t)) }));
  const conn = {};
  const first = await engine.handle({ envelope: env(inform('S9', ['1 BOOT'])), sessionId: null, connection: conn });
  await engine.handle({ envelope: null, sessionId: first.cookie!, connection: conn });
  const name = 'Device.DeviceInfo.X_TEST_Counter';
  // Each answer's caller reads the model's types the moment its enqueue resolves.
  const typesAtAnswer: (string | undefined)[] = [];
  const ask = (): Promise<void> =>
    engine
      .enqueue(KEY('S9'), { method: 'GetParameterValues', parameterNames: [name] })
      .then(async () => void typesAtAnswer.push((await engine.parameterTypes(KEY('S9'), [name])).get(name)));
  const answers = [ask(), ask(), ask()];
  const ir = await engine.handle({ envelope: env(inform('S9', ['6 CONNECTION REQUEST'])), sessionId: null, connection: conn });
  let req = parse(await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn }));
  // New to the model, then the same (nothing to store), then changed.
  for (const type of ['xsd:unsignedInt', 'xsd:unsignedInt', 'xsd:int']) {
    assert.equal(req.body.method, 'GetParameterValues');
    const r = await engine.handle({
      envelope: env({ method: 'GetParameterValuesResponse', parameterList: [{ name, value: '5', type }] }, req.id),
      sessionId: ir.cookie!,
      connection: conn,
    });
    if (r.status === 200) req = parse(r);
    else assert.equal(r.status, 204);
  }
  await Promise.all(answers);
  assert.deepEqual(typesAtAnswer, ['xsd:unsignedInt', 'xsd:unsignedInt', 'xsd:int']);
  await engine.close();
  await store.close();
});
