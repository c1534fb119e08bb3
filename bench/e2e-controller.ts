/**
 * The USP controller of bench:e2e's idle-device passes in a process of its own (`--idle-controller
 * process`), as a deployed controller is: the proxy process then carries only the proxy's work.
 * Driven over IPC by bench/e2e.ts: `pass` runs one pass (each endpoint asked once, `inflight` at
 * a time) and answers every Get's send and answer time on the wall clock (performance.timeOrigin
 * + now, comparable across processes of one machine) and this process's CPU time.
 *   node dist/bench/e2e-controller.js <ws url> <controller endpoint id> <an agent endpoint id>
 */
import { performance } from 'node:perf_hooks';
import { get as getMsg, UspControllerClient } from '../src/tools/controller/client.js';
import type { Msg } from '../src/usp/codec/record.js';

export interface PassCommand {
  cmd: 'pass';
  eids: string[];
  inflight: number;
  param: string;
}
export interface PassResult {
  /** Per endpoint (same order as eids): sent and answered, wall-clock ms; NaN when it failed. */
  sent: number[];
  answered: number[];
  failed: number;
  /** This process's CPU time over the pass (user + system, ms). */
  cpuMs: number;
}

const [url, ctl, agent] = process.argv.slice(2);
if (!url || !ctl || !agent || !process.send) throw new Error('usage: e2e-controller.js <ws url> <controller id> <agent id> (child of bench/e2e.js)');
const client = new UspControllerClient({ agentId: agent, endpointId: ctl, transport: { mtp: 'ws', url, shared: true }, timeoutMs: 60_000 });
await client.connect();
const wall = (): number => performance.timeOrigin + performance.now();

function ok(m: Msg): boolean {
  const r = m.body.response?.getResp?.reqPathResults[0];
  return !m.body.error && !!r && !r.errCode && r.resolvedPathResults.length > 0;
}

async function pass(c: PassCommand): Promise<PassResult> {
  const sent = c.eids.map(() => Number.NaN);
  const answered = c.eids.map(() => Number.NaN);
  let next = 0;
  let failed = 0;
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: c.inflight }, async () => {
      while (next < c.eids.length) {
        const i = next++;
        sent[i] = wall();
        try {
          if (ok(await client.request(getMsg([c.param]), 60_000, c.eids[i]))) answered[i] = wall();
          else failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  const u = process.cpuUsage(c0);
  return { sent, answered, failed, cpuMs: (u.user + u.system) / 1000 };
}

process.on('message', (m: PassCommand | { cmd: 'close' }) => {
  if (m.cmd === 'close') {
    void client.close().then(() => process.exit(0));
    return;
  }
  void pass(m).then((r) => process.send!(r));
});
process.send({ ready: true });
