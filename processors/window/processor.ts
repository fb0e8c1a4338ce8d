/**
 * Windowed aggregation: accumulates the delta batches that arrive during a
 * window and hands on one batch per window (delta sums and histograms added,
 * cumulative values and gauges at their last value), the delta-per-window
 * stream push exporters want. Windows are aligned to start(): [t0, t0+w),
 * [t0+w, t0+2w), … A batch belongs to the window it arrives in.
 *
 * Beside every histogram it emits one gauge per configured percentile (see
 * percentile-names.ts), computed from that window's buckets as
 * histogram_quantile() would. A series without observations in a window gets
 * no percentile point for it (Prometheus would say NaN); the Prometheus
 * exporter then goes on showing the gauge's last value until its
 * metric_expiration.
 */
import type { Component, Consumer, CreateSettings } from '../../collector/component.js';
import { metricPointCount, type GaugeMetric, type HistogramMetric, type Metric, type MetricBatch } from '../../collector/data/metrics.js';
import { PointAggregator } from '../common/aggregator.js';
import type { WindowConfig } from './config.js';
import { percentileGaugeName } from './percentile-names.js';
import { histogramQuantile } from './quantile.js';

export class WindowProcessor implements Component, Consumer<'metrics'> {
  readonly mutatesData = false;
  private current = new PointAggregator('time');
  private windowStartMs = Date.now();
  private nextBoundaryMs = 0;
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  /** After shutdown nothing would flush a window, so each late batch is handed on as a window of its own. */
  private stopped = false;
  private failing = false;

  constructor(private readonly settings: CreateSettings, private readonly config: WindowConfig, private readonly next: Consumer<'metrics'>) {}

  async consume(batch: MetricBatch): Promise<void> {
    let refused = 0;
    for (const metric of batch.metrics) for (const point of metric.points) if (!this.current.add(metric, point.attributes, point)) refused++;
    if (refused > 0) this.settings.telemetry.dropped('metrics', refused, 'conflicting_metric_shape');
    if (this.stopped) await this.flush(Date.now());
  }

  async start(): Promise<void> {
    this.windowStartMs = Date.now();
    this.nextBoundaryMs = this.windowStartMs + this.config.window;
    this.schedule();
  }

  private schedule(): void {
    const now = Date.now();
    // A timer that fired late (a busy event loop) widens the current window rather than emitting empty ones.
    while (this.nextBoundaryMs <= now) this.nextBoundaryMs += this.config.window;
    const boundary = this.nextBoundaryMs;
    this.timer = setTimeout(() => {
      this.nextBoundaryMs = boundary + this.config.window;
      this.flushing = this.flush(boundary).finally(() => {
        this.flushing = undefined;
        if (this.timer) this.schedule();
      });
    }, boundary - now);
  }

  /** Stops the timer and hands on the partial window. Safe without start and twice. */
  async shutdown(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopped = true;
    await this.flushing;
    await this.flush(Date.now());
  }

  /** Hands on the window that ends at `endMs` and opens the next; a failure is counted and reported, never thrown. */
  private async flush(endMs: number): Promise<void> {
    const window = this.current;
    const startMs = this.windowStartMs;
    this.current = new PointAggregator('time');
    this.windowStartMs = endMs;
    if (window.isEmpty) return;
    const metrics: Metric[] = [];
    for (const metric of window.metrics()) {
      metrics.push(metric);
      if (metric.type === 'histogram') metrics.push(...this.percentileGauges(metric));
    }
    const batch: MetricBatch = { startTimeMs: startMs, endTimeMs: endMs, metrics };
    try {
      await this.next.consume(batch);
      if (this.failing) this.settings.status.report('ok');
      this.failing = false;
    } catch (error) {
      this.failing = true;
      this.settings.telemetry.dropped('metrics', metricPointCount(batch), 'next_consumer_failed');
      this.settings.status.report('recoverable_error', `handing on a window failed: ${(error as Error).message}`);
    }
  }

  private percentileGauges(histogram: HistogramMetric): GaugeMetric[] {
    const gauges: GaugeMetric[] = [];
    for (const percentile of this.config.percentiles) {
      const gauge: GaugeMetric = {
        type: 'gauge',
        name: percentileGaugeName(histogram.name, percentile),
        description: `Percentile ${percentile} of ${histogram.name} in each ${formatMs(this.config.window)} window, interpolated within its bucket as histogram_quantile() does.`,
        unit: histogram.unit,
        points: [],
      };
      for (const point of histogram.points) {
        const value = histogramQuantile(percentile / 100, point.boundaries, point.bucketCounts);
        if (value !== undefined) gauge.points.push({ attributes: point.attributes, value });
      }
      if (gauge.points.length > 0) gauges.push(gauge);
    }
    return gauges;
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
