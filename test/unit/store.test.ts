import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore, SqliteStore } from '../../src/store/sqlite.js';
import { openStore } from '../../src/store/index.js';
import type { QueuedRpc } from '../../src/store/types.js';
import Database from 'better-sqlite3';
import { legacyDeviceKeyOf } from '../../src/cwmp/device-id.js';
import { device, rpc } from '../helpers/store-fixtures.js';

function tmpDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cwmp-usp-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('devices: upsert, get by key and by Endpoint ID, update, count', async (t) => {
  const store = openSqliteStore(path.join(tmpDir(t), 'nested', 'dir', 'proxy.db'));
  t.after(() => store.close());
  const d = device('SN1');
  await store.upsertDevice(d);
  assert.deepEqual(await store.getDevice(d.deviceKey), d);
  assert.deepEqual(await store.getDeviceByEndpointId(d.endpointId), d);
  assert.equal(await store.getDevice('nope'), null);
  assert.equal(await store.getDeviceByEndpointId('os::nope'), null);

  const updated = device('SN1', { rootModel: 'Device', softwareVersion: null, cpeUsername: 'u', cpePassword: 'p', lastInformEvents: ['0 BOOTSTRAP'] });
  await store.upsertDevice(updated);
  assert.deepEqual(await store.getDevice(d.deviceKey), updated);
  assert.equal(await store.countDevices(), 1);
  await store.upsertDevice(device('SN2'));
  assert.equal(await store.countDevices(), 2);

  // Endpoint IDs are unique across devices.
  await assert.rejects(store.upsertDevice(device('SN3', { endpointId: d.endpointId })));
});

test('touchInform: updates only the Inform bookkeeping; null URL keeps the known one', async (t) => {
  const store = openSqliteStore(':memory:');
  t.after(() => store.close());
  const d = device('SN1');
  await store.upsertDevice(d);
  await store.touchInform(d.deviceKey, '2024-05-01T10:00:00.000Z', ['2 PERIODIC', '4 VALUE CHANGE'], 'http://10.0.0.9:7547/');
  assert.deepEqual(await store.getDevice(d.deviceKey), {
    ...d,
    lastInform: '2024-05-01T10:00:00.000Z',
    lastInformEvents: ['2 PERIODIC', '4 VALUE CHANGE'],
    connectionRequestUrl: 'http://10.0.0.9:7547/',
  });
  await store.touchInform(d.deviceKey, '2024-05-01T10:05:00.000Z', ['2 PERIODIC'], null);
  const after = await store.getDevice(d.deviceKey);
  assert.equal(after?.connectionRequestUrl, 'http://10.0.0.9:7547/');
  assert.equal(after?.lastInform, '2024-05-01T10:05:00.000Z');
  // Unknown device: a no-op, not an error.
  await store.touchInform('unknown', '2024-05-01T10:00:00.000Z', [], null);
  assert.equal(await store.countDevices(), 1);
});

test('listDevices: ordered by key, limit/offset, search over ids, escaping of % and _', async (t) => {
  const store = openSqliteStore(':memory:');
  t.after(() => store.close());
  const serials = ['C3', 'A1', 'B2', '100%', 'X_Y', 'XAY'];
  for (const s of serials) await store.upsertDevice(device(s));
  await store.upsertDevice(
    device('Z9', {
      deviceKey: 'AABBCC-Modem-Z9',
      endpointId: 'os::AABBCC-Z9',
      deviceId: { manufacturer: 'Other', oui: 'AABBCC', productClass: 'Modem', serialNumber: 'Z9' },
    }),
  );

  const all = await store.listDevices();
  assert.deepEqual(
    all.map((d) => d.deviceKey),
    [...all.map((d) => d.deviceKey)].sort(),
  );
  assert.equal(all.length, 7);
  assert.deepEqual(
    (await store.listDevices({ limit: 2, offset: 1 })).map((d) => d.deviceKey),
    all.slice(1, 3).map((d) => d.deviceKey),
  );
  assert.deepEqual(await store.listDevices({ offset: 100 }), []);
  assert.equal((await store.listDevices({ limit: 0 })).length, 0);

  const keys = async (search: string): Promise<string[]> => (await store.listDevices({ search })).map((d) => d.deviceId.serialNumber);
  assert.deepEqual(await keys('%'), ['100%'], '% is literal');
  assert.deepEqual(await keys('X_Y'), ['X_Y'], '_ is literal');
  assert.deepEqual(await keys('_'), ['X_Y']);
  assert.deepEqual(await keys('\\'), []);
  assert.deepEqual(await keys('aabbcc'), ['Z9'], 'OUI, case-insensitive');
  assert.deepEqual(await keys('modem'), ['Z9'], 'product class');
  assert.deepEqual(await keys('os::AABBCC'), ['Z9'], 'endpoint id');
  assert.deepEqual(await keys('b2'), ['B2'], 'serial');
  assert.equal((await store.listDevices({ search: 'HGW', limit: 2 })).length, 2);
  await assert.rejects(store.listDevices({ limit: -1 }), RangeError);
});

test('parameter types: put in one transaction, get all or by names, overwrite', async (t) => {
  const store = openSqliteStore(':memory:');
  t.after(() => store.close());
  const model = '00D09E-HGW-1.2.3';
  await store.putParameterTypes(
    model,
    new Map([
      ['Device.A', 'xsd:string'],
      ['Device.B', 'xsd:unsignedInt'],
      ['Device.C', 'xsd:boolean'],
    ]),
  );
  await store.putParameterTypes('other-model', new Map([['Device.A', 'xsd:int']]));
  await store.putParameterTypes(model, new Map([['Device.B', 'xsd:int']]));
  await store.putParameterTypes(model, new Map());
  assert.deepEqual(
    await store.getParameterTypes(model),
    new Map([
      ['Device.A', 'xsd:string'],
      ['Device.B', 'xsd:int'],
      ['Device.C', 'xsd:boolean'],
    ]),
  );
  assert.deepEqual(await store.getParameterTypes(model, ['Device.C', 'Device.Missing', "Device.'quote"]), new Map([['Device.C', 'xsd:boolean']]));
  assert.deepEqual(await store.getParameterTypes(model, []), new Map());
  assert.deepEqual(await store.getParameterTypes('none'), new Map());

  const big = new Map(Array.from({ length: 5000 }, (_, i) => [`Device.T.${i}.Name`, 'xsd:string'] as const));
  await store.putParameterTypes('big', big);
  assert.equal((await store.getParameterTypes('big')).size, 5000);
});

test('queued RPCs: FIFO per device, list all, remove, duplicate id rejected', async (t) => {
  const store = openSqliteStore(':memory:');
  t.after(() => store.close());
  // Interleave two devices; insertion order is the FIFO order.
  await store.addQueuedRpc(rpc('a1', 'A', 1));
  await store.addQueuedRpc(rpc('b1', 'B', 2));
  await store.addQueuedRpc(rpc('a2', 'A', 3));
  await store.addQueuedRpc(rpc('a3', 'A', 4));
  await store.addQueuedRpc(rpc('b2', 'B', 5));
  assert.deepEqual(
    (await store.listQueuedRpcs('A')).map((r) => r.id),
    ['a1', 'a2', 'a3'],
  );
  assert.deepEqual(
    (await store.listQueuedRpcs('B')).map((r) => r.id),
    ['b1', 'b2'],
  );
  assert.deepEqual(await store.listQueuedRpcs('C'), []);
  assert.deepEqual((await store.listQueuedRpcs('A'))[0], rpc('a1', 'A', 1));
  assert.deepEqual(
    (await store.listAllQueuedRpcs()).map((r) => r.id),
    ['a1', 'b1', 'a2', 'a3', 'b2'],
  );

  assert.equal(await store.removeQueuedRpc('a2'), true);
  assert.equal(await store.removeQueuedRpc('a2'), false);
  assert.deepEqual(
    (await store.listQueuedRpcs('A')).map((r) => r.id),
    ['a1', 'a3'],
  );
  await store.addQueuedRpc(rpc('a4', 'A', 6));
  assert.deepEqual(
    (await store.listQueuedRpcs('A')).map((r) => r.id),
    ['a1', 'a3', 'a4'],
  );
  await assert.rejects(store.addQueuedRpc(rpc('a1', 'A', 7)));

  // Full RPC shapes survive the JSON column.
  const spv: QueuedRpc = {
    id: 'spv',
    deviceKey: 'A',
    rpc: { method: 'SetParameterValues', parameterKey: 'k', parameterList: [{ name: 'Device.X', value: 'a"b<c', type: 'xsd:string' }] },
    createdAt: '2024-01-01T00:00:00.000Z',
    deadline: Number.MAX_SAFE_INTEGER,
  };
  await store.addQueuedRpc(spv);
  assert.deepEqual((await store.listQueuedRpcs('A')).at(-1), spv);
});

test('survives restart: reopen the same file and devices, types and the queue are there', async (t) => {
  const file = path.join(tmpDir(t), 'proxy.db');
  const first = openSqliteStore(file);
  await first.upsertDevice(device('SN1'));
  await first.putParameterTypes('m', new Map([['Device.A', 'xsd:int']]));
  await first.addQueuedRpc(rpc('q1', device('SN1').deviceKey, 1));
  await first.addQueuedRpc(rpc('q2', device('SN1').deviceKey, 2));
  await first.removeQueuedRpc('q1');
  await first.close();
  await first.close(); // idempotent

  const second = openStore({ path: file });
  t.after(() => second.close());
  assert.deepEqual(await second.getDevice(device('SN1').deviceKey), device('SN1'));
  assert.deepEqual(await second.getParameterTypes('m'), new Map([['Device.A', 'xsd:int']]));
  assert.deepEqual(
    (await second.listAllQueuedRpcs()).map((r) => r.id),
    ['q2'],
  );
  // AUTOINCREMENT: new entries still go after the survivors.
  await second.addQueuedRpc(rpc('q3', device('SN1').deviceKey, 3));
  assert.deepEqual(
    (await second.listQueuedRpcs(device('SN1').deviceKey)).map((r) => r.id),
    ['q2', 'q3'],
  );
});

test('two handles on one file: a writer and a reader (WAL) work at once', async (t) => {
  const file = path.join(tmpDir(t), 'proxy.db');
  const writer = openSqliteStore(file);
  t.after(() => writer.close());
  await writer.upsertDevice(device('SN1'));
  assert.ok(existsSync(file + '-wal'), 'WAL mode');

  const reader = openSqliteStore(file, { readonly: true });
  t.after(() => reader.close());
  const rw = openSqliteStore(file); // a second read-write opener runs no migration twice
  t.after(() => rw.close());

  assert.equal(await reader.countDevices(), 1);
  for (let i = 2; i <= 50; i++) {
    await writer.upsertDevice(device(`SN${i}`));
    await writer.touchInform(device('SN1').deviceKey, new Date(1_700_000_000_000 + i).toISOString(), ['2 PERIODIC'], null);
    assert.equal(await reader.countDevices(), i);
  }
  await rw.addQueuedRpc(rpc('x', 'k'));
  assert.deepEqual(
    (await writer.listQueuedRpcs('k')).map((r) => r.id),
    ['x'],
  );
  assert.equal((await reader.listDevices({ search: 'SN4' })).length, 11); // SN4, SN40..SN49
  await assert.rejects(reader.upsertDevice(device('RO')), /readonly/i);
});

test('readonly open of a missing file fails cleanly; constructor is usable directly', async (t) => {
  const dir = tmpDir(t);
  assert.throws(() => openSqliteStore(path.join(dir, 'missing.db'), { readonly: true }));
  const s = new SqliteStore(':memory:');
  await s.upsertDevice(device('SN1'));
  assert.equal(await s.countDevices(), 1);
  await s.close();
});

test('migration 8 on a file written before it: a key with "-" in its ProductClass moves, with its queued RPC', async (t) => {
  const file = path.join(tmpDir(t), 'proxy.db');
  const id = { manufacturer: 'Acme', oui: '001E58', productClass: 'DIR-825', serialNumber: 'QA1' };
  const before = openSqliteStore(file);
  await before.upsertDevice(device('QA1', { deviceKey: legacyDeviceKeyOf(id), deviceId: id, endpointId: 'os::001E58-QA1' }));
  await before.addQueuedRpc(rpc('q1', legacyDeviceKeyOf(id)));
  await before.close();
  // The file as a program before migration 8 left it.
  const raw = new Database(file);
  raw.prepare('DELETE FROM schema_version WHERE version = 8').run();
  raw.exec('ALTER TABLE queued_rpcs DROP COLUMN sent_at');
  raw.close();

  const after = openSqliteStore(file);
  t.after(() => after.close());
  assert.equal(await after.getDevice(legacyDeviceKeyOf(id)), null);
  assert.equal((await after.getDevice('001E58-DIR%2D825-QA1'))?.endpointId, 'os::001E58-QA1');
  assert.deepEqual(
    (await after.listQueuedRpcs('001E58-DIR%2D825-QA1')).map((q) => q.id),
    ['q1'],
  );
});
