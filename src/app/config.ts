/**
 * One typed options table with defaults, environment overrides and a clear error naming
 * any bad key (DESIGN section 9.10). Precedence: CLI > environment > file > defaults.
 *
 * Environment names are derived from the key path: `CUP_` + each segment in UPPER_SNAKE,
 * joined by `__`. Example: acs.connectionRequest.timeoutMs -> CUP_ACS__CONNECTION_REQUEST__TIMEOUT_MS.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

export type AuthMode = 'none' | 'basic' | 'digest';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  dataDir: string;
  acs: {
    host: string;
    port: number;
    /** Largest CPE request body accepted (bytes); larger gets 413. */
    maxBodyBytes: number;
    /** An idle CWMP session ends after this (ms); its in-flight RPC fails. */
    sessionTimeoutMs: number;
    /** Bodies larger than this are decoded on a worker thread so other sessions do not stall. */
    workerThresholdBytes: number;
    /** Worker threads for large bodies (0 disables: everything is decoded inline). */
    parseWorkers: number;
    /** Send cwmp:HoldRequests=true while the ACS has queued RPCs (TR-069 3.7.1.4): ACS RPCs run first. */
    holdRequests: boolean;
    /** Set random per-device ConnectionRequestUsername/Password on BOOTSTRAP (and when none is known). */
    setConnectionRequestCredentials: boolean;
    /** A device whose last Inform is older than this many seconds is listed as offline. */
    onlineWindowS: number;
    /** Concurrent CWMP sessions above which new Informs get 503 + Retry-After (load shedding). */
    maxSessions: number;
    /** After answering an RPC of a USP request, a session waits this long (ms) for its follow-up RPC before 204. */
    lingerMs: number;
    /**
     * A CPE that closes its TCP connection with an RPC in flight and neither posts again nor sends a
     * new Inform within this many ms: the RPC fails at once, not at the session timeout (0 disables).
     */
    droppedConnectionGraceMs: number;
    /** HTTPS for the ACS URL: PEM files; cert '' = plain HTTP. */
    tls: TlsServerConfig & { requestClientCert: boolean };
    auth: {
      mode: AuthMode;
      realm: string;
      /** Shared pair; a device's own credentials in the store take precedence. */
      username: string;
      password: string;
    };
    connectionRequest: {
      /** One connection request attempt (ms). */
      timeoutMs: number;
      /** Default deadline of an enqueued RPC (ms): not sent by then, it fails as "device unreachable". */
      deadlineMs: number;
      retries: number;
      retryDelayMs: number;
      maxDelayMs: number;
      maxConcurrent: number;
    };
  };
  usp: {
    /** Endpoint ID authority scheme for the agents (TR-369 R-ARC.2a): os::OUI-Serial or ops::OUI-ProductClass-Serial. */
    endpointIdScheme: 'os' | 'ops';
    /** The proxy's own identity on shared broker connections (MQTT usp-endpoint-id, STOMP endpoint-id). */
    proxyEndpointId: string;
    /** Records larger than this are dropped (WebSocket: closed with 1009). */
    maxRecordBytes: number;
    /** Requests one controller may have in progress at once; beyond, USP Error 7005 (flood guard). */
    maxRequestsInFlightPerController: number;
    websocket: { enabled: boolean; host: string; port: number; path: string; pingIntervalMs: number; tls: TlsServerConfig; clientCa: string };
    mqtt: {
      url: string;
      topic: string;
      protocolVersion: number;
      clientId: string;
      username: string;
      password: string;
      keepaliveS: number;
      tls: TlsClientConfig;
    };
    stomp: {
      host: string;
      port: number;
      vhost: string;
      login: string;
      passcode: string;
      destination: string;
      heartbeatMs: number;
      tls: TlsClientConfig & { enabled: boolean };
    };
    /** Notify retry (TR-369 "Notify retry"): m seconds and k/1000 multiplier, per controller. */
    notifRetryMinWaitS: number;
    notifRetryMultiplier: number;
    /** Device.LocalAgent.Controller.{i}.PeriodicNotifInterval default (s). */
    periodicNotifIntervalS: number;
    /** Reconnect backoff of MTP connections (ms). */
    reconnectBaseMs: number;
    reconnectMaxMs: number;
  };
  controllers: ControllerConfig[];
  interworking: {
    /** How long a device may take to report back from Reboot/Download/diagnostics (ms); then 7022. */
    operationTimeoutMs: number;
    /** Parameters per GetParameterValues. */
    gpvBatchSize: number;
    /** Instance lists learned with GetParameterNames stay valid this long (ms) unless Add/Delete/BOOT. */
    instanceCacheTtlMs: number;
  };
  store: {
    path: string;
    /** A shared Redis store for several instances (DESIGN section 6); url '' = SQLite at path. */
    redis: { url: string; prefix: string };
  };
  /** Several instances on one Redis store (README "Scaling out"); active when store.redis.url is set. */
  cluster: {
    /** This instance's name in Redis ('' = <hostname>-<pid>-<random>). Unique per running instance. */
    instanceId: string;
    /** How often an instance renews its liveness key (ms). */
    heartbeatMs: number;
    /** An instance whose liveness key is this old is dead; its work is taken over (ms). */
    instanceTtlMs: number;
    /** MQTT 5 shared subscription group ($share/<group>/...) so one instance takes each USP Record. */
    shareGroup: string;
  };
  log: { level: LogLevel };
  admin: {
    enabled: boolean;
    host: string;
    port: number;
    /** Bearer token for /api/* (and the status page's data). '' = a random one is generated and logged at start. */
    token: string;
    /** How long running CWMP sessions may take to end on SIGTERM/SIGINT (ms). */
    shutdownGraceMs: number;
  };
}

/** PEM file paths for a TLS server (cert '' = TLS off); ca: trusted CA for client certificates. */
export interface TlsServerConfig {
  cert: string;
  key: string;
  ca: string;
}

/** TLS as a client: ca to trust (besides the system's), optional client cert/key. */
export interface TlsClientConfig {
  ca: string;
  cert: string;
  key: string;
  /** Skip certificate verification (labs only; logged as a warning). */
  insecure: boolean;
}

export interface ControllerConfig {
  endpointId: string;
  role: 'full' | 'read-only';
  mqtt: { topic: string };
  stomp: { destination: string };
  websocket: { url: string };
}

type Leaf =
  | { kind: 'list'; def: unknown[]; item: Schema; required: readonly string[] }
  | { kind: 'string'; def: string; enum?: readonly string[]; secret?: boolean }
  | { kind: 'int'; def: number; min: number; max: number }
  | { kind: 'bool'; def: boolean };

type Schema = { [key: string]: Leaf | Schema };

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const MAX_MS = 7 * 24 * 3600 * 1000;

const SCHEMA: Schema = {
  dataDir: { kind: 'string', def: './data' },
  acs: {
    host: { kind: 'string', def: '0.0.0.0' },
    port: { kind: 'int', def: 7547, min: 0, max: 65535 },
    maxBodyBytes: { kind: 'int', def: 8 * 1024 * 1024, min: 1024, max: 512 * 1024 * 1024 },
    sessionTimeoutMs: { kind: 'int', def: 30_000, min: 10, max: MAX_MS },
    workerThresholdBytes: { kind: 'int', def: 64 * 1024, min: 0, max: 512 * 1024 * 1024 },
    parseWorkers: { kind: 'int', def: 1, min: 0, max: 64 },
    holdRequests: { kind: 'bool', def: false },
    setConnectionRequestCredentials: { kind: 'bool', def: true },
    onlineWindowS: { kind: 'int', def: 3600, min: 1, max: 365 * 24 * 3600 },
    maxSessions: { kind: 'int', def: 20_000, min: 1, max: 10_000_000 },
    lingerMs: { kind: 'int', def: 300, min: 0, max: 60_000 },
    droppedConnectionGraceMs: { kind: 'int', def: 3000, min: 0, max: MAX_MS },
    tls: {
      cert: { kind: 'string', def: '' },
      key: { kind: 'string', def: '' },
      ca: { kind: 'string', def: '' },
      requestClientCert: { kind: 'bool', def: false },
    },
    auth: {
      mode: { kind: 'string', def: 'none', enum: ['none', 'basic', 'digest'] },
      realm: { kind: 'string', def: 'cwmp-usp-proxy' },
      username: { kind: 'string', def: '' },
      password: { kind: 'string', def: '', secret: true },
    },
    connectionRequest: {
      timeoutMs: { kind: 'int', def: 5000, min: 10, max: MAX_MS },
      deadlineMs: { kind: 'int', def: 30_000, min: 10, max: MAX_MS },
      retries: { kind: 'int', def: 2, min: 0, max: 100 },
      retryDelayMs: { kind: 'int', def: 1000, min: 0, max: MAX_MS },
      maxDelayMs: { kind: 'int', def: 10_000, min: 0, max: MAX_MS },
      maxConcurrent: { kind: 'int', def: 200, min: 1, max: 100_000 },
    },
  },
  usp: {
    endpointIdScheme: { kind: 'string', def: 'os', enum: ['os', 'ops'] },
    proxyEndpointId: { kind: 'string', def: 'proto::cwmp-usp-proxy' },
    maxRecordBytes: { kind: 'int', def: 5 * 1024 * 1024, min: 1024, max: 256 * 1024 * 1024 },
    maxRequestsInFlightPerController: { kind: 'int', def: 256, min: 1, max: 1_000_000 },
    websocket: {
      enabled: { kind: 'bool', def: true },
      host: { kind: 'string', def: '0.0.0.0' },
      port: { kind: 'int', def: 8080, min: 0, max: 65535 },
      path: { kind: 'string', def: '/usp' },
      pingIntervalMs: { kind: 'int', def: 30_000, min: 10, max: MAX_MS },
      tls: {
        cert: { kind: 'string', def: '' },
        key: { kind: 'string', def: '' },
        ca: { kind: 'string', def: '' },
      },
      /** CA to trust when dialing controllers over wss:// (besides the system's). */
      clientCa: { kind: 'string', def: '' },
    },
    mqtt: {
      url: { kind: 'string', def: '' }, // '' = MQTT off
      topic: { kind: 'string', def: '/usp/endpoint' },
      protocolVersion: { kind: 'int', def: 5, min: 4, max: 5 },
      clientId: { kind: 'string', def: '' },
      username: { kind: 'string', def: '' },
      password: { kind: 'string', def: '', secret: true },
      keepaliveS: { kind: 'int', def: 60, min: 0, max: 65535 },
      tls: {
        ca: { kind: 'string', def: '' },
        cert: { kind: 'string', def: '' },
        key: { kind: 'string', def: '' },
        insecure: { kind: 'bool', def: false },
      },
    },
    stomp: {
      host: { kind: 'string', def: '' }, // '' = STOMP off
      port: { kind: 'int', def: 61613, min: 1, max: 65535 },
      vhost: { kind: 'string', def: '/' },
      login: { kind: 'string', def: 'guest' },
      passcode: { kind: 'string', def: 'guest', secret: true },
      destination: { kind: 'string', def: '/queue/usp.agent' },
      heartbeatMs: { kind: 'int', def: 10_000, min: 0, max: MAX_MS },
      tls: {
        enabled: { kind: 'bool', def: false },
        ca: { kind: 'string', def: '' },
        cert: { kind: 'string', def: '' },
        key: { kind: 'string', def: '' },
        insecure: { kind: 'bool', def: false },
      },
    },
    notifRetryMinWaitS: { kind: 'int', def: 5, min: 0, max: 65535 },
    notifRetryMultiplier: { kind: 'int', def: 2000, min: 1000, max: 65535 },
    periodicNotifIntervalS: { kind: 'int', def: 86_400, min: 1, max: 4_294_967_295 },
    reconnectBaseMs: { kind: 'int', def: 1000, min: 1, max: MAX_MS },
    reconnectMaxMs: { kind: 'int', def: 60_000, min: 1, max: MAX_MS },
  },
  interworking: {
    operationTimeoutMs: { kind: 'int', def: 600_000, min: 10, max: MAX_MS },
    gpvBatchSize: { kind: 'int', def: 500, min: 1, max: 100_000 },
    instanceCacheTtlMs: { kind: 'int', def: 60_000, min: 0, max: MAX_MS },
  },
  controllers: {
    kind: 'list',
    def: [],
    required: ['endpointId'],
    item: {
      endpointId: { kind: 'string', def: '' },
      role: { kind: 'string', def: 'full', enum: ['full', 'read-only'] },
      mqtt: { topic: { kind: 'string', def: '' } },
      stomp: { destination: { kind: 'string', def: '' } },
      websocket: { url: { kind: 'string', def: '' } },
    },
  },
  store: {
    path: { kind: 'string', def: '' }, // '' = <dataDir>/proxy.db
    redis: {
      url: { kind: 'string', def: '', secret: true }, // may carry a password
      prefix: { kind: 'string', def: 'cup:' },
    },
  },
  cluster: {
    instanceId: { kind: 'string', def: '' },
    heartbeatMs: { kind: 'int', def: 1000, min: 50, max: MAX_MS },
    instanceTtlMs: { kind: 'int', def: 5000, min: 150, max: MAX_MS },
    shareGroup: { kind: 'string', def: 'cwmp-usp-proxy' },
  },
  log: {
    level: { kind: 'string', def: 'info', enum: LOG_LEVELS },
  },
  admin: {
    enabled: { kind: 'bool', def: true },
    host: { kind: 'string', def: '127.0.0.1' },
    port: { kind: 'int', def: 7557, min: 0, max: 65535 },
    token: { kind: 'string', def: '', secret: true },
    shutdownGraceMs: { kind: 'int', def: 10_000, min: 0, max: MAX_MS },
  },
};

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const isLeaf = (s: Leaf | Schema): s is Leaf => typeof (s as Leaf).kind === 'string' && 'def' in s;

const snake = (k: string): string => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
export const envName = (keyPath: string): string => 'CUP_' + keyPath.split('.').map(snake).join('__');

function defaults(schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(schema)) out[k] = isLeaf(s) ? s.def : defaults(s);
  return out;
}

function coerce(leaf: Leaf, raw: unknown, key: string, source: string): unknown {
  const where = `${source}: ${key}`;
  switch (leaf.kind) {
    case 'list': {
      let data = raw;
      if (typeof raw === 'string') {
        try {
          data = YAML.parse(raw);
        } catch (e) {
          throw new ConfigError(`${where} is not valid YAML/JSON: ${(e as Error).message}`);
        }
      }
      if (!Array.isArray(data)) throw new ConfigError(`${where} must be a list`);
      return data.map((item, i) => {
        const out = defaults(leaf.item);
        mergeFile(out, leaf.item, item, `${key}[${i}]`, source);
        for (const r of leaf.required) if (!out[r]) throw new ConfigError(`${source}: ${key}[${i}].${r} is required`);
        return out;
      });
    }
    case 'string': {
      if (typeof raw !== 'string' && typeof raw !== 'number') throw new ConfigError(`${where} must be a string`);
      const v = String(raw);
      if (leaf.enum && !leaf.enum.includes(v)) {
        throw new ConfigError(`${where} must be one of ${leaf.enum.join(', ')} (got "${leaf.secret ? '***' : v}")`);
      }
      return v;
    }
    case 'int': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw new ConfigError(`${where} must be an integer (got ${JSON.stringify(raw)})`);
      if (n < leaf.min || n > leaf.max) throw new ConfigError(`${where} must be between ${leaf.min} and ${leaf.max} (got ${n})`);
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new ConfigError(`${where} must be true or false (got ${JSON.stringify(raw)})`);
    }
  }
}

function mergeFile(target: Record<string, unknown>, schema: Schema, data: unknown, prefix: string, source: string): void {
  if (data === null || data === undefined) return;
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${source}: ${prefix || '(top level)'} must be a mapping`);
  }
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const s = Object.hasOwn(schema, k) ? schema[k] : undefined;
    if (!s) {
      const known = Object.keys(schema).join(', ');
      throw new ConfigError(`${source}: unknown key "${key}" (known keys here: ${known})`);
    }
    if (isLeaf(s)) target[k] = coerce(s, v, key, source);
    else mergeFile(target[k] as Record<string, unknown>, s, v, key, source);
  }
}

function mergeEnv(target: Record<string, unknown>, schema: Schema, env: NodeJS.ProcessEnv, prefix: string): void {
  for (const [k, s] of Object.entries(schema)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isLeaf(s)) {
      const name = envName(key);
      const raw = env[name];
      if (raw !== undefined) target[k] = coerce(s, raw, key, `environment ${name}`);
    } else mergeEnv(target[k] as Record<string, unknown>, s, env, key);
  }
}

/** Every leaf key with its env name and default, for --help and the README. */
export function describeConfig(): { key: string; env: string; def: unknown }[] {
  const out: { key: string; env: string; def: unknown }[] = [];
  const walk = (schema: Schema, prefix: string): void => {
    for (const [k, s] of Object.entries(schema)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (isLeaf(s)) out.push({ key, env: envName(key), def: s.kind === 'string' && s.secret ? '' : s.def });
      else walk(s, key);
    }
  };
  walk(SCHEMA, '');
  return out;
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** CLI overrides as key paths, e.g. { 'log.level': 'debug' }. */
  overrides?: Record<string, unknown>;
}

/** Builds the effective configuration; throws ConfigError naming the file and key on any problem. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const cfg = defaults(SCHEMA);
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${opts.file}: ${(e as Error).message}`);
    }
    let data: unknown;
    try {
      data = opts.file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
    } catch (e) {
      throw new ConfigError(`config file ${opts.file} is not valid ${opts.file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
    }
    mergeFile(cfg, SCHEMA, data, '', `config file ${opts.file}`);
  }
  mergeEnv(cfg, SCHEMA, opts.env ?? process.env, '');
  for (const [key, raw] of Object.entries(opts.overrides ?? {})) {
    const parts = key.split('.');
    let schema: Schema = SCHEMA;
    let target = cfg;
    for (const [i, p] of parts.entries()) {
      const s = schema[p];
      if (!s) throw new ConfigError(`command line: unknown key "${key}"`);
      if (isLeaf(s)) {
        if (i !== parts.length - 1) throw new ConfigError(`command line: unknown key "${key}"`);
        target[p] = coerce(s, raw, key, 'command line');
      } else {
        schema = s;
        target = target[p] as Record<string, unknown>;
      }
    }
  }
  const config = cfg as unknown as Config;
  if (!config.store.path) config.store.path = path.join(config.dataDir, 'proxy.db');
  const redisUrl = config.store.redis.url;
  if (redisUrl && !/^rediss?:\/\/[^\s]+$/i.test(redisUrl))
    throw new ConfigError('store.redis.url: expected redis://[user:password@]host:port[/db] or rediss://...');
  if (config.cluster.heartbeatMs * 2 > config.cluster.instanceTtlMs) {
    throw new ConfigError(
      `cluster.instanceTtlMs (${config.cluster.instanceTtlMs}) must be at least twice cluster.heartbeatMs (${config.cluster.heartbeatMs}), or a busy instance is declared dead`,
    );
  }
  return config;
}
