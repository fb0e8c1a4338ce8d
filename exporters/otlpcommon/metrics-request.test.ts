/** MetricBatch → ExportMetricsServiceRequest, as protoc decodes it: temporality, accumulation, expiry. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MetricBatch } from '../../collector/data/metrics.js';
import { MetricsRequestEncoder } from './metrics-request.js';
import { fixtureSyscallMetrics } from './testing/fixtures.js';
import { decodeMetricsRequest } from './testing/otlp-sinks.js';
import { message, messages, scalar } from './testing/protoc.js';
import { decodedSum } from './testing/request-checks.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function encodeAll(encoder: MetricsRequestEncoder, batches: MetricBatch[]) {
  return batches.map((batch) => {
    const encoded = encoder.encode(batch);
    return encoded && { ...encoded, request: decodeMetricsRequest(encoded.body) };
  });
}

test('cumulative: deltas add up per series from the first start time; gauges replace', () => {
  const encoder = new MetricsRequestEncoder('cumulative', 300_000);
  const [, second] = encodeAll(encoder, [fixtureSyscallMetrics(T0, T0 + 10_000, 3, 5), fixtureSyscallMetrics(T0 + 10_000, T0 + 20_000, 4, 6)]);
  const sum = decodedSum(second!.request, 'ebpf_syscall_total', 'syscall')!;
  assert.deepEqual(sum, {
    temporality: 'AGGREGATION_TEMPORALITY_CUMULATIVE',
    monotonic: true,
    values: { read: 7, write: 11 },
    startTimes: [String(BigInt(T0) * 1_000_000n), String(BigInt(T0) * 1_000_000n)],
  });
  const gauge = messages(message(message(second!.request, 'resource_metrics'), 'scope_metrics'), 'metrics').find((m) => scalar(m, 'name', '') === 'ebpf_processes_live')!;
  assert.equal(scalar(messages(message(gauge, 'gauge'), 'data_points')[0], 'as_double'), '42');
  assert.equal(second!.items, 3, 'items are the points that came in');
});

test('delta: each batch is sent as it came', () => {
  const encoder = new MetricsRequestEncoder('delta', 300_000);
  const [, second] = encodeAll(encoder, [fixtureSyscallMetrics(T0, T0 + 10_000, 3, 5), fixtureSyscallMetrics(T0 + 10_000, T0 + 20_000, 4, 6)]);
  const sum = decodedSum(second!.request, 'ebpf_syscall_total', 'syscall')!;
  assert.equal(sum.temporality, 'AGGREGATION_TEMPORALITY_DELTA');
  assert.deepEqual(sum.values, { read: 4, write: 6 });
  assert.deepEqual(sum.startTimes, [String(BigInt(T0 + 10_000) * 1_000_000n), String(BigInt(T0 + 10_000) * 1_000_000n)]);
});

test('cumulative: a series idle past metric_expiration is no longer sent', () => {
  const encoder = new MetricsRequestEncoder('cumulative', 15_000);
  const readOnly: MetricBatch = {
    startTimeMs: T0 + 20_000,
    endTimeMs: T0 + 30_000,
    metrics: [{ type: 'sum', name: 'ebpf_syscall_total', description: '', monotonic: true, temporality: 'delta', points: [{ attributes: { syscall: 'read' }, value: 1 }] }],
  };
  const [, later] = encodeAll(encoder, [fixtureSyscallMetrics(T0, T0 + 10_000, 3, 5), readOnly]);
  assert.deepEqual(decodedSum(later!.request, 'ebpf_syscall_total', 'syscall')!.values, { read: 4 }, 'write was last updated 20 s ago');
});

test('cumulative: a name reused with another type is refused, not mixed in', () => {
  const encoder = new MetricsRequestEncoder('cumulative', 300_000);
  const asGauge: MetricBatch = { startTimeMs: T0 + 10_000, endTimeMs: T0 + 20_000, metrics: [{ type: 'gauge', name: 'ebpf_syscall_total', description: '', points: [{ attributes: { syscall: 'read' }, value: 1 }] }] };
  const [, second] = encodeAll(encoder, [fixtureSyscallMetrics(T0, T0 + 10_000, 3, 5), asGauge]);
  assert.equal(second!.refused, 1);
  assert.deepEqual(decodedSum(second!.request, 'ebpf_syscall_total', 'syscall')!.values, { read: 3, write: 5 });
});

test('nothing to send, no request', () => {
  assert.equal(new MetricsRequestEncoder('delta', 300_000).encode({ startTimeMs: T0, endTimeMs: T0 + 1, metrics: [] }), undefined);
  assert.equal(new MetricsRequestEncoder('cumulative', 300_000).encode({ startTimeMs: T0, endTimeMs: T0 + 1, metrics: [] }), undefined);
});
