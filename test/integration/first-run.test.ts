/**
 * A first run that explains itself, through the built CLI in child processes: the start-up banner
 * and the no-controller warning, unknown CUP_ variables, `config` showing effective values with
 * secrets masked, and plain messages (no stack) for a closed stdout pipe and a busy port.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers/paths.js';

const CLI = path.join(ROOT, 'dist', 'src', 'app', 'cli.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-first-run-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The environment of the machine without its CUP_ variables, plus these. */
function envWith(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CUP_')));
  return { ...env, ...extra };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv, opts: { closeStdout?: boolean; until?: RegExp } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    // Like `config | head -0`: the reader is gone before the first write.
    if (opts.closeStdout) p.stdout.destroy();
    else p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (opts.until?.test(stderr)) p.kill('SIGTERM');
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const LOOPBACK = {
  CUP_ACS__HOST: '127.0.0.1',
  CUP_ACS__PORT: '0',
  CUP_USP__WEBSOCKET__HOST: '127.0.0.1',
  CUP_USP__WEBSOCKET__PORT: '0',
  CUP_ADMIN__PORT: '0',
};

test('start prints a banner with every URL and where the admin token is, and warns that no controller is configured', async () => {
  const data = path.join(dir, 'banner');
  const r = await run(['start'], envWith({ ...LOOPBACK, CUP_DATA_DIR: data }), { until: /warning: no controller/ });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^cwmp-usp-proxy is running$/m);
  assert.match(r.stderr, /ACS URL \(ManagementServer\.URL of the CPEs\)\s+http:\/\/127\.0\.0\.1:\d+\/$/m);
  assert.match(r.stderr, /USP WebSocket \(controllers\)\s+ws:\/\/127\.0\.0\.1:\d+\/usp$/m);
  assert.match(r.stderr, /status page\s+http:\/\/127\.0\.0\.1:\d+\/$/m);
  assert.match(r.stderr, /admin API, \/metrics, \/healthz\s+http:\/\/127\.0\.0\.1:\d+\/api\/$/m);
  const tokenFile = path.join(data, 'admin-token');
  assert.match(r.stderr, new RegExp(`admin token\\s+${tokenFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  // The banner says where the token is, never the token itself.
  assert.ok(!r.stderr.includes(readFileSync(tokenFile, 'utf8').trim()));
  assert.match(r.stderr, /warning: no controller is configured \(controllers\[\]\): every USP request is answered with Error 7006/);
  assert.match(r.stdout, /"level":40,.*no controller is configured/);

  const yaml = path.join(dir, 'with-controller.yaml');
  writeFileSync(yaml, 'controllers:\n  - { endpointId: proto::c1, role: full }\n');
  const c = await run(['start', '--config', yaml], envWith({ ...LOOPBACK, CUP_DATA_DIR: path.join(dir, 'ctl') }), { until: /data\s+\S+\n/ });
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /cwmp-usp-proxy is running/);
  assert.doesNotMatch(c.stderr + c.stdout, /no controller is configured/);
});

test('a busy port: exit 1 and one line naming the port and the option, no stack', async () => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    const r = await run(['start'], envWith({ ...LOOPBACK, CUP_ACS__PORT: String(port), CUP_DATA_DIR: path.join(dir, 'busy') }));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: port ${port} is already in use \\(127\\.0\\.0\\.1:${port}\\).*acs\\.port \\(CUP_ACS__PORT\\)$`, 'm'));
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  } finally {
    srv.close();
  }
});

test('stdout closed by its reader (`config | head`): exit 0, no EPIPE stack', async () => {
  const r = await run(['config'], envWith({}), { closeStdout: true });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('an unknown CUP_ variable is reported with the closest name', async () => {
  const r = await run(['config'], envWith({ CUP_ACS__PROT: '7000', CUP_NO_SUCH_THING: 'x' }));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: unknown environment variable CUP_ACS__PROT ignored \(did you mean CUP_ACS__PORT\?\)/);
  assert.match(r.stderr, /warning: unknown environment variable CUP_NO_SUCH_THING ignored;/);
  assert.match(r.stdout, /^acs\.port\s+CUP_ACS__PORT\s+7547$/m);
});

test('config --config FILE shows the effective values, the defaults beside changed ones, secrets masked', async () => {
  const file = path.join(dir, 'effective.yaml');
  writeFileSync(
    file,
    [
      'acs:',
      '  port: 17547',
      '  auth: { mode: digest, username: cpe, password: cpe-Pass-9z }',
      'controllers:',
      '  - { endpointId: proto::c1, role: full, websocket: { secret: ws-Secret-8y } }',
      'store:',
      '  redis: { url: "redis://ops:redis-Pw-7x@10.0.0.5:6379" }',
      'admin: { token: admin-Tok-6w }',
      '',
    ].join('\n'),
  );
  const r = await run(['config', '--config', file], envWith({ CUP_USP__WEBSOCKET__PORT: '18080' }));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^acs\.port\s+CUP_ACS__PORT\s+17547\s+\(default 7547\)$/m);
  assert.match(r.stdout, /^usp\.websocket\.port\s+CUP_USP__WEBSOCKET__PORT\s+18080\s+\(default 8080\)$/m);
  assert.match(r.stdout, /^acs\.auth\.password\s+CUP_ACS__AUTH__PASSWORD\s+"\*\*\*"\s+\(default ""\)$/m);
  assert.match(r.stdout, /^admin\.token\s+CUP_ADMIN__TOKEN\s+"\*\*\*"/m);
  assert.match(r.stdout, /^store\.redis\.url\s+CUP_STORE__REDIS__URL\s+"redis:\/\/ops:\*\*\*@10\.0\.0\.5:6379"/m);
  assert.match(r.stdout, /^controllers\s+CUP_CONTROLLERS\s+\[\{"endpointId":"proto::c1".*"secret":"\*\*\*"/m);
  for (const s of ['cpe-Pass-9z', 'ws-Secret-8y', 'redis-Pw-7x', 'admin-Tok-6w']) assert.ok(!(r.stdout + r.stderr).includes(s), s);
});
