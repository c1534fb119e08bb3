/**
 * pino logging: JSON lines, or human-readable lines through pino-pretty (log.pretty, --log-pretty;
 * on by default when stdout is a terminal). Secrets (CPE passwords, connection request credentials,
 * Authorization headers) are redacted by key wherever they appear, before either output, so a
 * careless log call cannot leak them.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger };

export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'connReqPassword',
  '*.connReqPassword',
  'cpePassword',
  '*.cpePassword',
  'cpePendingPassword',
  '*.cpePendingPassword',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  '*.headers.authorization',
];

/** log.pretty: 'auto' is pretty exactly when stdout is a terminal. */
export type PrettySetting = 'auto' | 'on' | 'off';

export function prettyWanted(setting: PrettySetting, stdoutIsTty: boolean = process.stdout.isTTY === true): boolean {
  return setting === 'on' || (setting === 'auto' && stdoutIsTty);
}

export interface LoggerOptions {
  /** Human-readable lines (pino-pretty) instead of JSON; colours only on a terminal. */
  pretty?: boolean;
}

export function createLogger(level: LevelWithSilent, destination?: pino.DestinationStream, opts: LoggerOptions = {}): Logger {
  const options = {
    level,
    base: { name: 'cwmp-usp-proxy' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (opts.pretty) {
    // In-process (no worker thread): the lines are written in order with everything else on stdout.
    const stream = pinoPretty({
      colorize: destination === undefined && process.stdout.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,name',
      singleLine: true,
      sync: destination !== undefined,
      ...(destination ? { destination } : {}),
    });
    return pino(options, stream);
  }
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}

/** A logger that drops everything (tests, library use). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
