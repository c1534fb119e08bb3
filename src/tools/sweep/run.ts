/**
 * The vendor-model sweep: every model CSV of a folder becomes one simulated CPE (with the
 * given quirks) in front of an in-process proxy, and a USP Controller talks to its USP Agent
 * over the proxy's WebSocket MTP. One model at a time, so each model's wire figures are its own.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LevelWithSilent } from 'pino';
import { loadConfig } from '../../app/config.js';
import { createLogger, silentLogger } from '../../app/log.js';
import { CwmpUspProxy } from '../../app/proxy.js';
import { loadDefaultMapping } from '../../mapping/load.js';
import { UspControllerClient } from '../controller/client.js';
import { Fleet } from '../sim/fleet.js';
import { loadModel, type ModelTemplate } from '../sim/model.js';
import { formatQuirks, type Quirks } from '../sim/quirks.js';
import { type CheckName, type CheckResult, CHECKS, type CsvIdentity, runChecks, type WireCost } from './checks.js';
import { expectedModel } from './expected.js';

export const SWEEP_CONTROLLER_EID = 'proto::cwmp-usp-proxy-sweep';

export interface SweepOptions {
  /** Folder of model CSVs. */
  dir: string;
  quirks: Quirks;
  /** Longest wait for one USP answer, ms (default 60000). */
  requestTimeoutMs?: number;
  /** Longest wait for a device-side effect (reboot, notification), ms (default 20000). */
  waitMs?: number;
  /** The proxy's log level (default silent). */
  logLevel?: LevelWithSilent;
  /** One line of progress (e.g. to stderr). */
  progress?: (line: string) => void;
}

export interface ModelResult {
  /** File name without .csv */
  model: string;
  file: string;
  root: string;
  /** Parameters (not objects) in the model. */
  params: number;
  serialNumber: string;
  endpointId: string | null;
  checks: Record<CheckName, CheckResult>;
  /** The first USP Get of one parameter on the never-seen model (includes learning the model). */
  firstGet?: WireCost;
  /** The same Get again (steady state). */
  steadyGet?: WireCost;
  /** Time to learn the model: the first Get less the steady-state one, when both were answered. */
  learnMs?: number;
}

export interface SweepResult {
  dir: string;
  quirks: string;
  checks: readonly CheckName[];
  models: ModelResult[];
  /** No check failed. */
  ok: boolean;
}

/** Model CSVs of a folder, sorted by name. */
export function modelFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.toLowerCase().endsWith('.csv'))
    .sort()
    .map((f) => path.join(dir, f));
}

export async function runSweep(o: SweepOptions): Promise<SweepResult> {
  const files = modelFiles(o.dir);
  if (files.length === 0) throw new Error(`no model CSV in ${o.dir}`);
  const say = o.progress ?? (() => undefined);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'cwmp-usp-sweep-'));
  const level = o.logLevel ?? 'silent';
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      'store.path': ':memory:',
      'acs.host': '127.0.0.1',
      'acs.port': 0,
      'usp.websocket.host': '127.0.0.1',
      'usp.websocket.port': 0,
      'usp.mqtt.url': '',
      'usp.stomp.host': '',
      'log.level': level,
      controllers: [{ endpointId: SWEEP_CONTROLLER_EID, role: 'full' }],
    },
  });
  const proxy = new CwmpUspProxy(config, level === 'silent' ? silentLogger() : createLogger(level));
  const models: ModelResult[] = [];
  try {
    await proxy.start();
    const wsPort = proxy.usp.ws?.serverAddress()?.port;
    if (!wsPort) throw new Error('the USP WebSocket listener did not start');
    const ctx: RunContext = {
      acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
      wsUrl: `ws://127.0.0.1:${wsPort}${config.usp.websocket.path}`,
      proxy,
      opts: o,
      say,
      serials: new Set(),
    };
    say(`sweep: ${files.length} model(s) from ${o.dir}, quirks ${formatQuirks(o.quirks)}; ACS ${ctx.acsUrl}, USP ${ctx.wsUrl}`);
    for (const f of files) models.push(await runModel(ctx, f));
  } finally {
    await proxy.stop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
  return {
    dir: o.dir,
    quirks: formatQuirks(o.quirks),
    checks: CHECKS,
    models,
    ok: models.every((m) => Object.values(m.checks).every((c) => c.status !== 'FAIL')),
  };
}

interface RunContext {
  acsUrl: string;
  wsUrl: string;
  proxy: CwmpUspProxy;
  opts: SweepOptions;
  say: (line: string) => void;
  /** OUI/serial pairs in use (two CSVs of one device would be one device to the proxy). */
  serials: Set<string>;
}

function emptyChecks(reason: string): Record<CheckName, CheckResult> {
  const out = {} as Record<CheckName, CheckResult>;
  for (const c of CHECKS) out[c] = { status: 'skip', reason, ms: 0 };
  return out;
}

async function runModel(ctx: RunContext, file: string): Promise<ModelResult> {
  const name = path.basename(file).replace(/\.csv$/i, '');
  const result: ModelResult = { model: name, file, root: '', params: 0, serialNumber: '', endpointId: null, checks: emptyChecks('not registered') };
  const fail = (check: CheckName, reason: string, ms = 0): ModelResult => {
    result.checks[check] = { status: 'FAIL', reason, ms };
    ctx.say(`sweep: ${name}: ${check} FAIL ${reason}`);
    return result;
  };
  let tpl: ModelTemplate;
  try {
    tpl = loadModel(file);
  } catch (e) {
    return fail('register', `cannot load the model: ${(e as Error).message}`);
  }
  result.root = tpl.root;
  for (const p of tpl.walk()) if (!p.endsWith('.')) result.params++;
  // The device presents the model's own serial number (made unique if two CSVs share one).
  let serial = tpl.deviceId.serialNumber || name;
  for (let i = 2; ctx.serials.has(`${tpl.deviceId.oui}|${serial}`); i++) serial = `${tpl.deviceId.serialNumber || name}-${i}`;
  ctx.serials.add(`${tpl.deviceId.oui}|${serial}`);
  result.serialNumber = serial;
  const fleet = new Fleet({
    acsUrl: ctx.acsUrl,
    count: 1,
    model: file,
    serials: [serial],
    periodicIntervalS: null,
    quirks: ctx.opts.quirks,
    // A short session retry (TR-069 3.2.1.1 CWMPRetryMinimumWaitInterval) keeps dropped sessions cheap.
    timers: { rebootDelayMs: 300, transferDelayMs: 200, diagnosticsDelayMs: 200, retryMinWaitS: 0.5, retryMultiplier: 2000, httpTimeoutMs: 30_000 },
  });
  try {
    const t0 = performance.now();
    try {
      await fleet.start();
    } catch (e) {
      return fail('register', `the simulator did not start: ${(e as Error).message}`);
    }
    const dev = fleet.devices[0]!;
    const rec = (await ctx.proxy.store.listDevices()).find((d) => d.deviceId.serialNumber === serial && d.deviceId.oui === dev.deviceId.oui);
    const ms = Math.round(performance.now() - t0);
    if (!rec)
      return fail('register', `the proxy has no device ${dev.deviceId.oui}-${serial} after its boot session (${dev.stats.lastSessionError ?? 'no error'})`, ms);
    result.endpointId = rec.endpointId;
    result.checks.register = { status: 'ok', reason: rec.endpointId, ms };
    ctx.say(`sweep: ${name}: register ok ${rec.endpointId}`);
    const agent = new UspControllerClient({
      endpointId: SWEEP_CONTROLLER_EID,
      agentId: rec.endpointId,
      transport: { mtp: 'ws', url: ctx.wsUrl },
      timeoutMs: ctx.opts.requestTimeoutMs ?? 60_000,
    });
    agent.on('error', () => undefined);
    try {
      await agent.connect();
    } catch (e) {
      for (const c of CHECKS) if (c !== 'register') result.checks[c] = { status: 'FAIL', reason: `controller: ${(e as Error).message}`, ms: 0 };
      return result;
    }
    try {
      const node = (n: string): string => tpl.node(tpl.root + n)?.value ?? '';
      const csv: CsvIdentity = {
        SerialNumber: serial,
        Manufacturer: node('DeviceInfo.Manufacturer'),
        ModelName: node('DeviceInfo.ModelName'),
        SoftwareVersion: node('DeviceInfo.SoftwareVersion'),
      };
      const r = await runChecks(
        {
          client: agent,
          device: dev,
          expected: expectedModel(dev, loadDefaultMapping()),
          csv,
          tag: name.replace(/[^A-Za-z0-9]+/g, '').slice(0, 16),
          waitMs: ctx.opts.waitMs ?? 20_000,
        },
        (check, res) => ctx.say(`sweep: ${name}: ${check} ${res.status}${res.reason ? ` ${res.reason}` : ''} (${res.ms} ms)`),
      );
      Object.assign(result.checks, r.checks);
      result.firstGet = r.firstGet;
      result.steadyGet = r.steadyGet;
      if (r.firstGet && r.steadyGet && r.checks['get-one']?.status === 'ok' && r.checks['get-again']?.status === 'ok') {
        result.learnMs = Math.max(0, r.firstGet.ms - r.steadyGet.ms);
      }
    } finally {
      await agent.close();
    }
    return result;
  } finally {
    await fleet.stop();
  }
}
