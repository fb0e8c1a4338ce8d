/**
 * Bounds the series per metric: the first `limit` distinct label sets seen are
 * kept; points of any further label set go to one overflow series per metric.
 *
 * The overflow series carries the single attribute `otel.metric.overflow="true"`
 * (`otel_metric_overflow="true"` on a Prometheus scrape), the OpenTelemetry
 * SDKs' cardinality-limit convention: it cannot clash with a real label value,
 * `sum(metric)` stays exact, and `metric{otel_metric_overflow="true"}` shows
 * how much fell outside the cap. The overflow series does not count toward the
 * limit, so a metric has at most limit + 1 series.
 *
 * Kept label sets are remembered across batches (at most `limit` per metric); one
 * unseen for `expirationMs` frees its place, so that series of processes that
 * have gone make room for new ones.
 */
import type { Attributes } from '../../collector/data/metrics.js';
import { attributesKey } from '../../collector/data/metrics.js';

export const OVERFLOW_ATTRIBUTES: Readonly<Attributes> = Object.freeze({ 'otel.metric.overflow': 'true' });

export class SeriesCap {
  /** Per metric: kept label-set key → when it was last seen (batch end, ms). */
  private readonly kept = new Map<string, Map<string, number>>();

  constructor(private readonly limit: number, private readonly expirationMs: number) {}

  /** Forgets kept label sets unseen since `nowMs - expirationMs`; call once per batch before admit(). */
  expire(nowMs: number): void {
    for (const [metric, seen] of this.kept) {
      for (const [key, lastSeenMs] of seen) if (nowMs - lastSeenMs > this.expirationMs) seen.delete(key);
      if (seen.size === 0) this.kept.delete(metric);
    }
  }

  /** The attributes the point is recorded under: its own, or the overflow series'. */
  admit(metric: string, attributes: Attributes, nowMs: number): Attributes {
    if (this.limit === 0) return attributes;
    let seen = this.kept.get(metric);
    if (!seen) {
      seen = new Map();
      this.kept.set(metric, seen);
    }
    const key = attributesKey(attributes);
    if (seen.has(key) || seen.size < this.limit) {
      seen.set(key, nowMs);
      return attributes;
    }
    return OVERFLOW_ATTRIBUTES;
  }
}
