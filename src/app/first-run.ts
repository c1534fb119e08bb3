/**
 * What the command line tells an operator on the first run: the start-up banner (where everything
 * listens, where the admin token is), the unknown CUP_ variables, the effective configuration with
 * secrets masked, and a plain message for a port already in use. Pure: text from config and ports.
 */
import os from 'node:os';
import path from 'node:path';
import { describeConfig, envName, type Config } from './config.js';

export interface Listening {
  acsPort: number;
  /** 0: the WebSocket MTP is off. */
  wsPort: number;
  /** 0: the admin side is off. */
  adminPort: number;
}

/** A wildcard bind address shows as this machine's name: the address others reach it by. */
function hostOf(h: string): string {
  const shown = h === '0.0.0.0' || h === '::' || h === '' ? os.hostname() : h;
  return shown.includes(':') ? `[${shown}]` : shown;
}

export function bannerLines(config: Config, at: Listening): string[] {
  const acsScheme = config.acs.tls.cert ? 'https' : 'http';
  const wsScheme = config.usp.websocket.tls.cert ? 'wss' : 'ws';
  const lines = ['cwmp-usp-proxy is running'];
  lines.push(`  ACS URL (ManagementServer.URL of the CPEs)  ${acsScheme}://${hostOf(config.acs.host)}:${at.acsPort}/`);
  if (at.wsPort)
    lines.push(`  USP WebSocket (controllers)                 ${wsScheme}://${hostOf(config.usp.websocket.host)}:${at.wsPort}${config.usp.websocket.path}`);
  if (config.usp.mqtt.url) lines.push(`  USP MQTT broker, agents' topic             ${maskUrl(config.usp.mqtt.url)} ${config.usp.mqtt.topic}`);
  if (config.usp.stomp.host)
    lines.push(`  USP STOMP broker, agents' destination      ${config.usp.stomp.host}:${config.usp.stomp.port} ${config.usp.stomp.destination}`);
  if (at.adminPort) {
    const admin = `http://${hostOf(config.admin.host)}:${at.adminPort}`;
    lines.push(`  status page                                 ${admin}/`);
    lines.push(`  admin API, /metrics, /healthz               ${admin}/api/`);
    lines.push(
      `  admin token                                 ${config.admin.token ? 'admin.token of the configuration' : path.join(config.dataDir, 'admin-token')}`,
    );
  }
  lines.push(`  data                                        ${config.store.redis.url ? maskUrl(config.store.redis.url) : config.store.path}`);
  return lines;
}

/** The warnings a first run deserves, one a line. */
export function startWarnings(config: Config): string[] {
  const out: string[] = [];
  if (config.controllers.length === 0) {
    out.push(
      'no controller is configured (controllers[]): every USP request is answered with Error 7006. ' +
        'Add one: controllers: [{ endpointId: proto::my-controller, role: full }] (docs/controller-trust.md)',
    );
  }
  return out;
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length]!;
}

/** CUP_ variables that name no configuration key, each with the closest known name when one is near. */
export function unknownCupVariables(env: NodeJS.ProcessEnv): string[] {
  const known = describeConfig().map((d) => d.env);
  const set = new Set(known);
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('CUP_') || set.has(name)) continue;
    let best = '';
    let bestD = Infinity;
    for (const k of known) {
      const dd = distance(name, k);
      if (dd < bestD) [best, bestD] = [k, dd];
    }
    out.push(`unknown environment variable ${name} ignored${bestD <= 3 ? ` (did you mean ${best}?)` : ''}; 'cwmp-usp-proxy config' lists them`);
  }
  return out;
}

const SECRET_KEY = /(^|\.)(password|passcode|secret|token)$/i;

/** user:password@ of a URL as ***. */
function maskUrl(u: string): string {
  return u.replace(/\/\/([^/@]*)@/, (_, cred: string) => `//${cred.includes(':') ? `${cred.split(':')[0]}:***` : '***'}@`);
}

function mask(key: string, v: unknown): unknown {
  if (typeof v === 'string' && v !== '' && SECRET_KEY.test(key)) return '***';
  if (typeof v === 'string' && key.endsWith('url')) return maskUrl(v);
  if (Array.isArray(v)) return v.map((x) => mask(key, x));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mask(`${key}.${k}`, x)]));
  return v;
}

function valueAt(config: Config, key: string): unknown {
  let x: unknown = config;
  for (const p of key.split('.')) x = (x as Record<string, unknown> | undefined)?.[p];
  return x;
}

/**
 * `cwmp-usp-proxy config`: every key, its variable and its effective value (secrets as ***), with
 * the default beside any value that differs from it.
 */
export function configLines(config: Config): string[] {
  return describeConfig().map(({ key, env, def }) => {
    const v = mask(key, valueAt(config, key));
    const shown = JSON.stringify(v);
    const d = JSON.stringify(mask(key, def));
    return `${key.padEnd(40)} ${env.padEnd(52)} ${shown}${shown === d ? '' : `   (default ${d})`}`;
  });
}

/** A listen failure as one plain line naming the option, or null when it is not one. */
export function listenErrorMessage(e: unknown, config: Config): string | null {
  const err = e as NodeJS.ErrnoException & { port?: number; address?: string };
  if (err?.code !== 'EADDRINUSE' && err?.code !== 'EACCES' && err?.code !== 'EADDRNOTAVAIL') return null;
  const port = err.port;
  const options = (
    [
      ['acs.port', config.acs.port],
      ['usp.websocket.port', config.usp.websocket.port],
      ['admin.port', config.admin.port],
    ] as const
  )
    .filter(([, p]) => p === port)
    .map(([k]) => `${k} (${envName(k)})`);
  const where = `${err.address ?? ''}:${port ?? '?'}`;
  const which = options.length ? `; set another port with ${options.join(' or ')}` : '';
  switch (err.code) {
    case 'EADDRINUSE':
      return `port ${port} is already in use (${where}): another process listens there${which}`;
    case 'EACCES':
      return `no permission to listen on port ${port} (${where}): ports below 1024 need privileges${which}`;
    default:
      return `cannot listen on ${where}: the address is not on this machine${options.length ? `; check the host of ${options.join(' or ').replace(/\.port/g, '.host')}` : ''}`;
  }
}
