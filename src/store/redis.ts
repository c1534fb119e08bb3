/**
 * A shared Store on Redis (several instances, docs/scaling.md): several proxy instances use one Redis
 * with the same key prefix. Semantics follow SqliteStore (sqlite.ts) exactly: ordering, search,
 * upsert, unique Endpoint IDs, duplicate queued RPC ids, "only attempt changes" on a repeated
 * pending Notify. Differences are deliberate and per instance: pending Notifies and the ownership
 * of Request rows belong to this store's `owner`, so each instance retries only its own and a
 * survivor adopts a dead instance's rows exactly once.
 *
 * The key layout is a contract with src/cluster/ (which adds keys of its own via key() and a
 * subscriber from redis.duplicate()); prefix P:
 *   P dev:<deviceKey>     HASH rec (JSON without the hot fields), lastInform, lastInformEvents, connectionRequestUrl
 *   P eid:<endpointId>    STRING deviceKey
 *   P devs                ZSET deviceKeys, score 0 (lexical order = SQLite ORDER BY device_key)
 *   P types:<modelKey>    HASH name -> xsd type
 *   P q:<deviceKey>       LIST JSON QueuedRpc, FIFO (a cluster session takes its head with LPOP,
 *                         src/cluster/lease-queue.ts; an RPC is found by id by scanning the lists:
 *                         only the admin API, a takeover and tests do, never a Get)
 *   P sub:<agentEid>      HASH instance -> JSON values;  P subagents SET
 *   P req:<agentEid>      HASH instance -> JSON values;  P reqagents SET;  P reqown:<owner> SET "<agentEid>|<instance>"
 *   P imap:<deviceKey>    STRING JSON instance map
 *   P learned:<kind>:<key> STRING JSON learned names/types/capabilities (interworking/knowledge)
 *   P tags:<deviceKey>    SET operator tags of the device (store migration 9: new keys, no data moved)
 *   P tag:<tag>           SET device keys with that tag
 *   P pn:<owner>          HASH msgId -> JSON pending Notify (msg base64)
 *
 * A missing hash field (lastInform, connectionRequestUrl) stands for null, so touchInform can
 * write only what it knows. Values that do not parse are skipped (reported through `log`), never
 * thrown at the caller: one corrupt row must not take a whole listing or the process down.
 */
import { createHash } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { deviceKeyOf } from '../cwmp/device-id.js';
import type { DeviceIdStruct, XsdType } from '../cwmp/types.js';
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
import { PLAIN_SECRETS, type SecretCodec } from './secrets.js';
import { lazyRequire } from '../util/lazy-require.js';

export type RedisStoreLogLevel = 'debug' | 'info' | 'warn' | 'error';
export type RedisStoreLog = (level: RedisStoreLogLevel, msg: string, extra?: Record<string, unknown>) => void;

export interface RedisStoreOptions {
  /** redis://[user:password@]host:port[/db] or rediss://... (the password never appears in messages). */
  url: string;
  /** Prepended to every key (e.g. 'cup:'); several deployments can share one Redis. */
  prefix: string;
  /** This instance's name: owner of its pending Notifies and Request rows. */
  owner: string;
  log?: RedisStoreLog;
  /** Upper bound for one command, queued ones included (ms, default 10,000): an outage never hangs a caller. */
  commandTimeoutMs?: number;
  /** TCP connect timeout per attempt (ms, default 5000). */
  connectTimeoutMs?: number;
  /**
   * Device records read are reused this long (ms, default 1000; 0 = off): one USP request looks its
   * device up several times. Another instance's change is seen at most this late.
   */
  deviceCacheTtlMs?: number;
  /** Seals per-device secrets at rest (default: stored plain). */
  secrets?: SecretCodec;
}

/** Loaded by the first RedisStore (below), not by the default SQLite proxy. */
const ioredis = lazyRequire<typeof import('ioredis')>('ioredis');

/** Devices read per step when listDevices has to filter (search) over the whole set. */
const SCAN_CHUNK = 500;

// --- Lua ---------------------------------------------------------------------------------------
// Scripts build some keys from ARGV (the prefix) because the key depends on stored data (an
// RPC's deviceKey, an owner set's members); fine on a single Redis, which is what we support.

interface LuaScript {
  readonly src: string;
  readonly sha: string;
}

function lua(src: string): LuaScript {
  return { src, sha: createHash('sha1').update(src).digest('hex') };
}

/**
 * KEYS dev:<k>, eid:<new>, devs; ARGV deviceKey, endpointId, prefix, field/value pairs.
 * Endpoint IDs are unique (SQLite's UNIQUE): a claim on another device's ID fails and changes
 * nothing; a device moving to a new ID releases its old one.
 */
const UPSERT_DEVICE = lua(`
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then
  return redis.error_reply('UNIQUE constraint failed: endpoint ID ' .. ARGV[2] .. ' belongs to another device')
end
local old = redis.call('HGET', KEYS[1], 'rec')
if old then
  local ok, rec = pcall(cjson.decode, old)
  if ok and type(rec) == 'table' and type(rec.endpointId) == 'string' and rec.endpointId ~= ARGV[2] then
    local oldKey = ARGV[3] .. 'eid:' .. rec.endpointId
    if redis.call('GET', oldKey) == ARGV[1] then redis.call('DEL', oldKey) end
  end
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return 1`);

/** KEYS dev:<k>; ARGV field/value pairs. An unknown device stays unknown (SQLite's UPDATE of no row). */
const TOUCH_INFORM = lua(`
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return 1`);

/** KEYS eid:<e>; ARGV prefix. Returns {deviceKey, hash field, value, ...} or nil. */
const DEVICE_BY_EID = lua(`
local k = redis.call('GET', KEYS[1])
if not k then return false end
local h = redis.call('HGETALL', ARGV[1] .. 'dev:' .. k)
table.insert(h, 1, k)
return h`);

/**
 * KEYS row hash, index set[, owner set]; ARGV field, agentEid[, owner member]. Deletes a row and
 * drops the agent from the index once its hash is empty, atomically so a concurrent put on
 * another instance cannot be left out of the index.
 */
const DELETE_ROW = lua(`
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
if KEYS[3] then redis.call('SREM', KEYS[3], ARGV[3]) end
return 1`);

/**
 * KEYS reqown:<from>[, reqown:<to>]; ARGV prefix. Returns {agentEid, instance, json, ...} for the
 * members whose row still exists. With a second key the members move there (stale ones are
 * dropped) and the source set is deleted: one script, so two adopters cannot both get a row.
 */
const OWNED_REQUESTS = lua(`
if KEYS[2] and KEYS[1] == KEYS[2] then return {} end
local out = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local agent, inst = string.match(m, '^(.*)|([^|]*)$')
  local v = agent and redis.call('HGET', ARGV[1] .. 'req:' .. agent, inst)
  if v then
    out[#out + 1] = agent
    out[#out + 1] = inst
    out[#out + 1] = v
    if KEYS[2] then redis.call('SADD', KEYS[2], m) end
  end
end
if KEYS[2] then redis.call('DEL', KEYS[1]) end
return out`);

/** KEYS pn:<from>, pn:<to>. Moves every field and returns them {msgId, json, ...}. */
const ADOPT_NOTIFIES = lua(`
if KEYS[1] == KEYS[2] then return {} end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do redis.call('HSET', KEYS[2], all[i], all[i + 1]) end
redis.call('DEL', KEYS[1])
return all`);

/**
 * KEYS pn:<owner>; ARGV msgId, json, attempt. SQLite's ON CONFLICT DO UPDATE SET attempt: a
 * known msgId keeps its stored fields and takes only the new attempt. The JSON is written with
 * "attempt" last (notifyJson), so the update is a suffix rewrite; cjson would re-encode numbers.
 */
const PUT_NOTIFY = lua(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local head = string.match(old, '^(.*,"attempt":)[-%d.eE+]+}$')
  if head then
    redis.call('HSET', KEYS[1], ARGV[1], head .. ARGV[3] .. '}')
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`);

// --- decoding helpers ---------------------------------------------------------------------------

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strOrNull(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

function isNumberMap(v: unknown): v is Record<string, number> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'number');
}

type FieldKind = 'string' | 'number' | 'object' | 'number|null';

/** v is an object whose listed fields have the listed kinds (others are not checked). */
function hasFields(v: unknown, spec: Readonly<Record<string, FieldKind>>): v is Json {
  if (!isObject(v)) return false;
  return Object.entries(spec).every(([name, kind]) => {
    const f = v[name];
    if (kind === 'object') return isObject(f);
    if (kind === 'number|null') return f === null || typeof f === 'number';
    return typeof f === kind;
  });
}

function isQueuedRpc(v: unknown): v is QueuedRpc {
  return hasFields(v, { id: 'string', deviceKey: 'string', createdAt: 'string', deadline: 'number', rpc: 'object' }) && hasFields(v.rpc, { method: 'string' });
}

interface StoredNotify {
  msgId: string;
  agentEid: string;
  controllerEid: string;
  msg: string;
  attempt: number;
  expiresAt: number | null;
}

function isStoredNotify(v: unknown): v is StoredNotify {
  return hasFields(v, { msgId: 'string', agentEid: 'string', controllerEid: 'string', msg: 'string', attempt: 'number', expiresAt: 'number|null' });
}

/** The `rec` field of a device hash: the fields toDevice cannot do without. */
interface StoredDeviceRec extends Json {
  endpointId: string;
  rootModel: string;
  registeredAt: string;
  deviceId: DeviceIdStruct;
}

function isStoredDeviceRec(v: unknown): v is StoredDeviceRec {
  return (
    hasFields(v, { endpointId: 'string', rootModel: 'string', registeredAt: 'string', deviceId: 'object' }) &&
    hasFields(v.deviceId, { manufacturer: 'string', oui: 'string', productClass: 'string', serialNumber: 'string' })
  );
}

/** "attempt" last: PUT_NOTIFY rewrites it in place. */
function notifyJson(n: PendingNotify): string {
  const stored: StoredNotify = {
    msgId: n.msgId,
    agentEid: n.agentEid,
    controllerEid: n.controllerEid,
    msg: Buffer.from(n.msg.buffer, n.msg.byteOffset, n.msg.byteLength).toString('base64'),
    expiresAt: n.expiresAt,
    attempt: n.attempt,
  };
  return JSON.stringify(stored);
}

/** SQLite's LIKE folds ASCII letters only; so does this, for identical search results. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** SQLite's BINARY collation: memcmp of the UTF-8 bytes (differs from JS < beyond the BMP). */
function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function nonNegativeInt(v: number | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer`);
  return v;
}

/** ioredis pipelines report per-command errors in the result; surface the first one. */
async function execAll(p: ChainableCommander): Promise<unknown[]> {
  const res = (await p.exec()) ?? [];
  return res.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

function pairs(flat: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

function bySubscriptionOrder(a: StoredRow, b: StoredRow): number {
  return byteCompare(a.agentEid, b.agentEid) || a.instance - b.instance;
}

// --- the store ----------------------------------------------------------------------------------

export class RedisStore implements Store {
  readonly redis: Redis;
  readonly owner: string;
  readonly prefix: string;
  /** host:port of the URL, for messages (never the URL itself: it may carry a password). */
  readonly where: string;
  private readonly secrets: string[];
  private readonly log: RedisStoreLog;
  private lastError: Error | null = null;
  private readonly devices: LRUCache<string, DeviceRecord> | null;
  private readonly byEid: LRUCache<string, string> | null;
  private down = false;
  private closed: Promise<void> | null = null;
  private readonly sealing: SecretCodec;

  constructor(opts: RedisStoreOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new Error('store.redis.url: not a URL (expected redis://[user:password@]host:port[/db])');
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`store.redis.url: unsupported scheme ${u.protocol} (expected redis: or rediss:)`);
    this.where = `${u.hostname || 'localhost'}:${u.port || '6379'}`;
    // The password in every spelling it may take in a library message.
    this.secrets = u.password ? [...new Set([u.password, decodeURIComponent(u.password)])] : [];
    this.prefix = opts.prefix;
    this.owner = opts.owner;
    this.sealing = opts.secrets ?? PLAIN_SECRETS;
    const ttl = opts.deviceCacheTtlMs ?? 1000;
    this.devices = ttl > 0 ? new LRUCache<string, DeviceRecord>({ max: 10_000, ttl }) : null;
    // Endpoint ID -> device key changes only when a device is deleted and its ID given to another:
    // kept longer than the records, and checked against the record read through it.
    this.byEid = ttl > 0 ? new LRUCache<string, string>({ max: 100_000, ttl: Math.max(ttl, 600_000) }) : null;
    this.log = opts.log ?? (() => undefined);

    // ioredis is loaded by the first Redis store: the default (SQLite) proxy never holds its code.
    const { Redis } = ioredis();
    this.redis = new Redis(opts.url, {
      // Commands issued before the connection is up are queued (synchronous construction) ...
      enableOfflineQueue: true,
      // ... but during an outage the queue is failed every third reconnect attempt instead of
      // waiting for Redis forever: with the delays below a command fails within ~1.5 s of the
      // start of an outage and within ~3 s while it lasts; callers see an error and retry.
      maxRetriesPerRequest: 2,
      // Reconnect forever (200, 400, 800, then every 1000 ms), so the store recovers by itself
      // within a second of Redis coming back.
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 4), 1000),
      // Backstop for a server that accepts but never answers (stopped, overloaded, black-holed).
      commandTimeout: opts.commandTimeoutMs ?? 10_000,
      connectTimeout: opts.connectTimeoutMs ?? 5000,
    });
    // Without a listener ioredis prints every connection error to the console; report an outage
    // once, and its end.
    this.redis.on('error', (err: Error) => {
      this.lastError = err;
      if (this.down || this.closed) return;
      this.down = true;
      this.log('warn', `store.redis: cannot reach Redis at ${this.where}: ${this.redact(err.message)}`);
    });
    this.redis.on('ready', () => {
      this.lastError = null;
      if (!this.down) return;
      this.down = false;
      this.log('info', `store.redis: connection to Redis at ${this.where} restored`);
    });
  }

  /** prefix + parts joined by ':' (e.g. key('dev', k) = 'cup:dev:<k>'). */
  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  /** Resolves once Redis answers PING; rejects with a message naming host:port (never the password). */
  async ready(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.redis.ping(), timeout]);
      await this.migrate();
    } catch (err) {
      // A reply error (NOAUTH, WRONGPASS) is the answer itself; a retry limit or our timeout is
      // only a symptom: the connection error behind it says what is wrong.
      const own = err as Error;
      const isReply = own.name === 'ReplyError';
      const cause = isReply ? own : (this.lastError ?? own);
      const what = isReply ? `Redis at ${this.where} refused: ` : `cannot reach Redis at ${this.where}: `;
      throw new Error(`store.redis.url: ${what}${this.redact(cause.message)}`);
    } finally {
      clearTimeout(timer);
    }
    // A missing or wrong secret key fails here, clearly, not on a CPE's Inform (toDevice opens the secrets).
    await this.loadDevices(await this.redis.zrange(this.key('devs'), 0, 49));
  }

  /**
   * Store migration 8 (as SQLite's, whose version numbers this follows): once per Redis, devices move
   * to the collision-free key of cwmp/device-id.ts. The version is kept in P schema; a lock key
   * keeps two instances starting at once from both walking the devices (rekeyDevices is idempotent
   * anyway).
   */
  private async migrate(): Promise<void> {
    if (Number((await this.redis.get(this.key('schema'))) ?? 0) >= 8) return;
    if (!(await this.redis.set(this.key('schema-lock'), this.owner, 'PX', 60_000, 'NX'))) return;
    try {
      const r = await this.rekeyDevices();
      if (r.moved || r.clashes) this.log('info', `store.redis: migration 8 moved ${r.moved} device keys (${r.clashes} left: new key taken)`);
      await this.redis.set(this.key('schema'), '8');
    } finally {
      await this.redis.del(this.key('schema-lock'));
    }
  }

  /**
   * Moves every device whose key is not deviceKeyOf(its DeviceId) to that key, with what is keyed by
   * it (queue, queued RPCs, instance map, learned device and watch documents). Idempotent; a key
   * already taken is left alone (counted in `clashes`), never merged.
   */
  async rekeyDevices(): Promise<{ moved: number; clashes: number }> {
    let moved = 0;
    let clashes = 0;
    for (const from of await this.redis.zrange(this.key('devs'), 0, -1)) {
      const d = this.toDevice(from, await this.redis.hgetall(this.key('dev', from)));
      if (!d) continue;
      const to = deviceKeyOf(d.deviceId);
      if (to === from) continue;
      if (await this.redis.exists(this.key('dev', to))) {
        clashes++;
        continue;
      }
      const m = this.redis.multi();
      m.rename(this.key('dev', from), this.key('dev', to));
      m.hset(this.key('dev', to), 'rec', JSON.stringify({ ...JSON.parse((await this.redis.hget(this.key('dev', from), 'rec')) ?? '{}'), deviceKey: to }));
      m.set(this.key('eid', d.endpointId), to);
      m.zrem(this.key('devs'), from);
      m.zadd(this.key('devs'), 0, to);
      const queued = await this.listQueuedRpcs(from);
      if (queued.length) {
        m.del(this.key('q', from));
        m.rpush(this.key('q', to), ...queued.map((q) => JSON.stringify({ ...q, deviceKey: to })));
      }
      for (const k of [
        ['imap', from],
        ['learned', `device:${from}`],
        ['learned', `watch:${from}`],
      ] as const) {
        if (await this.redis.exists(this.key(...k))) m.rename(this.key(...k), this.key(k[0], k[1].replace(from, to)));
      }
      await execAll(m);
      this.forget(from);
      moved++;
    }
    return { moved, clashes };
  }

  // --- devices ----------------------------------------------------------------------------------

  async upsertDevice(d: DeviceRecord): Promise<void> {
    const { lastInform, lastInformEvents, connectionRequestUrl, ...rest } = d;
    rest.connReqPassword = this.sealing.seal('connReqPassword', rest.connReqPassword);
    rest.cpePassword = this.sealing.seal('cpePassword', rest.cpePassword);
    if (rest.cpePendingPassword != null) rest.cpePendingPassword = this.sealing.seal('cpePendingPassword', rest.cpePendingPassword);
    const fields = ['rec', JSON.stringify(rest), ...this.hotFields(lastInform, lastInformEvents, connectionRequestUrl)];
    this.forget(d.deviceKey);
    await this.run(
      UPSERT_DEVICE,
      [this.key('dev', d.deviceKey), this.key('eid', d.endpointId), this.key('devs')],
      [d.deviceKey, d.endpointId, this.prefix, ...fields],
    );
    // P cpeuser:<username> -> device key, for authentication from the headers. Never deleted:
    // getDeviceByCpeUsername checks the device still has that username.
    const users = [d.cpeUsername, d.cpePendingUsername].filter((u): u is string => typeof u === 'string' && u !== '');
    if (users.length > 0) {
      const p = this.redis.pipeline();
      for (const u of users) p.set(this.key('cpeuser', u), d.deviceKey);
      await execAll(p);
    }
    this.remember(d);
  }

  async getDeviceByCpeUsername(username: string): Promise<DeviceRecord | null> {
    const key = await this.redis.get(this.key('cpeuser', username));
    if (key === null) return null;
    const d = await this.getDevice(key);
    return d && (d.cpeUsername === username || d.cpePendingUsername === username) ? d : null;
  }

  async deleteDevice(deviceKey: string): Promise<boolean> {
    this.forget(deviceKey);
    const d = this.toDevice(deviceKey, await this.redis.hgetall(this.key('dev', deviceKey)));
    const m = this.redis.multi();
    m.del(this.key('q', deviceKey));
    m.del(this.key('dev', deviceKey), this.key('imap', deviceKey), this.key('learned', `device:${deviceKey}`), this.key('learned', `transfer:${deviceKey}`));
    m.zrem(this.key('devs'), deviceKey);
    for (const t of await this.getTags(deviceKey)) m.srem(this.key('tag', t), deviceKey);
    m.del(this.key('tags', deviceKey));
    await m.exec();
    // The Endpoint ID index only while it still names this device (another may have taken the ID).
    if (d && (await this.redis.get(this.key('eid', d.endpointId))) === deviceKey) await this.redis.del(this.key('eid', d.endpointId));
    this.forget(deviceKey);
    return d !== null;
  }

  // P tags:<deviceKey> SET of tags; P tag:<tag> SET of device keys (store migration 9: new keys only).
  async getTags(deviceKey: string): Promise<string[]> {
    return (await this.redis.smembers(this.key('tags', deviceKey))).sort(byteCompare);
  }

  async setTags(deviceKey: string, tags: readonly string[]): Promise<void> {
    const old = await this.getTags(deviceKey);
    const m = this.redis.multi();
    for (const t of old) if (!tags.includes(t)) m.srem(this.key('tag', t), deviceKey);
    m.del(this.key('tags', deviceKey));
    if (tags.length > 0) m.sadd(this.key('tags', deviceKey), ...tags);
    for (const t of tags) m.sadd(this.key('tag', t), deviceKey);
    await m.exec();
  }

  async devicesWithTag(tag: string): Promise<string[]> {
    return (await this.redis.smembers(this.key('tag', tag))).sort(byteCompare);
  }

  async getDevice(deviceKey: string): Promise<DeviceRecord | null> {
    const hit = this.devices?.get(deviceKey);
    if (hit) return structuredClone(hit);
    const d = this.toDevice(deviceKey, await this.redis.hgetall(this.key('dev', deviceKey)));
    if (d) this.remember(d);
    return d;
  }

  async getDeviceByEndpointId(endpointId: string): Promise<DeviceRecord | null> {
    const key = this.byEid?.get(endpointId);
    const hit = key !== undefined ? this.devices?.get(key) : undefined;
    if (hit && hit.endpointId === endpointId) return structuredClone(hit);
    if (key !== undefined && !hit) {
      // The record only (one HGETALL, no script), while it still names this Endpoint ID.
      const d = await this.getDevice(key);
      if (d && d.endpointId === endpointId) return d;
    }
    const res = await this.run(DEVICE_BY_EID, [this.key('eid', endpointId)], [this.prefix]);
    if (!isStringArray(res) || res.length === 0) return null;
    const [deviceKey, ...flat] = res;
    const d = this.toDevice(deviceKey!, Object.fromEntries(pairs(flat)));
    // An index entry left over from corrupt data must not hand out the wrong device.
    if (!d || d.endpointId !== endpointId) return null;
    this.remember(d);
    return d;
  }

  private remember(d: DeviceRecord): void {
    this.devices?.set(d.deviceKey, structuredClone(d));
    this.byEid?.set(d.endpointId, d.deviceKey);
  }

  private forget(deviceKey: string): void {
    const old = this.devices?.get(deviceKey);
    if (old) this.byEid?.delete(old.endpointId);
    this.devices?.delete(deviceKey);
  }

  async listDevices(query: DeviceQuery = {}): Promise<DeviceRecord[]> {
    const limit = query.limit === undefined ? Infinity : nonNegativeInt(query.limit, 'limit', 0);
    const offset = nonNegativeInt(query.offset, 'offset', 0);
    if (limit === 0) return [];
    const devs = this.key('devs');
    if (!query.search) {
      const keys = await this.redis.zrange(devs, offset, limit === Infinity ? -1 : offset + limit - 1);
      return this.loadDevices(keys);
    }
    // No index can answer a substring search: walk the set in key order, by lexical ranges
    // (stable under concurrent inserts, unlike ranks), and stop once the page is full.
    const needle = asciiLower(query.search);
    const out: DeviceRecord[] = [];
    let skip = offset;
    let from = '-';
    for (;;) {
      const keys = await this.redis.zrangebylex(devs, from, '+', 'LIMIT', 0, SCAN_CHUNK);
      for (const d of await this.loadDevices(keys)) {
        const cols = [d.endpointId, d.deviceKey, d.deviceId.serialNumber, d.deviceId.productClass, d.deviceId.oui, d.deviceId.manufacturer];
        if (!cols.some((c) => asciiLower(c).includes(needle))) continue;
        if (skip > 0) {
          skip--;
          continue;
        }
        out.push(d);
        if (out.length >= limit) return out;
      }
      if (keys.length < SCAN_CHUNK) return out;
      from = '(' + keys[keys.length - 1]!;
    }
  }

  async countDevices(): Promise<number> {
    return this.redis.zcard(this.key('devs'));
  }

  async touchInform(deviceKey: string, at: string, events: string[], connectionRequestUrl: string | null): Promise<void> {
    const cached = this.devices?.get(deviceKey);
    if (cached) {
      cached.lastInform = at;
      cached.lastInformEvents = [...events];
      if (connectionRequestUrl !== null) cached.connectionRequestUrl = connectionRequestUrl;
    }
    // A null URL is simply not written: the known one stays (SQLite's COALESCE). A device this
    // instance has read within deviceCacheTtlMs exists: one HSET (the script checks first, so
    // that an unknown device stays unknown; a hash left by a delete racing this has no `rec`
    // and reads as no device).
    const fields = this.hotFields(at, events, connectionRequestUrl);
    if (cached) await this.redis.hset(this.key('dev', deviceKey), ...fields);
    else await this.run(TOUCH_INFORM, [this.key('dev', deviceKey)], fields);
  }

  /** Hash fields of the Inform bookkeeping; a null value is an absent field. */
  private hotFields(lastInform: string | null, events: readonly string[], url: string | null): string[] {
    const f = ['lastInformEvents', JSON.stringify(events)];
    if (lastInform !== null) f.push('lastInform', lastInform);
    if (url !== null) f.push('connectionRequestUrl', url);
    return f;
  }

  private async loadDevices(keys: readonly string[]): Promise<DeviceRecord[]> {
    if (keys.length === 0) return [];
    const p = this.redis.pipeline();
    for (const k of keys) p.hgetall(this.key('dev', k));
    const hashes = await execAll(p);
    const out: DeviceRecord[] = [];
    keys.forEach((k, i) => {
      const d = this.toDevice(k, hashes[i] as Record<string, string>);
      if (d) out.push(d);
    });
    return out;
  }

  private toDevice(deviceKey: string, h: Record<string, string>): DeviceRecord | null {
    if (h.rec === undefined) return null;
    const rec = this.parse(h.rec, `dev:${deviceKey} rec`, isStoredDeviceRec);
    const events = this.parse(h.lastInformEvents ?? '[]', `dev:${deviceKey} lastInformEvents`, isStringArray);
    if (!rec || !events) return null;
    const id = rec.deviceId;
    // Fields picked one by one: the record handed out is exactly a DeviceRecord, extras dropped.
    const deviceId: DeviceIdStruct = { manufacturer: id.manufacturer, oui: id.oui, productClass: id.productClass, serialNumber: id.serialNumber };
    return {
      deviceKey,
      endpointId: rec.endpointId,
      deviceId,
      rootModel: rec.rootModel as RootModel,
      softwareVersion: strOrNull(rec.softwareVersion),
      connectionRequestUrl: h.connectionRequestUrl ?? null,
      connReqUsername: strOrNull(rec.connReqUsername),
      connReqPassword: this.sealing.open('connReqPassword', strOrNull(rec.connReqPassword)),
      cpeUsername: strOrNull(rec.cpeUsername),
      cpePassword: this.sealing.open('cpePassword', strOrNull(rec.cpePassword)),
      // Redis counterpart of SQLite migration 7: absent in records written before it.
      ...authFields(
        strOrNull(rec.cpePendingUsername),
        this.sealing.open('cpePendingPassword', strOrNull(rec.cpePendingPassword)),
        strOrNull(rec.cpeCertIdentity),
      ),
      periodicInformInterval: typeof rec.periodicInformInterval === 'number' ? rec.periodicInformInterval : null,
      lastInform: h.lastInform ?? null,
      lastInformEvents: events,
      registeredAt: rec.registeredAt,
    };
  }

  // --- parameter types --------------------------------------------------------------------------

  async putParameterTypes(modelKey: string, types: ReadonlyMap<string, XsdType>): Promise<void> {
    if (types.size === 0) return;
    await this.redis.hset(this.key('types', modelKey), new Map(types));
  }

  async getParameterTypes(modelKey: string, names?: readonly string[]): Promise<Map<string, XsdType>> {
    const key = this.key('types', modelKey);
    if (names === undefined) return new Map(Object.entries(await this.redis.hgetall(key)));
    if (names.length === 0) return new Map();
    const values = await this.redis.hmget(key, ...names);
    const out = new Map<string, XsdType>();
    names.forEach((n, i) => {
      const v = values[i];
      if (typeof v === 'string') out.set(n, v);
    });
    return out;
  }

  // --- queued RPCs ------------------------------------------------------------------------------

  async addQueuedRpc(q: QueuedRpc): Promise<void> {
    // Ids are unique (SQLite's UNIQUE): checked by a scan, as only the one-instance port (tests)
    // adds here; a cluster instance pushes to the list itself (src/cluster/lease-queue.ts).
    if (await this.findQueued((x) => x.id === q.id)) throw new Error(`UNIQUE constraint failed: queued RPC id ${q.id} exists`);
    await this.redis.rpush(this.key('q', q.deviceKey), JSON.stringify(q));
  }

  async markQueuedRpcSent(id: string, at: number): Promise<void> {
    const found = await this.findQueued((x) => x.id === id);
    if (!found) return;
    const { raw, q } = found[0]!;
    // In place: LSET at the entry's index while it is still there (nothing else writes it: the one-instance port).
    const list = this.key('q', q.deviceKey);
    const i = (await this.redis.lrange(list, 0, -1)).indexOf(raw);
    if (i >= 0) await this.redis.lset(list, i, JSON.stringify({ ...q, sentAt: at }));
  }

  async listQueuedRpcs(deviceKey: string): Promise<QueuedRpc[]> {
    return this.parseRpcs(deviceKey, await this.redis.lrange(this.key('q', deviceKey), 0, -1));
  }

  /**
   * Every queued (not claimed) RPC: FIFO per device, and across devices in createdAt order, which
   * is SQLite's global insertion order whenever one clock stamps them. A device's list is never
   * reordered, even if its createdAt values go backwards (clocks of several instances): each
   * entry sorts at the latest createdAt seen so far in its list.
   */
  async listAllQueuedRpcs(): Promise<QueuedRpc[]> {
    const ranked: Array<{ at: string; q: QueuedRpc }> = [];
    for (const [, rpcs] of await this.allQueues()) {
      let latest = '';
      for (const { q } of rpcs) {
        if (q.createdAt > latest) latest = q.createdAt;
        ranked.push({ at: latest, q });
      }
    }
    // Array.prototype.sort is stable: equal keys keep device order and per-device FIFO.
    ranked.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    return ranked.map((r) => r.q);
  }

  async removeQueuedRpc(id: string): Promise<boolean> {
    return this.unqueueRpc(id);
  }

  /** Cluster: deletes an RPC only while it is still queued (true); a claimed or unknown one is left alone (false). */
  async unqueueRpc(id: string): Promise<boolean> {
    return (await this.unqueueWhere((q) => q.id === id)) > 0;
  }

  /** Cluster: deletes the queued RPCs `which` selects (a takeover: those of a dead instance); returns how many. */
  async unqueueWhere(which: (q: QueuedRpc) => boolean): Promise<number> {
    let n = 0;
    for (const { raw, q } of (await this.findQueued(which, true)) ?? []) n += await this.redis.lrem(this.key('q', q.deviceKey), 1, raw);
    return n;
  }

  /** Cluster: a queued RPC by id (one a session claimed is in that session's instance, src/cluster/). */
  async getQueuedRpc(id: string): Promise<QueuedRpc | null> {
    return (await this.findQueued((x) => x.id === id))?.[0]?.q ?? null;
  }

  /** The queued RPCs `which` selects, as stored (the first only, unless `all`); null when none. */
  private async findQueued(which: (q: QueuedRpc) => boolean, all = false): Promise<Array<{ raw: string; q: QueuedRpc }> | null> {
    const out: Array<{ raw: string; q: QueuedRpc }> = [];
    for (const [, rpcs] of await this.allQueues()) {
      for (const x of rpcs) {
        if (!which(x.q)) continue;
        out.push(x);
        if (!all) return out;
      }
    }
    return out.length ? out : null;
  }

  /** Every device's queue (SCAN of P q:*), devices in byte order. */
  private async allQueues(): Promise<Array<[string, Array<{ raw: string; q: QueuedRpc }>]>> {
    const head = this.key('q', '');
    const pattern = `${head.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const devices: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) devices.push(k.slice(head.length));
    } while (cursor !== '0');
    devices.sort(byteCompare);
    if (devices.length === 0) return [];
    const p = this.redis.pipeline();
    for (const d of devices) p.lrange(this.key('q', d), 0, -1);
    const lists = (await execAll(p)) as string[][];
    return devices.map((d, i) => [d, (lists[i] ?? []).flatMap((raw) => this.parseRpcs(d, [raw]).map((q) => ({ raw, q })))]);
  }

  private parseRpcs(deviceKey: string, raws: readonly string[]): QueuedRpc[] {
    const out: QueuedRpc[] = [];
    for (const raw of raws) {
      const q = this.parse(raw, `q:${deviceKey}`, isQueuedRpc);
      if (q) out.push(q);
    }
    return out;
  }

  // --- subscriptions and requests --------------------------------------------------------------

  async putSubscription(agentEid: string, instance: number, values: Record<string, string>): Promise<void> {
    await execAll(this.redis.multi().hset(this.key('sub', agentEid), String(instance), JSON.stringify(values)).sadd(this.key('subagents'), agentEid));
  }

  async deleteSubscription(agentEid: string, instance: number): Promise<void> {
    await this.run(DELETE_ROW, [this.key('sub', agentEid), this.key('subagents')], [String(instance), agentEid]);
  }

  async listAllSubscriptions(): Promise<StoredRow[]> {
    return this.listRows('sub', 'subagents');
  }

  /** Cluster: one agent's subscription rows, by instance. */
  async listSubscriptions(agentEid: string): Promise<StoredRow[]> {
    return this.agentRows('sub', agentEid, await this.redis.hgetall(this.key('sub', agentEid))).sort(bySubscriptionOrder);
  }

  /** The row is owned by this store's owner (reqown:<owner>) until another instance adopts it. */
  async putRequest(agentEid: string, instance: number, values: Record<string, string>): Promise<void> {
    await execAll(
      this.redis
        .multi()
        .hset(this.key('req', agentEid), String(instance), JSON.stringify(values))
        .sadd(this.key('reqagents'), agentEid)
        .sadd(this.key('reqown', this.owner), `${agentEid}|${instance}`),
    );
  }

  /** Deletes the row for everyone; only this owner's set is cleaned (members of deleted rows elsewhere are ignored on read). */
  async deleteRequest(agentEid: string, instance: number): Promise<void> {
    await this.run(
      DELETE_ROW,
      [this.key('req', agentEid), this.key('reqagents'), this.key('reqown', this.owner)],
      [String(instance), agentEid, `${agentEid}|${instance}`],
    );
  }

  async listAllRequests(): Promise<StoredRow[]> {
    return this.listRows('req', 'reqagents');
  }

  /** Cluster: one agent's Request rows, by instance (whoever owns them). */
  async listRequests(agentEid: string): Promise<StoredRow[]> {
    return this.agentRows('req', agentEid, await this.redis.hgetall(this.key('req', agentEid))).sort(bySubscriptionOrder);
  }

  /** Cluster: the Request rows that `owner` put (or adopted) and that still exist, ordered like listAllRequests. */
  async listRequestsOwnedBy(owner: string): Promise<StoredRow[]> {
    return this.ownedRows(await this.run(OWNED_REQUESTS, [this.key('reqown', owner)], [this.prefix]));
  }

  /**
   * Cluster: atomically moves the ownership of `fromOwner`'s Request rows to this store's owner and
   * returns the rows that still exist. Of several concurrent adopters exactly one gets them;
   * adopting from oneself moves nothing and returns [].
   */
  async adoptRequests(fromOwner: string): Promise<StoredRow[]> {
    if (fromOwner === this.owner) return [];
    return this.ownedRows(await this.run(OWNED_REQUESTS, [this.key('reqown', fromOwner), this.key('reqown', this.owner)], [this.prefix]));
  }

  private ownedRows(res: unknown): StoredRow[] {
    const flat = isStringArray(res) ? res : [];
    const out: StoredRow[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const row = this.toRow('req', flat[i]!, flat[i + 1]!, flat[i + 2]!);
      if (row) out.push(row);
    }
    return out.sort(bySubscriptionOrder);
  }

  /** All rows of sub:/req: hashes, ordered (agentEid, instance) like SQLite's ORDER BY. */
  private async listRows(kind: 'sub' | 'req', index: string): Promise<StoredRow[]> {
    const agents = await this.redis.smembers(this.key(index));
    if (agents.length === 0) return [];
    const p = this.redis.pipeline();
    for (const a of agents) p.hgetall(this.key(kind, a));
    const hashes = (await execAll(p)) as Array<Record<string, string>>;
    return agents.flatMap((agentEid, i) => this.agentRows(kind, agentEid, hashes[i] ?? {})).sort(bySubscriptionOrder);
  }

  /** The readable rows of one agent's hash (unordered). */
  private agentRows(kind: 'sub' | 'req', agentEid: string, h: Record<string, string>): StoredRow[] {
    const out: StoredRow[] = [];
    for (const [inst, raw] of Object.entries(h)) {
      const row = this.toRow(kind, agentEid, inst, raw);
      if (row) out.push(row);
    }
    return out;
  }

  private toRow(kind: 'sub' | 'req', agentEid: string, inst: string, raw: string): StoredRow | null {
    const what = `${kind}:${agentEid} ${inst}`;
    const instance = Number(inst);
    if (inst === '' || !Number.isFinite(instance)) {
      this.corrupt(what, 'instance is not a number');
      return null;
    }
    const values = this.parse(raw, what, isStringMap);
    return values ? { agentEid, instance, values } : null;
  }

  // --- instance maps ----------------------------------------------------------------------------

  async getInstanceMap(deviceKey: string): Promise<Record<string, number> | null> {
    const raw = await this.redis.get(this.key('imap', deviceKey));
    return raw === null ? null : this.parse(raw, `imap:${deviceKey}`, isNumberMap);
  }

  async putInstanceMap(deviceKey: string, map: Record<string, number>): Promise<void> {
    await this.redis.set(this.key('imap', deviceKey), JSON.stringify(map));
  }

  async getLearned(kind: LearnedKind, key: string): Promise<string | null> {
    return this.redis.get(this.key('learned', `${kind}:${key}`));
  }

  async putLearned(kind: LearnedKind, key: string, json: string): Promise<void> {
    await this.redis.set(this.key('learned', `${kind}:${key}`), json);
  }

  async deleteLearned(kind: LearnedKind, key: string): Promise<void> {
    await this.redis.del(this.key('learned', `${kind}:${key}`));
  }

  // --- pending notifies (this owner's) --------------------------------------------------------

  async putPendingNotify(n: PendingNotify): Promise<void> {
    await this.run(PUT_NOTIFY, [this.key('pn', this.owner)], [n.msgId, notifyJson(n), JSON.stringify(n.attempt)]);
  }

  async deletePendingNotify(msgId: string): Promise<void> {
    await this.redis.hdel(this.key('pn', this.owner), msgId);
  }

  async listPendingNotifies(): Promise<PendingNotify[]> {
    const h = await this.redis.hgetall(this.key('pn', this.owner));
    return this.toNotifies(Object.entries(h));
  }

  /**
   * Cluster: atomically moves every pending Notify of `fromOwner` to this store's owner and returns
   * them (to be retried here). Of several concurrent adopters exactly one gets them; adopting from
   * oneself moves nothing and returns [].
   */
  async adoptPendingNotifies(fromOwner: string): Promise<PendingNotify[]> {
    if (fromOwner === this.owner) return [];
    const res = await this.run(ADOPT_NOTIFIES, [this.key('pn', fromOwner), this.key('pn', this.owner)], []);
    return this.toNotifies(pairs(isStringArray(res) ? res : []));
  }

  private toNotifies(entries: ReadonlyArray<[string, string]>): PendingNotify[] {
    const out: PendingNotify[] = [];
    for (const [msgId, raw] of entries) {
      const n = this.parse(raw, `pn ${msgId}`, isStoredNotify);
      if (!n) continue;
      // A copy into a plain Uint8Array, like SqliteStore (not a Buffer view of a shared pool).
      out.push({
        msgId: n.msgId,
        agentEid: n.agentEid,
        controllerEid: n.controllerEid,
        msg: new Uint8Array(Buffer.from(n.msg, 'base64')),
        attempt: n.attempt,
        expiresAt: n.expiresAt,
      });
    }
    return out;
  }

  // --- plumbing ---------------------------------------------------------------------------------

  /** Closes the connection (QUIT, or a hard disconnect when Redis does not answer within 1 s). Idempotent. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([this.redis.quit(), new Promise((r) => (timer = setTimeout(r, 1000)))]);
      } catch {
        /* already closed, or Redis is down: disconnect below */
      } finally {
        clearTimeout(timer);
      }
      this.redis.disconnect();
    })());
  }

  /** EVALSHA, loading the script on NOSCRIPT (first use, or after a Redis restart). */
  private async run(script: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await this.redis.evalsha(script.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.redis.eval(script.src, keys.length, ...keys, ...args);
    }
  }

  /** JSON.parse plus a shape check; null (and a log line) for anything else. */
  private parse<T>(raw: string, what: string, check: (v: unknown) => v is T): T | null {
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (err) {
      this.corrupt(what, (err as Error).message);
      return null;
    }
    if (check(v)) return v;
    this.corrupt(what, 'unexpected shape');
    return null;
  }

  private corrupt(what: string, why: string): void {
    this.log('error', 'store.redis: skipping a corrupt value', { key: this.prefix + what, error: why });
  }

  private redact(msg: string): string {
    let m = msg;
    for (const s of this.secrets) if (s) m = m.split(s).join('***');
    return m;
  }
}
