#!/usr/bin/env node
/**
 * cwmp-usp-proxy command line:
 *   start     run the proxy            devices   list registered devices from the store
 *   simulate  run simulated CPE        usp       a USP controller for the command line
 *   config    list configuration keys  help      this text
 * Every command has --help; exit codes are listed in the top-level --help (EXIT_CODES).
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { ConfigError, loadConfig, SECRET_KEY_ENV, type Config } from './config.js';
import { StoreOpenError } from '../store/files.js';
import { SecretKeyError } from '../store/secrets.js';
import { bannerLines, configLines, listenErrorMessage, startWarnings, unknownCupVariables } from './first-run.js';
import { createLogger, prettyWanted } from './log.js';
import { storeUnavailable } from '../store/errors.js';

const EXIT_CODES = `
Exit codes:
  0    success (start: stopped cleanly after SIGTERM/SIGINT)
  1    runtime failure (cannot listen, store error, shutdown error; usp: USP Error response)
  2    usage or configuration error (unknown command or flag, bad value, unknown config key)
  3    usp: no answer (timeout or transport failure)
  4    usp: a failure inside the response (err_code, oper_failure, param_errs, cmd_failure)
  130  start: second SIGINT during shutdown;  143: second SIGTERM during shutdown
`;

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
  --log-pretty        human-readable log lines instead of JSON (log.pretty: on; default auto = on a terminal)
  --data-dir DIR      data directory (overrides dataDir)
  -h, --help          show help

Configuration precedence: command line > environment (CUP_*) > file > defaults.
Run 'cwmp-usp-proxy <command> --help' for a command's options.
${EXIT_CODES}`;

const DEVICES_USAGE = `Usage: cwmp-usp-proxy devices [--json] [--search TEXT] [--limit N] [--config FILE] [--data-dir DIR]

Lists registered devices from the store (opened read-only); safe to run while the proxy runs.

Options:
  --json              print JSON instead of a table, with per device what the proxy learned of
                      its model (capabilities: partial paths, GPV batch size, SetParameterAttributes,
                      the CPE's GetRPCMethods list, rootNextLevelFalse; failures are null here: they
                      live in the running proxy, see the admin API) and how each ValueChange
                      subscription of its agent is served (valueChange)
  --search TEXT       case-insensitive substring of Endpoint ID, DeviceId fields or device key
  --limit N           at most N devices (default 1000)
  --config FILE       configuration file (for dataDir / store.path)
  --data-dir DIR      data directory (overrides dataDir)
  -h, --help          show this help

Exit codes: 0 ok, 1 no store at the configured path, 2 usage or configuration error.
`;

const CONFIG_USAGE = `Usage: cwmp-usp-proxy config [--config FILE] [--data-dir DIR] [-h|--help]

Prints every configuration key with its environment variable (CUP_*) and its effective value (from
the file, the environment and the defaults; secrets as ***), one a line, with the default beside
any value that differs from it. Environment variables use __ between levels, e.g. CUP_ACS__PORT=7547,
CUP_USP__MQTT__URL=mqtt://broker:1883; an unknown CUP_ variable is reported.

Exit codes: 0 ok, 2 usage error.
`;

/** Loads the configuration; reports CUP_ variables that name no key (a typo would be ignored otherwise). */
function configFrom(values: Record<string, unknown>): Config {
  for (const w of unknownCupVariables(process.env)) process.stderr.write(`warning: ${w}\n`);
  const overrides: Record<string, unknown> = {};
  if (values['log-level'] !== undefined) overrides['log.level'] = values['log-level'];
  if (values['data-dir'] !== undefined) overrides['dataDir'] = values['data-dir'];
  if (values['log-pretty']) overrides['log.pretty'] = 'on';
  return loadConfig({ file: values.config as string | undefined, overrides });
}

/** Written synchronously to stderr: plain text beside the (JSON or pretty) log on stdout. */
function say(lines: string[]): void {
  if (lines.length) process.stderr.write(`${lines.join('\n')}\n`);
}

const common = {
  config: { type: 'string' },
  'log-level': { type: 'string' },
  'log-pretty': { type: 'boolean' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const START_USAGE = `Usage: cwmp-usp-proxy start [--config FILE] [--log-level LEVEL] [--log-pretty] [--data-dir DIR]

Runs the proxy: the ACS for CWMP devices, a USP Agent per device toward the configured
controllers (WebSocket, MQTT, STOMP), and the admin API/health endpoint.

Options:
  --config FILE       YAML or JSON configuration file
  --log-level LEVEL   fatal|error|warn|info|debug|trace|silent (overrides log.level)
  --log-pretty        human-readable log lines instead of JSON (log.pretty: on; default auto = on a terminal)
  --data-dir DIR      data directory (overrides dataDir)
  -h, --help          show this help

Shutdown: on SIGTERM or SIGINT the proxy stops accepting CWMP connections (new Informs on open
connections get 503 + Retry-After), lets running sessions end for up to admin.shutdownGraceMs,
sends USP Disconnect Records, ends what is left (queued RPCs stay in the store) and flushes the
store, then exits 0 and logs "stopped". A second signal exits at once (130 SIGINT, 143 SIGTERM).
${EXIT_CODES}`;

/** Exit status of a process killed by a signal, by shell convention (128 + signal number). */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

async function cmdStart(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: common, strict: true });
  if (values.help) {
    process.stdout.write(START_USAGE);
    return 0;
  }
  const config = configFrom(values);
  const log = createLogger(config.log.level, undefined, { pretty: prettyWanted(config.log.pretty) });
  const { CwmpUspProxy } = await import('./proxy.js');
  const { drainAndStop } = await import('./shutdown.js');
  const proxy = new CwmpUspProxy(config, log);
  let adminPort = 0;
  try {
    await proxy.start();
    adminPort = await proxy.startAdmin();
  } catch (e) {
    // Release what did start (broker and Redis connections retry forever otherwise), then fail.
    await Promise.race([proxy.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
    const plain = storeUnavailable(e) ? (e as Error).message : listenErrorMessage(e, config);
    if (plain !== null) {
      process.stderr.write(`error: ${plain}\n`);
      return 1;
    }
    throw e;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // Written synchronously: the logger's destination is asynchronous and we exit now.
      process.stderr.write(`cwmp-usp-proxy: second ${signal} during shutdown: exiting now\n`);
      process.exit(SIGNAL_EXIT[signal] ?? 1);
    }
    stopping = true;
    const graceMs = config.admin.shutdownGraceMs;
    log.info({ signal, graceMs }, 'shutting down');
    // Should anything hang past the grace period, give up rather than block a supervisor.
    setTimeout(() => {
      process.stderr.write('cwmp-usp-proxy: shutdown did not finish in time: exiting\n');
      process.exit(1);
    }, graceMs + 20_000).unref();
    drainAndStop(proxy, { graceMs, log }).then(
      (r) => {
        log.info({ drainMs: r.drainMs, abandonedSessions: r.abandonedSessions }, 'stopped');
        process.exitCode = 0;
        // Exit once the log is written, even if a stray handle would keep the loop alive.
        log.flush(() => setTimeout(() => process.exit(0), 200).unref());
      },
      (e: unknown) => {
        log.error({ err: e }, 'error during shutdown');
        log.flush(() => process.exit(1));
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  if (config.log.level !== 'silent') {
    const warnings = startWarnings(config);
    for (const w of warnings) log.warn(w);
    say([
      ...bannerLines(config, { acsPort: proxy.acsPort, wsPort: proxy.usp.ws?.serverAddress()?.port ?? 0, adminPort }),
      ...warnings.map((w) => `warning: ${w}`),
    ]);
  }
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
  const { loadSecretKey, openStore } = await import('../store/index.js');
  const { secretCodec } = await import('../store/secrets.js');
  const secrets = secretCodec(loadSecretKey(config.store, SECRET_KEY_ENV));
  const store = openStore({ path: config.store.path, readonly: true, secrets });
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
      const { storedLearned } = await import('../interworking/stored-learned.js');
      const learned = await storedLearned(store, devices, config.interworking.gpvBatchSize);
      // Detection of a native USP Agent and the last migration (src/migration/service.ts), as stored.
      const migration = await Promise.all(devices.map((d) => store.getLearned('migration', d.deviceKey)));
      const out = rows.map((r, i) => ({ ...r, ...learned[i], migration: migration[i] ? (JSON.parse(migration[i]) as unknown) : null }));
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    } else {
      const table = [['ENDPOINT ID', 'MANUFACTURER', 'OUI', 'PRODUCT CLASS', 'SERIAL', 'ROOT', 'LAST INFORM', 'STATE']];
      for (const r of rows) {
        table.push([
          r.endpointId,
          r.deviceId.manufacturer,
          r.deviceId.oui,
          r.deviceId.productClass,
          r.deviceId.serialNumber,
          r.rootModel,
          r.lastInform ?? '-',
          r.online ? 'online' : 'offline',
        ]);
      }
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      for (const row of table)
        process.stdout.write(
          row
            .map((c, i) => c.padEnd(widths[i]!))
            .join('  ')
            .trimEnd() + '\n',
        );
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

function cmdConfig(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: common, strict: true });
  if (values.help) {
    process.stdout.write(CONFIG_USAGE);
    return 0;
  }
  process.stdout.write(`${configLines(configFrom(values)).join('\n')}\n`);
  return 0;
}

const COMMANDS = ['start', 'devices', 'simulate', 'usp', 'demo', 'mapping', 'config'];

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  const command = first === undefined || first.startsWith('-') ? 'start' : first;
  const args = first === undefined || first.startsWith('-') ? argv : rest;
  switch (command) {
    case 'start':
      return cmdStart(args);
    case 'devices':
      return cmdDevices(args);
    case 'simulate': {
      const { runSimulateCli } = await import('../tools/sim/cli.js');
      return runSimulateCli(args);
    }
    case 'mapping': {
      const { runMappingCli } = await import('../tools/coverage.js');
      return runMappingCli(args);
    }
    case 'demo': {
      const { runDemo } = await import('../tools/demo.js');
      return runDemo(args);
    }
    case 'usp': {
      const { runUspCli } = await import('../tools/controller/cli.js');
      return runUspCli(args);
    }
    case 'config':
      return cmdConfig(args);
    case 'help': {
      // `help <command>` is `<command> --help`.
      if (args[0] && COMMANDS.includes(args[0])) return main([args[0], '--help']);
      process.stdout.write(USAGE);
      return 0;
    }
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
  // A reader that went away (`config | head`) is not an error of ours: stop quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (e: unknown) => {
      if (e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exitCode = 2;
      } else if (e instanceof StoreOpenError || e instanceof SecretKeyError) {
        // The store's path or key and the cause, without a stack: the operator's to fix.
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exitCode = 1;
      } else {
        process.stderr.write(`fatal: ${(e as Error).stack ?? String(e)}\n`);
        process.exitCode = 1;
      }
    },
  );
}
