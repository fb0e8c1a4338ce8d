/**
 * The metrics signal as it travels through a pipeline. Receivers emit deltas
 * (what they drained from kernel maps since the last read); exporters that need
 * cumulative state (Prometheus) accumulate it themselves.
 */
export type Attributes = Record<string, string>;

export type Temporality = 'delta' | 'cumulative';

interface PointBase {
  attributes: Attributes;
  /** When the series started counting, for cumulative points; the batch start otherwise. */
  startTimeMs?: number;
}

export interface NumberPoint extends PointBase {
  value: number;
}

export interface HistogramPoint extends PointBase {
  /** Upper bounds (inclusive, as Prometheus `le`); the last bucket is +Inf. */
  boundaries: number[];
  /** One count per bucket: boundaries.length + 1 entries. */
  bucketCounts: number[];
  sum: number;
  count: number;
}

interface MetricBase {
  name: string;
  description: string;
  unit?: string;
}

export interface SumMetric extends MetricBase {
  type: 'sum';
  monotonic: boolean;
  temporality: Temporality;
  points: NumberPoint[];
}

export interface GaugeMetric extends MetricBase {
  type: 'gauge';
  points: NumberPoint[];
}

export interface HistogramMetric extends MetricBase {
  type: 'histogram';
  temporality: Temporality;
  points: HistogramPoint[];
}

export type Metric = SumMetric | GaugeMetric | HistogramMetric;

export interface MetricBatch {
  /** Start of the interval the batch covers (ms since epoch). */
  startTimeMs: number;
  /** End of the interval, when the data was read (ms since epoch). */
  endTimeMs: number;
  metrics: Metric[];
}

/** Number of data points, the unit that self-telemetry counts for metrics. */
export function metricPointCount(batch: MetricBatch): number {
  let n = 0;
  for (const m of batch.metrics) n += m.points.length;
  return n;
}

/**
 * A stable key for an attribute set, independent of insertion order: the JSON
 * of the set with its keys in one canonical order. Attributes built the same
 * way every time (the common case) are already in it and are not copied.
 */
export function attributesKey(attributes: Attributes): string {
  const keys = Object.keys(attributes);
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1] > keys[i]) {
      // An object lists integer-like keys first whatever the insertion order, so a sorted copy lists
      // its keys as any object with the same keys that passes the check above does.
      const sorted: Attributes = {};
      for (const key of keys.sort()) sorted[key] = attributes[key];
      return JSON.stringify(sorted);
    }
  }
  return JSON.stringify(attributes);
}
