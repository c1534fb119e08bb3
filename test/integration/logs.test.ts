/**
 * Logs people can read: one info line per USP request (controller, agent, message type, paths,
 * outcome, ms), one debug line per CWMP RPC (device, method, names count, fault, ms), a controller's
 * normal close at info, never a secret in any of them; and pretty lines from `start --log-pretty`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { runUspCli } from '../../src/tools/controller/cli.js';
import { createLogger } from '../../src/app/log.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { STRICT_SIM } from '../helpers/sim.js';
import { ROOT } from '../helpers/paths.js';

const CTL = 'proto::log-ctl';
const SECRET = 'zz-Top-Secret-Passphrase-42';
// biome-ignore lint/suspicious/noExplicitAny: parsed pino JSON lines
const lines: any[] = [];
let tp: TestProxy;
let fleet: Fleet;
let agent = '';
let deviceKey = '';

before(async () => {
  const log = createLogger('debug', { write: (s: string) => void lines.push(JSON.parse(s)) });
  tp = await startTestProxy({ controllers: [{ endpointId: CTL, role: 'full' }], 'log.level': 'debug' }, { logger: log });
  fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp.acsUrl, count: 1, model: 'tr181', serialPrefix: 'LOG', periodicIntervalS: null });
  await fleet.start();
  const d = (await tp.proxy.store.listDevices())[0]!;
  agent = d.endpointId;
  deviceKey = d.deviceKey;
});

after(async () => {
  await fleet?.stop();
  await tp?.stop();
});

async function usp(args: string[]): Promise<number> {
  return runUspCli([...args, '--url', tp.uspUrl, '--to', agent, '--from', CTL, '--timeout', '20000'], { out: () => undefined, err: () => undefined, env: {} });
}

test('a USP Get and a Set with a secret: one info line each, CWMP RPC debug lines, no secret anywhere', async () => {
  const from = lines.length;
  assert.equal(await usp(['get', 'Device.DeviceInfo.SerialNumber']), 0);
  assert.equal(await usp(['set', 'Device.WiFi.AccessPoint.1.Security.', `KeyPassphrase=${SECRET}`]), 0);
  await new Promise((r) => setTimeout(r, 200));
  const mine = lines.slice(from);
  const reqs = mine.filter((l) => l.msg === 'USP request');
  assert.equal(reqs.length, 2, JSON.stringify(mine.map((l) => l.msg)));
  const [g, s] = reqs;
  assert.equal(g.level, 30);
  assert.equal(g.controller, CTL);
  assert.equal(g.agent, agent);
  assert.equal(g.msgType, 'GET');
  assert.deepEqual(g.paths, ['Device.DeviceInfo.SerialNumber']);
  assert.equal(g.outcome, 'ok');
  assert.equal(typeof g.ms, 'number');
  assert.equal(s.msgType, 'SET');
  assert.deepEqual(s.paths, ['Device.WiFi.AccessPoint.1.Security.']);
  assert.equal(s.outcome, 'ok');
  // A refused parameter: the outcome says partial (the CLI exits 4).
  assert.equal(await usp(['set', 'Device.ManagementServer.', 'PeriodicInformInterval=0x', '--allow-partial']), 4);
  await new Promise((r) => setTimeout(r, 100));
  assert.match(lines.filter((l) => l.msg === 'USP request').at(-1).outcome, /^partial \(\d+ errors?\)$/);

  const rpcs = mine.filter((l) => l.msg === 'CWMP RPC');
  assert.ok(rpcs.length >= 2, JSON.stringify(mine.map((l) => l.msg)));
  assert.ok(rpcs.every((l) => l.level === 20 && l.device === deviceKey && typeof l.method === 'string' && typeof l.ms === 'number'));
  assert.ok(rpcs.some((l) => l.method === 'GetParameterValues' && l.names >= 1));
  assert.ok(rpcs.some((l) => l.method === 'SetParameterValues' && l.names === 1 && l.fault === undefined));

  const all = JSON.stringify(lines);
  assert.ok(!all.includes(SECRET), 'the secret reached a log line');
});

test("a controller's normal close is logged at info, not as a warning", async () => {
  const from = lines.length;
  assert.equal(await usp(['get', 'Device.DeviceInfo.SerialNumber']), 0);
  await new Promise((r) => setTimeout(r, 300));
  const mine = lines.slice(from);
  assert.ok(
    mine.some((l) => l.msg === 'WebSocket connection closed by the peer' && l.level === 30 && l.code === 1000),
    JSON.stringify(mine.map((l) => l.msg)),
  );
  assert.ok(!mine.some((l) => l.level >= 40 && /WebSocket/.test(l.msg)));
});

test('start --log-pretty prints human-readable lines, not JSON', async () => {
  const cli = path.join(ROOT, 'dist', 'src', 'app', 'cli.js');
  const p = spawn(process.execPath, [cli, 'start', '--log-pretty'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env['PATH'] ?? '',
      CUP_DATA_DIR: path.join(tp.config.dataDir, 'pretty'),
      CUP_ACS__HOST: '127.0.0.1',
      CUP_ACS__PORT: '0',
      CUP_USP__WEBSOCKET__HOST: '127.0.0.1',
      CUP_USP__WEBSOCKET__PORT: '0',
      CUP_ADMIN__ENABLED: 'false',
    },
  });
  let out = '';
  p.stdout.on('data', (c: Buffer) => (out += c.toString()));
  p.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 15_000;
    while (!out.includes('ACS listening') && p.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  } finally {
    p.kill('SIGTERM');
  }
  assert.equal(await exited, 0, out);
  assert.match(out, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: ACS listening/m);
  assert.doesNotMatch(out, /^\{"level"/m);
});
