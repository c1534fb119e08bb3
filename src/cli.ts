#!/usr/bin/env node
/**
 * cwmp-usp-proxy command line (DESIGN section 7):
 *   start     run the proxy            devices   list registered devices from the store
 *   simulate  run simulated CPE        usp       a USP controller for the command line
 *   config    list configuration keys  help      this text
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import { createLogger } from './log.js';

const USAGE = `Usage: cwmp-usp-proxy <command> [options]

Commands:
  start      Run the proxy (ACS for CWMP devices). Default when no command is given.
  devices    List registered devices (Endpoint ID, DeviceId, root model, last Inform, state).
  simulate   Run simulated CWMP devices against an ACS (see: cwmp-usp-proxy simulate --help).
  usp        A USP controller for the command line: get/set/add/delete/operate/instances/
             supported-dm/supported-proto/listen over ws, mqtt or stomp (see: cwmp-usp-proxy usp --help).
  demo       Start the proxy with 10 simulated devices and a USP controller, and show a transcript.
  mapping    TR-098 -> Device:2 mapping tools: mapping coverage --model FILE.csv
  config     Print every configuration key with its environment variable and default.

Common options:
  --config FILE       YAML or JSON configuration file
  --log-level LEVEL   fatal|error|warn|info|debug|trace|silent (overrides log.level)
  --data-dir DIR      data directory (overrides dataDir)
  -h, --help          show help

Configuration precedence: command line > environment (CUP_*) > file > defaults.
`;

const DEVICES_USAGE = `Usage: cwmp-usp-proxy devices [--json] [--search TEXT] [--limit N] [--config FILE]

Lists registered devices from the store; safe to run while the proxy runs.
`;

function configFrom(values: Record<string, unknown>): Config {
  const overrides: Record<string, unknown> = {};
  if (values['log-level'] !== undefined) overrides['log.level'] = values['log-level'];
  if (values['data-dir'] !== undefined) overrides['dataDir'] = values['data-dir'];
  return loadConfig({ file: values.config as string | undefined, overrides });
}

const common = {
  config: { type: 'string' },
  'log-level': { type: 'string' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function cmdStart(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: common, strict: true });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const config = configFrom(values);
  const log = createLogger(config.log.level);
  const { Proxy } = await import('./main.js');
  const proxy = new Proxy(config, log);
  await proxy.start();
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    proxy.stop().then(
      () => {
        log.info('stopped');
        log.flush();
        process.exitCode = 0;
      },
      (e: unknown) => {
        log.error({ err: e }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return -1; // keep running
}

async function cmdDevices(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...common, json: { type: 'boolean' }, search: { type: 'string' }, limit: { type: 'string' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(DEVICES_USAGE);
    return 0;
  }
  const config = configFrom(values);
  const limit = values.limit === undefined ? 1000 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new ConfigError(`--limit must be a positive integer (got ${values.limit})`);
  const { existsSync } = await import('node:fs');
  if (!existsSync(config.store.path)) {
    process.stderr.write(`no store at ${config.store.path} (has the proxy run with this configuration?)\n`);
    return 1;
  }
  const { openStore } = await import('./store/index.js');
  const store = openStore({ path: config.store.path });
  try {
    const devices = await store.listDevices({ search: values.search, limit });
    const now = Date.now();
    const rows = devices.map((d) => ({
      endpointId: d.endpointId,
      deviceId: d.deviceId,
      rootModel: d.rootModel,
      lastInform: d.lastInform,
      online: d.lastInform !== null && now - Date.parse(d.lastInform) < onlineWindowMs(config, d.periodicInformInterval),
    }));
    if (values.json) {
      process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    } else {
      const table = [['ENDPOINT ID', 'MANUFACTURER', 'OUI', 'PRODUCT CLASS', 'SERIAL', 'ROOT', 'LAST INFORM', 'STATE']];
      for (const r of rows) {
        table.push([r.endpointId, r.deviceId.manufacturer, r.deviceId.oui, r.deviceId.productClass, r.deviceId.serialNumber, r.rootModel, r.lastInform ?? '-', r.online ? 'online' : 'offline']);
      }
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      for (const row of table) process.stdout.write(row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
      process.stdout.write(`${rows.length} device(s)\n`);
    }
  } finally {
    await store.close();
  }
  return 0;
}

/** Online: an Inform within two periodic intervals, or within acs.onlineWindowS when the interval is unknown. */
function onlineWindowMs(config: Config, periodicS: number | null): number {
  return (periodicS && periodicS > 0 ? Math.max(2 * periodicS, 60) : config.acs.onlineWindowS) * 1000;
}

function cmdConfig(): number {
  for (const { key, env, def } of describeConfig()) process.stdout.write(`${key.padEnd(40)} ${env.padEnd(52)} ${JSON.stringify(def)}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  const command = first === undefined || first.startsWith('-') ? 'start' : first;
  const args = first === undefined || first.startsWith('-') ? argv : rest;
  switch (command) {
    case 'start':
      return cmdStart(args);
    case 'devices':
      return cmdDevices(args);
    case 'simulate': {
      const { runSimulateCli } = await import('./sim/cli.js');
      return runSimulateCli(args);
    }
    case 'mapping': {
      const { runMappingCli } = await import('./mapping/coverage.js');
      return runMappingCli(args);
    }
    case 'demo': {
      const { runDemo } = await import('./demo.js');
      return runDemo(args);
    }
    case 'usp': {
      const { runUspCli } = await import('./usp/controller/cli.js');
      return runUspCli(args);
    }
    case 'config':
      return cmdConfig();
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

const isEntry = (() => {
  try {
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1] ?? '')).href;
  } catch {
    return false;
  }
})();

if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (e: unknown) => {
      if (e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exitCode = 2;
      } else {
        process.stderr.write(`fatal: ${(e as Error).stack ?? String(e)}\n`);
        process.exitCode = 1;
      }
    },
  );
}
