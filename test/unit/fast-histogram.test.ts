/**
 * src/ops/fast-histogram.ts: exposed exactly as prom-client's Histogram with the same buckets,
 * label and observations (text and JSON), including values on a bound, above the last bound and
 * several label values; non-finite values are ignored; reset empties it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { FastHistogram } from '../../src/ops/fast-histogram.js';

const BUCKETS = [0.0001, 0.00025, 0.001, 0.01, 0.5, 1];
const OBSERVED: Array<[string, number]> = [
  ['GET', 0.00005],
  ['GET', 0.0001],
  ['GET', 0.0002],
  ['SET', 0.3],
  ['GET', 0.75],
  ['GET', 7],
  ['SET', 0],
  ['OPERATE', 1],
];

function both() {
  const ours = new Registry();
  const theirs = new Registry();
  const fast = new FastHistogram('usp_x_seconds', 'Time of x', 'msg_type', BUCKETS, [ours]);
  const ref = new Histogram({ name: 'usp_x_seconds', help: 'Time of x', labelNames: ['msg_type'], buckets: BUCKETS, registers: [theirs] });
  return { ours, theirs, fast, ref };
}

test('the exposition equals prom-client Histogram for the same observations', async () => {
  const { ours, theirs, fast, ref } = both();
  assert.equal(await ours.metrics(), await theirs.metrics(), 'nothing observed yet');
  for (const [label, v] of OBSERVED) {
    fast.observe(label, v);
    ref.observe({ msg_type: label }, v);
  }
  const text = await ours.metrics();
  assert.equal(text, await theirs.metrics());
  assert.match(text, /usp_x_seconds_bucket\{le="0.0001",msg_type="GET"\} 2/);
  assert.match(text, /usp_x_seconds_bucket\{le="\+Inf",msg_type="GET"\} 5/);
  // The JSON form alike too, but for prom-client's exemplar slot (null: exemplars are not used).
  const noExemplar = (ms: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
    ms.map((m) => ({ ...m, values: m.values.map((v) => Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'exemplar'))) }));
  assert.deepEqual(noExemplar(await ours.getMetricsAsJSON()), noExemplar(await theirs.getMetricsAsJSON()));
});

test('non-finite values are ignored; reset empties the histogram', async () => {
  const { ours, fast } = both();
  fast.observe('GET', Number.NaN);
  fast.observe('GET', Number.POSITIVE_INFINITY);
  assert.doesNotMatch(await ours.metrics(), /usp_x_seconds_count/);
  fast.observe('GET', 0.001);
  assert.match(await ours.metrics(), /usp_x_seconds_count\{msg_type="GET"\} 1/);
  fast.reset();
  assert.doesNotMatch(await ours.metrics(), /usp_x_seconds_count/);
  assert.throws(() => new FastHistogram('usp_y_seconds', 'y', 'l', [1, 1], []), /increase/);
});
