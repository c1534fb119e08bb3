/**
 * A CPE that drops its TCP connection with an RPC in flight (src/cwmp/connection-drop.ts and
 * SessionEngine.connectionClosed), over real loopback sockets with raw HTTP and raw SOAP: the RPC
 * fails after the grace with a reason saying so; a CPE that comes back in time, one that closes
 * after every exchange as announced, and a proxy's connection are left alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AcsServer } from '../../src/cwmp/acs-server.js';
import { DecodePool } from '../../src/cwmp/decode-pool.js';
import { SessionEngine, RpcError, type RpcOutcome } from '../../src/cwmp/session.js';
import { silentLogger } from '../../src/app/log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { cwmpIdOf, postSoap, sessionCookieOf } from '../helpers/cwmp-fixtures.js';
import { RawConnection } from '../helpers/raw-http.js';

const NS = 'urn:dslforum-org:cwmp-1-2';
const KEY = (serial: string): string => `00259E-HG8245-${serial}`;

const INFORM = (serial: string, event = '2 PERIODIC'): string =>
  `<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="${NS}">
<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">1</cwmp:ID></SOAP-ENV:Header>
<SOAP-ENV:Body><cwmp:Inform>
<DeviceId><Manufacturer>Huawei</Manufacturer><OUI>00259E</OUI><ProductClass>HG8245</ProductClass><SerialNumber>${serial}</SerialNumber></DeviceId>
<Event SOAP-ENC:arrayType="cwmp:EventStruct[1]"><EventStruct><EventCode>${event}</EventCode><CommandKey></CommandKey></EventStruct></Event>
<MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2026-11-25T10:00:00Z</CurrentTime><RetryCount>0</RetryCount>
<ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[1]">
<ParameterValueStruct><Name>InternetGatewayDevice.ManagementServer.ConnectionRequestURL</Name><Value xsi:type="xsd:string">http://127.0.0.1:1/</Value></ParameterValueStruct>
</ParameterList></cwmp:Inform></SOAP-ENV:Body></SOAP-ENV:Envelope>`;

const GPV_RESPONSE = (id: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="${NS}">
<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">${id}</cwmp:ID></SOAP-ENV:Header>
<SOAP-ENV:Body><cwmp:GetParameterValuesResponse><ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[1]">
<ParameterValueStruct><Name>InternetGatewayDevice.DeviceInfo.UpTime</Name><Value xsi:type="xsd:unsignedInt">42</Value></ParameterValueStruct>
</ParameterList></cwmp:GetParameterValuesResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function harness(graceMs: number) {
  const store = openSqliteStore(':memory:');
  const engine = new SessionEngine(
    store,
    { request: async () => ({ ok: false, reason: 'refused' }), cancel: () => undefined },
    {
      sessionTimeoutMs: 30_000,
      rpcDeadlineMs: 30_000,
      holdRequests: false,
      setConnectionRequestCredentials: false,
      maxSessions: 100,
      endpointIdScheme: 'os',
      droppedConnectionGraceMs: graceMs,
    },
    silentLogger(),
  );
  const server = new AcsServer(
    engine,
    new DecodePool(0, 1 << 30),
    store,
    { host: '127.0.0.1', port: 0, maxBodyBytes: 1 << 20, auth: { mode: 'none', realm: 'r', username: '', password: '' } },
    silentLogger(),
  );
  const port = await server.listen();
  const settled = <T>(p: Promise<T>) => {
    const s: { value?: T; error?: unknown; done: boolean } = { done: false };
    p.then(
      (v) => Object.assign(s, { value: v, done: true }),
      (e: unknown) => Object.assign(s, { error: e, done: true }),
    );
    return s;
  };
  /** Inform, then an empty POST that gets the queued GetParameterValues: the RPC is in flight on `conn`. */
  const rpcInFlight = async (serial: string, conn: RawConnection, headers: Record<string, string> = {}, version: '1.0' | '1.1' = '1.1') => {
    const inf = await postSoap(conn, INFORM(serial), headers, version);
    assert.equal(inf.status, 200, inf.body.toString());
    const cookie = sessionCookieOf(inf);
    const call = settled<RpcOutcome>(
      engine.enqueue(KEY(serial), { method: 'GetParameterValues', parameterNames: ['InternetGatewayDevice.DeviceInfo.UpTime'] }),
    );
    if (version === '1.0' || headers.Connection === 'close') {
      await conn.closed(); // the server closes after each exchange, as the CPE asked
      conn = await RawConnection.open(port);
    }
    const rpc = await postSoap(conn, '', { Cookie: cookie, ...headers }, version);
    assert.equal(rpc.status, 200, rpc.body.toString());
    assert.match(rpc.body.toString(), /<cwmp:GetParameterValues>/);
    return { cookie, id: cwmpIdOf(rpc), call, conn };
  };
  const stop = async (): Promise<void> => {
    await server.close();
    await engine.close();
    await store.close();
  };
  return { engine, port, rpcInFlight, stop };
}

test('the CPE closes its kept-alive connection with GetParameterValues in flight: the RPC fails after the grace, saying so', async () => {
  const h = await harness(50);
  try {
    const conn = await RawConnection.open(h.port);
    const { call } = await h.rpcInFlight('DROP01', conn);
    conn.halfClose(); // FIN: the CPE agent gave up on the request
    for (let i = 0; i < 500 && !call.done; i++) await sleep(10);
    assert.ok(call.error instanceof RpcError, `an RpcError, got ${String(call.error)}`);
    assert.equal(call.error.reason, 'session-ended');
    assert.equal(call.error.message, 'the CPE closed the connection with GetParameterValues in flight');
    assert.deepEqual(call.error.detail, { lost: 'connection-closed', method: 'GetParameterValues' });
    assert.equal(h.engine.activeSessions, 0, 'the session is over');
    conn.destroy();
  } finally {
    await h.stop();
  }
});

test('a CPE that reconnects within the grace and answers keeps its RPC', async () => {
  const h = await harness(5_000);
  try {
    const conn = await RawConnection.open(h.port);
    const { cookie, id, call } = await h.rpcInFlight('BACK01', conn);
    conn.destroy();
    const again = await RawConnection.open(h.port);
    const end = await postSoap(again, GPV_RESPONSE(id), { Cookie: cookie });
    assert.equal(end.status, 204, end.body.toString());
    for (let i = 0; i < 100 && !call.done; i++) await sleep(10);
    assert.equal(call.error, undefined, String(call.error));
    assert.ok(call.value?.kind === 'response' && call.value.response.method === 'GetParameterValuesResponse');
    again.destroy();
  } finally {
    await h.stop();
  }
});

test('a CPE that closes after every exchange as it announced (Connection: close, HTTP/1.0) is not taken for a drop', async () => {
  const h = await harness(30);
  try {
    for (const [serial, headers, version] of [
      ['CLOSE1', { Connection: 'close' }, '1.1'],
      ['HTTP10', {}, '1.0'],
    ] as const) {
      const { cookie, id, call, conn } = await h.rpcInFlight(serial, await RawConnection.open(h.port), { ...headers }, version);
      await conn.closed();
      await sleep(150); // well past the grace: a slow CPE working on the request
      assert.equal(call.done, false, `${serial}: the RPC is still in flight`);
      const answer = await RawConnection.open(h.port);
      const end = await postSoap(answer, GPV_RESPONSE(id), { Cookie: cookie, ...headers }, version);
      assert.equal(end.status, 204, end.body.toString());
      for (let i = 0; i < 100 && !call.done; i++) await sleep(10);
      assert.equal(call.value?.kind, 'response', `${serial}: ${String(call.error)}`);
      answer.destroy();
    }
  } finally {
    await h.stop();
  }
});

test("a proxy's connection closing says nothing about the CPE behind it", async () => {
  const h = await harness(30);
  try {
    const proxied = { 'X-Forwarded-For': '192.0.2.7' };
    const conn = await RawConnection.open(h.port);
    const { cookie, id, call } = await h.rpcInFlight('PROXY1', conn, proxied);
    conn.halfClose();
    await sleep(150);
    assert.equal(call.done, false, 'the RPC is still in flight');
    const again = await RawConnection.open(h.port);
    assert.equal((await postSoap(again, GPV_RESPONSE(id), { Cookie: cookie, ...proxied })).status, 204);
    for (let i = 0; i < 100 && !call.done; i++) await sleep(10);
    assert.equal(call.value?.kind, 'response');
    conn.destroy();
    again.destroy();
  } finally {
    await h.stop();
  }
});

test('a CPE that drops and sends a new Inform within the grace: the RPC fails as a new session', async () => {
  const h = await harness(5_000);
  try {
    const conn = await RawConnection.open(h.port);
    const { call } = await h.rpcInFlight('REINF1', conn);
    conn.halfClose();
    const again = await RawConnection.open(h.port);
    assert.equal((await postSoap(again, INFORM('REINF1', '1 BOOT'))).status, 200);
    for (let i = 0; i < 100 && !call.done; i++) await sleep(10);
    assert.ok(call.error instanceof RpcError);
    assert.equal(call.error.message, 'the CPE started a new session with GetParameterValues in flight');
    assert.deepEqual(call.error.detail, { lost: 'new-session', method: 'GetParameterValues' });
    conn.destroy();
    again.destroy();
  } finally {
    await h.stop();
  }
});
