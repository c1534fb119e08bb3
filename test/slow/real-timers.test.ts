/**
 * Slow suite: the protocol timers at their real default values, once each (the rest of the
 * suite runs them short). Session idle timeout 30 s; connection request attempt timeout 5 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/app/config.js';
import { SessionEngine, RpcError } from '../../src/cwmp/session.js';
import { sendConnectionRequest } from '../../src/cwmp/connreq.js';
import { decodeSoap } from '../../src/cwmp/soap.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { silentLogger } from '../../src/app/log.js';

const defaults = loadConfig({ env: {} });

test('default session timeout (30 s): the in-flight RPC fails, queued RPCs stay', { timeout: 60_000 }, async () => {
  assert.equal(defaults.acs.sessionTimeoutMs, 30_000);
  const store = openSqliteStore(':memory:');
  const engine = new SessionEngine(
    store,
    { request: async () => ({ ok: true }), cancel: () => undefined },
    {
      sessionTimeoutMs: defaults.acs.sessionTimeoutMs,
      rpcDeadlineMs: 120_000,
      holdRequests: false,
      setConnectionRequestCredentials: false,
      maxSessions: 10,
      endpointIdScheme: 'os',
    },
    silentLogger(),
  );
  const conn = {};
  const ir = await engine.handle({
    envelope: {
      cwmpVersion: '1-0',
      id: '1',
      body: {
        method: 'Inform',
        deviceId: { manufacturer: 'M', oui: '000001', productClass: 'P', serialNumber: 'SLOW1' },
        event: [{ eventCode: '2 PERIODIC', commandKey: '' }],
        maxEnvelopes: 1,
        currentTime: '2026-11-25T00:00:00Z',
        retryCount: 0,
        parameterList: [],
      },
    },
    sessionId: null,
    connection: conn,
  });
  const inflight = engine.enqueue('000001-P-SLOW1', { method: 'GetRPCMethods' });
  const queued = engine.enqueue('000001-P-SLOW1', { method: 'FactoryReset' });
  queued.catch(() => undefined);
  await new Promise((r) => setTimeout(r, 10));
  const rpc = await engine.handle({ envelope: null, sessionId: ir.cookie!, connection: conn });
  assert.equal(decodeSoap(rpc.body).envelope!.body.method, 'GetRPCMethods');
  const t0 = Date.now();
  await assert.rejects(inflight, (e: unknown) => e instanceof RpcError && e.reason === 'session-timeout');
  const waited = Date.now() - t0;
  assert.ok(waited >= 29_000, `timed out after ${waited} ms`);
  assert.equal(engine.queuedCount('000001-P-SLOW1'), 1);
  await engine.close();
  await store.close();
});

test('default connection request timeout (5 s) against a CPE that never answers', { timeout: 30_000 }, async () => {
  assert.equal(defaults.acs.connectionRequest.timeoutMs, 5000);
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer(() => undefined); // accepts, never answers
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const t0 = Date.now();
  const r = await sendConnectionRequest(`http://127.0.0.1:${port}/cr`, null, { timeoutMs: defaults.acs.connectionRequest.timeoutMs });
  const waited = Date.now() - t0;
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.reason === 'timeout');
  assert.ok(waited >= 4900 && waited < 15_000, `gave up after ${waited} ms`);
  for (const s of sockets) s.destroy();
  await new Promise((r2) => server.close(r2));
});
