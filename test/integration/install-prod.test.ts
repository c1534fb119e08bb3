/**
 * The production install runs the tools: `npm ci --omit=dev` in a temporary copy of the package
 * (package.json, lockfile, built dist/src, assets), then `usp --help`, `demo --help` and `start`.
 * Catches a runtime import of a devDependency (ERR_MODULE_NOT_FOUND). Needs the npm registry (or a
 * warm npm cache); without either the test is skipped, saying so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers/paths.js';

const INSTALL_TIMEOUT_MS = 360_000;

test('npm ci --omit=dev in a copy: usp --help, demo --help and start work', { timeout: INSTALL_TIMEOUT_MS + 60_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-prod-'));
  try {
    for (const f of ['package.json', 'package-lock.json']) cpSync(path.join(ROOT, f), path.join(dir, f));
    cpSync(path.join(ROOT, 'assets'), path.join(dir, 'assets'), { recursive: true });
    cpSync(path.join(ROOT, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const ci = spawnSync(npm, ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: INSTALL_TIMEOUT_MS,
      env: { ...process.env, npm_config_loglevel: 'error' },
    });
    if (ci.status !== 0) {
      const why = `${ci.error?.message ?? ''} ${ci.stderr}`;
      if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network|ENETUNREACH/i.test(why)) {
        t.skip(`the npm registry is not reachable: ${why.trim().split('\n')[0]}`);
        return;
      }
      assert.fail(`npm ci --omit=dev failed (${ci.status}): ${why.slice(-2000)}`);
    }
    const cli = path.join(dir, 'dist', 'src', 'app', 'cli.js');
    const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    const usp = run(['usp', '--help']);
    assert.equal(usp.status, 0, usp.stderr);
    assert.match(usp.stdout, /Usage: cwmp-usp-proxy usp/);
    const sim = run(['simulate', '--help']);
    assert.equal(sim.status, 0, sim.stderr);
    assert.match(sim.stdout, /Usage: cwmp-usp-proxy simulate/);
    const demo = run(['demo', '--help']);
    assert.equal(demo.status, 0, demo.stderr);
    assert.match(demo.stdout, /Usage: cwmp-usp-proxy demo/);
    // The STOMP client the CLI uses is a runtime dependency now: a `usp get` over STOMP gets as far
    // as the (closed) port instead of failing to import.
    const stomp = run([
      'usp',
      'get',
      'Device.',
      '--to',
      'os::X-1',
      '--mtp',
      'stomp',
      '--port',
      '1',
      '--controller-dest',
      'c',
      '--agent-dest',
      'a',
      '--timeout',
      '2000',
    ]);
    assert.equal(stomp.status, 3, stomp.stderr);
    assert.doesNotMatch(stomp.stderr, /ERR_MODULE_NOT_FOUND/);

    const proxy = spawn(process.execPath, [cli, 'start'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        CUP_DATA_DIR: path.join(dir, 'data'),
        CUP_ACS__HOST: '127.0.0.1',
        CUP_ACS__PORT: '0',
        CUP_USP__WEBSOCKET__HOST: '127.0.0.1',
        CUP_USP__WEBSOCKET__PORT: '0',
        CUP_ADMIN__PORT: '0',
      },
    });
    let logs = '';
    proxy.stdout.on('data', (c: Buffer) => (logs += c.toString()));
    proxy.stderr.on('data', (c: Buffer) => (logs += c.toString()));
    const exited = new Promise<number | null>((r) => proxy.once('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 20_000;
      while (!logs.includes('ACS listening') && proxy.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(logs, /ACS listening/);
    } finally {
      proxy.kill('SIGTERM');
    }
    assert.equal(await exited, 0, logs.slice(-2000));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
