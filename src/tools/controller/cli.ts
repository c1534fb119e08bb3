/**
 * `cwmp-usp-proxy usp ...`: a USP Controller on the command line. Exit codes (docs/usp-cli.md):
 * 0 success, 1 USP Error Msg, 2 usage error, 3 no answer (timeout, transport failure),
 * 4 a failure inside the response (err_code, oper_failure, param_errs, cmd_failure).
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Msg, UspRecord } from '../../usp/codec/record.js';
import {
  DEFAULT_CONTROLLER_EID,
  UspControllerClient,
  add,
  del,
  get,
  getInstances,
  getSupportedDM,
  getSupportedProtocol,
  operate,
  set,
  type UspControllerTransport,
} from './client.js';
import { EXIT, notifyLine, summarize } from './output.js';
import { PROFILE_KEYS, ProfileError, defaultProfilePath, defaultTimeoutMs, defaultWsUrl, envVarOf, loadDefaults } from './profile.js';

export interface UspCliIo {
  out(s: string): void;
  err(s: string): void;
  /** Rewrites one progress line while waiting; only given when stderr is a terminal. */
  progress?(s: string): void;
  /** Environment for USP_* defaults and the profile location (default process.env). */
  env?: NodeJS.ProcessEnv;
}

const COMMANDS = ['get', 'set', 'add', 'delete', 'operate', 'instances', 'supported-dm', 'supported-proto', 'listen'] as const;
type Command = (typeof COMMANDS)[number];

export const USP_USAGE = `Usage: cwmp-usp-proxy usp <command> --to AGENT_EID [--mtp ws|mqtt|stomp] [transport options] [--json] [args]

Commands:
  get PATH... [--max-depth N]
  set OBJPATH PARAM=VALUE... [--allow-partial] [--required]
  add OBJPATH [PARAM=VALUE...] [--allow-partial]
  delete PATH... [--allow-partial]
  operate COMMAND [ARG=VALUE...] [--command-key K] [--no-send-resp]
  instances PATH... [--first-level-only]
  supported-dm PATH... [--first-level-only] [--no-params] [--no-commands] [--no-events]
  supported-proto [VERSIONS]
  listen [--count N] [--duration S]       print Notify Msgs as JSON lines

Transport options:
  --mtp ws      --url ws://127.0.0.1:8080/usp            (agent EID appended to the path)
                [--secret-file F] (Authorization: Bearer <its content>) [--ca F] [--cert F --key F] (wss://)
  --mtp mqtt    --url mqtt://127.0.0.1:1883 --controller-topic T --agent-topic T [--mqtt-version 5|4]
  --mtp stomp   --host H --port P [--login L] [--passcode P] [--vhost V] --controller-dest D --agent-dest D
  --from EID    our Endpoint ID, a controller the proxy is configured with (default ${DEFAULT_CONTROLLER_EID})
  --timeout MS  response timeout (default ${defaultTimeoutMs()}: longer than the proxy's connection-request deadline)
  --json        print the whole response Msg as JSON (default: one 'path => value' line per result)
  --profile F   defaults for the options above (YAML), default ${defaultProfilePath({ HOME: '~' })}
Defaults: command line > environment (USP_TO, USP_MTP, USP_URL, USP_FROM, USP_TIMEOUT, ...) > profile >
--mtp ws --url ${defaultWsUrl()}.

Results go to stdout, failures to stderr, one a line. Exit codes: 0 success, 1 USP Error Msg,
2 usage error, 3 no answer (timeout, transport failure), 4 a failure inside the response
(err_code on a path, oper_failure, param_errs, cmd_failure). See docs/usp-cli.md.`;

const SUB_USAGE: Record<Command, string> = {
  get: 'usp get PATH... [--max-depth N]\n  GET the parameters under each path (search expressions allowed).',
  set: 'usp set OBJPATH PARAM=VALUE... [--allow-partial] [--required]\n  SET parameters of one object (--required marks every parameter required).',
  add: 'usp add OBJPATH [PARAM=VALUE...] [--allow-partial]\n  ADD an instance of a multi-instance object (OBJPATH ends with a dot).',
  delete: 'usp delete PATH... [--allow-partial]\n  DELETE object instances.',
  operate: 'usp operate COMMAND [ARG=VALUE...] [--command-key K] [--no-send-resp]\n  OPERATE a command, e.g. Device.Reboot().',
  instances: 'usp instances PATH... [--first-level-only]\n  GET_INSTANCES of objects.',
  'supported-dm': 'usp supported-dm PATH... [--first-level-only] [--no-params] [--no-commands] [--no-events]\n  GET_SUPPORTED_DM.',
  'supported-proto': 'usp supported-proto [VERSIONS]\n  GET_SUPPORTED_PROTO (default versions 1.0,1.1,1.2,1.3,1.4).',
  listen:
    'usp listen [--count N] [--duration S]\n  Print Notify Msgs, one line each starting with the sending agent (--json: {from, msg} lines),\n  until N arrived, S seconds passed or SIGINT. Notify with send_resp gets a NotifyResp.',
};

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  to: { type: 'string' },
  mtp: { type: 'string' },
  url: { type: 'string' },
  'controller-topic': { type: 'string' },
  'agent-topic': { type: 'string' },
  'mqtt-version': { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  login: { type: 'string' },
  passcode: { type: 'string' },
  vhost: { type: 'string' },
  'controller-dest': { type: 'string' },
  'agent-dest': { type: 'string' },
  'secret-file': { type: 'string' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  from: { type: 'string' },
  timeout: { type: 'string' },
  'max-depth': { type: 'string' },
  'allow-partial': { type: 'boolean' },
  required: { type: 'boolean' },
  'command-key': { type: 'string' },
  'no-send-resp': { type: 'boolean' },
  json: { type: 'boolean' },
  profile: { type: 'string' },
  'first-level-only': { type: 'boolean' },
  'no-params': { type: 'boolean' },
  'no-commands': { type: 'boolean' },
  'no-events': { type: 'boolean' },
  count: { type: 'string' },
  duration: { type: 'string' },
} satisfies ParseArgsConfig['options'];

/** Flags each command accepts besides the transport ones. */
const COMMAND_FLAGS: Record<Command, string[]> = {
  get: ['max-depth'],
  set: ['allow-partial', 'required'],
  add: ['allow-partial'],
  delete: ['allow-partial'],
  operate: ['command-key', 'no-send-resp'],
  instances: ['first-level-only'],
  'supported-dm': ['first-level-only', 'no-params', 'no-commands', 'no-events'],
  'supported-proto': [],
  listen: ['count', 'duration'],
};
const COMMON_FLAGS = new Set<string>(['help', ...PROFILE_KEYS, 'json', 'profile']);

class UsageError extends Error {}

type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

const defaultIo: UspCliIo = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
  ...(process.stderr.isTTY ? { progress: (s: string) => process.stderr.write(`\r\x1b[K${s}`) } : {}),
};

/** Runs `usp <command> ...` (argv without the leading `usp`); resolves with the exit code. */
export async function runUspCli(argv: string[], io: UspCliIo = defaultIo): Promise<number> {
  let command: Command | undefined;
  let client: UspControllerClient | undefined;
  try {
    let parsed: { values: Values; positionals: string[] };
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }) as typeof parsed;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const { values: v, positionals } = parsed;
    const first = positionals[0];
    if (first === undefined) {
      if (v.help) {
        io.out(USP_USAGE);
        return 0;
      }
      throw new UsageError('missing command');
    }
    if (!(COMMANDS as readonly string[]).includes(first)) throw new UsageError(`unknown command '${first}'`);
    command = first as Command;
    if (v.help) {
      io.out(`Usage: cwmp-usp-proxy ${SUB_USAGE[command]}\n\nTransport options: see 'cwmp-usp-proxy usp --help'.`);
      return 0;
    }
    const args = positionals.slice(1);
    const allowed = new Set(COMMAND_FLAGS[command]);
    for (const k of Object.keys(v)) {
      if (!COMMON_FLAGS.has(k) && !allowed.has(k)) throw new UsageError(`option --${k} does not apply to '${command}'`);
    }

    const env = io.env ?? process.env;
    let profile: string | undefined;
    try {
      const d = loadDefaults(env, v.profile);
      profile = d.profile;
      // Transport options of the profile/environment describe its MTP (ws when unnamed): another
      // --mtp on the command line takes none of them, only the identity and timeout.
      const sameMtp = v.mtp === undefined || v.mtp === (d.values.mtp ?? 'ws');
      for (const k of PROFILE_KEYS) {
        if (!sameMtp && !['to', 'from', 'timeout'].includes(k)) continue;
        if (v[k] === undefined && d.values[k] !== undefined) v[k] = d.values[k];
      }
    } catch (e) {
      if (e instanceof ProfileError) throw new UsageError(e.message);
      throw e;
    }
    v.mtp ??= 'ws';
    if (v.mtp === 'ws') v.url ??= defaultWsUrl();
    const transport = transportFrom(v);
    if (!v.to) throw new UsageError(`--to AGENT_EID is required (or ${envVarOf('to')}, or 'to:' in ${profile ?? defaultProfilePath(env)})`);
    const timeoutMs = v.timeout !== undefined ? posInt('--timeout', v.timeout) : defaultTimeoutMs();
    const msg = command === 'listen' ? undefined : buildMsg(command, args, v);
    const listen = command === 'listen' ? listenOpts(args, v) : undefined;
    const from = v.from ?? DEFAULT_CONTROLLER_EID;

    client = new UspControllerClient({
      endpointId: from,
      agentId: v.to,
      transport,
      timeoutMs,
      connectTimeoutMs: Math.min(timeoutMs, 10_000),
    });
    client.on('error', () => undefined); // failures surface through request()/connect()
    await client.connect();

    if (listen) return await runListen(client, listen, io, v.json ?? false);
    const resp = await withProgress(io, `waiting for ${v.to} to answer ${msg!.header.msgType}`, timeoutMs, () => client!.request(msg!));
    const sum = summarize(resp, msg);
    if (v.json) io.out(toJson(resp, 2));
    else for (const l of sum.lines) io.out(l);
    for (const f of sum.failures) io.err(f);
    if (resp.body.error?.errCode === 7006) {
      io.err(
        `hint: the proxy does not let controller ${from} do this. Unless it is a read-only Role, ${from} is not among the proxy's ` +
          `controllers[] (configure it, or pass --from with a configured controller's Endpoint ID): docs/controller-trust.md`,
      );
    }
    return sum.code;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`cwmp-usp-proxy usp: ${err.message}`);
      io.err(command ? `Usage: cwmp-usp-proxy ${SUB_USAGE[command].split('\n')[0]}` : USP_USAGE.split('\n\nCommands')[0]!);
      io.err("Run 'cwmp-usp-proxy usp --help' for details.");
      return EXIT.usage;
    }
    const text = (err as Error).message ?? String(err);
    io.err(`cwmp-usp-proxy usp: ${text}`);
    if (/within \d+ ms/.test(text)) {
      io.err(
        'hint: the device may be offline or slow to wake (the proxy waits acs.connectionRequest.deadlineMs for it); ' +
          'over MQTT/STOMP a Record the proxy refuses is dropped, not answered: the proxy log says why.',
      );
    }
    return EXIT.noAnswer;
  } finally {
    await client?.close();
  }
}

/** Runs `work`, rewriting a progress line every second on a terminal (io.progress), cleared at the end. */
async function withProgress<T>(io: UspCliIo, what: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  const progress = io.progress;
  if (!progress) return work();
  const t0 = Date.now();
  const tick = (): void => progress(`${what}... ${Math.round((Date.now() - t0) / 1000)} s (timeout ${Math.round(timeoutMs / 1000)} s)`);
  const timer = setInterval(tick, 1000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
    progress('');
  }
}

function need(v: Values, flag: keyof Values, mtp: string): string {
  const x = v[flag];
  if (typeof x !== 'string' || x === '') throw new UsageError(`--${flag} is required with --mtp ${mtp}`);
  return x;
}

function transportFrom(v: Values): UspControllerTransport {
  const wsOnly = (['secret-file', 'ca', 'cert', 'key'] as const).find((k) => v[k] !== undefined);
  if (wsOnly && v.mtp !== 'ws') throw new UsageError(`--${wsOnly} applies to --mtp ws only (brokers authenticate with --login/--passcode)`);
  switch (v.mtp) {
    case undefined:
      throw new UsageError('--mtp ws|mqtt|stomp is required');
    case 'ws': {
      const url = need(v, 'url', 'ws');
      if (!/^wss?:\/\//.test(url)) throw new UsageError(`--url must be a ws:// or wss:// URL, got '${url}'`);
      if (!!v.cert !== !!v.key) throw new UsageError('--cert and --key go together');
      const file = (flag: string, f: string): string => {
        try {
          return readFileSync(f, 'utf8');
        } catch (e) {
          throw new UsageError(`--${flag}: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      };
      const tls = { ...(v.ca ? { ca: file('ca', v.ca) } : {}), ...(v.cert && v.key ? { cert: file('cert', v.cert), key: file('key', v.key) } : {}) };
      return {
        mtp: 'ws',
        url,
        ...(v['secret-file'] ? { secret: file('secret-file', v['secret-file']).trim() } : {}),
        ...(Object.keys(tls).length ? { tls } : {}),
      };
    }
    case 'mqtt': {
      const url = need(v, 'url', 'mqtt');
      if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(url)) throw new UsageError(`--url must be an mqtt:// URL, got '${url}'`);
      let protocolVersion: 5 | 4 = 5;
      if (v['mqtt-version'] !== undefined) {
        if (v['mqtt-version'] !== '5' && v['mqtt-version'] !== '4') throw new UsageError(`--mqtt-version must be 5 or 4, got '${v['mqtt-version']}'`);
        protocolVersion = v['mqtt-version'] === '5' ? 5 : 4;
      }
      return {
        mtp: 'mqtt',
        url,
        controllerTopic: need(v, 'controller-topic', 'mqtt'),
        agentTopic: need(v, 'agent-topic', 'mqtt'),
        protocolVersion,
        ...(v.login !== undefined ? { username: v.login } : {}),
        ...(v.passcode !== undefined ? { password: v.passcode } : {}),
      };
    }
    case 'stomp': {
      const port = posInt('--port', need(v, 'port', 'stomp'));
      if (port > 65535) throw new UsageError(`--port out of range: ${port}`);
      return {
        mtp: 'stomp',
        host: v.host ?? '127.0.0.1',
        port,
        ...(v.login !== undefined ? { login: v.login } : {}),
        ...(v.passcode !== undefined ? { passcode: v.passcode } : {}),
        ...(v.vhost !== undefined ? { vhost: v.vhost } : {}),
        controllerDest: need(v, 'controller-dest', 'stomp'),
        agentDest: need(v, 'agent-dest', 'stomp'),
      };
    }
    default:
      throw new UsageError(`--mtp must be ws, mqtt or stomp, got '${v.mtp}'`);
  }
}

function posInt(flag: string, s: string): number {
  if (!/^\d+$/.test(s) || Number(s) <= 0) throw new UsageError(`${flag} must be a positive integer, got '${s}'`);
  return Number(s);
}

function keyValues(args: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args) {
    const i = a.indexOf('=');
    if (i <= 0) throw new UsageError(`${what} '${a}' must look like NAME=VALUE`);
    out[a.slice(0, i)] = a.slice(i + 1);
  }
  return out;
}

function atLeastOne(args: string[], what: string): string[] {
  if (args.length === 0) throw new UsageError(`missing ${what}`);
  return args;
}

function buildMsg(command: Exclude<Command, 'listen'>, args: string[], v: Values): Msg {
  switch (command) {
    case 'get':
      return get(atLeastOne(args, 'PATH'), v['max-depth'] !== undefined ? posInt('--max-depth', v['max-depth']) : undefined);
    case 'set': {
      const [objPath, ...kv] = args;
      if (!objPath) throw new UsageError('missing OBJPATH');
      if (kv.length === 0) throw new UsageError('missing PARAM=VALUE');
      return set([{ objPath, params: keyValues(kv, 'parameter'), required: v.required ?? false }], v['allow-partial'] ?? false);
    }
    case 'add': {
      const [objPath, ...kv] = args;
      if (!objPath) throw new UsageError('missing OBJPATH');
      return add([{ objPath, params: keyValues(kv, 'parameter') }], v['allow-partial'] ?? false);
    }
    case 'delete':
      return del(atLeastOne(args, 'PATH'), v['allow-partial'] ?? false);
    case 'operate': {
      const [cmd, ...kv] = args;
      if (!cmd) throw new UsageError('missing COMMAND');
      return operate(cmd, keyValues(kv, 'argument'), { commandKey: v['command-key'] ?? '', sendResp: !v['no-send-resp'] });
    }
    case 'instances':
      return getInstances(atLeastOne(args, 'PATH'), v['first-level-only'] ?? false);
    case 'supported-dm':
      return getSupportedDM(atLeastOne(args, 'PATH'), {
        firstLevelOnly: v['first-level-only'] ?? false,
        returnParams: !v['no-params'],
        returnCommands: !v['no-commands'],
        returnEvents: !v['no-events'],
      });
    case 'supported-proto':
      if (args.length > 1) throw new UsageError(`unexpected argument '${args[1]}'`);
      return getSupportedProtocol(args[0]);
  }
}

interface ListenOpts {
  count?: number;
  durationMs?: number;
}

function listenOpts(args: string[], v: Values): ListenOpts {
  if (args.length) throw new UsageError(`unexpected argument '${args[0]}'`);
  return {
    ...(v.count !== undefined ? { count: posInt('--count', v.count) } : {}),
    ...(v.duration !== undefined ? { durationMs: posInt('--duration', v.duration) * 1000 } : {}),
  };
}

async function runListen(client: UspControllerClient, o: ListenOpts, io: UspCliIo, json: boolean): Promise<number> {
  return new Promise<number>((resolve) => {
    let n = 0;
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    const done = (code: number): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      process.off('SIGINT', onSigint);
      client.off('notify', onNotify);
      client.off('close', onClose);
      // Let a NotifyResp for the last Notify go out before close().
      setImmediate(() => resolve(code));
    };
    // The sending agent first: one MQTT or STOMP subscription may carry every agent's Notify.
    const onNotify = (msg: Msg, rec: UspRecord): void => {
      io.out(json ? toJson({ fromId: rec.fromId, ...msg }) : notifyLine(rec.fromId, msg));
      if (o.count !== undefined && ++n >= o.count) done(0);
    };
    const onSigint = (): void => done(0);
    const onClose = (): void => {
      io.err('cwmp-usp-proxy usp: connection closed');
      done(3);
    };
    client.on('notify', onNotify);
    client.on('close', onClose);
    client.on('error', (e) => {
      if (e.name === 'UspTransportError') {
        io.err(`cwmp-usp-proxy usp: ${e.message}`);
        if (/replaced/.test(e.message)) {
          // R-WS.4: one WebSocket per controller and agent; the newer one wins.
          io.err(
            `cwmp-usp-proxy usp: another connection as ${client.endpointId} to ${client.agentId} replaced this one ` +
              '(one WebSocket per controller and agent): run the other commands over --mtp mqtt or stomp, or listen as another configured controller (--from)',
          );
        }
        done(3);
      }
    });
    process.on('SIGINT', onSigint);
    if (o.durationMs !== undefined) timer = setTimeout(() => done(0), o.durationMs);
  });
}

/** JSON with Uint8Array as base64 and bigint as a string. */
export function toJson(x: unknown, indent?: number): string {
  return JSON.stringify(
    x,
    function (this: unknown, _k, val: unknown) {
      if (val instanceof Uint8Array) return Buffer.from(val).toString('base64');
      if (typeof val === 'bigint') return val.toString();
      // Buffer's own toJSON runs before the replacer: {type:'Buffer', data:[...]}.
      if (val && typeof val === 'object' && (val as { type?: unknown }).type === 'Buffer' && Array.isArray((val as { data?: unknown }).data)) {
        return Buffer.from((val as { data: number[] }).data).toString('base64');
      }
      return val;
    },
    indent,
  );
}
