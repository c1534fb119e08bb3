/**
 * A throwaway prosody XMPP server on 127.0.0.1 for the XMPP connection request tests (TR-069
 * Annex K): a temp config (plain c2s, no TLS required, no s2s, no HTTP), accounts written
 * straight into its data folder. Null when prosody is not installed (CI installs it:
 * scripts/ci-brokers.sh).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findBinary, freePort, waitForPort } from './brokers.js';
import { liveDirs, liveGroups, stopGroup } from './cleanup.js';

export interface ProsodyHandle {
  /** xmpp://127.0.0.1:<port> */
  service: string;
  domain: string;
  port: number;
  stop(): Promise<void>;
}

/** prosody's internal storage encodes a few characters of names as %xx. */
const enc = (s: string): string => s.replace(/[^a-z0-9_]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
const lua = (s: string): string => JSON.stringify(s);

export async function startProsody(users: Record<string, string>, domain = 'localhost'): Promise<ProsodyHandle | null> {
  const bin = findBinary('prosody');
  if (!bin) return null;
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xmpp-prosody-'));
  liveDirs.add(dir);
  const accounts = path.join(dir, 'data', enc(domain), 'accounts');
  mkdirSync(accounts, { recursive: true });
  mkdirSync(path.join(dir, 'certs'));
  for (const [user, password] of Object.entries(users))
    writeFileSync(path.join(accounts, `${enc(user)}.dat`), `return {\n\t["password"] = ${lua(password)};\n};\n`);
  const conf = path.join(dir, 'prosody.cfg.lua');
  writeFileSync(
    conf,
    [
      `pidfile = ${lua(path.join(dir, 'prosody.pid'))}`,
      `data_path = ${lua(path.join(dir, 'data'))}`,
      `certificates = ${lua(path.join(dir, 'certs'))}`,
      'log = { error = "*console" }',
      'interfaces = { "127.0.0.1" }',
      `c2s_ports = { ${port} }`,
      's2s_ports = { }',
      'http_ports = { }',
      'https_ports = { }',
      `admin_socket = ${lua(path.join(dir, 'admin.sock'))}`,
      'modules_enabled = { "roster", "saslauth", "disco", "ping" }',
      'modules_disabled = { "s2s", "posix", "admin_shell" }',
      'c2s_require_encryption = false',
      'allow_unencrypted_plain_auth = true',
      'authentication = "internal_plain"',
      `VirtualHost ${lua(domain)}`,
      '',
    ].join('\n'),
  );
  const child = spawn(bin, ['--config', conf, '-F'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid) liveGroups.add(child.pid);
  let out = '';
  const keep = (b: Buffer): void => void (out = (out + b.toString()).slice(-4096));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', () => child.pid && liveGroups.delete(child.pid));
  try {
    await waitForPort(port, 15_000, () => child.exitCode === null && child.signalCode === null);
  } catch (e) {
    await stopGroup(child, 1000);
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    throw new Error(`prosody did not start on port ${port}: ${(e as Error).message}\n${out}`);
  }
  let stopped: Promise<void> | null = null;
  return {
    service: `xmpp://127.0.0.1:${port}`,
    domain,
    port,
    stop: () =>
      (stopped ??= (async () => {
        await stopGroup(child, 5000);
        rmSync(dir, { recursive: true, force: true });
        liveDirs.delete(dir);
      })()),
  };
}
