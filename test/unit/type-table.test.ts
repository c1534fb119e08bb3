import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isSecured, schemaPathOf, standardObject, standardParameter, TypeTable, TypeTableError, TYPE_TABLE_FORMAT } from '../../src/interworking/type-table.js';
import { assetPath } from '../../src/util/assets.js';
import { buildTypeTable, DmXmlError, serializeTypeTable } from '../../scripts/type-table/generate.js';
import { generateFromReference } from '../../scripts/gen-type-table.js';
import { hasReference, REFERENCE, ROOT } from '../helpers/paths.js';

const doc = (spec: string, body: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>
<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-14" spec="${spec}" file="x.xml">
${body}
</dm:document>`;

// A model excerpt in the shape of tr-181-2-17-0-cwmp-full.xml: local data types (one with a
// base chain, one a list), one type left to the shared types document, a table with keys.
const MODEL = doc(
  'urn:example:tr-x-1-0',
  `
  <dataType name="_AliasCommon"><description>handle</description><string><size maxLength="64"/></string></dataType>
  <dataType name="Alias" base="_AliasCommon"><description action="replace">a handle</description></dataType>
  <dataType name="IPAddress"><string><size maxLength="45"/></string></dataType>
  <dataType name="IPv4Address" base="IPAddress"><size maxLength="15"/></dataType>
  <dataType name="Bands"><list/><unsignedInt/></dataType>
  <dataType name="TenthdB"><int/></dataType>
  <model name="Device:2.99">
    <object name="Device." access="readOnly" minEntries="1" maxEntries="1">
      <parameter name="WidgetNumberOfEntries" access="readOnly"><syntax><unsignedInt/></syntax></parameter>
    </object>
    <object name="Device.Widget.{i}." access="readWrite" minEntries="0" maxEntries="unbounded" numEntriesParameter="WidgetNumberOfEntries">
      <description>Widgets.</description>
      <uniqueKey functional="false"><parameter ref="Alias"/></uniqueKey>
      <uniqueKey><parameter ref="Address"/><parameter ref="Port"/></uniqueKey>
      <parameter name="Alias" access="writeOnceReadOnly"><syntax><dataType ref="Alias"/></syntax></parameter>
      <parameter name="Address" access="readWrite"><syntax><dataType ref="IPv4Address"/></syntax></parameter>
      <parameter name="Port" access="readWrite"><syntax><unsignedInt><range maxInclusive="65535"/></unsignedInt></syntax></parameter>
      <parameter name="Hosts" access="readWrite"><syntax><list maxItems="4"/><dataType ref="IPAddress"/></syntax></parameter>
      <parameter name="Bands" access="readOnly"><syntax><dataType ref="Bands"/></syntax></parameter>
      <parameter name="Gain" access="readOnly"><syntax><dataType base="TenthdB"><units value="TenthdB"/></dataType></syntax></parameter>
      <parameter name="Mac" access="readOnly"><syntax><dataType ref="MACAddress"/></syntax></parameter>
      <parameter name="Password" access="readWrite"><syntax hidden="true"><string/></syntax></parameter>
      <parameter name="Key" access="readWrite"><syntax secured="true"><hexBinary/></syntax></parameter>
      <parameter name="Sample" access="readWrite"><description>Forces a sample. {{hidden}}</description><syntax><boolean/></syntax></parameter>
      <parameter name="Bytes" access="readOnly"><syntax><unsignedLong/></syntax></parameter>
      <parameter name="Offset" access="readOnly" status="deprecated"><syntax><long/></syntax></parameter>
      <parameter name="Since" access="readOnly"><syntax><dateTime/></syntax></parameter>
      <parameter name="Blob" access="readOnly"><syntax><base64/></syntax></parameter>
      <parameter name="Ratio" access="readOnly"><syntax><decimal/></syntax></parameter>
      <parameter name="Gone" access="readOnly" status="deleted"><syntax><frobnicated/></syntax></parameter>
    </object>
    <object name="Device.Widget.{i}.Stats." minEntries="1" maxEntries="1">
      <parameter name="Errors" access="readOnly"><syntax><int/></syntax></parameter>
    </object>
    <object name="Device.Retired." access="readOnly" minEntries="1" maxEntries="1" status="deleted">
      <parameter name="Old" access="readOnly"><syntax><string/></syntax></parameter>
    </object>
    <profile name="Baseline:1"><object ref="Device." requirement="present"/></profile>
  </model>`,
);

// The shared types document (tr-106-types.xml): the fallback for names a model does not define.
const TYPES = doc('urn:example:tr-106', `<dataType name="MACAddress"><string><size maxLength="17"/></string></dataType>`);

const excerpt = () => buildTypeTable([{ file: 'tr-x-1-0-full.xml', xml: MODEL }], [{ file: 'tr-106-types.xml', xml: TYPES }]);

test('the generator resolves types, access, keys and secured parameters of an excerpt', () => {
  const text = serializeTypeTable(excerpt());
  const t = TypeTable.parse(text);
  const p = (name: string) => t.parameter(`Device.Widget.7.${name}`);
  assert.deepEqual(p('Alias'), { type: 'xsd:string', writable: true, secured: false }, 'writeOnceReadOnly Alias, _AliasCommon via base');
  assert.deepEqual(p('Address'), { type: 'xsd:string', writable: true, secured: false }, 'IPv4Address -> IPAddress -> string');
  assert.deepEqual(p('Port'), { type: 'xsd:unsignedInt', writable: true, secured: false });
  assert.equal(p('Hosts')?.type, 'xsd:string', 'a list of IPAddress');
  assert.equal(p('Bands')?.type, 'xsd:string', 'a dataType that is a list of unsignedInt');
  assert.equal(p('Gain')?.type, 'xsd:int', 'anonymous dataType restricting TenthdB');
  assert.equal(p('Mac')?.type, 'xsd:string', 'MACAddress from the types document');
  assert.deepEqual(p('Password'), { type: 'xsd:string', writable: true, secured: true }, 'hidden="true"');
  assert.deepEqual(p('Key'), { type: 'xsd:hexBinary', writable: true, secured: true }, 'secured="true"');
  assert.deepEqual(p('Sample'), { type: 'xsd:boolean', writable: true, secured: true }, '{{hidden}} template');
  assert.equal(p('Bytes')?.type, 'xsd:unsignedLong');
  assert.equal(p('Offset')?.type, 'xsd:long', 'deprecated items stay');
  assert.equal(p('Since')?.type, 'xsd:dateTime');
  assert.equal(p('Blob')?.type, 'xsd:base64');
  assert.equal(p('Ratio')?.type, 'xsd:decimal');
  assert.deepEqual(t.parameter('Device.Widget.7.Stats.Errors'), { type: 'xsd:int', writable: false, secured: false });
  assert.equal(p('Gone'), undefined, 'status="deleted" parameter left out');
  assert.equal(t.object('Device.Retired.'), undefined, 'status="deleted" object left out');
  assert.equal(t.parameter('Device.Retired.Old'), undefined);

  const rows = { table: true, writable: true, uniqueKeys: [['Alias'], ['Address', 'Port']], numEntriesParameter: 'WidgetNumberOfEntries' };
  assert.deepEqual(t.object('Device.Widget.'), rows);
  assert.deepEqual(t.object('Device.Widget.2.'), rows);
  assert.deepEqual(t.object('Device.Widget.{i}.'), rows);
  assert.deepEqual(t.object('Device.Widget.2.Stats.'), { table: false, writable: false, uniqueKeys: [] }, 'no access attribute: readOnly');
  assert.deepEqual(t.object('Device.'), { table: false, writable: false, uniqueKeys: [] });
  assert.equal(t.parameter('Device.WidgetNumberOfEntries')?.type, 'xsd:unsignedInt');
});

test('the generated text is deterministic, sorted, one object a line, with its sources', () => {
  const text = serializeTypeTable(excerpt());
  assert.equal(serializeTypeTable(excerpt()), text);
  const lines = text.trimEnd().split('\n');
  const header = JSON.parse(`${lines[0]}}}`) as { format: number; sources: unknown };
  assert.equal(header.format, TYPE_TABLE_FORMAT);
  assert.deepEqual(header.sources, [
    { file: 'tr-x-1-0-full.xml', spec: 'urn:example:tr-x-1-0', model: 'Device:2.99' },
    { file: 'tr-106-types.xml', spec: 'urn:example:tr-106' },
  ]);
  const paths = lines.slice(1, -1).map((l) => l.slice(1, l.indexOf('":')));
  assert.deepEqual(paths, ['Device.', 'Device.Widget.{i}.', 'Device.Widget.{i}.Stats.']);
  const widget = lines[2]!;
  assert.ok(widget.startsWith('"Device.Widget.{i}.":["tw",{"Address":"sw","Alias":"sw","Bands":"s","Blob":"B","Bytes":"L"'), widget);
  assert.ok(widget.endsWith(',[["Alias"],["Address","Port"]],"WidgetNumberOfEntries"],'), widget);
  assert.ok(widget.includes('"Key":"xw*"') && widget.includes('"Password":"sw*"'), widget);
});

test('the generator refuses what it cannot resolve', () => {
  const bad =
    (body: string, types = TYPES) =>
    () =>
      buildTypeTable([{ file: 'bad.xml', xml: doc('urn:x', body) }], [{ file: 't.xml', xml: types }]);
  const obj = (syntax: string) =>
    `<model name="Device:2.1"><object name="Device." access="readOnly"><parameter name="P" access="readOnly"><syntax>${syntax}</syntax></parameter></object></model>`;
  assert.throws(
    bad(obj('<dataType ref="Nowhere"/>')),
    (e: Error) => e instanceof DmXmlError && /bad\.xml: Device\.P: unknown dataType Nowhere/.test(e.message),
  );
  assert.throws(bad(`<dataType name="A" base="B"/><dataType name="B" base="A"/>${obj('<dataType ref="A"/>')}`), /refers to itself/);
  assert.throws(bad(obj('<frobnicated/>')), /Device\.P: no type in syntax/);
  assert.throws(bad('<model name="Device:2.1"><component ref="X"/></model>'), /flattened -full file/);
  assert.throws(
    bad('<model name="Device:2.1"><object name="Device.A.{i}." access="readOnly"/><object name="Device.A." access="readOnly"/></model>'),
    /clashes/,
  );
  assert.throws(bad('<model name="Device:2.1"><object name="Device..X." access="readOnly"/></model>'), /bad object name/);
  assert.throws(
    bad('<model name="Device:2.1"><object name="Device." access="readOnly">'),
    (e: Error) => e instanceof DmXmlError && /^bad\.xml:\d+: /.test(e.message),
  );
});

test('the loader refuses a file of another format', () => {
  assert.throws(() => TypeTable.parse('{"format":1,'), TypeTableError);
  assert.throws(() => TypeTable.parse('{"format":2,"objects":{}}'), /not format 1/);
  assert.throws(() => TypeTable.parse('{"format":1,"objects":{"Device.":["",{"P":"q"}]}}'), /bad code "q" for Device\.P/);
  assert.throws(() => TypeTable.parse('{"format":1,"objects":{"Device.":["",{"P":"sx"}]}}'), /bad code/);
  assert.throws(() => TypeTable.parse('{"format":1,"objects":{"Device.":["",{},[["A",1]]]}}'), /bad object entry Device\./);
});

test('schemaPathOf turns instance numbers into {i} and leaves the rest', () => {
  assert.equal(schemaPathOf('Device.WiFi.SSID.3.Enable'), 'Device.WiFi.SSID.{i}.Enable');
  assert.equal(schemaPathOf('Device.IP.Interface.12.IPv4Address.1.'), 'Device.IP.Interface.{i}.IPv4Address.{i}.');
  assert.equal(schemaPathOf('Device.WiFi.SSID.{i}.Enable'), 'Device.WiFi.SSID.{i}.Enable');
  assert.equal(schemaPathOf('Device.DeviceInfo.UpTime'), 'Device.DeviceInfo.UpTime');
  assert.equal(schemaPathOf('Device.'), 'Device.');
  assert.equal(schemaPathOf('Device.X_1ACME_Foo.2.Bar'), 'Device.X_1ACME_Foo.{i}.Bar');
});

test('the shipped table: parameters of Device:2 and InternetGatewayDevice:1', () => {
  assert.deepEqual(standardParameter('Device.ManagementServer.ConnectionRequestPassword'), { type: 'xsd:string', writable: true, secured: true });
  assert.deepEqual(standardParameter('Device.WiFi.SSID.3.Enable'), { type: 'xsd:boolean', writable: true, secured: false });
  assert.deepEqual(standardParameter('Device.WiFi.SSID.{i}.Enable'), { type: 'xsd:boolean', writable: true, secured: false });
  assert.deepEqual(standardParameter('Device.DeviceInfo.UpTime'), { type: 'xsd:unsignedInt', writable: false, secured: false });
  assert.deepEqual(standardParameter('Device.IP.Interface.1.IPv4Address.2.IPAddress'), { type: 'xsd:string', writable: true, secured: false });
  assert.equal(standardParameter('Device.Ethernet.Interface.1.Stats.BytesSent')?.type, 'xsd:unsignedLong', 'StatsCounter64');
  assert.equal(standardParameter('Device.DeviceInfo.MemoryStatus.Total')?.type, 'xsd:unsignedInt');
  assert.equal(standardParameter('Device.Time.CurrentLocalTime')?.type, 'xsd:dateTime');
  assert.equal(standardParameter('Device.WiFi.SSID.1.Alias')?.writable, true, 'writeOnceReadOnly');

  const igd = 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.2.';
  assert.deepEqual(standardParameter(`${igd}KeyPassphrase`), { type: 'xsd:string', writable: true, secured: true });
  assert.equal(isSecured(`${igd}KeyPassphrase`), true);
  assert.equal(isSecured(`${igd}PreSharedKey.3.PreSharedKey`), true);
  assert.equal(isSecured(`${igd}PreSharedKey.3.KeyPassphrase`), true);
  assert.equal(isSecured(`${igd}SSID`), false);
  assert.equal(isSecured('Device.WiFi.AccessPoint.1.Security.KeyPassphrase'), true);
  assert.equal(isSecured('Device.DeviceInfo.UpTime'), false);
  assert.equal(isSecured('Device.Nonexistent.Thing'), false);
  assert.deepEqual(standardObject(`${igd}PreSharedKey.4.`), { table: true, writable: false, uniqueKeys: [['Alias']] });
  assert.equal(standardParameter('InternetGatewayDevice.DeviceInfo.UpTime')?.type, 'xsd:unsignedInt');
});

test('the shipped table: vendor extensions, unknown names and wrong shapes are undefined', () => {
  assert.equal(standardParameter('Device.WiFi.SSID.1.X_ACME_Boost'), undefined);
  assert.equal(standardParameter('Device.X_ACME_Thing.Enable'), undefined);
  assert.equal(standardParameter('InternetGatewayDevice.X_TP_Foo.1.Enable'), undefined);
  assert.equal(standardObject('Device.X_ACME_Thing.'), undefined);
  assert.equal(isSecured('Device.X_ACME_Password'), false);
  assert.equal(standardParameter('Device.WiFi.SSID.1.NoSuchName'), undefined);
  assert.equal(standardParameter('Device.WiFi.SSID.1.'), undefined, 'an object path is not a parameter');
  assert.equal(standardObject('Device.WiFi.SSID.1.Enable'), undefined, 'a parameter path is not an object');
  assert.equal(standardParameter('Other.Root.Param'), undefined);
  assert.equal(standardParameter(''), undefined);
});

test('the shipped table: objects, tables, Add/Delete access, unique keys', () => {
  const ssid = standardObject('Device.WiFi.SSID.');
  assert.equal(ssid?.table, true);
  assert.equal(ssid?.writable, true, 'readWrite: AddObject / DeleteObject');
  assert.equal(ssid?.numEntriesParameter, 'SSIDNumberOfEntries');
  assert.ok(
    ssid?.uniqueKeys.some((k) => k.length === 1 && k[0] === 'Alias'),
    JSON.stringify(ssid?.uniqueKeys),
  );
  assert.deepEqual(ssid?.uniqueKeys, [['Alias'], ['Name'], ['BSSID']]);
  assert.equal(standardObject('Device.WiFi.SSID.3.'), ssid);
  assert.equal(standardObject('Device.WiFi.SSID.{i}.'), ssid);
  assert.deepEqual(standardObject('Device.IP.Interface.1.IPv4Address.'), {
    table: true,
    writable: true,
    uniqueKeys: [['Alias'], ['IPAddress', 'SubnetMask']],
    numEntriesParameter: 'IPv4AddressNumberOfEntries',
  });
  assert.deepEqual(standardObject('Device.DeviceInfo.'), { table: false, writable: false, uniqueKeys: [] });
  assert.equal(standardObject('Device.WiFi.Radio.')?.writable, false, 'Radio rows are created by the CPE');
  assert.equal(standardObject('Device.')?.table, false);
  assert.equal(standardObject('InternetGatewayDevice.LANDevice.1.WLANConfiguration.')?.table, true);
  assert.throws(() => (ssid!.uniqueKeys as string[][]).push(['x']), TypeError, 'shared results are frozen');
});

const haveReference = hasReference('tr-181-cwmp') && hasReference('tr-098');
const noReference = haveReference ? false : `reference data models absent (${REFERENCE}/tr-181-cwmp, tr-098)`;

test('freshness: regenerating from the reference data models gives the shipped file', { skip: noReference }, () => {
  const shipped = readFileSync(assetPath('param-types.json'), 'utf8');
  assert.ok(generateFromReference(REFERENCE).text === shipped, 'assets/param-types.json is stale: run npm run gen:types');
});

const script = path.join(ROOT, 'dist', 'scripts', 'gen-type-table.js');

test('gen-type-table --check fails on a table that differs and writes nothing; bad arguments exit 2', () => {
  // A reference folder laid out like ../shared/reference, holding the excerpts above.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'type-table-'));
  for (const [rel, xml] of [
    ['tr-181-cwmp/tr-181-2-17-0-cwmp-full.xml', MODEL],
    ['tr-098/tr-098-1-8-0-full.xml', MODEL.replaceAll('Device', 'InternetGatewayDevice')],
    ['tr-098/tr-106-types.xml', TYPES],
  ] as const) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), xml);
  }
  const before = readFileSync(assetPath('param-types.json'), 'utf8');
  const stale = spawnSync(process.execPath, [script, '--check', '--reference', dir], { encoding: 'utf8' });
  assert.equal(stale.status, 1, stale.stderr);
  assert.match(stale.stderr, /param-types\.json is stale or missing: run npm run gen:types/);
  assert.equal(readFileSync(assetPath('param-types.json'), 'utf8'), before);
  const bad = spawnSync(process.execPath, [script, '--frobnicate'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /usage: gen-type-table/);
});

test('gen-type-table --check says the shipped file is up to date', { skip: noReference }, () => {
  const ok = spawnSync(process.execPath, [script, '--check', '--reference', REFERENCE], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /param-types\.json is up to date: Device\. \d+ objects, \d+ parameters \(\d+ secured\); InternetGatewayDevice\. /);
});
