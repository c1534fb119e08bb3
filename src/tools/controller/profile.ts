/**
 * Defaults of the `usp` CLI's transport options, so one call needs only the command and --to:
 * command line > environment (USP_<FLAG>) > profile file > built-in defaults. The profile is a YAML
 * mapping of option names to values, `~/.config/cwmp-usp-proxy/usp.yaml` unless `--profile FILE`
 * or USP_PROFILE names another (docs/usp-cli.md).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { describeConfig } from '../../app/config.js';

/** Options a profile or the environment may set (the transport and identity ones). */
export const PROFILE_KEYS = [
  'to',
  'mtp',
  'url',
  'controller-topic',
  'agent-topic',
  'mqtt-version',
  'host',
  'port',
  'login',
  'passcode',
  'vhost',
  'controller-dest',
  'agent-dest',
  'secret-file',
  'ca',
  'cert',
  'key',
  'from',
  'timeout',
] as const;
export type ProfileKey = (typeof PROFILE_KEYS)[number];

/** --controller-topic -> USP_CONTROLLER_TOPIC. */
export const envVarOf = (key: string): string => `USP_${key.toUpperCase().replace(/-/g, '_')}`;

export class ProfileError extends Error {}

function configDefault(key: string): unknown {
  return describeConfig().find((d) => d.key === key)?.def;
}

/**
 * Longer than the proxy's default connection-request deadline (acs.connectionRequest.deadlineMs),
 * so a request to a device that must first be woken gets the proxy's answer, not our timeout.
 */
export function defaultTimeoutMs(): number {
  const deadline = Number(configDefault('acs.connectionRequest.deadlineMs') ?? 30_000);
  return deadline + 15_000;
}

/** The proxy's WebSocket listener with the default configuration. */
export function defaultWsUrl(): string {
  return `ws://127.0.0.1:${String(configDefault('usp.websocket.port') ?? 8080)}${String(configDefault('usp.websocket.path') ?? '/usp')}`;
}

export function defaultProfilePath(env: NodeJS.ProcessEnv): string {
  const base = env['XDG_CONFIG_HOME'] || path.join(env['HOME'] || os.homedir(), '.config');
  return path.join(base, 'cwmp-usp-proxy', 'usp.yaml');
}

export interface Defaults {
  values: Partial<Record<ProfileKey, string>>;
  /** The profile file read, if any. */
  profile?: string;
}

/**
 * Reads the profile (the explicit one must exist; the default one may be absent) and the
 * environment. Throws ProfileError naming the file and key on any problem.
 */
export function loadDefaults(env: NodeJS.ProcessEnv, explicitProfile?: string): Defaults {
  const values: Partial<Record<ProfileKey, string>> = {};
  const file = explicitProfile ?? env['USP_PROFILE'] ?? defaultProfilePath(env);
  const required = explicitProfile !== undefined || env['USP_PROFILE'] !== undefined;
  let profile: string | undefined;
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
    profile = file;
  } catch (e) {
    if (required || (e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ProfileError(`cannot read profile ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (text !== undefined) {
    let data: unknown;
    try {
      data = YAML.parse(text);
    } catch (e) {
      throw new ProfileError(`profile ${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (data !== null && data !== undefined) {
      if (typeof data !== 'object' || Array.isArray(data)) throw new ProfileError(`profile ${file}: expected a mapping of option: value`);
      for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
        if (!(PROFILE_KEYS as readonly string[]).includes(k)) {
          throw new ProfileError(`profile ${file}: unknown key "${k}" (known: ${PROFILE_KEYS.join(', ')})`);
        }
        if (typeof v !== 'string' && typeof v !== 'number') throw new ProfileError(`profile ${file}: ${k} must be a string or a number`);
        const key = k as ProfileKey;
        // Files named in the profile are relative to the profile's directory.
        values[key] = ['secret-file', 'ca', 'cert', 'key'].includes(key) ? path.resolve(path.dirname(file), String(v)) : String(v);
      }
    }
  }
  for (const k of PROFILE_KEYS) {
    const v = env[envVarOf(k)];
    if (v !== undefined && v !== '') values[k] = v;
  }
  return { values, ...(profile ? { profile } : {}) };
}
