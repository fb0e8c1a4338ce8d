/**
 * End to end with a real Prometheus: it scrapes the collector CLI while a
 * workload makes syscalls, some of them failing, evaluates the project's rule
 * files, and the syscall recording rules return data for that workload.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { projectPath } from '../../collector/paths.js';
import { eventually, freePort, RunningCollector } from '../support/collector.js';
import { RunningPrometheus, type QuerySample } from '../support/prometheus.js';

const RULES_DIR = projectPath('deploy/prometheus/rules');

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
  const metricsPort = await freePort();
  collector = await RunningCollector.start(`
receivers:
  syscalls:
    collection_interval: 1s
    pids: [${workload.pid}]
exporters:
  prometheus:
    endpoint: 127.0.0.1:${metricsPort}
service:
  http:
    endpoint: 127.0.0.1:HTTP_PORT
  pipelines:
    metrics:
      receivers: [syscalls]
      exporters: [prometheus]
`);
  prometheus = await RunningPrometheus.start({
    targets: [`127.0.0.1:${metricsPort}`],
    ruleFiles: readdirSync(RULES_DIR)
      .filter((name) => name.endsWith('.yml'))
      .map((name) => `${RULES_DIR}/${name}`),
  });
});

after(async () => {
  workload?.kill();
  await prometheus?.stop();
  await collector?.stop();
});

/** Polls `expr` until it returns at least one sample; the rules' first values need two scrapes and an evaluation. */
async function firstSamples(expr: string): Promise<QuerySample[]> {
  return eventually(`${expr} to return data`, 60_000, async () => {
    const samples = await prometheus!.query(expr);
    return samples.length > 0 ? samples : undefined;
  });
}

test('Prometheus scrapes the collector and loads every rule file', async () => {
  const up = await firstSamples('up');
  assert.deepEqual(
    up.map((s) => s.value),
    [1],
    `the collector should be up: ${JSON.stringify(up)}\n${prometheus!.log}`,
  );
  const rules = (await (await fetch(`${prometheus!.url}/api/v1/rules`)).json()) as {
    data: { groups: { file: string; rules: { name: string; health: string; lastError?: string }[] }[] };
  };
  const loaded = rules.data.groups.flatMap((g) => g.rules);
  assert.ok(loaded.some((r) => r.name === 'syscall:latency:p99') && loaded.some((r) => r.name === 'HighSyscallErrorRate'));
  await eventually('every rule to be evaluated without error', 10_000, async () => {
    const now = (await (await fetch(`${prometheus!.url}/api/v1/rules`)).json()) as typeof rules;
    const bad = now.data.groups.flatMap((g) => g.rules).filter((r) => r.health !== 'ok');
    if (bad.length > 0) throw new Error(JSON.stringify(bad));
    return true;
  });
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
