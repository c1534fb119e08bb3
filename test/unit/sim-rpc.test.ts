import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimDevice } from '../../src/tools/sim/device.js';
import { loadModel } from '../../src/tools/sim/model.js';
import { normalizeValue } from '../../src/tools/sim/rpc.js';
import type { CwmpMessage, Fault } from '../../src/cwmp/types.js';

const R = 'Device.';

function dev(model = 'tr181'): SimDevice {
  return new SimDevice({
    template: loadModel(model),
    serial: 'T000001',
    index: 0,
    acsUrl: 'http://127.0.0.1:9/',
    connectionRequestUrl: 'http://127.0.0.1:1/T000001',
    connReqUsername: 'cr',
    connReqPassword: 'crpw',
  });
}

function asFault(m: CwmpMessage): Fault {
  assert.equal(m.method, 'Fault', `expected a Fault, got ${JSON.stringify(m)}`);
  return m as Fault;
}

test('GetRPCMethods lists every supported ACS method', () => {
  const r = dev().handleRpc({ method: 'GetRPCMethods' });
  assert.equal(r.method, 'GetRPCMethodsResponse');
  if (r.method !== 'GetRPCMethodsResponse') return;
  for (const m of ['GetParameterValues', 'SetParameterValues', 'AddObject', 'Download', 'ScheduleInform']) assert.ok(r.methodList.includes(m));
});

test('unknown method -> 9000', () => {
  const f = asFault(dev().handleRpc({ method: 'X_Frobnicate' }));
  assert.equal(f.faultCode, 9000);
  assert.equal(f.soapFaultCode, 'Server');
});

test('per-device identity overrides the template', () => {
  const d = dev();
  assert.equal(d.getValue(R + 'DeviceInfo.SerialNumber'), 'T000001');
  assert.equal(d.getValue(R + 'ManagementServer.ConnectionRequestURL'), 'http://127.0.0.1:1/T000001');
  assert.deepEqual(d.connReqCredentials, { username: 'cr', password: 'crpw' });
  assert.equal(d.deviceId.serialNumber, 'T000001');
  assert.equal(d.deviceId.oui, 'F0AD4E');
  assert.match(d.getValue(R + 'IP.Interface.2.IPv4Address.1.IPAddress')!, /^100\.64\.0\.\d+$/, 'per-device WAN address');
});

test('GetParameterValues: names, partial paths, 9005', () => {
  const d = dev();
  const r = d.handleRpc({ method: 'GetParameterValues', parameterNames: [R + 'DeviceInfo.SoftwareVersion', R + 'ManagementServer.'] });
  assert.equal(r.method, 'GetParameterValuesResponse');
  if (r.method !== 'GetParameterValuesResponse') return;
  assert.deepEqual(r.parameterList[0], { name: R + 'DeviceInfo.SoftwareVersion', value: '1.0.0', type: 'xsd:string' });
  const pii = r.parameterList.find((p) => p.name === R + 'ManagementServer.PeriodicInformInterval');
  assert.deepEqual(pii, { name: R + 'ManagementServer.PeriodicInformInterval', value: '3600', type: 'xsd:unsignedInt' });
  assert.ok(!r.parameterList.some((p) => p.name.endsWith('.')), 'objects are not values');
  const up = d.handleRpc({ method: 'GetParameterValues', parameterNames: [R + 'DeviceInfo.UpTime'] });
  assert.ok(up.method === 'GetParameterValuesResponse' && /^\d+$/.test(up.parameterList[0].value), 'UpTime is computed');
  assert.equal(asFault(d.handleRpc({ method: 'GetParameterValues', parameterNames: [R + 'DeviceInfo.SoftwareVersion', R + 'Nope'] })).faultCode, 9005);
  assert.equal(asFault(d.handleRpc({ method: 'GetParameterValues', parameterNames: [R + 'DeviceInfo'] })).faultCode, 9005);
});

test('GetParameterNames faults: 9005 unknown, 9003 NextLevel on a parameter', () => {
  const d = dev();
  assert.equal(asFault(d.handleRpc({ method: 'GetParameterNames', parameterPath: R + 'Foo.', nextLevel: true })).faultCode, 9005);
  assert.equal(asFault(d.handleRpc({ method: 'GetParameterNames', parameterPath: R + 'DeviceInfo.UpTime', nextLevel: true })).faultCode, 9003);
  const r = d.handleRpc({ method: 'GetParameterNames', parameterPath: R + 'DeviceInfo.UpTime', nextLevel: false });
  assert.deepEqual(r, { method: 'GetParameterNamesResponse', parameterList: [{ name: R + 'DeviceInfo.UpTime', writable: false }] });
});

test('SetParameterValues: success updates values and ParameterKey, status 0', () => {
  const d = dev();
  const r = d.handleRpc({
    method: 'SetParameterValues',
    parameterKey: 'key-1',
    parameterList: [
      { name: R + 'WiFi.SSID.1.SSID', value: 'NewNet', type: 'xsd:string' },
      { name: R + 'ManagementServer.PeriodicInformInterval', value: '600', type: 'xsd:unsignedInt' },
      { name: R + 'WiFi.Radio.1.AutoChannelEnable', value: '0', type: 'xsd:boolean' },
      { name: R + 'WiFi.Radio.1.TransmitPower', value: '-5', type: 'xsd:string' },
    ],
  });
  assert.deepEqual(r, { method: 'SetParameterValuesResponse', status: 0 });
  assert.equal(d.getValue(R + 'WiFi.SSID.1.SSID'), 'NewNet');
  assert.equal(d.getValue(R + 'ManagementServer.PeriodicInformInterval'), '600');
  assert.equal(d.getValue(R + 'WiFi.Radio.1.AutoChannelEnable'), 'false', 'booleans are stored canonically');
  assert.equal(d.getValue(R + 'ManagementServer.ParameterKey'), 'key-1');
  assert.deepEqual(d.takePostActions(), [{ kind: 'periodicChanged' }]);
});

test('SetParameterValues is atomic: 9005/9008/9007/9006 per parameter inside a 9003 fault, nothing applied', () => {
  const d = dev();
  const f = asFault(
    d.handleRpc({
      method: 'SetParameterValues',
      parameterKey: 'key-2',
      parameterList: [
        { name: R + 'WiFi.SSID.1.SSID', value: 'Changed', type: 'xsd:string' },
        { name: R + 'WiFi.SSID.1.Nope', value: 'x', type: 'xsd:string' },
        { name: R + 'DeviceInfo.SoftwareVersion', value: '9', type: 'xsd:string' },
        { name: R + 'ManagementServer.PeriodicInformInterval', value: '-1', type: 'xsd:unsignedInt' },
        { name: R + 'WiFi.Radio.1.Channel', value: '4294967296', type: 'xsd:unsignedInt' },
        { name: R + 'WiFi.Radio.1.TransmitPower', value: '2147483648', type: 'xsd:int' },
        { name: R + 'WiFi.Radio.1.AutoChannelEnable', value: 'yes', type: 'xsd:boolean' },
        { name: R + 'ManagementServer.PeriodicInformTime', value: 'yesterday', type: 'xsd:dateTime' },
        { name: R + 'WiFi.Radio.1.Enable', value: '1', type: 'xsd:unsignedInt' },
      ],
    }),
  );
  assert.equal(f.faultCode, 9003);
  assert.equal(f.faultString, 'Invalid arguments');
  assert.equal(f.soapFaultCode, 'Client');
  assert.deepEqual(
    f.setParameterValuesFault.map((x) => [x.parameterName.slice(R.length), x.faultCode]),
    [
      ['WiFi.SSID.1.Nope', 9005],
      ['DeviceInfo.SoftwareVersion', 9008],
      ['ManagementServer.PeriodicInformInterval', 9007],
      ['WiFi.Radio.1.Channel', 9007],
      ['WiFi.Radio.1.TransmitPower', 9007],
      ['WiFi.Radio.1.AutoChannelEnable', 9007],
      ['ManagementServer.PeriodicInformTime', 9007],
      ['WiFi.Radio.1.Enable', 9006],
    ],
  );
  assert.equal(d.getValue(R + 'WiFi.SSID.1.SSID'), 'SimGW-2G', 'the valid parameter was not applied');
  assert.equal(d.getValue(R + 'ManagementServer.ParameterKey'), '', 'ParameterKey unchanged');
  // an object name is not a parameter
  const g = asFault(d.handleRpc({ method: 'SetParameterValues', parameterKey: '', parameterList: [{ name: R + 'WiFi.', value: '', type: 'xsd:string' }] }));
  assert.equal(g.setParameterValuesFault[0].faultCode, 9005);
});

test('type validation table', () => {
  assert.equal(normalizeValue('xsd:int', '-2147483648'), '-2147483648');
  assert.equal(normalizeValue('xsd:int', '2147483647'), '2147483647');
  assert.equal(normalizeValue('xsd:int', '1.5'), null);
  assert.equal(normalizeValue('xsd:unsignedInt', '4294967295'), '4294967295');
  assert.equal(normalizeValue('xsd:unsignedInt', '-0'), '0');
  assert.equal(normalizeValue('xsd:unsignedLong', '18446744073709551615'), '18446744073709551615');
  assert.equal(normalizeValue('xsd:long', '9223372036854775808'), null);
  assert.equal(normalizeValue('xsd:boolean', 'TRUE'), 'true');
  assert.equal(normalizeValue('xsd:dateTime', '0001-01-01T00:00:00Z'), '0001-01-01T00:00:00Z');
  assert.equal(normalizeValue('xsd:dateTime', '2024-01-01'), null);
  assert.equal(normalizeValue('xsd:base64', 'aGk='), 'aGk=');
  assert.equal(normalizeValue('xsd:base64', 'aGk'), null);
  assert.equal(normalizeValue('xsd:hexBinary', '0aFF'), '0aFF');
  assert.equal(normalizeValue('xsd:hexBinary', 'abc'), null);
  assert.equal(normalizeValue('xsd:string', 'anything, really'), 'anything, really');
});

test('DiagnosticsState accepts only Requested/Canceled and schedules the run', () => {
  const d = dev();
  const bad = asFault(
    d.handleRpc({
      method: 'SetParameterValues',
      parameterKey: '',
      parameterList: [{ name: R + 'IP.Diagnostics.IPPing.DiagnosticsState', value: 'Complete', type: 'xsd:string' }],
    }),
  );
  assert.equal(bad.setParameterValuesFault[0].faultCode, 9007);
  const ok = d.handleRpc({
    method: 'SetParameterValues',
    parameterKey: '',
    parameterList: [
      { name: R + 'IP.Diagnostics.IPPing.Host', value: '192.0.2.1', type: 'xsd:string' },
      { name: R + 'IP.Diagnostics.IPPing.DiagnosticsState', value: 'Requested', type: 'xsd:string' },
    ],
  });
  assert.equal(ok.method, 'SetParameterValuesResponse');
  assert.deepEqual(d.takePostActions(), [{ kind: 'diagnostics', object: R + 'IP.Diagnostics.IPPing.' }]);
});

test('Get/SetParameterAttributes: notification, access list, partial paths, 9005, 9009, atomicity', () => {
  const d = dev();
  const ssid = R + 'WiFi.SSID.1.SSID';
  assert.equal(
    d.handleRpc({
      method: 'SetParameterAttributes',
      parameterList: [
        { name: ssid, notificationChange: true, notification: 2, accessListChange: true, accessList: ['Subscriber'] },
        { name: R + 'Hosts.', notificationChange: true, notification: 1, accessListChange: false, accessList: [] },
      ],
    }).method,
    'SetParameterAttributesResponse',
  );
  const r = d.handleRpc({ method: 'GetParameterAttributes', parameterNames: [ssid, R + 'Hosts.Host.1.'] });
  assert.equal(r.method, 'GetParameterAttributesResponse');
  if (r.method !== 'GetParameterAttributesResponse') return;
  assert.deepEqual(r.parameterList[0], { name: ssid, notification: 2, accessList: ['Subscriber'] });
  assert.ok(r.parameterList.slice(1).every((a) => a.notification === 1 && a.name.startsWith(R + 'Hosts.Host.1.')));
  // unchanged parameters report the default
  const def = d.handleRpc({ method: 'GetParameterAttributes', parameterNames: [R + 'WiFi.SSID.2.SSID'] });
  assert.deepEqual(def, { method: 'GetParameterAttributesResponse', parameterList: [{ name: R + 'WiFi.SSID.2.SSID', notification: 0, accessList: [] }] });
  assert.equal(asFault(d.handleRpc({ method: 'GetParameterAttributes', parameterNames: [R + 'Nope'] })).faultCode, 9005);
  // atomic: a bad entry leaves the good one unapplied
  const f = asFault(
    d.handleRpc({
      method: 'SetParameterAttributes',
      parameterList: [
        { name: R + 'WiFi.SSID.2.SSID', notificationChange: true, notification: 2, accessListChange: false, accessList: [] },
        { name: R + 'Nope', notificationChange: true, notification: 1, accessListChange: false, accessList: [] },
      ],
    }),
  );
  assert.equal(f.faultCode, 9005);
  assert.equal(d.model.attr(R + 'WiFi.SSID.2.SSID').notification, 0);
  const rej = asFault(
    d.handleRpc({
      method: 'SetParameterAttributes',
      parameterList: [{ name: R + 'DeviceInfo.UpTime', notificationChange: true, notification: 2, accessListChange: false, accessList: [] }],
    }),
  );
  assert.equal(rej.faultCode, 9009);
});

test('AddObject / DeleteObject: instance numbers, defaults, NumberOfEntries, faults', () => {
  const d = dev();
  const t = R + 'NAT.PortMapping.';
  const count = (): string | undefined => d.getValue(R + 'NAT.PortMappingNumberOfEntries');
  assert.equal(count(), '1');
  const a = d.handleRpc({ method: 'AddObject', objectName: t, parameterKey: 'add-1' });
  assert.deepEqual(a, { method: 'AddObjectResponse', instanceNumber: 2, status: 0 });
  assert.equal(count(), '2');
  assert.equal(d.getValue(R + 'ManagementServer.ParameterKey'), 'add-1');
  assert.equal(d.getValue(t + '2.ExternalPort'), '8080', 'defaults copied from the first instance');
  assert.equal(d.getValue(t + '2.Alias'), 'cpe-2');
  // the new instance is visible to GPN and GPV, and settable
  const names = d.handleRpc({ method: 'GetParameterNames', parameterPath: t, nextLevel: true });
  assert.ok(names.method === 'GetParameterNamesResponse' && names.parameterList.some((p) => p.name === t + '2.' && p.writable));
  assert.equal(
    d.handleRpc({ method: 'SetParameterValues', parameterKey: '', parameterList: [{ name: t + '2.ExternalPort', value: '2222', type: 'xsd:unsignedInt' }] })
      .method,
    'SetParameterValuesResponse',
  );
  assert.equal(d.getValue(t + '2.ExternalPort'), '2222');
  assert.deepEqual(d.handleRpc({ method: 'AddObject', objectName: t, parameterKey: '' }), { method: 'AddObjectResponse', instanceNumber: 3, status: 0 });
  // delete the template's instance and an added one
  assert.deepEqual(d.handleRpc({ method: 'DeleteObject', objectName: t + '1.', parameterKey: 'del-1' }), { method: 'DeleteObjectResponse', status: 0 });
  assert.deepEqual(d.handleRpc({ method: 'DeleteObject', objectName: t + '2.', parameterKey: '' }), { method: 'DeleteObjectResponse', status: 0 });
  assert.equal(count(), '1');
  assert.equal(d.getValue(t + '2.ExternalPort'), undefined);
  assert.equal(asFault(d.handleRpc({ method: 'GetParameterValues', parameterNames: [t + '1.'] })).faultCode, 9005);
  // numbers are not reused
  assert.deepEqual(d.handleRpc({ method: 'AddObject', objectName: t, parameterKey: '' }), { method: 'AddObjectResponse', instanceNumber: 4, status: 0 });
  assert.equal(count(), '2');
  // faults
  assert.equal(asFault(d.handleRpc({ method: 'DeleteObject', objectName: t + '1.', parameterKey: 'bad' })).faultCode, 9005, 'already deleted');
  assert.equal(asFault(d.handleRpc({ method: 'DeleteObject', objectName: t + '99.', parameterKey: '' })).faultCode, 9005);
  assert.equal(asFault(d.handleRpc({ method: 'DeleteObject', objectName: R + 'DeviceInfo.', parameterKey: '' })).faultCode, 9005);
  assert.equal(asFault(d.handleRpc({ method: 'AddObject', objectName: R + 'DeviceInfo.', parameterKey: '' })).faultCode, 9005, 'not a table');
  assert.equal(asFault(d.handleRpc({ method: 'AddObject', objectName: R + 'Nope.', parameterKey: '' })).faultCode, 9005);
  assert.equal(asFault(d.handleRpc({ method: 'AddObject', objectName: t + '3', parameterKey: '' })).faultCode, 9005);
  assert.equal(asFault(d.handleRpc({ method: 'AddObject', objectName: R + 'Hosts.Host.', parameterKey: 'bad' })).faultCode, 9001, 'read-only table');
  assert.equal(d.getValue(R + 'ManagementServer.ParameterKey'), '', 'faults leave ParameterKey alone');
});

test('AddObject on a TR-098 nested table', () => {
  const d = dev('tr098');
  const t = 'InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.PortMapping.';
  const a = d.handleRpc({ method: 'AddObject', objectName: t, parameterKey: '' });
  assert.deepEqual(a, { method: 'AddObjectResponse', instanceNumber: 2, status: 0 });
  assert.equal(d.getValue('InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.PortMappingNumberOfEntries'), '2');
  assert.equal(d.getValue(t + '2.PortMappingProtocol'), 'TCP');
  // a new WANIPConnection gets an empty PortMapping table
  const c = d.handleRpc({ method: 'AddObject', objectName: 'InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.', parameterKey: '' });
  assert.deepEqual(c, { method: 'AddObjectResponse', instanceNumber: 2, status: 0 });
  const p2 = 'InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.2.';
  assert.equal(d.getValue(p2 + 'PortMappingNumberOfEntries'), '0');
  assert.ok(d.model.has(p2 + 'PortMapping.'));
  assert.ok(!d.model.has(p2 + 'PortMapping.1.'));
  assert.equal(d.getValue('InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnectionNumberOfEntries'), '2');
});

test('Reboot, FactoryReset, Download, Upload, ScheduleInform answer and queue their action', () => {
  const d = dev();
  assert.deepEqual(d.handleRpc({ method: 'Reboot', commandKey: 'rb' }), { method: 'RebootResponse' });
  assert.deepEqual(d.handleRpc({ method: 'FactoryReset' }), { method: 'FactoryResetResponse' });
  const dl = {
    method: 'Download' as const,
    commandKey: 'dl',
    fileType: '1 Firmware Upgrade Image',
    url: 'http://127.0.0.1:1/fw.bin',
    username: '',
    password: '',
    fileSize: 0,
    targetFileName: '',
    delaySeconds: 0,
    successURL: '',
    failureURL: '',
  };
  assert.deepEqual(d.handleRpc(dl), { method: 'DownloadResponse', status: 1, startTime: '0001-01-01T00:00:00Z', completeTime: '0001-01-01T00:00:00Z' });
  const up = {
    method: 'Upload' as const,
    commandKey: 'up',
    fileType: '3 Vendor Configuration File',
    url: 'http://127.0.0.1:1/cfg',
    username: '',
    password: '',
    delaySeconds: 0,
  };
  assert.equal(d.handleRpc(up).method, 'UploadResponse');
  assert.deepEqual(d.handleRpc({ method: 'ScheduleInform', delaySeconds: 5, commandKey: 'si' }), { method: 'ScheduleInformResponse' });
  assert.deepEqual(
    d.takePostActions().map((a) => a.kind),
    ['reboot', 'factoryReset', 'download', 'upload', 'scheduleInform'],
  );
  assert.equal(asFault(d.handleRpc({ ...dl, url: 'tftp://x/fw.bin' })).faultCode, 9013);
  assert.equal(asFault(d.handleRpc({ ...dl, fileType: '9 Nonsense' })).faultCode, 9003);
  assert.equal(asFault(d.handleRpc({ method: 'ScheduleInform', delaySeconds: 0, commandKey: '' })).faultCode, 9003);
  assert.deepEqual(d.takePostActions(), []);
  assert.equal(d.stats.rpcsReceived.Download, 3);
});

test('setValue: local changes with notification on are queued as value changes', () => {
  const d = dev();
  assert.throws(() => d.setValue(R + 'Nope', '1'));
  d.handleRpc({
    method: 'SetParameterAttributes',
    parameterList: [{ name: R + 'WiFi.SSID.1.SSID', notificationChange: true, notification: 1, accessListChange: false, accessList: [] }],
  });
  d.setValue(R + 'WiFi.SSID.1.SSID', 'local');
  d.setValue(R + 'WiFi.SSID.2.SSID', 'no-notification');
  assert.equal(d.getValue(R + 'WiFi.SSID.1.SSID'), 'local');
  assert.deepEqual([...(d as unknown as { changed: Set<string> }).changed], [R + 'WiFi.SSID.1.SSID']);
  d.stop();
});
