/**
 * Cumulative state for a pull exporter: delta sums and histograms add up,
 * cumulative values and gauges replace. Series idle past their expiration are
 * dropped.
 */
import { attributesKey, type Attributes, type HistogramPoint, type Metric, type MetricBatch } from '../../collector/data/metrics.js';

interface Series {
  attributes: Attributes;
  startTimeMs: number;
  updatedMs: number;
  value: number;
  histogram?: Omit<HistogramPoint, 'attributes'>;
}

interface Entry {
  /** The metric as first seen, without its points: name, type, description. */
  template: Metric;
  series: Map<string, Series>;
}

export class CumulativeAccumulator {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly expirationMs: number) {}

  /** Adds a batch; returns how many points were refused (a name reused with another type or bucket layout). */
  add(batch: MetricBatch): number {
    let refused = 0;
    for (const metric of batch.metrics) {
      let entry = this.entries.get(metric.name);
      if (!entry) {
        entry = { template: { ...metric, points: [] } as Metric, series: new Map() };
        this.entries.set(metric.name, entry);
      } else if (entry.template.type !== metric.type) {
        refused += metric.points.length;
        continue;
      }
      const replaces = metric.type === 'gauge' || metric.temporality === 'cumulative';
      for (const point of metric.points) {
        const key = attributesKey(point.attributes);
        const existing = entry.series.get(key);
        const series = existing ?? { attributes: point.attributes, startTimeMs: point.startTimeMs ?? batch.startTimeMs, updatedMs: 0, value: 0 };
        if (metric.type === 'histogram') {
          const p = point as HistogramPoint;
          const state = series.histogram;
          if (!state || replaces) {
            series.histogram = { boundaries: p.boundaries, bucketCounts: [...p.bucketCounts], sum: p.sum, count: p.count };
          } else if (!sameBoundaries(state.boundaries, p.boundaries)) {
            refused++;
            continue;
          } else {
            p.bucketCounts.forEach((c, i) => (state.bucketCounts[i] += c));
            state.sum += p.sum;
            state.count += p.count;
          }
        } else {
          const value = (point as { value: number }).value;
          series.value = replaces ? value : series.value + value;
        }
        series.updatedMs = batch.endTimeMs;
        if (!existing) entry.series.set(key, series);
      }
    }
    return refused;
  }

  /** The cumulative state now, as one batch; expired series are dropped first. */
  snapshot(nowMs: number): MetricBatch {
    const metrics: Metric[] = [];
    let start = nowMs;
    for (const [name, entry] of this.entries) {
      for (const [key, series] of entry.series) if (nowMs - series.updatedMs > this.expirationMs) entry.series.delete(key);
      if (entry.series.size === 0) {
        this.entries.delete(name);
        continue;
      }
      const all = [...entry.series.values()];
      for (const s of all) start = Math.min(start, s.startTimeMs);
      const { template } = entry;
      switch (template.type) {
        case 'histogram':
          metrics.push({
            ...template,
            temporality: 'cumulative',
            points: all.map((s) => ({ attributes: s.attributes, startTimeMs: s.startTimeMs, ...s.histogram!, bucketCounts: [...s.histogram!.bucketCounts] })),
          });
          break;
        case 'sum':
          metrics.push({ ...template, temporality: 'cumulative', points: all.map((s) => ({ attributes: s.attributes, startTimeMs: s.startTimeMs, value: s.value })) });
          break;
        case 'gauge':
          metrics.push({ ...template, points: all.map((s) => ({ attributes: s.attributes, startTimeMs: s.startTimeMs, value: s.value })) });
          break;
      }
    }
    return { startTimeMs: start, endTimeMs: nowMs, metrics };
  }
}

function sameBoundaries(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
