/**
 * The parse budget of one request body (issue 14 item 4; config acs.limits.parse): elements,
 * attributes and time are counted by the well-formedness scan before the parser builds a tree,
 * the defaults pass the largest real bodies (an 8 MB GetParameterValuesResponse), and decode
 * warnings are capped per request (the rest only counted). Inline and on the worker pool alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSoap, encodeSoap, SoapError } from '../../src/cwmp/soap.js';
import { DEFAULT_PARSE_BUDGET } from '../../src/cwmp/soap-wellformed.js';
import { DecodePool } from '../../src/cwmp/decode-pool.js';

const ENV = (inner: string): string =>
  '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">1</cwmp:ID></soap-env:Header><soap-env:Body>' +
  inner +
  '</soap-env:Body></soap-env:Envelope>';

/** A GetParameterValuesResponse with one unexpected element per extra. */
const gpvWith = (extra: string, n: number): string =>
  ENV(
    `<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>Device.DeviceInfo.UpTime</Name><Value xsi:type="xsd:unsignedInt" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">5</Value></ParameterValueStruct></ParameterList>${extra.repeat(n)}</cwmp:GetParameterValuesResponse>`,
  );

function overBudget(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof SoapError && e.code === 'over-budget' && re.test(e.message));
}

test('a million empty elements are refused by the element budget before any tree is built', () => {
  const xml = gpvWith('<a/>', 1_000_000);
  overBudget(() => decodeSoap(xml), /more than 500000 elements/);
  overBudget(() => decodeSoap(xml, { budget: { ...DEFAULT_PARSE_BUDGET, maxElements: 1000 } }), /more than 1000 elements/);
});

test('attributes are budgeted over the whole document, not only per element', () => {
  const attrs = Array.from({ length: 20 }, (_, i) => ` a${i}="v"`).join('');
  const xml = gpvWith(`<x${attrs}/>`, 100); // 2,000 attributes, 20 per element (under the per-element limit)
  assert.ok(decodeSoap(xml).envelope);
  overBudget(() => decodeSoap(xml, { budget: { ...DEFAULT_PARSE_BUDGET, maxAttributes: 1000 } }), /more than 1000 attributes/);
});

test('the time budget stops a long decode', () => {
  const xml = gpvWith('<a/>', 50_000);
  overBudget(() => decodeSoap(xml, { budget: { ...DEFAULT_PARSE_BUDGET, maxMs: 0 } }), /took more than 0 ms/);
});

test('the default budget accepts an 8 MB GetParameterValuesResponse (75,000 parameters)', () => {
  const parameterList = Array.from({ length: 75_000 }, (_, i) => ({
    name: `Device.WiFi.AccessPoint.${i}.AssociatedDevice.1.Stats.BytesSent`,
    value: String(i),
    type: 'xsd:unsignedLong',
  }));
  const xml = encodeSoap({ cwmpVersion: '1-2', id: '7', body: { method: 'GetParameterValuesResponse', parameterList } });
  assert.ok(xml.length > 7_000_000, `body of ${xml.length} characters`);
  const r = decodeSoap(xml);
  assert.equal(r.envelope?.body.method, 'GetParameterValuesResponse');
});

test('warnings are capped per decode: the first ones kept, the rest counted', () => {
  const xml = gpvWith('<Unexpected/>', 100_000);
  const r = decodeSoap(xml, { maxWarnings: 5 });
  assert.equal(r.envelope?.body.method, 'GetParameterValuesResponse');
  assert.equal(r.warnings.length, 5);
  assert.equal(r.warningsDropped, 100_000 - 5);
  const none = decodeSoap(gpvWith('', 0));
  assert.equal(none.warnings.length, 0);
  assert.equal(none.warningsDropped, undefined);
});

test('the worker pool applies the same budget and warning cap', async () => {
  const pool = new DecodePool(1, 0, { budget: { ...DEFAULT_PARSE_BUDGET, maxElements: 2000 }, maxWarnings: 3 });
  try {
    const big = gpvWith('<a/>', 5000);
    await assert.rejects(pool.decode(big, big.length), (e: unknown) => e instanceof SoapError && e.code === 'over-budget');
    const noisy = gpvWith('<Unexpected/>', 1000);
    const r = await pool.decode(noisy, noisy.length);
    assert.equal(r.warnings.length, 3);
    assert.equal(r.warningsDropped, 997);
  } finally {
    await pool.close();
  }
});
