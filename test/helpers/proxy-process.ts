/**
 * A proxy instance in its own process (`node dist/src/app/cli.js start --config <file>`), for tests
 * and benchmarks that run several instances and kill one for real (SIGKILL). Its pino log lines
 * are kept so a test can wait for one ("ACS listening", "took over ..."). The process is killed
 * when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './paths.js';

export interface ProxyProcess {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly logs: Record<string, unknown>[];
  /** Resolves with the first log line whose msg includes `text` (already logged or later). */
  waitForLog(text: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM (graceful shutdown), SIGKILL after timeoutMs. */
  stop(timeoutMs?: number): Promise<void>;
  kill9(): Promise<void>;
  readonly exited: boolean;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** A free loopback TCP port (for listeners that sit behind a load balancer and need a fixed port). */
export { freePort } from './brokers.js';

export async function startProxyProcess(name: string, config: Record<string, unknown>, dir: string, readyTimeoutMs = 20_000): Promise<ProxyProcess> {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'app', 'cli.js'), 'start', '--config', file], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'test' },
  });
  live.add(proc);
  const logs: Record<string, unknown>[] = [];
  const waiters: { text: string; resolve: (l: Record<string, unknown>) => void }[] = [];
  let exited = false;
  let stderr = '';
  let buf = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      logs.push(entry);
      for (const w of [...waiters]) {
        if (String(entry.msg ?? '').includes(w.text)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(entry);
        }
      }
    }
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
  const gone = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      exited = true;
      live.delete(proc);
      resolve();
    }),
  );

  const waitForLog = (text: string, timeoutMs = 10_000): Promise<Record<string, unknown>> => {
    const found = logs.find((l) => String(l.msg ?? '').includes(text));
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { text, resolve: (l: Record<string, unknown>) => (clearTimeout(timer), resolve(l)) };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`${name}: no log line "${text}" within ${timeoutMs} ms${exited ? ' (the process exited)' : ''}; stderr: ${stderr.slice(-800)}`));
      }, timeoutMs);
      waiters.push(w);
    });
  };

  const handle: ProxyProcess = {
    name,
    proc,
    logs,
    waitForLog,
    get exited() {
      return exited;
    },
    async stop(timeoutMs = 10_000) {
      if (exited) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      await gone;
      clearTimeout(t);
    },
    async kill9() {
      if (exited) return;
      proc.kill('SIGKILL');
      await gone;
    },
  };
  try {
    await waitForLog('ACS listening', readyTimeoutMs);
  } catch (e) {
    await handle.kill9();
    throw e;
  }
  return handle;
}
