import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProfileBatch } from '../../collector/data/profiles.js';
import { MetricsSink, testLifecycle, testSettings } from '../../test/support/components.js';
import { profileMetricsConnectorFactory } from './factory.js';

// Fixture: one symbolized window of a 97 Hz profile, as the symbolizer hands it on.
const FIXTURE_SYMBOLIZED_WINDOW: ProfileBatch = {
  startTimeMs: 1_000,
  endTimeMs: 11_000,
  periodNs: 1e9 / 97,
  samples: [
    { pid: 10, comm: 'api', podUid: 'pod-a', containerId: 'c1', count: 60, frames: [{ kind: 'user', address: 0x1000n, functionName: 'hot_a' }] },
    { pid: 10, comm: 'api', podUid: 'pod-a', containerId: 'c1', count: 30, frames: [{ kind: 'user', address: 0x2000n, functionName: 'hot_b' }] },
    { pid: 11, comm: 'db', count: 7, frames: [{ kind: 'kernel', address: 0xffffffff81000000n, functionName: 'ksys_read' }] },
    {
      pid: 11,
      comm: 'db',
      count: 3,
      frames: [{ kind: 'user', address: 0x5010n, mapping: { path: '/opt/db/libstore.so', start: 0x5000n, end: 0x9000n, fileOffset: 0x1000n } }],
    },
  ],
};

function create(topK: number, sink = new MetricsSink()) {
  const config = profileMetricsConnectorFactory.configSchema.parse({ top_k: topK });
  return profileMetricsConnectorFactory.create(testSettings('connector', 'profilemetrics'), config, 'profiles', 'metrics', sink);
}

testLifecycle(() => create(10));

test('counts samples by leaf function with pod, container and comm, and exports the frequency', async () => {
  const sink = new MetricsSink();
  await create(10, sink).consume(FIXTURE_SYMBOLIZED_WINDOW);
  assert.equal(sink.total('parca_cpu_samples_total', { function: 'hot_a', pod: 'pod-a', container: 'c1', comm: 'api' }), 60);
  assert.equal(sink.total('parca_cpu_samples_total', { function: 'ksys_read', comm: 'db', pod: '' }), 7);
  assert.equal(sink.total('parca_cpu_samples_total', { function: 'libstore.so+0x1010' }), 3, 'unsymbolized leaves keep file and offset');
  assert.equal(sink.total('parca_cpu_sampling_frequency_hertz'), 97);
});

test('only top_k leaf functions keep their names; the rest fold per pod and comm', async () => {
  const sink = new MetricsSink();
  await create(1, sink).consume(FIXTURE_SYMBOLIZED_WINDOW);
  const series = sink.batches[0].metrics[0].points.map((p) => [p.attributes.function, p.attributes.comm, (p as { value: number }).value]);
  assert.deepEqual(series, [
    ['hot_a', 'api', 60],
    ['[other]', 'api', 30],
    ['[other]', 'db', 10],
  ]);
  assert.equal(sink.total('parca_cpu_samples_total'), 100, 'folding loses no sample');
});
