import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { DeviceModel, loadModel, parseCsv, parseModelCsv } from '../../src/tools/sim/model.js';
import { expandParams, getNames } from '../../src/tools/sim/rpc.js';
import { REFERENCE, hasReference } from '../helpers/paths.js';

const MODELS = path.join(REFERENCE, 'cwmp-models');
const noRef = hasReference('cwmp-models') ? false : 'reference models (../shared/reference/cwmp-models) not present';

test('parseCsv: quoted fields with commas, doubled quotes, line breaks, CRLF', () => {
  const rows = parseCsv('a,b,c\r\n"x, y","say ""hi""","two\nlines"\n,,\n');
  assert.deepEqual(rows, [
    ['a', 'b', 'c'],
    ['x, y', 'say "hi"', 'two\nlines'],
    ['', '', ''],
  ]);
});

test('parseModelCsv: simple layout, DeviceID rows, Events rows ignored, implicit parents', () => {
  const t = parseModelCsv(
    [
      'Parameter,Object,Writable,Value,Value type',
      'DeviceID.Manufacturer,false,false,"ACME, Inc.",xsd:string',
      'DeviceID.OUI,false,false,001122,xsd:string',
      'DeviceID.ProductClass,false,false,Box,xsd:string',
      'DeviceID.SerialNumber,false,false,S1,xsd:string',
      'Events.Inform,false,false,2023-01-01T00:00:00Z,xsd:dateTime',
      'InternetGatewayDevice,true,false,,',
      'InternetGatewayDevice.DeviceInfo.SoftwareVersion,false,false,"1.2, beta",xsd:string',
      'InternetGatewayDevice.X.Table.2,true,true,,',
      'InternetGatewayDevice.X.Table.10,true,true,,',
      'InternetGatewayDevice.X.Table.2.Val,false,true,7,xsd:int',
      'InternetGatewayDevice.X.Table.10.Val,false,true,8,xsd:int',
    ].join('\n'),
  );
  assert.equal(t.root, 'InternetGatewayDevice.');
  assert.deepEqual(t.deviceId, { manufacturer: 'ACME, Inc.', oui: '001122', productClass: 'Box', serialNumber: 'S1' });
  assert.equal(t.node('InternetGatewayDevice.DeviceInfo.SoftwareVersion')?.value, '1.2, beta');
  assert.equal(t.node('InternetGatewayDevice.DeviceInfo.')?.object, true, 'implicit parent object');
  assert.equal(t.node('Events.Inform'), undefined);
  // instances in numeric order
  assert.deepEqual(t.children('InternetGatewayDevice.X.Table.'), ['InternetGatewayDevice.X.Table.2.', 'InternetGatewayDevice.X.Table.10.']);
  assert.equal(t.maxInstanceOf('InternetGatewayDevice.X.Table.'), 10);
});

test('reference CSV, simple layout (Huawei BM632w, TR-098)', { skip: noRef }, () => {
  const t = loadModel(path.join(MODELS, 'huawei-BM632w-tr098.csv'));
  assert.equal(t.root, 'InternetGatewayDevice.');
  assert.equal(t.deviceId.manufacturer, 'Huawei Technologies Co., Ltd.');
  assert.equal(t.deviceId.oui, '202BC1');
  assert.equal(t.deviceId.productClass, 'BM632w');
  assert.equal(t.deviceId.serialNumber, '8KA8WA1151100043');
  const pii = t.node('InternetGatewayDevice.ManagementServer.PeriodicInformInterval');
  assert.deepEqual([pii?.value, pii?.type, pii?.writable], ['10', 'xsd:unsignedInt', true]);
  assert.match(t.node('InternetGatewayDevice.DeviceSummary')!.value, /^InternetGatewayDevice:1\.1\[\]\(Baseline:1, /);
  assert.ok(t.size > 900, `size ${t.size}`);
  assert.equal(loadModel(path.join(MODELS, 'huawei-BM632w-tr098.csv')), t, 'templates are cached and shared');
});

test('reference CSV, full layout (TP-Link EX220, TR-181, 5,000+ rows)', { skip: noRef }, () => {
  const t = loadModel(path.join(MODELS, 'tplink-EX220-tr181.csv'));
  assert.equal(t.root, 'Device.');
  assert.deepEqual(t.deviceId, { manufacturer: 'TP-Link', oui: '1C61B4', productClass: 'Device2', serialNumber: '2226469000523' });
  assert.equal(t.node('Device.DeviceInfo.SoftwareVersion')?.value, '0.14.0 2.0.0 v605f.0 Build 221227 Rel.55257n');
  assert.equal(t.node('Device.WiFi.SSID.1.SSID')?.value, 'TP-Link_9E1E');
  assert.match(t.node('Device.X_TP_DeviceComponent')!.value, /^\[\{"n":"ewan" , "v":"1\.0"\}/, 'doubled quotes unescaped');
  assert.equal(t.node('Device.Bridging.Bridge.1.')?.object, true, 'object rows get a trailing dot');
  assert.ok(t.size > 5000, `size ${t.size}`);
  const m = new DeviceModel(t);
  assert.ok(getNames(m, 'Device.', true).some((p) => p.name === 'Device.ManagementServer.'));
});

test('the other reference CSVs load', { skip: noRef }, () => {
  assert.equal(loadModel(path.join(MODELS, 'huawei-EG8145V5-tr098.csv')).deviceId.serialNumber, '48575443A94196A5');
  assert.equal(loadModel(path.join(MODELS, 'tplink-EC220G5v3-tr181.csv')).deviceId.productClass, 'EC220-G5');
});

for (const [name, root] of [
  ['tr181', 'Device.'],
  ['tr098', 'InternetGatewayDevice.'],
] as const) {
  test(`bundled model ${name}`, () => {
    const t = loadModel(name);
    assert.equal(t.root, root);
    assert.ok(t.size >= 100 && t.size <= 400, `size ${t.size}`);
    const must = [
      'DeviceInfo.SoftwareVersion',
      'DeviceInfo.HardwareVersion',
      'DeviceInfo.ProvisioningCode',
      'ManagementServer.ConnectionRequestURL',
      'ManagementServer.ConnectionRequestUsername',
      'ManagementServer.ConnectionRequestPassword',
      'ManagementServer.PeriodicInformEnable',
      'ManagementServer.PeriodicInformInterval',
      'ManagementServer.ParameterKey',
      ...(name === 'tr181'
        ? [
            'WiFi.SSID.1.SSID',
            'Hosts.Host.1.IPAddress',
            'IP.Interface.1.IPv4Address.1.IPAddress',
            'DHCPv4.Server.Pool.1.MinAddress',
            'NAT.PortMapping.1.ExternalPort',
            'IP.Diagnostics.IPPing.DiagnosticsState',
            'IP.Diagnostics.TraceRoute.RouteHopsNumberOfEntries',
            'DeviceInfo.FirmwareImage.1.Version',
          ]
        : [
            'DeviceInfo.SpecVersion',
            'LANDevice.1.WLANConfiguration.1.SSID',
            'LANDevice.1.Hosts.Host.1.IPAddress',
            'LANDevice.1.LANHostConfigManagement.MinAddress',
            'WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.PortMapping.1.ExternalPort',
            'WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress',
            'IPPingDiagnostics.DiagnosticsState',
            'TraceRouteDiagnostics.RouteHopsNumberOfEntries',
          ]),
    ];
    for (const p of must) assert.ok(t.node(root + p), `${root}${p} missing`);
    assert.equal(t.node(root + 'ManagementServer.ParameterKey')!.writable, false);
    assert.equal(t.node(root + 'ManagementServer.PeriodicInformInterval')!.type, 'xsd:unsignedInt');
  });
}

test('partial path expansion (GetParameterValues semantics)', () => {
  const m = new DeviceModel(loadModel('tr181'));
  const ms = expandParams(m, 'Device.ManagementServer.');
  assert.ok(ms.includes('Device.ManagementServer.URL'));
  assert.ok(ms.every((p) => p.startsWith('Device.ManagementServer.') && !p.endsWith('.')));
  assert.deepEqual(expandParams(m, 'Device.DeviceInfo.SoftwareVersion'), ['Device.DeviceInfo.SoftwareVersion']);
  const all = expandParams(m, '');
  assert.ok(all.length > 100 && all.includes('Device.WiFi.SSID.2.SSID'));
  assert.deepEqual(expandParams(m, 'Device.'), all);
  assert.throws(() => expandParams(m, 'Device.Nope.'), /Invalid parameter name/);
  assert.throws(() => expandParams(m, 'Device.DeviceInfo'), /Invalid parameter name/, 'an object without its trailing dot');
  assert.throws(() => expandParams(m, 'Device.DeviceInfo.SoftwareVersion.'), /Invalid parameter name/);
});

test('GetParameterNames NextLevel semantics (TR-069 A.3.2.3)', () => {
  const m = new DeviceModel(loadModel('tr098'));
  const r = 'InternetGatewayDevice.';
  // empty path, NextLevel true: the root object only
  assert.deepEqual(getNames(m, '', true), [{ name: r, writable: false }]);
  // empty path, NextLevel false: everything, root included
  const all = getNames(m, '', false);
  assert.equal(all[0].name, r);
  assert.ok(all.some((p) => p.name === r + 'LANDevice.1.WLANConfiguration.2.SSID'));
  assert.ok(all.some((p) => p.name === r + 'LANDevice.1.WLANConfiguration.2.'));
  // partial path, NextLevel true: direct children only (objects end with '.')
  const ms = getNames(m, r + 'LANDevice.1.', true).map((p) => p.name);
  assert.ok(ms.includes(r + 'LANDevice.1.WLANConfiguration.'));
  assert.ok(ms.includes(r + 'LANDevice.1.LANWLANConfigurationNumberOfEntries'));
  assert.ok(!ms.includes(r + 'LANDevice.1.'), 'not the object itself');
  assert.ok(!ms.some((p) => p.startsWith(r + 'LANDevice.1.WLANConfiguration.1')), 'not grandchildren');
  // partial path, NextLevel false: the object itself and all descendants
  const deep = getNames(m, r + 'LANDevice.1.WLANConfiguration.', false).map((p) => p.name);
  assert.equal(deep[0], r + 'LANDevice.1.WLANConfiguration.');
  assert.ok(deep.includes(r + 'LANDevice.1.WLANConfiguration.1.'));
  assert.ok(deep.includes(r + 'LANDevice.1.WLANConfiguration.2.KeyPassphrase'));
  // a parameter: itself with NextLevel false, 9003 with true
  assert.deepEqual(getNames(m, r + 'ManagementServer.URL', false), [{ name: r + 'ManagementServer.URL', writable: true }]);
  assert.throws(() => getNames(m, r + 'ManagementServer.URL', true), /NextLevel/);
  assert.throws(() => getNames(m, r + 'Nope.', true), /Invalid parameter name/);
  // writability of objects: tables that accept AddObject
  const pm = getNames(m, r + 'WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.', true).find((p) => p.name.endsWith('PortMapping.'));
  assert.deepEqual(pm?.writable, true);
});

test('copy-on-write: devices share the template and do not see each other', () => {
  const t = loadModel('tr181');
  const a = new DeviceModel(t);
  const b = new DeviceModel(t);
  a.set('Device.WiFi.SSID.1.SSID', 'mine');
  const n = a.addInstance('Device.NAT.PortMapping.');
  assert.equal(n, 2);
  a.deleteInstance('Device.Hosts.Host.1.');
  assert.equal(a.get('Device.WiFi.SSID.1.SSID'), 'mine');
  assert.equal(b.get('Device.WiFi.SSID.1.SSID'), 'SimGW-2G');
  assert.equal(t.node('Device.WiFi.SSID.1.SSID')!.value, 'SimGW-2G');
  assert.ok(a.has('Device.NAT.PortMapping.2.ExternalPort'));
  assert.ok(!b.has('Device.NAT.PortMapping.2.'));
  assert.ok(!a.has('Device.Hosts.Host.1.IPAddress'));
  assert.ok(b.has('Device.Hosts.Host.1.IPAddress'));
  assert.equal(b.overrideCount(), 0);
  a.reset();
  assert.equal(a.get('Device.WiFi.SSID.1.SSID'), 'SimGW-2G');
  assert.ok(a.has('Device.Hosts.Host.1.IPAddress'));
});
