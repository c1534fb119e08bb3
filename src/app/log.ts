/**
 * pino logging: JSON lines, or human-readable lines through pino-pretty (log.pretty, --log-pretty;
 * on by default when stdout is a terminal). Secrets (CPE passwords, connection request credentials,
 * Authorization headers) are redacted by key wherever they appear, before either output, so a
 * careless log call cannot leak them.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { lazyRequire } from '../util/lazy-require.js';

/** Loaded only when pretty lines are wanted: JSON logging (the default off a terminal) does without its code. */
const pinoPretty = lazyRequire<typeof import('pino-pretty')>('pino-pretty');

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

/** The field names of REDACT_PATHS: their values never reach a line, at any of the first three levels. */
const SECRET_FIELDS: ReadonlySet<string> = new Set(['password', 'connReqPassword', 'cpePassword', 'cpePendingPassword', 'authorization']);
const CENSOR = '[redacted]';
/** Levels walked: REDACT_PATHS reach "*.*.password" (the third). */
const REDACT_DEPTH = 3;

/**
 * The redaction of REDACT_PATHS (a superset: every secret name at each of the first three levels,
 * arrays included) as one walk that copies only an object it changes. pino's path redaction cost
 * about 12 us on every line, two thirds of the info line of each USP request.
 */
export function redactSecrets<T extends object>(o: T, depth = 0): T {
  let out: Record<string, unknown> | null = null;
  const src = o as Record<string, unknown>;
  for (const k in src) {
    const v = src[k];
    let r = v;
    if (SECRET_FIELDS.has(k)) {
      if (v !== undefined && v !== null) r = CENSOR;
    } else if (depth + 1 < REDACT_DEPTH && v !== null && typeof v === 'object' && !ArrayBuffer.isView(v)) r = redactSecrets(v, depth + 1);
    if (r === v) continue;
    if (!out) {
      // An array's copy stays an array (its indexes are its keys).
      out = Array.isArray(o) ? Object.assign<unknown[], Record<string, unknown>>([], src) : { ...src };
      // An Error's message and stack are not enumerable: kept on the copy.
      if (o instanceof Error) Object.assign(out, { name: o.name, message: o.message, stack: o.stack });
    }
    out[k] = r;
  }
  return (out ?? o) as T;
}

let lastMs = -1;
let lastTime = '';
/** pino's isoTime, formatted once per millisecond (a busy proxy writes several lines in each). */
function isoTimeCached(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastTime = `,"time":"${new Date(ms).toISOString()}"`;
  }
  return lastTime;
}

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
    // REDACT_PATHS, by redactSecrets (pino's `redact` walks its paths on every line, far slower).
    formatters: { log: (o: Record<string, unknown>) => redactSecrets(o), bindings: (b: pino.Bindings) => redactSecrets(b) },
    timestamp: isoTimeCached,
  };
  if (opts.pretty) {
    // The lines go through pino-pretty: infoLine() must let pino format them.
    // In-process (no worker thread): the lines are written in order with everything else on stdout.
    const stream = pinoPretty()({
      colorize: destination === undefined && process.stdout.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,name',
      singleLine: true,
      sync: destination !== undefined,
      ...(destination ? { destination } : {}),
    });
    return redactingChildren(pino(options, stream));
  }
  if (destination) return jsonLines(redactingChildren(pino(options, destination)));
  return jsonLines(redactingChildren(pino(options, bufferedStdout())));
}

/** Set on a logger (and so on its children, pino's children inherit from it) whose lines are JSON as pino builds them. */
const JSON_LINES = Symbol('jsonLines');
type Internals = Record<symbol, unknown>;
/** A logger's own fields by pino's symbols (pino.symbols: its documented way in). */
const internals = (logger: object): Internals => logger as Internals;

function jsonLines(logger: Logger): Logger {
  internals(logger)[JSON_LINES] = true;
  return logger;
}

const symbols: Readonly<Record<string, symbol | undefined>> = pino.symbols;
const { lsCacheSym, chindingsSym, timeSym, streamSym, endSym, mixinSym, hooksSym, messageKeySym } = pino.symbols;
/** Not in pino's types; absent in a pino without it (then nothing to check). */
const msgPrefixSym = symbols.msgPrefixSym;
const needsMetadata = Symbol.for('pino.metadata');

/**
 * One info line of a hot path (the line of every answered USP request), the same JSON line pino
 * writes for `logger.info(fields, msg)`: level, time, the logger's bindings, the fields in their
 * order, msg; built with one JSON.stringify of `fields` instead of pino's per-key walk, and
 * without the redaction walk. Only for `fields` whose keys are no secret names at any level (a
 * type the caller owns, e.g. RequestLogFields): the redaction, by key, has nothing to change
 * there. Any other logger (pino-pretty, a mixin, hooks, a stream that wants metadata) gets
 * logger.info() as before. The caller checks the level.
 */
export function infoLine(logger: Logger, fields: object, msg: string): void {
  const l = internals(logger);
  const stream = l[streamSym] as { write(s: string): unknown; [needsMetadata]?: boolean };
  if (
    l[JSON_LINES] !== true ||
    l[mixinSym] ||
    (l[hooksSym] as { streamWrite?: unknown }).streamWrite ||
    (msgPrefixSym !== undefined && l[msgPrefixSym] !== undefined) ||
    stream[needsMetadata]
  ) {
    logger.info(fields, msg);
    return;
  }
  const body = JSON.stringify(fields);
  const line =
    (l[lsCacheSym] as Record<number, string>)[30]! +
    (l[timeSym] as () => string)() +
    (l[chindingsSym] as string) +
    (body.length > 2 ? `,${body.slice(1, -1)}` : '') +
    `,"${l[messageKeySym] as string}":${JSON.stringify(msg)}` +
    (l[endSym] as string);
  stream.write(line);
}

/**
 * Bytes of lines gathered before stdout is written (one write per line cost ~5 us of CPU per line;
 * at 4 KiB a busy proxy still wrote every 15 lines, each write a trip to libuv's thread pool).
 */
const LOG_BUFFER_BYTES = 16 * 1024;
/** A line waits at most this long for others to share its write. */
const LOG_FLUSH_MS = 100;

/**
 * Lines kept in an array and handed to the destination LOG_BUFFER_BYTES at a time. sonic-boom's own
 * batching (minLength) measures its whole pending string again on every line (Buffer.byteLength of
 * a growing string): 3-4 us a line at 4 KiB, more the larger the batch.
 */
class LineBatcher {
  private parts: string[] = [];
  private chars = 0;
  constructor(private readonly dest: { write(s: string): unknown; readonly _writing?: boolean }) {}
  write(line: string): void {
    this.parts.push(line);
    this.chars += line.length;
    if (this.chars >= LOG_BUFFER_BYTES) this.flush();
  }
  /** Hands the lines over; with `cb` (logger.flush(cb) before exiting), calls it once they are written (at most 2 s later). */
  flush(cb?: (err?: Error) => void): void {
    if (this.parts.length > 0) {
      const text = this.parts.length === 1 ? this.parts[0]! : this.parts.join('');
      this.parts = [];
      this.chars = 0;
      this.dest.write(text);
    }
    if (!cb) return;
    const until = Date.now() + 2000;
    const wait = (): void => {
      if (this.dest._writing && Date.now() < until) setTimeout(wait, 1);
      else cb();
    };
    wait();
  }
}

let stdout: LineBatcher | null = null;

/**
 * The process's stdout destination: asynchronous, lines written in batches of LOG_BUFFER_BYTES,
 * else within LOG_FLUSH_MS, and synchronously at exit.
 */
function bufferedStdout(): LineBatcher {
  if (!stdout) {
    // minLength 0: each batch is written at once (pino flushes the destination synchronously on exit).
    const dest = pino.destination({ dest: 1, sync: false });
    const batcher = new LineBatcher(dest);
    stdout = batcher;
    setInterval(() => {
      try {
        batcher.flush();
      } catch {
        // destroyed (stdout closed): nothing more to write
      }
    }, LOG_FLUSH_MS).unref();
    process.once('exit', () => {
      try {
        batcher.flush();
        dest.flushSync();
      } catch {
        // stdout closed or not open yet: nothing more can be written
      }
    });
  }
  return stdout;
}

/** Child bindings are redacted too (pino applies formatters.bindings to the root's only); children inherit this child(). */
function redactingChildren(logger: Logger): Logger {
  const child = logger.child;
  logger.child = function (this: Logger, bindings, opts) {
    return child.call(this, redactSecrets(bindings), opts);
  } as Logger['child'];
  return logger;
}

/** A logger that drops everything (tests, library use). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
