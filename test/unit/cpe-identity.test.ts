/**
 * Device identity beyond the password (docs/security.md "CPE authentication"): a TLS client
 * certificate bound to the device at first use (acs.tls.clientCert request), a changed certificate
 * or ConnectionRequestURL host refused or logged per acs.identityPolicy, and the start-up warning
 * for an ACS reachable beyond loopback without authentication.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { AcsServer } from '../../src/cwmp/acs-server.js';
import { SessionEngine } from '../../src/cwmp/session.js';
import { DecodePool } from '../../src/cwmp/decode-pool.js';
import { encodeSoap } from '../../src/cwmp/soap.js';
import { deviceKeyOf } from '../../src/cwmp/device-id.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { silentLogger, type Logger } from '../../src/app/log.js';
import { CwmpUspProxy, isLoopbackHost } from '../../src/app/proxy.js';
import { testConfig } from '../helpers/test-proxy.js';
import { issueClientCert, makeTestPki, OPENSSL_MISSING, type CertPair, type TestPki } from '../helpers/certs.js';

let pki: TestPki | null = null;
let otherDevice: CertPair | null = null;
const cleanups: Array<() => Promise<void>> = [];

before(() => {
  pki = makeTestPki();
  if (pki) otherDevice = issueClientCert(pki, pki.ca, 'other-device');
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  pki?.cleanup();
});

function needPki(t: TestContext): TestPki | null {
  if (!pki) t.skip(OPENSSL_MISSING);
  return pki;
}

const ID = { manufacturer: 'Acme', oui: 'A1B2C3', productClass: 'Gw', serialNumber: 'CERT-1' };
const informXml = (serial: string, crHost = '127.0.0.1'): string =>
  encodeSoap({
    cwmpVersion: '1-1',
    id: 'i1',
    body: {
      method: 'Inform',
      deviceId: { ...ID, serialNumber: serial },
      event: [{ eventCode: '2 PERIODIC', commandKey: '' }],
      maxEnvelopes: 1,
      currentTime: '2026-11-25T10:00:00Z',
      retryCount: 0,
      parameterList: [{ name: 'Device.ManagementServer.ConnectionRequestURL', value: `http://${crHost}:7548/cr`, type: 'xsd:string' }],
    },
  });

async function acs(p: TestPki, identityPolicy: 'refuse' | 'log'): Promise<{ port: number; store: SqliteStore }> {
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
    {
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: 64 * 1024,
      auth: { mode: 'none', realm: 'r', username: '', password: '' },
      tls: { cert: p.ca.server.certFile, key: p.ca.server.keyFile, ca: p.ca.certFile, requestClientCert: false, clientCert: 'request' },
      identityPolicy,
    },
    silentLogger(),
  );
  const port = await server.listen();
  cleanups.push(async () => {
    await server.close();
    await engine.close();
    await store.close();
  });
  return { port, store };
}

function postInform(port: number, body: string, tlsOpts: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.from(body);
    const req = https.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', agent: false, headers: { 'Content-Type': 'text/xml', 'Content-Length': buf.length }, ...tlsOpts },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(buf);
  });
}

test('clientCert request + identityPolicy refuse: the certificate is bound at first use; another certificate, none, or a new ConnectionRequestURL host is refused', async (t) => {
  const p = needPki(t);
  if (!p) return;
  const { port, store } = await acs(p, 'refuse');
  const own = { ca: p.ca.cert, cert: p.ca.client.cert, key: p.ca.client.key };
  assert.equal((await postInform(port, informXml('CERT-1'), own)).status, 200);
  const bound = (await store.getDevice(deviceKeyOf(ID)))!.cpeCertIdentity;
  assert.match(String(bound), /^CN=.*test-client$/);
  assert.equal((await postInform(port, informXml('CERT-1'), own)).status, 200, 'the same certificate again');

  const other = await postInform(port, informXml('CERT-1'), { ca: p.ca.cert, cert: otherDevice!.cert, key: otherDevice!.key });
  assert.equal(other.status, 403);
  assert.match(other.body, /certificate identity changed/);
  assert.equal((await postInform(port, informXml('CERT-1'), { ca: p.ca.cert })).status, 403, 'no certificate at all');
  const moved = await postInform(port, informXml('CERT-1', '192.0.2.44'), own);
  assert.equal(moved.status, 403);
  assert.match(moved.body, /ConnectionRequestURL host changed/);
  const after = (await store.getDevice(deviceKeyOf(ID)))!;
  assert.equal(after.cpeCertIdentity, bound);
  assert.equal(after.connectionRequestUrl, 'http://127.0.0.1:7548/cr', 'the refused Inform changed nothing');
  // A certificate from another CA is no identity: a new device without one still gets in.
  assert.equal((await postInform(port, informXml('CERT-2'), { ca: p.ca.cert, cert: p.otherCa.client.cert, key: p.otherCa.client.key })).status, 200);
  assert.equal((await store.getDevice(deviceKeyOf({ ...ID, serialNumber: 'CERT-2' })))!.cpeCertIdentity ?? null, null);
});

test('identityPolicy log: the same changes are accepted (and logged as security events)', async (t) => {
  const p = needPki(t);
  if (!p) return;
  const { port, store } = await acs(p, 'log');
  const own = { ca: p.ca.cert, cert: p.ca.client.cert, key: p.ca.client.key };
  assert.equal((await postInform(port, informXml('CERT-L'), own)).status, 200);
  assert.equal((await postInform(port, informXml('CERT-L', '192.0.2.45'), { ca: p.ca.cert, cert: otherDevice!.cert, key: otherDevice!.key })).status, 200);
  assert.equal((await store.getDevice(deviceKeyOf({ ...ID, serialNumber: 'CERT-L' })))!.connectionRequestUrl, 'http://192.0.2.45:7548/cr');
});

test('start-up warns when the ACS listens beyond loopback with auth none, not on loopback', async () => {
  assert.equal(isLoopbackHost('127.0.0.1'), true);
  assert.equal(isLoopbackHost('::1'), true);
  assert.equal(isLoopbackHost('localhost'), true);
  assert.equal(isLoopbackHost('0.0.0.0'), false);
  assert.equal(isLoopbackHost('::'), false);
  const warnings = async (host: string, mode: string): Promise<string[]> => {
    const seen: string[] = [];
    const log = silentLogger();
    const capture = (l: Logger): Logger =>
      new Proxy(l, {
        get(target, prop, recv) {
          if (prop === 'warn') return (_o: unknown, msg?: string) => seen.push(String(msg ?? _o));
          if (prop === 'child') return () => capture(l);
          return Reflect.get(target, prop, recv);
        },
      });
    const proxy = new CwmpUspProxy(
      testConfig({ 'acs.host': host, 'acs.auth.mode': mode, 'acs.auth.username': 'u', 'acs.auth.password': 'p', 'usp.websocket.enabled': false }),
      capture(log),
    );
    await proxy.start();
    await proxy.stop();
    return seen.filter((m) => /beyond loopback/.test(m));
  };
  assert.equal((await warnings('0.0.0.0', 'none')).length, 1);
  assert.equal((await warnings('127.0.0.1', 'none')).length, 0);
  assert.equal((await warnings('0.0.0.0', 'digest')).length, 0);
});
