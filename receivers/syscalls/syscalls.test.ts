import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { Attributes, HistogramPoint } from '../../collector/data/metrics.js';
import { projectPath } from '../../collector/paths.js';
import { configIssues, MetricsSink, testHost, testLifecycle, testSettings } from '../../test/support/components.js';
import { cgroup2Mount } from '../../collector/cgroups.js';
import { syscallsReceiverFactory } from './factory.js';

before(() => {
  const make = spawnSync('make', ['-s', '-C', projectPath('test/workloads')], { encoding: 'utf8' });
  assert.equal(make.status, 0, `make -C test/workloads failed: ${make.stderr}`);
});

function create(config: Record<string, unknown>, sink = new MetricsSink()) {
  const parsed = syscallsReceiverFactory.configSchema.parse({ collection_interval: '200ms', ...config });
  return syscallsReceiverFactory.create(testSettings('receiver', 'syscalls'), parsed, { metrics: sink });
}

/** A workload from test/workloads, started and waiting for go() before it makes the syscalls it counts. */
async function startWorkload(name: string, args: string[]): Promise<{ pid: number; go: () => Promise<void> }> {
  const child = spawn(projectPath('build/workloads', name), args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      if (output.includes('ready\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
  });
  return {
    pid: child.pid!,
    go: async () => {
      child.stdin!.end('g');
      assert.equal(await exited, 0, `${name} ${args.join(' ')} failed`);
    },
  };
}

/** Histogram points of one metric over all batches whose attributes include `attributes`, added up. */
function histogramTotal(sink: MetricsSink, name: string, attributes: Record<string, string>): HistogramPoint | undefined {
  let total: HistogramPoint | undefined;
  for (const batch of sink.batches)
    for (const metric of batch.metrics)
      if (metric.name === name && metric.type === 'histogram')
        for (const point of metric.points) {
          if (!Object.entries(attributes).every(([k, v]) => point.attributes[k] === v)) continue;
          total ??= { attributes, boundaries: point.boundaries, bucketCounts: point.bucketCounts.map(() => 0), sum: 0, count: 0 };
          point.bucketCounts.forEach((n, i) => (total!.bucketCounts[i] += n));
          total.sum += point.sum;
          total.count += point.count;
        }
  return total;
}

/** The attributes of every point the receiver emitted. */
function allAttributes(sink: MetricsSink): Attributes[] {
  return sink.batches.flatMap((batch) => batch.metrics.flatMap((metric): Attributes[] => metric.points.map((point) => point.attributes)));
}

/** Prometheus' histogram_quantile over one histogram: linear interpolation inside the bucket that holds the rank. */
function histogramQuantile(q: number, { boundaries, bucketCounts }: HistogramPoint): number {
  const total = bucketCounts.reduce((a, b) => a + b, 0);
  const rank = q * total;
  let cumulative = 0;
  for (let i = 0; i < bucketCounts.length; i++) {
    const previous = cumulative;
    cumulative += bucketCounts[i];
    if (cumulative < rank) continue;
    if (i === boundaries.length) return boundaries[boundaries.length - 1]; // +Inf bucket
    const lower = i === 0 ? 0 : boundaries[i - 1];
    return lower + (boundaries[i] - lower) * ((rank - previous) / bucketCounts[i]);
  }
  return NaN;
}

/** Counts are exact: the maps are drained from a retired counter bank (bpf/counter_bank.h), so nothing may be lost or doubled. */
function assertExactly(actual: number, expected: number, what: string): void {
  assert.equal(actual, expected, `${what}: exported ${actual}, the workload made ${expected}`);
}

testLifecycle(() => create({}));

test('bad config values are errors that name their path', () => {
  const issues = (config: unknown) => configIssues(syscallsReceiverFactory, config);
  assert.match(issues({ interval: '1s' }).join('\n'), /Unrecognized key\(s\) in object: 'interval'/);
  assert.deepEqual(issues({ aggregate_by: ['cgroup', 'pod'] }), [
    "aggregate_by.1: Invalid enum value. Expected 'cgroup' | 'pid' | 'tid' | 'uid', received 'pod'",
  ]);
  assert.deepEqual(issues({ aggregate_by: ['pid', 'pid'] }), ['aggregate_by.1: "pid" is listed twice']);
  assert.deepEqual(issues({ comms: ['a-command-name-of-20b'] }), [
    'comms.0: a command name has at most 15 bytes: the kernel truncates longer names',
  ]);
  assert.deepEqual(issues({ pids: [0] }), ['pids.0: Number must be greater than or equal to 1']);
  assert.deepEqual(issues({ cgroups: ['system.slice'] }), ['cgroups.0: expected a cgroup v2 path starting with "/", e.g. "/system.slice"']);
  assert.deepEqual(issues({ collection_interval: 10 }), ['collection_interval: expected a duration such as "10s" or "500ms", got number 10']);
});

test('a missing cgroup in the filter fails start with its path', async () => {
  const receiver = create({ cgroups: ['/no-such-cgroup-ebpf-collector'] });
  await assert.rejects(receiver.start(testHost()), /cgroup "\/no-such-cgroup-ebpf-collector" not found/);
  await receiver.shutdown();
});

test('with a comms filter, calls and ENOENT errors match what the workload made', async () => {
  const getppids = 100_000;
  const failingOpens = 2_000;
  const sink = new MetricsSink();
  const receiver = create({ comms: ['syscall_mix'] }, sink);
  const workload = await startWorkload('syscall_mix', [String(getppids), String(failingOpens)]);
  await receiver.start(testHost());
  try {
    await workload.go();
  } finally {
    await receiver.shutdown(); // flushes the last interval
  }
  assertExactly(sink.total('ebpf_syscall_total', { syscall: 'getppid' }), getppids, 'getppid calls');
  assertExactly(sink.total('ebpf_syscall_total', { syscall: 'openat' }), failingOpens, 'openat calls');
  assertExactly(sink.total('ebpf_syscall_errors_total', { syscall: 'openat', errno: 'ENOENT' }), failingOpens, 'openat ENOENT errors');
  assert.equal(sink.total('ebpf_syscall_errors_total', { syscall: 'getppid' }), 0, 'getppid cannot fail');
  const histogram = histogramTotal(sink, 'ebpf_syscall_duration_seconds', { syscall: 'getppid' });
  assert.equal(histogram?.count, sink.total('ebpf_syscall_total', { syscall: 'getppid' }), 'the histogram counts every call');
  assert.ok(histogram!.sum > 0 && histogram!.sum < 1, `getppid took ${histogram!.sum} s in all`);
});

test('the pid filter keeps other processes out, and pid, tid and uid label what was aggregated by them', async () => {
  const sink = new MetricsSink();
  const watched = await startWorkload('syscall_mix', ['30000', '300']);
  const other = await startWorkload('syscall_mix', ['50000', '500']);
  const receiver = create({ pids: [watched.pid], aggregate_by: ['pid', 'tid', 'uid'] }, sink);
  await receiver.start(testHost());
  try {
    await Promise.all([watched.go(), other.go()]);
  } finally {
    await receiver.shutdown();
  }
  const points = allAttributes(sink);
  assert.ok(points.length > 0);
  for (const attributes of points) {
    assert.equal(attributes.pid, String(watched.pid), `a series of another process: ${JSON.stringify(attributes)}`);
    assert.equal(attributes.tid, String(watched.pid), 'the workload is single-threaded');
    assert.equal(attributes.uid, String(process.getuid!()));
  }
  assertExactly(sink.total('ebpf_syscall_total', { syscall: 'getppid' }), 30_000, 'getppid calls of the watched pid');
  assertExactly(sink.total('ebpf_syscall_errors_total', { syscall: 'openat', errno: 'ENOENT' }), 300, 'its openat errors');
});

test('the p50 of 10 ms nanosleeps, as histogram_quantile computes it, is within one bucket of 10 ms', async () => {
  const sink = new MetricsSink();
  const receiver = create({ comms: ['sleep_loop'] }, sink);
  const workload = await startWorkload('sleep_loop', ['60', '10']);
  await receiver.start(testHost());
  try {
    await workload.go();
  } finally {
    await receiver.shutdown();
  }
  const histogram = histogramTotal(sink, 'ebpf_syscall_duration_seconds', { syscall: 'nanosleep' });
  assert.equal(histogram?.count, 60);
  const p50 = histogramQuantile(0.5, histogram!);
  const bucketOf = (seconds: number) => histogram!.boundaries.findIndex((le) => seconds <= le);
  assert.ok(Math.abs(bucketOf(p50) - bucketOf(0.01)) <= 1, `p50 ${p50} s is in bucket ${bucketOf(p50)}, 10 ms in bucket ${bucketOf(0.01)}`);
  assert.ok(histogram!.sum >= 0.6, `60 sleeps of 10 ms took ${histogram!.sum} s`);
});

test('the cgroups filter covers a cgroup and its children, and a pod cgroup gives the pod label', async () => {
  const mount = cgroup2Mount();
  assert.ok(mount, 'no cgroup v2 hierarchy is mounted');
  const parent = `/ebpf-collector-test-${process.pid}`;
  const podUid = '0c5e37a2-4a4b-4b7e-9d8e-1f2a3b4c5d6e';
  const pod = `${parent}/kubepods-besteffort-pod${podUid.replaceAll('-', '_')}.slice`;
  mkdirSync(join(mount, pod), { recursive: true });
  const sink = new MetricsSink();
  try {
    const inPod = await startWorkload('syscall_mix', ['20000', '200']);
    const outside = await startWorkload('syscall_mix', ['40000', '400']);
    writeFileSync(join(mount, pod, 'cgroup.procs'), String(inPod.pid));
    const receiver = create({ cgroups: [parent] }, sink);
    await receiver.start(testHost());
    try {
      await Promise.all([inPod.go(), outside.go()]);
    } finally {
      await receiver.shutdown();
    }
  } finally {
    rmdirSync(join(mount, pod));
    rmdirSync(join(mount, parent));
  }
  assertExactly(sink.total('ebpf_syscall_total', { syscall: 'getppid' }), 20_000, 'getppid calls in the cgroup');
  assertExactly(sink.total('ebpf_syscall_total', { syscall: 'getppid', pod: podUid, namespace: '' }), 20_000, 'getppid calls labelled with the pod');
  assertExactly(
    sink.total('ebpf_syscall_errors_total', { syscall: 'openat', errno: 'ENOENT', pod: podUid }),
    200,
    'openat errors labelled with the pod',
  );
  const points = allAttributes(sink);
  assert.ok(points.every((attributes) => !('pid' in attributes)), 'pid is not a label unless aggregated by');
});
