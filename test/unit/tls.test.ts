/**
 * TLS on every interface that uses it in the field, with a PKI generated at run time
 * (test/helpers/certs.ts): ACS over HTTPS (and with required client certificates), the WSS
 * server and client of the WebSocket MTP, MQTT over TLS against a TLS-only mosquitto, STOMP over
 * TLS against RabbitMQ behind a TLS-terminating relay (test/helpers/brokers-tls.ts). Each case
 * checks that the good certificate works and that one from the unrelated CA is refused.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import https from 'node:https';
import path from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import mqtt from 'mqtt';
import { AcsServer } from '../../src/cwmp/acs-server.js';
import { SessionEngine } from '../../src/cwmp/session.js';
import { DecodePool } from '../../src/cwmp/decode-pool.js';
import { encodeSoap, decodeSoap } from '../../src/cwmp/soap.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { silentLogger } from '../../src/app/log.js';
import type { Inform } from '../../src/cwmp/types.js';
import { WebSocketMtp } from '../../src/usp/mtp/websocket.js';
import { MqttMtp } from '../../src/usp/mtp/mqtt.js';
import { StompMtp } from '../../src/usp/mtp/stomp.js';
import type { InboundRecord, MtpEvents } from '../../src/usp/mtp/types.js';
import { loadClientTls, loadServerTls, readPem, TlsConfigError, withSystemRoots } from '../../src/util/tls.js';
import { makeTestPki, OPENSSL_MISSING, type TestPki } from '../helpers/certs.js';
import { startRabbitStomp, type RabbitStompHandle } from '../helpers/brokers.js';
import { startMosquittoTls, startTlsRelay, type MosquittoTlsHandle } from '../helpers/brokers-tls.js';

let pki: TestPki | null = null;
let mosq: MosquittoTlsHandle | null = null;
let rabbit: RabbitStompHandle | null = null;
let rabbitFailed = '';
let mosqFailed = '';
let rabbitStarting: Promise<void> | null = null;
let seq = 0;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
const CERT_ERROR = /certificate|self[- ]signed|unable to (get|verify)|CERT_|alert|handshake|socket hang up|ECONNRESET|EPROTO/i;

before(async () => {
  pki = makeTestPki();
  if (!pki) return;
  // RabbitMQ boots in 5-20 s: start it now, await it in the STOMP test only.
  rabbitStarting = startRabbitStomp()
    .then((r) => {
      rabbit = r;
    })
    .catch((e: Error) => {
      rabbitFailed = e.message;
    });
  try {
    mosq = await startMosquittoTls({ caFile: pki.ca.certFile, certFile: pki.ca.server.certFile, keyFile: pki.ca.server.keyFile });
  } catch (e) {
    mosqFailed = (e as Error).message; // fails the MQTT test only
  }
});

after(async () => {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      /* keep cleaning */
    }
  }
  await rabbitStarting;
  await rabbit?.stop();
  await mosq?.stop();
  pki?.cleanup();
});

function needPki(t: TestContext): TestPki | null {
  if (!pki) t.skip(OPENSSL_MISSING);
  return pki;
}

function next<K extends keyof MtpEvents>(m: { on: unknown }, ev: K, timeoutMs = 10_000): Promise<MtpEvents[K]> {
  return once(m as never, ev, { signal: AbortSignal.timeout(timeoutMs) }) as unknown as Promise<MtpEvents[K]>;
}

/** Resolves with the first warning whose message matches `re`; no channelOpen may come first. */
function refused(m: WebSocketMtp | MqttMtp | StompMtp, re: RegExp, timeoutMs = 10_000): Promise<{ message: string; detail?: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${re}" warning within ${timeoutMs} ms`)), timeoutMs);
    m.on('channelOpen', () => {
      clearTimeout(t);
      reject(new Error('connected although the certificate is from the wrong CA'));
    });
    m.on('warning', (w) => {
      if (!re.test(w.message)) return;
      clearTimeout(t);
      resolve(w);
    });
  });
}

// --- util/tls ----------------------------------------------------------------------------------

test('util/tls: errors name the config key and the file; cert and key go together', (t) => {
  const p = needPki(t);
  if (!p) return;
  const missing = path.join(p.dir, 'nope.pem');
  assert.throws(
    () => loadServerTls('acs.tls', { cert: missing, key: p.ca.server.keyFile }),
    (e: Error) => e instanceof TlsConfigError && e.message.includes('acs.tls.cert') && e.message.includes(missing),
  );
  assert.throws(() => readPem('usp.mqtt.tls.ca', path.join(p.dir, 'good-server.ext')), /usp\.mqtt\.tls\.ca: .*not a PEM file/);
  assert.throws(() => loadServerTls('usp.websocket.tls', { cert: p.ca.server.certFile, key: '' }), /usp\.websocket\.tls\.key is empty/);
  assert.throws(() => loadClientTls('usp.stomp.tls', { cert: p.ca.client.certFile }), /usp\.stomp\.tls\.cert and usp\.stomp\.tls\.key go together/);
  assert.equal(loadServerTls('acs.tls', { cert: '', key: '', ca: '' }), null);
  const c = loadClientTls('usp.mqtt.tls', { ca: p.ca.certFile, insecure: false });
  assert.ok(c.ca && c.ca.length > 1, 'our CA comes with the system roots');
  assert.equal(c.ca!.at(-1), p.ca.cert.toString());
});

// --- ACS over HTTPS ----------------------------------------------------------------------------

const informXml = (serial: string): string => {
  const inform: Inform = {
    method: 'Inform',
    deviceId: { manufacturer: 'Acme', oui: 'A1B2C3', productClass: 'Gw', serialNumber: serial },
    event: [{ eventCode: '2 PERIODIC', commandKey: '' }],
    maxEnvelopes: 1,
    currentTime: '2026-11-25T10:00:00Z',
    retryCount: 0,
    parameterList: [],
  };
  return encodeSoap({ cwmpVersion: '1-1', id: 'i1', body: inform });
};

async function acs(tls: { cert: string; key: string; ca: string; requestClientCert: boolean }): Promise<{ port: number; server: AcsServer }> {
  const store = openSqliteStore(':memory:');
  const engine = new SessionEngine(
    store,
    { request: async () => ({ ok: true }), cancel: () => undefined },
    { sessionTimeoutMs: 2000, rpcDeadlineMs: 2000, holdRequests: false, setConnectionRequestCredentials: false, maxSessions: 100, endpointIdScheme: 'os' },
    silentLogger(),
  );
  const server = new AcsServer(
    engine,
    new DecodePool(0, 1 << 30),
    store,
    { host: '127.0.0.1', port: 0, maxBodyBytes: 64 * 1024, auth: { mode: 'none', realm: 'r', username: '', password: '' }, tls },
    silentLogger(),
  );
  const port = await server.listen();
  cleanups.push(async () => {
    await server.close();
    await engine.close();
    await store.close();
  });
  return { port, server };
}

function postInform(port: number, serial: string, tlsOpts: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(informXml(serial));
    const req = https.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', agent: false, headers: { 'Content-Type': 'text/xml', 'Content-Length': body.length }, ...tlsOpts },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('ACS over HTTPS: a CPE trusting our CA gets InformResponse; one trusting only another CA is refused', async (t) => {
  const p = needPki(t);
  if (!p) return;
  const { port, server } = await acs({ cert: p.ca.server.certFile, key: p.ca.server.keyFile, ca: '', requestClientCert: false });
  assert.equal(server.scheme, 'https');
  const r = await postInform(port, 'TLS1', { ca: p.ca.cert });
  assert.equal(r.status, 200);
  assert.equal(decodeSoap(r.body).envelope!.body.method, 'InformResponse');
  await assert.rejects(postInform(port, 'TLS2', { ca: p.otherCa.cert }), CERT_ERROR);
  // The hostname is checked too: the certificate names 127.0.0.1 and localhost only.
  await assert.rejects(postInform(port, 'TLS3', { ca: p.ca.cert, servername: 'acs.example.com' }), /altnames|does not match|Hostname/i);
});

test('ACS with requestClientCert: no client certificate or one from another CA is refused; ours works', async (t) => {
  const p = needPki(t);
  if (!p) return;
  assert.throws(
    () =>
      new AcsServer(
        {} as never,
        {} as never,
        {} as never,
        {
          host: '127.0.0.1',
          port: 0,
          maxBodyBytes: 1,
          auth: { mode: 'none', realm: '', username: '', password: '' },
          tls: { cert: p.ca.server.certFile, key: p.ca.server.keyFile, ca: '', requestClientCert: true },
        },
        silentLogger(),
      ),
    /acs\.tls\.requestClientCert needs acs\.tls\.ca/,
  );
  const { port } = await acs({ cert: p.ca.server.certFile, key: p.ca.server.keyFile, ca: p.ca.certFile, requestClientCert: true });
  await assert.rejects(postInform(port, 'M1', { ca: p.ca.cert }), CERT_ERROR);
  await assert.rejects(postInform(port, 'M2', { ca: p.ca.cert, cert: p.otherCa.client.cert, key: p.otherCa.client.key }), CERT_ERROR);
  const r = await postInform(port, 'M3', { ca: p.ca.cert, cert: p.ca.client.cert, key: p.ca.client.key });
  assert.equal(r.status, 200);
  assert.equal(decodeSoap(r.body).envelope!.body.method, 'InformResponse');
});

// --- WebSocket MTP -----------------------------------------------------------------------------

const AGENT = 'os::A1B2C3-TLS1';

async function wssMtp(tls: { cert: Buffer; key: Buffer; ca?: Buffer }): Promise<{ mtp: WebSocketMtp; url: string }> {
  const mtp = new WebSocketMtp({
    server: { host: '127.0.0.1', port: 0, path: '/usp', maxRecordBytes: 64 * 1024, pingIntervalMs: 30_000, tls },
    isAgent: (eid) => eid === AGENT,
  });
  mtp.on('warning', () => {});
  await mtp.start();
  cleanups.push(() => mtp.stop());
  return { mtp, url: `wss://127.0.0.1:${mtp.serverAddress()!.port}/usp/${encodeURIComponent(AGENT)}` };
}

function dialWs(url: string, opts: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'v1.usp', { ...opts, headers: { 'Sec-WebSocket-Extensions': `bbf-usp-protocol; eid="proto::ctl"` } });
    cleanups.push(() => ws.terminate());
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

test('4.1, 7.10 WSS server: a controller trusting our CA connects (v1.usp) and sends a Record; the wrong CA is refused', async (t) => {
  const p = needPki(t);
  if (!p) return;
  const { mtp, url } = await wssMtp({ cert: p.ca.server.cert, key: p.ca.server.key });
  assert.match(mtp.status().detail, /, wss\)/);
  const opened = next(mtp, 'channelOpen');
  const ws = await dialWs(url, { ca: p.ca.cert });
  assert.equal(ws.protocol, 'v1.usp');
  const [ev] = await opened;
  assert.equal(ev.agentEid, AGENT);
  const got = next(mtp, 'record');
  ws.send(Buffer.from([1, 2, 3]), { binary: true });
  const [rec] = (await got) as [InboundRecord];
  assert.deepEqual([...rec.bytes], [1, 2, 3]);
  await assert.rejects(dialWs(url, { ca: p.otherCa.cert }), CERT_ERROR);
});

test('4.1, 7.10 WSS server with a client CA: controllers need a certificate signed by it', async (t) => {
  const p = needPki(t);
  if (!p) return;
  const { url } = await wssMtp({ cert: p.ca.server.cert, key: p.ca.server.key, ca: p.ca.cert });
  await assert.rejects(dialWs(url, { ca: p.ca.cert }), CERT_ERROR);
  await assert.rejects(dialWs(url, { ca: p.ca.cert, cert: p.otherCa.client.cert, key: p.otherCa.client.key }), CERT_ERROR);
  const ws = await dialWs(url, { ca: p.ca.cert, cert: p.ca.client.cert, key: p.ca.client.key });
  assert.equal(ws.protocol, 'v1.usp');
});

async function wssController(server: { cert: Buffer; key: Buffer }): Promise<{ url: string; connections: () => number }> {
  const srv = https.createServer({ cert: server.cert, key: server.key });
  srv.on('tlsClientError', () => {});
  const wss = new WebSocketServer({ server: srv, handleProtocols: (ps) => (ps.has('v1.usp') ? 'v1.usp' : false) });
  let n = 0;
  wss.on('connection', () => n++);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  );
  return { url: `wss://127.0.0.1:${(srv.address() as { port: number }).port}/controller`, connections: () => n };
}

function wsClientMtp(url: string, ca: Buffer): WebSocketMtp {
  const mtp = new WebSocketMtp({
    client: {
      controllers: [{ endpointId: 'proto::ctl', url }],
      pingIntervalMs: 30_000,
      backoff: { baseMs: 50, maxMs: 200 },
      maxRecordBytes: 64 * 1024,
      tls: { ca: withSystemRoots(ca) },
    },
    isAgent: (eid) => eid === AGENT,
  });
  cleanups.push(() => mtp.stop());
  mtp.addAgent(AGENT);
  return mtp;
}

test('4.1, 7.10 WSS client: the agent dials a wss:// controller signed by clientCa; one signed by another CA is refused and retried', async (t) => {
  const p = needPki(t);
  if (!p) return;
  const good = await wssController(p.ca.server);
  const m = wsClientMtp(good.url, p.ca.cert);
  const opened = next(m, 'channelOpen');
  await m.start();
  const [ev] = await opened;
  assert.equal(ev.peerEid, 'proto::ctl');
  assert.equal(good.connections(), 1);

  const bad = await wssController(p.otherCa.server);
  const m2 = wsClientMtp(bad.url, p.ca.cert);
  let failures = 0;
  m2.on('warning', (w) => {
    if (/connection attempt failed/.test(w.message)) failures++;
  });
  const w = refused(m2, /connection attempt failed/);
  await m2.start();
  const first = await w;
  assert.match(String(first.detail?.error), CERT_ERROR);
  // It keeps retrying with backoff and never connects.
  const deadline = Date.now() + 5000;
  while (failures < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(failures >= 3, `retried (${failures} failures)`);
  assert.equal(bad.connections(), 0);
  assert.equal(m2.status().connected, false);
});

// --- MQTT over TLS -----------------------------------------------------------------------------

function mqttMtp(url: string, ca: Buffer, agentTopic: string): MqttMtp {
  const m = new MqttMtp({
    url,
    protocolVersion: 5,
    keepaliveS: 30,
    agentTopic,
    connectEndpointId: 'proto::cwmp-usp-proxy-tls',
    maxRecordBytes: 64 * 1024,
    backoff: { baseMs: 100, maxMs: 500 },
    tls: { ca: withSystemRoots(ca) },
  });
  cleanups.push(() => m.stop());
  return m;
}

test('4.1 MQTT over TLS (mosquitto): connect and a Record round trip; a broker certificate from another CA is refused', async (t) => {
  const p = needPki(t);
  if (!p) return;
  if (mosqFailed) assert.fail(mosqFailed);
  if (!mosq) return t.skip('mosquitto not installed (apt-get install mosquitto)');
  const n = ++seq;
  const agentTopic = `/tls${n}/usp/endpoint`;
  const ctlTopic = `/tls${n}/usp/controller`;
  const ctl = await mqtt.connectAsync(mosq.url, { protocolVersion: 5, clientId: `ctl-tls-${process.pid}-${n}`, reconnectPeriod: 0, ca: p.ca.cert });
  cleanups.push(() => ctl.endAsync(true));
  await ctl.subscribeAsync(ctlTopic, { qos: 1 });
  const m = mqttMtp(mosq.url, p.ca.cert, agentTopic);
  const opened = next(m, 'channelOpen');
  await m.start();
  await opened;

  const got = next(m, 'record');
  await ctl.publishAsync(agentTopic, Buffer.from([0x0a, 0x00, 0xff]), { qos: 1, properties: { responseTopic: ctlTopic } });
  const [rec] = (await got) as [InboundRecord];
  assert.deepEqual([...rec.bytes], [0x0a, 0x00, 0xff]);
  const reply = new Promise<Buffer>((resolve) => ctl.once('message', (_t, payload) => resolve(payload)));
  await m.send('os::A1B2C3-TLS1', rec.replyTo!, new Uint8Array([9, 8, 7]));
  assert.deepEqual([...(await reply)], [9, 8, 7]);

  const wrong = mqttMtp(mosq.url, p.otherCa.cert, `/tls${n}/wrong`);
  const w = refused(wrong, /MQTT connection failed/);
  await wrong.start();
  const warning = await w;
  assert.match(String(warning.detail?.error), CERT_ERROR);
  assert.equal(wrong.status().connected, false);
});

// --- STOMP over TLS ----------------------------------------------------------------------------

function stompMtp(port: number, destination: string, tls: { ca: Buffer } | null, endpointId = 'proto::cwmp-usp-proxy:tls'): StompMtp {
  const m = new StompMtp({
    host: '127.0.0.1',
    port,
    vhost: '/',
    login: 'guest',
    passcode: 'guest',
    endpointId,
    destination,
    heartbeatMs: { outgoing: 0, incoming: 0 },
    maxRecordBytes: 64 * 1024,
    backoff: { baseMs: 100, maxMs: 500 },
    connectTimeoutMs: 5000,
    tls: tls ? { ca: withSystemRoots(tls.ca) } : null,
  });
  cleanups.push(() => m.stop());
  return m;
}

test('4.1, 6.1-6.8, 6.10-6.12 STOMP over TLS (RabbitMQ behind a TLS relay): connect and a Record round trip; the wrong CA is refused', {
  timeout: 70_000,
}, async (t) => {
  const p = needPki(t);
  if (!p) return;
  await rabbitStarting;
  if (!rabbit)
    return t.skip(rabbitFailed ? `RabbitMQ did not start: ${rabbitFailed.split('\n')[0]}` : 'rabbitmq-server not installed (apt-get install rabbitmq-server)');
  const relay = await startTlsRelay({ host: rabbit.host, port: rabbit.port }, p.ca.server);
  cleanups.push(() => relay.close());
  const n = ++seq;
  const agentDest = `/queue/usp.tls.agent.${n}`;
  const ctlDest = `/queue/usp.tls.controller.${n}`;
  // The controller side is a second StompMtp on RabbitMQ's plain port: only the agent is under test.
  const ctl = stompMtp(rabbit.port, ctlDest, null, 'proto::ctl');
  const ctlOpen = next(ctl, 'channelOpen');
  await ctl.start();
  await ctlOpen;
  const m = stompMtp(relay.port, agentDest, { ca: p.ca.cert });
  const opened = next(m, 'channelOpen');
  await m.start();
  await opened;

  const got = next(m, 'record');
  await ctl.send('proto::ctl', { mtp: 'stomp', address: agentDest }, new Uint8Array([0x0a, 0x00, 0x5c]));
  const [rec] = (await got) as [InboundRecord];
  assert.deepEqual([...rec.bytes], [0x0a, 0x00, 0x5c]);
  assert.deepEqual(rec.replyTo, { mtp: 'stomp', address: ctlDest });
  const back = next(ctl, 'record');
  await m.send('os::A1B2C3-TLS1', rec.replyTo!, new Uint8Array([4, 5, 6]));
  const [rec2] = (await back) as [InboundRecord];
  assert.deepEqual([...rec2.bytes], [4, 5, 6]);

  const wrong = stompMtp(relay.port, `/queue/usp.tls.wrong.${n}`, { ca: p.otherCa.cert });
  const w = refused(wrong, /STOMP connection failed/);
  await wrong.start();
  const warning = await w;
  assert.match(String(warning.detail?.error), CERT_ERROR);
  assert.equal(wrong.status().connected, false);
});
