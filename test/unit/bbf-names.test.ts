import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BbfNamesError, parseBbfNames, TR098_NAMES_FILE, tr098Names, tr104v2Names, tr140Names } from '../../src/mapping/bbf-names.js';
import { coverage, runMappingCli } from '../../src/tools/coverage.js';
import { generateNamesFromReference, TR104V2_NAMES_INPUT, TR140_NAMES_INPUT } from '../../scripts/gen-bbf-names.js';
import { assetPath } from '../../src/util/assets.js';
import { REFERENCE, hasReference } from '../helpers/paths.js';

const MODELS = path.join(REFERENCE, 'cwmp-models');
const BM = path.join(MODELS, 'huawei-BM632w-tr098.csv');
const EG = path.join(MODELS, 'huawei-EG8145V5-tr098.csv');
const skipRef = hasReference('tr-098') ? false : `BBF TR-098 XML absent (${REFERENCE}/tr-098)`;
const skipModels = existsSync(BM) && existsSync(EG) ? false : `reference dumps absent (${MODELS})`;

test('the shipped TR-098 name set is what scripts/gen-bbf-names.ts makes of the BBF XML', { skip: skipRef }, () => {
  assert.equal(readFileSync(assetPath('mappings', TR098_NAMES_FILE), 'utf8'), generateNamesFromReference(REFERENCE), 'run npm run gen:names');
});

for (const [input, file] of [
  [TR104V2_NAMES_INPUT, 'tr104v2-names.json'],
  [TR140_NAMES_INPUT, 'tr140-names.json'],
] as const) {
  const skipXml = existsSync(path.join(REFERENCE, input)) ? false : `BBF XML absent (${REFERENCE}/${input})`;
  test(`the shipped ${file} holds what the BBF XML defines for each of its objects`, { skip: skipXml }, () => {
    // Transcribed from the XML (not in the reference folder when it was made): every object it lists
    // must have exactly the parameters the generator finds there.
    const made = parseBbfNames(generateNamesFromReference(REFERENCE, input), input);
    const shipped = JSON.parse(readFileSync(assetPath('mappings', file), 'utf8')) as { objects: Record<string, [string[]]> };
    for (const [obj, [params]] of Object.entries(shipped.objects)) {
      assert.ok(made.definesObject(obj), obj);
      for (const p of params) assert.ok(made.defines(obj + p), obj + p);
    }
  });
}

test('under Services.StorageService only TR-140 names are standard (the shipped set decides)', () => {
  const n = tr098Names();
  assert.equal(n.origin('InternetGatewayDevice.Services.StorageService.1.NetInfo.HostName'), 'bbf');
  assert.equal(n.origin('InternetGatewayDevice.Services.StorageService.1.UserAccount.2.AllowFTPAccess'), 'bbf');
  // A vendor object without X_ under a service model: not a BBF name.
  assert.equal(n.origin('InternetGatewayDevice.Services.StorageService.1.SMBServer.Workgroup'), 'non-standard');
  assert.ok(tr140Names().definesObject('StorageService.{i}.LogicalVolume.{i}.Folder.{i}.'));
  assert.ok(tr104v2Names().definesObject('VoiceService.{i}.CallControl.Line.{i}.'));
});

test('origin of a native name: BBF-defined (every version), vendor X_, or non-standard', () => {
  const n = tr098Names();
  assert.equal(n.origin('InternetGatewayDevice.LANDevice.3.Hosts.Host.17.MACAddress'), 'bbf');
  assert.equal(n.origin('InternetGatewayDevice.LANDevice.{i}.WLANConfiguration.{i}.WPS.DevicePassword'), 'bbf');
  // Deleted by a later TR-098 version: still a name the BBF defined, not a vendor's.
  assert.equal(n.origin('InternetGatewayDevice.IPPingDiagnostics.MinimumResponseTmie'), 'bbf');
  // TR-104 under Services (its XML is not an input): counted as standard, never excluded.
  assert.equal(n.origin('InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.2.Line.1.Codec.List.3.Codec'), 'bbf');
  assert.equal(n.origin('InternetGatewayDevice.Services.VoiceServiceNumberOfEntries'), 'bbf');
  assert.equal(n.origin('InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.X_HW_RFBand'), 'vendor');
  assert.equal(n.origin('InternetGatewayDevice.X_HW_Foo.Services.VoiceService.1.Enable'), 'vendor');
  for (const ns of [
    'InternetGatewayDevice.WiMAX.Status.RSSI',
    'InternetGatewayDevice.OperatorProfile.1.ContactNumberOfEntries',
    'InternetGatewayDevice.LANDevice.1.WiFi.Radio.1.Enable',
    'InternetGatewayDevice.Services.Foo.1.Enable',
  ])
    assert.equal(n.origin(ns), 'non-standard', ns);
  assert.deepEqual(n.tablesCountedBy('InternetGatewayDevice.LANDevice.{i}.Hosts.HostNumberOfEntries'), ['InternetGatewayDevice.LANDevice.{i}.Hosts.Host.{i}.']);
  assert.deepEqual(n.tablesCountedBy('InternetGatewayDevice.LANDevice.{i}.Hosts.Host.{i}.MACAddress'), []);
});

test('a name set file that is not one is refused with the file named', () => {
  assert.throws(
    () => parseBbfNames('{"format":1,"objects":{"A.":["x"]}}', 'f.json'),
    (e: Error) => e instanceof BbfNamesError && e.message.includes('f.json'),
  );
  assert.throws(() => parseBbfNames('{"format":2,"objects":{}}', 'f.json'), BbfNamesError);
  assert.throws(() => parseBbfNames('{', 'f.json'), BbfNamesError);
});

test('coverage by origin: the three columns add up, the target share counts BBF names only', { skip: skipModels }, () => {
  for (const file of [BM, EG]) {
    const r = coverage(file);
    const o = r.byOrigin;
    assert.equal(o.bbf.params + o.vendor.params + o['non-standard'].params, r.nativeParams);
    assert.equal(o.bbf.placed + o.vendor.placed + o['non-standard'].placed, r.reachable);
    assert.equal(o.vendor.params, r.nativeParams - r.nonVendorParams);
    const out: string[] = [];
    assert.equal(runMappingCli(['coverage', '--model', file, '--json'], { out: (l) => out.push(l), err: (l) => out.push(l) }), 0, out.join('\n'));
    const j = JSON.parse(out[0]!);
    assert.equal(j.bbfPlacedShare, Number(((100 * o.bbf.placed) / o.bbf.params).toFixed(1)));
  }
  // The BM632w's WiMAX objects carry no X_ prefix and no BBF version defines them.
  const names = tr098Names();
  assert.ok(coverage(BM).unplaced.some((n) => n.startsWith('InternetGatewayDevice.WiMAX.') && names.origin(n) === 'non-standard'));
});
