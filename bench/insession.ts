/**
 * In-session device Get, measured from outside (npm run bench:insession; issue 22 item 2): the
 * proxy, one simulated CPE and the USP controller each in its own process, over MQTT via mosquitto.
 *  - proxy: bench/insession-proxy.ts (this build, and with --main DIR a second build alongside);
 *  - CPE: bench/insession-cpe.ts, strict quirks, timestamps when each GetParameterValues arrived
 *    and when its response left (the CPE's own time, excluded);
 *  - controller: this process, a bare MQTT 5 client (TCP_NODELAY, QoS 1) sending
 *    `Get Device.DeviceInfo.SoftwareVersion`, ONE in flight: a device's CWMP session carries one
 *    RPC at a time, so a second Get in flight only waits its turn behind the first and measures
 *    the queue, not the proxy. The session is kept open between Gets (one caller request held
 *    open in the proxy child: the linger a controller's sequential Gets meet).
 * Per Get: added = controller round trip - CPE's own time (proxy + MQTT both ways); split into
 * USP Get -> GPV at the CPE and GPVResponse -> USP answer at the controller (wall clocks of two
 * processes); the MQTT share is the echo responder's round trip (bench/child-proxy.ts echo, the
 * same broker and controller), measured right before each side, and the proxy alone = added - echo.
 * With --main DIR (a built main checkout's dist/), paired rounds (bench/paired.ts) this build vs it.
 *   node dist/bench/insession.js [--main DIR] [--rounds R] [--gets N] [--warmup W] [--prof DIR] [--quick]
 *     [--a-config JSON] [--b-config JSON]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { MqttClient } from 'mqtt';
import { get as getMsg } from '../src/tools/controller/client.js';
import { encodeRecord, noSessionRecord, type Msg } from '../src/usp/codec/record.js';
import { connectMqtt5, onUspMsg } from './mqtt-peer.js';
import { startMosquitto } from '../test/helpers/brokers.js';
import { idleCheck, median, paired } from './paired.js';

const { values } = parseArgs({
  options: {
    main: { type: 'string', default: '' },
    rounds: { type: 'string', default: '6' },
    gets: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '300' },
    prof: { type: 'string', default: '' },
    // Extra proxy settings (JSON, as BENCH_PROXY_CONFIG) for side A only and side B only: a setting
    // compared in paired rounds (--main with this build's dist/ for the same code on both sides).
    'a-config': { type: 'string', default: '' },
    'b-config': { type: 'string', default: '' },
    quick: { type: 'boolean', default: false },
  },
});
const QUICK = values.quick;
const ROUNDS = Number(QUICK ? 2 : values.rounds);
const GETS = Number(QUICK ? 500 : values.gets);
const WARMUP = Number(values.warmup);
const CTL = 'proto::bench-insession';
const PARAM = 'Device.DeviceInfo.SoftwareVersion';
const here = path.dirname(fileURLToPath(import.meta.url));
const thisRoot = path.resolve(here, '..');

const wall = (): number => performance.timeOrigin + performance.now();
const q = (xs: number[], p: number): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const f2 = (x: number): string => x.toFixed(2);

interface Child {
  proc: ChildProcess;
  ask(cmd: string, extra?: object): Promise<Record<string, unknown>>;
}
/** Forks a bench child and waits for its `ready` message. */
function child(script: string, args: string[], execArgv: string[] = [], config = ''): Promise<Child & { ready: Record<string, unknown> }> {
  const env = config ? { ...process.env, BENCH_PROXY_CONFIG: config } : process.env;
  const proc = fork(path.join(here, script), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv, env });
  const waiting = new Map<string, (m: Record<string, unknown>) => void>();
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
    proc.on('message', (m: Record<string, unknown>) => {
      if (m.cmd === 'error') return reject(new Error(`${script}: ${String(m.message)}`));
      if (m.cmd === 'ready')
        return resolve({
          proc,
          ready: m,
          ask: (cmd, extra) =>
            new Promise((r) => {
              waiting.set(cmd, r);
              proc.send({ cmd, ...extra });
            }),
        });
      const w = waiting.get(m.cmd as string);
      waiting.delete(m.cmd as string);
      w?.(m);
    });
  });
}

/** The controller: MQTT 5, TCP_NODELAY, QoS 1 both ways, one Get at a time. */
class Controller {
  private c: MqttClient | undefined;
  private readonly waiting = new Map<string, (m: Msg) => void>();
  private seq = 0;
  constructor(private readonly url: string) {}

  async connect(replyTopics: string[]): Promise<void> {
    const c = await connectMqtt5(this.url);
    this.c = c;
    onUspMsg(c, (msg) => {
      const w = this.waiting.get(msg.header.msgId);
      this.waiting.delete(msg.header.msgId);
      w?.(msg);
    });
    for (const t of replyTopics) await c.subscribeAsync(t, { qos: 1 });
  }

  /** One Get; its send and answer times (wall clock, ms). Throws on an error or an empty answer. */
  async get(topic: string, replyTopic: string, toId: string): Promise<[number, number]> {
    const msg = getMsg([PARAM]);
    msg.header.msgId = `i-${++this.seq}`;
    const bytes = Buffer.from(encodeRecord(noSessionRecord(CTL, toId, msg)));
    const answer = new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Get to ${toId} on ${topic} unanswered after 30 s`)), 30_000);
      this.waiting.set(msg.header.msgId, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
    const t0 = wall();
    this.c!.publish(topic, bytes, { qos: 1, properties: { responseTopic: replyTopic, contentType: 'usp.msg' } });
    const m = await answer;
    const t1 = wall();
    const r = m.body.response?.getResp?.reqPathResults[0];
    if (m.body.error || !r || r.errCode || r.resolvedPathResults.length === 0) throw new Error(`Get failed: ${JSON.stringify(m.body)}`);
    return [t0, t1];
  }

  close(): Promise<void> {
    return this.c!.endAsync(true);
  }
}

interface Run {
  /** Per Get (ms): controller round trip - CPE's own time, and its parts. */
  added: number[];
  rtt: number[];
  cpe: number[];
  out: number[];
  ret: number[];
  echo: number[];
  cpuUs: number;
}
const p50 = (xs: number[]): number => q(xs, 50);

/** One build's proxy with its own simulated CPE and MQTT topics. */
async function side(label: string, root: string, mosqUrl: string, ctl: Controller, prof: string, config: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `cup-bench-insession-${label}-`));
  const agentTopic = `/usp/insession-${label}`;
  const replyTopic = `/usp/insession-ctl-${label}`;
  const proxy = await child(
    'insession-proxy.js',
    [root, dir, mosqUrl, agentTopic, CTL, replyTopic],
    prof ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${prof}`] : [],
    config,
  );
  const cpe = await child('insession-cpe.js', [`http://127.0.0.1:${proxy.ready.port as number}/`, `INS${label.toUpperCase()}0001`]);
  const toId = (await proxy.ask('hold', { deviceKey: cpe.ready.deviceKey })).endpointId as string;
  return {
    label,
    replyTopic,
    async run(echoTopic: string): Promise<Run> {
      // Echo first (the MQTT share, under the same conditions), then warm-up (the session may have
      // ended while the other build was measured), then the measured Gets.
      const echo: number[] = [];
      for (let i = 0; i < Math.min(GETS, 1000); i++) {
        const [t0, t1] = await ctl.get(echoTopic, replyTopic, toId);
        echo.push(t1 - t0);
      }
      for (let i = 0; i < WARMUP; i++) await ctl.get(agentTopic, replyTopic, toId);
      await cpe.ask('take');
      const c0 = (await proxy.ask('cpu')).us as number;
      const sent: [number, number][] = [];
      for (let i = 0; i < GETS; i++) sent.push(await ctl.get(agentTopic, replyTopic, toId));
      const c1 = (await proxy.ask('cpu')).us as number;
      const gpv = (await cpe.ask('take')).gpv as [number, number][];
      if (gpv.length !== GETS) throw new Error(`${label}: ${GETS} Gets but ${gpv.length} GetParameterValues at the CPE: not one RPC per Get in session`);
      const r: Run = { added: [], rtt: [], cpe: [], out: [], ret: [], echo, cpuUs: (c1 - c0) / GETS };
      sent.forEach(([t0, t1], i) => {
        const [a, b] = gpv[i]!;
        r.rtt.push(t1 - t0);
        r.cpe.push(b - a);
        r.added.push(t1 - t0 - (b - a));
        r.out.push(a - t0);
        r.ret.push(t1 - b);
      });
      return r;
    },
    async stop(): Promise<void> {
      for (const c of [cpe, proxy]) {
        const exited = new Promise((r) => c.proc.once('exit', r));
        c.proc.send({ cmd: 'stop' });
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const show = (r: Run): string =>
  `added p50 ${f2(p50(r.added))} ms p99 ${f2(q(r.added, 99))} (round trip ${f2(p50(r.rtt))}, CPE own ${f2(p50(r.cpe))}; ` +
  `Get -> GPV at CPE ${f2(p50(r.out))}, GPVResponse -> answer ${f2(p50(r.ret))}); echo ${f2(p50(r.echo))}; proxy alone ${f2(p50(r.added) - p50(r.echo))}; CPU ${r.cpuUs.toFixed(0)} us/Get`;

const cpus = os.cpus();
console.log(
  `insession bench on ${cpus.length} x ${cpus[0]?.model.trim() ?? '?'}, Node ${process.version}; load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}; proxy, 1 simulated TR-181 CPE (strict quirks) and the controller in 3 processes over MQTT 5 (mosquitto, QoS 1, TCP_NODELAY); ` +
    `Get ${PARAM}, 1 in flight (the CWMP session is serial), ${GETS} Gets per side per round after ${WARMUP} warm-up and one unmeasured round; echo responder on the same broker for the MQTT share`,
);
const mosq = await startMosquitto();
if (!mosq) throw new Error('mosquitto is not installed');
const echo = await child('child-proxy.js', ['echo', mosq.url, '/usp/insession-echo']);
const ctl = new Controller(mosq.url);
const sides = [await side('a', thisRoot, mosq.url, ctl, values.prof, values['a-config']!)];
if (values.main) sides.push(await side('b', path.resolve(values.main), mosq.url, ctl, '', values['b-config']!));
await ctl.connect(sides.map((s) => s.replyTopic));
try {
  // One unmeasured round per side first: the first round ran 30-60% more CPU per Get than the
  // next ones (the JIT), whichever build it was.
  for (const s of sides) await s.run('/usp/insession-echo');
  if (sides.length === 2) {
    const res = await paired<Run>({
      title: `in-session Get added p50 (lower is better), this build${values['a-config'] ? ` with ${values['a-config']}` : ''} vs ${values.main}${values['b-config'] ? ` with ${values['b-config']}` : ''}`,
      rounds: ROUNDS,
      a: { label: 'this build', run: () => sides[0]!.run('/usp/insession-echo') },
      b: { label: '--main build', run: () => sides[1]!.run('/usp/insession-echo') },
      value: (r) => p50(r.added),
      show,
    });
    for (const [name, rs] of [
      ['this build', res.a],
      ['--main build', res.b],
    ] as const) {
      const added = rs.map((r) => p50(r.added));
      const alone = rs.map((r) => p50(r.added) - p50(r.echo));
      console.log(
        `${name}: in-session Get added (proxy + MQTT both ways) p50 median ${f2(median(added))} ms (rounds ${f2(Math.min(...added))}-${f2(Math.max(...added))}), ` +
          `p99 median ${f2(median(rs.map((r) => q(r.added, 99))))}; MQTT both ways (echo round trip) p50 median ${f2(median(rs.map((r) => p50(r.echo))))}; ` +
          `proxy alone p50 median ${f2(median(alone))} ms (${f2(Math.min(...alone))}-${f2(Math.max(...alone))}; target <= 0.5); CPU ${median(rs.map((r) => r.cpuUs)).toFixed(0)} us/Get`,
      );
    }
  } else {
    const rs: Run[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await idleCheck({ label: `round ${i + 1}` });
      rs.push(await sides[0]!.run('/usp/insession-echo'));
      console.log(`  round ${i + 1}: ${show(rs[i]!)}`);
    }
    const added = rs.map((r) => p50(r.added));
    const alone = rs.map((r) => p50(r.added) - p50(r.echo));
    console.log(
      `in-session Get added (proxy + MQTT both ways) p50 median ${f2(median(added))} ms (${f2(Math.min(...added))}-${f2(Math.max(...added))}); ` +
        `MQTT both ways p50 median ${f2(median(rs.map((r) => p50(r.echo))))}; proxy alone p50 median ${f2(median(alone))} ms (${f2(Math.min(...alone))}-${f2(Math.max(...alone))}; target <= 0.5)`,
    );
  }
  console.log(
    `load average after: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
} finally {
  await ctl.close();
  for (const s of sides) await s.stop();
  echo.proc.kill();
  await mosq.stop();
}
