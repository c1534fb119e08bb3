/**
 * A throwaway redis-server for store and scale-out tests (shared/BROKERS.md): a free loopback
 * port, state in a temp folder, its own process group, never the system service. Returns null
 * when redis-server is not installed so a test can skip with a reason. The process is killed on
 * process exit and on SIGTERM/SIGINT/SIGHUP (node --test ends a timed-out file with SIGTERM), so
 * a failing test cannot leave a server behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findBinary, freePort } from './brokers.js';
import { liveDirs, liveGroups } from './cleanup.js';

export interface RedisHandle {
  /** redis://127.0.0.1:<port> */
  url: string;
  port: number;
  /** SIGTERM (SIGKILL after 5 s) and removal of the temp folder. Final and idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, as in a crash: no final AOF rewrite, no goodbye to clients. restart() brings it back. */
  kill9(): Promise<void>;
  /** Stops the server if it runs (SIGTERM) and starts it again on the same port and folder. */
  restart(): Promise<void>;
}

export interface StartRedisOptions {
  /** appendonly yes (appendfsync everysec): data survives a restart from the same folder. */
  appendonly?: boolean;
}

/** Process groups of our servers; killed synchronously if the test process ends first. */

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One PING over a raw socket: true on +PONG (false while refused, loading or silent). */
function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.on('data', (b) => {
      buf += b.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

function running(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

/** Signals the group and resolves when the leader has exited; SIGKILL after graceMs. */
async function killGroup(c: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  const pid = c.pid;
  if (!pid) return;
  if (running(c)) {
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    const send = (s: NodeJS.Signals) => {
      try {
        process.kill(-pid, s);
      } catch {
        /* gone */
      }
    };
    send(signal);
    const timer = setTimeout(() => send('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
  liveGroups.delete(pid);
}

/** Starts `redis-server` on 127.0.0.1 with throwaway state, or returns null when it is not installed. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisHandle | null> {
  const bin = findBinary('redis-server');
  if (!bin) return null;
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'test-redis-'));
  liveDirs.add(dir);
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', opts.appendonly ? 'yes' : 'no', '--dir', dir, '--daemonize', 'no'];

  let child: ChildProcess | null = null;
  let tail = '';
  const launch = async (): Promise<void> => {
    const c = spawn(bin, args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    if (c.pid) liveGroups.add(c.pid);
    const keep = (b: Buffer) => {
      tail = (tail + b.toString('utf8')).slice(-4096);
    };
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    c.once('exit', () => c.pid && liveGroups.delete(c.pid));
    const deadline = Date.now() + 10_000;
    while (!(await pingOnce(port))) {
      if (!running(c)) throw new Error(`redis-server exited before it answered on port ${port}:\n${tail}`);
      if (Date.now() > deadline) {
        await killGroup(c, 'SIGKILL', 0);
        throw new Error(`redis-server did not answer PING on port ${port} within 10 s:\n${tail}`);
      }
      await sleep(50);
    }
  };

  try {
    await launch();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    throw err;
  }

  let stopped: Promise<void> | null = null;
  const current = (): ChildProcess | null => child;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () =>
      (stopped ??= (async () => {
        const c = current();
        if (c) await killGroup(c, 'SIGTERM', 5000);
        rmSync(dir, { recursive: true, force: true });
        liveDirs.delete(dir);
      })()),
    kill9: async () => {
      const c = current();
      if (c) await killGroup(c, 'SIGKILL', 0);
    },
    restart: async () => {
      if (stopped) throw new Error('restart() after stop()');
      const c = current();
      if (c) await killGroup(c, 'SIGTERM', 5000);
      await launch();
    },
  };
}
