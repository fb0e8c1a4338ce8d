/**
 * Merges metric points that fall on the same series (metric name + attributes)
 * into one point each, keeping metrics and series in first-seen order.
 *
 * Two kinds of merge, because they mean different things:
 * - `series`: distinct series collapse into one (labels were dropped, or a cap
 *   folded them together). Everything adds up, as `sum without (...)` would:
 *   sums, histogram buckets/sum/count, and gauges too (the parts of a whole,
 *   e.g. per-pid memory summed per pod).
 * - `time`: successive points of one series over an interval. Deltas add up;
 *   cumulative values and gauges are states, so the last one wins.
 */
import type { Attributes, HistogramPoint, Metric, NumberPoint } from '../../collector/data/metrics.js';
import { attributesKey } from '../../collector/data/metrics.js';

export type MergeAcross = 'series' | 'time';

type Point = NumberPoint | HistogramPoint;

interface Entry {
  /** The metric as first seen, without points: its name, type and shape. */
  template: Metric;
  points: Map<string, Point>;
}

export class PointAggregator {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly across: MergeAcross) {}

  get isEmpty(): boolean {
    return this.entries.size === 0;
  }

  /**
   * Merges `point` of `metric` into the series `attributes`. Returns false, keeping
   * nothing, when it cannot merge: the name was first seen with another type,
   * temporality or monotonicity, or a histogram has other bucket boundaries.
   */
  add(metric: Metric, attributes: Attributes, point: Point): boolean {
    let entry = this.entries.get(metric.name);
    if (!entry) {
      entry = { template: { ...metric, points: [] } as Metric, points: new Map() };
      this.entries.set(metric.name, entry);
    } else if (!sameShape(entry.template, metric)) {
      return false;
    }
    const key = attributesKey(attributes);
    const existing = entry.points.get(key);
    if (!existing) {
      entry.points.set(key, copyPoint(point, attributes));
      return true;
    }
    const adds = this.across === 'series' || (metric.type !== 'gauge' && metric.temporality === 'delta');
    if (metric.type === 'histogram') {
      const into = existing as HistogramPoint;
      const from = point as HistogramPoint;
      if (!sameBoundaries(into.boundaries, from.boundaries)) return false;
      if (adds) {
        from.bucketCounts.forEach((count, i) => (into.bucketCounts[i] += count));
        into.sum += from.sum;
        into.count += from.count;
      } else {
        into.bucketCounts = [...from.bucketCounts];
        into.sum = from.sum;
        into.count = from.count;
      }
    } else {
      const into = existing as NumberPoint;
      into.value = adds ? into.value + (point as NumberPoint).value : (point as NumberPoint).value;
    }
    keepEarliestStart(existing, point);
    return true;
  }

  /** The merged metrics, in the order their names were first seen. */
  metrics(): Metric[] {
    return [...this.entries.values()].map(({ template, points }) => ({ ...template, points: [...points.values()] }) as Metric);
  }
}

/** A merged point starts when its earliest part started. */
function keepEarliestStart(into: Point, from: Point): void {
  if (from.startTimeMs !== undefined && (into.startTimeMs === undefined || from.startTimeMs < into.startTimeMs)) into.startTimeMs = from.startTimeMs;
}

function copyPoint(point: Point, attributes: Attributes): Point {
  if ('bucketCounts' in point) return { ...point, attributes, boundaries: [...point.boundaries], bucketCounts: [...point.bucketCounts] };
  return { ...point, attributes };
}

function sameShape(a: Metric, b: Metric): boolean {
  if (a.type !== b.type) return false;
  if (a.type === 'sum' && b.type === 'sum') return a.temporality === b.temporality && a.monotonic === b.monotonic;
  if (a.type === 'histogram' && b.type === 'histogram') return a.temporality === b.temporality;
  return true;
}

function sameBoundaries(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
