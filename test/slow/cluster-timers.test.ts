/**
 * Slow suite: the cluster's membership timers at their defaults (heartbeat 1 s, an instance
 * silent for 5 s is dead), once; the other cluster tests run them short. Three instances on one
 * Redis in their own processes: one killed with SIGKILL is taken over by a survivor within the
 * TTL plus a heartbeat; one stopped cleanly (its liveness key deleted) at the next heartbeat.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/app/config.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-cluster-slow-'));
let redis: RedisHandle | null = null;
const procs: ProxyProcess[] = [];

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function config(name: string): Record<string, unknown> {
  mkdirSync(path.join(dir, name), { recursive: true });
  return {
    dataDir: path.join(dir, name),
    acs: { host: '127.0.0.1', port: 0 },
    usp: { websocket: { enabled: false } },
    store: { redis: { url: redis!.url } },
    cluster: { instanceId: name },
    admin: { enabled: false },
    log: { level: 'info' },
  };
}

test('default membership timers: a SIGKILLed instance is taken over after ~5 s, a stopped one at once', { timeout: 90_000 }, async (t) => {
  redis = await startRedis();
  if (!redis) return t.skip('redis-server not installed (apt-get install redis-server; .ci/run does)');
  const defaults = loadConfig({ env: {} }).cluster;
  assert.equal(defaults.heartbeatMs, 1000);
  assert.equal(defaults.instanceTtlMs, 5000);
  const [a, b, c] = await Promise.all(['slow-a', 'slow-b', 'slow-c'].map((n) => startProxyProcess(n, config(n), dir)));
  procs.push(a!, b!, c!);
  await new Promise((r) => setTimeout(r, 1500)); // every instance has beaten at least once

  const killedAt = Date.now();
  await b!.kill9();
  const line = await Promise.race([a!, c!].map((p) => p.waitForLog('took over the work of a stopped instance', 15_000)));
  const after = Date.now() - killedAt;
  assert.equal(line.instance, 'slow-b');
  assert.ok(after >= 3_500 && after <= 10_000, `taken over ${after} ms after the kill (TTL 5 s, heartbeat 1 s)`);
  t.diagnostic(`SIGKILL -> takeover: ${after} ms`);

  // A clean stop deletes the liveness key: the next heartbeat of a survivor takes over.
  const stoppedAt = Date.now();
  await c!.stop();
  const taken = await waitForTakeover(a!, 'slow-c', 5_000);
  assert.equal(taken.instance, 'slow-c');
  const after2 = Date.now() - stoppedAt;
  assert.ok(after2 <= 3_500, `clean stop handed over ${after2} ms after the stop began`);
  t.diagnostic(`clean stop -> takeover: ${after2} ms`);
});

/** The takeover line of a given instance (waitForLog matches by message only). */
async function waitForTakeover(p: ProxyProcess, instance: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const hit = p.logs.find((l) => String(l.msg ?? '').includes('took over the work') && l.instance === instance);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no takeover of ${instance} logged by ${p.name} within ${timeoutMs} ms`);
}
