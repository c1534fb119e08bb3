/**
 * kill -9 of the real CLI process in the middle of traffic (reliability issue). Kept across the
 * crash (SQLite WAL, synchronous=NORMAL: a committed transaction survives a process crash):
 * queued RPCs, Persistent subscriptions, and unacknowledged send_resp Notifies (NotifRetry).
 *
 * Also kept: Device.LocalAgent.Request.{i} rows of async commands (a restored Reboot finishes with
 * OperationComplete when the device boots; other commands finish with 7022 "outcome unknown").
 * NOT kept:
 *  - CWMP sessions and USP requests in flight at the moment of the kill: their controllers see a
 *    timeout / closed connection. An RPC that had been sent is marked so in the store before its
 *    bytes left; after restart it is finished with 7022 "outcome unknown" instead of being sent
 *    again (at-most-once), except read-only ones (GetParameterValues/Names/Attributes), re-sent.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers/paths.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { UspControllerClient, add, get, operate, set } from '../../src/tools/controller/client.js';
import type { Msg } from '../../src/usp/codec/record.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CLI = path.join(ROOT, 'dist', 'src', 'app', 'cli.js');
const CTL = 'proto::kill9-a';
const CTL_B = 'proto::kill9-b';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-kill9-'));
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

class Cli {
  logs = '';
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  constructor(file: string) {
    this.proc = spawn(process.execPath, [CLI, 'start', '--config', file, '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(this.proc);
    this.proc.stdout!.on('data', (c: Buffer) => (this.logs += c.toString()));
    this.proc.stderr!.on('data', (c: Buffer) => (this.logs += c.toString()));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
  }
  async ready(): Promise<void> {
    await until(() => this.logs.includes('ACS listening') || this.proc.exitCode !== null, 20_000, 'ACS listening');
    assert.match(this.logs, /ACS listening/, this.logs);
  }
  count(re: RegExp): number {
    return this.logs.match(new RegExp(re.source, 'g'))?.length ?? 0;
  }
}

const response = (m: Msg) => {
  assert.equal(m.body.msgBody, 'response', `expected a response, got ${JSON.stringify(m.body)}`);
  return m.body.response!;
};

test('kill -9 in the middle of traffic: queued RPCs, persistent subscriptions and unacknowledged notifications survive', async (t) => {
  const ports = { acs: await freePort(), ws: await freePort(), admin: await freePort() };
  const data = path.join(dir, 'data');
  const file = path.join(dir, 'proxy.yaml');
  writeFileSync(
    file,
    [
      `dataDir: ${JSON.stringify(data)}`,
      'acs:',
      '  host: 127.0.0.1',
      `  port: ${ports.acs}`,
      '  connectionRequest: { timeoutMs: 300, retries: 0, retryDelayMs: 0, deadlineMs: 600000 }',
      'usp:',
      `  websocket: { host: 127.0.0.1, port: ${ports.ws} }`,
      'admin:',
      '  host: 127.0.0.1',
      `  port: ${ports.admin}`,
      'controllers:',
      `  - endpointId: ${JSON.stringify(CTL)}`,
      `  - endpointId: ${JSON.stringify(CTL_B)}`,
      '',
    ].join('\n'),
  );
  const db = path.join(data, 'proxy.db');
  const clients: UspControllerClient[] = [];
  const controller = async (agent: string, eid = CTL) => {
    const c = new UspControllerClient({ agentId: agent, endpointId: eid, transport: { mtp: 'ws', url: `ws://127.0.0.1:${ports.ws}/usp` }, timeoutMs: 10_000 });
    c.on('error', () => undefined);
    clients.push(c);
    await c.connect();
    return c;
  };

  const first = new Cli(file);
  await first.ready();
  const fleet = new Fleet({
    quirks: STRICT_SIM,
    acsUrl: `http://127.0.0.1:${ports.acs}/`,
    count: 2,
    model: 'tr181',
    serialPrefix: 'KIL',
    periodicIntervalS: null,
  });
  let again: Fleet | null = null;
  let traffic = true;
  let loop: Promise<void> = Promise.resolve();
  try {
    await fleet.start();
    const [d0, d1] = fleet.devices as [NonNullable<(typeof fleet.devices)[0]>, NonNullable<(typeof fleet.devices)[0]>];
    const r = spawnSync(process.execPath, [CLI, 'devices', '--json', '--config', file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { endpointId: string; deviceId: { serialNumber: string } }[];
    const agent0 = rows.find((x) => x.deviceId.serialNumber === d0.serial)!.endpointId;
    const row1 = rows.find((x) => x.deviceId.serialNumber === d1.serial)!;
    const agent1 = row1.endpointId;

    // While device 1 is reachable, a Get warms the proxy's view of its data model (an Operate
    // resolves its command path against it).
    const warm = await controller(agent1, CTL_B);
    response(await warm.request(get(['Device.DeviceInfo.'])));
    response(await warm.request(get(['Device.'], 1), 20_000));
    await warm.close();
    // Device 1 goes out of reach (its connection request URL points nowhere from now on).
    d1.setConnectionRequestUrl('http://127.0.0.1:1/');
    await d1.inform();
    d1.offline = true;

    // A Persistent subscription with NotifRetry on agent 0, for controller A: object creations
    // under Device.LocalAgent.Subscription. While A is not connected, controller B adds one,
    // so A's ObjectCreation Notify (send_resp) stays unacknowledged.
    const a0 = await controller(agent0);
    const subAdd = await a0.request(
      add([
        {
          objPath: 'Device.LocalAgent.Subscription.',
          params: {
            Enable: 'true',
            ID: 'keep-me',
            NotifType: 'ObjectCreation',
            ReferenceList: 'Device.LocalAgent.Subscription.',
            Persistent: 'true',
            NotifRetry: 'true',
          },
        },
      ]),
    );
    const inst = response(subAdd).addResp!.createdObjResults[0]!.operStatus!.operSuccess!.instantiatedPath!;
    await a0.close();
    const b0 = await controller(agent0, CTL_B);
    response(
      await b0.request(
        add([
          {
            objPath: 'Device.LocalAgent.Subscription.',
            params: { Enable: 'true', ID: 'by-b', NotifType: 'ValueChange', ReferenceList: 'Device.DeviceInfo.UpTime', Persistent: 'true' },
          },
        ]),
      ),
    );

    // Work for the unreachable device 1: a Get (queued CWMP RPC) and an async Operate Reboot().
    const b1 = await controller(agent1, CTL_B);
    const crFailures = first.count(/connection request failed/);
    await assert.rejects(b1.request(get(['Device.DeviceInfo.SoftwareVersion']), 1000), 'the Get waits for the unreachable device');
    const op = await b1.request(operate('Device.Reboot()', {}, { commandKey: 'k9', sendResp: true }), 10_000);
    const reqPath = response(op).operateResp!.operationResults[0]!.reqObjPath;
    assert.match(reqPath ?? '', /^Device\.LocalAgent\.Request\.\d+\.?$/, JSON.stringify(op.body));
    // Both RPCs were stored before their connection requests were tried (enqueue stores first).
    await until(() => first.count(/connection request failed/) >= crFailures + 2, 20_000, 'connection requests for both RPCs');

    // Traffic: device 0 informs and a controller reads, back to back, while the proxy dies.
    loop = (async () => {
      while (traffic) {
        await Promise.allSettled([d0.inform(['2 PERIODIC']), b0.request(get(['Device.LocalAgent.Subscription.']), 2000)]);
      }
    })();
    await until(() => first.count(/"msg":"Inform"/) >= 4, 20_000, 'traffic');
    process.kill(first.proc.pid!, 'SIGKILL');
    const exit = await first.exited;
    assert.equal(exit.signal, 'SIGKILL');
    traffic = false;
    await loop;
    for (const c of clients.splice(0)) await c.close();

    // The store file after the crash.
    const store = openSqliteStore(db);
    const key1 = (await store.listDevices()).find((d) => d.deviceId.serialNumber === d1.serial)!.deviceKey;
    const queued = (await store.listAllQueuedRpcs()).filter((q) => q.deviceKey === key1);
    const subs = await store.listAllSubscriptions();
    const pending = await store.listPendingNotifies();
    await store.close();
    const methods = queued.map((q) => q.rpc.method);
    assert.ok(methods.includes('Reboot'), `the Reboot is queued: ${JSON.stringify(methods)}`);
    assert.ok(
      methods.some((m) => m.startsWith('GetParameter')),
      `the Get's RPC is queued: ${JSON.stringify(methods)}`,
    );
    const keep = subs.find((s) => s.agentEid === agent0 && s.values.ID === 'keep-me');
    assert.ok(keep, `subscriptions: ${JSON.stringify(subs)}`);
    assert.equal(keep.values.NotifRetry, 'true');
    assert.ok(subs.some((s) => s.agentEid === agent0 && s.values.ID === 'by-b'));
    assert.ok(
      pending.some((n) => n.agentEid === agent0 && n.controllerEid === CTL),
      `an unacknowledged Notify for A: ${JSON.stringify(pending.map((n) => [n.agentEid, n.controllerEid]))}`,
    );

    // Restart on the same data dir.
    const second = new Cli(file);
    await second.ready();
    assert.match(second.logs, /"restoredRpcs":[2-9]/, second.logs);
    const a0b = await controller(agent0);
    const g = await a0b.request(get(['Device.LocalAgent.Subscription.']));
    const row = response(g).getResp!.reqPathResults[0]!.resolvedPathResults.find((x) => x.resultParams.ID === 'keep-me');
    assert.ok(row, 'the subscription is back');
    assert.equal(row.resolvedPath, inst);
    assert.equal(row.resultParams.NotifRetry, 'true');

    const b1b = await controller(agent1, CTL_B);
    const reqs = response(await b1b.request(get(['Device.LocalAgent.Request.']))).getResp!.reqPathResults[0]!;
    const kept = reqs.resolvedPathResults.some((x) => (reqPath ?? '').startsWith((x.resolvedPath ?? '').replace(/\.$/, '')));
    // Request rows are stored: the running Reboot is still there and finishes when the device boots.
    await t.test(`${reqPath} (async Operate Device.Reboot()) is still there after kill -9`, () => {
      assert.ok(kept, `Device.LocalAgent.Request. after restart: ${JSON.stringify(reqs.resolvedPathResults)}`);
    });

    // The queued RPCs run when device 1 comes back (a fresh fleet with the same serials).
    await fleet.stop();
    again = new Fleet({
      quirks: STRICT_SIM,
      acsUrl: `http://127.0.0.1:${ports.acs}/`,
      count: 2,
      model: 'tr181',
      serialPrefix: 'KIL',
      periodicIntervalS: null,
      bootstrap: false,
    });
    await again.start();
    const d1b = again.device(d1.serial)!;
    await until(() => (d1b.stats.rpcsReceived.Reboot ?? 0) > 0, 20_000, 'the restored Reboot at device 1');

    for (const c of clients.splice(0)) await c.close();
    second.proc.kill('SIGTERM');
    assert.equal((await second.exited).code, 0, second.logs);
  } finally {
    traffic = false;
    await loop.catch(() => undefined);
    for (const c of clients) await c.close();
    await fleet.stop();
    await again?.stop();
  }
});

test('kill -9 with a SetParameterValues in flight: after restart it is not sent again (applied once)', async () => {
  const ports = { acs: await freePort(), ws: await freePort(), admin: await freePort() };
  const file = path.join(dir, 'spv.yaml');
  writeFileSync(
    file,
    [
      `dataDir: ${JSON.stringify(path.join(dir, 'spv-data'))}`,
      'acs:',
      '  host: 127.0.0.1',
      `  port: ${ports.acs}`,
      '  connectionRequest: { timeoutMs: 2000, retries: 0, retryDelayMs: 0, deadlineMs: 600000 }',
      'usp:',
      `  websocket: { host: 127.0.0.1, port: ${ports.ws} }`,
      'admin:',
      '  host: 127.0.0.1',
      `  port: ${ports.admin}`,
      'controllers:',
      `  - endpointId: ${JSON.stringify(CTL)}`,
      '',
    ].join('\n'),
  );
  const first = new Cli(file);
  await first.ready();
  // The CPE answers each request 1.5 s late once slowed: the SetParameterValues is applied at once
  // (the simulator counts it) and its response is still on its way when the proxy dies.
  const quirks = { ...STRICT_SIM };
  const fleet = new Fleet({ quirks, acsUrl: `http://127.0.0.1:${ports.acs}/`, count: 1, model: 'tr181', serialPrefix: 'SPV', periodicIntervalS: null });
  let c: UspControllerClient | null = null;
  try {
    await fleet.start();
    const d = fleet.devices[0]!;
    const agent = `os::${d.deviceId.oui}-${d.serial}`;
    c = new UspControllerClient({ agentId: agent, endpointId: CTL, transport: { mtp: 'ws', url: `ws://127.0.0.1:${ports.ws}/usp` }, timeoutMs: 30_000 });
    c.on('error', () => undefined);
    await c.connect();
    // Learn the names first, so that the Set's session carries the SetParameterValues alone.
    const sessions = d.stats.sessionsOk;
    response(await c.request(get(['Device.DeviceInfo.ProvisioningCode'])));
    // The Get's session ends (a session's HTTP client is made at its start: the next one is slowed).
    await until(() => d.stats.sessionsOk > sessions, 20_000, "the end of the Get's session");
    // (The BOOTSTRAP session's SetParameterValues of connection-request credentials counts too.)
    const spvs = d.stats.rpcsReceived.SetParameterValues ?? 0;
    quirks.slowMs = 1500;
    const pending = c.request(set([{ objPath: 'Device.DeviceInfo.', params: { ProvisioningCode: 'once' }, required: true }]));
    pending.catch(() => undefined);
    await until(() => (d.stats.rpcsReceived.SetParameterValues ?? 0) === spvs + 1, 20_000, 'the SetParameterValues at the device');
    process.kill(first.proc.pid!, 'SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');
    await c.close();
    c = null;
    assert.equal(d.model.get('Device.DeviceInfo.ProvisioningCode'), 'once');

    // Restart; the device comes back (its retry, or a new Inform) and its session runs to the end.
    const second = new Cli(file);
    await second.ready();
    assert.match(second.logs, /RPC sent before a restart finished as outcome unknown/, second.logs);
    quirks.slowMs = 0;
    const ok = d.stats.sessionsOk;
    await d.inform(['6 CONNECTION REQUEST']);
    await until(() => d.stats.sessionsOk > ok, 20_000, 'a session after the restart');
    assert.equal(d.stats.rpcsReceived.SetParameterValues, spvs + 1, 'the SetParameterValues was applied once, not sent again');
    second.proc.kill('SIGTERM');
    assert.equal((await second.exited).code, 0, second.logs);
  } finally {
    await c?.close();
    await fleet.stop();
  }
});
