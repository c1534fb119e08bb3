/**
 * `cwmp-usp-proxy demo`: the whole product in one command, for a newcomer. Starts the proxy on
 * ephemeral 127.0.0.1 ports with a temporary data directory, a fleet of simulated CWMP devices
 * (TR-181, plus one TR-098) and our USP controller over the WebSocket MTP, then walks through
 * Get / Set / GetInstances / Add / Delete / Subscription + Operate Reboot -> Boot! Notify and
 * prints what happened on both sides in plain text.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { LevelWithSilent } from 'pino';
import { loadConfig } from '../app/config.js';
import { createLogger, silentLogger } from '../app/log.js';
import { CwmpUspProxy } from '../app/proxy.js';
import { Fleet } from './sim/fleet.js';
import type { DeviceRecord } from '../store/types.js';
import type { Msg } from '../usp/codec/record.js';
import { UspControllerClient, add, del, get, getInstances, operate, set } from './controller/client.js';

export interface DemoIo {
  /** One line of the transcript (no trailing newline). */
  out(s: string): void;
  /** One line of diagnostics (no trailing newline). */
  err(s: string): void;
}

const USAGE = `Usage: cwmp-usp-proxy demo [--devices N] [--keep] [--log-level LEVEL]

Starts the proxy on ephemeral ports of 127.0.0.1 with a temporary data directory, N simulated
CWMP devices (N-1 TR-181 and one TR-098) and a USP controller over WebSocket, runs a short tour
(Get, Set, GetInstances, Add, Delete, Subscription, Operate Reboot -> Boot! Notify) and prints it.

Options:
  --devices N         simulated devices (default 10, 1..1000)
  --keep              keep the proxy and the devices running afterwards, until Ctrl-C
  --log-level LEVEL   show the proxy's logs (fatal|error|warn|info|debug|trace); silent by default
  -h, --help          show this help
`;

const CONTROLLER_EID = 'proto::demo-controller';
/** A second configured controller for `usp listen`: one WebSocket per identity, so a listener and a get under one name would replace each other. */
const LISTENER_EID = 'proto::demo-listener';
const STEP_TIMEOUT_MS = 20_000;
const stdio: DemoIo = {
  out: (s) => void process.stdout.write(s + '\n'),
  err: (s) => void process.stderr.write(s + '\n'),
};

class DemoError extends Error {}

export async function runDemo(argv: string[], io: DemoIo = stdio): Promise<number> {
  let values: { devices?: string; keep?: boolean; help?: boolean; 'log-level'?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { devices: { type: 'string' }, keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, 'log-level': { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.err(`demo: ${(e as Error).message}`);
    io.err(USAGE.trimEnd());
    return 2;
  }
  if (values.help) {
    io.out(USAGE.trimEnd());
    return 0;
  }
  const count = values.devices === undefined ? 10 : Number(values.devices);
  if (!Number.isInteger(count) || count < 1 || count > 1000) {
    io.err(`demo: --devices wants an integer from 1 to 1000, got ${values.devices}`);
    return 2;
  }
  const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  const level = values['log-level'];
  if (level !== undefined && !LEVELS.includes(level)) {
    io.err(`demo: --log-level wants one of ${LEVELS.join('|')}, got ${level}`);
    return 2;
  }
  const demo = new Demo(io, count, (level ?? 'silent') as LevelWithSilent);
  let code = 0;
  try {
    await demo.start();
    await demo.tour();
    if (values.keep) {
      demo.printKeep();
      await waitForSignal();
      io.out('stopping ...');
    }
  } catch (e) {
    io.err(`demo failed${demo.currentStep ? ` at "${demo.currentStep}"` : ''}: ${(e as Error).message}`);
    code = 1;
  } finally {
    await demo.stop().catch((e: unknown) => {
      io.err(`demo: error while stopping: ${(e as Error).message}`);
      code = code || 1;
    });
  }
  if (code === 0) io.out('done: everything stopped cleanly.');
  return code;
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

class Demo {
  currentStep = '';
  private dataDir = '';
  private proxy: CwmpUspProxy | null = null;
  private fleets: Fleet[] = [];
  private readonly clients = new Map<string, UspControllerClient>();
  private wsUrl = '';
  private acsUrl = '';
  private tr181: DeviceRecord[] = [];
  private tr098: DeviceRecord[] = [];
  /** CWMP RPC methods the proxy completed, per device key (from the session engine). */
  private readonly rpcLog = new Map<string, string[]>();

  constructor(
    private readonly io: DemoIo,
    private readonly count: number,
    private readonly level: LevelWithSilent,
  ) {}

  async start(): Promise<void> {
    this.currentStep = 'starting the proxy';
    this.dataDir = mkdtempSync(path.join(os.tmpdir(), 'cwmp-usp-demo-'));
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: this.dataDir,
        'acs.host': '127.0.0.1',
        'acs.port': 0,
        'usp.websocket.host': '127.0.0.1',
        'usp.websocket.port': 0,
        'usp.mqtt.url': '', // no broker in the demo
        'usp.stomp.host': '',
        'log.level': this.level,
        controllers: [
          { endpointId: CONTROLLER_EID, role: 'full' },
          { endpointId: LISTENER_EID, role: 'full' },
        ],
      },
    });
    const proxy = new CwmpUspProxy(config, this.level === 'silent' ? silentLogger() : createLogger(this.level));
    this.proxy = proxy;
    await proxy.start();
    proxy.engine.on('rpcResult', ({ deviceKey, rpc }) => {
      const l = this.rpcLog.get(deviceKey);
      if (l) l.push(rpc.method);
    });
    const wsPort = proxy.usp.ws?.serverAddress()?.port;
    if (!wsPort) throw new DemoError('the USP WebSocket listener did not start');
    this.acsUrl = `http://127.0.0.1:${proxy.acsPort}/`;
    this.wsUrl = `ws://127.0.0.1:${wsPort}${config.usp.websocket.path}`;
    this.io.out(`cwmp-usp-proxy demo: ACS on ${this.acsUrl}, USP WebSocket on ${this.wsUrl} (controller ${CONTROLLER_EID})`);

    this.currentStep = 'starting the simulated devices';
    const n098 = this.count >= 2 ? 1 : 0;
    const common = { acsUrl: this.acsUrl, periodicIntervalS: null, timers: { rebootDelayMs: 300 } } as const;
    this.fleets.push(new Fleet({ ...common, count: this.count - n098, model: 'tr181', serialPrefix: 'DEMO' }));
    if (n098) this.fleets.push(new Fleet({ ...common, count: n098, model: 'tr098', serialPrefix: 'LEGACY' }));
    await Promise.all(this.fleets.map((f) => f.start()));
    const devices = await proxy.store.listDevices();
    this.tr181 = devices.filter((d) => d.rootModel !== 'InternetGatewayDevice').sort(byEid);
    this.tr098 = devices.filter((d) => d.rootModel === 'InternetGatewayDevice').sort(byEid);
    if (devices.length !== this.count) throw new DemoError(`${devices.length} of ${this.count} simulated devices registered`);
    const eids = [...this.tr181, ...this.tr098].map((d) => d.endpointId);
    const shown = eids.length <= 4 ? eids.join(', ') : `${eids.slice(0, 3).join(', ')}, ... ${eids[eids.length - 1]}`;
    this.io.out(
      `${devices.length} simulated CWMP device${devices.length === 1 ? '' : 's'} registered (${this.tr181.length} TR-181, ${this.tr098.length} TR-098), each one a USP Agent: ${shown}`,
    );
    this.io.out('');
  }

  async tour(): Promise<void> {
    const a = this.tr181[0];
    if (!a) throw new DemoError('no TR-181 device to talk to');
    const eid = a.endpointId;

    // 1. Get: the device is idle, so the proxy wakes it with a connection request.
    let r = await this.step(a, `USP Get Device.DeviceInfo.SoftwareVersion on ${eid}`, get(['Device.DeviceInfo.SoftwareVersion']));
    for (const [p, v] of getValues(r)) this.io.out(`  ${p} = ${v}`);

    // 2. Set, then read back with a wildcard.
    r = await this.step(a, `USP Set Device.WiFi.SSID.1.SSID = "demo-ssid"`, set([{ objPath: 'Device.WiFi.SSID.1.', params: { SSID: 'demo-ssid' } }]));
    const setOk = r.body.response?.setResp?.updatedObjResults.every(
      (u) => u.operStatus?.operStatus === 'operSuccess' && u.operStatus.operSuccess?.updatedInstResults.every((i) => i.paramErrs.length === 0),
    );
    if (!setOk) throw new DemoError(`Set failed: ${JSON.stringify(r.body.response)}`);
    this.io.out('  ok');
    r = await this.step(a, 'USP Get Device.WiFi.SSID.*.SSID (read back)', get(['Device.WiFi.SSID.*.SSID']));
    for (const [p, v] of getValues(r)) this.io.out(`  ${p} = ${v}`);

    // 3. GetInstances.
    r = await this.step(a, 'USP GetInstances Device.WiFi.SSID.', getInstances(['Device.WiFi.SSID.'], true));
    const insts = (r.body.response?.getInstancesResp?.reqPathResults ?? []).flatMap((p) => {
      if (p.errCode) throw new DemoError(`GetInstances ${p.requestedPath}: USP error ${p.errCode} ${p.errMsg ?? ''}`);
      return p.currInsts.map((c) => c.instantiatedObjPath ?? '');
    });
    this.io.out(`  ${insts.length} instances: ${insts.join(', ')}`);

    // 4. Add with parameters, then Delete.
    r = await this.step(
      a,
      'USP Add Device.NAT.PortMapping. {ExternalPort=8080, InternalPort=80, Description=demo}',
      add([{ objPath: 'Device.NAT.PortMapping.', params: { ExternalPort: '8080', InternalPort: '80', Description: 'demo' } }]),
    );
    const created = r.body.response?.addResp?.createdObjResults[0]?.operStatus;
    if (created?.operStatus !== 'operSuccess' || !created.operSuccess?.instantiatedPath) {
      throw new DemoError(`Add failed: ${created?.operFailure?.errCode ?? ''} ${created?.operFailure?.errMsg ?? JSON.stringify(r.body.response)}`);
    }
    const inst = created.operSuccess.instantiatedPath;
    this.io.out(`  created ${inst}`);
    r = await this.step(a, `USP Delete ${inst}`, del([inst]));
    const deleted = r.body.response?.deleteResp?.deletedObjResults[0]?.operStatus;
    if (deleted?.operStatus !== 'operSuccess')
      throw new DemoError(`Delete failed: ${deleted?.operFailure?.errCode ?? ''} ${deleted?.operFailure?.errMsg ?? ''}`);
    this.io.out(`  deleted ${deleted.operSuccess?.affectedPaths.join(', ') ?? inst}`);

    // 5. The whole TR-181 fleet at once.
    if (this.tr181.length > 1) {
      this.currentStep = 'Get on every TR-181 device';
      const crBefore = this.connectionRequests();
      const t0 = performance.now();
      const all = await Promise.all(this.tr181.map((d) => this.request(d, get(['Device.DeviceInfo.SerialNumber']))));
      const ms = Math.round(performance.now() - t0);
      const serials = all.map((m) => getValues(m)[0]?.[1] ?? '?');
      this.io.out(
        `> USP Get Device.DeviceInfo.SerialNumber on all ${this.tr181.length} TR-181 devices at once   (${this.connectionRequests() - crBefore} connection requests, ${ms} ms)`,
      );
      this.io.out(
        `  ${serials.length} answers: ${serials.length <= 4 ? serials.join(', ') : `${serials.slice(0, 3).join(', ')}, ... ${serials[serials.length - 1]}`}`,
      );
    }

    // 6. The TR-098 device: the same Device:2 paths, served through assets/mappings/tr098-to-tr181.json.
    const b = this.tr098[0];
    if (b) {
      r = await this.step(b, `USP Get Device.LocalAgent.EndpointID on ${b.endpointId} (TR-098, InternetGatewayDevice)`, get(['Device.LocalAgent.EndpointID']));
      for (const [p, v] of getValues(r)) this.io.out(`  ${p} = ${v}`);
      this.currentStep = 'Get Device.DeviceInfo.SoftwareVersion on the TR-098 device';
      const t0 = performance.now();
      const m = await this.request(b, get(['Device.DeviceInfo.SoftwareVersion']));
      const ms = Math.round(performance.now() - t0);
      const res = m.body.response?.getResp?.reqPathResults[0];
      const what = m.body.error
        ? `USP Error ${m.body.error.errCode}: ${m.body.error.errMsg ?? ''}`
        : res?.errCode
          ? `USP error ${res.errCode}: ${res.errMsg ?? ''}`
          : getValues(m)
              .map(([p, v]) => `${p} = ${v}`)
              .join(', ') || 'no values';
      this.io.out(
        `> USP Get Device.DeviceInfo.SoftwareVersion on the TR-098 device   (InternetGatewayDevice.DeviceInfo.SoftwareVersion through the TR-098 mapping, ${ms} ms)`,
      );
      this.io.out(`  ${what}`);
      if (m.body.error || res?.errCode) throw new Error(`the TR-098 device did not answer through the mapping: ${what}`);
    }

    // 7. Subscription to Device.Boot!, then Operate Device.Reboot() -> Boot! Notify.
    const client = await this.client(a);
    const boot = new Promise<Msg>((resolve) => {
      const on = (m: Msg): void => {
        if (m.body.request?.notify?.event?.eventName !== 'Boot!') return;
        client.off('notify', on);
        resolve(m);
      };
      client.on('notify', on);
    });
    r = await this.step(
      a,
      'USP Add Device.LocalAgent.Subscription. {ID=demo-boot, NotifType=Event, ReferenceList=Device.Boot!}',
      add([{ objPath: 'Device.LocalAgent.Subscription.', params: { Enable: 'true', ID: 'demo-boot', NotifType: 'Event', ReferenceList: 'Device.Boot!' } }]),
    );
    const sub = r.body.response?.addResp?.createdObjResults[0]?.operStatus;
    if (sub?.operStatus !== 'operSuccess') throw new DemoError(`Subscription Add failed: ${sub?.operFailure?.errCode ?? ''} ${sub?.operFailure?.errMsg ?? ''}`);
    this.io.out(`  created ${sub.operSuccess?.instantiatedPath ?? ''}`);
    // Operate answers at once (an async command: Request.{i}); the Reboot RPC, the reboot and the
    // boot Inform follow, so the CWMP side of this step is printed when the Notify arrives.
    this.currentStep = 'Operate Device.Reboot()';
    const rpcs: string[] = [];
    this.rpcLog.set(a.deviceKey, rpcs);
    const crBefore = this.connectionRequests();
    const tReboot = performance.now();
    r = await client.request(operate('Device.Reboot()', {}, { commandKey: 'demo', sendResp: true }));
    this.io.out(`> USP Operate Device.Reboot() CommandKey=demo   (${Math.round(performance.now() - tReboot)} ms)`);
    if (r.body.error) throw new DemoError(`USP Error ${r.body.error.errCode}: ${r.body.error.errMsg ?? ''}`);
    const op = r.body.response?.operateResp?.operationResults[0];
    if (!op || op.operationResp === 'cmdFailure')
      throw new DemoError(`Operate failed: ${op?.cmdFailure?.errCode ?? ''} ${op?.cmdFailure?.errMsg ?? JSON.stringify(r.body.response)}`);
    this.io.out(`  OperateResp: ${op.reqObjPath ?? JSON.stringify(op.reqOutputArgs?.outputArgs ?? {})}`);
    this.currentStep = 'waiting for the Boot! Notify';
    const n = await withTimeout(boot, STEP_TIMEOUT_MS, 'no Boot! Notify within 20 s of the reboot');
    this.rpcLog.delete(a.deviceKey);
    const ev = n.body.request!.notify!.event!;
    const cr = this.connectionRequests() - crBefore;
    this.io.out(`  CWMP: ${cr ? 'connection request, then ' : ''}${summarize(rpcs) || 'Reboot'}; the device rebooted and informed 1 BOOT + M Reboot`);
    this.io.out(
      `  Notify ${ev.eventName} Cause=${ev.params['Cause'] ?? ''} CommandKey=${ev.params['CommandKey'] ?? ''}   (${Math.round(performance.now() - tReboot)} ms after the Operate)`,
    );
    this.currentStep = '';
  }

  printKeep(): void {
    const a = this.tr181[0]?.endpointId ?? this.tr098[0]?.endpointId ?? 'os::...';
    const o = this.io.out;
    o('');
    o(`The proxy keeps running (data in ${this.dataDir}); Ctrl-C stops it. Try, from another terminal:`);
    o(`  cwmp-usp-proxy usp get 'Device.DeviceInfo.' --to ${a} --mtp ws --url ${this.wsUrl} --from ${CONTROLLER_EID}`);
    o(`  cwmp-usp-proxy usp listen --to ${a} --mtp ws --url ${this.wsUrl} --from ${LISTENER_EID}`);
    o(`  cwmp-usp-proxy devices --data-dir ${this.dataDir}`);
    o(`(or node dist/src/app/cli.js instead of cwmp-usp-proxy)`);
  }

  async stop(): Promise<void> {
    for (const c of this.clients.values()) await c.close().catch(() => undefined);
    this.clients.clear();
    for (const f of this.fleets) await f.stop();
    this.fleets = [];
    if (this.proxy) await this.proxy.stop();
    this.proxy = null;
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
    this.dataDir = '';
  }

  // ----------------------------------------------------------------------------------------------

  private connectionRequests(): number {
    return this.fleets.reduce((n, f) => n + f.totals().connectionRequests, 0);
  }

  private async client(d: DeviceRecord): Promise<UspControllerClient> {
    let c = this.clients.get(d.endpointId);
    if (!c) {
      c = new UspControllerClient({ agentId: d.endpointId, endpointId: CONTROLLER_EID, transport: { mtp: 'ws', url: this.wsUrl }, timeoutMs: STEP_TIMEOUT_MS });
      this.clients.set(d.endpointId, c);
      await c.connect();
    }
    return c;
  }

  private async request(d: DeviceRecord, msg: Msg): Promise<Msg> {
    return (await this.client(d)).request(msg);
  }

  /** Sends one request, prints the "> ..." line with the CWMP work it took; throws on a USP Error. */
  private async step(d: DeviceRecord, label: string, msg: Msg): Promise<Msg> {
    this.currentStep = label.replace(/^USP /, '');
    const client = await this.client(d);
    const rpcs: string[] = [];
    this.rpcLog.set(d.deviceKey, rpcs);
    const crBefore = this.connectionRequests();
    const t0 = performance.now();
    let m: Msg;
    try {
      m = await client.request(msg);
    } finally {
      this.rpcLog.delete(d.deviceKey);
    }
    const ms = Math.round(performance.now() - t0);
    const cr = this.connectionRequests() - crBefore;
    const how = rpcs.length === 0 ? 'answered by the proxy, no CWMP' : `${cr ? 'connection request, then ' : ''}${summarize(rpcs)} over CWMP`;
    this.io.out(`> ${label}   (${how}, ${ms} ms)`);
    if (m.body.error) throw new DemoError(`USP Error ${m.body.error.errCode}: ${m.body.error.errMsg ?? ''}`);
    for (const p of m.body.response?.getResp?.reqPathResults ?? []) {
      if (p.errCode) throw new DemoError(`Get ${p.requestedPath}: USP error ${p.errCode} ${p.errMsg ?? ''}`);
    }
    return m;
  }
}

/** "GetParameterNames, GetParameterValues x2". */
function summarize(methods: string[]): string {
  const counts = new Map<string, number>();
  for (const m of methods) counts.set(m, (counts.get(m) ?? 0) + 1);
  return [...counts].map(([m, n]) => (n > 1 ? `${m} x${n}` : m)).join(', ');
}

/** [full parameter path, value] of every resolved parameter of a GetResp. */
function getValues(m: Msg): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const p of m.body.response?.getResp?.reqPathResults ?? []) {
    for (const r of p.resolvedPathResults) for (const [k, v] of Object.entries(r.resultParams)) out.push([`${r.resolvedPath ?? ''}${k}`, v]);
  }
  return out;
}

function byEid(a: DeviceRecord, b: DeviceRecord): number {
  return a.endpointId < b.endpointId ? -1 : a.endpointId > b.endpointId ? 1 : 0;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new DemoError(what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
