/**
 * Graceful shutdown of the real CLI process: work in flight (a queued RPC for an unreachable
 * device, a persistent USP Subscription) survives SIGTERM and a restart; running CWMP sessions
 * hold the drain, new Informs get 503; a second SIGTERM exits at once.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT, fixture } from '../helpers/paths.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { UspControllerClient, add, get, operate } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CLI = path.join(ROOT, 'dist', 'src', 'app', 'cli.js');
const CTL = 'proto::shutdown-test';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-shutdown-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Ports {
  acs: number;
  ws: number;
  admin: number;
}

async function writeConfig(name: string, graceMs: number, extraAcs = ''): Promise<{ file: string; ports: Ports; db: string }> {
  const ports = { acs: await freePort(), ws: await freePort(), admin: await freePort() };
  const data = path.join(dir, name);
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `dataDir: ${JSON.stringify(data)}`,
      'acs:',
      '  host: 127.0.0.1',
      `  port: ${ports.acs}`,
      '  connectionRequest: { timeoutMs: 300, retries: 0, retryDelayMs: 0, deadlineMs: 600000 }',
      ...(extraAcs ? [`  ${extraAcs}`] : []),
      'usp:',
      `  websocket: { host: 127.0.0.1, port: ${ports.ws} }`,
      'admin:',
      '  host: 127.0.0.1',
      `  port: ${ports.admin}`,
      `  shutdownGraceMs: ${graceMs}`,
      'controllers:',
      `  - endpointId: ${JSON.stringify(CTL)}`,
      '',
    ].join('\n'),
  );
  return { file, ports, db: path.join(data, 'proxy.db') };
}

class Cli {
  logs = '';
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  constructor(file: string) {
    this.proc = spawn(process.execPath, [CLI, 'start', '--config', file, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(this.proc);
    this.proc.stdout!.on('data', (c: Buffer) => (this.logs += c.toString()));
    this.proc.stderr!.on('data', (c: Buffer) => (this.logs += c.toString()));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  }
  async ready(): Promise<void> {
    await until(() => this.logs.includes('ACS listening') || this.proc.exitCode !== null, 20_000, 'ACS listening');
    assert.match(this.logs, /ACS listening/, this.logs);
  }
  /** The msg field of every JSON log line. */
  messages(): string[] {
    return this.logs.split('\n').flatMap((l) => {
      try {
        return [(JSON.parse(l) as { msg: string }).msg];
      } catch {
        return [];
      }
    });
  }
}

function endpointIds(file: string): Map<string, string> {
  const r = spawnSync(process.execPath, [CLI, 'devices', '--json', '--config', file], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { endpointId: string; deviceId: { serialNumber: string } }[];
  return new Map(rows.map((x) => [x.deviceId.serialNumber, x.endpointId]));
}

async function controller(wsPort: number, agent: string): Promise<UspControllerClient> {
  const c = new UspControllerClient({ agentId: agent, endpointId: CTL, transport: { mtp: 'ws', url: `ws://127.0.0.1:${wsPort}/usp` }, timeoutMs: 10_000 });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

const response = (m: Msg) => {
  assert.equal(m.body.msgBody, 'response', `expected a response, got ${JSON.stringify(m.body)}`);
  return m.body.response!;
};

function fleetOf(ports: Ports, count: number, bootstrap = true): Fleet {
  return new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${ports.acs}/`,
    count,
    model: 'tr181',
    serialPrefix: 'SHD',
    periodicIntervalS: null,
    bootstrap,
  });
}

test('SIGTERM with work in flight: the queued RPC and the subscription are there after restart', async () => {
  const { file, ports, db } = await writeConfig('inflight', 5000);
  const first = new Cli(file);
  await first.ready();

  const fleet = fleetOf(ports, 2);
  await fleet.start();
  const [d0, d1] = fleet.devices;
  const eids = endpointIds(file);
  const agent0 = eids.get(d0!.serial)!;
  const agent1 = eids.get(d1!.serial)!;
  assert.ok(agent0 && agent1, `both devices registered: ${[...eids]}`);

  // A persistent subscription on device 0's agent.
  const c0 = await controller(ports.ws, agent0);
  const added = await c0.request(
    add([
      {
        objPath: 'Device.LocalAgent.Subscription.',
        params: { Enable: 'true', ID: 'keep-me', NotifType: 'ValueChange', ReferenceList: 'Device.DeviceInfo.UpTime', Persistent: 'true' },
      },
    ]),
  );
  const inst = response(added).addResp!.createdObjResults[0]!.operStatus!.operSuccess!.instantiatedPath!;
  assert.match(inst, /^Device\.LocalAgent\.Subscription\.\d+\.$/);
  await c0.close();

  // The devices go away: their connection request URLs now point nowhere. A Reboot() for device 1
  // queues a Reboot that cannot be delivered before the shutdown. (A read-only RPC would not stay:
  // nobody could take its answer once the controller that asked is gone.)
  await fleet.stop();
  const c1 = await controller(ports.ws, agent1);
  const started = await c1.request(operate('Device.Reboot()', {}, { commandKey: 'shutdown-test' }), 5000);
  assert.ok(started.body.response?.operateResp, JSON.stringify(started.body));
  await c1.close();

  const t0 = Date.now();
  first.proc.kill('SIGTERM');
  const exit = await first.exited;
  assert.equal(exit.code, 0, first.logs);
  // A session cut by fleet.stop() may still be open under load: the drain then waits out the whole
  // grace period (5000 ms) before Proxy.stop() ends it, so the bound is grace + the stop itself.
  assert.ok(exit.at - t0 < 5000 + 2500, `exited within the grace period plus the stop (${exit.at - t0} ms)`);
  assert.ok(first.messages().includes('stopped'), first.logs);
  assert.match(first.logs, /shutting down/);

  // Nothing acknowledged is lost: the queue and the subscription are in the store file.
  const store = openSqliteStore(db);
  const queued = await store.listAllQueuedRpcs();
  const subs = await store.listAllSubscriptions();
  const key1 = (await store.listDevices()).find((d) => d.deviceId.serialNumber === d1!.serial)!.deviceKey;
  await store.close();
  const mine = queued.find((q) => q.deviceKey === key1);
  assert.ok(mine, `an RPC for device 1 is queued: ${JSON.stringify(queued)}`);
  assert.ok(
    subs.some((s) => s.agentEid === agent0 && s.values.ID === 'keep-me' && s.values.Persistent === 'true'),
    `subscriptions: ${JSON.stringify(subs)}`,
  );

  // Restart: the RPC is restored and delivered when the device informs; the subscription is there.
  const second = new Cli(file);
  await second.ready();
  assert.match(second.logs, /"restoredRpcs":[1-9]/, second.logs);
  const again = fleetOf(ports, 2, false);
  await again.start();
  try {
    const d1b = again.device(d1!.serial)!;
    await until(() => (d1b.stats.rpcsReceived[mine.rpc.method] ?? 0) > 0, 10_000, `the queued ${mine.rpc.method} at device 1`);
    const c0b = await controller(ports.ws, agent0);
    const g = await c0b.request(get(['Device.LocalAgent.Subscription.']));
    await c0b.close();
    const rows = response(g).getResp!.reqPathResults[0]!.resolvedPathResults;
    const row = rows.find((r) => r.resultParams.ID === 'keep-me');
    assert.ok(row, `subscription after restart: ${JSON.stringify(rows)}`);
    assert.equal(row.resultParams.Persistent, 'true');
    assert.equal(row.resolvedPath, inst);
  } finally {
    await again.stop();
  }
  second.proc.kill('SIGTERM');
  assert.equal((await second.exited).code, 0, second.logs);
  const after2 = openSqliteStore(db);
  const left = (await after2.listAllQueuedRpcs()).filter((q) => q.deviceKey === key1);
  await after2.close();
  assert.deepEqual(left, [], 'the restored RPC ran and left the queue');
});

/** One HTTP POST on a given agent (keep-alive); resolves with status, headers and body. */
function post(agent: http.Agent, port: number, body: string, cookie?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers: { 'Content-Type': 'text/xml', ...(cookie ? { Cookie: cookie } : {}) } },
      (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('a running session holds the drain; new Informs get 503; a second SIGTERM exits at once', async () => {
  const { file, ports } = await writeConfig('drain', 60_000, 'setConnectionRequestCredentials: false');
  const cli = new Cli(file);
  await cli.ready();
  const inform = readFileSync(fixture('soap', 'cpe', 'Inform.1-0.xml'), 'utf8');
  const serial = /<SerialNumber>([^<]*)<\/SerialNumber>/.exec(inform)![1]!;

  // Socket A: a complete session, then the keep-alive connection stays open and idle.
  const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const a1 = await post(a, ports.acs, inform.replace(serial, 'DRAIN-A'));
  assert.equal(a1.status, 200, a1.body);
  const cookieA = a1.headers['set-cookie']?.[0]?.split(';')[0];
  const a2 = await post(a, ports.acs, '', cookieA);
  assert.equal(a2.status, 204);

  // Socket B: a session left open (Inform answered, the CPE never sends its empty POST).
  const b = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const b1 = await post(b, ports.acs, inform.replace(serial, 'DRAIN-B'));
  assert.equal(b1.status, 200, b1.body);

  const t0 = Date.now();
  cli.proc.kill('SIGTERM');
  await until(() => cli.logs.includes('draining'), 5000, 'the drain to start');
  // No new connections ...
  await assert.rejects(new Promise((resolve, reject) => net.connect(ports.acs, '127.0.0.1').on('connect', resolve).on('error', reject)), /ECONNREFUSED/);
  // ... and a new Inform on the idle keep-alive socket is refused with 503 + Retry-After.
  const a3 = await post(a, ports.acs, inform.replace(serial, 'DRAIN-A'));
  assert.equal(a3.status, 503);
  assert.ok(Number(a3.headers['retry-after']) > 0);
  await sleep(300);
  assert.equal(cli.proc.exitCode, null, 'still draining: session B is open');

  cli.proc.kill('SIGTERM');
  const exit = await cli.exited;
  assert.equal(exit.code, 143, cli.logs);
  assert.ok(exit.at - t0 < 5000, `exited at once (${exit.at - t0} ms)`);
  assert.match(cli.logs, /second SIGTERM/);
  a.destroy();
  b.destroy();
});
