/**
 * End to end through the CLI: real BPF programs on the sched tracepoints count
 * real execs, a Prometheus scrape shows them, and a clean stop leaves no
 * program or link of ours in the kernel.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { projectPath } from '../../collector/paths.js';
import { eventually, freePort, kernelBpfState, RunningCollector, sampleValue, scrape } from '../support/collector.js';

function runTrue(times: number): void {
  for (let i = 0; i < times; i++) assert.equal(spawnSync('/bin/true').status, 0);
}

test('execs of /bin/true are counted by comm, and stopping leaves nothing in the kernel', async () => {
  const metricsPort = await freePort();
  const before = kernelBpfState();
  const collector = await RunningCollector.start(`
receivers:
  process:
    collection_interval: 300ms
exporters:
  prometheus:
    endpoint: 127.0.0.1:${metricsPort}
service:
  http:
    endpoint: 127.0.0.1:HTTP_PORT
  pipelines:
    metrics:
      receivers: [process]
      exporters: [prometheus]
`);
  try {
    const ours = kernelBpfState().progs.filter((p) => !before.progs.some((b) => b.id === p.id));
    assert.ok(ours.length >= 2, `expected our exec and exit programs to be loaded, found ${JSON.stringify(ours)}`);

    // Let a read pass so that the baseline holds every earlier exec.
    await new Promise((resolve) => setTimeout(resolve, 700));
    const baseline = sampleValue(await scrape(metricsPort), 'ebpf_process_exec_total', { comm: 'true' });
    runTrue(50);
    const after = await eventually('50 more execs of true', 10_000, async () => {
      const value = sampleValue(await scrape(metricsPort), 'ebpf_process_exec_total', { comm: 'true' });
      return value >= baseline + 50 ? value : undefined;
    });
    assert.ok(after - baseline >= 50);

    const exposition = await scrape(metricsPort);
    assert.match(exposition, /# TYPE ebpf_process_exec_total counter/);
    assert.ok(sampleValue(exposition, 'ebpf_processes_live') > 10, 'the live process table should hold this machine\'s processes');
    assert.ok(sampleValue(exposition, 'ebpf_collector_received_items_total', { component: 'prometheus', kind: 'exporter', signal: 'metrics' }) > 0);
    const status = await collector.status();
    assert.deepEqual(
      status.components.map((c) => [c.kind, c.id, c.status]),
      [
        ['exporter', 'prometheus', 'ok'],
        ['receiver', 'process', 'ok'],
      ],
    );

    assert.equal(await collector.stop(), 0, collector.stderr);
    // The kernel frees a program once its last fd and link are gone, a moment after the process exits.
    const ourIds = new Set(ours.map((p) => p.id));
    const left = await eventually('the kernel to release our programs', 3000, async () => {
      const state = kernelBpfState();
      const progs = state.progs.filter((p) => ourIds.has(p.id));
      const links = state.links.filter((l) => ourIds.has(l.prog_id));
      return progs.length + links.length === 0 ? { progs, links } : undefined;
    });
    assert.deepEqual(left, { progs: [], links: [] });
  } finally {
    await collector.stop();
  }
});

test('a receiver whose kprobe cannot attach is reported, and the others keep producing', async () => {
  const metricsPort = await freePort();
  const collector = await RunningCollector.start(`
receivers:
  ebpf/nanosleep:
    object: ${projectPath('build/test-bpf/kprobe_counter.bpf.o')}
    collection_interval: 300ms
    counters:
      - name: test_nanosleep_total
        map: counts
        labels: [{ name: comm, size: 16, decoder: string }]
  process:
    collection_interval: 300ms
exporters:
  prometheus:
    endpoint: 127.0.0.1:${metricsPort}
service:
  http:
    endpoint: 127.0.0.1:HTTP_PORT
  pipelines:
    metrics:
      receivers: [ebpf/nanosleep, process]
      exporters: [prometheus]
`);
  try {
    const failed = (await collector.status()).components.find((c) => c.id === 'ebpf/nanosleep');
    assert.equal(failed?.status, 'permanent_error');
    assert.match(failed?.message ?? "", /^cannot attach count_nanosleep \(auto, SEC\("kprobe\/do_nanosleep"\)\): .*kprobe/s);
    assert.match(collector.stderr, /cannot attach count_nanosleep/, 'the reason is logged');
    const health = await fetch(`${collector.statusUrl}/healthz`);
    assert.equal(health.status, 503);

    await new Promise((resolve) => setTimeout(resolve, 700));
    const baseline = sampleValue(await scrape(metricsPort), 'ebpf_process_exec_total', { comm: 'true' });
    runTrue(10);
    await eventually('the process receiver to keep counting', 10_000, async () =>
      sampleValue(await scrape(metricsPort), 'ebpf_process_exec_total', { comm: 'true' }) >= baseline + 10 ? true : undefined,
    );
    assert.equal(await collector.stop(), 0, collector.stderr);
  } finally {
    await collector.stop();
  }
});
