/**
 * A histogram of one label for the USP hot path (two observations per Get), registered in a
 * prom-client Registry and exposed exactly as prom-client's Histogram is (same lines, same
 * order). prom-client's observe() builds a label object, validates it and hashes it into a
 * string per observation; here the series is found by its label value in a Map and the bucket
 * counted in place.
 */
import type { Registry } from 'prom-client';

interface Series {
  labels: Record<string, string>;
  /** Per bucket (not cumulative), then the count above the last bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

interface ValuePair {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
}

export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly bounds: readonly number[],
    registers: readonly Registry[],
  ) {
    for (let i = 1; i < bounds.length; i++) if (!(bounds[i]! > bounds[i - 1]!)) throw new Error(`${name}: buckets must increase`);
    // registerMetric takes any object with prom-client's metric shape (name, help, type, get).
    for (const r of registers) r.registerMetric(this as never);
  }

  /** One observation (seconds) under the label value. Non-finite values are ignored. */
  observe(labelValue: string, value: number): void {
    if (!Number.isFinite(value)) return;
    let s = this.series.get(labelValue);
    if (!s) this.series.set(labelValue, (s = { labels: { [this.labelName]: labelValue }, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 }));
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  reset(): void {
    this.series.clear();
  }

  /** What prom-client's Registry formats (its Histogram's getForPromString). */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: ValuePair[] }> {
    const values: ValuePair[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.bounds[i]! }, sharedLabels: s.labels, value: acc, metricName: bucket });
      }
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** The JSON form (labels merged, as prom-client's Histogram.get()). */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: ValuePair[] }> {
    const m = await this.getForPromString();
    m.values = m.values.map(({ labels, sharedLabels, value, metricName }) => ({ labels: { ...labels, ...sharedLabels }, value, metricName }));
    return m;
  }
}
