/**
 * `npm run sweep -- [DIR]`: every model CSV of DIR (default ../shared/reference/cwmp-models/
 * beside the project) as a simulated CPE, strict quirks unless told otherwise, checked end to
 * end through an in-process proxy by a USP Controller over WebSocket (sweep/run.ts).
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { LevelWithSilent } from 'pino';
import { projectRoot } from '../util/assets.js';
import { parseQuirks, QUIRK_HELP, type Quirks, STRICT_QUIRKS } from './sim/quirks.js';
import { renderReport } from './sweep/report.js';
import { runSweep, type SweepOptions } from './sweep/run.js';

export const SWEEP_USAGE = `Usage: npm run sweep -- [DIR] [options]

Loads every model CSV in DIR (default ../shared/reference/cwmp-models/ beside the project) into
the CPE simulator and checks each through an in-process proxy as a USP Controller over WebSocket:
register, Get, GetSupportedDM, GetInstances, Set, Add/Delete, Operate Reboot(), ValueChange.

  --quirks LIST      simulator quirks (default strict = ${STRICT_QUIRKS.join(',')}; none = none)
  --json             print the results as JSON (for CI) instead of the table
  --timeout-ms N     longest wait for one USP answer (default 60000)
  --wait-ms N        longest wait for a device-side effect: reboot, notification (default 20000)
  --log-level L      show the proxy's logs on stderr (fatal|error|warn|info|debug|trace)
  -h, --help         this text

Quirks: ${QUIRK_HELP.map(([k]) => k).join(', ')}.
Exit codes: 0 no check failed, 1 a check failed, 2 usage error or the sweep could not run.
`;

export interface SweepIo {
  out(line: string): void;
  err(line: string): void;
}

const stdio: SweepIo = {
  out: (l) => void process.stdout.write(l + '\n'),
  err: (l) => void process.stderr.write(l + '\n'),
};

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The default model folder, when it exists. */
export function defaultModelsDir(): string | null {
  const d = path.resolve(projectRoot(), '..', 'shared', 'reference', 'cwmp-models');
  return existsSync(d) ? d : null;
}

/** Parses the arguments (exported for tests); throws Error with a usage message. */
export function parseSweepArgs(argv: string[]): { help: true } | { help: false; json: boolean; opts: SweepOptions } {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      quirks: { type: 'string' },
      json: { type: 'boolean' },
      'timeout-ms': { type: 'string' },
      'wait-ms': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true };
  if (positionals.length > 1) throw new Error(`one DIR at most (got ${positionals.join(' ')})`);
  const dir = positionals[0] ?? defaultModelsDir();
  if (!dir) throw new Error('no DIR given and ../shared/reference/cwmp-models/ does not exist beside the project');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`not a folder: ${dir}`);
  let quirks: Quirks;
  try {
    quirks = parseQuirks(values.quirks ?? 'strict');
  } catch (e) {
    throw new Error(`--quirks: ${(e as Error).message}`);
  }
  const ms = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 100 || n > 3_600_000) throw new Error(`--${name} must be an integer from 100 to 3600000 (got ${JSON.stringify(v)})`);
    return n;
  };
  const level = values['log-level'];
  if (level !== undefined && !LEVELS.includes(level)) throw new Error(`--log-level must be one of ${LEVELS.join('|')} (got ${JSON.stringify(level)})`);
  return {
    help: false,
    json: !!values.json,
    opts: {
      dir: path.resolve(dir),
      quirks,
      requestTimeoutMs: ms('timeout-ms', values['timeout-ms']),
      waitMs: ms('wait-ms', values['wait-ms']),
      logLevel: level as LevelWithSilent | undefined,
    },
  };
}

/** Runs the sweep command; resolves with the exit code. */
export async function sweepCli(argv: string[], io: SweepIo = stdio): Promise<number> {
  let parsed: ReturnType<typeof parseSweepArgs>;
  try {
    parsed = parseSweepArgs(argv);
  } catch (e) {
    io.err(`sweep: ${(e as Error).message}`);
    io.err(SWEEP_USAGE.trimEnd());
    return 2;
  }
  if (parsed.help) {
    io.out(SWEEP_USAGE.trimEnd());
    return 0;
  }
  try {
    const r = await runSweep({ ...parsed.opts, progress: (l) => io.err(l) });
    if (parsed.json) io.out(JSON.stringify(r, null, 2));
    else for (const l of renderReport(r)) io.out(l);
    return r.ok ? 0 : 1;
  } catch (e) {
    io.err(`sweep: ${(e as Error).message}`);
    return 2;
  }
}

const invoked = process.argv[1] && existsSync(process.argv[1]) ? realpathSync(process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url)) {
  sweepCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`sweep: ${(e as Error).message}\n`);
      process.exit(2);
    },
  );
}
