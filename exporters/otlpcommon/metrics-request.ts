/**
 * MetricBatch → ExportMetricsServiceRequest: our metrics as the SDK's
 * MetricData (collector/data/otel.ts), serialized by
 * @opentelemetry/otlp-transformer. With cumulative temporality the deltas that
 * receivers hand on are summed per series first, and every live series is sent.
 */
import { hostname } from 'node:os';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { metricPointCount, type MetricBatch, type Temporality } from '../../collector/data/metrics.js';
import { toOtelMetrics } from '../../collector/data/otel.js';
import { VERSION } from '../../collector/version.js';
import { CumulativeAccumulator } from '../prometheus/accumulator.js';

// The pipeline's metrics describe this host as the collector sees it.
const RESOURCE = resourceFromAttributes({ 'service.name': 'ebpf-collector', 'service.version': VERSION, 'host.name': hostname() });

export interface EncodedMetrics {
  body: Uint8Array;
  /** Points of the batch the request carries, the unit of self-telemetry (as the prometheus exporter counts). */
  items: number;
  /** Points of the batch refused by the accumulator (a name reused with another type or bucket layout). */
  refused: number;
  /** Points in the request: with cumulative temporality every live series, what a partial success counts. */
  points: number;
}

export class MetricsRequestEncoder {
  private readonly accumulator?: CumulativeAccumulator;

  constructor(temporality: Temporality, expirationMs: number) {
    if (temporality === 'cumulative') this.accumulator = new CumulativeAccumulator(expirationMs);
  }

  /** Undefined when there is nothing to send. */
  encode(batch: MetricBatch): EncodedMetrics | undefined {
    let refused = 0;
    let outgoing = batch;
    if (this.accumulator) {
      refused = this.accumulator.add(batch);
      outgoing = this.accumulator.snapshot(batch.endTimeMs);
    }
    const points = metricPointCount(outgoing);
    if (points === 0) return undefined;
    const request: ResourceMetrics = {
      resource: RESOURCE,
      scopeMetrics: [{ scope: { name: 'ebpf-collector', version: VERSION }, metrics: toOtelMetrics(outgoing) }],
    };
    const body = ProtobufMetricsSerializer.serializeRequest(request);
    if (!body) throw new Error('the OTLP metrics serializer returned nothing');
    return { body, items: metricPointCount(batch) - refused, refused, points };
  }
}
