/**
 * End to end with a real Prometheus: it scrapes the collector CLI while a
 * workload makes syscalls, some of them failing, evaluates the project's rule
 * files, and the syscall recording rules return data for that workload.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { RunningCollector, startScrapedCollector } from '../support/collector.js';
import { projectRuleFiles, RunningPrometheus, type QuerySample } from '../support/prometheus.js';

/** Loops over an open of a missing file (openat fails with ENOENT) and getppid (never fails). */
const WORKLOAD = `
import os, time
while True:
    for _ in range(200):
        try:
            os.open('/nonexistent-ebpf-collector-e2e/file', os.O_RDONLY)
        except FileNotFoundError:
            pass
        os.getppid()
    time.sleep(0.01)
`;

let workload: ChildProcess | undefined;
let collector: RunningCollector | undefined;
let prometheus: RunningPrometheus | undefined;

before(async () => {
  workload = spawn('/usr/bin/python3', ['-c', WORKLOAD], { stdio: 'ignore' });
  assert.ok(workload.pid, 'the workload should start');
  let metricsPort: number;
  ({ collector, metricsPort } = await startScrapedCollector({ syscalls: { collection_interval: '1s', pids: [workload.pid] } }));
  prometheus = await RunningPrometheus.start({
    targets: [`127.0.0.1:${metricsPort}`],
    ruleFiles: projectRuleFiles(),
  });
});

after(async () => {
  workload?.kill();
  await prometheus?.stop();
  await collector?.stop();
});

async function firstSamples(expr: string): Promise<QuerySample[]> {
  return prometheus!.firstSamples(expr, 60_000);
}

test('Prometheus scrapes the collector and loads every rule file', async () => {
  const up = await firstSamples('up');
  assert.deepEqual(
    up.map((s) => s.value),
    [1],
    `the collector should be up: ${JSON.stringify(up)}\n${prometheus!.log}`,
  );
  const loaded = await prometheus!.rules();
  assert.ok(loaded.some((r) => r.name === 'syscall:latency:p99') && loaded.some((r) => r.name === 'HighSyscallErrorRate'));
  await prometheus!.everyRuleHealthy(10_000);
});

test('syscall:error_rate shows the workload\'s failing opens, and no failing getppid', async () => {
  const [openat] = await firstSamples('syscall:error_rate{syscall="openat"}');
  // Every openat the workload makes fails; it is the only process the receiver watches.
  assert.ok(openat.value > 0.9, `openat error rate ${openat.value}`);
  assert.deepEqual(await prometheus!.query('syscall:error_rate{syscall="getppid"} > 0'), []);
});

test('syscall:latency:p99 has a plausible value for the workload\'s syscalls', async () => {
  for (const syscall of ['getppid', 'openat']) {
    const [p99] = await firstSamples(`syscall:latency:p99{syscall="${syscall}"}`);
    // Neither takes anywhere near 10 ms 99 times out of 100; NaN (no calls in the window) fails too.
    assert.ok(p99.value > 0 && p99.value < 0.01, `${syscall} p99 ${p99.value}`);
  }
});
