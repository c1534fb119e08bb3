/** DownloadTargets: the FirmwareImage a Download() targeted survives a restart (a reopened store) until its TransferComplete; bounded per device. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DownloadTargets, MAX_PER_DEVICE } from '../../src/interworking/download-targets.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

test('the targeted image is kept across a restart (store reopened) and forgotten once its TransferComplete names it', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dl-targets-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'proxy.db');
  const first = openSqliteStore(file);
  await new DownloadTargets(first).remember('dev-1', 'ck-fw', 'Device.DeviceInfo.FirmwareImage.2.Download()');
  await new DownloadTargets(first).remember('dev-2', 'ck-fw', 'Device.DeviceInfo.FirmwareImage.1.Download()');
  await first.close();

  const again = openSqliteStore(file);
  t.after(() => again.close());
  const targets = new DownloadTargets(again);
  assert.equal(await targets.take('dev-1', 'other-key'), null, 'another CommandKey is not this Download');
  assert.equal(await targets.take('dev-1', 'ck-fw'), 'Device.DeviceInfo.FirmwareImage.2.Download()');
  assert.equal(await targets.take('dev-1', 'ck-fw'), null, 'taken once');
  assert.equal(await again.getLearned('transfer', 'dev-1'), null, 'nothing left for the device');
  assert.equal(await targets.take('dev-2', 'ck-fw'), 'Device.DeviceInfo.FirmwareImage.1.Download()', 'per device');
});

test('a device that never reports back keeps at most MAX_PER_DEVICE entries, the oldest dropped; bad stored JSON reads as none', async (t) => {
  const store = openSqliteStore(':memory:');
  t.after(() => store.close());
  const targets = new DownloadTargets(store);
  for (let i = 0; i < MAX_PER_DEVICE + 5; i++) await targets.remember('dev', `k${i}`, `Device.DeviceInfo.FirmwareImage.${(i % 2) + 1}.Download()`);
  assert.equal(JSON.parse((await store.getLearned('transfer', 'dev'))!).length, MAX_PER_DEVICE);
  assert.equal(await targets.take('dev', 'k0'), null);
  assert.equal(await targets.take('dev', `k${MAX_PER_DEVICE + 4}`), 'Device.DeviceInfo.FirmwareImage.1.Download()');
  await store.putLearned('transfer', 'dev', '{not json');
  assert.equal(await targets.take('dev', 'k5'), null);
});
