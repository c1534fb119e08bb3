/**
 * CPE requests in any order (TR-069 3.7.1, A.3.2, A.4.2), over the ACS front with raw envelopes
 * in the style of other CPE stacks (SOAP-ENV prefix, CRLF, MaxEnvelopes other than 1): each is
 * answered with its response and its cwmp:ID, events are emitted, and none is taken for the
 * answer to the ACS RPC in flight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AcsServer } from '../../src/cwmp/acs-server.js';
import { DecodePool } from '../../src/cwmp/decode-pool.js';
import { SessionEngine, type RpcOutcome } from '../../src/cwmp/session.js';
import { decodeSoap } from '../../src/cwmp/soap.js';
import { silentLogger } from '../../src/app/log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { CwmpMessage } from '../../src/cwmp/types.js';
import { cwmpIdOf, postSoap, sessionCookieOf } from '../helpers/cwmp-fixtures.js';
import { RawConnection } from '../helpers/raw-http.js';

// The ProductClass "DIR-825" holds a "-", %-encoded in the key (device-id.ts).
const KEY = '001E58-DIR%2D825-QA0001';

/** A SOAP-ENV envelope with CRLF line ends, as several embedded CPE stacks write them. */
const envelope = (id: string, body: string, ns = 'urn:dslforum-org:cwmp-1-2'): string =>
  [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="${ns}">`,
    `<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">${id}</cwmp:ID></SOAP-ENV:Header>`,
    `<SOAP-ENV:Body>${body}</SOAP-ENV:Body>`,
    '</SOAP-ENV:Envelope>',
  ].join('\r\n');

const INFORM = (maxEnvelopes: number): string =>
  envelope(
    'inf-1',
    `<cwmp:Inform><DeviceId><Manufacturer>D-Link</Manufacturer><OUI>001E58</OUI><ProductClass>DIR-825</ProductClass><SerialNumber>QA0001</SerialNumber></DeviceId>
<Event SOAP-ENC:arrayType="cwmp:EventStruct[2]"><EventStruct><EventCode>7 TRANSFER COMPLETE</EventCode><CommandKey></CommandKey></EventStruct><EventStruct><EventCode>M Download</EventCode><CommandKey>fw-9</CommandKey></EventStruct></Event>
<MaxEnvelopes>${maxEnvelopes}</MaxEnvelopes><CurrentTime>2026-11-25T10:00:00+01:00</CurrentTime><RetryCount>0</RetryCount>
<ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[1]"><ParameterValueStruct><Name>Device.ManagementServer.ConnectionRequestURL</Name><Value xsi:type="xsd:string">http://127.0.0.1:1/</Value></ParameterValueStruct></ParameterList></cwmp:Inform>`,
  );

const FAULT0 = '<FaultStruct><FaultCode>0</FaultCode><FaultString></FaultString></FaultStruct>';
const REQUESTS: Record<string, [string, string]> = {
  GetRPCMethods: ['grm-1', '<cwmp:GetRPCMethods></cwmp:GetRPCMethods>'],
  TransferComplete: [
    'tc-1',
    `<cwmp:TransferComplete><CommandKey>fw-9</CommandKey>${FAULT0}<StartTime>2026-11-25T09:59:00Z</StartTime><CompleteTime>2026-11-25T09:59:40Z</CompleteTime></cwmp:TransferComplete>`,
  ],
  AutonomousTransferComplete: [
    'atc-1',
    `<cwmp:AutonomousTransferComplete><AnnounceURL></AnnounceURL><TransferURL>http://files.example/cfg.bin</TransferURL><IsDownload>1</IsDownload><FileType>3 Vendor Configuration File</FileType><FileSize>2048</FileSize><TargetFileName></TargetFileName>${FAULT0}<StartTime>2026-11-25T09:00:00Z</StartTime><CompleteTime>2026-11-25T09:00:02Z</CompleteTime></cwmp:AutonomousTransferComplete>`,
  ],
  RequestDownload: [
    'rd-1',
    '<cwmp:RequestDownload><FileType>1 Firmware Upgrade Image</FileType><FileTypeArg SOAP-ENC:arrayType="cwmp:ArgStruct[1]"><ArgStruct><Name>Version</Name><Value>2.0</Value></ArgStruct></FileTypeArg></cwmp:RequestDownload>',
  ],
  Kicked: [
    'kick-1',
    '<cwmp:Kicked><Command>register</Command><Referer>http://192.168.0.1/</Referer><Arg>user=7</Arg><Next>http://192.168.0.1/thanks</Next></cwmp:Kicked>',
  ],
  DUStateChangeComplete: [
    'du-1',
    `<cwmp:DUStateChangeComplete><Results><UUID>1b4e28ba-2fa1-41d2-883f-0016d3cca427</UUID><DeploymentUnitRef>Device.SoftwareModules.DeploymentUnit.2</DeploymentUnitRef><Version>3.1</Version><CurrentState>Installed</CurrentState><Resolved>1</Resolved><ExecutionUnitRefList>Device.SoftwareModules.ExecutionUnit.2</ExecutionUnitRefList><StartTime>2026-11-25T09:10:00Z</StartTime><CompleteTime>2026-11-25T09:10:05Z</CompleteTime><Fault><FaultCode>0</FaultCode><FaultString></FaultString></Fault></Results><CommandKey>cdus-1</CommandKey></cwmp:DUStateChangeComplete>`,
  ],
  AutonomousDUStateChangeComplete: [
    'adu-1',
    `<cwmp:AutonomousDUStateChangeComplete><Results><UUID>1b4e28ba-2fa1-41d2-883f-0016d3cca427</UUID><DeploymentUnitRef>Device.SoftwareModules.DeploymentUnit.2</DeploymentUnitRef><Version>3.2</Version><CurrentState>Installed</CurrentState><Resolved>1</Resolved><ExecutionUnitRefList>Device.SoftwareModules.ExecutionUnit.2</ExecutionUnitRefList><StartTime>2026-11-25T09:20:00Z</StartTime><CompleteTime>2026-11-25T09:20:05Z</CompleteTime><Fault><FaultCode>0</FaultCode><FaultString></FaultString></Fault><OperationPerformed>Update</OperationPerformed></Results></cwmp:AutonomousDUStateChangeComplete>`,
  ],
};

const GPV_RESPONSE = (id: string): string =>
  envelope(
    id,
    '<cwmp:GetParameterValuesResponse><ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[1]"><ParameterValueStruct><Name>Device.DeviceInfo.UpTime</Name><Value xsi:type="xsd:unsignedInt">77</Value></ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>',
  );

async function harness() {
  const store = openSqliteStore(':memory:');
  const engine = new SessionEngine(
    store,
    { request: async () => ({ ok: false, reason: 'refused' }), cancel: () => undefined },
    { sessionTimeoutMs: 30_000, rpcDeadlineMs: 30_000, holdRequests: false, setConnectionRequestCredentials: false, maxSessions: 10, endpointIdScheme: 'os' },
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
  const events: string[] = [];
  engine.on('transferComplete', ({ message }) => events.push(message.method));
  engine.on('duStateChangeComplete', ({ message }) => events.push(message.method));
  return {
    engine,
    port,
    events,
    stop: async () => {
      await server.close();
      await engine.close();
      await store.close();
    },
  };
}

/** The reply to a CPE request: its response, with the request's cwmp:ID. */
function answered(body: string, method: string, id: string): CwmpMessage {
  const e = decodeSoap(body).envelope!;
  assert.equal(e.body.method, `${method}Response`, body);
  assert.equal(e.id, id);
  return e.body;
}

test('CPE requests in any order before the empty POST, after an Inform with MaxEnvelopes 5', async () => {
  const names = [
    'Kicked',
    'TransferComplete',
    'GetRPCMethods',
    'DUStateChangeComplete',
    'RequestDownload',
    'AutonomousTransferComplete',
    'AutonomousDUStateChangeComplete',
  ];
  const h = await harness();
  try {
    const conn = await RawConnection.open(h.port);
    const inf = await postSoap(conn, INFORM(5));
    assert.equal(inf.status, 200, inf.body.toString());
    const ir = decodeSoap(inf.body.toString()).envelope!;
    assert.deepEqual(ir.body, { method: 'InformResponse', maxEnvelopes: 1 }, 'the ACS answers MaxEnvelopes 1 (TR-069 A.3.3.1)');
    const cookie = { Cookie: sessionCookieOf(inf) };
    const queued = h.engine.enqueue(KEY, { method: 'Reboot', commandKey: 'rb-1' });
    for (const n of names) {
      const [id, body] = REQUESTS[n]!;
      const r = await postSoap(conn, envelope(id, body), cookie);
      assert.equal(r.status, 200, `${n}: ${r.body.toString()}`);
      const m = answered(r.body.toString(), n, id);
      if (m.method === 'KickedResponse') assert.equal(m.nextURL, 'http://192.168.0.1/thanks');
      if (m.method === 'GetRPCMethodsResponse') {
        for (const x of ['Inform', 'GetRPCMethods', 'TransferComplete', 'AutonomousTransferComplete', 'RequestDownload', 'DUStateChangeComplete', 'Kicked'])
          assert.ok(m.methodList.includes(x), x);
      }
    }
    assert.deepEqual(
      h.events,
      names.filter((n) => /TransferComplete|DUStateChangeComplete/.test(n)),
    );
    const rpc = await postSoap(conn, '', cookie);
    assert.match(rpc.body.toString(), /<cwmp:Reboot>/, 'the ACS turn after the empty POST');
    const end = await postSoap(conn, envelope(cwmpIdOf(rpc), '<cwmp:RebootResponse/>'), cookie);
    assert.equal(end.status, 204);
    assert.deepEqual(await queued, { kind: 'response', response: { method: 'RebootResponse' } });
    conn.destroy();
  } finally {
    await h.stop();
  }
});

test('with an ACS RPC in flight, CPE requests are answered and the RPC stays in flight until its response', async () => {
  const names = ['TransferComplete', 'GetRPCMethods', 'Kicked', 'RequestDownload', 'AutonomousDUStateChangeComplete'];
  const h = await harness();
  try {
    const conn = await RawConnection.open(h.port);
    const inf = await postSoap(conn, INFORM(0));
    assert.equal(decodeSoap(inf.body.toString()).envelope!.body.method, 'InformResponse', 'MaxEnvelopes 0 (CWMP 1.0 CPEs) accepted');
    const cookie = { Cookie: sessionCookieOf(inf) };
    let outcome: RpcOutcome | undefined;
    const call = h.engine.enqueue(KEY, { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] }).then((o) => (outcome = o));
    const rpc = await postSoap(conn, '', cookie);
    assert.match(rpc.body.toString(), /<cwmp:GetParameterValues>/);
    for (const n of names) {
      const [id, body] = REQUESTS[n]!;
      const r = await postSoap(conn, envelope(id, body), cookie);
      answered(r.body.toString(), n, id);
      assert.equal(outcome, undefined, `${n} was not taken for the GetParameterValuesResponse`);
    }
    const end = await postSoap(conn, GPV_RESPONSE(cwmpIdOf(rpc)), cookie);
    assert.equal(end.status, 204, end.body.toString());
    await call;
    assert.ok(outcome?.kind === 'response' && outcome.response.method === 'GetParameterValuesResponse');
    assert.equal(outcome.response.parameterList[0]!.value, '77');
    conn.destroy();
  } finally {
    await h.stop();
  }
});
