/**
 * pino JSON logging. Secrets (CPE passwords, connection request credentials, Authorization
 * headers) are redacted by key wherever they appear, so a careless log call cannot leak them.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

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

export function createLogger(level: LevelWithSilent, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'cwmp-usp-proxy' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything (tests, library use). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
