/**
 * Secrets at rest and write health (issue 14 items 10, 11), below the proxy: the sealing codec
 * (round trip, tag, authentication, wrong and missing keys), both stores sealing what they write
 * (the raw SQLite bytes and the raw Redis hash hold no password), the SQLite files' modes, the
 * classification of store write failures, and StoreHealth over a SQLite store that really refuses
 * writes (query_only: SQLITE_READONLY) and recovers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, describeConfig, loadConfig } from '../../src/app/config.js';
import { storeUnavailable } from '../../src/store/errors.js';
import { StoreOpenError, type ModeFix } from '../../src/store/files.js';
import { StoreHealth, trackWrites } from '../../src/store/health.js';
import { RedisStore } from '../../src/store/redis.js';
import { parseSecretKey, SecretKeyError, secretCodec, SEALED_PREFIX } from '../../src/store/secrets.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { findBinary } from '../helpers/brokers.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';
import { device } from '../helpers/store-fixtures.js';

const KEY = randomBytes(32);
const codec = secretCodec(KEY);

describe('the sealing codec', () => {
  test('round trip, tagged, a fresh nonce each time; null and plain values pass through', () => {
    const a = codec.seal('connReqPassword', 'pa55-wörd');
    const b = codec.seal('connReqPassword', 'pa55-wörd');
    assert.ok(a?.startsWith(`${SEALED_PREFIX}${codec.keyId}:`));
    assert.notEqual(a, b);
    assert.equal(codec.open('connReqPassword', a), 'pa55-wörd');
    assert.equal(codec.open('connReqPassword', ''), '');
    assert.equal(codec.seal('cpePassword', null), null);
    assert.equal(codec.open('cpePassword', null), null);
    assert.equal(codec.open('cpePassword', 'from-before'), 'from-before', 'a plain value of an older store is read as is');
    assert.equal(codec.open('cpePassword', codec.seal('cpePassword', '')), '');
  });

  test('altered bytes, another field, another key and no key are errors that say which', () => {
    const sealed = codec.seal('connReqPassword', 'secret')!;
    const raw = Buffer.from(sealed.slice(sealed.lastIndexOf(':') + 1), 'base64');
    raw[raw.length - 1]! ^= 1;
    const altered = `${sealed.slice(0, sealed.lastIndexOf(':') + 1)}${raw.toString('base64')}`;
    assert.throws(() => codec.open('connReqPassword', altered), /does not authenticate/);
    assert.throws(() => codec.open('cpePassword', sealed), /does not authenticate/, 'moved to another field');
    const other = secretCodec(randomBytes(32));
    assert.throws(
      () => other.open('connReqPassword', sealed),
      (e: Error) => e instanceof SecretKeyError && e.message.includes(codec.keyId!) && e.message.includes(other.keyId!),
    );
    assert.throws(() => secretCodec(null).open('connReqPassword', sealed), /no key is configured/);
    assert.equal(secretCodec(null).seal('connReqPassword', 'x'), 'x', 'without a key values are stored as given');
  });

  test('keys: 32 bytes of base64 (padding, URL alphabet and whitespace accepted), anything else named by its source', () => {
    assert.deepEqual(parseSecretKey(` ${KEY.toString('base64')}\n`, 'k'), KEY);
    assert.deepEqual(parseSecretKey(KEY.toString('base64url'), 'k'), KEY);
    assert.throws(() => parseSecretKey(randomBytes(16).toString('base64'), 'store.secretKeyFile /x'), /store\.secretKeyFile \/x: expected 32 bytes.*got 16/);
    assert.throws(() => parseSecretKey('not base64 at all!', 'ENV'), /^SecretKeyError: ENV: expected 32 bytes/);
    assert.throws(() => secretCodec(randomBytes(31)), SecretKeyError);
  });
});

describe('configuration', () => {
  test('CWMP_USP_PROXY_SECRET_KEY sets store.secretKey (never shown); with store.secretKeyFile too it is refused', () => {
    const k = KEY.toString('base64');
    const c = loadConfig({ env: { CWMP_USP_PROXY_SECRET_KEY: k } });
    assert.equal(c.store.secretKey, k);
    assert.equal(loadConfig({ env: {} }).store.secretKey, '');
    assert.throws(
      () => loadConfig({ env: { CWMP_USP_PROXY_SECRET_KEY: k, CUP_STORE__SECRET_KEY_FILE: '/etc/k' } }),
      (e: Error) => e instanceof ConfigError && /set one/.test(e.message) && !e.message.includes(k),
    );
    assert.equal(describeConfig().find((d) => d.key === 'store.secretKey')?.def, '');
  });

  test('admin.allowedHosts from the environment is a comma-separated list; metricsPublic is off by default', () => {
    const c = loadConfig({ env: { CUP_ADMIN__ALLOWED_HOSTS: 'admin.example.net, 10.0.0.5' } });
    assert.deepEqual(c.admin.allowedHosts, ['admin.example.net', '10.0.0.5']);
    assert.equal(c.admin.metricsPublic, false);
    assert.deepEqual(loadConfig({ env: {} }).admin.allowedHosts, []);
  });
});

describe('SQLite: files and sealed columns', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cup-store-secrets-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a new store: folder 0700, file, WAL and shared memory 0600; the raw bytes hold no password', async () => {
    const file = path.join(dir, 'new', 'deep', 'proxy.db');
    const s = openSqliteStore(file, { secrets: codec });
    try {
      await s.upsertDevice(device('S1', { connReqPassword: 'cr-pass-S1-unique', cpePassword: 'cpe-pass-S1-unique' }));
      assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
      for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
      const raw = Buffer.concat([readFileSync(file), readFileSync(`${file}-wal`)]);
      assert.equal(raw.includes(Buffer.from('cr-pass-S1-unique')), false);
      assert.equal(raw.includes(Buffer.from('cpe-pass-S1-unique')), false);
      const reader: SqliteStore = openSqliteStore(file, { readonly: true, secrets: codec });
      const back = await reader.getDevice(device('S1').deviceKey);
      await reader.close();
      assert.equal(back?.connReqPassword, 'cr-pass-S1-unique');
      assert.equal(back?.cpePassword, 'cpe-pass-S1-unique');
    } finally {
      await s.close();
    }
  });

  test('looser modes of an existing store are tightened and reported', async () => {
    const file = path.join(dir, 'loose.db');
    await openSqliteStore(file).close();
    chmodSync(file, 0o644);
    const fixes: ModeFix[] = [];
    const s = openSqliteStore(file, { onModeFix: (f) => fixes.push(f) });
    await s.close();
    assert.deepEqual(fixes, [{ path: file, from: '0644', to: '0600' }]);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  test('a file that is not a database, and a path under a file, fail naming the path and the cause', () => {
    const junk = path.join(dir, 'junk.db');
    writeFileSync(junk, 'this is not a SQLite database, just some text long enough to be read as a header'.repeat(10));
    assert.throws(
      () => openSqliteStore(junk),
      (e: Error) => e instanceof StoreOpenError && e.message.startsWith(`store.path ${junk}: cannot use the database: `) && /SQLITE_NOTADB/.test(e.message),
    );
    const under = path.join(junk, 'proxy.db');
    assert.throws(
      () => openSqliteStore(under),
      (e: Error) => e instanceof StoreOpenError && e.message.includes(under) && /a file is where the folder should be \(EEXIST\)/.test(e.message),
    );
    const deeper = path.join(junk, 'data', 'proxy.db');
    assert.throws(
      () => openSqliteStore(deeper),
      (e: Error) => e instanceof StoreOpenError && e.message.includes(deeper) && /\(ENOTDIR\)/.test(e.message),
    );
  });
});

describe('store write failures', () => {
  test('SQLite full, read-only and I/O errors, and an unreachable Redis, are the store unavailable; a constraint is not', () => {
    const err = (code: string) => Object.assign(new Error('x'), { code });
    for (const c of ['SQLITE_FULL', 'SQLITE_READONLY', 'SQLITE_READONLY_DBMOVED', 'SQLITE_IOERR_WRITE', 'SQLITE_BUSY', 'ENOSPC', 'EROFS'])
      assert.equal(storeUnavailable(err(c)), true, c);
    for (const c of ['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_ERROR', 'ERR_X']) assert.equal(storeUnavailable(err(c)), false, c);
    assert.equal(storeUnavailable(new Error('Connection is closed.')), true);
  });

  test('StoreHealth: a real SQLITE_READONLY marks writes failing; the probe sees them recover', async () => {
    const inner = openSqliteStore(':memory:');
    const changes: Array<[boolean, string]> = [];
    const health = new StoreHealth(inner, { probeIntervalMs: 0, onChange: (f, d) => changes.push([f, d]) });
    const s = trackWrites(inner, health);
    try {
      await s.upsertDevice(device('H1'));
      assert.deepEqual(await health.check(), { ok: true, detail: 'writes succeed' });
      const db = (inner as unknown as { db: { pragma(s: string): unknown } }).db;
      db.pragma('query_only = ON');
      await assert.rejects(s.upsertDevice(device('H2')), /SQLITE_READONLY|readonly/i);
      assert.equal(health.failing, true);
      assert.match((await health.check()).detail, /store writes failing since .*\(SQLITE_READONLY\)/);
      assert.equal((await health.check()).ok, false, 'the probe fails too while writes are refused');
      // Reads still work, and a bad value is the caller's error, not the store failing.
      assert.equal((await s.getDevice(device('H1').deviceKey))?.deviceId.serialNumber, 'H1');
      db.pragma('query_only = OFF');
      assert.deepEqual(await health.check(), { ok: true, detail: 'writes succeed' });
      assert.deepEqual(
        changes.map(([f]) => f),
        [true, false],
      );
      assert.equal(await s.getLearned('device', '\u0000store-write-probe'), null, 'the probe leaves nothing behind');
    } finally {
      await s.close();
    }
  });
});

describe('SQLite full', () => {
  test('a real SQLITE_FULL (max_page_count reached) marks writes failing; room again, they recover', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-store-full-'));
    const inner = openSqliteStore(path.join(dir, 'proxy.db'), { touchFlushMs: 0 });
    const health = new StoreHealth(inner, { probeIntervalMs: 0 });
    const s = trackWrites(inner, health);
    const db = (inner as unknown as { db: { pragma(s: string, o?: { simple: boolean }): unknown } }).db;
    try {
      const pages = Number(db.pragma('page_count', { simple: true }));
      db.pragma(`max_page_count = ${pages + 2}`);
      let full: (Error & { code?: string }) | null = null;
      for (let i = 0; i < 1000 && !full; i++) {
        await s.upsertDevice(device(`F${i}`, { connReqPassword: 'x'.repeat(500) })).catch((e: Error) => {
          full = e;
        });
      }
      assert.equal((full as (Error & { code?: string }) | null)?.code, 'SQLITE_FULL');
      assert.match((await health.check()).detail, /database or disk is full \(SQLITE_FULL\)/);
      db.pragma('max_page_count = 1073741823');
      assert.equal((await health.check()).ok, true);
      await s.upsertDevice(device('AFTER'));
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite: batched Inform bookkeeping on a store that refuses writes', () => {
  test('a failing batch never escapes its timer; the next touch reports it; nothing is lost once writes succeed', async () => {
    const s = openSqliteStore(':memory:', { touchFlushMs: 5 });
    const inner = s as unknown as { db: { pragma(s: string): unknown } };
    try {
      await s.upsertDevice(device('T1'));
      inner.db.pragma('query_only = ON');
      await s.touchInform(device('T1').deviceKey, '2026-01-01T00:00:00.000Z', ['2 PERIODIC'], 'http://10.0.0.9:7547/');
      // The batch's timer fires and fails here; the process goes on (an uncaught error would end the test run).
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await s.listDevices()).length, 1, 'reads go on while writes fail');
      assert.equal(await s.countDevices(), 1);
      await assert.rejects(
        s.touchInform(device('T1').deviceKey, '2026-01-01T00:01:00.000Z', ['2 PERIODIC'], null),
        (e: Error & { code?: string }) => storeUnavailable(e) && /^SQLITE_READONLY/.test(e.code ?? ''),
      );
      inner.db.pragma('query_only = OFF');
      await s.touchInform(device('T1').deviceKey, '2026-01-01T00:02:00.000Z', ['1 BOOT'], null);
      assert.equal((s as unknown as { flushFailed: boolean }).flushFailed, false, 'back to batched writes');
      const d = await s.listDevices(); // flushes, then reads the table (not the cache)
      assert.equal(d[0]?.lastInform, '2026-01-01T00:02:00.000Z');
      assert.deepEqual(d[0]?.lastInformEvents, ['1 BOOT']);
      assert.equal(d[0]?.connectionRequestUrl, 'http://10.0.0.9:7547/', 'the URL of the failed batch was kept');
      // Closing while writes fail still closes (the pending bookkeeping is dropped, not thrown).
      inner.db.pragma('query_only = ON');
      await s.touchInform(device('T1').deviceKey, '2026-01-01T00:03:00.000Z', ['2 PERIODIC'], null);
      await s.close();
    } finally {
      await s.close();
    }
  });
});

const redisSkip = findBinary('redis-server') ? false : 'redis-server is not installed';

describe('RedisStore: sealed secrets', { skip: redisSkip }, () => {
  let server: RedisHandle | null = null;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });

  test('the raw hash holds no password; the same key reads it back; another key fails ready()', async () => {
    const prefix = `sealed${process.pid}:`;
    const s = new RedisStore({ url: server!.url, prefix, owner: 'o1', secrets: codec, deviceCacheTtlMs: 0 });
    try {
      await s.ready();
      const d = device('R1', { connReqPassword: 'redis-cr-pass-R1', cpePassword: 'redis-cpe-pass-R1' });
      await s.upsertDevice(d);
      const raw = JSON.stringify(await s.redis.hgetall(s.key('dev', d.deviceKey)));
      assert.equal(raw.includes('redis-cr-pass-R1'), false);
      assert.equal(raw.includes('redis-cpe-pass-R1'), false);
      assert.ok(raw.includes(SEALED_PREFIX));
      const back = await s.getDevice(d.deviceKey);
      assert.equal(back?.connReqPassword, 'redis-cr-pass-R1');
      assert.equal(back?.cpePassword, 'redis-cpe-pass-R1');
    } finally {
      await s.close();
    }
    const wrong = new RedisStore({ url: server!.url, prefix, owner: 'o2', secrets: secretCodec(randomBytes(32)) });
    try {
      await assert.rejects(wrong.ready(), (e: Error) => e instanceof SecretKeyError && /not with the configured key/.test(e.message));
    } finally {
      await wrong.close();
    }
  });
});
