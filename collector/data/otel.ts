/** Our metrics as the OpenTelemetry SDK's MetricData, which its Prometheus and OTLP serializers take. */
import { ValueType } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { AggregationTemporality, DataPointType, type MetricData } from '@opentelemetry/sdk-metrics';
import type { MetricBatch, Temporality } from './metrics.js';

const TEMPORALITY: Record<Temporality, AggregationTemporality> = {
  delta: AggregationTemporality.DELTA,
  cumulative: AggregationTemporality.CUMULATIVE,
};

export function toOtelMetrics(batch: MetricBatch): MetricData[] {
  const endTime = millisToHrTime(batch.endTimeMs);
  const startOf = (point: { startTimeMs?: number }) => millisToHrTime(point.startTimeMs ?? batch.startTimeMs);
  return batch.metrics.map((metric): MetricData => {
    const descriptor = { name: metric.name, description: metric.description, unit: metric.unit ?? '', valueType: ValueType.DOUBLE };
    switch (metric.type) {
      case 'sum':
        return {
          descriptor,
          dataPointType: DataPointType.SUM,
          aggregationTemporality: TEMPORALITY[metric.temporality],
          isMonotonic: metric.monotonic,
          dataPoints: metric.points.map((p) => ({ startTime: startOf(p), endTime, attributes: p.attributes, value: p.value })),
        };
      case 'gauge':
        return {
          descriptor,
          dataPointType: DataPointType.GAUGE,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPoints: metric.points.map((p) => ({ startTime: startOf(p), endTime, attributes: p.attributes, value: p.value })),
        };
      case 'histogram':
        return {
          descriptor,
          dataPointType: DataPointType.HISTOGRAM,
          aggregationTemporality: TEMPORALITY[metric.temporality],
          dataPoints: metric.points.map((p) => ({
            startTime: startOf(p),
            endTime,
            attributes: p.attributes,
            value: { buckets: { boundaries: p.boundaries, counts: p.bucketCounts }, sum: p.sum, count: p.count },
          })),
        };
    }
  });
}
