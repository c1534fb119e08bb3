/**
 * ClusterSessionEngine on a real redis-server: two engines ("instances" a and b) share one Redis
 * and a CPE sends the POSTs of one session alternately to both, as behind a round-robin balancer.
 * Real envelopes go through the SOAP codec both ways.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { RpcError, type CwmpReply, type SessionEngineOptions } from '../../src/cwmp/session.js';
import { decodeSoap } from '../../src/cwmp/soap.js';
import { silentLogger } from '../../src/app/log.js';
import type { CwmpMessage, SoapEnvelope } from '../../src/cwmp/types.js';
import { RedisStore } from '../../src/store/redis.js';
import { ClusterBus } from '../../src/cluster/bus.js';
import { ClusterSessionEngine } from '../../src/cluster/session-engine.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';
import { FakeConnReq, inform } from '../helpers/cwmp-fixtures.js';

const OPTS: SessionEngineOptions = {
  sessionTimeoutMs: 1500,
  rpcDeadlineMs: 1500,
  holdRequests: false,
  setConnectionRequestCredentials: false,
  maxSessions: 100,
  endpointIdScheme: 'os',
  lingerMs: 300,
};

const env = (body: CwmpMessage, id = 'cpe-1'): SoapEnvelope => ({ cwmpVersion: '1-2', id, body });
const KEY = (serial: string): string => `00D09E-Box-${serial}`;
const gpvResponse = (value: string): CwmpMessage => ({
  method: 'GetParameterValuesResponse',
  parameterList: [{ name: 'Device.DeviceInfo.UpTime', value, type: 'xsd:unsignedInt' }],
});

function parse(reply: CwmpReply): SoapEnvelope {
  assert.equal(reply.status, 200, reply.body);
  const d = decodeSoap(reply.body);
  assert.ok(d.envelope);
  return d.envelope;
}

let redis: RedisHandle | null = null;
const open: { close(): Promise<void> }[] = [];

before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const o of open.reverse()) await o.close().catch(() => undefined);
  await redis?.stop();
});

/** Two instances on one fresh key prefix. */
async function pair(opts: Partial<SessionEngineOptions> = {}) {
  const prefix = `t${randomBytes(4).toString('hex')}:`;
  const make = async (id: string) => {
    const store = new RedisStore({ url: redis!.url, prefix, owner: id });
    const bus = new ClusterBus(store.redis, silentLogger());
    const cr = new FakeConnReq();
    const engine = new ClusterSessionEngine(store, cr, { ...OPTS, ...opts }, silentLogger(), bus, id);
    await engine.start();
    open.push(store, bus, { close: () => engine.close() });
    return { store, bus, cr, engine };
  };
  return { a: await make('a'), b: await make('b') };
}

test('one session served alternately by two instances; the origin gets the answer; one connection request', async (t) => {
  if (!redis) return t.skip('redis-server not installed (apt-get install redis-server; .ci/run does)');
  const { a, b } = await pair();
  const r0 = parse(await a.engine.handle({ envelope: env(inform('S1', ['1 BOOT'])), sessionId: null, connection: {} }));
  assert.equal(r0.body.method, 'InformResponse');
  assert.equal(parse(await b.engine.handle({ envelope: env(inform('S1', ['1 BOOT'])), sessionId: null, connection: {} })).body.method, 'InformResponse');
  // the second Inform superseded the first; end it so the device is out of session
  const first = await a.engine.handle({ envelope: env(inform('S1', ['2 PERIODIC'])), sessionId: null, connection: {} });
  const sid = first.cookie!;
  assert.equal((await b.engine.handle({ envelope: null, sessionId: sid, connection: {} })).status, 204);

  // Both instances queue work for the device while it is out of session: one wakes it.
  const fromA = a.engine.enqueue(KEY('S1'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] });
  const fromB = b.engine.enqueue(KEY('S1'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(a.cr.calls.length + b.cr.calls.length, 1, 'one connection request across instances');

  const inf = await b.engine.handle({ envelope: env(inform('S1', ['6 CONNECTION REQUEST'])), sessionId: null, connection: {} });
  const s = inf.cookie!;
  const rpc1 = parse(await a.engine.handle({ envelope: null, sessionId: s, connection: {} }));
  assert.equal(rpc1.body.method, 'GetParameterValues');
  const rpc2 = parse(await b.engine.handle({ envelope: env(gpvResponse('11'), rpc1.id!), sessionId: s, connection: {} }));
  assert.equal(rpc2.body.method, 'GetParameterValues');
  const end = await a.engine.handle({ envelope: env(gpvResponse('22'), rpc2.id!), sessionId: s, connection: {} });
  assert.equal(end.status, 204);
  // Which instance queued first is a race; each caller gets exactly its own answer.
  const values = (await Promise.all([fromA, fromB])).map((o) =>
    o.kind === 'response' && o.response.method === 'GetParameterValuesResponse' ? o.response.parameterList[0]!.value : '',
  );
  assert.deepEqual(values.sort(), ['11', '22']);
  assert.equal(await a.engine.inSession(KEY('S1')), false);
});

test('a lingering session picks up the follow-up RPC queued on another instance', async (t) => {
  if (!redis) return t.skip('redis-server not installed');
  const { a, b } = await pair();
  const s = (await a.engine.handle({ envelope: env(inform('S2', ['1 BOOT'])), sessionId: null, connection: {} })).cookie!;
  assert.equal((await a.engine.handle({ envelope: null, sessionId: s, connection: {} })).status, 204);
  const first = b.engine.enqueue(KEY('S2'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] }, { linger: true });
  for (let i = 0; i < 100 && a.cr.calls.length + b.cr.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const s2 = (await a.engine.handle({ envelope: env(inform('S2', ['6 CONNECTION REQUEST'])), sessionId: null, connection: {} })).cookie!;
  const rpc = parse(await b.engine.handle({ envelope: null, sessionId: s2, connection: {} }));
  // The answer's POST waits (linger) on a; b queues the follow-up once the first outcome is in.
  const answered = a.engine.handle({ envelope: env(gpvResponse('5'), rpc.id!), sessionId: s2, connection: {} });
  const o = await first;
  assert.equal(o.kind, 'response');
  const follow = b.engine.enqueue(KEY('S2'), { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true });
  const next = parse(await answered);
  assert.equal(next.body.method, 'GetParameterNames', 'the follow-up rode the same session');
  const done = await b.engine.handle({ envelope: env({ method: 'GetParameterNamesResponse', parameterList: [] }, next.id!), sessionId: s2, connection: {} });
  assert.equal(done.status, 204);
  assert.equal((await follow).kind, 'response');
  assert.equal(a.cr.calls.length + b.cr.calls.length, 1, 'only the first RPC needed a connection request');
});

/** Waits (polling Redis, no timed assertion) until `n` RPCs are queued for the device. */
async function queued(store: RedisStore, deviceKey: string, n: number): Promise<void> {
  for (let i = 0; i < 200 && (await store.listQueuedRpcs(deviceKey)).length < n; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal((await store.listQueuedRpcs(deviceKey)).length, n);
}

test("adaptive linger across instances: a session that took another instance's work keeps its window when the requests here close", async (t) => {
  if (!redis) return t.skip('redis-server not installed');
  // A window long enough for b's follow-up on a loaded machine (inside the session timeout); the last POST waits it out (the trade-off).
  const { a, b } = await pair({ lingerMs: 2000, sessionTimeoutMs: 10_000 });
  const s0 = (await a.engine.handle({ envelope: env(inform('S8', ['1 BOOT'])), sessionId: null, connection: {} })).cookie!;
  assert.equal((await a.engine.handle({ envelope: null, sessionId: s0, connection: {} })).status, 204);
  // Two USP-like requests for the device, one taken by each instance (as the broker hands them out).
  const closeA = a.engine.beginRequest(KEY('S8'));
  const closeB = b.engine.beginRequest(KEY('S8'));
  const fromA = a.engine.enqueue(KEY('S8'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] }, { linger: true }).then((o) => {
    closeA(); // a's request is done with its answer: a has no request open for the device now
    return o;
  });
  for (let i = 0; i < 100 && a.cr.calls.length + b.cr.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const s = (await a.engine.handle({ envelope: env(inform('S8', ['6 CONNECTION REQUEST'])), sessionId: null, connection: {} })).cookie!;
  const rpc1 = parse(await a.engine.handle({ envelope: null, sessionId: s, connection: {} }));
  // b's request queues its RPC through Redis while a's session has a's RPC in flight.
  const fromB = b.engine.enqueue(KEY('S8'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.SoftwareVersion'] }, { linger: true });
  await queued(a.store, KEY('S8'), 1);
  const rpc2 = parse(await a.engine.handle({ envelope: env(gpvResponse('1'), rpc1.id!), sessionId: s, connection: {} }));
  assert.deepEqual(rpc2.body.method === 'GetParameterValues' && rpc2.body.parameterNames, ['Device.DeviceInfo.SoftwareVersion'], "a's session serves b's RPC");
  assert.equal((await fromA).kind, 'response');
  // b's RPC answered: nothing is queued and no request is open on a, but b's request may follow up.
  const answered = a.engine.handle({ envelope: env(gpvResponse('2'), rpc2.id!), sessionId: s, connection: {} });
  assert.equal((await fromB).kind, 'response');
  const follow = b.engine.enqueue(KEY('S8'), { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true }, { linger: true });
  const next = await answered;
  assert.equal(next.status, 200, "the session lingered for b's follow-up instead of ending with a's last request");
  assert.equal(parse(next).body.method, 'GetParameterNames', 'the follow-up rode the same session');
  const done = await a.engine.handle({
    envelope: env({ method: 'GetParameterNamesResponse', parameterList: [] }, parse(next).id!),
    sessionId: s,
    connection: {},
  });
  closeB();
  assert.equal(done.status, 204);
  assert.equal((await follow).kind, 'response');
  assert.equal(a.cr.calls.length + b.cr.calls.length, 1, 'one connection request for the three RPCs');
  assert.equal(await a.engine.inSession(KEY('S8')), false);
});

test('adaptive linger across instances: a session handed over keeps what it took from the instance it left', async (t) => {
  if (!redis) return t.skip('redis-server not installed');
  const { a, b } = await pair({ lingerMs: 2000, sessionTimeoutMs: 10_000 });
  const s0 = (await a.engine.handle({ envelope: env(inform('S10', ['1 BOOT'])), sessionId: null, connection: {} })).cookie!;
  assert.equal((await a.engine.handle({ envelope: null, sessionId: s0, connection: {} })).status, 204);
  // a's request makes two RPCs; b has a request open for the device too, that makes none.
  const closeA = a.engine.beginRequest(KEY('S10'));
  const closeB = b.engine.beginRequest(KEY('S10'));
  const first = a.engine.enqueue(KEY('S10'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] }, { linger: true });
  for (let i = 0; i < 100 && a.cr.calls.length + b.cr.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const s = (await a.engine.handle({ envelope: env(inform('S10', ['6 CONNECTION REQUEST'])), sessionId: null, connection: {} })).cookie!;
  const rpc1 = parse(await a.engine.handle({ envelope: null, sessionId: s, connection: {} }));
  // The answer reaches b (no relay here): the session moves to b, which serves a's RPC's answer and lingers.
  const answered = b.engine.handle({ envelope: env(gpvResponse('4'), rpc1.id!), sessionId: s, connection: {} });
  assert.equal((await first).kind, 'response');
  closeB(); // b's own request is done: b alone cannot tell that a's may follow up
  // Time for a session that ended with it to drop its lease (it would claim a follow-up queued before that).
  for (let i = 0; i < 20 && (await a.engine.inSession(KEY('S10'))); i++) await new Promise((r) => setTimeout(r, 10));
  const follow = a.engine.enqueue(KEY('S10'), { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true }, { linger: true });
  const next = await answered;
  assert.equal(next.status, 200, "the session kept its window after the move: a's RPC came from another instance");
  assert.equal(parse(next).body.method, 'GetParameterNames', "a's follow-up rode the same session");
  const done = await b.engine.handle({
    envelope: env({ method: 'GetParameterNamesResponse', parameterList: [] }, parse(next).id!),
    sessionId: s,
    connection: {},
  });
  closeA();
  assert.equal(done.status, 204);
  assert.equal((await follow).kind, 'response');
  assert.equal(a.cr.calls.length + b.cr.calls.length, 1, 'one connection request for both RPCs');
});

test('adaptive linger, one instance on Redis: the session ends as soon as the last request closes', { timeout: 20_000 }, async (t) => {
  if (!redis) return t.skip('redis-server not installed');
  // lingerMs far beyond the test's timeout: only the request's close can end this linger.
  const { a } = await pair({ lingerMs: 60_000 });
  const s0 = (await a.engine.handle({ envelope: env(inform('S9', ['1 BOOT'])), sessionId: null, connection: {} })).cookie!;
  assert.equal((await a.engine.handle({ envelope: null, sessionId: s0, connection: {} })).status, 204);
  const closeA = a.engine.beginRequest(KEY('S9'));
  const closeB = a.engine.beginRequest(KEY('S9'));
  const first = a.engine.enqueue(KEY('S9'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] }, { linger: true });
  for (let i = 0; i < 100 && a.cr.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const s = (await a.engine.handle({ envelope: env(inform('S9', ['6 CONNECTION REQUEST'])), sessionId: null, connection: {} })).cookie!;
  const rpc1 = parse(await a.engine.handle({ envelope: null, sessionId: s, connection: {} }));
  // The second request's RPC is queued here too: its origin is this instance.
  const second = a.engine.enqueue(KEY('S9'), { method: 'GetParameterNames', parameterPath: 'Device.', nextLevel: true }, { linger: true });
  await queued(a.store, KEY('S9'), 1);
  const rpc2 = parse(await a.engine.handle({ envelope: env(gpvResponse('3'), rpc1.id!), sessionId: s, connection: {} }));
  assert.equal(rpc2.body.method, 'GetParameterNames');
  assert.equal((await first).kind, 'response');
  closeA(); // one request still open: the session lingers after the next answer
  const end = a.engine.handle({ envelope: env({ method: 'GetParameterNamesResponse', parameterList: [] }, rpc2.id!), sessionId: s, connection: {} });
  assert.equal((await second).kind, 'response');
  closeB();
  assert.equal((await end).status, 204, 'the last request closed: the linger ended');
  assert.equal(a.cr.calls.length, 1);
  assert.equal(await a.engine.inSession(KEY('S9')), false);
});

test('errors: unreachable at the deadline (queue emptied), session timeout with the RPC in flight, superseding Inform, empty POST, wrong response', async (t) => {
  if (!redis) return t.skip('redis-server not installed');
  const { a, b } = await pair();
  // Registered, never comes back: unreachable, and nothing stays queued.
  const s = (await a.engine.handle({ envelope: env(inform('S3', ['1 BOOT'])), sessionId: null, connection: {} })).cookie!;
  await a.engine.handle({ envelope: null, sessionId: s, connection: {} });
  await assert.rejects(
    b.engine.enqueue(KEY('S3'), { method: 'Reboot', commandKey: 'k' }, { deadlineMs: 300 }),
    (e: unknown) => e instanceof RpcError && e.reason === 'unreachable',
  );
  assert.deepEqual(await a.store.listQueuedRpcs(KEY('S3')), []);

  // In flight when the CPE goes silent: the serving instance's timer fails it at the origin.
  const p1 = b.engine.enqueue(KEY('S3'), { method: 'Reboot', commandKey: 'k1' });
  const s1 = (await a.engine.handle({ envelope: env(inform('S3', ['6 CONNECTION REQUEST'])), sessionId: null, connection: {} })).cookie!;
  assert.equal(parse(await a.engine.handle({ envelope: null, sessionId: s1, connection: {} })).body.method, 'Reboot');
  await assert.rejects(p1, (e: unknown) => e instanceof RpcError && e.reason === 'session-timeout');

  // In flight when the CPE starts over with a new Inform (on the other instance).
  const p2 = a.engine.enqueue(KEY('S3'), { method: 'Reboot', commandKey: 'k2' });
  const s2 = (await b.engine.handle({ envelope: env(inform('S3', ['6 CONNECTION REQUEST'])), sessionId: null, connection: {} })).cookie!;
  assert.equal(parse(await b.engine.handle({ envelope: null, sessionId: s2, connection: {} })).body.method, 'Reboot');
  const s3 = (await a.engine.handle({ envelope: env(inform('S3', ['1 BOOT'])), sessionId: null, connection: {} })).cookie!;
  await assert.rejects(p2, (e: unknown) => e instanceof RpcError && e.reason === 'session-ended');

  // An empty POST instead of the response, then a response nobody asked for.
  const p3 = b.engine.enqueue(KEY('S3'), { method: 'Reboot', commandKey: 'k3' });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(parse(await a.engine.handle({ envelope: null, sessionId: s3, connection: {} })).body.method, 'Reboot');
  const wrong = await b.engine.handle({ envelope: env({ method: 'FactoryResetResponse' }), sessionId: s3, connection: {} });
  assert.equal(wrong.status, 400);
  assert.match(wrong.body, /RPC in flight is Reboot/);
  assert.equal((await b.engine.handle({ envelope: null, sessionId: s3, connection: {} })).status, 204);
  await assert.rejects(p3, (e: unknown) => e instanceof RpcError && e.reason === 'session-ended');
  const stray = await a.engine.handle({ envelope: env({ method: 'RebootResponse' }), sessionId: s3, connection: {} });
  assert.equal(stray.status, 400, 'the session is over');
});

test('cancel removes a queued RPC on any instance; a TransferComplete is answered in session', async (t) => {
  if (!redis) return t.skip('redis-server not installed');
  const { a, b } = await pair();
  const s = (await a.engine.handle({ envelope: env(inform('S4', ['1 BOOT'])), sessionId: null, connection: {} })).cookie!;
  await a.engine.handle({ envelope: null, sessionId: s, connection: {} });
  let id = '';
  a.engine.once('rpcResult', (r) => (id = r.id));
  const p = a.engine.enqueue(KEY('S4'), { method: 'Reboot', commandKey: 'c' });
  let queued = await b.store.listQueuedRpcs(KEY('S4'));
  for (let i = 0; i < 50 && queued.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
    queued = await b.store.listQueuedRpcs(KEY('S4'));
  }
  assert.equal(queued.length, 1);
  assert.equal(await a.engine.cancel(queued[0]!.id), true);
  await assert.rejects(p, (e: unknown) => e instanceof RpcError && e.reason === 'cancelled');
  assert.equal(id, queued[0]!.id);

  const seen: string[] = [];
  b.engine.on('transferComplete', ({ message }) => seen.push(message.method));
  const s2 = (await a.engine.handle({ envelope: env(inform('S4', ['7 TRANSFER COMPLETE'])), sessionId: null, connection: {} })).cookie!;
  const tc = await b.engine.handle({
    envelope: env({
      method: 'TransferComplete',
      commandKey: 'dl',
      fault: { faultCode: 0, faultString: '' },
      startTime: '2026-11-25T10:00:00Z',
      completeTime: '2026-11-25T10:00:01Z',
    }),
    sessionId: s2,
    connection: {},
  });
  assert.equal(parse(tc).body.method, 'TransferCompleteResponse');
  assert.deepEqual(seen, ['TransferComplete']);
  assert.equal((await a.engine.handle({ envelope: null, sessionId: s2, connection: {} })).status, 204);
});

test('a dropped connection is reported by the instance holding it; the origin elsewhere gets the reason; a CPE back on another instance in time keeps its RPC', async (t) => {
  if (!redis) return t.skip('redis-server not installed');
  const { a, b } = await pair({ droppedConnectionGraceMs: 30 });
  const s0 = (await a.engine.handle({ envelope: env(inform('S5', ['1 BOOT'])), sessionId: null, connection: {} })).cookie!;
  assert.equal((await a.engine.handle({ envelope: null, sessionId: s0, connection: {} })).status, 204);

  // In flight on a's connection, queued by b: a reports the close, b's caller gets why.
  const p1 = b.engine.enqueue(KEY('S5'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] });
  const s1 = (await a.engine.handle({ envelope: env(inform('S5', ['6 CONNECTION REQUEST'])), sessionId: null, connection: {} })).cookie!;
  const conn = {};
  assert.equal(parse(await a.engine.handle({ envelope: null, sessionId: s1, connection: conn })).body.method, 'GetParameterValues');
  a.engine.connectionClosed(conn);
  await assert.rejects(p1, (e: unknown) => e instanceof RpcError && e.reason === 'session-ended' && e.detail?.lost === 'connection-closed');
  assert.equal(await a.engine.inSession(KEY('S5')), false);

  // The CPE comes back on b within the grace: a's timer finds a later POST and leaves the RPC alone.
  const p2 = b.engine.enqueue(KEY('S5'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] }, { deadlineMs: 5000 });
  const s2 = (await a.engine.handle({ envelope: env(inform('S5', ['6 CONNECTION REQUEST'])), sessionId: null, connection: {} })).cookie!;
  const conn2 = {};
  const rpc = parse(await a.engine.handle({ envelope: null, sessionId: s2, connection: conn2 }));
  a.engine.connectionClosed(conn2);
  const done = await b.engine.handle({ envelope: env(gpvResponse('9'), rpc.id!), sessionId: s2, connection: {} });
  assert.equal(done.status, 204);
  assert.equal((await p2).kind, 'response');
  await new Promise((r) => setTimeout(r, 60)); // a's grace runs out on a session that moved on
  assert.equal(await a.engine.inSession(KEY('S5')), false);
});

test('the instance holding a session stops: a POST elsewhere is refused after the handover wait; a caller elsewhere hears of its claimed RPC at the takeover', async (t) => {
  if (!redis) return t.skip('redis-server not installed');
  const { a, b } = await pair();
  const s0 = (await a.engine.handle({ envelope: env(inform('S6', ['1 BOOT'])), sessionId: null, connection: {} })).cookie!;
  assert.equal((await a.engine.handle({ envelope: null, sessionId: s0, connection: {} })).status, 204);
  const p = b.engine.enqueue(KEY('S6'), { method: 'Reboot', commandKey: 'dead' });
  for (let i = 0; i < 100 && a.cr.calls.length + b.cr.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const s = (await a.engine.handle({ envelope: env(inform('S6', ['6 CONNECTION REQUEST'])), sessionId: null, connection: {} })).cookie!;
  const rpc = parse(await a.engine.handle({ envelope: null, sessionId: s, connection: {} }));
  assert.equal(rpc.body.method, 'Reboot');
  // a stops (its bus too: nobody hands the session over).
  await a.bus.close();
  await a.engine.close();
  const late = await b.engine.handle({ envelope: env({ method: 'RebootResponse' }, rpc.id!), sessionId: s, connection: {} });
  assert.equal(late.status, 400, 'the session was lost with its instance: the CPE starts a new one');
  // The takeover's signal: the Reboot a's session had claimed is reported lost, naming a.
  b.bus.publish(b.store.key('ch', 'dead'), { instance: 'a' });
  await assert.rejects(p, (e: unknown) => e instanceof RpcError && e.reason === 'session-ended' && /instance a /.test(e.message));
});

test('Redis commands of an RPC to an idle device, one instance: enqueue, Inform, empty POST, answer (no Lua)', async (t) => {
  if (!redis) return t.skip('redis-server not installed');
  const { a } = await pair();
  const calls = async (): Promise<Map<string, number>> => {
    const info = await a.store.redis.info('commandstats');
    return new Map([...info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
  };
  const round = async (): Promise<void> => {
    const p = a.engine.enqueue(KEY('S7'), { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] });
    for (let i = 0; i < 100 && a.cr.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    a.cr.calls.length = 0;
    const s = (await a.engine.handle({ envelope: env(inform('S7', ['6 CONNECTION REQUEST'])), sessionId: null, connection: {} })).cookie!;
    const rpc = parse(await a.engine.handle({ envelope: null, sessionId: s, connection: {} }));
    assert.equal((await a.engine.handle({ envelope: env(gpvResponse('7'), rpc.id!), sessionId: s, connection: {} })).status, 204);
    assert.equal((await p).kind, 'response');
  };
  const s0 = (await a.engine.handle({ envelope: env(inform('S7', ['1 BOOT'])), sessionId: null, connection: {} })).cookie!;
  assert.equal((await a.engine.handle({ envelope: null, sessionId: s0, connection: {} })).status, 204);
  await round(); // types learned, device cached
  const before = await calls();
  await round();
  const after = await calls();
  const used: Record<string, number> = {};
  for (const [c, n] of after) if (c !== 'info' && n - (before.get(c) ?? 0) > 0) used[c] = n - (before.get(c) ?? 0);
  t.diagnostic(JSON.stringify(used));
  assert.equal(used.evalsha ?? 0, 0, 'no script on the way');
  // enqueue RPUSH + SET NX GET; Inform SET GET + LLEN, the Inform's HSET; the claim LPOP; the end DEL + LPOP.
  assert.deepEqual(used, { rpush: 1, set: 2, llen: 1, hset: 1, lpop: 2, del: 1 });
});
