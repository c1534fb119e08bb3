/**
 * Radios as radios (TR-181 WiFi.Radio: one row per physical radio): TR-098 WLANConfigurations are
 * grouped by band from a vendor band parameter, Channel, PossibleChannels or Standard; every SSID's
 * LowerLayers names its band's Radio; OperatingFrequencyBand is derived when the device does not say
 * it; a Set on a Radio writes every WLANConfiguration of that radio.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bandOf } from '../../src/mapping/band.js';
import { DeviceMapping, type NativeParamInfo } from '../../src/mapping/engine.js';
import { loadDefaultMapping } from '../../src/mapping/load.js';

const rules = loadDefaultMapping();
const LAN = 'InternetGatewayDevice.LANDevice.1.';

/** A gateway with 8 SSIDs on 2 radios (channels 1,1,1,1,161,161,161,161), as two vendors present it. */
function eightSsids(values: (i: number) => Record<string, string>): { params: NativeParamInfo[]; values: Map<string, string> } {
  const params: NativeParamInfo[] = [
    { name: 'InternetGatewayDevice.', writable: false },
    { name: LAN, writable: false },
    { name: `${LAN}WLANConfiguration.`, writable: false },
  ];
  const vals = new Map<string, string>();
  for (let i = 1; i <= 8; i++) {
    const w = `${LAN}WLANConfiguration.${i}.`;
    params.push({ name: w, writable: false });
    params.push({ name: `${w}SSID`, writable: true, type: 'xsd:string' });
    params.push({ name: `${w}Enable`, writable: true, type: 'xsd:boolean' });
    vals.set(`${w}SSID`, `ssid-${i}`);
    for (const [k, v] of Object.entries(values(i))) {
      params.push({ name: w + k, writable: true, type: k === 'Channel' ? 'xsd:unsignedInt' : 'xsd:string' });
      vals.set(w + k, v);
    }
  }
  return { params, values: vals };
}

test('bandOf: vendor band, then Channel, then PossibleChannels, then Standard; null when it cannot tell', () => {
  assert.equal(bandOf({ band: '2.4G' }), '2.4GHz');
  assert.equal(bandOf({ band: '5GHz', channel: '1' }), '5GHz');
  assert.equal(bandOf({ channel: '161' }), '5GHz');
  assert.equal(bandOf({ channel: '11' }), '2.4GHz');
  assert.equal(bandOf({ channel: '0', possibleChannels: '36,40,44,48' }), '5GHz');
  assert.equal(bandOf({ possibleChannels: '1-13' }), '2.4GHz');
  assert.equal(bandOf({ standard: '11bgn' }), '2.4GHz');
  assert.equal(bandOf({ standard: 'g' }), '2.4GHz');
  assert.equal(bandOf({ standard: '11ac' }), '5GHz');
  assert.equal(bandOf({ standard: 'a,n,ac' }), '5GHz');
  assert.equal(bandOf({ standard: 'n' }), null);
  assert.equal(bandOf({ standard: 'ax' }), null);
  assert.equal(bandOf({}), null);
});

test('8 WLANConfigurations on 2 radios: 2 Radio rows, 8 SSIDs, LowerLayers and the band derived', () => {
  const { params, values } = eightSsids((i) => ({ Channel: i <= 4 ? '1' : '161', PossibleChannels: i <= 4 ? '1-13' : '36,40,149,153,157,161' }));
  const m = new DeviceMapping(rules, { deviceKey: 'r8', params, values });
  assert.deepEqual(m.uspInstances('Device.WiFi.Radio.'), [1, 2]);
  assert.deepEqual(m.uspInstances('Device.WiFi.SSID.'), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(m.nativeToUspValue('Device.WiFi.RadioNumberOfEntries', {}), '2');
  assert.equal(m.nativeToUspValue('Device.WiFi.Radio.1.OperatingFrequencyBand', {}), '2.4GHz');
  assert.equal(m.nativeToUspValue('Device.WiFi.Radio.2.OperatingFrequencyBand', {}), '5GHz');
  for (let i = 1; i <= 8; i++) {
    assert.equal(m.nativeToUspValue(`Device.WiFi.SSID.${i}.LowerLayers`, {}), i <= 4 ? 'Device.WiFi.Radio.1' : 'Device.WiFi.Radio.2', `SSID ${i}`);
  }
  // the Radio reads its first WLANConfiguration; a Set of the 5 GHz channel writes all four of its WLANConfigurations
  assert.deepEqual(m.toNative('Device.WiFi.Radio.2.Channel'), [`${LAN}WLANConfiguration.5.Channel`]);
  assert.deepEqual(
    m.uspToNativeValue('Device.WiFi.Radio.2.Channel', '149').map((s) => [s.path, s.value]),
    [5, 6, 7, 8].map((i) => [`${LAN}WLANConfiguration.${i}.Channel`, '149']),
  );
  // a radio is not added or deleted through its WLANConfigurations
  assert.equal(m.supportedModel().find((o) => o.path === 'Device.WiFi.Radio.{i}.')?.writable, false);
  // a change reported on any member WLANConfiguration object belongs to the radio
  assert.ok(m.toUspAll(`${LAN}WLANConfiguration.7.`).includes('Device.WiFi.Radio.2.'));
});

test('a vendor band parameter wins; the band is then read, not derived', () => {
  const { params, values } = eightSsids((i) => ({ X_HW_RFBand: i % 2 ? '2.4GHz' : '5GHz', Channel: '0' }));
  const m = new DeviceMapping(rules, { deviceKey: 'rb', params, values });
  assert.deepEqual(m.uspInstances('Device.WiFi.Radio.'), [1, 2]);
  assert.deepEqual(m.toNative('Device.WiFi.Radio.2.OperatingFrequencyBand'), [`${LAN}WLANConfiguration.2.X_HW_RFBand`]);
  assert.equal(m.nativeToUspValue('Device.WiFi.SSID.3.LowerLayers', {}), 'Device.WiFi.Radio.1');
  assert.equal(m.nativeToUspValue('Device.WiFi.SSID.4.LowerLayers', {}), 'Device.WiFi.Radio.2');
});

test('without the values that tell a band, each WLANConfiguration stays a Radio of its own (nothing invented)', () => {
  const { params } = eightSsids((i) => ({ Standard: i <= 4 ? 'n' : 'ax' }));
  const m = new DeviceMapping(rules, { deviceKey: 'rn', params });
  assert.equal(m.uspInstances('Device.WiFi.Radio.')?.length, 8);
  assert.equal(m.has('Device.WiFi.Radio.1.OperatingFrequencyBand'), false);
  const withValues = eightSsids((i) => ({ Standard: i <= 4 ? 'n' : 'ax' }));
  const m2 = new DeviceMapping(rules, { deviceKey: 'rn2', params: withValues.params, values: withValues.values });
  assert.equal(m2.uspInstances('Device.WiFi.Radio.')?.length, 8, '"n" and "ax" are in both bands');
});
