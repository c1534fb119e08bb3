/**
 * Optional dependencies stay off the default path (issue 22: memory per device). The real CLI
 * (`cli.js start` with the embedded defaults, ports moved to free ones) runs under
 * test/helpers/load-trace.ts, which records every module loaded; once the ACS listens it is
 * stopped and none of MQTT.js, ioredis, @xmpp/client, pino-pretty, yaml or @stomp/* may have
 * been loaded. The same check with the configuration that uses them (a YAML file with an MQTT
 * MTP, XMPP connection requests and pretty logs; a Redis store) sees each of them loaded, so the
 * first check is not vacuous. No broker is needed: the MQTT and XMPP ports are closed (the proxy
 * starts and retries), and a Redis store that cannot be reached fails the start.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers/paths.js';
import { freePort } from '../helpers/brokers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'app', 'cli.js');
const TRACE = path.join(ROOT, 'dist', 'test', 'helpers', 'load-trace.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-lazy-deps-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Packages the default configuration does not use, by their folder under node_modules. */
const OPTIONAL = ['mqtt', 'mqtt-packet', 'ioredis', '@xmpp/client', 'pino-pretty', 'yaml', '@stomp/stompjs', '@stomp/tcp-wrapper'];

interface Run {
  /** Exit code of the CLI. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Every module loaded (ESM URLs and CommonJS file names). */
  modules: string[];
}

/**
 * Runs `cli.js start` with `args` and env `extra` (no CUP_* of ours leaks in) until the ACS listens
 * (then SIGTERM) or it exits by itself.
 */
async function runCli(name: string, args: string[], extra: Record<string, string>): Promise<Run> {
  const trace = path.join(dir, name);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CUP_') && k !== 'NODE_OPTIONS') env[k] = v;
  Object.assign(env, { LOAD_TRACE_FILE: trace, NODE_ENV: 'test' }, extra);
  const proc = spawn(process.execPath, ['--import', TRACE, CLI, 'start', '--data-dir', path.join(dir, `${name}-data`), ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  proc.stdout.on('data', (c: string) => {
    const before = stdout.includes('ACS listening');
    stdout += c;
    if (!before && stdout.includes('ACS listening')) proc.kill('SIGTERM');
  });
  const code = await exited;
  const read = (f: string): string[] => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
  return { code, stdout, stderr, modules: [...read(`${trace}.esm`), ...read(`${trace}.cjs`)] };
}

/** The optional packages among `modules`. */
function optionalLoaded(modules: string[]): string[] {
  return OPTIONAL.filter((p) => modules.some((m) => m.includes(`/node_modules/${p}/`)));
}

/** Listeners on loopback, on free ports (nothing else listens on 0 for them). */
const ports = {
  CUP_ACS__HOST: '127.0.0.1',
  CUP_ACS__PORT: '0',
  CUP_USP__WEBSOCKET__HOST: '127.0.0.1',
  CUP_USP__WEBSOCKET__PORT: '0',
  CUP_ADMIN__PORT: '0',
  CUP_ACS__CONNECTION_REQUEST__UDP__PORT: '0',
};

test('the default start loads none of the optional dependencies', async () => {
  const r = await runCli('default', [], ports);
  assert.ok(r.stdout.includes('ACS listening'), `the proxy started: ${r.stderr.slice(-2000)}`);
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  // The trace saw the proxy's own modules and its default dependencies (not an empty list).
  assert.ok(
    r.modules.some((m) => m.endsWith('/dist/src/app/proxy.js')),
    'proxy.js traced',
  );
  assert.ok(
    r.modules.some((m) => m.includes('/node_modules/better-sqlite3/')),
    'better-sqlite3 traced',
  );
  assert.deepEqual(optionalLoaded(r.modules), []);
});

test('a YAML file with an MQTT MTP, XMPP connection requests and pretty logs loads mqtt, @xmpp/client, pino-pretty and yaml', async () => {
  const closed = await freePort();
  const file = path.join(dir, 'used.yaml');
  writeFileSync(
    file,
    [
      'usp:',
      `  mqtt: { url: "mqtt://127.0.0.1:${closed}" }`,
      'acs:',
      '  connectionRequest:',
      `    xmpp: { enabled: true, service: "xmpp://127.0.0.1:${closed}" }`,
      'log:',
      '  pretty: "on"',
      '',
    ].join('\n'),
  );
  const r = await runCli('used', ['--config', file], ports);
  assert.ok(r.stdout.includes('ACS listening'), `the proxy started: ${r.stderr.slice(-2000)}`);
  assert.deepEqual(optionalLoaded(r.modules).sort(), ['@xmpp/client', 'mqtt', 'mqtt-packet', 'pino-pretty', 'yaml']);
});

test('a Redis store loads ioredis (here one that cannot be reached: the start fails, naming it)', async () => {
  const closed = await freePort();
  const r = await runCli('redis', [], { ...ports, CUP_STORE__REDIS__URL: `redis://127.0.0.1:${closed}` });
  assert.equal(r.code, 1, `exit code; stderr: ${r.stderr.slice(-2000)}`);
  assert.match(r.stderr, /Redis/);
  assert.deepEqual(optionalLoaded(r.modules), ['ioredis']);
});
