import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Attributes, HistogramPoint } from '../../collector/data/metrics.js';
import { projectPath } from '../../collector/paths.js';
import { configIssues, MetricsSink, testHost, testLifecycle, testSettings } from '../../test/support/components.js';
import { syscallsReceiverFactory } from '../syscalls/factory.js';
import { fileioReceiverFactory } from './factory.js';

const FILE_OPS = projectPath('build/fileio-test/file_ops');
/** Files the tests write: on the root ext4 and on the /dev/shm tmpfs. */
const onRoot = mkdtempSync('/var/tmp/fileio-test-');
const onShm = mkdtempSync('/dev/shm/fileio-test-');

before(() => {
  mkdirSync(projectPath('build/fileio-test'), { recursive: true });
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', FILE_OPS, projectPath('receivers/fileio/testdata/file_ops.c')]);
});

after(() => {
  rmSync(onRoot, { recursive: true, force: true });
  rmSync(onShm, { recursive: true, force: true });
});

function create(config: Record<string, unknown>, sink = new MetricsSink()) {
  const parsed = fileioReceiverFactory.configSchema.parse({ collection_interval: '200ms', ...config });
  return fileioReceiverFactory.create(testSettings('receiver', 'fileio'), parsed, { metrics: sink });
}

/** A process that prints "ready", waits for go(), then runs: `command` in a shell (exec'd, so the pid stays) or file_ops. */
interface Workload {
  pid: number;
  go: () => Promise<void>;
  /** Ends it if go() was never called (a failed start), so that the test does not wait for it. */
  kill: () => void;
}

async function startWorkload(argv: string[]): Promise<Workload> {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let errors = '';
  child.stderr!.on('data', (chunk) => (errors += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      if (output.includes('ready\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited with ${code} before it was ready: ${errors}`)));
  });
  return {
    pid: child.pid!,
    go: async () => {
      child.stdin!.end('g\n');
      assert.equal(await exited, 0, `${argv.join(' ')} failed: ${errors}`);
    },
    kill: () => {
      if (child.exitCode === null) child.kill();
    },
  };
}

/** dd writing `blocks` 4 KiB blocks with O_DIRECT to `path`, once go() is called. */
function dd(path: string, blocks: number) {
  return startWorkload(['sh', '-c', `echo ready; read go; exec dd if=/dev/zero of=${path} bs=4k count=${blocks} oflag=direct status=none`]);
}

/** Runs the workload with a fileio receiver filtered to its pid; the shutdown flushes the last interval. */
async function record(workload: Promise<Workload>, config: Record<string, unknown> = {}) {
  const sink = new MetricsSink();
  const started = await workload;
  const receiver = create({ pids: [started.pid], ...config }, sink);
  try {
    await receiver.start(testHost());
    await started.go();
  } finally {
    started.kill();
    await receiver.shutdown();
  }
  return sink;
}

function histogramCount(sink: MetricsSink, attributes: Record<string, string>): number {
  let count = 0;
  for (const batch of sink.batches)
    for (const metric of batch.metrics)
      if (metric.name === 'ebpf_io_duration_seconds' && metric.type === 'histogram')
        for (const point of metric.points as HistogramPoint[])
          if (Object.entries(attributes).every(([k, v]) => point.attributes[k] === v)) count += point.count;
  return count;
}

function allAttributes(sink: MetricsSink): Attributes[] {
  return sink.batches.flatMap((batch) => batch.metrics.flatMap((metric): Attributes[] => metric.points.map((point) => point.attributes)));
}

testLifecycle(() => create({}));

test('bad config values are errors that name their path', () => {
  const issues = (config: unknown) => configIssues(fileioReceiverFactory, config);
  assert.match(issues({ interval: '1s' }).join('\n'), /Unrecognized key\(s\) in object: 'interval'/);
  assert.deepEqual(issues({ aggregate_by: ['cgroup', 'device'] }), [
    "aggregate_by.1: Invalid enum value. Expected 'cgroup' | 'pid' | 'comm' | 'mountpoint', received 'device'",
  ]);
  assert.deepEqual(issues({ filesystems: { include: ['ext4'], exclude: ['proc'] } }), ['filesystems: give either include or exclude, not both']);
  assert.deepEqual(issues({ filesystems: { include: ['Ext 4'] } }), [
    'filesystems.include.0: expected a filesystem type name as in /proc/filesystems, e.g. "ext4"',
  ]);
  assert.deepEqual(issues({ filesystems: { exclude: ['proc', 'proc'] } }), ['filesystems.exclude.1: "proc" is listed twice']);
  assert.match(issues({ filesystems: { types: ['ext4'] } }).join('\n'), /^filesystems: Unrecognized key\(s\) in object: 'types'/);
  assert.deepEqual(issues({ comms: ['a-command-name-of-20b'] }), ['comms.0: a command name has at most 15 bytes: the kernel truncates longer names']);
  assert.deepEqual(issues({ pids: [0] }), ['pids.0: Number must be greater than or equal to 1']);
  assert.deepEqual(issues({ cgroups: ['system.slice'] }), ['cgroups.0: expected a cgroup v2 path starting with "/", e.g. "/system.slice"']);
});

test('dd with oflag=direct to a file on the root ext4: exactly N writes of 4 KiB on ext4', async () => {
  const blocks = 97;
  const sink = await record(dd(join(onRoot, 'dd.out'), blocks));
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'write' }), blocks);
  assert.equal(sink.total('ebpf_io_bytes_total', { filesystem: 'ext4', operation: 'write' }), blocks * 4096);
  assert.equal(histogramCount(sink, { filesystem: 'ext4', operation: 'write' }), blocks);
  // Its dynamic loader opens, reads and maps libraries from ext4 too: only writes are exact.
  assert.ok(sink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'open' }) >= 1, 'dd opens its output');
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'tmpfs' }), 0);
  // dd reads /dev/zero: a device node (devtmpfs), excluded by default.
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'devtmpfs' }), 0);
});

test('the same on /dev/shm gives tmpfs writes', async () => {
  const blocks = 61;
  const sink = await record(dd(join(onShm, 'dd.out'), blocks));
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'tmpfs', operation: 'write' }), blocks);
  assert.equal(sink.total('ebpf_io_bytes_total', { filesystem: 'tmpfs', operation: 'write' }), blocks * 4096);
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'write' }), 0);
});

test('M fsyncs give exactly M fsync operations and a histogram count of M; fdatasync, fstat and close too', async () => {
  const m = 40;
  const sink = await record(startWorkload([FILE_OPS, 'sync', join(onRoot, 'synced'), String(m)]));
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'fsync' }), m);
  assert.equal(histogramCount(sink, { filesystem: 'ext4', operation: 'fsync' }), m);
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'fdatasync' }), m);
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'write' }), m);
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'stat' }), m);
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'close' }), 1);
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'open' }), 1);
});

test('reads from /proc and from a pipe, and fstat of a pipe, appear in no series', async () => {
  const n = 500;
  const sink = await record(startWorkload([FILE_OPS, 'virtual', String(n)]));
  const filesystems = new Set(allAttributes(sink).map((attributes) => attributes.filesystem));
  for (const excluded of ['proc', 'pipefs']) assert.ok(!filesystems.has(excluded), `a ${excluded} series: ${[...filesystems]}`);
  assert.equal(sink.total('ebpf_io_operations_total', { operation: 'read' }), 0);
  assert.equal(sink.total('ebpf_io_operations_total', { operation: 'stat' }), 0);
  assert.equal(sink.total('ebpf_io_operations_total', { operation: 'write' }), 0);
});

test('an include list keeps only its filesystems; comm and mountpoint label what was aggregated by them', async () => {
  const blocks = 23;
  const sink = await record(dd(join(onShm, 'dd-include.out'), blocks), {
    filesystems: { include: ['ext4'] },
    aggregate_by: ['cgroup', 'comm', 'mountpoint'],
  });
  assert.equal(sink.total('ebpf_io_operations_total', { filesystem: 'tmpfs' }), 0, 'tmpfs is not in the include list');
  const withShm = await record(dd(join(onShm, 'dd-include.out'), blocks), {
    filesystems: { include: ['tmpfs'] },
    aggregate_by: ['cgroup', 'comm', 'mountpoint'],
  });
  assert.equal(withShm.total('ebpf_io_operations_total', { filesystem: 'tmpfs', operation: 'write', comm: 'dd', mountpoint: '/dev/shm' }), blocks);
  assert.ok(allAttributes(withShm).every((attributes) => !('pid' in attributes)), 'pid is not a label unless aggregated by');
});

test('beside the syscalls receiver, on one shared program pair, both count every call', async () => {
  const m = 30;
  const fileioSink = new MetricsSink();
  const syscallsSink = new MetricsSink();
  const workload = await startWorkload([FILE_OPS, 'sync', join(onRoot, 'shared'), String(m)]);
  const fileio = create({ pids: [workload.pid] }, fileioSink);
  const syscalls = syscallsReceiverFactory.create(
    testSettings('receiver', 'syscalls'),
    syscallsReceiverFactory.configSchema.parse({ collection_interval: '200ms', pids: [workload.pid] }),
    { metrics: syscallsSink },
  );
  // fileio first: it rides on the raw pair because a syscalls receiver exists.
  try {
    await fileio.start(testHost());
    await syscalls.start(testHost());
    await workload.go();
  } finally {
    workload.kill();
    await syscalls.shutdown();
    await fileio.shutdown();
  }
  assert.equal(fileioSink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'fsync' }), m);
  assert.equal(fileioSink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'fdatasync' }), m);
  assert.equal(syscallsSink.total('ebpf_syscall_total', { syscall: 'fsync' }), m);
  assert.equal(syscallsSink.total('ebpf_syscall_total', { syscall: 'fdatasync' }), m);
  assert.equal(syscallsSink.total('ebpf_syscall_total', { syscall: 'pwrite64' }), m);
});

test('fileio started alone, then a syscalls receiver (fileio moves onto its raw pair): both count every call', async () => {
  const m = 25;
  const fileioSink = new MetricsSink();
  const syscallsSink = new MetricsSink();
  const workload = await startWorkload([FILE_OPS, 'sync', join(onRoot, 'moved'), String(m)]);
  // Created only now, so fileio starts on its per-syscall tracepoints.
  const fileio = create({ pids: [workload.pid] }, fileioSink);
  let syscalls: ReturnType<typeof syscallsReceiverFactory.create> | undefined;
  try {
    await fileio.start(testHost());
    syscalls = syscallsReceiverFactory.create(
      testSettings('receiver', 'syscalls'),
      syscallsReceiverFactory.configSchema.parse({ collection_interval: '200ms', pids: [workload.pid] }),
      { metrics: syscallsSink },
    );
    await syscalls.start(testHost());
    await workload.go();
  } finally {
    workload.kill();
    await syscalls?.shutdown();
    await fileio.shutdown();
  }
  assert.equal(fileioSink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'fsync' }), m);
  assert.equal(fileioSink.total('ebpf_io_operations_total', { filesystem: 'ext4', operation: 'write' }), m);
  assert.equal(syscallsSink.total('ebpf_syscall_total', { syscall: 'fsync' }), m);
});
