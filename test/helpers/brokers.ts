/**
 * Throwaway brokers for MTP tests (shared/BROKERS.md): mosquitto and RabbitMQ with its STOMP
 * plugin, each on free loopback ports with its state in a temp folder, never as a system
 * service. Each start returns null when the binary is not installed so a test can skip with a
 * reason. Every process is started in its own process group and killed on process exit too, so
 * a failing test cannot leave a broker behind. Node names, ports and folders are unique per
 * call, so two test files can run in parallel.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { liveDirs, liveGroups, stopGroup } from './cleanup.js';

export interface MosquittoHandle {
  url: string;
  port: number;
  /** Stops the broker (SIGTERM, SIGKILL after 5 s) and removes its temp folder. Idempotent. */
  stop(): Promise<void>;
}

export interface RabbitStompHandle {
  host: string;
  /** The STOMP port. */
  port: number;
  amqpPort: number;
  /** Runs `rabbitmqctl -n <this node> <args>` (users, permissions); resolves with its exit code and output. */
  ctl(args: string[]): Promise<{ code: number | null; out: string }>;
  /** rabbitmqctl stop, then the process group is killed if still alive; epmd is stopped too. Idempotent. */
  stop(): Promise<void>;
}

export function findBinary(name: string, extraDirs: string[] = []): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin', ...extraDirs];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** A port that was free a moment ago on 127.0.0.1 (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once host:port accepts a TCP connection; rejects after timeoutMs or when `alive()` turns false. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean = () => true, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`process serving port ${port} exited before it listened`);
    if (Date.now() > deadline) throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function spawnGroup(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile?: string): ChildProcess {
  const child = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid) liveGroups.add(child.pid);
  let tail = '';
  const keep = (b: Buffer) => {
    tail = (tail + b.toString('utf8')).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', () => {
    if (child.pid) liveGroups.delete(child.pid);
    if (logFile) {
      try {
        writeFileSync(logFile, tail);
      } catch {
        /* temp dir may be gone */
      }
    }
  });
  (child as ChildProcess & { outputTail: () => string }).outputTail = () => tail;
  return child;
}

function outputTail(child: ChildProcess): string {
  return (child as ChildProcess & { outputTail?: () => string }).outputTail?.() ?? '';
}

export interface StartMosquittoOptions {
  /** Reuse a port (restart tests); default: a free one. */
  port?: number;
  /**
   * Authenticated broker: these users (name -> password, hashed with mosquitto_passwd into a
   * password_file) and this acl_file text; anonymous clients are refused. Null from
   * startMosquitto() when mosquitto_passwd is missing.
   */
  auth?: { users: Record<string, string>; acl: string };
}

/** Starts `mosquitto -c <temp conf>` on 127.0.0.1 (MQTT 5 and 3.1.1), or returns null when mosquitto is not installed. */
export async function startMosquitto(opts: StartMosquittoOptions = {}): Promise<MosquittoHandle | null> {
  const bin = findBinary('mosquitto');
  if (!bin) return null;
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mtp-mosquitto-'));
  liveDirs.add(dir);
  const conf = path.join(dir, 'mosquitto.conf');
  const authLines: string[] = [];
  if (opts.auth) {
    const passwd = findBinary('mosquitto_passwd');
    if (!passwd) {
      rmSync(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
      return null;
    }
    // Run as root, mosquitto drops to user `mosquitto` before it reads these: world-readable (throwaway test files).
    chmodSync(dir, 0o755);
    const pw = path.join(dir, 'passwd');
    writeFileSync(pw, '', { mode: 0o644 });
    for (const [user, password] of Object.entries(opts.auth.users)) {
      const r = spawnSync(passwd, ['-b', pw, user, password], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mosquitto_passwd failed: ${r.stderr}`);
    }
    chmodSync(pw, 0o644);
    const acl = path.join(dir, 'acl');
    writeFileSync(acl, opts.auth.acl, { mode: 0o644 });
    authLines.push(`password_file ${pw}`, `acl_file ${acl}`);
  }
  // set_tcp_nodelay: mosquitto Nagles its sends by default, which costs ~40 ms per round trip
  // (23 vs ~1,900 sequential 1 KB round trips/s here); deployments should set it too.
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      ...(opts.auth ? ['allow_anonymous false', ...authLines] : ['allow_anonymous true']),
      'persistence false',
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  );
  let child: ChildProcess | null = null;
  // A just-closed port may linger briefly (restart on the same port): retry the spawn a few times.
  for (let attempt = 0; ; attempt++) {
    child = spawnGroup(bin, ['-c', conf], { ...process.env }, path.join(dir, 'output.log'));
    const c = child;
    try {
      await waitForPort(port, 10_000, () => c.exitCode === null && c.signalCode === null);
      break;
    } catch (err) {
      await stopGroup(c, 1000);
      if (attempt >= 20) {
        rmSync(dir, { recursive: true, force: true });
        liveDirs.delete(dir);
        throw new Error(`mosquitto did not start on port ${port}: ${(err as Error).message}\n${outputTail(c)}`);
      }
      await sleep(250);
    }
  }
  let stopped: Promise<void> | null = null;
  const c = child;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    stop: () =>
      (stopped ??= (async () => {
        await stopGroup(c, 5000);
        rmSync(dir, { recursive: true, force: true });
        liveDirs.delete(dir);
      })()),
  };
}

/** The rabbitmq_server-x.y.z/sbin folder: its scripts run as the calling user (the /usr/sbin wrappers su to `rabbitmq`). */
function rabbitSbin(): string | null {
  const base = '/usr/lib/rabbitmq/lib';
  if (existsSync(base)) {
    const dirs = readdirSync(base)
      .filter((d) => d.startsWith('rabbitmq_server-'))
      .sort()
      .reverse();
    for (const d of dirs) {
      const sbin = path.join(base, d, 'sbin');
      if (existsSync(path.join(sbin, 'rabbitmq-server'))) return sbin;
    }
  }
  const s = findBinary('rabbitmq-server');
  return s ? path.dirname(s) : null;
}

export interface StartRabbitOptions {
  /** How long to wait for the STOMP port (RabbitMQ boots in 5-20 s on two cores). Default 60 s. */
  startTimeoutMs?: number;
}

/**
 * Starts RabbitMQ with the STOMP plugin on 127.0.0.1 (its own epmd, node name, ports and state
 * folder), or returns null when rabbitmq-server / epmd are not installed.
 */
export async function startRabbitStomp(opts: StartRabbitOptions = {}): Promise<RabbitStompHandle | null> {
  const sbin = rabbitSbin();
  const epmdBin = findBinary('epmd', ['/usr/lib/erlang/bin']);
  if (!sbin || !epmdBin) return null;
  const [amqpPort, stompPort, distPort, epmdPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mtp-rabbit-'));
  liveDirs.add(dir);
  const node = `mtptest${process.pid}x${stompPort}@localhost`;
  writeFileSync(
    path.join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.default = 127.0.0.1:${amqpPort}`,
      `stomp.listeners.tcp.1 = 127.0.0.1:${stompPort}`,
      'stomp.default_user = guest',
      'stomp.default_pass = guest',
      'loopback_users = none',
      'log.console = false',
      'log.file.level = warning',
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'enabled_plugins'), '[rabbitmq_stomp].\n');
  writeFileSync(path.join(dir, 'rabbitmq-env.conf'), '');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_PID_FILE: path.join(dir, 'rabbit.pid'),
    RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(amqpPort),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  const epmd = spawnGroup(epmdBin, ['-port', String(epmdPort), '-address', '127.0.0.1'], env);
  let server: ChildProcess | null = null;
  const cleanup = async () => {
    if (server) await stopGroup(server, 5000);
    await stopGroup(epmd, 2000);
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };
  try {
    await waitForPort(epmdPort, 10_000, () => epmd.exitCode === null);
    server = spawnGroup(path.join(sbin, 'rabbitmq-server'), [], env, path.join(dir, 'server-output.log'));
    const s = server;
    await waitForPort(stompPort, opts.startTimeoutMs ?? 60_000, () => s.exitCode === null && s.signalCode === null);
  } catch (err) {
    const tail = server ? outputTail(server) : '';
    await cleanup();
    throw new Error(`RabbitMQ did not start: ${(err as Error).message}\n${tail}`);
  }
  const s = server;
  let stopped: Promise<void> | null = null;
  return {
    host: '127.0.0.1',
    port: stompPort,
    amqpPort,
    ctl: (args) =>
      new Promise((resolve) => {
        const ctl = spawn(path.join(sbin, 'rabbitmqctl'), ['-n', node, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        let out = '';
        ctl.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
        ctl.stderr.on('data', (b: Buffer) => (out += b.toString('utf8')));
        const t = setTimeout(() => {
          try {
            if (ctl.pid) process.kill(-ctl.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, 60_000);
        ctl.once('error', (e) => {
          clearTimeout(t);
          resolve({ code: null, out: e.message });
        });
        ctl.once('exit', (code) => {
          clearTimeout(t);
          resolve({ code, out });
        });
      }),
    stop: () =>
      (stopped ??= (async () => {
        if (s.exitCode === null && s.signalCode === null) {
          // BROKERS.md: rabbitmqctl stop; the group kill below is the fallback.
          await new Promise<void>((resolve) => {
            const ctl = spawn(path.join(sbin, 'rabbitmqctl'), ['-n', node, 'stop'], { env, stdio: 'ignore', detached: true });
            const t = setTimeout(() => {
              try {
                if (ctl.pid) process.kill(-ctl.pid, 'SIGKILL');
              } catch {
                /* gone */
              }
            }, 20_000);
            ctl.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            ctl.once('error', () => {
              clearTimeout(t);
              resolve();
            });
          });
          await Promise.race([new Promise((r) => s.once('exit', r)), sleep(10_000)]);
        }
        await cleanup();
      })()),
  };
}

/** Synchronous check used by tests: `ps` lines mentioning a temp folder of ours. */
export function strayBrokerProcesses(): string[] {
  const r = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter((l) => /mtp-mosquitto-|mtp-rabbit-|mtptest\d+x/.test(l));
}
