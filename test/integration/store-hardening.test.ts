/**
 * Issue 14 items 10 and 11 over real sockets: a real proxy (startTestProxy) with simulated CPEs.
 * Secrets at rest: the data folder 0700 and the SQLite files 0600 (looser ones tightened with a
 * log line), connection request passwords sealed in the file and still usable for a connection
 * request, plain values of an older store sealed at the first start with a key, a wrong or missing
 * key refused at start with a clear message (also from the CLI). Storage failures: while SQLite
 * refuses writes (a real SQLITE_READONLY), a CPE's Inform gets 503 with Retry-After and /readyz
 * fails naming the cause, both recovering once writes succeed; a store path that cannot be created
 * fails start-up naming the path and the cause.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type Database from 'better-sqlite3';
import { createLogger } from '../../src/app/log.js';
import { encodeSoap } from '../../src/cwmp/soap.js';
import { StoreOpenError } from '../../src/store/files.js';
import { SecretKeyError } from '../../src/store/secrets.js';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { inform } from '../helpers/cwmp-fixtures.js';
import { STRICT_SIM } from '../helpers/sim.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'app', 'cli.js');
const KEY = randomBytes(32).toString('base64');
const OTHER_KEY = randomBytes(32).toString('base64');
const TOKEN = 'store-hardening-token-0123456789';

const mode = (p: string): number => statSync(p).mode & 0o777;

/** A logger whose JSON lines are kept (to check a line was written, and that no secret was). */
function capture(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

/** Every byte SQLite keeps of the store: the file and, while open, its WAL and shared memory. */
function rawStore(dir: string): Buffer {
  const db = path.join(dir, 'proxy.db');
  return Buffer.concat([db, `${db}-wal`, `${db}-shm`].filter((f) => existsSync(f)).map((f) => readFileSync(f)));
}

async function bootFleet(acsUrl: string, prefix: string, count = 2): Promise<Fleet> {
  const fleet = new Fleet({ quirks: STRICT_SIM, acsUrl, count, model: 'tr181', serialPrefix: prefix, periodicIntervalS: null });
  await fleet.start();
  return fleet;
}

async function until(what: string, f: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('secrets at rest', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cup-secrets-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('folder 0700, files 0600 (tightened with a log line); passwords sealed in the file and still usable', async () => {
    chmodSync(dir, 0o755); // as an older version left it
    const { logger, lines } = capture();
    const tp = await startTestProxy({ 'store.secretKey': KEY, 'admin.token': TOKEN }, { dataDir: dir, logger, admin: true });
    let fleet: Fleet | null = null;
    let passwords: string[] = [];
    try {
      fleet = await bootFleet(tp.acsUrl, 'SEAL');
      const devices = await tp.proxy.store.listDevices();
      passwords = devices.map((d) => d.connReqPassword ?? '');
      assert.equal(devices.length, 2);
      assert.ok(
        passwords.every((p) => p.length >= 8),
        'BOOTSTRAP set per-device connection request passwords',
      );

      assert.equal(mode(dir), 0o700, 'data folder');
      const db = path.join(dir, 'proxy.db');
      for (const f of [db, `${db}-wal`, `${db}-shm`]) assert.equal(mode(f), 0o600, f);
      const fix = lines.find((l) => l.msg === 'store: tightened the permissions of a file or folder holding secrets');
      assert.deepEqual([fix?.path, fix?.from, fix?.to], [path.resolve(dir), '0755', '0700']);

      // The sealed password opens again: a connection request authenticates with it (the simulator checks Digest).
      const key = devices[0]!.deviceKey;
      const r = await fetch(`${tp.adminUrl}/api/devices/${encodeURIComponent(key)}/connection-request`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const result = (await r.json()) as { ok: boolean };
      assert.equal(r.status, 200);
      assert.equal(result.ok, true, JSON.stringify(result));

      const raw = rawStore(dir);
      for (const p of passwords) assert.equal(raw.includes(Buffer.from(p)), false, 'a password is in the store files in clear');
      assert.ok(raw.includes(Buffer.from('enc:v1:')), 'sealed values are tagged');
      for (const p of passwords) assert.doesNotMatch(JSON.stringify(lines), new RegExp(p), 'a password in the log');
    } finally {
      await fleet?.stop();
      await tp.stop();
    }
    for (const p of passwords) assert.equal(rawStore(dir).includes(Buffer.from(p)), false, 'a password in clear after close');

    // The same key: the same passwords.
    const again = await startTestProxy({ 'store.secretKey': KEY }, { dataDir: dir });
    try {
      const back = (await again.proxy.store.listDevices()).map((d) => d.connReqPassword);
      assert.deepEqual(back, passwords);
    } finally {
      await again.stop();
    }
  });

  test('a wrong or missing key is refused at start, naming the problem and never the key', async () => {
    await assert.rejects(
      startTestProxy({ 'store.secretKey': OTHER_KEY }, { dataDir: dir }),
      (e: Error) => e instanceof SecretKeyError && /sealed with key [0-9a-f]{8}, not with the configured key [0-9a-f]{8}/.test(e.message),
    );
    await assert.rejects(startTestProxy({}, { dataDir: dir }), (e: Error) => e instanceof SecretKeyError && /no key is configured/.test(e.message));
    await assert.rejects(
      startTestProxy({ 'store.secretKey': 'c2hvcnQ=' }, { dataDir: dir }),
      (e: Error) => e instanceof SecretKeyError && /expected 32 bytes in base64/.test(e.message),
    );
    // The operator's view: the CLI prints the cause and exits 1, the key nowhere in its output.
    const r = spawnSync(process.execPath, [CLI, 'start'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: {
        ...process.env,
        CUP_DATA_DIR: dir,
        CWMP_USP_PROXY_SECRET_KEY: OTHER_KEY,
        CUP_ACS__HOST: '127.0.0.1',
        CUP_ACS__PORT: '0',
        CUP_USP__WEBSOCKET__ENABLED: 'false',
        CUP_ADMIN__ENABLED: 'false',
        CUP_LOG__LEVEL: 'silent',
      },
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^error: the store holds secrets sealed with key [0-9a-f]{8}, not with the configured key [0-9a-f]{8}\n$/);
    assert.doesNotMatch(r.stderr + r.stdout, new RegExp(OTHER_KEY.slice(0, 16).replace(/[+/]/g, '.')));
  });

  test('plain passwords of a store from before a key was configured are sealed at the first start with one (key from a file)', async () => {
    const plainDir = mkdtempSync(path.join(os.tmpdir(), 'cup-secrets-plain-'));
    try {
      const tp = await startTestProxy({}, { dataDir: plainDir });
      let passwords: string[] = [];
      try {
        const fleet = await bootFleet(tp.acsUrl, 'PLAIN', 1);
        await fleet.stop();
        passwords = (await tp.proxy.store.listDevices()).map((d) => d.connReqPassword ?? '');
        assert.equal(passwords.length, 1);
      } finally {
        await tp.stop();
      }
      assert.ok(rawStore(plainDir).includes(Buffer.from(passwords[0]!)), 'without a key the password is stored plain (the starting point)');

      const keyFile = path.join(plainDir, 'secret.key');
      writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });
      const sealed = await startTestProxy({ 'store.secretKeyFile': keyFile }, { dataDir: plainDir });
      try {
        assert.equal(rawStore(plainDir).includes(Buffer.from(passwords[0]!)), false, 'sealed at start');
        assert.deepEqual(
          (await sealed.proxy.store.listDevices()).map((d) => d.connReqPassword),
          passwords,
        );
      } finally {
        await sealed.stop();
      }
    } finally {
      rmSync(plainDir, { recursive: true, force: true });
    }
  });
});

describe('storage failures', () => {
  let tp: TestProxy;
  let fleet: Fleet;
  before(async () => {
    tp = await startTestProxy({ 'admin.token': TOKEN }, { admin: true });
    fleet = await bootFleet(tp.acsUrl, 'FULL', 1);
  });
  after(async () => {
    await fleet?.stop();
    await tp?.stop();
  });

  const postInform = (serial: string): Promise<Response> =>
    fetch(tp.acsUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'text/xml; charset="utf-8"' },
      body: encodeSoap({ cwmpVersion: '1-1', id: '1', body: inform(serial, ['0 BOOTSTRAP', '1 BOOT']) }),
    });
  const readyz = async (): Promise<{ status: number; checks: Record<string, { ok: boolean; detail: string }> }> => {
    const r = await fetch(`${tp.adminUrl}/readyz`);
    return { status: r.status, checks: ((await r.json()) as { checks: Record<string, { ok: boolean; detail: string }> }).checks };
  };

  test('while writes fail, a CPE gets 503 with Retry-After and /readyz fails; both recover', async () => {
    assert.equal((await readyz()).status, 200);
    // A real SQLite write failure (SQLITE_READONLY) on the proxy's own connection, as a read-only remount gives.
    const db = (tp.proxy.store as unknown as { db: Database.Database }).db;
    db.pragma('query_only = ON');
    try {
      const r = await postInform('FAILING1');
      assert.equal(r.status, 503, await r.text());
      assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
      const ready = await readyz();
      assert.equal(ready.status, 503);
      assert.equal(ready.checks.storeWrites?.ok, false);
      assert.match(ready.checks.storeWrites?.detail ?? '', /store writes failing since .*SQLITE_READONLY/);
    } finally {
      db.pragma('query_only = OFF');
    }
    await until('/readyz to recover', async () => (await readyz()).status === 200);
    assert.equal((await readyz()).checks.storeWrites?.ok, true);
    const ok = await postInform('FAILING1');
    assert.equal(ok.status, 200, 'the CPE is served once writes succeed');
    assert.ok(await tp.proxy.store.getDevice('00D09E-Box-FAILING1'));
    const sessions = await fleet.informAllSummaries(['2 PERIODIC']);
    assert.ok(
      sessions.every((s) => s.ok),
      JSON.stringify(sessions),
    );
  });

  test('a store path that cannot be created fails start-up naming the path and the cause', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-badpath-'));
    try {
      // A regular file where a folder should be: ENOTDIR even for root (for whom chmod stops nothing).
      const file = path.join(dir, 'not-a-folder');
      writeFileSync(file, 'x');
      const storePath = path.join(file, 'data', 'proxy.db');
      await assert.rejects(
        startTestProxy({ 'store.path': storePath }, { dataDir: dir }),
        (e: Error) => e instanceof StoreOpenError && e.message.includes(storePath) && /a part of the path is a file, not a folder \(ENOTDIR\)/.test(e.message),
      );
      const r = spawnSync(process.execPath, [CLI, 'start'], {
        encoding: 'utf8',
        timeout: 30_000,
        env: {
          ...process.env,
          CUP_DATA_DIR: dir,
          CUP_STORE__PATH: storePath,
          CUP_ACS__HOST: '127.0.0.1',
          CUP_ACS__PORT: '0',
          CUP_USP__WEBSOCKET__ENABLED: 'false',
          CUP_ADMIN__ENABLED: 'false',
          CUP_LOG__LEVEL: 'silent',
        },
      });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(
        r.stderr,
        `error: store.path ${storePath}: cannot create its folder ${path.dirname(storePath)}: a part of the path is a file, not a folder (ENOTDIR)\n`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
