/**
 * End to end through the CLI: real BPF programs on the sched tracepoints count
 * real execs, a Prometheus scrape shows them, and a clean stop leaves no
 * program or link of ours in the kernel.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { projectPath } from '../../collector/paths.js';
import { eventually, sampleValue, scrape, startScrapedCollector } from '../support/collector.js';

function runTrue(times: number): void {
  for (let i = 0; i < times; i++) assert.equal(spawnSync('/bin/true').status, 0);
}

test('execs of /bin/true are counted by comm, and stopping leaves nothing in the kernel', async () => {
  const { collector, metricsPort } = await startScrapedCollector({ process: { collection_interval: '300ms' } });
  try {
    const ours = collector.programIds();
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
    assert.deepEqual(
      await collector.statuses(),
      [
        ['exporter', 'prometheus', 'ok'],
        ['receiver', 'process', 'ok'],
      ],
    );

    await collector.stopAndExpectReleased();
  } finally {
    await collector.stop();
  }
});

test('a receiver whose kprobe cannot attach is reported, and the others keep producing', async () => {
  const { collector, metricsPort } = await startScrapedCollector({
    'ebpf/missing': {
      object: projectPath('build/test-bpf/kprobe_counter.bpf.o'),
      collection_interval: '300ms',
      counters: [{ name: 'test_missing_function_calls_total', map: 'counts', labels: [{ name: 'comm', size: 16, decoder: 'string' }] }],
    },
    process: { collection_interval: '300ms' },
  });
  try {
    const failed = (await collector.status()).components.find((c) => c.id === 'ebpf/missing');
    assert.equal(failed?.status, 'permanent_error');
    // The kprobe's function exists in no kernel: libbpf's last line is the same on every kernel, with kprobes or without.
    const message = failed?.message ?? '';
    const cut = message.indexOf('; libbpf: ');
    assert.equal(message.slice(0, cut), 'cannot attach count_calls (auto, SEC("kprobe/ebpf_collector_no_such_function")): No such file or directory');
    assert.equal(
      message.slice(cut).split('\n').at(-1),
      "prog 'count_calls': failed to create kprobe 'ebpf_collector_no_such_function+0x0' perf event: No such file or directory",
    );
    assert.match(collector.stderr, /cannot attach count_calls \(auto, SEC\(\\"kprobe\/ebpf_collector_no_such_function\\"\)\)/, 'the reason is logged');
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
