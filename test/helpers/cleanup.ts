/**
 * Children of tests and benchmarks (brokers, Redis, nginx, proxy instances) run in their own
 * process groups with state in temp folders. Registered here, they are killed and removed when
 * this process exits, also on a signal: node --test ends a timed-out file with SIGTERM, and
 * 'exit' does not run on a signal death. One module, so one set of handlers per process.
 */
import { rmSync } from 'node:fs';

/** Process group ids still alive. */
export const liveGroups = new Set<number>();
/** Temp state folders still in use. */
export const liveDirs = new Set<string>();

function killAllNow(): void {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  liveGroups.clear();
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  liveDirs.clear();
}
process.once('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    killAllNow();
    process.kill(process.pid, sig);
  });
}

/**
 * Stops a child's process group: SIGTERM, SIGKILL after graceMs if the leader has not exited,
 * then SIGKILL to anything of the group that outlived it (workers); unregisters the group.
 */
export async function stopGroup(
  child: { pid?: number; exitCode: number | null; signalCode: NodeJS.Signals | null; once(ev: 'exit', fn: () => void): unknown },
  graceMs = 5000,
): Promise<void> {
  const pid = child.pid;
  if (!pid) return;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    signalGroup(pid, 'SIGTERM');
    const t = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  }
  signalGroup(pid, 'SIGKILL');
  liveGroups.delete(pid);
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    /* gone */
  }
}
