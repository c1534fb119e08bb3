/**
 * SSRF through ConnectionRequestURL (issue 14 item 3), over real sockets: a simulated CPE sets its
 * ConnectionRequestURL to a target the proxy must not call (an address outside
 * acs.connectionRequest.allow, a port outside acs.connectionRequest.ports, the proxy's own ACS port),
 * an RPC is queued for it, and a listening socket at the target asserts that no connection arrives.
 * A CPE that offers only Basic does not get the connection-request credentials unless allowBasic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../src/app/log.js';
import { deviceKeyOf } from '../../src/cwmp/device-id.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { STRICT_SIM } from '../helpers/sim.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A listening socket that records every connection and request it gets. */
async function target(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_q, s) => s.writeHead(204).end()) {
  const seen = { connections: 0, authorizations: [] as (string | undefined)[] };
  const server = http.createServer((req, res) => {
    seen.authorizations.push(req.headers.authorization);
    answer(req, res);
  });
  server.on('connection', () => seen.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    seen,
    port,
    url: `http://127.0.0.1:${port}/cr`,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

/**
 * A proxy with one registered simulated device whose ConnectionRequestURL is then `url`; `wake()`
 * queues a GetParameterValues for it (the proxy sends a connection request) and resolves with the
 * log line of the failed connection request.
 */
async function withDevice(
  overrides: Record<string, unknown>,
  fn: (p: TestProxy, setUrl: (url: string) => Promise<void>, wake: (until?: () => boolean) => Promise<string>) => Promise<void>,
): Promise<void> {
  let logs = '';
  const p = await startTestProxy(
    { 'acs.connectionRequest.retries': 0, 'acs.connectionRequest.timeoutMs': 1000, ...overrides },
    { logger: createLogger('info', { write: (s: string) => void (logs += s) } as never) },
  );
  const fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: p.acsUrl, count: 1, model: 'tr181', serialPrefix: 'SSRF', periodicIntervalS: null });
  try {
    await fleet.start();
    const d = fleet.devices[0]!;
    const setUrl = async (url: string): Promise<void> => {
      d.setConnectionRequestUrl(url);
      const s = await d.inform(['4 VALUE CHANGE']);
      assert.ok(s.ok, s.error);
      d.offline = true;
    };
    const wake = async (done?: () => boolean): Promise<string> => {
      const mark = logs.length;
      const rpc = p.proxy.engine.enqueue(
        deviceKeyOf(d.deviceId),
        { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime'] },
        { deadlineMs: 60_000 },
      );
      rpc.catch(() => undefined);
      await until(done ?? (() => logs.slice(mark).includes('connection request failed')), 10_000, 'the connection request outcome');
      return (
        logs
          .slice(mark)
          .split('\n')
          .find((l) => l.includes('connection request failed')) ?? ''
      );
    };
    await fn(p, setUrl, wake);
  } finally {
    await fleet.stop();
    await p.stop();
  }
}

test('a ConnectionRequestURL outside acs.connectionRequest.allow receives nothing', async () => {
  const t = await target();
  try {
    await withDevice({ 'acs.connectionRequest.allow': ['10.0.0.0/8', '192.168.0.0/16'] }, async (_p, setUrl, wake) => {
      await setUrl(t.url);
      const line = await wake();
      assert.match(line, /"reason":"forbidden"/);
      assert.match(line, /127\.0\.0\.1 is not in acs\.connectionRequest\.allow/);
      assert.equal(t.seen.connections, 0);
    });
  } finally {
    await t.close();
  }
});

test('a ConnectionRequestURL with a port outside acs.connectionRequest.ports receives nothing', async () => {
  const t = await target();
  const other = await target();
  try {
    await withDevice({ 'acs.connectionRequest.ports': [String(other.port)] }, async (_p, setUrl, wake) => {
      await setUrl(t.url);
      const line = await wake();
      assert.match(line, new RegExp(`port ${t.port} is not in acs.connectionRequest.ports`));
      assert.equal(t.seen.connections, 0);
      // The allowed port is still served (the guard refuses the target, not the device).
      const before = other.seen.connections;
      await setUrl(other.url);
      await wake(() => other.seen.connections > before); // the allowed port gets the connection request
    });
  } finally {
    await t.close();
    await other.close();
  }
});

test("a ConnectionRequestURL pointing at the proxy's own ACS port receives nothing", async () => {
  await withDevice({}, async (p, setUrl, wake) => {
    let connections = 0;
    await setUrl(`http://127.0.0.1:${p.proxy.acsPort}/`);
    p.proxy.acs.server.on('connection', () => connections++);
    const line = await wake();
    assert.match(line, /own listening port/);
    assert.equal(connections, 0);
  });
});

test('a Basic-only challenge does not get the connection-request credentials unless allowBasic', async () => {
  const basicOnly = (_q: http.IncomingMessage, res: http.ServerResponse): void => void res.writeHead(401, { 'www-authenticate': 'Basic realm="cpe"' }).end();
  for (const allowBasic of [false, true]) {
    const t = await target(basicOnly);
    try {
      await withDevice({ 'acs.connectionRequest.allowBasic': allowBasic }, async (p, setUrl, wake) => {
        await setUrl(t.url);
        const line = await wake();
        assert.match(line, /"reason":"auth-failed"/);
        const device = (await p.proxy.store.listDevices())[0]!;
        assert.ok(device.connReqPassword, 'the proxy set connection-request credentials on BOOTSTRAP');
        const basic = `Basic ${Buffer.from(`${device.connReqUsername}:${device.connReqPassword}`).toString('base64')}`;
        if (allowBasic) assert.deepEqual(t.seen.authorizations, [undefined, basic]);
        else assert.deepEqual(t.seen.authorizations, [undefined], 'one unauthenticated request, no credentials');
        assert.ok(!line.includes(device.connReqPassword!), 'the log line has no secret');
      });
    } finally {
      await t.close();
    }
  }
});
