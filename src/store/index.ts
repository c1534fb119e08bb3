/**
 * Store factory: the one place that picks a Store implementation (DESIGN section 6).
 * SQLite today; a shared store (e.g. Redis) will be chosen here by config later.
 */
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export type { DeviceQuery, DeviceRecord, QueuedRpc, RootModel, Store } from './types.js';

export interface StoreConfig {
  /** SQLite file (parent directories are created) or ':memory:'. */
  path: string;
  /** Open an existing store read-only (e.g. the CLI `devices` command beside a running proxy). */
  readonly?: boolean;
}

export function openStore(config: StoreConfig): Store {
  return openSqliteStore(config.path, { readonly: config.readonly });
}
