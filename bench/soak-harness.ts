/**
 * Load and soak harness (npm run soak, test/integration/soak-short.test.ts): the proxy in a child
 * process (bench/child-proxy.ts `soak` mode, MQTT to a broker, one full controller), a Fleet of
 * simulated TR-181 CPE with a periodic Inform in this process, and a UspControllerClient over MQTT
 * issuing a steady mix of Get / Set / Operate(IPPing) spread round-robin over the agents at a fixed
 * rate. A second MQTT client taps the controller topic so that every response's from_id is
 * checked against the agent its request went to (the client itself matches by msg_id only).
 *
 * Every `reportEveryS` one line: requests, errors by kind, p50/p99 latency, proxy RSS and heap
 * (after a forced GC). At the end: lost (no response within the timeout, or not sent), misrouted
 * (wrong from_id, wrong response type, duplicate or unexpected msg_id), the RSS slope over the
 * samples after the first (warm-up), and a verdict.
 */
import os from 'node:os';
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { Fleet } from '../src/tools/sim/fleet.js';
import { UspControllerClient, get, set, operate, UspTransportError } from '../src/tools/controller/client.js';
import { decodeMsg, decodeRecord, type Msg, type MsgType } from '../src/usp/codec/record.js';
import { STRICT_SIM } from '../test/helpers/sim.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface SoakOptions {
  mqttUrl: string;
  devices: number;
  durationS: number;
  /** Requests per second, fleet-wide. */
  rate: number;
  reportEveryS?: number;
  /** Per-request timeout (ms); a request unanswered by then is "lost". */
  timeoutMs?: number;
  /** Fleet sessions in flight at once. */
  concurrency?: number;
  periodicIntervalS?: number;
  /** Percentages of Get and Set; the rest are Operate IPPing(). */
  mix?: { get: number; set: number };
  log?: (line: string) => void;
}

export interface SoakSample {
  atMin: number;
  requests: number;
  answered: number;
  errors: Record<string, number>;
  p50: number;
  p99: number;
  rss: number;
  heap: number;
  informs: number;
}

export interface SoakResult {
  requests: number;
  answered: number;
  ok: number;
  lost: number;
  misrouted: number;
  /** Error Msgs without an error code (a device-side failure must carry one). */
  uncoded: number;
  errors: Record<string, number>;
  misroutedExamples: string[];
  p50: number;
  p99: number;
  samples: SoakSample[];
  rssSlopeMiBPerMin: number;
  heapSlopeMiBPerMin: number;
  memoryFlat: boolean;
  verdict: string;
}

interface Child {
  proc: ChildProcess;
  port: number;
  ask(cmd: string, extra?: Record<string, unknown>): Promise<Record<string, unknown>>;
}

function startChild(args: string[]): Promise<Child> {
  const proc = fork(path.join(here, 'child-proxy.js'), args, { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    const waiting = new Map<string, (m: Record<string, unknown>) => void>();
    const child: Child = {
      proc,
      port: 0,
      ask(cmd, extra = {}) {
        return new Promise((r) => {
          waiting.set(cmd, r);
          proc.send({ cmd, ...extra });
        });
      },
    };
    proc.once('exit', (code) => reject(new Error(`proxy child exited (${code}) before it was ready`)));
    proc.on('message', (m: Record<string, unknown>) => {
      if (m.cmd === 'ready') {
        child.port = m.port as number;
        resolve(child);
      } else if (m.cmd === 'error') {
        reject(new Error(String(m.message)));
        console.error('proxy child error:', m.message);
      } else {
        const w = waiting.get(m.cmd as string);
        waiting.delete(m.cmd as string);
        w?.(m);
      }
    });
  });
}

async function stopChild(c: Child): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const exited = new Promise((r) => c.proc.once('exit', r));
  const t = setTimeout(() => c.proc.kill('SIGKILL'), 15_000);
  c.proc.send({ cmd: 'stop' });
  await exited;
  clearTimeout(t);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Least-squares slope of y over x; NaN with fewer than two points. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

const MiB = 1048576;
const fmt = (n: number, d = 1): string => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const kinds = (e: Record<string, number>): string => {
  const k = Object.keys(e).sort();
  return k.length ? k.map((x) => `${x}=${e[x]}`).join(' ') : 'none';
};

const RESP_TYPE: Partial<Record<MsgType, MsgType>> = { GET: 'GET_RESP', SET: 'SET_RESP', OPERATE: 'OPERATE_RESP' };

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const reportEveryS = o.reportEveryS ?? 60;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const mix = o.mix ?? { get: 70, set: 20 };
  const CTL = 'proto::soak-ctl';
  const CTL_TOPIC = '/usp/soak-ctl';
  const AGENT_TOPIC = '/usp/soak-agent';
  const OUI = '00C0DE';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-soak-'));
  let child: Child | null = null;
  let fleet: Fleet | null = null;
  let client: UspControllerClient | null = null;
  let tap: mqtt.MqttClient | null = null;
  try {
    child = await startChild(['soak', dir, o.mqttUrl, CTL, CTL_TOPIC, AGENT_TOPIC]);
    const c = child;
    fleet = new Fleet({
      quirks: STRICT_SIM,
      acsUrl: `http://127.0.0.1:${c.port}/`,
      count: o.devices,
      model: 'tr181',
      serialPrefix: 'SOAK',
      oui: OUI,
      periodicIntervalS: o.periodicIntervalS ?? 60,
      concurrency: o.concurrency ?? 100,
      timers: { rebootDelayMs: 200, transferDelayMs: 200, diagnosticsDelayMs: 200 },
      onProgress: (done, total) => {
        if (done % Math.max(1, Math.floor(total / 4)) === 0 && done < total) log(`# booting: ${done} of ${total} devices`);
      },
    });
    const tBoot = performance.now();
    await fleet.start();
    const agents = fleet.devices.map((d) => `os::${OUI}-${d.serial}`);
    // Every agent is known to the proxy once its device has informed.
    for (let i = 0; ; i++) {
      const s = await c.ask('usp-stats');
      if ((s.agents as number) >= o.devices) break;
      if (i > 300) throw new Error(`only ${s.agents} of ${o.devices} agents registered`);
      await sleep(100);
    }
    const base = await c.ask('stats', { gc: true });
    log(
      `# booted ${o.devices} devices in ${fmt((performance.now() - tBoot) / 1000)} s; proxy RSS ${fmt((base.rss as number) / MiB)} MiB heap ${fmt((base.heapUsed as number) / MiB)} MiB; ` +
        `load: ${o.rate} req/s for ${fmt(o.durationS, 0)} s (Get ${mix.get}% / Set ${mix.set}% / Operate IPPing() ${100 - mix.get - mix.set}%), timeout ${timeoutMs} ms, periodic Inform ${o.periodicIntervalS ?? 60} s`,
    );

    // The tap: a copy of every Record published to the controller topic.
    const seen = new Map<string, { fromId: string; msgType: string }[]>();
    const stray: string[] = [];
    const tp = mqtt.connect(o.mqttUrl, { protocolVersion: 5, reconnectPeriod: 0, clean: true });
    tap = tp;
    await new Promise<void>((resolve, reject) => {
      tp.once('connect', () => resolve());
      tp.once('error', reject);
    });
    tp.on('message', (_topic, payload) => {
      try {
        const rec = decodeRecord(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
        if (rec.toId !== CTL || rec.recordType.kind !== 'noSessionContext') return;
        const m = decodeMsg(rec.recordType.payload);
        if (m.body.msgBody === 'request') return; // Notify and the like: not answers
        const l = seen.get(m.header.msgId);
        if (l) l.push({ fromId: rec.fromId, msgType: m.header.msgType });
        else seen.set(m.header.msgId, [{ fromId: rec.fromId, msgType: m.header.msgType }]);
      } catch (err) {
        stray.push(`undecodable record on controller topic: ${(err as Error).message}`);
      }
    });
    await tp.subscribeAsync(CTL_TOPIC, { qos: 1 });

    client = new UspControllerClient({
      agentId: agents[0]!,
      endpointId: CTL,
      transport: { mtp: 'mqtt', url: o.mqttUrl, controllerTopic: CTL_TOPIC, agentTopic: AGENT_TOPIC },
      timeoutMs,
    });
    client.on('error', () => undefined);
    await client.connect();
    const cl = client;

    // Round-robin over a shuffled agent order: one agent rarely has two requests in flight.
    const order = agents.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const sent = new Map<string, { agent: string; type: MsgType }>();
    const totalErrors: Record<string, number> = {};
    let interval = { requests: 0, answered: 0, errors: {} as Record<string, number>, lat: [] as number[] };
    const allLat: number[] = [];
    let requests = 0;
    let answered = 0;
    let ok = 0;
    let lost = 0;
    let uncoded = 0;
    let misrouted = 0;
    const misroutedExamples: string[] = [];
    const bump = (k: string): void => {
      totalErrors[k] = (totalErrors[k] ?? 0) + 1;
      interval.errors[k] = (interval.errors[k] ?? 0) + 1;
    };
    const misroute = (why: string): void => {
      misrouted++;
      bump('misrouted');
      if (misroutedExamples.length < 10) misroutedExamples.push(why);
    };
    const inflight = new Set<Promise<void>>();
    let seq = 0;

    const issue = (): void => {
      const n = seq++;
      const agent = agents[order[n % order.length]!]!;
      const roll = Math.random() * 100;
      let msg: Msg;
      if (roll < mix.get) msg = get(['Device.DeviceInfo.UpTime']);
      else if (roll < mix.get + mix.set) msg = set([{ objPath: 'Device.DeviceInfo.', params: { ProvisioningCode: `soak-${n}` }, required: true }]);
      else msg = operate('Device.IP.Diagnostics.IPPing()', { Host: '127.0.0.1', NumberOfRepetitions: '1' }, { commandKey: `soak-${n}`, sendResp: true });
      const msgId = cl.nextMsgId();
      msg = { ...msg, header: { ...msg.header, msgId } };
      sent.set(msgId, { agent, type: msg.header.msgType });
      requests++;
      interval.requests++;
      const t0 = performance.now();
      const p = cl.request(msg, timeoutMs, agent).then(
        (r) => {
          const ms = performance.now() - t0;
          answered++;
          interval.answered++;
          interval.lat.push(ms);
          allLat.push(ms);
          if (r.header.msgId !== msgId) misroute(`${msgId}: answered with msg_id ${r.header.msgId}`);
          if (r.body.msgBody === 'error' || r.header.msgType === 'ERROR') {
            const code = r.body.error?.errCode;
            if (!code) {
              uncoded++;
              bump('usp-error-without-code');
            } else bump(`usp-${code}`);
            return;
          }
          if (r.header.msgType !== RESP_TYPE[msg.header.msgType]) {
            misroute(`${msgId}: ${msg.header.msgType} answered with ${r.header.msgType}`);
            return;
          }
          const op = r.body.response?.operateResp?.operationResults[0];
          if (op?.operationResp === 'cmdFailure') {
            bump(`operate-cmdFailure-${op.cmdFailure?.errCode ?? 0}`);
            return;
          }
          ok++;
        },
        (e: unknown) => {
          lost++;
          const m = (e as Error).message ?? '';
          bump(e instanceof UspTransportError && /within \d+ ms/.test(m) ? 'timeout' : 'send-failed');
        },
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    };

    const samples: SoakSample[] = [];
    let lastSessions = fleet.totals().sessions;
    const tStart = performance.now();
    const endAt = tStart + o.durationS * 1000;
    let nextReport = tStart + reportEveryS * 1000;
    let issued = 0;
    const report = async (): Promise<void> => {
      const s = await c.ask('stats', { gc: true });
      const lat = Float64Array.from(interval.lat).sort();
      const tot = fleet!.totals();
      const atMin = (performance.now() - tStart) / 60_000;
      const sample: SoakSample = {
        atMin,
        requests: interval.requests,
        answered: interval.answered,
        errors: interval.errors,
        p50: percentile(lat, 0.5),
        p99: percentile(lat, 0.99),
        rss: s.rss as number,
        heap: s.heapUsed as number,
        informs: tot.sessions - lastSessions,
      };
      lastSessions = tot.sessions;
      samples.push(sample);
      log(
        `[${fmt(atMin, 1)} min] requests ${sample.requests} answered ${sample.answered} (total ${requests}, in flight ${inflight.size}) errors: ${kinds(sample.errors)}; ` +
          `p50 ${fmt(sample.p50, 0)} ms p99 ${fmt(sample.p99, 0)} ms; proxy RSS ${fmt(sample.rss / MiB)} MiB heap ${fmt(sample.heap / MiB)} MiB; CWMP sessions ${sample.informs} (failed total ${tot.failed})`,
      );
      interval = { requests: 0, answered: 0, errors: {}, lat: [] };
    };

    while (performance.now() < endAt) {
      const now = performance.now();
      const due = Math.floor(((Math.min(now, endAt) - tStart) / 1000) * o.rate);
      while (issued < due) {
        issue();
        issued++;
      }
      if (now >= nextReport) {
        nextReport += reportEveryS * 1000;
        await report();
      }
      await sleep(20);
    }
    // Drain: every request answered or timed out, then the tap's copies.
    while (inflight.size > 0) await Promise.race([...inflight, sleep(1000)]);
    await sleep(1000);
    if (interval.requests > 0 || samples.length === 0) await report();

    // from_id and type checks, from the tap's copies.
    for (const [id, s] of sent) {
      const copies = seen.get(id);
      seen.delete(id);
      if (!copies) continue; // lost (counted from the client's timeout) or answered unseen by the tap
      if (copies.length > 1) misroute(`${id}: ${copies.length} responses`);
      for (const cp of copies) {
        if (cp.fromId !== s.agent) misroute(`${id}: sent to ${s.agent}, answered from ${cp.fromId}`);
        if (cp.msgType !== 'ERROR' && cp.msgType !== RESP_TYPE[s.type]) misroute(`${id}: ${s.type} answered with ${cp.msgType}`);
      }
    }
    for (const [id, cps] of seen) misroute(`unexpected response msg_id ${id} from ${cps[0]!.fromId}`);
    for (const s of stray) misroute(s);

    const sorted = Float64Array.from(allLat).sort();
    const after = samples.slice(1);
    const rssSlope = slope(
      after.map((s) => s.atMin),
      after.map((s) => s.rss / MiB),
    );
    const heapSlope = slope(
      after.map((s) => s.atMin),
      after.map((s) => s.heap / MiB),
    );
    const meanRss = after.length ? after.reduce((a, s) => a + s.rss, 0) / after.length / MiB : NaN;
    // A slope over less than a minute of samples is noise (the short test): not judged.
    const judged = Number.isFinite(rssSlope) && after[after.length - 1]!.atMin - after[0]!.atMin >= 0.99;
    const memoryFlat = !judged || rssSlope <= Math.max(1, 0.005 * meanRss);
    const pass = lost === 0 && misrouted === 0 && uncoded === 0 && memoryFlat;
    const verdict = `${pass ? 'PASS' : 'FAIL'}: ${requests} requests, ${ok} ok, ${answered - ok} answered with an error, lost ${lost}, misrouted ${misrouted}, uncoded errors ${uncoded}; memory ${
      judged ? (memoryFlat ? 'flat' : 'GROWING') : 'not judged (less than a minute of samples after warm-up)'
    }`;
    log(`# totals: errors ${kinds(totalErrors)}; p50 ${fmt(percentile(sorted, 0.5), 0)} ms p99 ${fmt(percentile(sorted, 0.99), 0)} ms`);
    if (misroutedExamples.length) log(`# misrouted examples: ${misroutedExamples.join('; ')}`);
    log(`# RSS slope after warm-up (${after.length} samples): ${fmt(rssSlope, 2)} MiB/min (heap ${fmt(heapSlope, 2)} MiB/min, mean RSS ${fmt(meanRss)} MiB)`);
    log(`# verdict: ${verdict}`);
    return {
      requests,
      answered,
      ok,
      lost,
      misrouted,
      uncoded,
      errors: totalErrors,
      misroutedExamples,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      samples,
      rssSlopeMiBPerMin: rssSlope,
      heapSlopeMiBPerMin: heapSlope,
      memoryFlat,
      verdict,
    };
  } finally {
    await client?.close().catch(() => undefined);
    await tap?.endAsync(true).catch(() => undefined);
    await fleet?.stop().catch(() => undefined);
    if (child) await stopChild(child).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
