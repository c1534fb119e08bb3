import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadMapping, mappingsDir, MappingLoadError } from '../../src/mapping/load.js';

const dir = mappingsDir();
const schema = path.join(dir, 'schema.json');
const good = readFileSync(path.join(dir, 'tr098-to-tr181.json'), 'utf8');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'mapping-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

function withText(text: string): string {
  const f = path.join(tmp, `bad-${++n}.json`);
  writeFileSync(f, text);
  return f;
}

function expectError(text: string, key: RegExp, detail: RegExp): MappingLoadError {
  const f = withText(text);
  try {
    loadMapping(f, schema);
  } catch (e) {
    assert.ok(e instanceof MappingLoadError, String(e));
    assert.equal(e.file, f);
    assert.match(e.key, key);
    assert.match(e.detail, detail);
    assert.ok(e.message.startsWith(`${f}:${e.line}: `));
    return e;
  }
  assert.fail('expected a MappingLoadError');
}

test('the bundled mapping loads', () => {
  const r = loadMapping(path.join(dir, 'tr098-to-tr181.json'));
  assert.equal(r.nativeRoot, 'InternetGatewayDevice.');
  assert.ok(r.objects.length > 20);
});

test('an unknown key names file, line and key', () => {
  const text = good.replace('"passthrough": true, "writable": false }', '"passthrough": true, "writeable": false }');
  const e = expectError(text, /^objects\/\d+\/params\/Status\/writeable$/, /unknown key/);
  assert.equal(e.line, text.slice(0, text.indexOf('"writeable"')).split('\n').length);
});

test('a bad type and a bad path pattern are located', () => {
  const t1 = good.replace('"readOnly": true', '"readOnly": "yes"');
  const e1 = expectError(t1, /^objects\/\d+\/readOnly$/, /expected boolean/);
  assert.equal(e1.line, t1.slice(0, t1.indexOf('"readOnly": "yes"')).split('\n').length);
  const t2 = good.replace('"usp": "Device.Time."', '"usp": "Device.Time"');
  const e2 = expectError(t2, /^objects\/\d+\/usp$/, /does not match/);
  assert.equal(e2.line, t2.slice(0, t2.indexOf('"usp": "Device.Time"')).split('\n').length);
});

test('semantic errors: unknown count table, unknown compose input, JSON syntax', () => {
  expectError(good.replace('"count": "Device.WiFi.Radio.{i}."', '"count": "Device.WiFi.Radios.{i}."'), /params\/RadioNumberOfEntries\/count$/, /no table rule/);
  expectError(good.replace('{ "when": { "beacon": "None" }', '{ "when": { "beacn": "None" }'), /compose\/toUsp\/0\/when\/beacn$/, /unknown input/);
  const e = expectError(good.replace('"nativeRoot": "InternetGatewayDevice.",', '"nativeRoot": "InternetGatewayDevice." oops'), /^$/, /invalid JSON/);
  assert.ok(e.line > 1);
});

test('semantic errors of the row-shaping rules: groupByBand, listRows, rowsWhen and oneRow only on fitting tables, derived band only with groupByBand', () => {
  /** The bundled mapping with one rule changed. */
  const edit = (usp: string, change: (rule: Record<string, unknown>) => void): string => {
    const doc = JSON.parse(good) as { objects: Record<string, unknown>[] };
    const rule = doc.objects.find((o) => o.usp === usp);
    assert.ok(rule, usp);
    change(rule);
    return JSON.stringify(doc, null, 2);
  };
  expectError(
    edit('Device.WiFi.', (r) => (r.listRows = 'X')),
    /objects\/\d+\/listRows$/,
    /listRows needs a table rule/,
  );
  expectError(
    edit('Device.WiFi.', (r) => (r.rowsWhen = { Type: ['x'] })),
    /objects\/\d+\/rowsWhen$/,
    /rowsWhen needs a table rule/,
  );
  expectError(
    edit('Device.Optical.Interface.{i}.', (r) => (r.rowsWhen = { 'WANCommonInterfaceConfig.WANAccessType': [] })),
    /objects\/\d+\/rowsWhen\/WANCommonInterfaceConfig\.WANAccessType$/,
    /needs at least 1 item/,
  );
  expectError(
    edit('Device.DeviceInfo.', (r) => (r.groupByBand = { band: ['Band'] })),
    /objects\/\d+\/groupByBand$/,
    /only a table rule can group rows by band/,
  );
  expectError(
    edit('Device.Routing.Router.{i}.', (r) => (r.native = 'InternetGatewayDevice.Layer3Forwarding.{a}.')),
    /objects\/\d+\/oneRow$/,
    /oneRow needs a table rule on native objects without placeholders/,
  );
  expectError(
    edit('Device.Routing.Router.{i}.', (r) => delete r.oneRow),
    /objects\/\d+\/native$/,
    /needs a placeholder/,
  );
  expectError(
    edit('Device.WiFi.Radio.{i}.', (r) => delete r.groupByBand),
    /params\/OperatingFrequencyBand\/derived$/,
    /only in a rule with groupByBand/,
  );
});
