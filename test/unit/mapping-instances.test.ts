/**
 * Per-instance resolution of the TR-098 mapping: every native name a Device:2 parameter reads is
 * one its own native instance listed in GetParameterNames (GetParameterValues faults 9005 on others, TR-069 A.3.2.2);
 * incremental snapshots (withAdded/withRemoved) equal a full rebuild; nativeNamesFor gives the
 * explicit names for GetParameterValues; coverage counts phantom names (0 on every model).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadDefaultMapping } from '../../src/mapping/load.js';
import { DeviceMapping, MappingError, MemoryInstanceMapStore, type NativeParamInfo } from '../../src/mapping/engine.js';
import { coverage, modelParams, runMappingCli } from '../../src/tools/coverage.js';
import { assetPath } from '../../src/util/assets.js';
import { REFERENCE } from '../helpers/paths.js';

const rules = loadDefaultMapping();
const IGD = 'InternetGatewayDevice.';
const LAN = `${IGD}LANDevice.1.`;
const MODELS = path.join(REFERENCE, 'cwmp-models');
const BM = path.join(MODELS, 'huawei-BM632w-tr098.csv');
const EG = path.join(MODELS, 'huawei-EG8145V5-tr098.csv');
const SIM098 = assetPath('sim-models', 'tr098-igd.csv');
const noDumps = existsSync(BM) && existsSync(EG) ? false : `TR-098 reference dumps absent (${MODELS})`;

const leafNames = (params: readonly NativeParamInfo[]): Set<string> => new Set(params.filter((p) => !p.name.endsWith('.')).map((p) => p.name));

/** Everything a controller can observe of a snapshot, for comparing two of them. */
function observable(m: DeviceMapping): unknown {
  const tables = new Set(m.objectsUnder('Device.').map((o) => o.replace(/\d+\.$/, '')));
  return {
    model: m.supportedModel(),
    objects: m.objectsUnder('Device.').map((o) => [o, m.toNative(o)]),
    instances: [...tables].sort().map((t) => [t, m.uspInstances(t)]),
    params: m.paramsUnder('Device.').map((p) => [p, m.toNative(p), m.paramInfo(p), m.isComputed(p) ? m.nativeToUspValue(p, {}) : null]),
    reverse: m.nativeParamNames().map((n) => [n, m.toUspAll(n)]),
    names: m.nativeNamesFor(['Device.']),
  };
}

test('every native name a mapped Device:2 parameter reads is in the device dump', async (t) => {
  for (const file of [SIM098, BM, EG]) {
    await t.test(path.basename(file), { skip: file !== SIM098 && noDumps }, () => {
      const { params } = modelParams(file);
      const listed = leafNames(params);
      const m = new DeviceMapping(rules, { deviceKey: 'd', params });
      const mapped = m.paramsUnder('Device.');
      assert.ok(mapped.length > 50, `${mapped.length} mapped parameters`);
      let natives = 0;
      for (const p of mapped) {
        for (const n of m.toNative(p) ?? []) {
          natives++;
          assert.ok(listed.has(n), `${p} -> ${n}, which the device does not list`);
        }
      }
      assert.ok(natives > 50);
      const names = m.nativeNamesFor(['Device.']);
      assert.equal(names.length, new Set(names).size, 'each name once');
      for (const n of names) assert.ok(listed.has(n) && !n.endsWith('.'), n);
      assert.deepEqual(new Set(names), new Set(mapped.flatMap((p) => m.toNative(p) ?? [])));
    });
  }
});

test('coverage reports 0 phantom names for every model dump (reference and bundled)', () => {
  const files = [
    ...(existsSync(MODELS) ? readdirSync(MODELS).map((f) => path.join(MODELS, f)) : []),
    ...readdirSync(assetPath('sim-models')).map((f) => assetPath('sim-models', f)),
  ];
  const csvs = files.filter((f) => f.endsWith('.csv'));
  assert.ok(csvs.length >= 2);
  for (const f of csvs) {
    const r = coverage(f);
    assert.deepEqual(r.phantoms, [], f);
    assert.ok(r.reachable > 0 && r.reachable <= r.nativeParams, `${f}: ${r.reachable}/${r.nativeParams}`);
    const out: string[] = [];
    assert.equal(runMappingCli(['coverage', '--model', f], { out: (l) => out.push(l), err: (l) => out.push(l) }), 0, out.join('\n'));
    assert.ok(out.includes('names asked but not listed by the device: 0'), f);
  }
});

// ------------------------------------------------------------------ rows that differ

const P = (name: string, writable = false, type?: string): NativeParamInfo => ({ name, writable, type });
const ETH = `${LAN}LANEthernetInterfaceConfig.`;
const WLAN = `${LAN}WLANConfiguration.`;

/**
 * A small gateway whose table rows differ, as real ones do: LAN port 2 lacks MaxBitRate and
 * Stats.BytesSent that port 1 has, and lists Enable read-only without a type; WLAN 1 calls its
 * radio switch RadioEnabled and keeps KeyPassphrase at the top, WLAN 2 has only Enable and
 * PreSharedKey.1.KeyPassphrase, and no IEEE11iAuthenticationMode.
 */
function differingRows(): NativeParamInfo[] {
  return [
    P(IGD),
    P(`${IGD}DeviceInfo.`),
    P(`${IGD}DeviceInfo.SoftwareVersion`, false, 'xsd:string'),
    P(`${IGD}DeviceInfo.X_ACME_Tenant`, true, 'xsd:string'),
    P(LAN),
    P(ETH),
    P(`${ETH}1.`),
    P(`${ETH}1.Enable`, true, 'xsd:boolean'),
    P(`${ETH}1.Status`, false, 'xsd:string'),
    P(`${ETH}1.MaxBitRate`, true, 'xsd:string'),
    P(`${ETH}1.Stats.`),
    P(`${ETH}1.Stats.BytesSent`, false, 'xsd:unsignedInt'),
    P(`${ETH}1.Stats.BytesReceived`, false, 'xsd:unsignedInt'),
    P(`${ETH}2.`),
    P(`${ETH}2.Enable`, false),
    P(`${ETH}2.Status`, false, 'xsd:string'),
    P(`${ETH}2.Stats.`),
    P(`${ETH}2.Stats.BytesReceived`, false, 'xsd:unsignedInt'),
    P(WLAN, true),
    P(`${WLAN}1.`, true),
    P(`${WLAN}1.Enable`, true, 'xsd:boolean'),
    P(`${WLAN}1.RadioEnabled`, true, 'xsd:boolean'),
    P(`${WLAN}1.SSID`, true, 'xsd:string'),
    P(`${WLAN}1.BeaconType`, true, 'xsd:string'),
    P(`${WLAN}1.IEEE11iAuthenticationMode`, true, 'xsd:string'),
    P(`${WLAN}1.KeyPassphrase`, true, 'xsd:string'),
    P(`${WLAN}2.`, true),
    P(`${WLAN}2.Enable`, true, 'xsd:boolean'),
    P(`${WLAN}2.SSID`, true, 'xsd:string'),
    P(`${WLAN}2.BeaconType`, true, 'xsd:string'),
    P(`${WLAN}2.PreSharedKey.`),
    P(`${WLAN}2.PreSharedKey.1.`),
    P(`${WLAN}2.PreSharedKey.1.KeyPassphrase`, true, 'xsd:string'),
  ];
}

test('rows that differ: each instance resolves against its own names', () => {
  const params = differingRows();
  const m = new DeviceMapping(rules, { deviceKey: 'gw', params });
  const listed = leafNames(params);
  // Port 1 has MaxBitRate and Stats.BytesSent; port 2 does not: absent from its row, never asked.
  assert.deepEqual(m.toNative('Device.Ethernet.Interface.1.MaxBitRate'), [`${ETH}1.MaxBitRate`]);
  assert.equal(m.toNative('Device.Ethernet.Interface.2.MaxBitRate'), null);
  assert.equal(m.has('Device.Ethernet.Interface.2.MaxBitRate'), false);
  assert.equal(m.paramInfo('Device.Ethernet.Interface.2.MaxBitRate'), null);
  assert.equal(m.toNative('Device.Ethernet.Interface.2.Stats.BytesSent'), null);
  assert.deepEqual(m.toNative('Device.Ethernet.Interface.2.Stats.BytesReceived'), [`${ETH}2.Stats.BytesReceived`]);
  assert.deepEqual(m.paramsUnder('Device.Ethernet.Interface.2.'), [
    'Device.Ethernet.Interface.2.Enable',
    'Device.Ethernet.Interface.2.Stats.BytesReceived',
    'Device.Ethernet.Interface.2.Status',
  ]);
  assert.throws(
    () => m.uspToNativeValue('Device.Ethernet.Interface.2.MaxBitRate', '100'),
    (e: unknown) => e instanceof MappingError && e.code === 7026,
  );
  // The supported model (per schema) still has what any instance has.
  const eth = m.supportedModel().find((o) => o.path === 'Device.Ethernet.Interface.{i}.')!;
  assert.ok(eth.params.some((p) => p.name === 'MaxBitRate'));
  const flipped = m.withAdded([P(`${ETH}1.Enable`, false), P(`${ETH}2.Enable`, true)]);
  assert.equal(flipped.paramInfo('Device.Ethernet.Interface.1.Enable')?.writable, false);
  const ethFlipped = flipped.supportedModel().find((o) => o.path === 'Device.Ethernet.Interface.{i}.')!;
  assert.equal(ethFlipped.params.find((p) => p.name === 'Enable')?.writable, true, 'writable when any instance is');
  // Type per schema (port 2's Enable came without one), writability per instance.
  assert.deepEqual(m.paramInfo('Device.Ethernet.Interface.2.Enable'), { name: 'Enable', type: 'boolean', writable: false, computed: false });
  assert.deepEqual(m.paramInfo('Device.Ethernet.Interface.1.Enable'), { name: 'Enable', type: 'boolean', writable: true, computed: false });
  assert.equal(m.nativeToUspValue('Device.Ethernet.Interface.2.Enable', { [`${ETH}2.Enable`]: '1' }), 'true');
  // Alternatives are chosen per instance: RadioEnabled on WLAN 1, Enable on WLAN 2.
  assert.deepEqual(m.toNative('Device.WiFi.Radio.1.Enable'), [`${WLAN}1.RadioEnabled`]);
  assert.deepEqual(m.toNative('Device.WiFi.Radio.2.Enable'), [`${WLAN}2.Enable`]);
  assert.deepEqual(m.uspToNativeValue('Device.WiFi.Radio.2.Enable', 'false'), [{ path: `${WLAN}2.Enable`, value: 'false', type: 'xsd:boolean' }]);
  assert.deepEqual(m.toNative('Device.WiFi.AccessPoint.1.Security.KeyPassphrase'), [`${WLAN}1.KeyPassphrase`]);
  assert.deepEqual(m.toNative('Device.WiFi.AccessPoint.2.Security.KeyPassphrase'), [`${WLAN}2.PreSharedKey.1.KeyPassphrase`]);
  // A composed parameter reads only the inputs its instance has.
  assert.deepEqual(m.toNative('Device.WiFi.AccessPoint.1.Security.ModeEnabled'), [`${WLAN}1.BeaconType`, `${WLAN}1.IEEE11iAuthenticationMode`]);
  assert.deepEqual(m.toNative('Device.WiFi.AccessPoint.2.Security.ModeEnabled'), [`${WLAN}2.BeaconType`]);
  assert.deepEqual(
    m.uspToNativeValue('Device.WiFi.AccessPoint.2.Security.ModeEnabled', 'WPA2-Personal').map((s) => s.path),
    [`${WLAN}2.BeaconType`],
  );
  // Vendor extensions come from the object's own names.
  assert.deepEqual(m.toNative('Device.DeviceInfo.X_ACME_Tenant'), [`${IGD}DeviceInfo.X_ACME_Tenant`]);
  // Nothing asked that the device did not list.
  for (const p of m.paramsUnder('Device.')) for (const n of m.toNative(p) ?? []) assert.ok(listed.has(n), `${p} -> ${n}`);
});

test('rows that differ: the coverage command finds no phantom name in such a model', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mapping-rows-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'differing-rows.csv');
  const csv = differingRows().map((p) => `${p.name},${p.name.endsWith('.')},${p.writable},,${p.type ?? ''}`);
  writeFileSync(file, ['Parameter,Object,Writable,Value,Value type', ...csv].join('\n') + '\n');
  const r = coverage(file);
  assert.deepEqual(r.phantoms, []);
  assert.equal(r.nativeParams, leafNames(differingRows()).size);
  const m = new DeviceMapping(rules, { deviceKey: 'gw', params: differingRows() });
  assert.equal(r.reachable, m.reachableNativeParams().size);
  const out: string[] = [];
  assert.equal(runMappingCli(['coverage', '--model', file], { out: (l) => out.push(l), err: (l) => out.push(l) }), 0, out.join('\n'));
  assert.ok(out.includes('Device.Ethernet.Interface.{i}. [2 instance(s)]: 3 param(s)'), out.join('\n'));
});

test('nativeNamesFor: explicit names only, for parameters, objects and partial paths', () => {
  const m = new DeviceMapping(rules, { deviceKey: 'gw', params: differingRows() });
  assert.deepEqual(m.nativeNamesFor(['Device.Ethernet.Interface.2.']), [`${ETH}2.Enable`, `${ETH}2.Stats.BytesReceived`, `${ETH}2.Status`]);
  assert.deepEqual(m.nativeNamesFor(['Device.Ethernet.Interface.2.MaxBitRate']), []);
  // Computed parameters (counts, references) and unmapped paths need nothing from the device.
  assert.deepEqual(m.nativeNamesFor(['Device.Ethernet.InterfaceNumberOfEntries', 'Device.WiFi.SSID.1.LowerLayers', 'Device.Bridging.', 'Device.Nope']), []);
  // Each name once, in Device:2 order, whatever the order and overlap of the request.
  assert.deepEqual(m.nativeNamesFor(['Device.WiFi.AccessPoint.2.Security.ModeEnabled', 'Device.WiFi.SSID.2.', 'Device.WiFi.SSID.2.SSID']), [
    `${WLAN}2.BeaconType`,
    `${WLAN}2.Enable`,
    `${WLAN}2.SSID`,
  ]);
  // Excluded prefixes (served elsewhere) are skipped, as a path or under a partial path.
  assert.deepEqual(m.nativeNamesFor(['Device.Ethernet.Interface.1.'], { exclude: ['Device.Ethernet.Interface.1.Stats.'] }), [
    `${ETH}1.Enable`,
    `${ETH}1.MaxBitRate`,
    `${ETH}1.Status`,
  ]);
  assert.deepEqual(m.nativeNamesFor(['Device.DeviceInfo.'], { exclude: ['Device.DeviceInfo.'] }), []);
  const all = m.nativeNamesFor(['Device.']);
  assert.ok(all.length > 10 && all.every((n) => !n.endsWith('.')));
});

// ------------------------------------------------------------------ incremental snapshots

/** Same history on two stores: incremental on one, full rebuilds on the other. */
function compareIncremental(all: NativeParamInfo[], victim: string, label: string): void {
  const inc = new MemoryInstanceMapStore();
  const full = new MemoryInstanceMapStore();
  const subtree = all.filter((p) => p.name.startsWith(victim));
  assert.ok(subtree.length > 1, `${label}: ${victim} has names`);
  const rest = all.filter((p) => !p.name.startsWith(victim));
  const m0 = new DeviceMapping(rules, { deviceKey: 'd', params: all, store: inc });
  const r0 = new DeviceMapping(rules, { deviceKey: 'd', params: all, store: full });
  const before = JSON.stringify(observable(m0));
  assert.deepEqual(observable(m0), observable(r0), `${label}: same start`);
  const uspRows = m0.toUspAll(victim);
  assert.ok(uspRows.length > 0, `${label}: ${victim} is a mapped row`);

  const m1 = m0.withRemoved(victim);
  const r1 = new DeviceMapping(rules, { deviceKey: 'd', params: rest, store: full });
  assert.deepEqual(observable(m1), observable(r1), `${label}: withRemoved(${victim})`);
  assert.deepEqual(inc.get('d'), full.get('d'));
  for (const u of uspRows) assert.equal(m1.has(u), false, `${label}: ${u} is gone`);
  assert.equal(JSON.stringify(observable(m0)), before, `${label}: the earlier snapshot is unchanged`);

  const m2 = m1.withAdded(subtree);
  const r2 = new DeviceMapping(rules, { deviceKey: 'd', params: [...rest, ...subtree], store: full });
  assert.deepEqual(observable(m2), observable(r2), `${label}: withAdded(${victim})`);
  assert.deepEqual(inc.get('d'), full.get('d'));
  // The row is back under new numbers: a number once given is never given to another row.
  for (const u of m2.toUspAll(victim)) assert.equal(uspRows.includes(u), false, `${label}: ${u} reused`);
  assert.deepEqual(new Set(m2.nativeNamesFor(['Device.'])), new Set(m0.nativeNamesFor(['Device.'])));
}

test('withRemoved/withAdded equal a full rebuild (bundled TR-098 model)', () => {
  const { params } = modelParams(SIM098);
  compareIncremental(params, `${WLAN}2.`, 'sim WLAN 2');
  compareIncremental(params, `${IGD}WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.`, 'sim WANIPConnection');
});

test('withRemoved/withAdded equal a full rebuild (Huawei dumps)', { skip: noDumps }, () => {
  for (const f of [BM, EG]) {
    const { params } = modelParams(f);
    compareIncremental(params, `${WLAN}1.`, `${path.basename(f)} WLAN 1`);
    compareIncremental(params, `${ETH}2.`, `${path.basename(f)} LAN port 2`);
  }
  const { params } = modelParams(EG);
  // A flattened row (PPP connection -> IP.Interface and PPP.Interface) with its nested tables.
  compareIncremental(params, `${IGD}WANDevice.1.WANConnectionDevice.4.WANPPPConnection.1.`, 'EG WANPPPConnection');
});

test('withAdded: a new instance (AddObject) gets the next numbers; names update in place', () => {
  const all = differingRows();
  const store = new MemoryInstanceMapStore();
  const m0 = new DeviceMapping(rules, { deviceKey: 'gw', params: all, store });
  // GetParameterNames of the new WLANConfiguration.3. after AddObject: fewer names than WLAN 1.
  const added = [P(`${WLAN}3.`, true), P(`${WLAN}3.Enable`, true), P(`${WLAN}3.SSID`, true), P('Device.Ignored', true)];
  const m1 = m0.withAdded(added);
  const r1 = new DeviceMapping(rules, { deviceKey: 'gw', params: [...all, ...added], store: new MemoryInstanceMapStore() });
  assert.deepEqual(observable(m1), observable(r1));
  assert.deepEqual(m1.uspInstances('Device.WiFi.SSID.'), [1, 2, 3]);
  assert.equal(m1.toUsp(`${WLAN}3.SSID`), 'Device.WiFi.SSID.3.SSID');
  assert.deepEqual(m1.toNative('Device.WiFi.Radio.3.Enable'), [`${WLAN}3.Enable`]);
  assert.equal(m1.toNative('Device.WiFi.AccessPoint.3.Security.KeyPassphrase'), null);
  assert.equal(m1.nativeToUspValue('Device.WiFi.SSIDNumberOfEntries', {}), '3');
  // Its type came later (a GetParameterValues answer): the update keeps the writability it carries...
  const typed = m1.withAdded([P(`${WLAN}3.SSID`, true, 'xsd:string'), P(`${ETH}2.Enable`, true, 'xsd:boolean')]);
  assert.deepEqual(typed.paramInfo('Device.Ethernet.Interface.2.Enable'), { name: 'Enable', type: 'boolean', writable: true, computed: false });
  // ...and a later update without a type keeps the type learned.
  const again = typed.withAdded([P(`${ETH}2.Enable`, false)]);
  assert.equal(again.nativeParamList().find((p) => p.name === `${ETH}2.Enable`)?.type, 'xsd:boolean');
  assert.deepEqual(again.uspToNativeValue('Device.Ethernet.Interface.1.Enable', '0'), [{ path: `${ETH}1.Enable`, value: 'false', type: 'xsd:boolean' }]);
  // Types learned from a GetParameterValues answer: writability kept, unknown names ignored.
  const noType = m0.withRemoved(`${ETH}2.`);
  assert.equal(noType.withTypes([['x', 'xsd:int']]), noType);
  const learned = noType.withTypes(
    new Map([
      [`${ETH}1.Enable`, 'xsd:boolean'],
      [`${ETH}1.MaxBitRate`, 'xsd:unsignedInt'],
      [`${IGD}Nope`, 'xsd:int'],
    ]),
  );
  assert.deepEqual(learned.paramInfo('Device.Ethernet.Interface.1.MaxBitRate'), { name: 'MaxBitRate', type: 'int', writable: true, computed: false });
  assert.deepEqual(learned.uspToNativeValue('Device.Ethernet.Interface.1.MaxBitRate', '100'), [
    { path: `${ETH}1.MaxBitRate`, value: '100', type: 'xsd:unsignedInt' },
  ]);
  assert.equal(learned.has(`${IGD}Nope`), false);
  assert.equal(learned.nativeParamList().length, noType.nativeParamList().length);
  // Deleting it retires number 3; a new instance gets 4.
  const m2 = m1.withRemoved(`${WLAN}3.`);
  assert.deepEqual(m2.uspInstances('Device.WiFi.SSID.'), [1, 2]);
  const m3 = m2.withAdded([P(`${WLAN}4.`, true), P(`${WLAN}4.SSID`, true, 'xsd:string')]);
  assert.deepEqual(m3.uspInstances('Device.WiFi.SSID.'), [1, 2, 4]);
  // Without a store of its own, a snapshot's successors still keep the numbers.
  const bare = new DeviceMapping(rules, { deviceKey: 'gw', params: all }).withRemoved(`${WLAN}1.`).withAdded(all.filter((p) => p.name.startsWith(`${WLAN}1.`)));
  assert.deepEqual(bare.uspInstances('Device.WiFi.SSID.'), [2, 3]);
  // Removing a single parameter name.
  const noMax = m0.withRemoved(`${ETH}1.MaxBitRate`);
  assert.equal(noMax.toNative('Device.Ethernet.Interface.1.MaxBitRate'), null);
  assert.deepEqual(noMax.toNative('Device.Ethernet.Interface.1.Enable'), [`${ETH}1.Enable`]);
});
