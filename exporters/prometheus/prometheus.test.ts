import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MetricBatch } from '../../collector/data/metrics.js';
import { freePort, sampleValue, scrape } from '../../test/support/collector.js';
import { testHost, testLifecycle, testSettings } from '../../test/support/components.js';
import { prometheusExporterFactory } from './factory.js';

async function create() {
  const port = await freePort();
  const config = prometheusExporterFactory.configSchema.parse({ endpoint: `127.0.0.1:${port}` });
  return { port, exporter: prometheusExporterFactory.create(testSettings('exporter', 'prometheus'), config, new Set(['metrics'] as const)) };
}

// Fixture batches: what a receiver hands on after two reads of its kernel maps.
const NOW = Date.now();
const FIXTURE_READ_1: MetricBatch = {
  startTimeMs: NOW - 2_000,
  endTimeMs: NOW - 1_000,
  metrics: [
    { type: 'sum', name: 'ebpf_process_exec_total', description: 'Execs.', monotonic: true, temporality: 'delta', points: [{ attributes: { comm: 'true' }, value: 3 }] },
    { type: 'gauge', name: 'ebpf_processes_live', description: 'Live.', points: [{ attributes: {}, value: 40 }] },
    {
      type: 'histogram',
      name: 'test_duration_seconds',
      description: 'Latency.',
      temporality: 'delta',
      points: [{ attributes: { op: 'read' }, boundaries: [0.001, 0.01], bucketCounts: [1, 2, 0], sum: 0.012, count: 3 }],
    },
  ],
};
const FIXTURE_READ_2: MetricBatch = {
  startTimeMs: NOW - 1_000,
  endTimeMs: NOW,
  metrics: [
    { type: 'sum', name: 'ebpf_process_exec_total', description: 'Execs.', monotonic: true, temporality: 'delta', points: [{ attributes: { comm: 'true' }, value: 4 }] },
    { type: 'gauge', name: 'ebpf_processes_live', description: 'Live.', points: [{ attributes: {}, value: 38 }] },
    {
      type: 'histogram',
      name: 'test_duration_seconds',
      description: 'Latency.',
      temporality: 'delta',
      points: [{ attributes: { op: 'read' }, boundaries: [0.001, 0.01], bucketCounts: [0, 1, 1], sum: 0.5, count: 2 }],
    },
  ],
};

// Every instance on one port: a fresh instance can only start if shutdown released it.
const LIFECYCLE_PORT = await freePort();
testLifecycle(() =>
  prometheusExporterFactory.create(
    testSettings('exporter', 'prometheus'),
    prometheusExporterFactory.configSchema.parse({ endpoint: `127.0.0.1:${LIFECYCLE_PORT}` }),
    new Set(['metrics'] as const),
  ),
);

test('deltas accumulate into cumulative series, gauges replace, histograms add bucket by bucket', async () => {
  const { port, exporter } = await create();
  await exporter.start(testHost());
  try {
    await exporter.consumers.metrics!.consume(FIXTURE_READ_1);
    await exporter.consumers.metrics!.consume(FIXTURE_READ_2);
    const body = await scrape(port);
    const section = (name: string) => body.split('\n').filter((line) => line.includes(name)).join('\n');
    assert.equal(
      section('ebpf_process_exec_total'),
      ['# HELP ebpf_process_exec_total Execs.', '# TYPE ebpf_process_exec_total counter', 'ebpf_process_exec_total{comm="true"} 7'].join('\n'),
    );
    assert.equal(
      section('ebpf_processes_live'),
      ['# HELP ebpf_processes_live Live.', '# TYPE ebpf_processes_live gauge', 'ebpf_processes_live 38'].join('\n'),
    );
    assert.equal(
      section('test_duration_seconds'),
      [
        '# HELP test_duration_seconds Latency.',
        '# TYPE test_duration_seconds histogram',
        'test_duration_seconds_count{op="read"} 5',
        'test_duration_seconds_sum{op="read"} 0.512',
        'test_duration_seconds_bucket{op="read",le="0.001"} 1',
        'test_duration_seconds_bucket{op="read",le="0.01"} 4',
        'test_duration_seconds_bucket{op="read",le="+Inf"} 5',
      ].join('\n'),
    );
    assert.match(body, /^target_info\{service_name="ebpf-collector"/m);
    assert.ok(sampleValue(body, 'ebpf_collector_exported_items_total') >= 0);
  } finally {
    await exporter.shutdown();
  }
});

test('a port already in use fails start with the endpoint named', async () => {
  const { port, exporter } = await create();
  await exporter.start(testHost());
  const config = prometheusExporterFactory.configSchema.parse({ endpoint: `127.0.0.1:${port}` });
  const second = prometheusExporterFactory.create(testSettings('exporter', 'prometheus'), config, new Set(['metrics'] as const));
  try {
    await assert.rejects(second.start(testHost()), new RegExp(`^Error: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
  } finally {
    await second.shutdown();
    await exporter.shutdown();
  }
});
