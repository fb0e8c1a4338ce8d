import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Consumer, CreateSettings } from '../../collector/component.js';
import type { MetricBatch } from '../../collector/data/metrics.js';
import { SelfTelemetry } from '../../collector/telemetry.js';
import { sampleValue } from '../../test/support/collector.js';
import { MetricsSink, testHost, testSettings } from '../../test/support/components.js';
import { configProblems, family, promtoolCheckMetrics, settingsWith, startPrometheusExporter } from '../../test/support/exposition.js';
import { labelsProcessorFactory } from './factory.js';

const NOW = Date.now();
const BOUNDS = [0.001, 0.01];

// Fixture: one read of a syscall receiver that labels by thread, process and user.
const FIXTURE_SYSCALL_DELTAS: MetricBatch = {
  startTimeMs: NOW - 10_000,
  endTimeMs: NOW,
  metrics: [
    {
      type: 'histogram',
      name: 'ebpf_syscall_duration_seconds',
      description: 'Syscall latency.',
      temporality: 'delta',
      points: [
        { attributes: { syscall: 'read', pod: 'web', namespace: 'shop', pid: '100', tid: '101', uid: '33' }, boundaries: BOUNDS, bucketCounts: [3, 1, 0], sum: 0.25, count: 4 },
        { attributes: { syscall: 'read', pod: 'web', namespace: 'shop', pid: '100', tid: '102', uid: '33' }, boundaries: BOUNDS, bucketCounts: [1, 1, 1], sum: 0.5, count: 3 },
        { attributes: { syscall: 'write', pod: 'web', namespace: 'shop', pid: '100', tid: '101', uid: '33' }, boundaries: BOUNDS, bucketCounts: [2, 0, 0], sum: 0.0625, count: 2 },
      ],
    },
    {
      type: 'sum',
      name: 'ebpf_syscall_total',
      description: 'Syscalls.',
      monotonic: true,
      temporality: 'delta',
      points: [
        { attributes: { syscall: 'read', pid: '100', comm: 'nginx' }, value: 5 },
        { attributes: { syscall: 'read', pid: '200', comm: 'nginx' }, value: 7 },
        { attributes: { syscall: 'write', pid: '100', comm: 'nginx' }, value: 2 },
      ],
    },
    {
      type: 'gauge',
      name: 'test_resident_memory_bytes',
      description: 'Resident memory.',
      points: [
        { attributes: { pod: 'web', pid: '100' }, value: 1000 },
        { attributes: { pod: 'web', pid: '200' }, value: 500 },
        { attributes: { pod: 'db', pid: '300' }, value: 4000 },
      ],
    },
  ],
};

/** Fixture: exec counts by comm over successive reads, more comms than a cap of 2 admits. */
function fixtureExecCounts(endTimeMs: number, counts: Record<string, number>): MetricBatch {
  return {
    startTimeMs: endTimeMs - 1_000,
    endTimeMs,
    metrics: [
      {
        type: 'sum',
        name: 'ebpf_process_exec_total',
        description: 'Execs.',
        monotonic: true,
        temporality: 'delta',
        points: Object.entries(counts).map(([comm, value]) => ({ attributes: { comm }, value })),
      },
    ],
  };
}
const FIXTURE_EXEC_READ_1 = fixtureExecCounts(NOW - 1_000, { a: 1, b: 2, c: 3 });
const FIXTURE_EXEC_READ_2 = fixtureExecCounts(NOW, { b: 1, d: 4, e: 5 });

function create(input: unknown, next: Consumer<'metrics'>, settings: CreateSettings = testSettings('processor', 'labels')) {
  return labelsProcessorFactory.create(settings, labelsProcessorFactory.configSchema.parse(input), 'metrics', next);
}

/** Points of one metric in a batch, as [attributes, value] pairs (histograms as their bucket counts). */
function pointsOf(batch: MetricBatch, name: string): [Record<string, string>, number | number[]][] {
  const metric = batch.metrics.find((m) => m.name === name);
  assert.ok(metric, `${name} is in the batch`);
  return metric.points.map((p) => [p.attributes, 'bucketCounts' in p ? p.bucketCounts : p.value]);
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

test('config: defaults, and bad filters are reported with their path', () => {
  assert.deepEqual(labelsProcessorFactory.configSchema.parse({}), {
    filters: [],
    default_drop_labels: ['tid', 'pid', 'uid'],
    max_series_per_metric: 1000,
    series_expiration: 300_000,
  });
  assert.deepEqual(
    configProblems(labelsProcessorFactory, 'labels', {
      filters: [
        { metric: 'ebpf_syscall_duration_seconds', keep_labels: ['syscall', 'pid'], drop_labels: ['tid', 'pid'] },
        { metric: 'ebpf syscall total', drop_labels: ['pid'] },
        { metric: 'ebpf_syscall_duration_seconds', keep_labels: ['syscall'] },
        { metric: 'ebpf_syscall_total' },
        { metric: 'ebpf_io_operations_total', drop_labels: ['file-name'] },
      ],
      max_series_per_metric: -1,
    }),
    [
      'processors::labels::filters::0::drop_labels::1: "pid" is also in keep_labels',
      'processors::labels::filters::1::metric: must be a Prometheus metric name',
      'processors::labels::filters::3: set keep_labels, drop_labels or both (drop_labels: [] keeps every label)',
      'processors::labels::filters::4::drop_labels::0: must be a Prometheus label name',
      'processors::labels::filters::2::metric: "ebpf_syscall_duration_seconds" has more than one filter',
      'processors::labels::max_series_per_metric: must be at least 0, got number -1',
    ],
  );
  assert.deepEqual(configProblems(labelsProcessorFactory, 'labels', { drop_labels: ['pid'] }), [
    'processors::labels::drop_labels: unknown key (valid keys: filters, default_drop_labels, max_series_per_metric, series_expiration)',
  ]);
});

test('default drops: tid, pid and uid go, and points that become one series merge', async () => {
  const sink = new MetricsSink();
  await create({}, sink).consume(FIXTURE_SYSCALL_DELTAS);
  const [out] = sink.batches;
  assert.equal(out.startTimeMs, FIXTURE_SYSCALL_DELTAS.startTimeMs);
  assert.equal(out.endTimeMs, FIXTURE_SYSCALL_DELTAS.endTimeMs);
  // Histograms add bucket by bucket, with their sum and count.
  const histogram = out.metrics.find((m) => m.name === 'ebpf_syscall_duration_seconds');
  assert.deepEqual(histogram?.points, [
    { attributes: { syscall: 'read', pod: 'web', namespace: 'shop' }, boundaries: BOUNDS, bucketCounts: [4, 2, 1], sum: 0.75, count: 7 },
    { attributes: { syscall: 'write', pod: 'web', namespace: 'shop' }, boundaries: BOUNDS, bucketCounts: [2, 0, 0], sum: 0.0625, count: 2 },
  ]);
  assert.deepEqual(pointsOf(out, 'ebpf_syscall_total'), [
    [{ syscall: 'read', comm: 'nginx' }, 12],
    [{ syscall: 'write', comm: 'nginx' }, 2],
  ]);
  // Gauges add too: the parts of a whole (per-process memory) summed per pod.
  assert.deepEqual(pointsOf(out, 'test_resident_memory_bytes'), [
    [{ pod: 'web' }, 1500],
    [{ pod: 'db' }, 4000],
  ]);
  // The input is not modified: a fan-out can share it.
  assert.equal(FIXTURE_SYSCALL_DELTAS.metrics[0].points.length, 3);
  assert.deepEqual((FIXTURE_SYSCALL_DELTAS.metrics[0].points[0] as { bucketCounts: number[] }).bucketCounts, [3, 1, 0]);
});

test('keep vs drop: a filter entry replaces the default drops for its metric', async () => {
  const sink = new MetricsSink();
  const processor = create(
    {
      filters: [
        { metric: 'ebpf_syscall_duration_seconds', keep_labels: ['syscall', 'pod'], drop_labels: ['tid'] },
        { metric: 'ebpf_syscall_total', drop_labels: ['comm'] },
        { metric: 'test_resident_memory_bytes', drop_labels: [] },
      ],
    },
    sink,
  );
  await processor.consume(FIXTURE_SYSCALL_DELTAS);
  const [out] = sink.batches;
  assert.deepEqual(pointsOf(out, 'ebpf_syscall_duration_seconds'), [
    [{ syscall: 'read', pod: 'web' }, [4, 2, 1]],
    [{ syscall: 'write', pod: 'web' }, [2, 0, 0]],
  ]);
  // Only comm is dropped: pid, a default drop, is kept because the metric has its own entry.
  assert.deepEqual(pointsOf(out, 'ebpf_syscall_total'), [
    [{ syscall: 'read', pid: '100' }, 5],
    [{ syscall: 'read', pid: '200' }, 7],
    [{ syscall: 'write', pid: '100' }, 2],
  ]);
  assert.deepEqual(
    pointsOf(out, 'test_resident_memory_bytes'),
    FIXTURE_SYSCALL_DELTAS.metrics[2].points.map((p) => [p.attributes, (p as { value: number }).value]),
  );
});

test('series cap: the first N label sets are kept, the rest fold into one overflow series, counted', async () => {
  const telemetry = new SelfTelemetry();
  const sink = new MetricsSink();
  const processor = create({ max_series_per_metric: 2, series_expiration: '1m' }, sink, settingsWith(telemetry, 'processor', 'labels'));
  await processor.consume(FIXTURE_EXEC_READ_1);
  await processor.consume(FIXTURE_EXEC_READ_2);
  assert.deepEqual(pointsOf(sink.batches[0], 'ebpf_process_exec_total'), [
    [{ comm: 'a' }, 1],
    [{ comm: 'b' }, 2],
    [{ 'otel.metric.overflow': 'true' }, 3],
  ]);
  // b was kept before and stays kept; d and e share the overflow series.
  assert.deepEqual(pointsOf(sink.batches[1], 'ebpf_process_exec_total'), [
    [{ comm: 'b' }, 1],
    [{ 'otel.metric.overflow': 'true' }, 9],
  ]);
  // A minute later without a and b, their places are free again.
  await processor.consume(fixtureExecCounts(FIXTURE_EXEC_READ_2.endTimeMs + 61_000, { c: 1, d: 2, e: 3 }));
  assert.deepEqual(pointsOf(sink.batches[2], 'ebpf_process_exec_total'), [
    [{ comm: 'c' }, 1],
    [{ comm: 'd' }, 2],
    [{ 'otel.metric.overflow': 'true' }, 3],
  ]);
  const { scopeMetrics } = await telemetry.collect();
  const dropped = scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'ebpf_collector_dropped_items_total');
  assert.deepEqual(
    dropped?.dataPoints.map((p) => [p.attributes, p.value]),
    [[{ component: 'labels', kind: 'processor', signal: 'metrics', reason: 'series_cap' }, 4]],
  );
});

test('no cap: max_series_per_metric 0 keeps every label set', async () => {
  const sink = new MetricsSink();
  await create({ max_series_per_metric: 0 }, sink).consume(FIXTURE_EXEC_READ_1);
  assert.deepEqual(pointsOf(sink.batches[0], 'ebpf_process_exec_total'), [
    [{ comm: 'a' }, 1],
    [{ comm: 'b' }, 2],
    [{ comm: 'c' }, 3],
  ]);
});

test('histograms whose bucket layouts differ cannot merge: the odd one is dropped and counted', async () => {
  const telemetry = new SelfTelemetry();
  const sink = new MetricsSink();
  const batch = structuredClone(FIXTURE_SYSCALL_DELTAS);
  batch.metrics[0].points[1] = { ...batch.metrics[0].points[1], boundaries: [0.002, 0.02] } as (typeof batch.metrics)[0]['points'][1];
  await create({}, sink, settingsWith(telemetry, 'processor', 'labels')).consume(batch);
  assert.deepEqual(pointsOf(sink.batches[0], 'ebpf_syscall_duration_seconds')[0], [{ syscall: 'read', pod: 'web', namespace: 'shop' }, [3, 1, 0]]);
  const { scopeMetrics } = await telemetry.collect();
  const dropped = scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'ebpf_collector_dropped_items_total');
  assert.deepEqual(dropped?.dataPoints.map((p) => [p.attributes.reason, p.value]), [['conflicting_metric_shape', 1]]);
});

test('exposition before and after label dropping, on a real Prometheus exporter', async () => {
  const before = await startPrometheusExporter();
  const after = await startPrometheusExporter();
  try {
    await before.input.consume(FIXTURE_SYSCALL_DELTAS);
    await create({}, after.input).consume(FIXTURE_SYSCALL_DELTAS);
    const [raw, dropped] = [await before.scrape(), await after.scrape()];
    assert.deepEqual(family(raw, 'ebpf_syscall_total'), [
      '# HELP ebpf_syscall_total Syscalls.',
      '# TYPE ebpf_syscall_total counter',
      'ebpf_syscall_total{syscall="read",pid="100",comm="nginx"} 5',
      'ebpf_syscall_total{syscall="read",pid="200",comm="nginx"} 7',
      'ebpf_syscall_total{syscall="write",pid="100",comm="nginx"} 2',
    ]);
    assert.deepEqual(family(dropped, 'ebpf_syscall_total'), [
      '# HELP ebpf_syscall_total Syscalls.',
      '# TYPE ebpf_syscall_total counter',
      'ebpf_syscall_total{syscall="read",comm="nginx"} 12',
      'ebpf_syscall_total{syscall="write",comm="nginx"} 2',
    ]);
    assert.deepEqual(family(raw, 'ebpf_syscall_duration_seconds'), [
      '# HELP ebpf_syscall_duration_seconds Syscall latency.',
      '# TYPE ebpf_syscall_duration_seconds histogram',
      'ebpf_syscall_duration_seconds_count{syscall="read",pod="web",namespace="shop",pid="100",tid="101",uid="33"} 4',
      'ebpf_syscall_duration_seconds_sum{syscall="read",pod="web",namespace="shop",pid="100",tid="101",uid="33"} 0.25',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",pod="web",namespace="shop",pid="100",tid="101",uid="33",le="0.001"} 3',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",pod="web",namespace="shop",pid="100",tid="101",uid="33",le="0.01"} 4',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",pod="web",namespace="shop",pid="100",tid="101",uid="33",le="+Inf"} 4',
      'ebpf_syscall_duration_seconds_count{syscall="read",pod="web",namespace="shop",pid="100",tid="102",uid="33"} 3',
      'ebpf_syscall_duration_seconds_sum{syscall="read",pod="web",namespace="shop",pid="100",tid="102",uid="33"} 0.5',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",pod="web",namespace="shop",pid="100",tid="102",uid="33",le="0.001"} 1',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",pod="web",namespace="shop",pid="100",tid="102",uid="33",le="0.01"} 2',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",pod="web",namespace="shop",pid="100",tid="102",uid="33",le="+Inf"} 3',
      'ebpf_syscall_duration_seconds_count{syscall="write",pod="web",namespace="shop",pid="100",tid="101",uid="33"} 2',
      'ebpf_syscall_duration_seconds_sum{syscall="write",pod="web",namespace="shop",pid="100",tid="101",uid="33"} 0.0625',
      'ebpf_syscall_duration_seconds_bucket{syscall="write",pod="web",namespace="shop",pid="100",tid="101",uid="33",le="0.001"} 2',
      'ebpf_syscall_duration_seconds_bucket{syscall="write",pod="web",namespace="shop",pid="100",tid="101",uid="33",le="0.01"} 2',
      'ebpf_syscall_duration_seconds_bucket{syscall="write",pod="web",namespace="shop",pid="100",tid="101",uid="33",le="+Inf"} 2',
    ]);
    assert.deepEqual(family(dropped, 'ebpf_syscall_duration_seconds'), [
      '# HELP ebpf_syscall_duration_seconds Syscall latency.',
      '# TYPE ebpf_syscall_duration_seconds histogram',
      'ebpf_syscall_duration_seconds_count{syscall="read",pod="web",namespace="shop"} 7',
      'ebpf_syscall_duration_seconds_sum{syscall="read",pod="web",namespace="shop"} 0.75',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",pod="web",namespace="shop",le="0.001"} 4',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",pod="web",namespace="shop",le="0.01"} 6',
      'ebpf_syscall_duration_seconds_bucket{syscall="read",pod="web",namespace="shop",le="+Inf"} 7',
      'ebpf_syscall_duration_seconds_count{syscall="write",pod="web",namespace="shop"} 2',
      'ebpf_syscall_duration_seconds_sum{syscall="write",pod="web",namespace="shop"} 0.0625',
      'ebpf_syscall_duration_seconds_bucket{syscall="write",pod="web",namespace="shop",le="0.001"} 2',
      'ebpf_syscall_duration_seconds_bucket{syscall="write",pod="web",namespace="shop",le="0.01"} 2',
      'ebpf_syscall_duration_seconds_bucket{syscall="write",pod="web",namespace="shop",le="+Inf"} 2',
    ]);
    assert.deepEqual(family(raw, 'test_resident_memory_bytes').slice(2), [
      'test_resident_memory_bytes{pod="web",pid="100"} 1000',
      'test_resident_memory_bytes{pod="web",pid="200"} 500',
      'test_resident_memory_bytes{pod="db",pid="300"} 4000',
    ]);
    assert.deepEqual(family(dropped, 'test_resident_memory_bytes').slice(2), ['test_resident_memory_bytes{pod="web"} 1500', 'test_resident_memory_bytes{pod="db"} 4000']);
  } finally {
    await before.shutdown();
    await after.shutdown();
  }
});

test('exposition before and after the series cap, with the overflow series and its count, clean for promtool', async () => {
  const before = await startPrometheusExporter();
  const after = await startPrometheusExporter();
  try {
    const processor = create({ max_series_per_metric: 2 }, after.input, settingsWith(after.telemetry, 'processor', 'labels'));
    for (const read of [FIXTURE_EXEC_READ_1, FIXTURE_EXEC_READ_2]) {
      await before.input.consume(read);
      await processor.consume(read);
    }
    const [raw, capped] = [await before.scrape(), await after.scrape()];
    assert.deepEqual(family(raw, 'ebpf_process_exec_total').slice(2), [
      'ebpf_process_exec_total{comm="a"} 1',
      'ebpf_process_exec_total{comm="b"} 3',
      'ebpf_process_exec_total{comm="c"} 3',
      'ebpf_process_exec_total{comm="d"} 4',
      'ebpf_process_exec_total{comm="e"} 5',
    ]);
    assert.deepEqual(family(capped, 'ebpf_process_exec_total'), [
      '# HELP ebpf_process_exec_total Execs.',
      '# TYPE ebpf_process_exec_total counter',
      'ebpf_process_exec_total{comm="a"} 1',
      'ebpf_process_exec_total{comm="b"} 3',
      'ebpf_process_exec_total{otel_metric_overflow="true"} 12',
    ]);
    assert.equal(
      sampleValue(capped, 'ebpf_collector_dropped_items_total', { component: 'labels', kind: 'processor', signal: 'metrics', reason: 'series_cap' }),
      3,
    );
    // The whole exposition, the collector's own metrics included, passes promtool's lint.
    assert.deepEqual(promtoolCheckMetrics(capped), { status: 0, output: '' });
  } finally {
    await before.shutdown();
    await after.shutdown();
  }
});

test('promtool check metrics: the exposition after label dropping is clean', async () => {
  const exporter = await startPrometheusExporter();
  try {
    await create({}, exporter.input).consume(FIXTURE_SYSCALL_DELTAS);
    const exposition = await exporter.scrape();
    assert.ok(family(exposition, 'ebpf_syscall_duration_seconds').length > 2, 'the histogram is exposed');
    assert.deepEqual(promtoolCheckMetrics(exposition), { status: 0, output: '' });
  } finally {
    await exporter.shutdown();
  }
});
