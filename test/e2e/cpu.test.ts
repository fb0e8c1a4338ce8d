/**
 * CPU profiling end to end through the CLI: the cpu receiver samples a real
 * program, the symbolizer names its frames, the pprof exporter serves the
 * on-demand profile that `go tool pprof` reads, and profilemetrics feeds
 * parca_cpu_samples_total to the Prometheus endpoint.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { goToolPprof, parseTop } from '../../exporters/pprof/go-tool-pprof.js';
import { compileWorkload, startWorkload } from '../../receivers/cpu/workloads.js';
import { eventually, freePort, RunningCollector, sampleValue, scrape } from '../support/collector.js';

function pipeline(pid: number, metricsPort: number, profilesDir: string): string {
  return `
receivers:
  cpu:
    frequency_hz: 199
    collection_interval: 1s
    pids: [${pid}]
processors:
  symbolizer: {}
connectors:
  profilemetrics: {}
exporters:
  pprof:
    directory: ${profilesDir}
  prometheus:
    endpoint: 127.0.0.1:${metricsPort}
service:
  http:
    endpoint: 127.0.0.1:HTTP_PORT
  pipelines:
    profiles:
      receivers: [cpu]
      processors: [symbolizer]
      exporters: [pprof, profilemetrics]
    metrics:
      receivers: [profilemetrics]
      exporters: [prometheus]
`;
}

test('hot functions in a 6:3:1 ratio come out at 60/30/10 in go tool pprof -top, and as parca_cpu_samples_total', async () => {
  const workload = startWorkload(compileWorkload('hotspots'), ['8']);
  const metricsPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-cpu-e2e-'));
  const collector = await RunningCollector.start(pipeline(workload.pid, metricsPort, join(dir, 'profiles')));
  try {
    workload.go();
    const response = await fetch(`${collector.statusUrl}/debug/pprof/profile?seconds=5`);
    assert.equal(response.status, 200, await response.clone().text());
    const file = join(dir, 'profile.pb.gz');
    writeFileSync(file, Buffer.from(await response.arrayBuffer()));

    const { stdout, stderr } = await goToolPprof(['-top', '-sample_index=samples', '-nodecount=1000'], file);
    assert.equal(stderr.trim(), '', 'go tool pprof reads the profile without warnings');
    const top = parseTop(stdout);
    const flat = (name: string) => top.get(name)?.flat ?? 0;
    const total = [...top.values()].reduce((sum, row) => sum + row.flat, 0);
    assert.ok(total >= 500, `expected at least 500 samples in 5 s at 199 Hz, got ${total}: ${stdout}`);
    const share = (name: string) => (100 * flat(name)) / total;
    for (const [name, expected] of [['hot_a', 60], ['hot_b', 30], ['hot_c', 10]] as const)
      assert.ok(Math.abs(share(name) - expected) <= 5, `${name}: ${share(name).toFixed(1)}% of samples, expected ${expected} ± 5\n${stdout}`);

    await eventually('parca_cpu_samples_total for hot_a', 10_000, async () => {
      const value = sampleValue(await scrape(metricsPort), 'parca_cpu_samples_total', { function: 'hot_a', comm: 'hotspots' });
      return value > 0 ? value : undefined;
    });
    assert.equal(sampleValue(await scrape(metricsPort), 'parca_cpu_sampling_frequency_hertz'), 199);
    await workload.finished;
    assert.equal(await collector.stop(), 0, collector.stderr);
  } finally {
    await collector.stop();
  }
});
