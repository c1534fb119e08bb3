/**
 * Store factory: the one place that picks a Store implementation.
 * SQLite (one file, one instance) by default; Redis when store.redis.url is set, so that several
 * instances share devices, queues and subscriptions.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileErrorCause, type ModeFix } from './files.js';
import { RedisStore, type RedisStoreLog } from './redis.js';
import { parseSecretKey, SecretKeyError, type SecretCodec } from './secrets.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export type { DeviceQuery, DeviceRecord, QueuedRpc, RootModel, Store } from './types.js';
export type { RedisStoreLog } from './redis.js';

export interface StoreConfig {
  /** SQLite file (parent directories are created) or ':memory:'. Unused with Redis. */
  path: string;
  /** Open an existing store read-only (e.g. the CLI `devices` command beside a running proxy). SQLite only. */
  readonly?: boolean;
  /** A shared Redis store; chosen when url is non-empty. */
  redis?: { url: string; prefix: string };
  /** This instance's name in a shared store (pending Notifies, Request rows); default <hostname>-<pid>-<random>. */
  owner?: string;
  /** Where a Redis store reports outages and corrupt values. */
  log?: RedisStoreLog;
  /** Seals per-device secrets at rest (default: plain). */
  secrets?: SecretCodec;
  /** SQLite: a file or folder permission tightened at open. */
  onModeFix?: (fix: ModeFix) => void;
}

/**
 * The key sealing per-device secrets (docs/security.md "Secrets at rest"): from store.secretKeyFile,
 * or the key itself (CWMP_USP_PROXY_SECRET_KEY); null when neither is set. Throws SecretKeyError
 * naming the file or variable, never the key.
 */
export function loadSecretKey(store: { secretKeyFile: string; secretKey: string }, envName: string): Buffer | null {
  if (store.secretKeyFile) {
    let text: string;
    try {
      text = readFileSync(store.secretKeyFile, 'utf8');
    } catch (e) {
      throw new SecretKeyError(`store.secretKeyFile ${store.secretKeyFile}: cannot read the key: ${fileErrorCause(e)}`);
    }
    return parseSecretKey(text, `store.secretKeyFile ${store.secretKeyFile}`);
  }
  if (store.secretKey) return parseSecretKey(store.secretKey, envName);
  return null;
}

/**
 * Opens the configured store. Synchronous: a Redis store connects in the background (commands
 * queue meanwhile); call `store.ready?.()` to fail early with a readable message.
 */
export function openStore(config: StoreConfig): Store {
  if (config.redis?.url) {
    return new RedisStore({
      url: config.redis.url,
      prefix: config.redis.prefix,
      owner: config.owner || `${os.hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
      log: config.log,
      secrets: config.secrets,
    });
  }
  return openSqliteStore(config.path, { readonly: config.readonly, secrets: config.secrets, onModeFix: config.onModeFix });
}
