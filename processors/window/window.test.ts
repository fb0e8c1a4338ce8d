import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Consumer, CreateSettings } from '../../collector/component.js';
import type { GaugeMetric, HistogramMetric, MetricBatch } from '../../collector/data/metrics.js';
import { SelfTelemetry } from '../../collector/telemetry.js';
import { eventually } from '../../test/support/collector.js';
import { MetricsSink, testHost, testSettings } from '../../test/support/components.js';
import { configProblems, family, promtoolCheckMetrics, settingsWith, startPrometheusExporter } from '../../test/support/exposition.js';
import { windowProcessorFactory } from './factory.js';
import { percentileGaugeName } from './percentile-names.js';

const NOW = Date.now();
const BOUNDS = [0.001, 0.01, 0.1];

// Fixtures: two reads of a syscall receiver that fall in one window.
const FIXTURE_SYSCALL_READ_1: MetricBatch = {
  startTimeMs: NOW - 2_000,
  endTimeMs: NOW - 1_000,
  metrics: [
    {
      type: 'histogram',
      name: 'ebpf_syscall_duration_seconds',
      description: 'Syscall latency.',
      temporality: 'delta',
      points: [
        { attributes: { syscall: 'read' }, boundaries: BOUNDS, bucketCounts: [10, 30, 14, 1], sum: 0.5, count: 55 },
        { attributes: { syscall: 'write' }, boundaries: BOUNDS, bucketCounts: [4, 0, 0, 0], sum: 0.001953125, count: 4 },
      ],
    },
    {
      type: 'sum',
      name: 'ebpf_syscall_total',
      description: 'Syscalls.',
      monotonic: true,
      temporality: 'delta',
      points: [
        { attributes: { syscall: 'read' }, value: 5 },
        { attributes: { syscall: 'write' }, value: 3 },
      ],
    },
    { type: 'gauge', name: 'ebpf_processes_live', description: 'Live.', points: [{ attributes: {}, value: 40 }] },
  ],
};
const FIXTURE_SYSCALL_READ_2: MetricBatch = {
  startTimeMs: NOW - 1_000,
  endTimeMs: NOW,
  metrics: [
    {
      type: 'histogram',
      name: 'ebpf_syscall_duration_seconds',
      description: 'Syscall latency.',
      temporality: 'delta',
      points: [
        { attributes: { syscall: 'read' }, boundaries: BOUNDS, bucketCounts: [10, 20, 14, 1], sum: 0.25, count: 45 },
        // Seen, but without observations in this window: no percentile for it.
        { attributes: { syscall: 'close' }, boundaries: BOUNDS, bucketCounts: [0, 0, 0, 0], sum: 0, count: 0 },
      ],
    },
    { type: 'sum', name: 'ebpf_syscall_total', description: 'Syscalls.', monotonic: true, temporality: 'delta', points: [{ attributes: { syscall: 'read' }, value: 7 }] },
    { type: 'gauge', name: 'ebpf_processes_live', description: 'Live.', points: [{ attributes: {}, value: 38 }] },
  ],
};

/*
 * The window's merged read histogram is [20, 50, 28, 2] (cumulative 20, 70, 98, 100),
 * the write histogram [4, 0, 0, 0]. histogram_quantile by hand:
 *   read  p50: rank 50 in (0.001, 0.01], 30 of its 50 → 0.001 + 0.009 × 30/50 = 0.0064
 *   read  p95: rank 95 in (0.01, 0.1],   25 of its 28 → 0.01 + 0.09 × 25/28  = 0.090357142857…
 *   read  p99: rank 99 in (0.1, +Inf]                 → the highest finite bound, 0.1
 *   write p50: rank 2    in (0, 0.001], 2 of 4        → 0.0005
 *   write p95: rank 3.8  → 0.00095;  p99: rank 3.96 → 0.00099
 */
const HAND_COMPUTED: Record<string, [string, number][]> = {
  ebpf_syscall_duration_window_p50_seconds: [['read', 0.0064], ['write', 0.0005]],
  ebpf_syscall_duration_window_p95_seconds: [['read', 0.01 + (0.09 * 25) / 28], ['write', 0.00095]],
  ebpf_syscall_duration_window_p99_seconds: [['read', 0.1], ['write', 0.00099]],
};

function create(input: unknown, next: Consumer<'metrics'>, settings: CreateSettings = testSettings('processor', 'window')) {
  return windowProcessorFactory.create(settings, windowProcessorFactory.configSchema.parse(input), 'metrics', next);
}

function metric<T>(batch: MetricBatch, name: string): T {
  const found = batch.metrics.find((m) => m.name === name);
  assert.ok(found, `${name} is in the batch`);
  return found as T;
}

test('lifecycle: shutdown without start, and twice', async () => {
  const processor = create({}, new MetricsSink());
  await processor.shutdown();
  await processor.shutdown();
});

test('lifecycle: start, shut down, start a fresh instance, shut down', async () => {
  for (let round = 0; round < 2; round++) {
    const processor = create({}, new MetricsSink());
    await processor.start(testHost());
    await processor.shutdown();
    await processor.shutdown();
  }
});

test('config: defaults, and bad values are reported with their path', () => {
  assert.deepEqual(windowProcessorFactory.configSchema.parse({}), { window: 60_000, percentiles: [50, 95, 99] });
  assert.deepEqual(configProblems(windowProcessorFactory, 'window', { window: '500ms', percentiles: [0, 99.9, 100, 99.9, 1e-7] }), [
    'processors::window::window: must be between 1s and 3600s, got "500ms"',
    'processors::window::percentiles::0: must be above 0 and below 100, got 0',
    'processors::window::percentiles::2: must be above 0 and below 100, got 100',
    'processors::window::percentiles::4: must be a plain decimal such as 99.9, got 1e-7',
    'processors::window::percentiles::3: 99.9 is listed more than once',
  ]);
  assert.deepEqual(configProblems(windowProcessorFactory, 'window', { window: '2h' }), ['processors::window::window: must be between 1s and 3600s, got "2h"']);
});

test('percentile gauge names keep the unit suffix last', () => {
  assert.equal(percentileGaugeName('ebpf_syscall_duration_seconds', 99), 'ebpf_syscall_duration_window_p99_seconds');
  assert.equal(percentileGaugeName('ebpf_syscall_duration_seconds', 99.9), 'ebpf_syscall_duration_window_p99_9_seconds');
  assert.equal(percentileGaugeName('test_payload_bytes', 50), 'test_payload_window_p50_bytes');
  assert.equal(percentileGaugeName('test_queue_depth', 95), 'test_queue_depth_window_p95');
});

test('one window: sums add, histograms merge, gauges keep the last value, flushed on shutdown', async () => {
  const sink = new MetricsSink();
  const processor = create({ window: '1h' }, sink);
  const startedAfter = Date.now();
  await processor.start(testHost());
  await processor.consume(FIXTURE_SYSCALL_READ_1);
  await processor.consume(FIXTURE_SYSCALL_READ_2);
  assert.equal(sink.batches.length, 0, 'nothing is handed on before the window ends');
  await processor.shutdown();
  assert.equal(sink.batches.length, 1);
  const [window] = sink.batches;
  assert.ok(window.startTimeMs >= startedAfter && window.startTimeMs <= window.endTimeMs && window.endTimeMs <= Date.now());
  assert.deepEqual(
    window.metrics.map((m) => `${m.type} ${m.name}`),
    [
      'histogram ebpf_syscall_duration_seconds',
      'gauge ebpf_syscall_duration_window_p50_seconds',
      'gauge ebpf_syscall_duration_window_p95_seconds',
      'gauge ebpf_syscall_duration_window_p99_seconds',
      'sum ebpf_syscall_total',
      'gauge ebpf_processes_live',
    ],
  );
  assert.deepEqual(metric<HistogramMetric>(window, 'ebpf_syscall_duration_seconds').points, [
    { attributes: { syscall: 'read' }, boundaries: BOUNDS, bucketCounts: [20, 50, 28, 2], sum: 0.75, count: 100 },
    { attributes: { syscall: 'write' }, boundaries: BOUNDS, bucketCounts: [4, 0, 0, 0], sum: 0.001953125, count: 4 },
    { attributes: { syscall: 'close' }, boundaries: BOUNDS, bucketCounts: [0, 0, 0, 0], sum: 0, count: 0 },
  ]);
  assert.equal(metric<HistogramMetric>(window, 'ebpf_syscall_duration_seconds').temporality, 'delta');
  assert.deepEqual(sink.total('ebpf_syscall_total', { syscall: 'read' }), 12);
  assert.deepEqual(sink.total('ebpf_syscall_total', { syscall: 'write' }), 3);
  assert.deepEqual(metric<GaugeMetric>(window, 'ebpf_processes_live').points, [{ attributes: {}, value: 38 }]);
});

test('percentiles match histogram_quantile computed by hand', async () => {
  const sink = new MetricsSink();
  const processor = create({}, sink);
  await processor.consume(FIXTURE_SYSCALL_READ_1);
  await processor.consume(FIXTURE_SYSCALL_READ_2);
  await processor.shutdown();
  for (const [name, expected] of Object.entries(HAND_COMPUTED)) {
    const gauge = metric<GaugeMetric>(sink.batches[0], name);
    assert.deepEqual(
      gauge.points.map((p) => p.attributes.syscall),
      expected.map(([syscall]) => syscall),
      `${name}: a point per series with observations`,
    );
    gauge.points.forEach((point, i) => assert.ok(Math.abs(point.value - expected[i][1]) < 1e-12, `${name}{syscall="${point.attributes.syscall}"} = ${point.value}, expected ${expected[i][1]}`));
  }
});

test("percentiles equal Prometheus' own histogram_quantile on the window's buckets (promtool test rules)", async () => {
  const sink = new MetricsSink();
  const processor = create({ percentiles: [50, 90, 95, 99, 99.9] }, sink);
  await processor.consume(FIXTURE_SYSCALL_READ_1);
  await processor.consume(FIXTURE_SYSCALL_READ_2);
  await processor.shutdown();
  const [window] = sink.batches;
  const histogram = metric<HistogramMetric>(window, 'ebpf_syscall_duration_seconds');
  const observed = histogram.points.filter((p) => p.count > 0);
  // The window's buckets as Prometheus stores them, one sample each at t=0.
  const inputSeries = observed.flatMap((point) => {
    let cumulative = 0;
    return point.bucketCounts.map((count, i) => {
      cumulative += count;
      const le = i < point.boundaries.length ? String(point.boundaries[i]) : '+Inf';
      return { series: `ebpf_syscall_duration_seconds_bucket{syscall="${point.attributes.syscall}",le="${le}"}`, values: String(cumulative) };
    });
  });
  const exprTests = [50, 90, 95, 99, 99.9].map((percentile) => ({
    expr: `histogram_quantile(${percentile / 100}, ebpf_syscall_duration_seconds_bucket)`,
    eval_time: '0m',
    exp_samples: metric<GaugeMetric>(window, percentileGaugeName(histogram.name, percentile)).points.map((p) => ({
      labels: `{syscall="${p.attributes.syscall}"}`,
      value: p.value,
    })),
  }));
  const dir = mkdtempSync(join(tmpdir(), 'window-quantile-'));
  const file = join(dir, 'quantile.test.yml');
  // JSON is YAML; JavaScript prints each number so that Go parses back the same float64.
  writeFileSync(file, JSON.stringify({ rule_files: [], tests: [{ interval: '1m', input_series: inputSeries, promql_expr_test: exprTests }] }));
  const result = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8' });
  rmSync(dir, { recursive: true });
  assert.equal(result.status, 0, `promtool test rules failed:\n${result.stdout}${result.stderr}`);
});

test('windows are aligned to start(): one batch per window, none for an empty window, the partial one on shutdown', async () => {
  const sink = new MetricsSink();
  const processor = create({ window: '1s' }, sink);
  const before = Date.now();
  await processor.start(testHost());
  const after = Date.now();
  try {
    await processor.consume(FIXTURE_SYSCALL_READ_1);
    await eventually('the first window', 3_000, async () => (sink.batches.length === 1 ? true : undefined));
    const [first] = sink.batches;
    assert.ok(first.startTimeMs >= before && first.startTimeMs <= after, 'the first window starts at start()');
    assert.equal(first.endTimeMs - first.startTimeMs, 1_000);
    assert.equal(sink.total('ebpf_syscall_total', { syscall: 'read' }), 5);

    await processor.consume(FIXTURE_SYSCALL_READ_2);
    await eventually('the second window', 3_000, async () => (sink.batches.length === 2 ? true : undefined));
    const second = sink.batches[1];
    assert.deepEqual([second.startTimeMs, second.endTimeMs], [first.endTimeMs, first.endTimeMs + 1_000]);
    assert.equal(sink.total('ebpf_syscall_total', { syscall: 'read' }), 12);

    // The third window passes empty: nothing is handed on for it.
    await new Promise((resolve) => setTimeout(resolve, second.endTimeMs + 1_200 - Date.now()));
    assert.equal(sink.batches.length, 2);
    await processor.consume(FIXTURE_SYSCALL_READ_1);
  } finally {
    await processor.shutdown();
  }
  assert.equal(sink.batches.length, 3, 'shutdown hands on the partial window');
  const [, second, partial] = sink.batches;
  assert.equal(partial.startTimeMs, second.endTimeMs + 1_000);
  assert.ok(partial.endTimeMs - partial.startTimeMs < 1_000);
  assert.equal(sink.total('ebpf_syscall_total', { syscall: 'read' }), 17);
});

test('a failing next consumer: the window is counted as dropped and the status is a recoverable error', async () => {
  const telemetry = new SelfTelemetry();
  const settings = settingsWith(telemetry, 'processor', 'window');
  const failing: Consumer<'metrics'> = {
    consume: async () => {
      throw new Error('exporter unavailable');
    },
  };
  const processor = create({}, failing, settings);
  await processor.consume(FIXTURE_SYSCALL_READ_1);
  await processor.shutdown();
  const [status] = settings.statuses.snapshot();
  assert.deepEqual([status.status, status.message], ['recoverable_error', 'handing on a window failed: exporter unavailable']);
  const { scopeMetrics } = await telemetry.collect();
  const dropped = scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'ebpf_collector_dropped_items_total');
  // 2 histogram points, 2 sum points, 1 gauge point, and 3 percentile points for each of the 2 histogram series.
  assert.deepEqual(dropped?.dataPoints.map((p) => [p.attributes.reason, p.value]), [['next_consumer_failed', 11]]);
});

test('exposition of a window on a real Prometheus exporter: percentile gauges, clean for promtool', async () => {
  const exporter = await startPrometheusExporter();
  try {
    const processor = create({}, exporter.input);
    await processor.consume(FIXTURE_SYSCALL_READ_1);
    await processor.consume(FIXTURE_SYSCALL_READ_2);
    await processor.shutdown();
    const exposition = await exporter.scrape();
    assert.deepEqual(family(exposition, 'ebpf_syscall_duration_window_p99_seconds'), [
      '# HELP ebpf_syscall_duration_window_p99_seconds Percentile 99 of ebpf_syscall_duration_seconds in each 60s window, interpolated within its bucket as histogram_quantile() does.',
      '# TYPE ebpf_syscall_duration_window_p99_seconds gauge',
      'ebpf_syscall_duration_window_p99_seconds{syscall="read"} 0.1',
      'ebpf_syscall_duration_window_p99_seconds{syscall="write"} 0.00099',
    ]);
    assert.deepEqual(family(exposition, 'ebpf_syscall_duration_window_p50_seconds').slice(2), [
      'ebpf_syscall_duration_window_p50_seconds{syscall="read"} 0.0064',
      'ebpf_syscall_duration_window_p50_seconds{syscall="write"} 0.0005',
    ]);
    assert.deepEqual(family(exposition, 'ebpf_syscall_duration_seconds').slice(2, 7), [
      'ebpf_syscall_duration_seconds_count{syscall="read"} 100',
      'ebpf_syscall_duration_seconds_sum{syscall="read"} 0.75',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",le="0.001"} 20',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",le="0.01"} 70',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",le="0.1"} 98',
    ]);
    assert.deepEqual(family(exposition, 'ebpf_syscall_total').slice(2), ['ebpf_syscall_total{syscall="read"} 12', 'ebpf_syscall_total{syscall="write"} 3']);
    assert.deepEqual(promtoolCheckMetrics(exposition), { status: 0, output: '' });
  } finally {
    await exporter.shutdown();
  }
});
