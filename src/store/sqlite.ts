/**
 * The embedded default Store: one SQLite file via better-sqlite3.
 * WAL mode so that a second handle (the CLI `devices` command) reads while the proxy
 * writes; synchronous=NORMAL (durable across process crashes, which is what a restart
 * needs; a power cut may lose the last transactions); all statements prepared once.
 */
import Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import { deviceStrings } from '../util/intern.js';
import { deviceKeyOf } from '../cwmp/device-id.js';
import type { AcsRequest, XsdType } from '../cwmp/types.js';
import {
  authFields,
  type DeviceQuery,
  type DeviceRecord,
  type LearnedKind,
  type PendingNotify,
  type QueuedRpc,
  type RootModel,
  type Store,
  type StoredRow,
} from './types.js';
import { storeWriteFailed } from './errors.js';
import { fileErrorCause, type ModeFix, prepareSqliteFile, StoreOpenError } from './files.js';
import { PLAIN_SECRETS, SEALED_PREFIX, type SecretCodec } from './secrets.js';

type DB = Database.Database;

/**
 * Schema migrations by version; append only, never edit an applied one. Each applies once, by
 * version (not "everything above the highest"), so that branches numbering theirs apart merge in
 * any order. `run` is a migration that needs code, inside the same transaction.
 */
const MIGRATIONS: ReadonlyArray<{ version: number; sql?: string; run?: (db: DB) => void }> = [
  {
    version: 1,
    sql: `
      CREATE TABLE devices (
        device_key               TEXT PRIMARY KEY NOT NULL,
        endpoint_id              TEXT NOT NULL UNIQUE,
        manufacturer             TEXT NOT NULL,
        oui                      TEXT NOT NULL,
        product_class            TEXT NOT NULL,
        serial_number            TEXT NOT NULL,
        root_model               TEXT NOT NULL,
        software_version         TEXT,
        conn_req_url             TEXT,
        conn_req_username        TEXT,
        conn_req_password        TEXT,
        cpe_username             TEXT,
        cpe_password             TEXT,
        periodic_inform_interval INTEGER,
        last_inform              TEXT,
        last_inform_events       TEXT NOT NULL DEFAULT '[]',
        registered_at            TEXT NOT NULL
      );
      CREATE TABLE parameter_types (
        model_key TEXT NOT NULL,
        name      TEXT NOT NULL,
        type      TEXT NOT NULL,
        PRIMARY KEY (model_key, name)
      ) WITHOUT ROWID;
      CREATE TABLE queued_rpcs (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        id         TEXT NOT NULL UNIQUE,
        device_key TEXT NOT NULL,
        rpc        TEXT NOT NULL,
        created_at TEXT NOT NULL,
        deadline   INTEGER NOT NULL
      );
      CREATE INDEX queued_rpcs_device ON queued_rpcs (device_key, seq);
    `,
  },
  {
    version: 2,
    sql: `
      CREATE TABLE usp_subscriptions (
        agent_eid TEXT NOT NULL,
        instance  INTEGER NOT NULL,
        value     TEXT NOT NULL,
        PRIMARY KEY (agent_eid, instance)
      );
    `,
  },
  {
    version: 3,
    sql: `
      CREATE TABLE usp_pending_notify (
        msg_id         TEXT PRIMARY KEY NOT NULL,
        agent_eid      TEXT NOT NULL,
        controller_eid TEXT NOT NULL,
        msg            BLOB NOT NULL,
        attempt        INTEGER NOT NULL,
        expires_at     INTEGER
      );
    `,
  },
  {
    version: 4,
    sql: `
      CREATE TABLE mapping_instances (
        device_key TEXT PRIMARY KEY NOT NULL,
        map        TEXT NOT NULL
      );
    `,
  },
  {
    version: 5,
    sql: `
      CREATE TABLE usp_requests (
        agent_eid TEXT NOT NULL,
        instance  INTEGER NOT NULL,
        value     TEXT NOT NULL,
        PRIMARY KEY (agent_eid, instance)
      );
    `,
  },
  {
    version: 6,
    sql: `
      CREATE TABLE learned (
        kind TEXT NOT NULL,
        key  TEXT NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (kind, key)
      );
    `,
  },
  {
    // CPE authentication (docs/security.md "CPE authentication"): pending per-device credentials
    // and the TLS client certificate identity bound to the device at first use.
    version: 7,
    sql: `
      ALTER TABLE devices ADD COLUMN cpe_pending_username TEXT;
      ALTER TABLE devices ADD COLUMN cpe_pending_password TEXT;
      ALTER TABLE devices ADD COLUMN cpe_cert_identity TEXT;
      CREATE INDEX devices_cpe_username ON devices (cpe_username);
      CREATE INDEX devices_cpe_pending_username ON devices (cpe_pending_username);
    `,
  },
  // Version 8 (7 is another branch's; versions apply one by one): device keys whose OUI or
  // ProductClass hold "-" move to the collision-free form of cwmp/device-id.ts.
  // Also: queued_rpcs.sent_at, QueuedRpc.sentAt (at-most-once across a crash).
  { version: 8, sql: 'ALTER TABLE queued_rpcs ADD COLUMN sent_at INTEGER;', run: (db) => rekeyDevicesIn(db) },
  {
    // Operator tags per device (admin API, docs/nbi.md), searched by tag.
    version: 9,
    sql: `
      CREATE TABLE device_tags (
        device_key TEXT NOT NULL,
        tag        TEXT NOT NULL,
        PRIMARY KEY (device_key, tag)
      );
      CREATE INDEX device_tags_tag ON device_tags (tag, device_key);
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

interface DeviceRow {
  device_key: string;
  endpoint_id: string;
  manufacturer: string;
  oui: string;
  product_class: string;
  serial_number: string;
  root_model: string;
  software_version: string | null;
  conn_req_url: string | null;
  conn_req_username: string | null;
  conn_req_password: string | null;
  cpe_username: string | null;
  cpe_password: string | null;
  cpe_pending_username: string | null;
  cpe_pending_password: string | null;
  cpe_cert_identity: string | null;
  periodic_inform_interval: number | null;
  last_inform: string | null;
  last_inform_events: string;
  registered_at: string;
}

interface QueuedRow {
  id: string;
  device_key: string;
  rpc: string;
  created_at: string;
  deadline: number;
  sent_at: number | null;
}

export interface SqliteStoreOptions {
  /** Open an existing file read-only (e.g. for the CLI); no migrations are run. */
  readonly?: boolean;
  /** SQLite busy_timeout in ms (default 5000). */
  busyTimeoutMs?: number;
  /** Devices kept in memory for the Inform and USP hot paths (default DEVICE_CACHE_SIZE; bounded, never the truth). */
  deviceCacheSize?: number;
  /** Inform bookkeeping is written in batches at most this often (ms; 0 = write at once). */
  touchFlushMs?: number;
  /** Seals per-device secrets at rest (default: stored plain). */
  secrets?: SecretCodec;
  /** Reports permissions tightened at open (openSqliteStore). */
  onModeFix?: (fix: ModeFix) => void;
  /**
   * SQLite page cache in KiB (default SQLITE_CACHE_KIB). better-sqlite3 builds with 16 MiB; the
   * device reads of the hot path come from the store's own LRUs, and pages missed here come from
   * the OS file cache, so a small cache costs little and saves malloc memory the process keeps.
   */
  cacheKiB?: number;
}

/**
 * Default number of devices the store keeps in memory (about 0.4 KiB each): the devices in a
 * session or asked over USP lately. A device informs once per PeriodicInformInterval (typically an
 * hour or a day), so the active ones at any moment are a small part of the fleet; one missed costs
 * a SQLite read (tens of microseconds) and is cached again.
 */
export const DEVICE_CACHE_SIZE = 2000;

/** Default SQLite page cache (KiB): 2 MiB, SQLite's own default (better-sqlite3 raises it to 16 MiB). */
export const SQLITE_CACHE_KIB = 2048;

function migrate(db: DB): void {
  const run = db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY NOT NULL, applied_at TEXT NOT NULL)');
    const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
    const current = row.v ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new Error(`store schema version ${current} is newer than this program supports (${SCHEMA_VERSION})`);
    }
    const applied = new Set((db.prepare('SELECT version FROM schema_version').all() as { version: number }[]).map((r) => r.version));
    const record = db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)');
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      if (m.sql) db.exec(m.sql);
      m.run?.(db);
      record.run(m.version, new Date().toISOString());
    }
  });
  // IMMEDIATE: two processes opening a fresh file at once must not both migrate.
  run.immediate();
}

/**
 * Moves every device whose stored key is not deviceKeyOf(its DeviceId) to that key, with the rows
 * keyed by it (queued RPCs, instance map, learned device and watch documents). Idempotent; a key
 * already taken is left alone (counted in `clashes`), never merged.
 */
function rekeyDevicesIn(db: DB): { moved: number; clashes: number } {
  const rows = db.prepare('SELECT device_key, oui, product_class, serial_number FROM devices').all() as Pick<
    DeviceRow,
    'device_key' | 'oui' | 'product_class' | 'serial_number'
  >[];
  const exists = db.prepare<[string], { n: number }>('SELECT 1 AS n FROM devices WHERE device_key = ?');
  const moves = [
    db.prepare('UPDATE devices SET device_key = @to WHERE device_key = @from'),
    db.prepare('UPDATE queued_rpcs SET device_key = @to WHERE device_key = @from'),
    db.prepare('UPDATE mapping_instances SET device_key = @to WHERE device_key = @from'),
    db.prepare("UPDATE learned SET key = @to WHERE kind IN ('device', 'watch') AND key = @from"),
  ];
  let moved = 0;
  let clashes = 0;
  for (const r of rows) {
    const to = deviceKeyOf({ manufacturer: '', oui: r.oui, productClass: r.product_class, serialNumber: r.serial_number });
    if (to === r.device_key) continue;
    if (exists.get(to)) {
      clashes++;
      continue;
    }
    for (const m of moves) m.run({ from: r.device_key, to });
    moved++;
  }
  return { moved, clashes };
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => '\\' + c);
}

function toDevice(r: DeviceRow, secrets: SecretCodec): DeviceRecord {
  return {
    deviceKey: r.device_key,
    endpointId: r.endpoint_id,
    deviceId: { manufacturer: r.manufacturer, oui: r.oui, productClass: r.product_class, serialNumber: r.serial_number },
    rootModel: r.root_model as RootModel,
    softwareVersion: r.software_version,
    connectionRequestUrl: r.conn_req_url,
    connReqUsername: r.conn_req_username,
    connReqPassword: secrets.open('connReqPassword', r.conn_req_password),
    cpeUsername: r.cpe_username,
    cpePassword: secrets.open('cpePassword', r.cpe_password),
    ...authFields(r.cpe_pending_username, secrets.open('cpePendingPassword', r.cpe_pending_password), r.cpe_cert_identity),
    periodicInformInterval: r.periodic_inform_interval,
    lastInform: r.last_inform,
    lastInformEvents: JSON.parse(r.last_inform_events) as string[],
    registeredAt: r.registered_at,
  };
}

function toQueued(r: QueuedRow): QueuedRpc {
  const q: QueuedRpc = { id: r.id, deviceKey: r.device_key, rpc: JSON.parse(r.rpc) as AcsRequest, createdAt: r.created_at, deadline: r.deadline };
  if (r.sent_at !== null) q.sentAt = r.sent_at;
  return q;
}

function nonNegativeInt(v: number | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer`);
  return v;
}

function prepareStatements(db: DB) {
  const searchCols = ['endpoint_id', 'device_key', 'serial_number', 'product_class', 'oui', 'manufacturer'];
  const searchWhere = searchCols.map((c) => `${c} LIKE @pattern ESCAPE '\\'`).join(' OR ');
  return {
    upsertDevice: db.prepare<[DeviceRow]>(`
      INSERT INTO devices (device_key, endpoint_id, manufacturer, oui, product_class, serial_number, root_model,
        software_version, conn_req_url, conn_req_username, conn_req_password, cpe_username, cpe_password,
        cpe_pending_username, cpe_pending_password, cpe_cert_identity,
        periodic_inform_interval, last_inform, last_inform_events, registered_at)
      VALUES (@device_key, @endpoint_id, @manufacturer, @oui, @product_class, @serial_number, @root_model,
        @software_version, @conn_req_url, @conn_req_username, @conn_req_password, @cpe_username, @cpe_password,
        @cpe_pending_username, @cpe_pending_password, @cpe_cert_identity,
        @periodic_inform_interval, @last_inform, @last_inform_events, @registered_at)
      ON CONFLICT (device_key) DO UPDATE SET
        endpoint_id = excluded.endpoint_id, manufacturer = excluded.manufacturer, oui = excluded.oui,
        product_class = excluded.product_class, serial_number = excluded.serial_number,
        root_model = excluded.root_model, software_version = excluded.software_version,
        conn_req_url = excluded.conn_req_url, conn_req_username = excluded.conn_req_username,
        conn_req_password = excluded.conn_req_password, cpe_username = excluded.cpe_username,
        cpe_password = excluded.cpe_password, cpe_pending_username = excluded.cpe_pending_username,
        cpe_pending_password = excluded.cpe_pending_password, cpe_cert_identity = excluded.cpe_cert_identity,
        periodic_inform_interval = excluded.periodic_inform_interval,
        last_inform = excluded.last_inform, last_inform_events = excluded.last_inform_events,
        registered_at = excluded.registered_at`),
    getDevice: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE device_key = ?'),
    getByCpeUsername: db.prepare<[string, string], DeviceRow>('SELECT * FROM devices WHERE cpe_username = ? OR cpe_pending_username = ? LIMIT 1'),
    getByEndpoint: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE endpoint_id = ?'),
    list: db.prepare<[{ limit: number; offset: number }], DeviceRow>('SELECT * FROM devices ORDER BY device_key LIMIT @limit OFFSET @offset'),
    search: db.prepare<[{ pattern: string; limit: number; offset: number }], DeviceRow>(
      `SELECT * FROM devices WHERE ${searchWhere} ORDER BY device_key LIMIT @limit OFFSET @offset`,
    ),
    count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM devices'),
    // Hot path: one indexed UPDATE. A null URL (Inform without it) keeps the known one.
    touch: db.prepare<[string, string, string | null, string]>(
      'UPDATE devices SET last_inform = ?, last_inform_events = ?, conn_req_url = COALESCE(?, conn_req_url) WHERE device_key = ?',
    ),
    putType: db.prepare<[string, string, string]>(
      'INSERT INTO parameter_types (model_key, name, type) VALUES (?, ?, ?) ON CONFLICT (model_key, name) DO UPDATE SET type = excluded.type',
    ),
    typesAll: db.prepare<[string], { name: string; type: string }>('SELECT name, type FROM parameter_types WHERE model_key = ?'),
    typesSome: db.prepare<[string, string], { name: string; type: string }>(
      'SELECT name, type FROM parameter_types WHERE model_key = ? AND name IN (SELECT value FROM json_each(?))',
    ),
    markSent: db.prepare<[number, string]>('UPDATE queued_rpcs SET sent_at = ? WHERE id = ?'),
    addRpc: db.prepare<[string, string, string, string, number]>('INSERT INTO queued_rpcs (id, device_key, rpc, created_at, deadline) VALUES (?, ?, ?, ?, ?)'),
    // FIFO = insertion order (seq), which is also createdAt order when one clock stamps them.
    listRpcs: db.prepare<[string], QueuedRow>('SELECT id, device_key, rpc, created_at, deadline, sent_at FROM queued_rpcs WHERE device_key = ? ORDER BY seq'),
    listAllRpcs: db.prepare<[], QueuedRow>('SELECT id, device_key, rpc, created_at, deadline, sent_at FROM queued_rpcs ORDER BY seq'),
    removeRpc: db.prepare<[string]>('DELETE FROM queued_rpcs WHERE id = ?'),
    putSub: db.prepare<[string, number, string]>(
      'INSERT INTO usp_subscriptions (agent_eid, instance, value) VALUES (?, ?, ?) ON CONFLICT (agent_eid, instance) DO UPDATE SET value = excluded.value',
    ),
    putNotify: db.prepare<[string, string, string, Uint8Array, number, number | null]>(
      'INSERT INTO usp_pending_notify (msg_id, agent_eid, controller_eid, msg, attempt, expires_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (msg_id) DO UPDATE SET attempt = excluded.attempt',
    ),
    putReq: db.prepare<[string, number, string]>(
      'INSERT INTO usp_requests (agent_eid, instance, value) VALUES (?, ?, ?) ON CONFLICT (agent_eid, instance) DO UPDATE SET value = excluded.value',
    ),
    deleteReq: db.prepare<[string, number]>('DELETE FROM usp_requests WHERE agent_eid = ? AND instance = ?'),
    listReqs: db.prepare<[], { agent_eid: string; instance: number; value: string }>(
      'SELECT agent_eid, instance, value FROM usp_requests ORDER BY agent_eid, instance',
    ),
    getMap: db.prepare<[string], { map: string }>('SELECT map FROM mapping_instances WHERE device_key = ?'),
    putMap: db.prepare<[string, string]>(
      'INSERT INTO mapping_instances (device_key, map) VALUES (?, ?) ON CONFLICT (device_key) DO UPDATE SET map = excluded.map',
    ),
    getLearned: db.prepare<[string, string], { json: string }>('SELECT json FROM learned WHERE kind = ? AND key = ?'),
    putLearned: db.prepare<[string, string, string]>(
      'INSERT INTO learned (kind, key, json) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET json = excluded.json',
    ),
    deleteLearned: db.prepare<[string, string]>('DELETE FROM learned WHERE kind = ? AND key = ?'),
    deleteNotify: db.prepare<[string]>('DELETE FROM usp_pending_notify WHERE msg_id = ?'),
    listNotify: db.prepare<[], { msg_id: string; agent_eid: string; controller_eid: string; msg: Buffer; attempt: number; expires_at: number | null }>(
      'SELECT msg_id, agent_eid, controller_eid, msg, attempt, expires_at FROM usp_pending_notify',
    ),
    deleteSub: db.prepare<[string, number]>('DELETE FROM usp_subscriptions WHERE agent_eid = ? AND instance = ?'),
    listSubs: db.prepare<[], { agent_eid: string; instance: number; value: string }>(
      'SELECT agent_eid, instance, value FROM usp_subscriptions ORDER BY agent_eid, instance',
    ),
  };
}

export class SqliteStore implements Store {
  private readonly db: DB;
  private closed = false;
  private readonly st: ReturnType<typeof prepareStatements>;
  private readonly putTypesTx: (modelKey: string, types: ReadonlyMap<string, XsdType>) => void;
  /**
   * Recently active devices, so that an Inform costs no SQLite read. Every write goes
   * through this object, so the cache is exact for this process (other processes only read).
   */
  private readonly cache: LRUCache<string, DeviceRecord>;
  /** Endpoint ID -> device key of the devices looked up by endpoint ID (checked against the cache on use). */
  private readonly keyByEndpoint: LRUCache<string, string>;
  /** Inform bookkeeping not yet written: batched into one transaction (write-behind, <= flushMs). */
  private readonly pendingTouches = new Map<string, [string, string, string | null]>();
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly flushTx: () => void;
  private readonly flushMs: number;
  private readonly secrets: SecretCodec;
  /** The last write-behind flush failed (disk full, read-only): the next touchInform writes at once and reports it. */
  private flushFailed = false;

  /** Prefer openSqliteStore(), which also creates the parent directory (0700) and the file (0600). */
  constructor(file: string, opts: SqliteStoreOptions = {}) {
    this.secrets = opts.secrets ?? PLAIN_SECRETS;
    let db: DB;
    try {
      db = opts.readonly ? new Database(file, { readonly: true, fileMustExist: true }) : new Database(file);
    } catch (e) {
      throw new StoreOpenError(file, `store.path ${file}: cannot open the database: ${fileErrorCause(e)}`);
    }
    this.db = db;
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
      // Negative: a size in KiB (SQLite "PRAGMA cache_size").
      db.pragma(`cache_size = -${Math.max(64, Math.floor(opts.cacheKiB ?? SQLITE_CACHE_KIB))}`);
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.pragma('foreign_keys = ON');
        // Sealed secrets: a replaced plain value must not linger in a free page.
        if (this.secrets.keyId) db.pragma('secure_delete = ON');
        migrate(db);
      } else {
        const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
        if ((row.v ?? 0) !== SCHEMA_VERSION) {
          throw new Error(`store schema version ${row.v ?? 0} does not match this program (${SCHEMA_VERSION})`);
        }
      }
      this.checkSealedSecrets();
      if (!opts.readonly) this.sealPlainSecrets();
    } catch (err) {
      db.close();
      const code = (err as { code?: string }).code ?? '';
      if (/^SQLITE_(READONLY|CANTOPEN|FULL|IOERR|NOTADB|CORRUPT|PERM|AUTH)/.test(code))
        throw new StoreOpenError(file, `store.path ${file}: cannot use the database: ${(err as Error).message} (${code})`);
      throw err;
    }

    this.st = prepareStatements(db);
    const putType = this.st.putType;
    this.putTypesTx = db.transaction((modelKey: string, types: ReadonlyMap<string, XsdType>) => {
      for (const [name, type] of types) putType.run(modelKey, name, type);
    });
    const touch = this.st.touch;
    this.flushTx = db.transaction(() => {
      for (const [key, [at, events, url]] of this.pendingTouches) touch.run(at, events, url, key);
    });
    this.cache = new LRUCache({ max: Math.max(1, opts.deviceCacheSize ?? DEVICE_CACHE_SIZE) });
    this.keyByEndpoint = new LRUCache({ max: Math.max(1, opts.deviceCacheSize ?? DEVICE_CACHE_SIZE) });
    this.flushMs = opts.touchFlushMs ?? 25;
  }

  /** Writes batched Inform bookkeeping now (before any read that must see it, and on close). */
  flush(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (this.pendingTouches.size === 0) return;
    this.flushTx();
    this.pendingTouches.clear();
  }

  async upsertDevice(d: DeviceRecord): Promise<void> {
    this.cache.delete(d.deviceKey);
    this.st.upsertDevice.run({
      device_key: d.deviceKey,
      endpoint_id: d.endpointId,
      manufacturer: d.deviceId.manufacturer,
      oui: d.deviceId.oui,
      product_class: d.deviceId.productClass,
      serial_number: d.deviceId.serialNumber,
      root_model: d.rootModel,
      software_version: d.softwareVersion,
      conn_req_url: d.connectionRequestUrl,
      conn_req_username: d.connReqUsername,
      conn_req_password: this.secrets.seal('connReqPassword', d.connReqPassword),
      cpe_username: d.cpeUsername,
      cpe_password: this.secrets.seal('cpePassword', d.cpePassword),
      cpe_pending_username: d.cpePendingUsername ?? null,
      cpe_pending_password: this.secrets.seal('cpePendingPassword', d.cpePendingPassword ?? null),
      cpe_cert_identity: d.cpeCertIdentity ?? null,
      periodic_inform_interval: d.periodicInformInterval,
      last_inform: d.lastInform,
      last_inform_events: JSON.stringify(d.lastInformEvents),
      registered_at: d.registeredAt,
    });
    this.pendingTouches.delete(d.deviceKey);
    this.cache.set(d.deviceKey, cachedCopy(d));
  }

  async deleteDevice(deviceKey: string): Promise<boolean> {
    this.flushForRead();
    this.cache.delete(deviceKey);
    this.pendingTouches.delete(deviceKey);
    let n = 0;
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM queued_rpcs WHERE device_key = ?').run(deviceKey);
      this.db.prepare('DELETE FROM mapping_instances WHERE device_key = ?').run(deviceKey);
      this.db.prepare("DELETE FROM learned WHERE kind IN ('device', 'transfer') AND key = ?").run(deviceKey);
      this.db.prepare('DELETE FROM device_tags WHERE device_key = ?').run(deviceKey);
      n = this.db.prepare('DELETE FROM devices WHERE device_key = ?').run(deviceKey).changes;
    })();
    return n > 0;
  }

  async getTags(deviceKey: string): Promise<string[]> {
    return (this.db.prepare('SELECT tag FROM device_tags WHERE device_key = ? ORDER BY tag').all(deviceKey) as { tag: string }[]).map((r) => r.tag);
  }

  async setTags(deviceKey: string, tags: readonly string[]): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM device_tags WHERE device_key = ?').run(deviceKey);
      const add = this.db.prepare('INSERT OR IGNORE INTO device_tags (device_key, tag) VALUES (?, ?)');
      for (const t of tags) add.run(deviceKey, t);
    })();
  }

  async devicesWithTag(tag: string): Promise<string[]> {
    return (this.db.prepare('SELECT device_key FROM device_tags WHERE tag = ? ORDER BY device_key').all(tag) as { device_key: string }[]).map(
      (r) => r.device_key,
    );
  }

  async getDevice(deviceKey: string): Promise<DeviceRecord | null> {
    const hit = this.cache.get(deviceKey);
    if (hit) return copyDevice(hit);
    this.flushForRead();
    const r = this.st.getDevice.get(deviceKey);
    if (!r) return null;
    const d = toDevice(r, this.secrets);
    this.cache.set(deviceKey, cachedCopy(d));
    return d;
  }

  async getDeviceByEndpointId(endpointId: string): Promise<DeviceRecord | null> {
    // Asked several times per USP request: answered from the device cache when it holds the
    // device (exact for this process, see `cache`); the endpoint ID is checked, it may have moved.
    const key = this.keyByEndpoint.get(endpointId);
    const hit = key === undefined ? undefined : this.cache.get(key);
    if (hit && hit.endpointId === endpointId) return copyDevice(hit);
    this.flushForRead();
    const r = this.st.getByEndpoint.get(endpointId);
    if (!r) return null;
    const d = toDevice(r, this.secrets);
    this.cache.set(d.deviceKey, cachedCopy(d));
    this.keyByEndpoint.set(endpointId, d.deviceKey);
    return d;
  }

  async getDeviceByCpeUsername(username: string): Promise<DeviceRecord | null> {
    this.flushForRead();
    const r = this.st.getByCpeUsername.get(username, username);
    return r ? toDevice(r, this.secrets) : null;
  }

  async listDevices(query: DeviceQuery = {}): Promise<DeviceRecord[]> {
    // LIMIT -1 is "no limit" in SQLite.
    const limit = query.limit === undefined ? -1 : nonNegativeInt(query.limit, 'limit', -1);
    const offset = nonNegativeInt(query.offset, 'offset', 0);
    this.flushForRead();
    const rows = query.search ? this.st.search.all({ pattern: `%${escapeLike(query.search)}%`, limit, offset }) : this.st.list.all({ limit, offset });
    return rows.map((r) => toDevice(r, this.secrets));
  }

  async countDevices(): Promise<number> {
    this.flushForRead();
    return this.st.count.get()!.n;
  }

  async touchInform(deviceKey: string, at: string, events: string[], connectionRequestUrl: string | null): Promise<void> {
    const hit = this.cache.get(deviceKey);
    if (hit) {
      hit.lastInform = at;
      hit.lastInformEvents = sharedEvents(events);
      if (connectionRequestUrl !== null) hit.connectionRequestUrl = connectionRequestUrl;
    }
    const prev = this.pendingTouches.get(deviceKey);
    this.pendingTouches.set(deviceKey, [at, JSON.stringify(events), connectionRequestUrl ?? prev?.[2] ?? null]);
    if (this.flushFailed) {
      this.flush(); // throws while writes still fail: this Inform's CPE gets the 503
      this.flushFailed = false;
    } else if (this.flushMs <= 0 || this.pendingTouches.size >= 1000) this.flush();
    else if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flushLater(), this.flushMs);
  }

  /**
   * Before a read that should see the batched bookkeeping: while writes fail, the read goes on
   * with what is written (reads keep working on a full disk) and the batch stays pending.
   */
  private flushForRead(): void {
    try {
      this.flush();
    } catch (e) {
      if (!storeWriteFailed(e)) throw e;
      this.flushFailed = true;
    }
  }

  /** The timer's flush: a failure must not escape a timer (it would end the process); it is kept for the next caller. */
  private flushLater(): void {
    this.flushTimer = null;
    try {
      this.flush();
      this.flushFailed = false;
    } catch {
      // The touches stay pending; touchInform now flushes at once and its caller sees the error.
      this.flushFailed = true;
    }
  }

  /**
   * A key was configured: seal the secrets stored plain before (an upgrade, or a key configured
   * later), so that the file holds no plain secret from the first start with a key on.
   */
  private sealPlainSecrets(): void {
    if (!this.secrets.keyId) return;
    const plain = (col: string) => `(${col} IS NOT NULL AND substr(${col}, 1, ${SEALED_PREFIX.length}) <> '${SEALED_PREFIX}')`;
    const rows = this.db
      .prepare<[], { device_key: string; conn_req_password: string | null; cpe_password: string | null }>(
        `SELECT device_key, conn_req_password, cpe_password FROM devices WHERE ${plain('conn_req_password')} OR ${plain('cpe_password')}`,
      )
      .all();
    if (rows.length === 0) return;
    const update = this.db.prepare<[string | null, string | null, string]>('UPDATE devices SET conn_req_password = ?, cpe_password = ? WHERE device_key = ?');
    this.db.transaction(() => {
      for (const r of rows) {
        const seal = (field: string, v: string | null) => (v === null || v.startsWith(SEALED_PREFIX) ? v : this.secrets.seal(field, v));
        update.run(seal('connReqPassword', r.conn_req_password), seal('cpePassword', r.cpe_password), r.device_key);
      }
    })();
    // Plain values replaced above may remain in the WAL until a checkpoint.
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /** One sealed value opened at start: a missing or wrong key fails here, clearly, not on a CPE's Inform. */
  private checkSealedSecrets(): void {
    const sealed = (col: string) => `substr(${col}, 1, ${SEALED_PREFIX.length}) = '${SEALED_PREFIX}'`;
    const r = this.db
      .prepare<[], { conn_req_password: string | null; cpe_password: string | null }>(
        `SELECT conn_req_password, cpe_password FROM devices WHERE ${sealed('conn_req_password')} OR ${sealed('cpe_password')} LIMIT 1`,
      )
      .get();
    if (!r) return;
    this.secrets.open('connReqPassword', r.conn_req_password);
    this.secrets.open('cpePassword', r.cpe_password);
  }

  async putParameterTypes(modelKey: string, types: ReadonlyMap<string, XsdType>): Promise<void> {
    if (types.size === 0) return;
    this.putTypesTx(modelKey, types);
  }

  async getParameterTypes(modelKey: string, names?: readonly string[]): Promise<Map<string, XsdType>> {
    const rows = names === undefined ? this.st.typesAll.all(modelKey) : names.length === 0 ? [] : this.st.typesSome.all(modelKey, JSON.stringify(names));
    return new Map(rows.map((r) => [r.name, r.type]));
  }

  async addQueuedRpc(q: QueuedRpc): Promise<void> {
    this.st.addRpc.run(q.id, q.deviceKey, JSON.stringify(q.rpc), q.createdAt, q.deadline);
  }

  async markQueuedRpcSent(id: string, at: number): Promise<void> {
    this.st.markSent.run(at, id);
  }

  async listQueuedRpcs(deviceKey: string): Promise<QueuedRpc[]> {
    return this.st.listRpcs.all(deviceKey).map(toQueued);
  }

  async listAllQueuedRpcs(): Promise<QueuedRpc[]> {
    return this.st.listAllRpcs.all().map(toQueued);
  }

  async removeQueuedRpc(id: string): Promise<boolean> {
    return this.st.removeRpc.run(id).changes > 0;
  }

  async putSubscription(agentEid: string, instance: number, values: Record<string, string>): Promise<void> {
    this.st.putSub.run(agentEid, instance, JSON.stringify(values));
  }

  async deleteSubscription(agentEid: string, instance: number): Promise<void> {
    this.st.deleteSub.run(agentEid, instance);
  }

  async listAllSubscriptions(): Promise<StoredRow[]> {
    return this.st.listSubs.all().map((r) => ({ agentEid: r.agent_eid, instance: r.instance, values: JSON.parse(r.value) as Record<string, string> }));
  }

  async putRequest(agentEid: string, instance: number, values: Record<string, string>): Promise<void> {
    this.st.putReq.run(agentEid, instance, JSON.stringify(values));
  }

  async deleteRequest(agentEid: string, instance: number): Promise<void> {
    this.st.deleteReq.run(agentEid, instance);
  }

  async listAllRequests(): Promise<StoredRow[]> {
    return this.st.listReqs.all().map((r) => ({ agentEid: r.agent_eid, instance: r.instance, values: JSON.parse(r.value) as Record<string, string> }));
  }

  async getInstanceMap(deviceKey: string): Promise<Record<string, number> | null> {
    const r = this.st.getMap.get(deviceKey);
    return r ? (JSON.parse(r.map) as Record<string, number>) : null;
  }

  async putInstanceMap(deviceKey: string, map: Record<string, number>): Promise<void> {
    this.st.putMap.run(deviceKey, JSON.stringify(map));
  }

  async getLearned(kind: LearnedKind, key: string): Promise<string | null> {
    return this.st.getLearned.get(kind, key)?.json ?? null;
  }

  async putLearned(kind: LearnedKind, key: string, json: string): Promise<void> {
    this.st.putLearned.run(kind, key, json);
  }

  async deleteLearned(kind: LearnedKind, key: string): Promise<void> {
    this.st.deleteLearned.run(kind, key);
  }

  async putPendingNotify(n: PendingNotify): Promise<void> {
    this.st.putNotify.run(n.msgId, n.agentEid, n.controllerEid, n.msg, n.attempt, n.expiresAt);
  }

  async deletePendingNotify(msgId: string): Promise<void> {
    this.st.deleteNotify.run(msgId);
  }

  async listPendingNotifies(): Promise<PendingNotify[]> {
    return this.st.listNotify.all().map((r) => ({
      msgId: r.msg_id,
      agentEid: r.agent_eid,
      controllerEid: r.controller_eid,
      msg: new Uint8Array(r.msg),
      attempt: r.attempt,
      expiresAt: r.expires_at,
    }));
  }

  /** See rekeyDevicesIn (store migration 8); here for the store contract and for an operator's re-run. */
  async rekeyDevices(): Promise<{ moved: number; clashes: number }> {
    this.flush();
    const r = this.db.transaction(() => rekeyDevicesIn(this.db)).immediate();
    this.cache.clear();
    return r;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushForRead(); // bookkeeping a failing disk refused is lost; the next Inform brings it again
    this.closed = true;
    this.db.close();
  }
}

/** A copy that callers may mutate without touching the cached record. */
function copyDevice(d: DeviceRecord): DeviceRecord {
  return { ...d, deviceId: { ...d.deviceId }, lastInformEvents: [...d.lastInformEvents] };
}

/**
 * Strings many devices share (vendor, OUI, product class, software version, event codes) and the
 * event lists themselves, one copy each in the device cache (reads hand out copies). Bounded: a
 * CPE names these, so beyond INTERNED distinct values new ones are kept as they come.
 */
const INTERNED = 4096;
const eventLists = new Map<string, readonly string[]>();
const interned = (s: string): string => deviceStrings.of(s);

function sharedEvents(events: readonly string[]): string[] {
  // Usual lists only ("2 PERIODIC", "1 BOOT" + "M Reboot" ...): an odd one is the device's own.
  if (events.length > 8) return [...events];
  const key = events.join('\n');
  if (key.length > 256) return [...events];
  let list = eventLists.get(key);
  if (!list) {
    list = Object.freeze(events.map(interned));
    if (eventLists.size < INTERNED) eventLists.set(key, list);
  }
  return list as string[];
}

/** The device as the cache keeps it: its own object, shared strings and event list (about 200 bytes less). */
function cachedCopy(d: DeviceRecord): DeviceRecord {
  const id = d.deviceId;
  return {
    ...d,
    deviceId: { ...id, manufacturer: interned(id.manufacturer), oui: interned(id.oui), productClass: interned(id.productClass) },
    rootModel: interned(d.rootModel) as DeviceRecord['rootModel'],
    softwareVersion: d.softwareVersion === null ? null : interned(d.softwareVersion),
    lastInformEvents: sharedEvents(d.lastInformEvents),
  };
}

/**
 * Opens (creating the file, its parent directory and the schema as needed) a SQLite store. The
 * folder is created 0700 and the file 0600 (its -wal and -shm inherit that); looser modes are
 * tightened and reported to opts.onModeFix. Failures name the path and the cause (StoreOpenError).
 */
export function openSqliteStore(file: string, opts: SqliteStoreOptions = {}): SqliteStore {
  if (file !== ':memory:' && file !== '' && !opts.readonly) {
    const fixes: ModeFix[] = [];
    prepareSqliteFile(file, fixes);
    for (const f of fixes) opts.onModeFix?.(f);
  }
  return new SqliteStore(file, opts);
}
