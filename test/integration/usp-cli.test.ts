/**
 * The `usp` CLI against a real proxy and simulated devices, as a script uses it: one call with the
 * transport from a profile in $HOME (a child process), compact output, exit codes for a failure
 * inside a SetResp and for an untrusted controller (7006, with a hint), and a `listen` whose
 * WebSocket another command replaces (R-WS.4) saying so.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { runUspCli } from '../../src/tools/controller/cli.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { STRICT_SIM } from '../helpers/sim.js';
import { ROOT } from '../helpers/paths.js';

const CLI = path.join(ROOT, 'dist', 'src', 'app', 'cli.js');
const CTL = 'proto::script-ctl';
let tp: TestProxy;
let fleet: Fleet;
let agent = '';
let serial = '';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-usp-cli-'));

before(async () => {
  tp = await startTestProxy({ controllers: [{ endpointId: CTL, role: 'full' }] });
  fleet = new Fleet({ quirks: STRICT_SIM, acsUrl: tp.acsUrl, count: 1, model: 'tr181', serialPrefix: 'UCLI', periodicIntervalS: null });
  await fleet.start();
  const d = (await tp.proxy.store.listDevices())[0]!;
  agent = d.endpointId;
  serial = d.deviceId.serialNumber;
});

after(async () => {
  await fleet?.stop();
  await tp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runUspCli(args, { out: (s) => out.push(s), err: (s) => err.push(s), env: {} });
  return { code, out, err };
}

/** The built CLI in a child process (async: the proxy runs in this process). */
function child(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('one call with a profile in $HOME: `usp get PATH --to AGENT` prints path => value, exit 0', async () => {
  const home = path.join(dir, 'home');
  mkdirSync(path.join(home, '.config', 'cwmp-usp-proxy'), { recursive: true });
  writeFileSync(path.join(home, '.config', 'cwmp-usp-proxy', 'usp.yaml'), `url: ${tp.uspUrl}\nfrom: ${CTL}\n`);
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '', HOME: home };
  const r = await child(['usp', 'get', 'Device.DeviceInfo.SerialNumber', '--to', agent], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `Device.DeviceInfo.SerialNumber => ${serial}\n`);
  // Not a terminal: no progress line on stderr.
  assert.equal(r.stderr, '');
  const j = await child(['usp', 'get', 'Device.DeviceInfo.SerialNumber', '--to', agent, '--json'], env);
  assert.equal(j.code, 0, j.stderr);
  assert.equal(JSON.parse(j.stdout).body.response.getResp.reqPathResults[0].resolvedPathResults[0].resultParams.SerialNumber, serial);
});

test('a Set that fails inside the SetResp exits 4 and names the parameter', async () => {
  const tr = ['--url', tp.uspUrl, '--to', agent, '--from', CTL, '--timeout', '20000'];
  const r = await cli(['set', 'Device.DeviceInfo.', 'SerialNumber=forged', 'ProvisioningCode=pc-1', '--allow-partial', ...tr]);
  assert.equal(r.code, 4, r.err.join('\n') + r.out.join('\n'));
  assert.deepEqual(r.out, ['Device.DeviceInfo.ProvisioningCode => pc-1']);
  assert.deepEqual(r.err, ['Device.DeviceInfo.SerialNumber: error 7013: parameter Device.DeviceInfo.SerialNumber is read-only']);
  const g = await cli(['get', 'Device.DeviceInfo.SerialNumber', ...tr]);
  assert.equal(g.code, 0, g.err.join('\n'));
  assert.deepEqual(g.out, [`Device.DeviceInfo.SerialNumber => ${serial}`]);
  const bad = await cli(['get', 'Device.NoSuchObject.', ...tr]);
  assert.notEqual(bad.code, 0);
  assert.ok(
    bad.err.some((l) => /error 7\d\d\d/.test(l)),
    bad.err.join('\n'),
  );
});

test('an untrusted controller: exit 1, USP Error 7006 and a hint naming controllers[]', async () => {
  const r = await cli(['get', 'Device.DeviceInfo.SerialNumber', '--url', tp.uspUrl, '--to', agent, '--from', 'proto::not-configured', '--timeout', '10000']);
  assert.equal(r.code, 1, r.err.join('\n'));
  assert.deepEqual(r.out, []);
  assert.match(r.err.join('\n'), /USP Error 7006/);
  assert.match(r.err.join('\n'), /hint: .*proto::not-configured.*controllers\[\]/);
});

test('listen: a second WebSocket with the same identity replaces it; listen exits 3 saying so', async () => {
  const tr = ['--url', tp.uspUrl, '--to', agent, '--from', CTL, '--timeout', '20000'];
  const lerr: string[] = [];
  const listening = runUspCli(['listen', '--duration', '30', ...tr], { out: () => undefined, err: (s) => lerr.push(s), env: {} });
  await new Promise((r) => setTimeout(r, 300));
  const g = await cli(['get', 'Device.DeviceInfo.SerialNumber', ...tr]);
  assert.equal(g.code, 0, g.err.join('\n'));
  assert.equal(await listening, 3);
  assert.match(lerr.join('\n'), /another connection as proto::script-ctl to .* replaced this one/);
});
