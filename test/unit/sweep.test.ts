/**
 * The sweep's pure parts: path patterns, value diffs, the expected Device:2 view of a model
 * (TR-181 as is, TR-098 through the mapping), argument parsing and the text report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadDefaultMapping } from '../../src/mapping/load.js';
import { SimDevice } from '../../src/tools/sim/device.js';
import { loadModel } from '../../src/tools/sim/model.js';
import { parseQuirks } from '../../src/tools/sim/quirks.js';
import { CHECKS, describeCost, diffValues } from '../../src/tools/sweep/checks.js';
import { expectedModel, patternRegex } from '../../src/tools/sweep/expected.js';
import { renderReport } from '../../src/tools/sweep/report.js';
import type { SweepResult } from '../../src/tools/sweep/run.js';
import { parseSweepArgs } from '../../src/tools/sweep.js';
import { ROOT } from '../helpers/paths.js';

const MODELS = path.join(ROOT, 'assets', 'sim-models');

function device(model: 'tr181' | 'tr098'): SimDevice {
  return new SimDevice({ template: loadModel(model), serial: 'SW000001', index: 0, acsUrl: 'http://127.0.0.1:9/' });
}

test('patternRegex: wildcards are instance numbers, a trailing dot is a prefix', () => {
  const re = patternRegex('Device.IP.Interface.*.IPv4Address.*.IPAddress');
  assert.ok(re.test('Device.IP.Interface.12.IPv4Address.3.IPAddress'));
  assert.ok(!re.test('Device.IP.Interface.1.IPv4Address.1.IPAddressX'));
  assert.ok(!re.test('Device.IP.Interface.a.IPv4Address.1.IPAddress'));
  const all = patternRegex('Device.Hosts.Host.*.');
  assert.ok(all.test('Device.Hosts.Host.2.IPv4Address.1.IPAddress'));
  assert.ok(!all.test('Device.Hosts.HostNumberOfEntries'));
});

test('diffValues: missing, wrong and unexpected entries, or nothing', () => {
  const want = new Map([
    ['a', '1'],
    ['b', '2'],
    ['c', '3'],
  ]);
  assert.equal(diffValues(new Map(want), want), '');
  assert.equal(
    diffValues(
      new Map([
        ['a', '1'],
        ['b', 'x'],
        ['d', '4'],
      ]),
      want,
    ),
    'missing c; wrong b="x" (want "2"); unexpected d',
  );
});

test('expected model, TR-181: instances, values (booleans as USP says them), writable table', () => {
  const e = expectedModel(device('tr181'), loadDefaultMapping());
  assert.deepEqual(e.instances('Device.WiFi.SSID.'), ['Device.WiFi.SSID.1.', 'Device.WiFi.SSID.2.']);
  assert.equal(e.instances('Device.NoSuchTable.'), null);
  assert.deepEqual(
    [...e.values('Device.WiFi.SSID.*.SSID')],
    [
      ['Device.WiFi.SSID.1.SSID', 'SimGW-2G'],
      ['Device.WiFi.SSID.2.SSID', 'SimGW-5G'],
    ],
  );
  assert.equal(e.values('Device.WiFi.SSID.*.').get('Device.WiFi.SSID.1.Enable'), 'true');
  assert.equal(e.nativeParam('Device.WiFi.SSID.1.SSID'), 'Device.WiFi.SSID.1.SSID');
  const t = e.writableTable()!;
  assert.equal(t.usp, 'Device.NAT.PortMapping.');
  assert.ok(t.accepts('Device.NAT.PortMapping.') && !t.accepts('Device.NAT.'));
});

test('expected model, TR-098: the Device:2 view the mapping gives, native paths for Set', () => {
  const dev = device('tr098');
  const e = expectedModel(dev, loadDefaultMapping());
  const ssids = e.instances('Device.WiFi.SSID.')!;
  assert.ok(ssids.length >= 1);
  const v = e.values('Device.WiFi.SSID.*.SSID');
  assert.equal(v.size, ssids.length);
  const native = e.nativeParam(`${ssids[0]}SSID`)!;
  assert.match(native, /^InternetGatewayDevice\.LANDevice\.1\.WLANConfiguration\.\d+\.SSID$/);
  assert.equal(v.get(`${ssids[0]}SSID`), dev.getValue(native), 'the value is the native one');
  assert.deepEqual(e.nativeSet(`${ssids[0]}SSID`, 'x'), [{ path: native, value: 'x' }]);
  assert.throws(() => e.nativeSet('Device.DeviceInfo.SerialNumber', 'x'), /read-only/);
});

test('parseSweepArgs: DIR, quirks (strict by default, none), JSON, clear errors', () => {
  const r = parseSweepArgs([MODELS, '--json']);
  assert.ok(!r.help);
  if (r.help) return;
  assert.equal(r.opts.dir, MODELS);
  assert.equal(r.json, true);
  assert.deepEqual(r.opts.quirks, parseQuirks('strict'));
  const n = parseSweepArgs([MODELS, '--quirks', 'none', '--timeout-ms', '5000']);
  assert.ok(!n.help && Object.keys(n.opts.quirks).length === 0 && n.opts.requestTimeoutMs === 5000);
  assert.throws(() => parseSweepArgs([MODELS, '--quirks', 'nope']), /--quirks: unknown quirk "nope"/);
  assert.throws(() => parseSweepArgs([path.join(MODELS, 'missing')]), /not a folder/);
  assert.throws(() => parseSweepArgs([MODELS, MODELS]), /one DIR at most/);
  assert.throws(() => parseSweepArgs([MODELS, '--timeout-ms', '5']), /--timeout-ms must be an integer/);
  assert.throws(() => parseSweepArgs([MODELS, '--log-level', 'loud']), /--log-level must be one of/);
  assert.deepEqual(parseSweepArgs(['--help']), { help: true });
});

test('renderReport: a row per model, a column per check, reasons and wire costs', () => {
  const checks = Object.fromEntries(CHECKS.map((c) => [c, { status: 'ok' as const, ms: 1 }])) as SweepResult['models'][number]['checks'];
  const r: SweepResult = {
    dir: '/m',
    quirks: 'none',
    checks: CHECKS,
    ok: false,
    models: [
      {
        model: 'vendor-a',
        file: '/m/vendor-a.csv',
        root: 'Device.',
        params: 10,
        serialNumber: 'S',
        endpointId: 'os::X-S',
        checks: { ...checks, hosts: { status: 'FAIL', reason: 'missing Device.Hosts.Host.2.', ms: 3 } },
        firstGet: { rpcs: { GetParameterNames: 1, GetParameterValues: 2 }, bytes: 2_500_000, ms: 900 },
        steadyGet: { rpcs: { GetParameterValues: 1 }, bytes: 1800, ms: 5 },
        learnMs: 895,
      },
    ],
  };
  const text = renderReport(r).join('\n');
  assert.match(text, /^model +register +get-one .* value-change$/m);
  assert.match(text, /^vendor-a +ok +ok .* FAIL /m);
  assert.match(text, /vendor-a \/ hosts: FAIL missing Device\.Hosts\.Host\.2\./);
  assert.match(text, /first Get, never-seen model \(includes learning it\): 3 RPCs \(GetParameterNames 1, GetParameterValues 2\), 2\.38 MB, 900 ms/);
  assert.match(text, /time to learn the model \(first less steady Get\): {5}895 ms/);
  assert.match(text, /1 check\(s\) failed\.$/);
  assert.equal(describeCost({ rpcs: { GetParameterValues: 1 }, bytes: 1800, ms: 5 }), '1 RPC (GetParameterValues 1), 1.8 kB, 5 ms');
});
