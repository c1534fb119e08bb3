/**
 * Mapping rules of TR-098 objects with a TR-181 home (docs/mapping.md "TR-098 devices"): each test
 * builds a device from native names and values and reads the Device:2 values a controller would get.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDefaultMapping } from '../../src/mapping/load.js';
import { DeviceMapping, type NativeParamInfo } from '../../src/mapping/engine.js';

const rules = loadDefaultMapping();
const IGD = 'InternetGatewayDevice.';

/** A device listing these parameters (every ancestor object too) with these values and xsi:types. */
function device(
  values: Record<string, string>,
  types: Record<string, string> = {},
  writableObjects: readonly string[] = [],
  build: { now?: () => number; known?: ReadonlySet<string> } = {},
): { m: DeviceMapping; values: Map<string, string> } {
  const params = new Map<string, NativeParamInfo>();
  for (const [name] of Object.entries(values)) {
    const segs = name.split('.');
    for (let i = 1; i < segs.length; i++) {
      const o = `${segs.slice(0, i).join('.')}.`;
      if (!params.has(o)) params.set(o, { name: o, writable: writableObjects.includes(o) });
    }
    params.set(name, { name, writable: true, type: types[name] ?? 'xsd:string' });
  }
  const v = new Map(Object.entries(values));
  // `known`: only these values are known when the mapping is built (a live device's groupingNames()).
  const atBuild = build.known ? new Map([...v].filter(([n]) => build.known!.has(n))) : v;
  return {
    m: new DeviceMapping(rules, { deviceKey: 'rules', params: [...params.values()], values: atBuild, ...(build.now ? { now: build.now } : {}) }),
    values: v,
  };
}

const read = (d: { m: DeviceMapping; values: Map<string, string> }, p: string): string | null => d.m.nativeToUspValue(p, d.values);

test('DHCPConditionalServingPool rows are DHCPv4.Server.Pool rows beside the LAN pool', () => {
  const H = `${IGD}LANDevice.1.LANHostConfigManagement.`;
  const d = device(
    {
      [`${H}DHCPServerEnable`]: '1',
      [`${H}MinAddress`]: '192.168.1.2',
      [`${H}MaxAddress`]: '192.168.1.200',
      [`${H}DHCPConditionalServingPool.1.Enable`]: '0',
      [`${H}DHCPConditionalServingPool.1.PoolOrder`]: '2',
      [`${H}DHCPConditionalServingPool.1.VendorClassID`]: 'MSFT 5.0',
      [`${H}DHCPConditionalServingPool.1.MinAddress`]: '192.168.1.210',
      [`${H}DHCPConditionalServingPool.1.MaxAddress`]: '192.168.1.220',
    },
    {
      [`${H}DHCPServerEnable`]: 'xsd:boolean',
      [`${H}DHCPConditionalServingPool.1.Enable`]: 'xsd:boolean',
      [`${H}DHCPConditionalServingPool.1.PoolOrder`]: 'xsd:unsignedInt',
    },
  );
  const rows = d.m.uspInstances('Device.DHCPv4.Server.Pool.') ?? [];
  assert.equal(rows.length, 2);
  const [lan, cond] = rows.map((n) => `Device.DHCPv4.Server.Pool.${n}.`);
  assert.equal(read(d, `${lan}Enable`), 'true');
  assert.equal(read(d, `${lan}MinAddress`), '192.168.1.2');
  assert.equal(read(d, `${cond}Enable`), 'false');
  assert.equal(read(d, `${cond}Order`), '2');
  assert.equal(read(d, `${cond}VendorClassID`), 'MSFT 5.0');
  assert.equal(read(d, `${cond}MaxAddress`), '192.168.1.220');
  assert.equal(read(d, 'Device.DHCPv4.Server.PoolNumberOfEntries'), '2');
  assert.deepEqual(d.m.toNative(`${cond}Enable`), [`${H}DHCPConditionalServingPool.1.Enable`]);
});

test('WPS: DevicePassword is the PIN, Status from Enable, ConfigurationState and SetupLockedState', () => {
  const W = `${IGD}LANDevice.1.WLANConfiguration.`;
  const vals: Record<string, string> = {};
  const cases: [string, string, string, string][] = [
    ['false', 'Configured', 'Unlocked', 'Disabled'],
    ['true', 'Configured', 'PINRetryLimitReached', 'SetupLocked'],
    ['true', 'Not configured', 'Unlocked', 'Unconfigured'],
    ['true', 'Configured', 'Unlocked', 'Configured'],
  ];
  cases.forEach(([en, st, lock], i) => {
    vals[`${W}${i + 1}.SSID`] = `s${i}`;
    vals[`${W}${i + 1}.WPS.Enable`] = en;
    vals[`${W}${i + 1}.WPS.ConfigurationState`] = st;
    vals[`${W}${i + 1}.WPS.SetupLockedState`] = lock;
    vals[`${W}${i + 1}.WPS.DevicePassword`] = '12345670';
  });
  const d = device(vals);
  const aps = d.m.uspInstances('Device.WiFi.AccessPoint.') ?? [];
  assert.equal(aps.length, 4);
  assert.deepEqual(
    aps.map((n) => read(d, `Device.WiFi.AccessPoint.${n}.WPS.Status`)),
    cases.map((c) => c[3]),
  );
  assert.deepEqual(d.m.toNative(`Device.WiFi.AccessPoint.${aps[0]}.WPS.PIN`), [`${W}1.WPS.DevicePassword`]);
});

test('Security.EncryptionMode: the WPA and 11i encryption modes of the BeaconType in use, both ways', () => {
  const W = `${IGD}LANDevice.1.WLANConfiguration.`;
  const cases: [string, string, string, string][] = [
    ['WPAand11i', 'TKIPEncryption', 'TKIPandAESEncryption', 'TKIP,AES'],
    ['11i', 'TKIPEncryption', 'AESEncryption', 'AES'],
    ['WPA', 'TKIPEncryption', 'AESEncryption', 'TKIP'],
    ['WPAWPA2', 'AESEncryption', 'AESEncryption', 'AES'],
    ['Basic', 'AESEncryption', 'AESEncryption', ''],
  ];
  const vals: Record<string, string> = {};
  cases.forEach(([b, wpa, rsn], i) => {
    vals[`${W}${i + 1}.BeaconType`] = b;
    vals[`${W}${i + 1}.WPAEncryptionModes`] = wpa;
    vals[`${W}${i + 1}.IEEE11iEncryptionModes`] = rsn;
  });
  const d = device(vals);
  const aps = d.m.uspInstances('Device.WiFi.AccessPoint.') ?? [];
  assert.deepEqual(
    aps.map((n) => read(d, `Device.WiFi.AccessPoint.${n}.Security.EncryptionMode`)),
    cases.map((c) => c[3]),
  );
  const set = d.m.uspToNativeValue(`Device.WiFi.AccessPoint.${aps[0]}.Security.EncryptionMode`, 'AES');
  assert.deepEqual(set.map((s) => [s.path, s.value]).sort(), [
    [`${W}1.IEEE11iEncryptionModes`, 'AESEncryption'],
    [`${W}1.WPAEncryptionModes`, 'AESEncryption'],
  ]);
});

test('WAN connections: ShapingRate is a QoS.Shaper on the connection, RouteProtocolRx a RIP interface setting; none invented', () => {
  const C = `${IGD}WANDevice.1.WANConnectionDevice.`;
  const d = device(
    {
      [`${C}1.WANIPConnection.1.Enable`]: '1',
      [`${C}1.WANIPConnection.1.ShapingRate`]: '5000000',
      [`${C}1.WANIPConnection.1.ShapingBurstSize`]: '3000',
      [`${C}1.WANIPConnection.1.RouteProtocolRx`]: 'RIPv2',
      [`${C}2.WANPPPConnection.1.Enable`]: '1',
      [`${C}2.WANPPPConnection.1.RouteProtocolRx`]: 'Off',
    },
    { [`${C}1.WANIPConnection.1.ShapingRate`]: 'xsd:int', [`${C}1.WANIPConnection.1.ShapingBurstSize`]: 'xsd:unsignedInt' },
  );
  const shapers = d.m.uspInstances('Device.QoS.Shaper.') ?? [];
  assert.equal(shapers.length, 1, 'the PPP connection has no ShapingRate: no Shaper row for it');
  const s = `Device.QoS.Shaper.${shapers[0]}.`;
  assert.equal(read(d, `${s}ShapingRate`), '5000000');
  assert.equal(read(d, `${s}ShapingBurstSize`), '3000');
  const ipIf = read(d, `${s}Interface`);
  assert.match(ipIf ?? '', /^Device\.IP\.Interface\.\d+$/);
  assert.deepEqual(d.m.toNative(`${ipIf}.Enable`), [`${C}1.WANIPConnection.1.Enable`]);
  assert.equal(read(d, 'Device.QoS.ShaperNumberOfEntries'), '1');
  const rip = d.m.uspInstances('Device.Routing.RIP.InterfaceSetting.') ?? [];
  assert.equal(rip.length, 2);
  assert.deepEqual(
    rip.map((n) => [read(d, `Device.Routing.RIP.InterfaceSetting.${n}.Enable`), read(d, `Device.Routing.RIP.InterfaceSetting.${n}.AcceptRA`)]),
    [
      ['true', 'true'],
      ['false', 'false'],
    ],
  );
});

test('Time.LocalTimeZone is the POSIX TZ of LocalTimeZoneName, not the obsoleted offset LocalTimeZone', () => {
  const d = device({ [`${IGD}Time.LocalTimeZone`]: '+01:00', [`${IGD}Time.LocalTimeZoneName`]: 'CET-1CEST,M3.5.0,M10.5.0/3' });
  assert.equal(read(d, 'Device.Time.LocalTimeZone'), 'CET-1CEST,M3.5.0,M10.5.0/3');
  assert.equal(d.m.toUsp(`${IGD}Time.LocalTimeZone`), null);
});

test('USB interfaces of a LANDevice and of LANInterfaces are Device.USB.Interface rows', () => {
  const d = device({
    [`${IGD}LANDevice.1.LANUSBInterfaceConfig.1.Enable`]: 'true',
    [`${IGD}LANDevice.1.LANUSBInterfaceConfig.1.Status`]: 'NoLink',
    [`${IGD}LANDevice.1.LANUSBInterfaceConfig.1.Stats.BytesSent`]: '42',
    [`${IGD}LANInterfaces.LANUSBInterfaceConfig.1.Status`]: 'Up',
  });
  const rows = d.m.uspInstances('Device.USB.Interface.') ?? [];
  assert.equal(rows.length, 2);
  assert.deepEqual(
    rows.map((n) => read(d, `Device.USB.Interface.${n}.Status`)),
    ['Down', 'Up'],
  );
  assert.equal(read(d, `Device.USB.Interface.${rows[0]}.Stats.BytesSent`), '42');
  assert.equal(read(d, 'Device.USB.InterfaceNumberOfEntries'), '2');
});

test('a DSL WAN connection device: WANDSLLinkConfig is an ATM.Link, WANPTMLinkConfig a PTM.Link', () => {
  const C = `${IGD}WANDevice.1.WANConnectionDevice.`;
  const d = device({
    [`${C}1.WANDSLLinkConfig.Enable`]: '1',
    [`${C}1.WANDSLLinkConfig.LinkStatus`]: 'Initializing',
    [`${C}1.WANDSLLinkConfig.LinkType`]: 'PPPoE',
    [`${C}1.WANDSLLinkConfig.DestinationAddress`]: 'PVC: 8/35',
    [`${C}1.WANDSLLinkConfig.ATMEncapsulation`]: 'LLC',
    [`${C}1.WANDSLLinkConfig.ATMQoS`]: 'UBR',
    [`${C}1.WANDSLLinkConfig.ATMHECErrors`]: '7',
    [`${C}2.WANPTMLinkConfig.LinkStatus`]: 'Up',
    [`${C}2.WANPTMLinkConfig.MACAddress`]: '00:11:22:33:44:55',
    [`${C}2.WANPTMLinkConfig.Stats.FramesSent`]: '1234',
  });
  const atm = d.m.uspInstances('Device.ATM.Link.') ?? [];
  assert.equal(atm.length, 1);
  const a = `Device.ATM.Link.${atm[0]}.`;
  assert.equal(read(d, `${a}Status`), 'Dormant');
  assert.equal(read(d, `${a}LinkType`), 'EoA', 'PPPoE over ATM is EoA in TR-181 (the PPP part is PPP.Interface)');
  assert.equal(read(d, `${a}DestinationAddress`), 'PVC: 8/35');
  assert.equal(read(d, `${a}Encapsulation`), 'LLC');
  assert.equal(read(d, `${a}QoS.QoSClass`), 'UBR');
  assert.equal(read(d, `${a}Stats.HECErrors`), '7');
  const ptm = d.m.uspInstances('Device.PTM.Link.') ?? [];
  assert.equal(ptm.length, 1);
  assert.equal(read(d, `Device.PTM.Link.${ptm[0]}.Status`), 'Up');
  assert.equal(read(d, `Device.PTM.Link.${ptm[0]}.Stats.PacketsSent`), '1234');
  assert.equal(read(d, 'Device.ATM.LinkNumberOfEntries'), '1');
});

test('a WANDevice whose WANAccessType is a PON is an Optical.Interface (its common counters as Stats); other WANDevices are not', () => {
  const W = `${IGD}WANDevice.`;
  const d = device({
    [`${W}1.WANCommonInterfaceConfig.WANAccessType`]: 'GPON',
    [`${W}1.WANCommonInterfaceConfig.PhysicalLinkStatus`]: 'Up',
    [`${W}1.WANCommonInterfaceConfig.TotalBytesSent`]: '12459761',
    [`${W}2.WANCommonInterfaceConfig.WANAccessType`]: 'DSL',
    [`${W}2.WANCommonInterfaceConfig.TotalBytesSent`]: '1',
  });
  const rows = d.m.uspInstances('Device.Optical.Interface.') ?? [];
  assert.equal(rows.length, 1);
  assert.equal(read(d, `Device.Optical.Interface.${rows[0]}.Status`), 'Up');
  assert.equal(read(d, `Device.Optical.Interface.${rows[0]}.Stats.BytesSent`), '12459761');
  assert.equal(d.m.toUsp(`${W}2.WANCommonInterfaceConfig.TotalBytesSent`), null);
  // The names the row filter needs are read when the mapping is built, like the band grouping's.
  assert.deepEqual(DeviceMapping.groupingNames(rules, [`${W}1.WANCommonInterfaceConfig.WANAccessType`, `${W}1.WANCommonInterfaceConfig.TotalBytesSent`]), [
    `${W}1.WANCommonInterfaceConfig.WANAccessType`,
  ]);
  // Not known (not read): no row.
  const unknown = device({ [`${W}1.WANCommonInterfaceConfig.TotalBytesSent`]: '5' });
  assert.deepEqual(unknown.m.uspInstances('Device.Optical.Interface.'), []);
});

test('QueueManagement tables are QoS tables: the Class/Queue/Policer prefixes dropped, the same names kept', () => {
  const Q = `${IGD}QueueManagement.`;
  const d = device({
    [`${Q}ClassificationNumberOfEntries`]: '1',
    [`${Q}Classification.1.ClassificationEnable`]: 'true',
    [`${Q}Classification.1.ClassificationOrder`]: '1',
    [`${Q}Classification.1.DSCPMark`]: '46',
    [`${Q}Classification.1.ClassPolicer`]: '7',
    [`${Q}DefaultQueue`]: '3',
    [`${Q}Queue.1.QueueKey`]: '3',
    [`${Q}Queue.1.QueueWeight`]: '10',
    [`${Q}Policer.1.PolicerKey`]: '7',
    [`${Q}Queue.1.TrafficClasses`]: '1,2',
    [`${Q}Policer.1.PolicerStatus`]: 'Enabled',
    [`${Q}Policer.1.CommittedRate`]: '1000000',
  });
  const c = `Device.QoS.Classification.${(d.m.uspInstances('Device.QoS.Classification.') ?? [])[0]}.`;
  assert.equal(read(d, `${c}Enable`), 'true');
  assert.equal(read(d, `${c}Order`), '1');
  assert.equal(read(d, `${c}DSCPMark`), '46');
  const q = `Device.QoS.Queue.${(d.m.uspInstances('Device.QoS.Queue.') ?? [])[0]}.`;
  const pol = `Device.QoS.Policer.${(d.m.uspInstances('Device.QoS.Policer.') ?? [])[0]}`;
  // TR-098 names the policer and queue by their key's number, TR-181 by reference: the row with that key.
  assert.equal(read(d, `${c}Policer`), pol);
  assert.equal(read(d, 'Device.QoS.DefaultQueue'), q.slice(0, -1));
  assert.ok(d.m.toNative(`${c}Policer`)!.includes(`${Q}Policer.1.PolicerKey`), 'the keys are read with the reference');
  assert.throws(() => d.m.uspToNativeValue(`${c}Policer`, pol), /read-only/);
  // A key no row has: the empty reference, nothing invented.
  d.values.set(`${Q}Classification.1.ClassPolicer`, '-1');
  assert.equal(read(d, `${c}Policer`), '');
  assert.equal(read(d, `${q}Weight`), '10');
  assert.equal(read(d, `${q}TrafficClasses`), '1,2');
  const p = `Device.QoS.Policer.${(d.m.uspInstances('Device.QoS.Policer.') ?? [])[0]}.`;
  assert.equal(read(d, `${p}Status`), 'Enabled');
  assert.equal(read(d, `${p}CommittedRate`), '1000000');
  assert.equal(read(d, 'Device.QoS.ClassificationNumberOfEntries'), '1');
});

test('objects TR-098 shares with TR-181 (XMPP, FaultMgmt, PeriodicStatistics, UPnP...) keep their names; path-valued parameters are not presented', () => {
  const d = device({
    [`${IGD}XMPP.Connection.1.Domain`]: 'example.com',
    [`${IGD}XMPP.Connection.1.Server.2.ServerAddress`]: 'xmpp.example.com',
    [`${IGD}XMPP.Connection.1.Stats.ReceivedMessages`]: '12',
    [`${IGD}FaultMgmt.CurrentAlarm.1.ManagedObjectInstance`]: `${IGD}WANDevice.1.`,
    [`${IGD}FaultMgmt.CurrentAlarm.1.PerceivedSeverity`]: 'Major',
    [`${IGD}PeriodicStatistics.SampleSet.1.Parameter.1.Reference`]: `${IGD}DeviceInfo.UpTime`,
    [`${IGD}PeriodicStatistics.SampleSet.1.Parameter.1.Values`]: '1,2,3',
  });
  const x = `Device.XMPP.Connection.${(d.m.uspInstances('Device.XMPP.Connection.') ?? [])[0]}.`;
  assert.equal(read(d, `${x}Domain`), 'example.com');
  assert.equal(read(d, `${x}Stats.ReceivedMessages`), '12');
  const servers = d.m.uspInstances(`${x}Server.`) ?? [];
  assert.equal(read(d, `${x}Server.${servers[0]}.ServerAddress`), 'xmpp.example.com');
  const a = `Device.FaultMgmt.CurrentAlarm.${(d.m.uspInstances('Device.FaultMgmt.CurrentAlarm.') ?? [])[0]}.`;
  assert.equal(read(d, `${a}PerceivedSeverity`), 'Major');
  assert.equal(d.m.has(`${a}ManagedObjectInstance`), false, 'a TR-098 path is no Device:2 value');
  const s = `Device.PeriodicStatistics.SampleSet.${(d.m.uspInstances('Device.PeriodicStatistics.SampleSet.') ?? [])[0]}.`;
  const p = `${s}Parameter.${(d.m.uspInstances(`${s}Parameter.`) ?? [])[0]}.`;
  assert.equal(read(d, `${p}Values`), '1,2,3');
  assert.equal(d.m.has(`${p}Reference`), false);
});

test('Layer2Bridging Port and VLAN rows are Bridging Port and VLAN rows; a Host InterfaceType in TR-181 words', () => {
  const B = `${IGD}Layer2Bridging.Bridge.1.`;
  const d = device({
    [`${B}BridgeEnable`]: 'true',
    [`${B}Port.1.PortEnable`]: '1',
    [`${B}Port.1.PVID`]: '10',
    // An AvailableInterfaceKey, not a path: not presented as LowerLayers.
    [`${B}Port.1.PortInterface`]: '3',
    [`${B}VLAN.1.VLANName`]: 'iptv',
    [`${B}VLAN.1.VLANID`]: '100',
    [`${IGD}LANDevice.1.Hosts.Host.1.InterfaceType`]: '802.11',
    [`${IGD}LANDevice.1.Hosts.Host.2.InterfaceType`]: 'USB',
  });
  const br = `Device.Bridging.Bridge.${(d.m.uspInstances('Device.Bridging.Bridge.') ?? [])[0]}.`;
  const port = `${br}Port.${(d.m.uspInstances(`${br}Port.`) ?? [])[0]}.`;
  assert.equal(read(d, `${port}Enable`), 'true');
  assert.equal(read(d, `${port}PVID`), '10');
  assert.equal(d.m.has(`${port}LowerLayers`), false);
  const vlan = `${br}VLAN.${(d.m.uspInstances(`${br}VLAN.`) ?? [])[0]}.`;
  assert.equal(read(d, `${vlan}Name`), 'iptv');
  assert.equal(read(d, `${br}PortNumberOfEntries`), '1');
  const hosts = d.m.uspInstances('Device.Hosts.Host.') ?? [];
  assert.deepEqual(
    hosts.map((n) => read(d, `Device.Hosts.Host.${n}.InterfaceType`)),
    ['Wi-Fi', 'Other'],
  );
});

test('TR-104 v1 voice profile and line as TR-104 v2: Enable enumeration, Extension, ResponseMap, EventSubscribe, tone events', () => {
  const VS = `${IGD}Services.VoiceService.1.`;
  const P = `${VS}VoiceProfile.1.`;
  const L = `${P}Line.1.`;
  const d = device(
    {
      [`${P}Enable`]: 'Quiescent',
      [`${P}SIP.ResponseMap.1.SIPResponseNumber`]: '486',
      [`${P}SIP.ResponseMap.1.TextMessage`]: 'Busy',
      [`${P}SIP.ResponseMap.1.Tone`]: '3',
      [`${P}Tone.Description.1.EntryID`]: '3',
      [`${P}Tone.Description.1.ToneName`]: 'busy',
      [`${P}SIP.EventSubscribe.1.Event`]: 'message-summary',
      [`${P}SIP.EventSubscribe.1.NotifierPort`]: '5060',
      [`${P}Tone.Event.1.Function`]: 'MessageWaiting',
      [`${P}Tone.Event.2.Function`]: 'Busy',
      [`${P}NumberingPlan.PrefixInfoNumberOfEntries`]: '1',
      [`${P}NumberingPlan.PrefixInfo.1.PrefixRange`]: '00',
      [`${L}Enable`]: 'Disabled',
      [`${L}DirectoryNumber`]: '5551234',
      [`${L}SIP.EventSubscribe.1.Event`]: 'message-summary',
      [`${L}CallingFeatures.CallerIDName`]: 'Front desk',
      [`${L}CallingFeatures.CallWaitingStatus`]: 'Idle',
      [`${L}CallingFeatures.AnonymousCalEnable`]: '1',
      [`${L}CallingFeatures.AnonymousCallBlockEnable`]: '0',
    },
    { [`${L}CallingFeatures.AnonymousCalEnable`]: 'xsd:boolean', [`${L}CallingFeatures.AnonymousCallBlockEnable`]: 'xsd:boolean' },
  );
  const V = 'Device.Services.VoiceService.1.';
  // TR-104 v1 Enable is Disabled/Quiescent/Enabled; v2 has a boolean Enable and a QuiescentMode.
  assert.equal(read(d, `${V}SIP.Network.1.Enable`), 'false');
  assert.equal(read(d, `${V}SIP.Network.1.QuiescentMode`), 'true');
  assert.equal(read(d, `${V}VoIPProfile.1.Enable`), 'false');
  assert.equal(read(d, `${V}CallControl.Line.1.Enable`), 'false');
  assert.equal(read(d, `${V}CallControl.Line.1.QuiescentMode`), 'false');
  assert.deepEqual(d.m.uspToNativeValue(`${V}CallControl.Line.1.Enable`, 'true'), [{ path: `${L}Enable`, value: 'Enabled', type: 'xsd:string' }]);
  assert.throws(() => d.m.uspToNativeValue(`${V}CallControl.Line.1.QuiescentMode`, 'true'), /read-only/);
  // The user side of a v1 line is a v2 Extension: its caller ID name and call-waiting state.
  assert.equal(read(d, `${V}CallControl.Extension.1.Name`), 'Front desk');
  assert.equal(read(d, `${V}CallControl.Extension.1.CallWaitingStatus`), 'Idle');
  assert.equal(read(d, `${V}CallControl.Extension.1.CallingFeatures`), `${V}CallControl.CallingFeatures.Set.1`);
  assert.equal(read(d, `${V}CallControl.CallingFeatures.Set.1.AnonymousCallEnable`), 'true');
  assert.equal(read(d, `${V}CallControl.CallingFeatures.Set.1.AnonymousCallRejectionEnable`), 'false');
  assert.equal(read(d, `${V}SIP.Network.1.ResponseMap.1.SIPResponseNumber`), '486');
  assert.equal(read(d, `${V}SIP.Network.1.ResponseMapNumberOfEntries`), '1');
  // The v1 Tone is the EntryID number of a Tone.Description row, v2's a reference to that row.
  assert.equal(read(d, `${V}SIP.Network.1.ResponseMap.1.Tone`), `${V}Tone.Description.1`);
  assert.equal(read(d, `${V}SIP.Network.1.EventSubscribe.1.NotifierPort`), '5060');
  assert.equal(read(d, `${V}SIP.Client.1.EventSubscribe.1.Event`), 'message-summary');
  assert.equal(read(d, `${V}SIP.Client.1.SIPEventSubscribeNumberOfEntries`), '1');
  assert.equal(read(d, `${V}Tone.EventProfile.1.Event.1.Function`), 'LineMessagesWaiting');
  assert.equal(read(d, `${V}Tone.EventProfile.1.EventNumberOfEntries`), '2');
  assert.equal(read(d, `${V}CallControl.NumberingPlan.1.PrefixInfo.1.PrefixRange`), '00');
  assert.equal(read(d, `${V}CallControl.NumberingPlan.1.PrefixInfoNumberOfEntries`), '1');
  // Per-call RTP figures are no Line.Stats.RTP names in TR-104 v2.
  assert.equal(d.m.toNative(`${V}CallControl.Line.1.Stats.RTP.RoundTripDelay`), null);
});

test('keyRef: EntryID numbers are unique per TR-104 v1 voice profile, so the reference is the row in the same profile', () => {
  const VS = `${IGD}Services.VoiceService.1.`;
  const d = device({
    [`${VS}VoiceProfile.1.Tone.Description.1.EntryID`]: '1',
    [`${VS}VoiceProfile.1.Tone.TonePattern.1.EntryID`]: '1',
    [`${VS}VoiceProfile.1.Tone.TonePattern.1.NextEntryID`]: '1',
    [`${VS}VoiceProfile.2.Tone.Description.1.EntryID`]: '1',
    [`${VS}VoiceProfile.2.Tone.Description.1.TonePattern`]: '1',
    [`${VS}VoiceProfile.2.Tone.TonePattern.1.EntryID`]: '1',
    [`${VS}VoiceProfile.2.Tone.TonePattern.1.NextEntryID`]: '0',
  });
  const V = 'Device.Services.VoiceService.1.Tone.';
  const rows = d.m.uspInstances(`${V}Pattern.`) ?? [];
  assert.equal(rows.length, 2);
  const pattern = (profile: number) => rows.map((n) => `${V}Pattern.${n}`).find((u) => d.m.toNative(`${u}.`)?.[0]?.includes(`VoiceProfile.${profile}.`))!;
  const desc2 = (d.m.uspInstances(`${V}Description.`) ?? [])
    .map((n) => `${V}Description.${n}.`)
    .find((u) => d.m.toNative(u)?.[0]?.includes('VoiceProfile.2.'))!;
  assert.equal(read(d, `${desc2}TonePattern`), pattern(2));
  assert.equal(read(d, `${pattern(1)}.NextPattern`), pattern(1));
  // NextEntryID 0: the pattern ends (TR-104 v1), the empty reference in v2.
  assert.equal(read(d, `${pattern(2)}.NextPattern`), '');
});

test('WANDSLInterfaceConfig interval statistics are DSL.Line (errored seconds) and DSL.Channel (FEC/HEC/CRC) statistics', () => {
  const D = `${IGD}WANDevice.1.WANDSLInterfaceConfig.`;
  const d = device({
    [`${D}Status`]: 'Up',
    [`${D}Stats.Total.ErroredSecs`]: '12',
    [`${D}Stats.Total.SeverelyErroredSecs`]: '3',
    [`${D}Stats.Total.FECErrors`]: '100',
    [`${D}Stats.Total.ATUCFECErrors`]: '101',
    [`${D}Stats.Total.HECErrors`]: '5',
    [`${D}Stats.Total.ATUCCRCErrors`]: '9',
    [`${D}Stats.QuarterHour.CRCErrors`]: '2',
    [`${D}Stats.Showtime.ErroredSecs`]: '1',
  });
  const line = `Device.DSL.Line.${(d.m.uspInstances('Device.DSL.Line.') ?? [])[0]}.`;
  const ch = `Device.DSL.Channel.${(d.m.uspInstances('Device.DSL.Channel.') ?? [])[0]}.`;
  assert.equal(read(d, `${line}Stats.Total.ErroredSecs`), '12');
  assert.equal(read(d, `${line}Stats.Total.SeverelyErroredSecs`), '3');
  assert.equal(read(d, `${line}Stats.Showtime.ErroredSecs`), '1');
  // TR-098's near-end (ATU-R) counters are TR-181's XTUR ones, the ATUC ones its XTUC ones.
  assert.equal(read(d, `${ch}Stats.Total.XTURFECErrors`), '100');
  assert.equal(read(d, `${ch}Stats.Total.XTUCFECErrors`), '101');
  assert.equal(read(d, `${ch}Stats.Total.XTURHECErrors`), '5');
  assert.equal(read(d, `${ch}Stats.Total.XTUCCRCErrors`), '9');
  assert.equal(read(d, `${ch}Stats.QuarterHour.XTURCRCErrors`), '2');
  assert.throws(() => d.m.uspToNativeValue(`${ch}Stats.Total.XTURFECErrors`, '0'), /read-only/);
});

test('LAN hosts that took their address by DHCP are the clients of the LAN pool (TR-181 2.2 deleted Host.AddressSource)', () => {
  const L = `${IGD}LANDevice.1.`;
  const values: Record<string, string> = {
    [`${L}LANHostConfigManagement.DHCPServerEnable`]: 'true',
    [`${L}LANHostConfigManagement.DHCPConditionalServingPool.1.Enable`]: 'true',
    [`${L}Hosts.Host.1.AddressSource`]: 'DHCP',
    [`${L}Hosts.Host.1.MACAddress`]: '40:B0:FA:9C:4A:50',
    [`${L}Hosts.Host.1.IPAddress`]: '192.168.1.2',
    [`${L}Hosts.Host.1.LeaseTimeRemaining`]: '65444',
    [`${L}Hosts.Host.1.Active`]: '1',
    [`${L}Hosts.Host.2.AddressSource`]: 'Static',
    [`${L}Hosts.Host.2.MACAddress`]: '20:10:7a:08:4d:43',
    [`${L}Hosts.Host.2.IPAddress`]: '192.168.1.3',
    [`${L}Hosts.Host.2.LeaseTimeRemaining`]: '0',
    [`${L}Hosts.Host.3.AddressSource`]: 'DHCP',
    [`${L}Hosts.Host.3.MACAddress`]: 'C0:14:3D:C0:CF:93',
    [`${L}Hosts.Host.3.IPAddress`]: '192.168.1.5',
    [`${L}Hosts.Host.3.LeaseTimeRemaining`]: '-1',
  };
  const types = Object.fromEntries(
    Object.keys(values).flatMap((n) => (n.endsWith('LeaseTimeRemaining') ? [[n, 'xsd:int']] : n.endsWith('Active') ? [[n, 'xsd:boolean']] : [])),
  );
  // Only the values groupingNames() asks for are known when the mapping is built (as on a live device).
  const known = new Set(DeviceMapping.groupingNames(rules, Object.keys(values)));
  assert.ok(known.has(`${L}Hosts.Host.2.AddressSource`));
  const now = Date.parse('2026-12-05T10:00:00Z');
  const { m, values: v } = device(values, types, [], { known, now: () => now + 400 });
  const pools = (m.uspInstances('Device.DHCPv4.Server.Pool.') ?? []).map((n) => `Device.DHCPv4.Server.Pool.${n}.`);
  assert.equal(pools.length, 2);
  const [lan, cond] = pools as [string, string];
  assert.deepEqual(m.uspInstances(`${cond}Client.`), []);
  const clients = (m.uspInstances(`${lan}Client.`) ?? []).map((n) => `${lan}Client.${n}.`);
  assert.equal(clients.length, 2, 'hosts 1 and 3: DHCP; host 2 is static');
  assert.equal(m.nativeToUspValue(`${lan}ClientNumberOfEntries`, v), '2');
  assert.equal(m.nativeToUspValue(`${clients[0]}Chaddr`, v), '40:B0:FA:9C:4A:50');
  assert.equal(m.nativeToUspValue(`${clients[0]}Active`, v), 'true');
  assert.equal(m.nativeToUspValue(`${clients[0]}IPv4AddressNumberOfEntries`, v), '1');
  assert.equal(m.nativeToUspValue(`${clients[0]}IPv4Address.1.IPAddress`, v), '192.168.1.2');
  // 65444 s from the read (whole seconds): 2026-12-06T04:10:44Z.
  assert.equal(m.nativeToUspValue(`${clients[0]}IPv4Address.1.LeaseTimeRemaining`, v), '2026-12-06T04:10:44Z');
  assert.equal(m.nativeToUspValue(`${clients[1]}IPv4Address.1.LeaseTimeRemaining`, v), '9999-12-31T23:59:59Z', '-1: infinite lease');
  const lease = m.supportedModel().find((o) => o.path === 'Device.DHCPv4.Server.Pool.{i}.Client.{i}.IPv4Address.{i}.')!;
  assert.deepEqual(
    lease.params.map((p) => [p.name, p.type, p.writable]),
    [
      ['IPAddress', 'string', false],
      ['LeaseTimeRemaining', 'dateTime', false],
    ],
  );
  // Each host says which client it is; the static one is none.
  const hosts = (m.uspInstances('Device.Hosts.Host.') ?? []).map((n) => `Device.Hosts.Host.${n}.`);
  assert.deepEqual(
    hosts.map((h) => m.nativeToUspValue(`${h}DHCPClient`, v)),
    [clients[0]!.slice(0, -1), '', clients[1]!.slice(0, -1)],
  );
  // AddressSource is placed (it decides the rows), the static host's lease is not.
  const placed = m.reachableNativeParams();
  assert.ok(placed.has(`${L}Hosts.Host.2.AddressSource`));
  assert.ok(placed.has(`${L}Hosts.Host.1.LeaseTimeRemaining`));
  assert.ok(!placed.has(`${L}Hosts.Host.2.LeaseTimeRemaining`));
});

test('a parameter may come from a sibling object ("../"): TR-098 keeps the diagnostics transports under Capabilities', () => {
  const d = device({
    [`${IGD}DownloadDiagnostics.DiagnosticsState`]: 'None',
    [`${IGD}Capabilities.PerformanceDiagnostic.DownloadTransports`]: 'HTTP,FTP',
  });
  assert.equal(read(d, 'Device.IP.Diagnostics.DownloadDiagnostics.DownloadTransports'), 'HTTP,FTP');
  assert.deepEqual(d.m.toNative('Device.IP.Diagnostics.DownloadDiagnostics.DownloadTransports'), [
    `${IGD}Capabilities.PerformanceDiagnostic.DownloadTransports`,
  ]);
});

test('an empty DNSServers is zero DNS.Client.Server rows, and placed as such', () => {
  const W = `${IGD}WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.`;
  const d = device({ [`${W}DNSServers`]: '', [`${W}DNSEnabled`]: 'true', [`${W}Enable`]: 'true' });
  assert.deepEqual(d.m.uspInstances('Device.DNS.Client.Server.'), []);
  assert.ok(d.m.reachableNativeParams().has(`${W}DNSServers`));
});

test('AccessPoint.Security.WEPKey is the key WEPKeyIndex selects; a Set writes key 1 and selects it', () => {
  const W = `${IGD}LANDevice.1.WLANConfiguration.1.`;
  const d = device(
    {
      [`${W}SSID`]: 'lab',
      [`${W}WEPKeyIndex`]: '2',
      [`${W}WEPKey.1.WEPKey`]: '0102030405',
      [`${W}WEPKey.2.WEPKey`]: '0a0b0c0d0e',
      [`${W}WEPKey.3.WEPKey`]: '',
      [`${W}WEPKey.4.WEPKey`]: '',
    },
    { [`${W}WEPKeyIndex`]: 'xsd:unsignedInt' },
  );
  const ap = `Device.WiFi.AccessPoint.${d.m.uspInstances('Device.WiFi.AccessPoint.')![0]}.Security.`;
  assert.equal(read(d, `${ap}WEPKey`), '0a0b0c0d0e');
  assert.deepEqual(
    d.m.uspToNativeValue(`${ap}WEPKey`, '1122334455').map((s) => [s.path, s.value]),
    [
      [`${W}WEPKey.1.WEPKey`, '1122334455'],
      [`${W}WEPKeyIndex`, '1'],
    ],
  );
});

test('TR-104 v1 lines: call state, message waiting, the FXS port a line uses (PhyReferenceList -> InterfaceID)', () => {
  const V = `${IGD}Services.VoiceService.1.`;
  const L = `${V}VoiceProfile.1.Line.1.`;
  const d = device({
    [`${V}PhyInterface.1.InterfaceID`]: '1',
    [`${V}PhyInterface.1.Description`]: 'TEL1',
    [`${V}PhyInterface.1.Tests.TestState`]: 'Error_TestNotSupported',
    [`${V}PhyInterface.1.Tests.TestSelector`]: 'PhoneConnectivityTest',
    [`${V}PhyInterface.2.InterfaceID`]: '2',
    [`${V}PhyInterface.2.Description`]: 'TEL2',
    [`${L}Enable`]: 'Enabled',
    [`${L}CallState`]: 'InCall',
    [`${L}PhyReferenceList`]: '2',
    [`${L}CallingFeatures.MessageWaiting`]: 'true',
  });
  const fxs = (d.m.uspInstances('Device.Services.VoiceService.1.POTS.FXS.') ?? []).map((n) => `Device.Services.VoiceService.1.POTS.FXS.${n}.`);
  assert.deepEqual(
    fxs.map((f) => read(d, `${f}Name`)),
    ['TEL1', 'TEL2'],
  );
  assert.equal(read(d, 'Device.Services.VoiceService.1.POTS.FXSNumberOfEntries'), '2');
  assert.equal(read(d, `${fxs[0]}DiagTests.DiagnosticsState`), 'Error_Other');
  assert.equal(read(d, `${fxs[0]}DiagTests.TestSelector`), 'PhoneConnectivityTest');
  const line = `Device.Services.VoiceService.1.CallControl.Line.${d.m.uspInstances('Device.Services.VoiceService.1.CallControl.Line.')![0]}.`;
  assert.equal(read(d, `${line}CallStatus`), 'Connected');
  const ext = `Device.Services.VoiceService.1.CallControl.Extension.${d.m.uspInstances('Device.Services.VoiceService.1.CallControl.Extension.')![0]}.`;
  assert.equal(read(d, `${ext}Provider`), fxs[1]!.slice(0, -1));
  const set = `Device.Services.VoiceService.1.CallControl.CallingFeatures.Set.${d.m.uspInstances('Device.Services.VoiceService.1.CallControl.CallingFeatures.Set.')![0]}.`;
  assert.equal(read(d, `${set}LineMessagesWaiting`), 'true');
  // The FXS InterfaceIDs are placed: the Extension's Provider reference says them.
  assert.ok(d.m.reachableNativeParams().has(`${V}PhyInterface.2.InterfaceID`));
});

test('a WAN IP connection addressed by DHCP is a DHCPv4 client (IPRouters from DefaultGateway); a static one is not', () => {
  const C = `${IGD}WANDevice.1.WANConnectionDevice.1.`;
  const d = device(
    {
      [`${C}WANIPConnection.1.AddressingType`]: 'DHCP',
      [`${C}WANIPConnection.1.ExternalIPAddress`]: '172.16.0.23',
      [`${C}WANIPConnection.1.SubnetMask`]: '255.255.255.0',
      [`${C}WANIPConnection.1.DefaultGateway`]: '172.16.0.1',
      [`${C}WANIPConnection.1.DNSServers`]: '9.9.9.9,1.1.1.1',
      [`${C}WANIPConnection.1.DHCPClient.ReqDHCPOption.1.Tag`]: '42',
      [`${C}WANIPConnection.2.AddressingType`]: 'Static',
      [`${C}WANIPConnection.2.DefaultGateway`]: '10.0.0.1',
    },
    {},
    [`${C}WANIPConnection.`],
  );
  // The native WANIPConnection table is writable (AddObject/DeleteObject); the DHCP clients still cannot be deleted (below).
  assert.equal(d.m.supportedModel().find((o) => o.path === 'Device.IP.Interface.{i}.')?.writable, false, 'two native tables: no Add');
  const rows = (d.m.uspInstances('Device.DHCPv4.Client.') ?? []).map((n) => `Device.DHCPv4.Client.${n}.`);
  assert.equal(rows.length, 1);
  const [c] = rows as [string];
  assert.equal(read(d, `${c}IPRouters`), '172.16.0.1');
  assert.equal(read(d, `${c}IPAddress`), '172.16.0.23');
  assert.equal(read(d, `${c}DNSServers`), '9.9.9.9,1.1.1.1');
  assert.equal(read(d, `${c}ReqOptionNumberOfEntries`), '1');
  assert.match(read(d, `${c}Interface`) ?? '', /^Device\.IP\.Interface\.\d+$/);
  // No Add/Delete: deleting the client must not delete the WAN connection.
  assert.equal(d.m.supportedModel().find((o) => o.path === 'Device.DHCPv4.Client.{i}.')?.writable, false);
});

test('a Huawei PON ONT: X_GponInterafceConfig optics as Optical.Interface levels and an XPON ANI transceiver, in TR-181 units', () => {
  const W = `${IGD}WANDevice.1.`;
  const d = device(
    {
      [`${W}WANCommonInterfaceConfig.WANAccessType`]: 'GPON',
      [`${W}WANCommonInterfaceConfig.PhysicalLinkStatus`]: 'Up',
      [`${W}X_GponInterafceConfig.Status`]: 'Up',
      [`${W}X_GponInterafceConfig.RXPower`]: '-3',
      [`${W}X_GponInterafceConfig.TXPower`]: '2',
      [`${W}X_GponInterafceConfig.SupplyVoltage`]: '3415',
      [`${W}X_GponInterafceConfig.BiasCurrent`]: '7',
      [`${W}X_GponInterafceConfig.TransceiverTemperature`]: '45',
    },
    Object.fromEntries(
      ['RXPower', 'TXPower', 'SupplyVoltage', 'BiasCurrent', 'TransceiverTemperature'].map((n) => [`${W}X_GponInterafceConfig.${n}`, 'xsd:int']),
    ),
  );
  // dBm -> 0.001 dBm (Optical.Interface), 0.1 dBm (Transceiver); mA -> uA; mV and degrees as they are.
  assert.equal(read(d, 'Device.Optical.Interface.1.OpticalSignalLevel'), '-3000');
  assert.equal(read(d, 'Device.Optical.Interface.1.TransmitOpticalLevel'), '2000');
  assert.equal(read(d, 'Device.XPON.ONUNumberOfEntries'), '1');
  assert.equal(read(d, 'Device.XPON.ONU.1.ANI.1.Status'), 'Up');
  const t = 'Device.XPON.ONU.1.ANI.1.Transceiver.1.';
  assert.deepEqual(
    ['RxPower', 'TxPower', 'Voltage', 'Bias', 'Temperature'].map((n) => read(d, t + n)),
    ['-30', '20', '3415', '7000', '45'],
  );
});

test('a WAN device whose access type is not a PON has no XPON ONU', () => {
  const d = device({ [`${IGD}WANDevice.1.WANCommonInterfaceConfig.WANAccessType`]: 'DSL' });
  assert.deepEqual(d.m.uspInstances('Device.XPON.ONU.'), []);
});
