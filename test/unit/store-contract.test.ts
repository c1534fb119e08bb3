/**
 * One Store contract, run against SqliteStore (':memory:') and RedisStore (a fresh key prefix per
 * test on a throwaway redis-server), so that both behave the same for every caller. Then the
 * Redis-only surface used by src/cluster/: claiming, unqueueing, per-owner pending Notifies and
 * Request rows, adoption under concurrency, the key layout, corrupt values, outages.
 * store.test.ts keeps the SQLite-specific cases (files, WAL, read-only handles).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findBinary, freePort } from '../helpers/brokers.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { RedisStore, type RedisStoreLog } from '../../src/store/redis.js';
import { openStore } from '../../src/store/index.js';
import type { DeviceRecord, PendingNotify, QueuedRpc, Store, StoredRow } from '../../src/store/types.js';
import { device, rpc } from '../helpers/store-fixtures.js';
import { deviceKeyOf, legacyDeviceKeyOf } from '../../src/cwmp/device-id.js';
import { randomBytes } from 'node:crypto';
import { LeaseQueue } from '../../src/cluster/lease-queue.js';
import { secretCodec } from '../../src/store/secrets.js';

function notify(msgId: string, over: Partial<PendingNotify> = {}): PendingNotify {
  return {
    msgId,
    agentEid: 'os::00D09E-SN1',
    controllerEid: 'self::ctrl',
    msg: new Uint8Array([0, 1, 2, 0xfe, 0xff, 0x80, 0x7f, 0]),
    attempt: 1,
    expiresAt: 1_700_000_123_456,
    ...over,
  };
}

const ids = (rows: ReadonlyArray<{ id: string }>): string[] => rows.map((r) => r.id);

/** The ACS's turn in a CWMP session on the shared store (src/cluster/lease-queue.ts): the device's queue head is taken. */
async function claimNextQueuedRpc(s: RedisStore, deviceKey: string): Promise<QueuedRpc | null> {
  const json = await new LeaseQueue(s.redis, s.key('')).pop(deviceKey);
  return json ? (JSON.parse(json) as QueuedRpc) : null;
}
const byMsgId = (a: PendingNotify, b: PendingNotify): number => (a.msgId < b.msgId ? -1 : a.msgId > b.msgId ? 1 : 0);
const rowKeys = (rows: readonly StoredRow[]): string[] => rows.map((r) => `${r.agentEid}|${r.instance}`);

type Open = () => Promise<Store>;

/** The shared contract: every Store method with real values. */
function contract(open: Open): void {
  /** A store closed when the test ends. */
  const fresh = async (t: { after(fn: () => Promise<void>): void }): Promise<Store> => {
    const s = await open();
    t.after(() => s.close());
    return s;
  };

  it('deleteDevice forgets the device, its queued RPCs, instance map and learned facts, not other devices', async (t) => {
    const store = await fresh(t);
    const [a, b] = [device('DEL1'), device('DEL2')];
    await store.upsertDevice(a);
    await store.upsertDevice(b);
    await store.touchInform(a.deviceKey, new Date().toISOString(), ['2 PERIODIC'], null);
    await store.addQueuedRpc(rpc('da1', a.deviceKey));
    await store.addQueuedRpc(rpc('db1', b.deviceKey));
    await store.putInstanceMap(a.deviceKey, { 'Device.IP.Interface.1.': 1 });
    await store.putLearned('device', a.deviceKey, '{"x":1}');
    await store.putLearned('device', b.deviceKey, '{"y":1}');
    assert.equal(await store.deleteDevice(a.deviceKey), true);
    assert.equal(await store.getDevice(a.deviceKey), null);
    assert.equal(await store.getDeviceByEndpointId(a.endpointId), null);
    assert.deepEqual(await store.listQueuedRpcs(a.deviceKey), []);
    assert.equal(await store.getInstanceMap(a.deviceKey), null);
    assert.equal(await store.getLearned('device', a.deviceKey), null);
    assert.equal(await store.countDevices(), 1);
    assert.deepEqual(
      (await store.listDevices()).map((d) => d.deviceKey),
      [b.deviceKey],
    );
    assert.deepEqual(
      (await store.listAllQueuedRpcs()).map((r) => r.id),
      ['db1'],
    );
    assert.equal(await store.getLearned('device', b.deviceKey), '{"y":1}');
    assert.equal(await store.deleteDevice(a.deviceKey), false);
    // It may come back (its next Inform registers it again).
    await store.upsertDevice(a);
    assert.deepEqual(await store.getDeviceByEndpointId(a.endpointId), a);
  });

  it('getDeviceByEndpointId follows an Endpoint ID that moved to another device, and a deleted device', async (t) => {
    const store = await fresh(t);
    const a = device('MOVE1');
    await store.upsertDevice(a);
    assert.deepEqual(await store.getDeviceByEndpointId(a.endpointId), a);
    const moved = { ...a, endpointId: 'os::MOVED-1' };
    await store.upsertDevice(moved);
    assert.equal(await store.getDeviceByEndpointId(a.endpointId), null);
    assert.deepEqual(await store.getDeviceByEndpointId(moved.endpointId), moved);
    const b = { ...device('MOVE2'), endpointId: a.endpointId };
    await store.upsertDevice(b);
    assert.deepEqual(await store.getDeviceByEndpointId(a.endpointId), b);
    const found = await store.getDeviceByEndpointId(b.endpointId);
    found!.softwareVersion = 'changed by the caller';
    assert.deepEqual(await store.getDeviceByEndpointId(b.endpointId), b, 'a copy: the caller cannot change what is held');
    await store.deleteDevice(b.deviceKey);
    assert.equal(await store.getDeviceByEndpointId(a.endpointId), null);
  });

  it('tags (migration 9): set, replace, search by tag, gone with the device', async (t) => {
    const store = await fresh(t);
    const [a, b] = [device('TAG1'), device('TAG2')];
    await store.upsertDevice(a);
    await store.upsertDevice(b);
    assert.deepEqual(await store.getTags(a.deviceKey), []);
    await store.setTags(a.deviceKey, ['lab', 'fw-2.1', 'east']);
    await store.setTags(b.deviceKey, ['lab']);
    assert.deepEqual(await store.getTags(a.deviceKey), ['east', 'fw-2.1', 'lab']);
    assert.deepEqual(await store.devicesWithTag('lab'), [a.deviceKey, b.deviceKey].sort());
    await store.setTags(a.deviceKey, ['east']);
    assert.deepEqual(await store.devicesWithTag('lab'), [b.deviceKey]);
    assert.deepEqual(await store.devicesWithTag('fw-2.1'), []);
    assert.deepEqual(await store.devicesWithTag('east'), [a.deviceKey]);
    await store.deleteDevice(a.deviceKey);
    assert.deepEqual(await store.devicesWithTag('east'), []);
    assert.deepEqual(await store.getTags(a.deviceKey), []);
    await store.setTags(b.deviceKey, []);
    assert.deepEqual(await store.devicesWithTag('lab'), []);
  });

  it('devices: upsert, get by key and Endpoint ID, update, count, unknown keys', async (t) => {
    const store = await fresh(t);
    const d = device('SN1');
    await store.upsertDevice(d);
    assert.deepEqual(await store.getDevice(d.deviceKey), d);
    assert.deepEqual(await store.getDeviceByEndpointId(d.endpointId), d);
    assert.equal(await store.getDevice('nope'), null);
    assert.equal(await store.getDeviceByEndpointId('os::nope'), null);
    assert.equal(await store.countDevices(), 1);

    const updated = device('SN1', {
      rootModel: 'Device',
      softwareVersion: null,
      connectionRequestUrl: null,
      connReqUsername: null,
      cpeUsername: 'u',
      cpePassword: 'p',
      periodicInformInterval: null,
      lastInform: '2024-02-02T00:00:00.000Z',
      lastInformEvents: ['0 BOOTSTRAP', '1 BOOT'],
    });
    await store.upsertDevice(updated);
    assert.deepEqual(await store.getDevice(d.deviceKey), updated);
    assert.equal(await store.countDevices(), 1);
    // Empty strings are values, not nulls.
    const empty = device('SN2', { connectionRequestUrl: '', softwareVersion: '', lastInform: '' });
    await store.upsertDevice(empty);
    assert.deepEqual(await store.getDevice(empty.deviceKey), empty);
    assert.equal(await store.countDevices(), 2);
    // Callers may mutate what they get without touching the store.
    const got = (await store.getDevice(d.deviceKey))!;
    got.lastInformEvents.push('X');
    got.deviceId.serialNumber = 'changed';
    assert.deepEqual(await store.getDevice(d.deviceKey), updated);
  });

  it('devices: pending CPE credentials and the certificate identity (migration 7) round-trip and clear', async (t) => {
    const store = await fresh(t);
    const d = device('SNP', { cpePendingUsername: 'cpe-p', cpePendingPassword: 'pending-secret', cpeCertIdentity: 'serial:01AB' });
    await store.upsertDevice(d);
    assert.deepEqual(await store.getDevice(d.deviceKey), d);
    const promoted = { ...d, cpeUsername: 'cpe-p', cpePassword: 'pending-secret' };
    delete promoted.cpePendingUsername;
    delete promoted.cpePendingPassword;
    await store.upsertDevice(promoted);
    assert.deepEqual(await store.getDevice(d.deviceKey), promoted);
    assert.equal((await store.getDevice(d.deviceKey))!.cpePendingUsername, undefined);
    // found by its current username, no longer by the old pending one once that changed
    await store.upsertDevice({ ...promoted, cpeUsername: 'cpe-q', cpePendingUsername: 'cpe-r', cpePendingPassword: 'x' });
    assert.equal((await store.getDeviceByCpeUsername('cpe-q'))?.deviceKey, d.deviceKey);
    assert.equal((await store.getDeviceByCpeUsername('cpe-r'))?.deviceKey, d.deviceKey);
    assert.equal(await store.getDeviceByCpeUsername('cpe-p'), null);
    assert.equal(await store.getDeviceByCpeUsername('nobody'), null);
  });

  it('migration 8: devices under the old key form move to the collision-free key with their rows', async (t) => {
    const store = await fresh(t);
    // Stored before migration 8: "-" inside the ProductClass left as is, so this key was ambiguous.
    const id = { manufacturer: 'Acme', oui: '00D09E', productClass: 'IGD-X', serialNumber: '123' };
    const old = device('123', { deviceKey: legacyDeviceKeyOf(id), deviceId: id, endpointId: 'os::00D09E-123' });
    assert.equal(old.deviceKey, '00D09E-IGD-X-123');
    const plain = device('SN1'); // no "-" in OUI or ProductClass: its key is the same in both forms
    await store.upsertDevice(old);
    await store.upsertDevice(plain);
    await store.addQueuedRpc(rpc('r1', old.deviceKey, 1));
    await store.putInstanceMap(old.deviceKey, { 'Device.IP.Interface.': 3 });
    await store.putLearned('device', old.deviceKey, '{"d":1}');
    await store.putLearned('watch', old.deviceKey, '{"w":1}');

    assert.deepEqual(await store.rekeyDevices(), { moved: 1, clashes: 0 });
    const key = deviceKeyOf(id);
    assert.equal(key, '00D09E-IGD%2DX-123');
    assert.equal(await store.getDevice(old.deviceKey), null);
    assert.deepEqual(await store.getDevice(key), { ...old, deviceKey: key });
    assert.equal((await store.getDeviceByEndpointId(old.endpointId))?.deviceKey, key);
    assert.deepEqual(ids(await store.listQueuedRpcs(key)), ['r1']);
    assert.equal((await store.listQueuedRpcs(key))[0]!.deviceKey, key);
    assert.deepEqual(await store.listQueuedRpcs(old.deviceKey), []);
    assert.deepEqual(await store.getInstanceMap(key), { 'Device.IP.Interface.': 3 });
    assert.equal(await store.getLearned('device', key), '{"d":1}');
    assert.equal(await store.getLearned('watch', key), '{"w":1}');
    assert.equal(await store.getLearned('device', old.deviceKey), null);
    assert.deepEqual(await store.getDevice(plain.deviceKey), plain);
    assert.equal(await store.countDevices(), 2);
    // Idempotent.
    assert.deepEqual(await store.rekeyDevices(), { moved: 0, clashes: 0 });
  });

  it('devices: Endpoint IDs are unique; an upsert may move a device to a new one', async (t) => {
    const store = await fresh(t);
    const d1 = device('SN1');
    const d2 = device('SN2');
    await store.upsertDevice(d1);
    await store.upsertDevice(d2);
    // Another device cannot take SN1's Endpoint ID, and the failed upsert changes nothing.
    await assert.rejects(store.upsertDevice(device('SN3', { endpointId: d1.endpointId })));
    await assert.rejects(store.upsertDevice({ ...d2, endpointId: d1.endpointId, softwareVersion: '9' }));
    assert.equal(await store.getDevice(device('SN3').deviceKey), null);
    assert.deepEqual(await store.getDevice(d2.deviceKey), d2);
    assert.deepEqual(await store.getDeviceByEndpointId(d1.endpointId), d1);
    assert.equal(await store.countDevices(), 2);

    // SN1 moves to ops::...: the old ID is free, the new one finds it.
    const moved = { ...d1, endpointId: 'ops::00D09E-HGW-SN1' };
    await store.upsertDevice(moved);
    assert.equal(await store.getDeviceByEndpointId(d1.endpointId), null);
    assert.deepEqual(await store.getDeviceByEndpointId(moved.endpointId), moved);
    assert.deepEqual(await store.getDevice(d1.deviceKey), moved);
    // ... and another device may now take the old one.
    const d3 = device('SN3', { endpointId: d1.endpointId });
    await store.upsertDevice(d3);
    assert.deepEqual(await store.getDeviceByEndpointId(d1.endpointId), d3);
    assert.equal(await store.countDevices(), 3);
  });

  it('touchInform: only the Inform bookkeeping; a null URL keeps the known one; unknown device is a no-op', async (t) => {
    const store = await fresh(t);
    const d = device('SN1');
    await store.upsertDevice(d);
    await store.touchInform(d.deviceKey, '2024-05-01T10:00:00.000Z', ['2 PERIODIC', '4 VALUE CHANGE'], 'http://10.0.0.9:7547/');
    const touched = {
      ...d,
      lastInform: '2024-05-01T10:00:00.000Z',
      lastInformEvents: ['2 PERIODIC', '4 VALUE CHANGE'],
      connectionRequestUrl: 'http://10.0.0.9:7547/',
    };
    assert.deepEqual(await store.getDevice(d.deviceKey), touched);
    assert.deepEqual(await store.getDeviceByEndpointId(d.endpointId), touched);
    await store.touchInform(d.deviceKey, '2024-05-01T10:05:00.000Z', [], null);
    assert.deepEqual(await store.getDevice(d.deviceKey), { ...touched, lastInform: '2024-05-01T10:05:00.000Z', lastInformEvents: [] });
    assert.deepEqual((await store.listDevices())[0], { ...touched, lastInform: '2024-05-01T10:05:00.000Z', lastInformEvents: [] });

    await store.touchInform('unknown', '2024-05-01T10:00:00.000Z', ['1 BOOT'], 'http://x/');
    assert.equal(await store.getDevice('unknown'), null);
    assert.equal(await store.countDevices(), 1);

    // A later upsert is the whole truth again, hot fields included.
    await store.upsertDevice(d);
    assert.deepEqual(await store.getDevice(d.deviceKey), d);
  });

  it('listDevices: ordered by key, limit/offset, case-insensitive literal search over the ids', async (t) => {
    const store = await fresh(t);
    for (const s of ['C3', 'A1', 'B2', '100%', 'X_Y', 'XAY', 'a0']) await store.upsertDevice(device(s));
    await store.upsertDevice(
      device('Z9', {
        deviceKey: 'AABBCC-Modem-Z9',
        endpointId: 'os::AABBCC-Z9',
        deviceId: { manufacturer: 'Other Corp', oui: 'AABBCC', productClass: 'Modem', serialNumber: 'Z9' },
      }),
    );
    const all = (await store.listDevices()).map((d) => d.deviceKey);
    // Binary key order: upper case before lower case, digits before letters.
    assert.deepEqual(all, [
      '00D09E-HGW-100%',
      '00D09E-HGW-A1',
      '00D09E-HGW-B2',
      '00D09E-HGW-C3',
      '00D09E-HGW-XAY',
      '00D09E-HGW-X_Y',
      '00D09E-HGW-a0',
      'AABBCC-Modem-Z9',
    ]);
    const page = async (q: { limit?: number; offset?: number; search?: string }) => (await store.listDevices(q)).map((d) => d.deviceKey);
    assert.deepEqual(await page({ limit: 2, offset: 1 }), all.slice(1, 3));
    assert.deepEqual(await page({ offset: 6 }), all.slice(6));
    assert.deepEqual(await page({ offset: 100 }), []);
    assert.deepEqual(await page({ limit: 0 }), []);
    assert.deepEqual(await page({ search: '' }), all, 'empty search = no filter');
    await assert.rejects(store.listDevices({ limit: -1 }), RangeError);
    await assert.rejects(store.listDevices({ offset: 1.5 }), RangeError);

    const serials = async (search: string): Promise<string[]> => (await store.listDevices({ search })).map((d) => d.deviceId.serialNumber);
    assert.deepEqual(await serials('%'), ['100%'], '% is literal');
    assert.deepEqual(await serials('X_Y'), ['X_Y'], '_ is literal');
    assert.deepEqual(await serials('_'), ['X_Y']);
    assert.deepEqual(await serials('\\'), []);
    assert.deepEqual(await serials('aabbcc'), ['Z9'], 'OUI, case-insensitive');
    assert.deepEqual(await serials('modem'), ['Z9'], 'product class');
    assert.deepEqual(await serials('OTHER corp'), ['Z9'], 'manufacturer');
    assert.deepEqual(await serials('os::AABBCC'), ['Z9'], 'endpoint id');
    assert.deepEqual(await serials('b2'), ['B2'], 'serial');
    assert.deepEqual(await serials('A0'), ['a0']);
    assert.deepEqual(await serials('nothing-like-this'), []);
    assert.deepEqual(await page({ search: 'hgw', offset: 2, limit: 3 }), all.slice(2, 5));
    assert.deepEqual(await page({ search: 'HGW', offset: 6 }), [all[6]]);
    assert.equal(await store.countDevices(), 8);
  });

  it('listDevices: search over more devices than one read step', async (t) => {
    const store = await fresh(t);
    const n = 1203;
    for (let i = 0; i < n; i++) await store.upsertDevice(device(`S${String(i).padStart(5, '0')}`));
    assert.equal(await store.countDevices(), n);
    const hits = await store.listDevices({ search: 's0' });
    assert.equal(hits.length, n);
    assert.equal(hits[1000]!.deviceId.serialNumber, 'S01000');
    assert.deepEqual(
      (await store.listDevices({ search: 's0002', offset: 5, limit: 4 })).map((d) => d.deviceId.serialNumber),
      ['S00025', 'S00026', 'S00027', 'S00028'],
    );
    assert.deepEqual((await store.listDevices({ search: 's0', offset: 1198 })).length, 5);
    assert.deepEqual(
      (await store.listDevices({ search: 'S0120' })).map((d) => d.deviceId.serialNumber),
      ['S01200', 'S01201', 'S01202'],
    );
  });

  it('parameter types: put, get all or by names, overwrite, per model', async (t) => {
    const store = await fresh(t);
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
    assert.deepEqual(await store.getParameterTypes('none', ['Device.A']), new Map());
    assert.deepEqual(await store.getParameterTypes('other-model'), new Map([['Device.A', 'xsd:int']]));
    const big = new Map(Array.from({ length: 5000 }, (_, i) => [`Device.T.${i}.Name`, 'xsd:string'] as const));
    await store.putParameterTypes('big', big);
    assert.equal((await store.getParameterTypes('big')).size, 5000);
    assert.equal((await store.getParameterTypes('big', [...big.keys()].slice(0, 3000))).size, 3000);
  });

  it('queued RPCs: marked sent (at-most-once across a crash); a missing id is no error', async (t) => {
    const store = await fresh(t);
    await store.addQueuedRpc({ ...rpc('s1', 'A', 1), rpc: { method: 'SetParameterValues', parameterList: [], parameterKey: '' } });
    await store.addQueuedRpc(rpc('s2', 'A', 2));
    assert.equal((await store.listQueuedRpcs('A'))[0]!.sentAt, undefined);
    await store.markQueuedRpcSent('s1', 1_700_000_000_123);
    await store.markQueuedRpcSent('gone', 1);
    const [a, b] = await store.listQueuedRpcs('A');
    assert.deepEqual(a, { ...rpc('s1', 'A', 1), rpc: { method: 'SetParameterValues', parameterList: [], parameterKey: '' }, sentAt: 1_700_000_000_123 });
    assert.equal(b!.sentAt, undefined);
    assert.equal((await store.listAllQueuedRpcs()).find((q) => q.id === 's1')?.sentAt, 1_700_000_000_123);
  });

  it('queued RPCs: FIFO per device, global order, removal, duplicate ids rejected, shapes survive', async (t) => {
    const store = await fresh(t);
    await store.addQueuedRpc(rpc('a1', 'A', 1));
    await store.addQueuedRpc(rpc('b1', 'B', 2));
    await store.addQueuedRpc(rpc('a2', 'A', 3));
    await store.addQueuedRpc(rpc('a3', 'A', 4));
    await store.addQueuedRpc(rpc('b2', 'B', 5));
    assert.deepEqual(ids(await store.listQueuedRpcs('A')), ['a1', 'a2', 'a3']);
    assert.deepEqual(ids(await store.listQueuedRpcs('B')), ['b1', 'b2']);
    assert.deepEqual(await store.listQueuedRpcs('C'), []);
    assert.deepEqual((await store.listQueuedRpcs('A'))[0], rpc('a1', 'A', 1));
    assert.deepEqual(ids(await store.listAllQueuedRpcs()), ['a1', 'b1', 'a2', 'a3', 'b2']);

    assert.equal(await store.removeQueuedRpc('a2'), true);
    assert.equal(await store.removeQueuedRpc('a2'), false);
    assert.equal(await store.removeQueuedRpc('never'), false);
    assert.deepEqual(ids(await store.listQueuedRpcs('A')), ['a1', 'a3']);
    await store.addQueuedRpc(rpc('a4', 'A', 6));
    assert.deepEqual(ids(await store.listQueuedRpcs('A')), ['a1', 'a3', 'a4']);
    await assert.rejects(store.addQueuedRpc(rpc('a1', 'B', 7)));
    assert.deepEqual(ids(await store.listQueuedRpcs('B')), ['b1', 'b2'], 'a rejected duplicate queues nothing');

    for (const id of ['b1', 'b2']) assert.equal(await store.removeQueuedRpc(id), true);
    assert.deepEqual(await store.listQueuedRpcs('B'), []);
    assert.deepEqual(ids(await store.listAllQueuedRpcs()), ['a1', 'a3', 'a4']);

    const spv: QueuedRpc = {
      id: 'spv',
      deviceKey: 'A',
      rpc: { method: 'SetParameterValues', parameterKey: 'k', parameterList: [{ name: 'Device.X', value: 'a"b<c\u00e9\u{1F600}\n', type: 'xsd:string' }] },
      createdAt: '2024-01-01T00:00:00.000Z',
      deadline: Number.MAX_SAFE_INTEGER,
    };
    await store.addQueuedRpc(spv);
    assert.deepEqual((await store.listQueuedRpcs('A')).at(-1), spv);
    assert.deepEqual(
      (await store.listAllQueuedRpcs()).find((q) => q.id === 'spv'),
      spv,
    );
  });

  it('subscriptions: put, overwrite, delete, listed by (agent, instance)', async (t) => {
    const store = await fresh(t);
    assert.deepEqual(await store.listAllSubscriptions(), []);
    await store.putSubscription('os::B', 10, { ID: 'b10', Enable: 'true' });
    await store.putSubscription('os::B', 2, { ID: 'b2' });
    await store.putSubscription('os::A', 7, { ID: 'a7', ReferenceList: 'Device.DeviceInfo.' });
    await store.putSubscription('os::B', 2, { ID: 'b2-new', Persistent: 'true' });
    assert.deepEqual(await store.listAllSubscriptions(), [
      { agentEid: 'os::A', instance: 7, values: { ID: 'a7', ReferenceList: 'Device.DeviceInfo.' } },
      { agentEid: 'os::B', instance: 2, values: { ID: 'b2-new', Persistent: 'true' } },
      { agentEid: 'os::B', instance: 10, values: { ID: 'b10', Enable: 'true' } },
    ]);
    await store.deleteSubscription('os::B', 2);
    await store.deleteSubscription('os::B', 99);
    await store.deleteSubscription('os::none', 1);
    await store.deleteSubscription('os::A', 7);
    assert.deepEqual(rowKeys(await store.listAllSubscriptions()), ['os::B|10']);
    await store.putSubscription('os::A', 1, {});
    assert.deepEqual(await store.listAllSubscriptions(), [
      { agentEid: 'os::A', instance: 1, values: {} },
      { agentEid: 'os::B', instance: 10, values: { ID: 'b10', Enable: 'true' } },
    ]);
  });

  it('requests: put, overwrite, delete, listed by (agent, instance), apart from subscriptions', async (t) => {
    const store = await fresh(t);
    await store.putRequest('os::B', 3, { Command: 'Device.Reboot()', Status: 'Active' });
    await store.putRequest('os::A|x', 12, { Command: 'Device.X()' });
    await store.putRequest('os::A|x', 4, { Command: 'Device.Y()' });
    await store.putRequest('os::B', 3, { Command: 'Device.Reboot()', Status: 'Done' });
    assert.deepEqual(await store.listAllRequests(), [
      { agentEid: 'os::A|x', instance: 4, values: { Command: 'Device.Y()' } },
      { agentEid: 'os::A|x', instance: 12, values: { Command: 'Device.X()' } },
      { agentEid: 'os::B', instance: 3, values: { Command: 'Device.Reboot()', Status: 'Done' } },
    ]);
    assert.deepEqual(await store.listAllSubscriptions(), []);
    await store.deleteRequest('os::A|x', 12);
    await store.deleteRequest('os::A|x', 12);
    assert.deepEqual(rowKeys(await store.listAllRequests()), ['os::A|x|4', 'os::B|3']);
  });

  it('instance maps: null when unknown, put, overwrite', async (t) => {
    const store = await fresh(t);
    assert.equal(await store.getInstanceMap('dev'), null);
    await store.putInstanceMap('dev', { 'Device.WiFi.SSID.|1': 1, 'Device.WiFi.SSID.|5': 2 });
    await store.putInstanceMap('other', {});
    assert.deepEqual(await store.getInstanceMap('dev'), { 'Device.WiFi.SSID.|1': 1, 'Device.WiFi.SSID.|5': 2 });
    assert.deepEqual(await store.getInstanceMap('other'), {});
    await store.putInstanceMap('dev', { a: 3 });
    assert.deepEqual(await store.getInstanceMap('dev'), { a: 3 });
  });

  it('learned documents: null when unknown, put, overwrite, per kind, delete', async (t) => {
    const store = await fresh(t);
    assert.equal(await store.getLearned('model', 'F0AD4E|SimGW|1.0'), null);
    await store.putLearned('model', 'F0AD4E|SimGW|1.0', '{"v":1}');
    await store.putLearned('device', 'F0AD4E|SimGW|1.0', '{"d":2}');
    assert.equal(await store.getLearned('model', 'F0AD4E|SimGW|1.0'), '{"v":1}');
    assert.equal(await store.getLearned('device', 'F0AD4E|SimGW|1.0'), '{"d":2}');
    await store.putLearned('model', 'F0AD4E|SimGW|1.0', '{"v":2}');
    assert.equal(await store.getLearned('model', 'F0AD4E|SimGW|1.0'), '{"v":2}');
    await store.deleteLearned('model', 'F0AD4E|SimGW|1.0');
    await store.deleteLearned('model', 'F0AD4E|SimGW|1.0');
    assert.equal(await store.getLearned('model', 'F0AD4E|SimGW|1.0'), null);
    assert.equal(await store.getLearned('device', 'F0AD4E|SimGW|1.0'), '{"d":2}');
  });

  it('pending notifies: bytes round-trip, a repeated msgId updates only the attempt, delete', async (t) => {
    const store = await fresh(t);
    assert.deepEqual(await store.listPendingNotifies(), []);
    const n1 = notify('m1');
    const n2 = notify('m2', { expiresAt: null, msg: new Uint8Array(0), agentEid: 'os::other' });
    const big = notify('m3', { msg: new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff) });
    await store.putPendingNotify(n1);
    await store.putPendingNotify(n2);
    await store.putPendingNotify(big);
    const listed = (await store.listPendingNotifies()).sort(byMsgId);
    assert.deepEqual(listed, [n1, n2, big]);
    assert.ok(
      listed.every((n) => Object.getPrototypeOf(n.msg) === Uint8Array.prototype),
      'plain Uint8Array',
    );

    // A retry stores the next attempt; the rest of the row is what was first stored.
    await store.putPendingNotify({ ...n1, attempt: 2, msg: new Uint8Array([9]), controllerEid: 'self::changed', expiresAt: 1 });
    await store.putPendingNotify({ ...n1, attempt: 12 });
    assert.deepEqual((await store.listPendingNotifies()).sort(byMsgId)[0], { ...n1, attempt: 12 });

    await store.deletePendingNotify('m2');
    await store.deletePendingNotify('never');
    assert.deepEqual(
      (await store.listPendingNotifies()).sort(byMsgId).map((n) => n.msgId),
      ['m1', 'm3'],
    );
  });

  it('close is idempotent', async () => {
    const store = await open();
    await store.upsertDevice(device('SN1'));
    await store.close();
    await store.close();
  });
}

// --- SQLite -------------------------------------------------------------------------------------

describe('Store contract: SqliteStore', () => {
  contract(async () => openSqliteStore(':memory:'));
});

describe('Store contract: SqliteStore with secrets sealed at rest', () => {
  contract(async () => openSqliteStore(':memory:', { secrets: secretCodec(randomBytes(32)) }));
});

// --- Redis --------------------------------------------------------------------------------------

const redisBin = findBinary('redis-server');
const redisSkip = redisBin ? false : 'redis-server is not installed (Debian package redis-server; scripts/ci-brokers.sh installs it)';
let server: RedisHandle | null = null;
let prefixSeq = 0;

/** A fresh key prefix per store group, so tests never see each other's keys. */
function freshPrefix(): string {
  return `ct${process.pid}-${++prefixSeq}:`;
}

/** The contract is about what is stored: no device cache (its own test below turns it on). */
function redisStore(opts: { prefix?: string; owner?: string; log?: RedisStoreLog; url?: string; deviceCacheTtlMs?: number } = {}): RedisStore {
  if (!server) throw new Error('redis-server not started');
  return new RedisStore({
    url: opts.url ?? server.url,
    prefix: opts.prefix ?? freshPrefix(),
    owner: opts.owner ?? 'owner-1',
    log: opts.log,
    deviceCacheTtlMs: opts.deviceCacheTtlMs ?? 0,
  });
}

/** Collects log lines; `all` is everything joined, for "never mentions X" checks. */
function logSink(): { log: RedisStoreLog; lines: Array<{ level: string; msg: string; extra?: Record<string, unknown> }>; all(): string } {
  const lines: Array<{ level: string; msg: string; extra?: Record<string, unknown> }> = [];
  return { lines, log: (level, msg, extra) => lines.push({ level, msg, extra }), all: () => JSON.stringify(lines) };
}

describe('RedisStore', { skip: redisSkip }, () => {
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });

  describe('Store contract: RedisStore', () => {
    contract(async () => {
      const s = redisStore();
      await s.ready();
      return s;
    });
  });

  describe('Store contract: RedisStore with secrets sealed at rest', () => {
    contract(async () => {
      const s = new RedisStore({ url: server!.url, prefix: freshPrefix(), owner: 'owner-1', deviceCacheTtlMs: 0, secrets: secretCodec(randomBytes(32)) });
      await s.ready();
      return s;
    });
  });

  describe('cluster surface', () => {
    clusterSurface();
  });
});

/** The Redis-only methods used by src/cluster/, and connection behaviour. */
function clusterSurface(): void {
  /** Stores on one prefix, closed at the end of the test. */
  const group = (t: { after(fn: () => Promise<void>): void }) => {
    const prefix = freshPrefix();
    return (owner = 'owner-1', log?: RedisStoreLog): RedisStore => {
      const s = redisStore({ prefix, owner, log });
      t.after(() => s.close());
      return s;
    };
  };

  it('ready() runs store migration 8 once per Redis: old device keys move, P schema says 8', async (t) => {
    const open = group(t);
    const id = { manufacturer: 'Acme', oui: '00D09E', productClass: 'IGD-X', serialNumber: '9' };
    const old = open('me');
    await old.upsertDevice(device('9', { deviceKey: legacyDeviceKeyOf(id), deviceId: id }));
    await old.addQueuedRpc(rpc('q9', legacyDeviceKeyOf(id), 9));
    const sink = logSink();
    const s = open('other', sink.log);
    await s.ready();
    assert.equal(await s.redis.get(s.key('schema')), '8');
    assert.equal(await s.getDevice(legacyDeviceKeyOf(id)), null);
    assert.equal((await s.getDevice(deviceKeyOf(id)))?.deviceId.productClass, 'IGD-X');
    assert.deepEqual(
      (await s.listAllQueuedRpcs()).map((q) => [q.id, q.deviceKey]),
      [['q9', deviceKeyOf(id)]],
    );
    assert.match(sink.all(), /migration 8 moved 1 device keys/);
    // Once: a device stored under an old key afterwards is not walked again at the next ready().
    await s.upsertDevice(device('10', { deviceKey: 'legacy-form', deviceId: { ...id, serialNumber: '10' } }));
    await open('third').ready();
    assert.ok(await s.getDevice('legacy-form'));
  });

  it('keeps the key layout the cluster module relies on', async (t) => {
    const s = group(t)('me');
    const d = device('SN1');
    await s.upsertDevice(d);
    await s.touchInform(d.deviceKey, '2024-05-01T10:00:00.000Z', ['2 PERIODIC'], null);
    await s.putParameterTypes('m', new Map([['Device.A', 'xsd:int']]));
    await s.addQueuedRpc(rpc('r1', d.deviceKey, 1));
    await s.putSubscription('os::A', 1, { ID: 's' });
    await s.putRequest('os::A', 2, { Command: 'c' });
    await s.putInstanceMap(d.deviceKey, { x: 1 });
    await s.putPendingNotify(notify('m1'));
    const P = s.prefix;
    assert.equal(s.key('dev', 'x'), `${P}dev:x`);
    assert.equal(s.owner, 'me');
    const keys = (await s.redis.keys(`${P}*`)).sort();
    assert.deepEqual(
      keys,
      [
        `dev:${d.deviceKey}`,
        `eid:${d.endpointId}`,
        'devs',
        'types:m',
        `q:${d.deviceKey}`,
        'sub:os::A',
        'subagents',
        'req:os::A',
        'reqagents',
        'reqown:me',
        `imap:${d.deviceKey}`,
        'pn:me',
      ]
        .map((k) => P + k)
        .sort(),
    );
    const h = await s.redis.hgetall(s.key('dev', d.deviceKey));
    assert.deepEqual(Object.keys(h).sort(), ['connectionRequestUrl', 'lastInform', 'lastInformEvents', 'rec']);
    assert.equal(h.lastInform, '2024-05-01T10:00:00.000Z');
    assert.deepEqual(JSON.parse(h.lastInformEvents!), ['2 PERIODIC']);
    const rec = JSON.parse(h.rec!) as Record<string, unknown>;
    assert.equal(rec.endpointId, d.endpointId);
    assert.ok(!('lastInform' in rec) && !('connectionRequestUrl' in rec) && !('lastInformEvents' in rec));
    assert.equal(await s.redis.get(s.key('eid', d.endpointId)), d.deviceKey);
    assert.deepEqual(await s.redis.zrange(s.key('devs'), 0, -1, 'WITHSCORES'), [d.deviceKey, '0']);
    assert.deepEqual(
      (await s.redis.lrange(s.key('q', d.deviceKey), 0, -1)).map((j) => JSON.parse(j) as QueuedRpc),
      [rpc('r1', d.deviceKey, 1)],
    );
    assert.deepEqual(await s.redis.smembers(s.key('reqown', 'me')), ['os::A|2']);
    assert.equal(await s.redis.hget(s.key('types', 'm'), 'Device.A'), 'xsd:int');
    const pn = JSON.parse((await s.redis.hget(s.key('pn', 'me'), 'm1'))!) as Record<string, unknown>;
    assert.equal(pn.msg, Buffer.from(notify('m1').msg).toString('base64'));

    // Emptied lists and hashes leave no index entry behind.
    await s.removeQueuedRpc('r1');
    await s.deleteSubscription('os::A', 1);
    await s.deleteRequest('os::A', 2);
    assert.equal(await s.redis.exists(s.key('q', d.deviceKey), s.key('subagents'), s.key('reqagents'), s.key('reqown', 'me')), 0);
  });

  it('origin and linger survive; getQueuedRpc', async (t) => {
    const s = group(t)();
    const q: QueuedRpc = { ...rpc('o1', 'D', 1), origin: 'inst-a', linger: true };
    await s.addQueuedRpc(q);
    assert.deepEqual(await s.listQueuedRpcs('D'), [q]);
    assert.deepEqual(await s.getQueuedRpc('o1'), q);
    assert.equal(await s.getQueuedRpc('none'), null);
  });

  it('a session claims the next queued RPC: FIFO, removed ones skipped; lease, wake lock and the end of a session', async (t) => {
    const s = group(t)();
    for (let i = 1; i <= 4; i++) await s.addQueuedRpc(rpc(`c${i}`, 'D', i));
    await s.addQueuedRpc(rpc('other', 'E', 9));
    assert.equal(await s.removeQueuedRpc('c1'), true);
    assert.equal(await s.unqueueWhere((q) => q.id === 'c2'), 1);

    const first = await claimNextQueuedRpc(s, 'D');
    assert.deepEqual(first, rpc('c3', 'D', 3));
    assert.deepEqual(ids(await s.listQueuedRpcs('D')), ['c4']);
    // Claimed, it is held by its session's instance: a queued-only removal leaves it alone.
    assert.equal(await s.getQueuedRpc('c3'), null);
    assert.equal(await s.unqueueRpc('c3'), false);
    assert.deepEqual(ids(await s.listAllQueuedRpcs()), ['c4', 'other']);

    // A caller's enqueue takes the wake lock of a device with no lease, in the same round trip.
    const lq = new LeaseQueue(s.redis, s.key(''));
    assert.deepEqual(await lq.enqueue('T', JSON.stringify(rpc('t1', 'T', 1)), false, 'inst-a', 5000), { lease: '', woken: true });
    assert.deepEqual(await lq.enqueue('T', JSON.stringify(rpc('t2', 'T', 2)), false, 'inst-b', 5000), { lease: '@inst-a', woken: false });
    // The session opens: its lease replaces the wake lock; the count is what it will claim.
    assert.deepEqual(await lq.open('T', 'sid1', 'inst-c', 30_000), { previous: '@inst-a', queued: 2 });
    assert.deepEqual(await lq.enqueue('T', JSON.stringify(rpc('t3', 'T', 3)), true, 'inst-a', 5000), { lease: 'sid1@inst-c', woken: false });
    assert.deepEqual(await claimNextQueuedRpc(s, 'T'), rpc('t3', 'T', 3), 'a front RPC first');
    assert.deepEqual(await lq.popCount('T'), { json: JSON.stringify(rpc('t1', 'T', 1)), left: 1 });
    // Its end drops the lease, then takes what is left (the session goes on with it).
    assert.deepEqual(await lq.end('T', true), { json: JSON.stringify(rpc('t2', 'T', 2)), queued: 0 });
    assert.equal(await s.redis.exists(lq.lease('T')), 0);
    assert.deepEqual(await lq.end('T', false), { json: '', queued: 0 });
    assert.equal(await lq.unqueue('T', JSON.stringify(rpc('t2', 'T', 2))), false, 'claimed');
    await lq.requeue('T', [JSON.stringify(rpc('t4', 'T', 4)), JSON.stringify(rpc('t5', 'T', 5))]);
    assert.deepEqual(ids(await s.listQueuedRpcs('T')), ['t4', 't5']);
    assert.deepEqual(await lq.state('T'), { lease: '', queued: 2 });
    assert.equal(await lq.wakeLock('T', 'inst-a', 5000), true);
    assert.equal(await lq.wakeLock('T', 'inst-b', 5000), false);
    assert.equal(await claimNextQueuedRpc(s, 'nobody'), null);

    // Two instances claiming at once never get the same RPC.
    for (let i = 0; i < 50; i++) await s.addQueuedRpc(rpc(`p${i}`, 'P', i));
    const t2 = group(t)('owner-2');
    const drain = async (st: RedisStore): Promise<string[]> => {
      const got: string[] = [];
      for (let q = await claimNextQueuedRpc(st, 'P'); q; q = await claimNextQueuedRpc(st, 'P')) got.push(q.id);
      return got;
    };
    const [a, b] = await Promise.all([drain(s), drain(t2)]);
    assert.equal(a.length + b.length, 50);
    assert.equal(new Set([...a, ...b]).size, 50);
  });

  it('unqueueRpc: true while queued, false once claimed (and then leaves it alone)', async (t) => {
    const s = group(t)();
    await s.addQueuedRpc(rpc('u1', 'D', 1));
    await s.addQueuedRpc(rpc('u2', 'D', 2));
    await s.addQueuedRpc(rpc('u3', 'D', 3));
    assert.equal(await s.unqueueRpc('u2'), true);
    assert.equal(await s.getQueuedRpc('u2'), null);
    assert.equal(await s.unqueueRpc('u2'), false);
    assert.deepEqual(await claimNextQueuedRpc(s, 'D'), rpc('u1', 'D', 1));
    assert.equal(await s.unqueueRpc('u1'), false);
    assert.equal(await s.unqueueRpc('u3'), true);
    assert.equal(await s.redis.exists(s.key('q', 'D')), 0);
    assert.equal(await s.unqueueRpc('never'), false);
  });

  it('listAllQueuedRpcs keeps per-device FIFO even when createdAt goes backwards', async (t) => {
    const s = group(t)();
    await s.addQueuedRpc({ ...rpc('x1', 'X', 10) });
    await s.addQueuedRpc({ ...rpc('y1', 'Y', 5) });
    await s.addQueuedRpc({ ...rpc('x2', 'X', 1) }); // another instance's clock is behind
    await s.addQueuedRpc({ ...rpc('y2', 'Y', 20) });
    assert.deepEqual(ids(await s.listAllQueuedRpcs()), ['y1', 'x1', 'x2', 'y2']);
  });

  it('pending notifies are per owner', async (t) => {
    const mk = group(t);
    const a = mk('inst-a');
    const b = mk('inst-b');
    await a.putPendingNotify(notify('a1'));
    await a.putPendingNotify(notify('a2'));
    await b.putPendingNotify(notify('b1'));
    assert.deepEqual((await a.listPendingNotifies()).map((n) => n.msgId).sort(), ['a1', 'a2']);
    assert.deepEqual(
      (await b.listPendingNotifies()).map((n) => n.msgId),
      ['b1'],
    );
    await b.deletePendingNotify('a1'); // not b's: nothing happens
    assert.equal((await a.listPendingNotifies()).length, 2);
    assert.deepEqual(await b.adoptPendingNotifies('inst-b'), [], 'adopting from oneself moves nothing');
    assert.deepEqual(
      (await b.listPendingNotifies()).map((n) => n.msgId),
      ['b1'],
    );
  });

  it('adoptPendingNotifies and adoptRequests move ownership exactly once under concurrency', async (t) => {
    const mk = group(t);
    const dead = mk('dead');
    const a = mk('inst-a');
    const b = mk('inst-b');
    const notifies = Array.from({ length: 40 }, (_, i) => notify(`n${i}`, { attempt: i }));
    for (const n of notifies) await dead.putPendingNotify(n);
    for (let i = 0; i < 30; i++) await dead.putRequest(`os::agent${i % 3}`, i, { Command: `c${i}` });
    await dead.deleteRequest('os::agent0', 0);
    await a.putRequest('os::agent9', 1, { Command: 'mine' });
    // A row the dead instance owned but another instance deleted: not adopted.
    await a.deleteRequest('os::agent1', 1);

    // Pending notifies: both survivors adopt at once; exactly one gets all 40.
    const [na, nb] = await Promise.all([a.adoptPendingNotifies('dead'), b.adoptPendingNotifies('dead')]);
    assert.ok(na.length === 0 || nb.length === 0, `one adopter gets everything (${na.length}/${nb.length})`);
    assert.deepEqual([...na, ...nb].sort(byMsgId), [...notifies].sort(byMsgId));
    const [nWinner, nLoser] = na.length ? [a, b] : [b, a];
    assert.deepEqual((await nWinner.listPendingNotifies()).sort(byMsgId), [...notifies].sort(byMsgId));
    assert.deepEqual(await nLoser.listPendingNotifies(), []);
    assert.deepEqual(await dead.listPendingNotifies(), []);
    assert.deepEqual(await Promise.all([a.adoptPendingNotifies('dead'), b.adoptPendingNotifies('dead')]), [[], []], 'nothing left to adopt');

    // Requests: 30 put, one deleted by the dead instance, one by another: 28 rows to adopt.
    const deadRows = await dead.listRequestsOwnedBy('dead');
    assert.equal(deadRows.length, 28);
    const [qa, qb] = await Promise.all([a.adoptRequests('dead'), b.adoptRequests('dead')]);
    assert.ok(qa.length === 0 || qb.length === 0, `one adopter gets everything (${qa.length}/${qb.length})`);
    assert.deepEqual([...qa, ...qb], deadRows, 'the rows that still exist, in (agent, instance) order');
    assert.deepEqual(await a.listRequestsOwnedBy('dead'), []);
    const mine = { agentEid: 'os::agent9', instance: 1, values: { Command: 'mine' } };
    if (qa.length) {
      assert.deepEqual(await a.listRequestsOwnedBy('inst-a'), [...deadRows, mine]);
      assert.deepEqual(await a.listRequestsOwnedBy('inst-b'), []);
    } else {
      assert.deepEqual(await a.listRequestsOwnedBy('inst-a'), [mine]);
      assert.deepEqual(await a.listRequestsOwnedBy('inst-b'), deadRows);
    }
    assert.deepEqual(await a.adoptRequests('dead'), []);
    assert.deepEqual(await a.adoptRequests('inst-a'), [], 'adopting from oneself moves nothing');
    assert.equal((await a.listAllRequests()).length, 29, 'adoption never touches the rows themselves');
  });

  it("listSubscriptions / listRequests: one agent's rows by instance", async (t) => {
    const mk = group(t);
    const a = mk('inst-a');
    const b = mk('inst-b');
    await a.putSubscription('os::A', 10, { ID: 'a10' });
    await b.putSubscription('os::A', 2, { ID: 'a2' });
    await a.putSubscription('os::B', 1, { ID: 'b1' });
    await a.putRequest('os::A', 5, { Command: 'x' });
    await b.putRequest('os::A', 3, { Command: 'y' });
    assert.deepEqual(await a.listSubscriptions('os::A'), [
      { agentEid: 'os::A', instance: 2, values: { ID: 'a2' } },
      { agentEid: 'os::A', instance: 10, values: { ID: 'a10' } },
    ]);
    assert.deepEqual(rowKeys(await b.listRequests('os::A')), ['os::A|3', 'os::A|5'], "every owner's rows");
    assert.deepEqual(await a.listSubscriptions('os::none'), []);
    assert.deepEqual(await a.listRequests('os::B'), []);
  });

  it("device cache: reads reused for deviceCacheTtlMs (copies), own writes seen at once, another instance's after the TTL", async () => {
    const prefix = freshPrefix();
    const a = redisStore({ prefix, owner: 'inst-a', deviceCacheTtlMs: 300 });
    const b = redisStore({ prefix, owner: 'inst-b', deviceCacheTtlMs: 300 });
    try {
      await a.upsertDevice(device('SN7'));
      const key = device('SN7').deviceKey;
      const first = (await a.getDeviceByEndpointId(device('SN7').endpointId))!;
      first.softwareVersion = 'mutated by the caller';
      assert.notEqual((await a.getDevice(key))?.softwareVersion, 'mutated by the caller', 'callers get copies');
      await a.touchInform(key, '2024-06-01T00:00:00.000Z', ['2 PERIODIC'], null);
      assert.equal((await a.getDevice(key))?.lastInform, '2024-06-01T00:00:00.000Z', 'own Inform bookkeeping at once');
      assert.equal((await b.getDevice(key))?.connReqUsername, 'cr-user');
      await a.upsertDevice({ ...device('SN7'), connReqUsername: 'cr-new' });
      assert.equal((await b.getDevice(key))?.connReqUsername, 'cr-user', 'another instance still has its cached copy');
      await new Promise((r) => setTimeout(r, 350));
      assert.equal((await b.getDevice(key))?.connReqUsername, 'cr-new', '... until the TTL');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('two instances on one prefix share devices, queues and subscriptions', async (t) => {
    const mk = group(t);
    const a = mk('inst-a');
    const b = mk('inst-b');
    await a.upsertDevice(device('SN1'));
    await b.touchInform(device('SN1').deviceKey, '2024-05-01T10:00:00.000Z', ['1 BOOT'], null);
    assert.equal((await a.getDevice(device('SN1').deviceKey))?.lastInform, '2024-05-01T10:00:00.000Z');
    await a.addQueuedRpc(rpc('q1', 'D', 1));
    assert.deepEqual(await claimNextQueuedRpc(b, 'D'), rpc('q1', 'D', 1));
    await b.putSubscription('os::A', 1, { ID: 'x' });
    assert.equal((await a.listAllSubscriptions()).length, 1);
    await assert.rejects(b.upsertDevice(device('SN2', { endpointId: device('SN1').endpointId })), /UNIQUE/);
  });

  it('corrupt values are skipped and reported, never thrown', async (t) => {
    const sink = logSink();
    const s = group(t)('me', sink.log);
    await s.upsertDevice(device('SN1'));
    await s.upsertDevice(device('SN2'));
    await s.upsertDevice(device('SN3'));
    await s.redis.hset(s.key('dev', device('SN2').deviceKey), 'rec', '{not json');
    await s.redis.hset(s.key('dev', device('SN3').deviceKey), 'rec', '{"endpointId":5}');
    assert.deepEqual(
      (await s.listDevices()).map((d) => d.deviceId.serialNumber),
      ['SN1'],
    );
    assert.deepEqual(
      (await s.listDevices({ search: 'SN' })).map((d) => d.deviceId.serialNumber),
      ['SN1'],
    );
    assert.equal(await s.getDevice(device('SN2').deviceKey), null);
    assert.equal(await s.getDeviceByEndpointId(device('SN2').endpointId), null);
    // A corrupt record can be overwritten by a fresh upsert.
    await s.upsertDevice(device('SN2'));
    assert.deepEqual(await s.getDevice(device('SN2').deviceKey), device('SN2'));

    await s.addQueuedRpc(rpc('g1', 'D', 1));
    await s.addQueuedRpc(rpc('g2', 'D', 2));
    await s.addQueuedRpc(rpc('g3', 'D', 3));
    await s.redis.lset(s.key('q', 'D'), 0, '[[[');
    assert.deepEqual(ids(await s.listQueuedRpcs('D')), ['g2', 'g3']);
    assert.deepEqual(ids(await s.listAllQueuedRpcs()), ['g2', 'g3']);
    assert.equal(await s.getQueuedRpc('g1'), null);
    assert.equal(await s.removeQueuedRpc('g2'), true, 'a list with a corrupt entry can still be worked on');
    assert.deepEqual(ids(await s.listQueuedRpcs('D')), ['g3']);

    await s.putSubscription('os::A', 1, { ID: 'ok' });
    await s.redis.hset(s.key('sub', 'os::A'), '2', 'nope', 'x', '{}');
    await s.putPendingNotify(notify('m1'));
    await s.redis.hset(s.key('pn', 'me'), 'm2', '{"msgId":"m2"}');
    await s.redis.set(s.key('imap', 'D'), '{"a":"b"}');
    assert.deepEqual(rowKeys(await s.listAllSubscriptions()), ['os::A|1']);
    assert.deepEqual(
      (await s.listPendingNotifies()).map((n) => n.msgId),
      ['m1'],
    );
    assert.equal(await s.getInstanceMap('D'), null);
    assert.ok(sink.lines.length >= 7, sink.all());
    assert.ok(
      sink.lines.every((l) => l.level === 'error' && typeof l.extra?.key === 'string' && l.extra.key.startsWith(s.prefix)),
      sink.all(),
    );
  });

  it('ready() names host:port and never the password when Redis is down; the log neither', async () => {
    const port = await freePort();
    const sink = logSink();
    const s = redisStore({ url: `redis://admin:s3cr%40tPW@127.0.0.1:${port}/0`, log: sink.log });
    try {
      const t0 = Date.now();
      await assert.rejects(s.ready(3000), (err: Error) => {
        assert.match(err.message, new RegExp(`^store\\.redis\\.url: cannot reach Redis at 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
        assert.ok(!/s3cr/.test(err.message), err.message);
        return true;
      });
      assert.ok(Date.now() - t0 < 3500);
      // Commands fail too, in bounded time, rather than hang.
      await assert.rejects(s.getDevice('x'));
      assert.ok(
        sink.lines.some((l) => l.level === 'warn' && l.msg.includes(`127.0.0.1:${port}`)),
        sink.all(),
      );
      assert.ok(!/s3cr/.test(sink.all()), sink.all());
    } finally {
      await s.close();
    }
    assert.throws(() => new RedisStore({ url: 'http://:pw@host', prefix: 'p:', owner: 'o' }), /store\.redis\.url: unsupported scheme/);
    assert.throws(
      () => new RedisStore({ url: 'not a url :zzSecret', prefix: 'p:', owner: 'o' }),
      (e: Error) => /store\.redis\.url/.test(e.message) && !/zzSecret/.test(e.message),
    );
  });

  it('ready() reports a refused password without echoing it', async (t) => {
    const own = await startRedis();
    assert.ok(own);
    t.after(() => own.stop());
    const admin = redisStore({ url: own.url });
    await admin.redis.config('SET', 'requirepass', 'right-secret');
    await admin.close();
    const s = redisStore({ url: own.url.replace('redis://', 'redis://:wrong-secret@') });
    try {
      await assert.rejects(s.ready(3000), (err: Error) => {
        assert.match(err.message, /^store\.redis\.url: Redis at 127\.0\.0\.1:\d+ refused: /);
        assert.ok(!err.message.includes('wrong-secret'), err.message);
        return true;
      });
    } finally {
      await s.close();
    }
  });

  it('an outage fails commands in bounded time; the store reconnects when Redis is back', async (t) => {
    const own = await startRedis({ appendonly: true });
    assert.ok(own);
    t.after(() => own.stop());
    const sink = logSink();
    const s = redisStore({ url: own.url, log: sink.log });
    t.after(() => s.close());
    await s.ready();
    // appendonly: the AOF is written (not yet fsynced) before the reply, so a SIGKILL keeps it.
    await s.upsertDevice(device('SN1'));

    await own.kill9();
    // Each command fails on its own within the bound, also once the outage has lasted a while.
    for (const call of [() => s.getDevice(device('SN1').deviceKey), () => s.addQueuedRpc(rpc('r', 'D')), () => s.countDevices()]) {
      const t0 = Date.now();
      await assert.rejects(call());
      assert.ok(Date.now() - t0 < 4000, `failed after ${Date.now() - t0} ms`);
    }

    await own.restart();
    let back: DeviceRecord | null = null;
    for (let i = 0; i < 100 && !back; i++) {
      back = await s.getDevice(device('SN1').deviceKey).catch(() => null);
      if (!back) await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(back, device('SN1'));
    await s.addQueuedRpc(rpc('r2', 'D')); // scripts are loaded again after the restart
    assert.deepEqual(ids(await s.listQueuedRpcs('D')), ['r2']);
    assert.ok(
      sink.lines.some((l) => l.level === 'warn'),
      sink.all(),
    );
    assert.ok(
      sink.lines.some((l) => l.level === 'info' && /restored/.test(l.msg)),
      sink.all(),
    );
  });

  it('openStore picks Redis when store.redis.url is set, SQLite otherwise', async () => {
    const prefix = freshPrefix();
    const r = openStore({ path: '/nonexistent/never-created.db', redis: { url: server!.url, prefix }, owner: 'o1' });
    try {
      assert.ok(r instanceof RedisStore);
      assert.equal(r.owner, 'o1');
      assert.equal(r.prefix, prefix);
      await r.ready?.();
      await r.upsertDevice(device('SN1'));
      assert.equal(await r.countDevices(), 1);
    } finally {
      await r.close();
    }
    const generated = openStore({ path: ':memory:', redis: { url: server!.url, prefix } });
    assert.ok(generated instanceof RedisStore && generated.owner.length > 0);
    await generated.close();
    const l = openStore({ path: ':memory:', redis: { url: '', prefix: 'cup:' } });
    assert.ok(!(l instanceof RedisStore));
    assert.equal(l.ready, undefined);
    await l.close();
  });
}
