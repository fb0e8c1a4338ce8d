/**
 * Drops labels per metric and caps the series each metric may have, so that
 * high-cardinality labels (tid, pid, uid) never reach an exporter.
 *
 * Points that become the same series once labels are dropped merge: sums,
 * histogram buckets/sum/count and gauges add up (see PointAggregator). Points
 * beyond the series cap fold into the metric's overflow series (see
 * SeriesCap); they are counted as dropped with reason `series_cap`, since
 * their labels are lost although their values are kept in the overflow series.
 */
import type { Component, Consumer, CreateSettings } from '../../collector/component.js';
import type { MetricBatch } from '../../collector/data/metrics.js';
import { PointAggregator } from '../common/aggregator.js';
import type { LabelsConfig } from './config.js';
import { LabelRules } from './label-rules.js';
import { SeriesCap } from './series-cap.js';

export class LabelsProcessor implements Component, Consumer<'metrics'> {
  readonly mutatesData = false;
  private readonly rules: LabelRules;
  private readonly cap: SeriesCap;

  constructor(private readonly settings: CreateSettings, config: LabelsConfig, private readonly next: Consumer<'metrics'>) {
    this.rules = new LabelRules(config);
    this.cap = new SeriesCap(config.max_series_per_metric, config.series_expiration);
  }

  async consume(batch: MetricBatch): Promise<void> {
    const merged = new PointAggregator('series');
    let folded = 0;
    let conflicting = 0;
    this.cap.expire(batch.endTimeMs);
    for (const metric of batch.metrics) {
      const select = this.rules.forMetric(metric.name);
      for (const point of metric.points) {
        const selected = select(point.attributes);
        const attributes = this.cap.admit(metric.name, selected, batch.endTimeMs);
        if (attributes !== selected) folded++;
        if (!merged.add(metric, attributes, point)) conflicting++;
      }
    }
    const { telemetry } = this.settings;
    if (folded > 0) telemetry.dropped('metrics', folded, 'series_cap');
    if (conflicting > 0) telemetry.dropped('metrics', conflicting, 'conflicting_metric_shape');
    await this.next.consume({ startTimeMs: batch.startTimeMs, endTimeMs: batch.endTimeMs, metrics: merged.metrics() });
  }

  // Nothing to open or hold: every batch is handed on as it is consumed.
  async start(): Promise<void> {}
  async shutdown(): Promise<void> {}
}
