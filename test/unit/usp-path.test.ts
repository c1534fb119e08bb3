/** USP path grammar, formatter, helpers and resolver (TR-369 architecture.md "Path Names" ff.). */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  parsePath,
  parseInstantiatedPath,
  parseReference,
  formatPath,
  isInstantiated,
  hasWildcardOrSearch,
  hasReferenceFollowing,
  isUniqueKeyShape,
  matchesInstantiated,
  relativePath,
  splitPath,
  splitParamPath,
  parentObjectPath,
  toSupportedPath,
  resolvePath,
  compareValue,
  splitReferenceList,
  PathError,
  PathSyntaxError,
  MAX_PATH_LENGTH,
  type PathBackend,
  type UspPath,
} from '../../src/usp/path/index.js';

// ---------------------------------------------------------------------------------------------
// Spec examples (architecture.md / messages.md), verbatim.

const SPEC_EXAMPLES: Array<[string, UspPath['kind']]> = [
  ['Device.IP.Interface.[Name=="eth0"].IPv4Address.[Status=="Enabled"].IPAddress', 'parameter'],
  ['Device.WiFi.Radio.1.', 'object'],
  ['Device.NAT.PortMapping.[RemoteHost==""&&ExternalPort==0&&Protocol=="TCP"].', 'object'],
  ['Device.IP.Interface.[Type=="Normal"].Status', 'parameter'],
  ['Device.IP.Interface.[Type=="Normal"].IPv4Address.[AddressingType=="Static"].IPAddress', 'parameter'],
  ['Device.IP.Interface.[Type=="Normal"&&Stats.ErrorsSent>0].IPv4Address.[AddressingType=="Static"].IPAddress', 'parameter'],
  ['Device.DSL.Line.[Enable==true].CurrentProfile', 'parameter'],
  ['Device.DSL.Line.[Enable==1].CurrentProfile', 'parameter'],
  ['Device.IP.Interface.*.IPv6Address.[ValidLifetime<2021-06-06T08:00:00Z].IPAddress', 'parameter'],
  ['Device.USB.USBHosts.Host.*.Device.[DeviceClass==08].', 'object'],
  ['Device.PCP.Client.*.Server.[Capabilities~="IPv6Firewall"].', 'object'],
  ['Device.PeriodicStatistics.SampleSet.[SampleSeconds~=5].', 'object'],
  ['Device.IP.Interface.*.', 'object'],
  ['Device.IP.Interface.*.Type', 'parameter'],
  ['Device.NAT.PortMapping.1.Interface+.Name', 'parameter'],
  ['Device.WiFi.SSID.1.LowerLayers#1+.Name', 'parameter'],
  ['Device.WiFi.AccessPoint.[SSIDReference+.SSID=="MyHome"].AssociatedDevice.[OperatingStandard=="ac"].SignalStrength', 'parameter'],
  ['Device.IP.Interface.[Name=="eth0"].Reset()', 'command'],
  ['Device.Boot!', 'event'],
  // messages.md / the brief
  ['Device.LocalAgent.Controller.[EndpointID=="proto::controller1"].Enable', 'parameter'],
  ['Device.WiFi.SSID.*.', 'object'],
  ['Device.IP.Interface.[Status=="Up"&&Type=="Normal"].IPv4Address.[AddressingType=="Static"].IPAddress', 'parameter'],
  ['Device.NAT.PortMapping.[Interface+.Name=="ppp0"].', 'object'],
  ['Device.LocalAgent.Controller.1.BootParameter.[Enable==true].ParameterName', 'parameter'],
  ['Device.Reboot()', 'command'],
  ['Device.IP.Diagnostics.IPPing()', 'command'],
  ['Device.LocalAgent.MTP.5156.WebSocket.', 'object'],
  ['Device.WiFi.SSID.1.LowerLayers#*+.Name', 'parameter'],
  ['Device.', 'object'],
  ['Device.X_EXAMPLE-COM_Widget.1.X_000000_Flag', 'parameter'], // TR-106 vendor prefixes
];

describe('parsePath: spec examples', () => {
  for (const [text, kind] of SPEC_EXAMPLES) {
    test(text, () => {
      const p = parsePath(text);
      assert.equal(p.kind, kind);
      assert.equal(formatPath(p), text);
    });
  }

  test('AST of a search path with unique key, search and nested relpath', () => {
    assert.deepEqual(parsePath('Device.IP.Interface.[Type=="Normal"&&Stats.ErrorsSent>0].IPv4Address.[AddressingType=="Static"].IPAddress'), {
      kind: 'parameter',
      leaf: 'IPAddress',
      segments: [
        { type: 'name', name: 'IP' },
        { type: 'name', name: 'Interface' },
        {
          type: 'search',
          terms: [
            { param: [{ name: 'Type' }], op: '==', value: { type: 'string', value: 'Normal' } },
            { param: [{ name: 'Stats' }, { name: 'ErrorsSent' }], op: '>', value: { type: 'literal', text: '0' } },
          ],
        },
        { type: 'name', name: 'IPv4Address' },
        { type: 'search', terms: [{ param: [{ name: 'AddressingType' }], op: '==', value: { type: 'string', value: 'Static' } }] },
      ],
    });
  });

  test('AST of reference following, in the path and in a search term', () => {
    assert.deepEqual(parsePath('Device.NAT.PortMapping.1.Interface+.Name').segments.at(-1), { type: 'name', name: 'Interface', ref: {} });
    assert.deepEqual(parsePath('Device.WiFi.SSID.1.LowerLayers#2+.').segments.at(-1), { type: 'name', name: 'LowerLayers', ref: { index: 2 } });
    assert.deepEqual(parsePath('Device.WiFi.SSID.1.LowerLayers#*+.Name').segments.at(-1), { type: 'name', name: 'LowerLayers', ref: { index: '*' } });
    const s = parsePath('Device.NAT.PortMapping.[Interface+.Name=="ppp0"].').segments[2];
    assert.deepEqual(s, {
      type: 'search',
      terms: [{ param: [{ name: 'Interface', ref: {} }, { name: 'Name' }], op: '==', value: { type: 'string', value: 'ppp0' } }],
    });
  });

  test('all operators', () => {
    for (const op of ['==', '!=', '~=', '<', '>', '<=', '>=']) {
      const text = `Device.A.[B${op}-5].`;
      const p = parsePath(text);
      assert.equal(p.segments[1]!.type === 'search' && p.segments[1].terms[0]!.op, op);
      assert.equal(formatPath(p), text);
    }
  });

  test('string constants: %22 and %25 escapes decode; other % stay literal; format re-encodes', () => {
    const p = parsePath('Device.A.[B=="say %22hi%22 100%25 & ]]"].');
    assert.deepEqual(p.segments[1], { type: 'search', terms: [{ param: [{ name: 'B' }], op: '==', value: { type: 'string', value: 'say "hi" 100% & ]]' } }] });
    assert.equal(formatPath(p), 'Device.A.[B=="say %22hi%22 100%25 & ]]"].');
    const q = parsePath('Device.A.[B=="50%41"].');
    assert.equal(q.segments[1]!.type === 'search' && q.segments[1].terms[0]!.value.type === 'string' && q.segments[1].terms[0]!.value.value, '50%41');
    assert.equal(formatPath(q), 'Device.A.[B=="50%2541"].');
  });

  test('whitespace around operators and && is tolerated (R-ARC.9a) and dropped by the formatter', () => {
    assert.equal(formatPath(parsePath('Device.IP.Interface.[Type == "Normal"].Status')), 'Device.IP.Interface.[Type=="Normal"].Status');
    assert.equal(formatPath(parsePath('Device.A.[ B >= 2 && C != "x" ].')), 'Device.A.[B>=2&&C!="x"].');
  });

  test('instance paths without the trailing dot are reference values, not request paths', () => {
    // "Addressing by Instance Number/Unique Key" write `Device.IP.Interface.3`; an Object Instance
    // Path ends in '.' "except when used in a reference Parameter" (Path Names item 2).
    syntaxError('Device.IP.Interface.3', 21, /expected '\.' after instance identifier, found end of path/);
    syntaxError('Device.IP.Interface.[Name=="eth0"]', 34, /expected '\.' after instance identifier/);
    assert.equal(formatPath(parseReference('Device.IP.Interface.3')), 'Device.IP.Interface.3.');
    assert.equal(formatPath(parseReference('Device.IP.Interface.[Name=="eth0"]')), 'Device.IP.Interface.[Name=="eth0"].');
    assert.equal(formatPath(parseReference('Device.IP.Interface.3.')), 'Device.IP.Interface.3.');
    assert.throws(
      () => parseReference('Device.IP.Interface.*'),
      (e: unknown) => e instanceof PathSyntaxError && e.offset === 20 && /wildcard '\*' not allowed in a reference value/.test(e.message),
    );
    assert.throws(
      () => parseReference('Device.A.1.B+.C'),
      (e: unknown) => e instanceof PathSyntaxError && e.offset === 12 && /reference following not allowed/.test(e.message),
    );
    assert.throws(
      () => parseReference('Device.Reboot()'),
      (e: unknown) => e instanceof PathSyntaxError,
    );
  });

  test('Enable=="true" is well-formed (the spec calls it invalid on type grounds, which needs the model)', () => {
    assert.equal(parsePath('Device.DSL.Line.[Enable=="true"].CurrentProfile').kind, 'parameter');
  });
});

// ---------------------------------------------------------------------------------------------
// Errors

function syntaxError(text: string, offset: number, detail: RegExp): void {
  assert.throws(
    () => parsePath(text),
    (e: unknown) => {
      assert.ok(e instanceof PathSyntaxError, `expected PathSyntaxError for ${JSON.stringify(text)}, got ${String(e)}`);
      assert.ok(e instanceof PathError);
      assert.equal(e.code, 7008);
      assert.equal(e.offset, offset, `${JSON.stringify(text)}: ${e.message}`);
      assert.match(e.message, new RegExp(`^invalid path syntax at offset ${offset}: `));
      assert.match(e.message, detail);
      return true;
    },
  );
}

describe('parsePath: 7008 errors with offsets', () => {
  test('empty string', () => syntaxError('', 0, /empty path/));
  test('root without dot', () => syntaxError('Device', 6, /expected '\.' after root object "Device", found end of path/));
  test('leading dot', () => syntaxError('.Device.', 0, /expected root object name/));
  test('double dots', () => syntaxError('Device.IP..Interface.', 10, /empty path segment/));
  test('double dot right after root', () => syntaxError('Device..', 7, /empty path segment/));
  test('unterminated [', () => syntaxError('Device.IP.Interface.[Name=="eth0"', 33, /unterminated search expression opened at offset 20: expected '\]'/));
  test('unterminated string', () => syntaxError('Device.IP.Interface.[Name=="eth0].', 34, /unterminated string constant opened at offset 27/));
  test('|| is not supported', () => syntaxError('Device.IP.Interface.[Name=="a"||Name=="b"].', 30, /'\|' is not supported.*only '&&'/));
  test('single & ', () => syntaxError('Device.IP.Interface.[A==1&B==2].', 25, /expected '&&'/));
  test('bad operator =', () => syntaxError('Device.IP.Interface.[Name="eth0"].', 25, /expected operator '==', '!=', '~=', '<', '>', '<=' or '>=', found "="/));
  test('missing operator', () => syntaxError('Device.IP.Interface.[Name].', 25, /expected operator/));
  test('unquoted string with spaces', () => syntaxError('Device.IP.Interface.[Name==eth 0].', 31, /expected '&&' or '\]' after search term, found "0"/));
  test('missing value', () => syntaxError('Device.IP.Interface.[Name==].', 27, /expected constant/));
  test('empty expression (spec: NOT VALID)', () => syntaxError('Device.IP.Interface.[].', 21, /empty search expression/));
  test('child table in expression (spec: NOT VALID)', () =>
    syntaxError('Device.IP.Interface.[Type=="Normal"&&IPv4Address.*.AddressingType=="Static"].Status', 49, /cannot descend into a child table/));
  test('curly brackets (spec: NOT VALID)', () =>
    syntaxError('Device.IP.Interface.{Type=="Normal"}.Status', 20, /expected object or parameter name, instance number, '\*' or '\['/));
  test('() in the middle', () => syntaxError('Device.IP.Diagnostics.IPPing().Result', 30, /unexpected "\." after '\(\)': a command name must end the path/));
  test('command with arguments', () => syntaxError('Device.Reboot(1)', 14, /expected '\)' after '\('/));
  test('trailing garbage after event', () => syntaxError('Device.Boot!x', 12, /unexpected "x" after '!'/));
  test('trailing garbage after ]', () => syntaxError('Device.A.[B==1]x', 15, /expected '\.' after instance identifier, found "x"/));
  test('trailing space after parameter', () =>
    syntaxError('Device.DeviceInfo.Manufacturer ', 30, /expected '\.', '\(\)', '!', '\+' or end of path after name, found " "/));
  test('instance 0', () => syntaxError('Device.IP.Interface.0.', 20, /instance number must be a positive integer without leading zeros/));
  test('leading zero', () => syntaxError('Device.IP.Interface.01.', 20, /without leading zeros/));
  test('instance too large', () => syntaxError('Device.IP.Interface.4294967296.', 20, /exceeds 4294967295/));
  test('instance right after root', () => syntaxError('Device.1.', 7, /must follow a table name/));
  test('two instances in a row', () => syntaxError('Device.IP.Interface.1.2.', 22, /cannot follow another instance identifier/));
  test('wildcard after reference', () => syntaxError('Device.A.1.Ref+.*.', 16, /cannot follow reference following/));
  test('reference without following dot', () => syntaxError('Device.NAT.PortMapping.1.Interface+', 35, /expected '\.' after reference following '\+'/));
  test('#0+', () => syntaxError('Device.WiFi.SSID.1.LowerLayers#0+.Name', 31, /list item number or '\*' after '#' must be a positive integer/));
  test('# without +', () => syntaxError('Device.WiFi.SSID.1.LowerLayers#1.Name', 32, /expected '\+' after reference list index/));
  test('relational operator with a string constant', () => syntaxError('Device.A.[B<"x"].', 11, /operator '<' cannot be used with a string constant/));
  test('name starting with a digit part', () => syntaxError('Device.IP.1x.', 11, /expected '\.' after instance identifier, found "x"/));
  test('illegal character in name', () => syntaxError('Device.IP.Inter$face.', 15, /expected '\.', '\(\)', '!', '\+' or end of path after name, found "\$"/));
  test('too long', () => syntaxError('Device.' + 'A.'.repeat(MAX_PATH_LENGTH), MAX_PATH_LENGTH, /longer than 4096/));
  test('wrong root is 7026 (well-formed, not in the Device:2 model)', () => {
    assert.throws(
      () => parsePath('InternetGatewayDevice.LANDevice.1.'),
      (e: unknown) => e instanceof PathError && !(e instanceof PathSyntaxError) && e.code === 7026 && /root object must be 'Device'/.test(e.message),
    );
    // syntax errors win over the root check
    assert.throws(
      () => parsePath('Foo..'),
      (e: unknown) => e instanceof PathSyntaxError,
    );
  });
  test('parseInstantiatedPath rejects wildcards, searches and references at their offset', () => {
    assert.deepEqual(parseInstantiatedPath('Device.IP.Interface.1.Name').segments.length, 3);
    assert.throws(
      () => parseInstantiatedPath('Device.IP.Interface.*.'),
      (e: unknown) => e instanceof PathSyntaxError && e.offset === 20 && /wildcard '\*' not allowed in an instantiated path/.test(e.message),
    );
    assert.throws(
      () => parseInstantiatedPath('Device.IP.Interface.[A==1].'),
      (e: unknown) => e instanceof PathSyntaxError && e.offset === 20,
    );
    assert.throws(
      () => parseInstantiatedPath('Device.NAT.PortMapping.1.Interface+.Name'),
      (e: unknown) => e instanceof PathSyntaxError && e.offset === 34,
    );
  });
  // A super-linear parse of these would run for minutes: the timeout catches it, no wall-clock assertion.
  test('hostile inputs are linear time', { timeout: 30_000 }, () => {
    const inputs = [
      'Device.' + 'A.'.repeat(2000),
      'Device.A.[' + 'B==1&&'.repeat(680),
      'Device.A.[' + 'B.'.repeat(2000),
      'Device.A.[B=="' + '%'.repeat(4000),
      'Device.A.[B==' + '1'.repeat(4000),
      'Device.' + 'A'.repeat(4089),
    ];
    for (let i = 0; i < 20; i++)
      for (const s of inputs) {
        try {
          parsePath(s);
        } catch (e) {
          assert.ok(e instanceof PathError);
        }
      }
  });
});

// ---------------------------------------------------------------------------------------------
// Predicates and helpers

describe('predicates and helpers', () => {
  test('isInstantiated / hasWildcardOrSearch / hasReferenceFollowing', () => {
    const i = parsePath('Device.IP.Interface.1.IPv4Address.2.IPAddress');
    assert.equal(isInstantiated(i), true);
    assert.equal(hasWildcardOrSearch(i), false);
    const w = parsePath('Device.IP.Interface.*.Name');
    assert.equal(isInstantiated(w), false);
    assert.equal(hasWildcardOrSearch(w), true);
    const r = parsePath('Device.NAT.PortMapping.1.Interface+.Name');
    assert.equal(isInstantiated(r), false);
    assert.equal(hasWildcardOrSearch(r), false);
    assert.equal(hasReferenceFollowing(r), true);
  });
  test('isUniqueKeyShape: only == on direct parameters', () => {
    const seg = (t: string) => parsePath(t).segments[2]!;
    assert.equal(isUniqueKeyShape(seg('Device.NAT.PortMapping.[RemoteHost==""&&ExternalPort==0&&Protocol=="TCP"].')), true);
    assert.equal(isUniqueKeyShape(seg('Device.IP.Interface.[Stats.ErrorsSent==0].')), false);
    assert.equal(isUniqueKeyShape(seg('Device.IP.Interface.[Name!="eth0"].')), false);
    assert.equal(isUniqueKeyShape(seg('Device.NAT.PortMapping.[Interface+.Name=="ppp0"].')), false);
    assert.equal(isUniqueKeyShape(seg('Device.IP.Interface.1.')), false);
  });
  test('splitPath / splitParamPath / parentObjectPath / toSupportedPath / relativePath', () => {
    assert.deepEqual(splitParamPath('Device.A.1.B'), { object: 'Device.A.1.', param: 'B' });
    assert.deepEqual(splitPath('Device.A.1.'), { object: 'Device.A.1.', leaf: undefined });
    assert.deepEqual(splitPath('Device.IP.Interface.1.Reset()'), { object: 'Device.IP.Interface.1.', leaf: 'Reset()' });
    assert.throws(() => splitParamPath('Device.A.'), RangeError);
    assert.equal(parentObjectPath('Device.A.1.'), 'Device.A.');
    assert.equal(parentObjectPath('Device.A.'), 'Device.');
    assert.equal(parentObjectPath('Device.'), undefined);
    assert.equal(toSupportedPath('Device.IP.Interface.12.IPv4Address.3.IPAddress'), 'Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress');
    assert.equal(relativePath('Device.WiFi.SSID.1.', 'Device.WiFi.SSID.1.Stats.BytesSent'), 'Stats.BytesSent');
    assert.equal(relativePath('Device.WiFi.SSID.1.', 'Device.WiFi.SSID.1.Enable'), 'Enable');
    assert.throws(() => relativePath('Device.WiFi.SSID.1.', 'Device.WiFi.SSID.10.Enable'), RangeError);
    assert.throws(() => relativePath('Device.WiFi.SSID.1', 'Device.WiFi.SSID.1.Enable'), RangeError);
  });
  test('matchesInstantiated', () => {
    const p = parsePath('Device.WiFi.SSID.*.Enable');
    assert.equal(matchesInstantiated(p, 'Device.WiFi.SSID.3.Enable'), true);
    assert.equal(matchesInstantiated(p, 'Device.WiFi.SSID.3.Name'), false);
    assert.equal(matchesInstantiated(p, 'Device.WiFi.SSID.Enable'), false);
    assert.equal(matchesInstantiated(p, 'Device.WiFi.SSID.3.'), false);
    assert.equal(matchesInstantiated(p, 'not a path'), false);
    const o = parsePath('Device.WiFi.SSID.2.');
    assert.equal(matchesInstantiated(o, 'Device.WiFi.SSID.2.'), true);
    assert.equal(matchesInstantiated(o, 'Device.WiFi.SSID.2.Stats.BytesSent'), false);
    assert.equal(matchesInstantiated(o, 'Device.WiFi.SSID.2.Stats.BytesSent', { mode: 'prefix' }), true);
    assert.equal(matchesInstantiated(o, 'Device.WiFi.SSID.20.Enable', { mode: 'prefix' }), false);
    assert.equal(matchesInstantiated(parsePath('Device.'), 'Device.Boot!', { mode: 'prefix' }), true);
    assert.equal(matchesInstantiated(p, 'Device.WiFi.SSID.3.Enable', { mode: 'prefix' }), false); // parameter pattern is not a prefix
    const s = parsePath('Device.WiFi.SSID.[Name=="x"].Enable');
    assert.equal(matchesInstantiated(s, 'Device.WiFi.SSID.1.Enable'), false);
    assert.equal(matchesInstantiated(s, 'Device.WiFi.SSID.1.Enable', { searchMatchesAnyInstance: true }), true);
    assert.equal(matchesInstantiated(parsePath('Device.Boot!'), 'Device.Boot!'), true);
    assert.equal(matchesInstantiated(parsePath('Device.Reboot()'), 'Device.Boot!'), false);
  });
  test('splitReferenceList keeps commas inside keys', () => {
    assert.deepEqual(splitReferenceList('Device.WiFi.Radio.1, Device.WiFi.Radio.2'), ['Device.WiFi.Radio.1', 'Device.WiFi.Radio.2']);
    assert.deepEqual(splitReferenceList('Device.A.[N=="a,b"],Device.A.2'), ['Device.A.[N=="a,b"]', 'Device.A.2']);
  });
  test('compareValue: numbers, booleans, dateTimes, strings, lists', () => {
    const lit = (text: string) => ({ type: 'literal' as const, text });
    const str = (value: string) => ({ type: 'string' as const, value });
    assert.equal(compareValue('123', '==', lit('+123')), true);
    assert.equal(compareValue('123', '==', lit('0123')), true);
    assert.equal(compareValue('9', '<', lit('10')), true); // numeric, not lexical
    assert.equal(compareValue('18446744073709551615', '>', lit('18446744073709551614')), true); // exact unsignedLong
    assert.equal(compareValue('1.5', '>=', lit('1.25')), true);
    assert.equal(compareValue('-50', '>', lit('-60')), true);
    assert.equal(compareValue('true', '==', lit('1')), true);
    assert.equal(compareValue('0', '==', lit('false')), true);
    assert.equal(compareValue('false', '!=', lit('true')), true);
    assert.equal(compareValue('true', '<', lit('false')), false);
    assert.equal(compareValue('2021-06-01T00:00:00Z', '<', lit('2021-06-06T08:00:00Z')), true);
    assert.equal(compareValue('2021-06-07T00:00:00Z', '<', lit('2021-06-06T08:00:00Z')), false);
    assert.equal(compareValue('0001-01-01T00:00:00Z', '<', lit('2021-06-06T08:00:00Z')), false); // Unknown Time: == / != only
    assert.equal(compareValue('0001-01-01T00:00:00Z', '==', lit('0001-01-01T00:00:00Z')), true);
    assert.equal(compareValue('eth0', '==', str('eth0')), true);
    assert.equal(compareValue('eth0', '!=', str('eth0')), false);
    assert.equal(compareValue('08', '==', str('8')), false); // strings compare exactly
    assert.equal(compareValue('08', '==', lit('8')), true);
    assert.equal(compareValue('abc', '<', lit('abd')), false); // strings are not ordered
    assert.equal(compareValue('PortSet,IPv6Firewall', '~=', str('IPv6Firewall')), true);
    assert.equal(compareValue('PortSet,IPv6Firewall', '~=', str('IPv6')), false);
    assert.equal(compareValue('10, 5, 15', '~=', lit('5')), true);
    assert.equal(compareValue('', '~=', lit('5')), false);
  });
});

// ---------------------------------------------------------------------------------------------
// Resolver against an in-memory backend

const VALUES: Record<string, string> = {
  'Device.DeviceInfo.Manufacturer': 'ACME',
  'Device.IP.Interface.1.Name': 'eth0',
  'Device.IP.Interface.1.Type': 'Normal',
  'Device.IP.Interface.1.Status': 'Up',
  'Device.IP.Interface.1.Enable': 'true',
  'Device.IP.Interface.1.MaxMTUSize': '1500',
  'Device.IP.Interface.1.LastChange': '2021-06-01T00:00:00Z',
  'Device.IP.Interface.1.Stats.ErrorsSent': '0',
  'Device.IP.Interface.1.IPv4Address.1.AddressingType': 'Static',
  'Device.IP.Interface.1.IPv4Address.1.IPAddress': '192.168.1.1',
  'Device.IP.Interface.1.IPv4Address.2.AddressingType': 'DHCP',
  'Device.IP.Interface.1.IPv4Address.2.IPAddress': '10.0.0.2',
  'Device.IP.Interface.2.Name': 'ppp0',
  'Device.IP.Interface.2.Type': 'Normal',
  'Device.IP.Interface.2.Status': 'Up',
  'Device.IP.Interface.2.Enable': '1',
  'Device.IP.Interface.2.MaxMTUSize': '01492',
  'Device.IP.Interface.2.LastChange': '2021-06-07T00:00:00Z',
  'Device.IP.Interface.2.Stats.ErrorsSent': '5',
  'Device.IP.Interface.2.IPv4Address.3.AddressingType': 'Static',
  'Device.IP.Interface.2.IPv4Address.3.IPAddress': '203.0.113.7',
  'Device.IP.Interface.10.Name': 'lo',
  'Device.IP.Interface.10.Type': 'Loopback',
  'Device.IP.Interface.10.Status': 'Down',
  'Device.IP.Interface.10.Enable': 'false',
  'Device.IP.Interface.10.MaxMTUSize': '65536',
  'Device.IP.Interface.10.LastChange': '0001-01-01T00:00:00Z',
  'Device.IP.Interface.10.Stats.ErrorsSent': '10',
  'Device.NAT.PortMapping.1.Interface': 'Device.IP.Interface.2',
  'Device.NAT.PortMapping.1.RemoteHost': '',
  'Device.NAT.PortMapping.1.ExternalPort': '0',
  'Device.NAT.PortMapping.1.Protocol': 'TCP',
  'Device.NAT.PortMapping.2.Interface': 'Device.IP.Interface.1.',
  'Device.NAT.PortMapping.2.RemoteHost': '',
  'Device.NAT.PortMapping.2.ExternalPort': '8080',
  'Device.NAT.PortMapping.2.Protocol': 'TCP',
  'Device.NAT.PortMapping.3.Interface': '',
  'Device.NAT.PortMapping.3.RemoteHost': '',
  'Device.NAT.PortMapping.3.ExternalPort': '0',
  'Device.NAT.PortMapping.3.Protocol': 'UDP',
  'Device.NAT.PortMapping.4.Interface': 'Device.IP.Interface.9', // dangling weak reference
  'Device.NAT.PortMapping.4.RemoteHost': '',
  'Device.NAT.PortMapping.4.ExternalPort': '22',
  'Device.NAT.PortMapping.4.Protocol': 'TCP',
  'Device.NAT.PortMapping.5.Interface': 'Device.IP.Interface.[Name=="eth0"]', // key-addressed (R-ARC.11)
  'Device.NAT.PortMapping.5.RemoteHost': '',
  'Device.NAT.PortMapping.5.ExternalPort': '443',
  'Device.NAT.PortMapping.5.Protocol': 'TCP',
  'Device.WiFi.Radio.1.Name': 'radio0',
  'Device.WiFi.Radio.2.Name': 'radio1',
  'Device.WiFi.SSID.1.LowerLayers': 'Device.WiFi.Radio.1, Device.WiFi.Radio.2',
  'Device.WiFi.SSID.1.SSID': 'MyHome',
  'Device.WiFi.SSID.2.LowerLayers': 'Device.WiFi.Radio.2',
  'Device.WiFi.SSID.2.SSID': 'Guest',
  'Device.WiFi.AccessPoint.1.SSIDReference': 'Device.WiFi.SSID.1',
  'Device.WiFi.AccessPoint.1.AssociatedDevice.1.OperatingStandard': 'ac',
  'Device.WiFi.AccessPoint.1.AssociatedDevice.1.SignalStrength': '-50',
  'Device.WiFi.AccessPoint.1.AssociatedDevice.2.OperatingStandard': 'n',
  'Device.WiFi.AccessPoint.1.AssociatedDevice.2.SignalStrength': '-70',
  'Device.WiFi.AccessPoint.2.SSIDReference': 'Device.WiFi.SSID.2',
  'Device.WiFi.AccessPoint.2.AssociatedDevice.1.OperatingStandard': 'ac',
  'Device.WiFi.AccessPoint.2.AssociatedDevice.1.SignalStrength': '-60',
  'Device.LocalAgent.Controller.1.EndpointID': 'proto::controller1',
  'Device.LocalAgent.Controller.1.Enable': 'true',
  'Device.LocalAgent.Controller.1.BootParameter.1.Enable': 'true',
  'Device.LocalAgent.Controller.1.BootParameter.1.ParameterName': 'Device.DeviceInfo.SoftwareVersion',
  'Device.LocalAgent.Controller.1.BootParameter.2.Enable': 'false',
  'Device.LocalAgent.Controller.1.BootParameter.2.ParameterName': 'Device.DeviceInfo.HardwareVersion',
  'Device.LocalAgent.Controller.2.EndpointID': 'proto::controller2',
  'Device.LocalAgent.Controller.2.Enable': 'false',
  'Device.PCP.Client.1.Server.1.Capabilities': 'PortSet,IPv6Firewall',
  'Device.PCP.Client.1.Server.2.Capabilities': 'PortSet',
  'Device.PeriodicStatistics.SampleSet.1.SampleSeconds': '10,5,15',
  'Device.PeriodicStatistics.SampleSet.2.SampleSeconds': '10,15',
};
/** Supported-model entries that have no instance in VALUES. */
const EXTRA_SUPPORTED = [
  'Device.Reboot()',
  'Device.Boot!',
  'Device.IP.Interface.{i}.Reset()',
  'Device.IP.Diagnostics.IPPing()',
  'Device.Hosts.Host.{i}.HostName',
];

class FakeBackend implements PathBackend {
  readonly supported = new Set<string>();
  readonly tables = new Set<string>(); // supported table paths, "Device.IP.Interface."
  readonly calls = { instances: 0, exists: [] as string[], getValue: 0 };
  constructor(
    readonly values: Record<string, string>,
    extra: string[],
  ) {
    for (const p of [...Object.keys(values).map(toSupportedPath), ...extra]) {
      this.supported.add(p);
      let i = p.lastIndexOf('.', p.endsWith('.') ? p.length - 2 : p.length);
      while (i > 0) {
        const obj = p.slice(0, i + 1);
        this.supported.add(obj);
        if (obj.endsWith('.{i}.')) {
          this.tables.add(obj.slice(0, -4));
          this.supported.add(obj.slice(0, -4));
        }
        i = p.lastIndexOf('.', i - 1);
      }
    }
  }
  async instances(objectPath: string): Promise<number[] | null> {
    this.calls.instances++;
    if (!this.tables.has(toSupportedPath(objectPath))) return null;
    const ids = new Set<number>();
    for (const k of Object.keys(this.values)) {
      if (k.startsWith(objectPath)) {
        const m = /^(\d+)\./.exec(k.slice(objectPath.length));
        if (m) ids.add(Number(m[1]));
      }
    }
    return [...ids].reverse(); // unsorted on purpose
  }
  async exists(path: string): Promise<boolean> {
    this.calls.exists.push(path);
    return this.supported.has(path);
  }
  async getValue(paramPath: string): Promise<string | undefined> {
    this.calls.getValue++;
    return this.values[paramPath];
  }
}

async function paths(text: string, opts?: Parameters<typeof resolvePath>[2], backend = new FakeBackend(VALUES, EXTRA_SUPPORTED)): Promise<string[]> {
  return (await resolvePath(text, backend, opts)).map((r) => r.path);
}

async function rejects(text: string, code: number, message: RegExp, opts?: Parameters<typeof resolvePath>[2]): Promise<void> {
  await assert.rejects(resolvePath(text, new FakeBackend(VALUES, EXTRA_SUPPORTED), opts), (e: unknown) => {
    assert.ok(e instanceof PathError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

describe('resolvePath', () => {
  test('instantiated paths and ResolvedPath shape', async () => {
    const b = new FakeBackend(VALUES, EXTRA_SUPPORTED);
    assert.deepEqual(await resolvePath('Device.IP.Interface.2.Name', b), [
      { path: 'Device.IP.Interface.2.Name', object: 'Device.IP.Interface.2.', leaf: 'Name', kind: 'parameter' },
    ]);
    assert.deepEqual(await resolvePath('Device.IP.Interface.1.Stats.', b), [
      { path: 'Device.IP.Interface.1.Stats.', object: 'Device.IP.Interface.1.Stats.', kind: 'object' },
    ]);
    assert.deepEqual(await resolvePath('Device.', b), [{ path: 'Device.', object: 'Device.', kind: 'object' }]);
    assert.deepEqual(await resolvePath('Device.Reboot()', b), [{ path: 'Device.Reboot()', object: 'Device.', leaf: 'Reboot', kind: 'command' }]);
    assert.deepEqual(await resolvePath('Device.Boot!', b), [{ path: 'Device.Boot!', object: 'Device.', leaf: 'Boot', kind: 'event' }]);
    assert.deepEqual(await paths('Device.IP.Diagnostics.IPPing()'), ['Device.IP.Diagnostics.IPPing()']);
    assert.deepEqual(await paths('Device.IP.Interface.'), ['Device.IP.Interface.']); // a table path: the handler decides
    assert.deepEqual(await paths('Device.DeviceInfo.Manufacturer'), ['Device.DeviceInfo.Manufacturer']);
  });

  test('wildcards expand in ascending instance order', async () => {
    assert.deepEqual(await paths('Device.IP.Interface.*.Name'), ['Device.IP.Interface.1.Name', 'Device.IP.Interface.2.Name', 'Device.IP.Interface.10.Name']);
    assert.deepEqual(await paths('Device.IP.Interface.*.IPv4Address.*.'), [
      'Device.IP.Interface.1.IPv4Address.1.',
      'Device.IP.Interface.1.IPv4Address.2.',
      'Device.IP.Interface.2.IPv4Address.3.',
    ]);
    assert.deepEqual(await paths('Device.IP.Interface.*.Reset()'), [
      'Device.IP.Interface.1.Reset()',
      'Device.IP.Interface.2.Reset()',
      'Device.IP.Interface.10.Reset()',
    ]);
  });

  test('search expressions from the spec', async () => {
    assert.deepEqual(await paths('Device.IP.Interface.[Type=="Normal"].Status'), ['Device.IP.Interface.1.Status', 'Device.IP.Interface.2.Status']);
    assert.deepEqual(await paths('Device.IP.Interface.[Status=="Up"&&Type=="Normal"].IPv4Address.[AddressingType=="Static"].IPAddress'), [
      'Device.IP.Interface.1.IPv4Address.1.IPAddress',
      'Device.IP.Interface.2.IPv4Address.3.IPAddress',
    ]);
    assert.deepEqual(await paths('Device.IP.Interface.[Type=="Normal"&&Stats.ErrorsSent>0].IPv4Address.[AddressingType=="Static"].IPAddress'), [
      'Device.IP.Interface.2.IPv4Address.3.IPAddress',
    ]);
    assert.deepEqual(await paths('Device.LocalAgent.Controller.[EndpointID=="proto::controller1"].Enable'), ['Device.LocalAgent.Controller.1.Enable']);
    assert.deepEqual(await paths('Device.LocalAgent.Controller.1.BootParameter.[Enable==true].ParameterName'), [
      'Device.LocalAgent.Controller.1.BootParameter.1.ParameterName',
    ]);
    assert.deepEqual(await paths('Device.PCP.Client.*.Server.[Capabilities~="IPv6Firewall"].'), ['Device.PCP.Client.1.Server.1.']);
    assert.deepEqual(await paths('Device.PeriodicStatistics.SampleSet.[SampleSeconds~=5].'), ['Device.PeriodicStatistics.SampleSet.1.']);
  });

  test('numeric vs string vs boolean comparison', async () => {
    // numeric: 01492 == 1492, and 65536 > 1500 numerically (lexically "65536" > "1500" too, so also check <)
    assert.deepEqual(await paths('Device.IP.Interface.[MaxMTUSize==1492].Name'), ['Device.IP.Interface.2.Name']);
    assert.deepEqual(await paths('Device.IP.Interface.[MaxMTUSize<10000].Name'), ['Device.IP.Interface.1.Name', 'Device.IP.Interface.2.Name']);
    assert.deepEqual(await paths('Device.IP.Interface.[Stats.ErrorsSent>=5].Name'), ['Device.IP.Interface.2.Name', 'Device.IP.Interface.10.Name']);
    // string: exact, "01492" is not "1492"
    assert.deepEqual(await paths('Device.IP.Interface.[MaxMTUSize=="1492"].Name'), []);
    assert.deepEqual(await paths('Device.IP.Interface.[Name!="eth0"].Name'), ['Device.IP.Interface.2.Name', 'Device.IP.Interface.10.Name']);
    // boolean: true matches "true" and "1"
    assert.deepEqual(await paths('Device.IP.Interface.[Enable==true].Name'), ['Device.IP.Interface.1.Name', 'Device.IP.Interface.2.Name']);
    assert.deepEqual(await paths('Device.IP.Interface.[Enable==0].Name'), ['Device.IP.Interface.10.Name']);
    // dateTime; Unknown Time never orders
    assert.deepEqual(await paths('Device.IP.Interface.[LastChange<2021-06-06T08:00:00Z].Name'), ['Device.IP.Interface.1.Name']);
  });

  test('unique key addressing, including a multi-parameter key', async () => {
    assert.deepEqual(await paths('Device.IP.Interface.[Name=="eth0"].'), ['Device.IP.Interface.1.']);
    assert.deepEqual(await paths('Device.NAT.PortMapping.[RemoteHost==""&&ExternalPort==0&&Protocol=="TCP"].'), ['Device.NAT.PortMapping.1.']);
  });

  test('reference following', async () => {
    assert.deepEqual(await paths('Device.NAT.PortMapping.1.Interface+.Name'), ['Device.IP.Interface.2.Name']);
    assert.deepEqual(await paths('Device.NAT.PortMapping.2.Interface+.'), ['Device.IP.Interface.1.']); // value with trailing dot
    assert.deepEqual(await paths('Device.NAT.PortMapping.5.Interface+.Name'), ['Device.IP.Interface.1.Name']); // key-addressed value
    assert.deepEqual(await paths('Device.NAT.PortMapping.3.Interface+.Name'), []); // empty reference
    assert.deepEqual(await paths('Device.NAT.PortMapping.4.Interface+.Name'), []); // dangling reference
    assert.deepEqual(await paths('Device.NAT.PortMapping.*.Interface+.Name'), ['Device.IP.Interface.2.Name', 'Device.IP.Interface.1.Name']);
    assert.deepEqual(await paths('Device.NAT.PortMapping.1.Interface+.IPv4Address.*.IPAddress'), ['Device.IP.Interface.2.IPv4Address.3.IPAddress']);
    assert.deepEqual(await paths('Device.NAT.PortMapping.1.Interface+.NoSuchParam'), []); // target model unknown statically: skipped
  });

  test('list references: + = #1+, #n+, #*+', async () => {
    assert.deepEqual(await paths('Device.WiFi.SSID.1.LowerLayers+.Name'), ['Device.WiFi.Radio.1.Name']);
    assert.deepEqual(await paths('Device.WiFi.SSID.1.LowerLayers#1+.Name'), ['Device.WiFi.Radio.1.Name']);
    assert.deepEqual(await paths('Device.WiFi.SSID.1.LowerLayers#2+.Name'), ['Device.WiFi.Radio.2.Name']);
    assert.deepEqual(await paths('Device.WiFi.SSID.1.LowerLayers#3+.Name'), []);
    assert.deepEqual(await paths('Device.WiFi.SSID.1.LowerLayers#*+.Name'), ['Device.WiFi.Radio.1.Name', 'Device.WiFi.Radio.2.Name']);
    assert.deepEqual(await paths('Device.WiFi.SSID.*.LowerLayers#*+.'), ['Device.WiFi.Radio.1.', 'Device.WiFi.Radio.2.']); // deduplicated
  });

  test('reference following inside search expressions', async () => {
    assert.deepEqual(await paths('Device.NAT.PortMapping.[Interface+.Name=="ppp0"].'), ['Device.NAT.PortMapping.1.']);
    assert.deepEqual(await paths('Device.NAT.PortMapping.[Interface+.Name=="eth0"].ExternalPort'), [
      'Device.NAT.PortMapping.2.ExternalPort',
      'Device.NAT.PortMapping.5.ExternalPort',
    ]);
    assert.deepEqual(await paths('Device.WiFi.AccessPoint.[SSIDReference+.SSID=="MyHome"].AssociatedDevice.[OperatingStandard=="ac"].SignalStrength'), [
      'Device.WiFi.AccessPoint.1.AssociatedDevice.1.SignalStrength',
    ]);
    assert.deepEqual(await paths('Device.WiFi.SSID.[LowerLayers#*+.Name=="radio1"].SSID'), ['Device.WiFi.SSID.1.SSID', 'Device.WiFi.SSID.2.SSID']);
    assert.deepEqual(await paths('Device.WiFi.SSID.[LowerLayers+.Name=="radio1"].SSID'), ['Device.WiFi.SSID.2.SSID']);
  });

  test('no match is not an error (R-MSG.4a, R-GET.1a)', async () => {
    assert.deepEqual(await paths('Device.IP.Interface.[Name=="nope"].Status'), []);
    assert.deepEqual(await paths('Device.Hosts.Host.*.HostName'), []); // empty table
    assert.deepEqual(await paths('Device.Hosts.Host.[HostName=="x"].', { onMissing: 'error' }), []);
    assert.deepEqual(await paths('Device.IP.Interface.7.Name'), []); // addressed, missing: handler decides
  });

  test("onMissing: 'error' -> 7026 for non-search paths that address nothing (R-GET.0)", async () => {
    await rejects('Device.IP.Interface.7.Name', 7026, /does not match any object or parameter in the instantiated data model/, { onMissing: 'error' });
    await rejects('Device.NAT.PortMapping.3.Interface+.Name', 7026, /instantiated data model/, { onMissing: 'error' });
  });

  test('7026: names not in the supported model, even under empty tables', async () => {
    await rejects('Device.IP.Interface.*.Bogus', 7026, /Device\.IP\.Interface\.\{i\}\.Bogus is not in the supported data model/);
    await rejects('Device.Hosts.Host.*.Bogus', 7026, /Device\.Hosts\.Host\.\{i\}\.Bogus/);
    await rejects('Device.Nope.', 7026, /Device\.Nope\. is not in the supported data model/);
    await rejects('Device.IP.Interface.[Bogus==1].', 7026, /Device\.IP\.Interface\.\{i\}\.Bogus is not/);
    await rejects('Device.IP.Interface.[Stats.Bogus==1].', 7026, /Device\.IP\.Interface\.\{i\}\.Stats\.Bogus is not/);
    await rejects('Device.NAT.PortMapping.1.Bogus+.Name', 7026, /Device\.NAT\.PortMapping\.\{i\}\.Bogus is not/);
    await rejects('Device.Bogus()', 7026, /Device\.Bogus\(\) is not/);
    await rejects('Device.Boot', 7026, /Device\.Boot is not/); // an event is not a parameter
  });

  test('7026: wildcard, search or instance number on something that is not a table', async () => {
    // A supported model that claims Device.DeviceInfo.{i}. while instances() says it is no table.
    const b = new (class extends FakeBackend {
      override async instances(objectPath: string): Promise<number[] | null> {
        return objectPath === 'Device.DeviceInfo.' ? null : super.instances(objectPath);
      }
    })(VALUES, [...EXTRA_SUPPORTED, 'Device.DeviceInfo.{i}.Manufacturer']);
    await assert.rejects(
      resolvePath('Device.DeviceInfo.*.Manufacturer', b),
      (e: unknown) => e instanceof PathError && e.code === 7026 && /Device\.DeviceInfo\. is not a table/.test(e.message),
    );
    await rejects('Device.DeviceInfo.*.Manufacturer', 7026, /not in the supported data model/);
    await rejects('Device.DeviceInfo.1.', 7026, /not in the supported data model/);
  });

  test('7008 from text, 7005 beyond maxResults', async () => {
    await rejects('Device.IP.Interface.[Name=eth0].', 7008, /offset 25/);
    await rejects('Device.IP.Interface.*.IPv4Address.*.', 7005, /more than 2 objects/, { maxResults: 2 });
  });

  test('exists() is asked supported paths, once each', async () => {
    const b = new FakeBackend(VALUES, EXTRA_SUPPORTED);
    await resolvePath('Device.IP.Interface.*.IPv4Address.[AddressingType=="Static"].IPAddress', b);
    assert.deepEqual(b.calls.exists.sort(), ['Device.IP.Interface.{i}.IPv4Address.{i}.AddressingType', 'Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress']);
    const c = new FakeBackend(VALUES, EXTRA_SUPPORTED);
    await resolvePath('Device.WiFi.SSID.*.LowerLayers#*+.Name', c);
    assert.equal(new Set(c.calls.exists).size, c.calls.exists.length);
    assert.ok(
      c.calls.exists.every((p) => !/\.\d+\./.test(p)),
      c.calls.exists.join(),
    );
  });

  test('search terms stop at the first false one', async () => {
    const b = new FakeBackend(VALUES, EXTRA_SUPPORTED);
    await resolvePath('Device.IP.Interface.[Name=="nope"&&Type=="Normal"&&Status=="Up"].', b);
    assert.equal(b.calls.getValue, 3);
  });
});
