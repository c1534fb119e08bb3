/** The command line as an operator uses it: start, devices (while the proxy runs), bad config. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers/paths.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CLI = path.join(ROOT, 'dist', 'src', 'app', 'cli.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function run(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--help for the program and each subcommand', () => {
  const top = run(['--help']);
  assert.equal(top.status, 0);
  assert.match(top.stdout, /Usage: cwmp-usp-proxy <command>/);
  assert.match(run(['devices', '--help']).stdout, /Usage: cwmp-usp-proxy devices/);
  assert.match(run(['simulate', '--help']).stdout, /Usage: cwmp-usp-proxy simulate/);
  const cfg = run(['config']);
  assert.match(cfg.stdout, /acs\.port\s+CUP_ACS__PORT\s+7547/);
});

test('start with an unreachable Redis store: exit code 1, the host:port named, the password never printed', () => {
  const r = run(['start', '--data-dir', dir], {
    CUP_STORE__REDIS__URL: 'redis://ops:zzTopSecret@127.0.0.1:1',
    CUP_ADMIN__ENABLED: 'false',
    CUP_ACS__PORT: '0',
    CUP_USP__WEBSOCKET__PORT: '0',
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /store\.redis\.url: cannot reach Redis at 127\.0\.0\.1:1/);
  assert.doesNotMatch(r.stdout + r.stderr, /zzTopSecret/);
});

test('a bad config key, a bad value and a bad flag are named, with exit code 2', () => {
  const file = path.join(dir, 'bad.yaml');
  writeFileSync(file, 'acs:\n  port: 7547\n  sesionTimeoutMs: 5\n');
  const r = run(['start', '--config', file]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown key "acs\.sesionTimeoutMs"/);
  const e = run(['devices', '--data-dir', dir], { CUP_ACS__PORT: 'x' });
  assert.equal(e.status, 2);
  assert.match(e.stderr, /CUP_ACS__PORT: acs\.port must be an integer/);
  const f = run(['devices', '--bogus']);
  assert.equal(f.status, 2);
  assert.match(f.stderr, /--bogus/);
  const u = run(['frobnicate']);
  assert.equal(u.status, 2);
  assert.match(u.stderr, /unknown command "frobnicate"/);
});

test('start, register simulated devices, list them with `devices` while running, stop on SIGTERM', async () => {
  const port = await freePort();
  const data = path.join(dir, 'run');
  const file = path.join(dir, 'proxy.yaml');
  writeFileSync(
    file,
    `dataDir: ${JSON.stringify(data)}\nacs:\n  host: 127.0.0.1\n  port: ${port}\n  auth: { mode: basic, username: cpe, password: pw }\nusp:\n  websocket: { port: 0, host: 127.0.0.1 }\nadmin:\n  port: 0\n`,
  );
  const proxy: ChildProcess = spawn(process.execPath, [CLI, 'start', '--config', file, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  proxy.stdout!.on('data', (c: Buffer) => (logs += c.toString()));
  proxy.stderr!.on('data', (c: Buffer) => (logs += c.toString()));
  try {
    const deadline = Date.now() + 15_000;
    while (!logs.includes('ACS listening') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(logs, /ACS listening/);
    const fleet = new Fleet({
      quirks: STRICT_SIM,
      acsUrl: `http://127.0.0.1:${port}/`,
      count: 3,
      model: 'tr098',
      serialPrefix: 'CLI',
      auth: { mode: 'basic', username: 'cpe', password: 'pw', preemptiveBasic: true },
      periodicIntervalS: null,
    });
    await fleet.start();
    await fleet.stop();

    const r = run(['devices', '--json', '--config', file]);
    assert.equal(r.status, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { endpointId: string; rootModel: string; online: boolean; deviceId: { serialNumber: string } }[];
    assert.equal(rows.length, 3);
    assert.ok(rows.every((d) => d.rootModel === 'InternetGatewayDevice' && d.online && d.endpointId.startsWith('os::')));
    assert.deepEqual(rows.map((d) => d.deviceId.serialNumber).sort(), ['CLI000001', 'CLI000002', 'CLI000003']);
    const table = run(['devices', '--config', file]);
    assert.match(table.stdout, /ENDPOINT ID\s+MANUFACTURER/);
    assert.match(table.stdout, /3 device\(s\)/);
    // Secrets never reach the log (the simulator's connection request password was set by the ACS).
    assert.doesNotMatch(logs, /"password":"(?!\[redacted\])/);
    assert.doesNotMatch(logs, /sim-CLI/);
  } finally {
    const exited = new Promise<number | null>((r) => proxy.once('exit', (code) => r(code)));
    proxy.kill('SIGTERM');
    assert.equal(await exited, 0, logs.slice(-2000));
  }
  assert.match(logs, /"msg":"stopped"/);
});
