import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, test } from 'node:test';
import type { Attributes, HistogramPoint } from '../../collector/data/metrics.js';
import { cgroup2Mount } from '../../collector/cgroups.js';
import { eventually } from '../../test/support/collector.js';
import { configIssues, MetricsSink, testHost, testLifecycle, testSettings } from '../../test/support/components.js';
import { blockioReceiverFactory } from './factory.js';

/** Every loop device, mount and directory a test made, undone in `after` even when a test fails. */
const cleanups: (() => void)[] = [];
after(() => {
  for (const cleanup of cleanups.reverse()) {
    try {
      cleanup();
    } catch {
      // keep undoing the rest
    }
  }
});

function run(command: string, args: string[]): { stdout: string; pid: number } {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed: ${result.error?.message ?? result.stderr}`);
  return { stdout: result.stdout.trim(), pid: result.pid };
}

function create(config: Record<string, unknown>, sink = new MetricsSink()) {
  const parsed = blockioReceiverFactory.configSchema.parse({ collection_interval: '200ms', ...config });
  const settings = testSettings('receiver', 'blockio');
  return { receiver: blockioReceiverFactory.create(settings, parsed, { metrics: sink }), sink, settings };
}

/** A directory of this test process, removed in `after`. */
function scratchDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'blockio-test-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A tmpfs of `size` mounted by the test, so that a loop device's backing file costs no disk I/O. */
function tmpfs(size: string): string {
  const dir = scratchDirectory();
  run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  cleanups.push(() => spawnSync('umount', [dir]));
  return dir;
}

/** A loop device over a sparse file of `size` in `dir`: its name, e.g. "loop3", and its path. */
function loopDevice(dir: string, size: string): { name: string; path: string; detach: () => void } {
  const image = join(dir, 'image');
  run('truncate', ['-s', size, image]);
  const path = run('losetup', ['-f', '--show', image]).stdout;
  let attached = true;
  const detach = () => {
    if (attached) run('losetup', ['-d', path]);
    attached = false;
  };
  cleanups.push(detach);
  return { name: basename(path), path, detach };
}

/** dd with its arguments; its pid, which the submitter labels carry. */
function dd(...args: string[]): number {
  return run('dd', [...args, 'status=none']).pid;
}

/** Histogram points of one metric over all batches whose attributes include `attributes`, added up. */
function histogramCount(sink: MetricsSink, name: string, attributes: Record<string, string>): { count: number; sum: number } {
  const total = { count: 0, sum: 0 };
  for (const batch of sink.batches)
    for (const metric of batch.metrics)
      if (metric.name === name && metric.type === 'histogram')
        for (const point of metric.points as HistogramPoint[])
          if (Object.entries(attributes).every(([k, v]) => point.attributes[k] === v)) {
            total.count += point.count;
            total.sum += point.sum;
          }
  return total;
}

/** The whole disk (e.g. "vda") a path's file system is on. */
function diskOf(path: string): string {
  const majorMinor = run('findmnt', ['-no', 'MAJ:MIN', '-T', path]).stdout;
  const sysfs = realpathSync(`/sys/dev/block/${majorMinor}`);
  return existsSync(join(sysfs, 'partition')) ? basename(dirname(sysfs)) : basename(sysfs);
}

testLifecycle(() => create({}).receiver);

test('bad config values are errors that name their path', () => {
  const issues = (config: unknown) => configIssues(blockioReceiverFactory, config);
  assert.match(issues({ interval: '1s' }).join('\n'), /Unrecognized key\(s\) in object: 'interval'/);
  assert.deepEqual(issues({ aggregate_by: ['cgroup', 'tid'] }), ["aggregate_by.1: Invalid enum value. Expected 'cgroup' | 'pid' | 'comm', received 'tid'"]);
  assert.deepEqual(issues({ aggregate_by: ['pid', 'pid'] }), ['aggregate_by.1: "pid" is listed twice']);
  assert.deepEqual(issues({ devices: ['vda', '/dev/vdb'] }), ['devices.1: expected a disk name as in /sys/block, e.g. "vda"']);
  assert.deepEqual(issues({ devices: ['d'.repeat(32)] }), ['devices.0: a disk name has at most 31 bytes']);
  assert.deepEqual(issues({ collection_interval: '5ms' }), ['collection_interval: must be between 100ms and 3600s, got "5ms"']);
});

test('O_DIRECT 4 KiB writes and reads on a raw loop device are exactly the requests dd made, attributed to dd', async () => {
  const writes = 300;
  const reads = 120;
  const loop = loopDevice(tmpfs('80m'), '64M');
  // Only the test's loop device: vda's traffic from everyone else stays out.
  const { receiver, sink } = create({ aggregate_by: ['cgroup', 'pid', 'comm'], devices: [loop.name] });
  await receiver.start(testHost());
  let writer: number;
  let reader: number;
  try {
    writer = dd('if=/dev/zero', `of=${loop.path}`, 'bs=4k', `count=${writes}`, 'oflag=direct');
    reader = dd(`if=${loop.path}`, 'of=/dev/null', 'bs=4k', `count=${reads}`, 'iflag=direct');
  } finally {
    await receiver.shutdown(); // flushes the last interval
  }
  const wrote = { device: loop.name, operation: 'write', pid: String(writer), comm: 'dd' };
  const read = { device: loop.name, operation: 'read', pid: String(reader), comm: 'dd' };
  // Synchronous O_DIRECT writes wait for each request: the block layer has nothing to merge.
  assert.equal(sink.total('ebpf_block_io_operations_total', wrote), writes);
  assert.equal(sink.total('ebpf_block_io_bytes_total', wrote), writes * 4096);
  assert.equal(sink.total('ebpf_block_io_operations_total', read), reads);
  assert.equal(sink.total('ebpf_block_io_bytes_total', read), reads * 4096);
  const latency = histogramCount(sink, 'ebpf_block_io_duration_seconds', wrote);
  assert.equal(latency.count, writes, 'every write is timed');
  assert.ok(latency.sum > 0 && latency.sum < 60, `${writes} writes took ${latency.sum} s on the device`);
  assert.equal(sink.total('ebpf_block_io_errors_total', { device: loop.name }), 0);
  for (const batch of sink.batches)
    for (const metric of batch.metrics)
      for (const point of metric.points) assert.equal(point.attributes.device, loop.name, `a series of another disk in ${metric.name}`);
});

test('ext4 on a loop device: O_DIRECT writes, and reads after dropping caches, are on loopN as dd made them', async () => {
  const blocks = 200;
  const loop = loopDevice(tmpfs('80m'), '64M');
  run('mkfs.ext4', ['-q', loop.path]);
  const mountpoint = scratchDirectory();
  run('mount', [loop.path, mountpoint]);
  cleanups.push(() => spawnSync('umount', [mountpoint]));
  const { receiver, sink } = create({ aggregate_by: ['pid'] });
  await receiver.start(testHost());
  let writer: number;
  let reader: number;
  try {
    writer = dd('if=/dev/zero', `of=${join(mountpoint, 'file')}`, 'bs=4k', `count=${blocks}`, 'oflag=direct');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    reader = dd(`if=${join(mountpoint, 'file')}`, 'of=/dev/null', 'bs=4k', 'iflag=direct');
  } finally {
    await receiver.shutdown();
  }
  const wrote = { device: loop.name, operation: 'write', pid: String(writer) };
  const read = { device: loop.name, operation: 'read', pid: String(reader) };
  // ext4 may add its own writes (inode, bitmaps) in dd's context; the journal's are jbd2's.
  const writeOps = sink.total('ebpf_block_io_operations_total', wrote);
  assert.ok(writeOps >= blocks && writeOps <= blocks + 16, `${writeOps} writes by dd for ${blocks} blocks`);
  assert.ok(sink.total('ebpf_block_io_bytes_total', wrote) >= blocks * 4096);
  // Reading the file back also reads its inode and directory from the disk, which dropping caches evicted.
  const readOps = sink.total('ebpf_block_io_operations_total', read);
  assert.ok(readOps >= blocks && readOps <= blocks + 16, `${readOps} reads by dd for ${blocks} blocks`);
  const readBytes = sink.total('ebpf_block_io_bytes_total', read);
  assert.ok(readBytes >= blocks * 4096 && readBytes <= blocks * 4096 + 16 * 4096, `${readBytes} bytes read by dd`);
});

test('buffered writes are submitted by the writer when it fsyncs, and by the flusher kworker when sync writes them back', async () => {
  const blocks = 64;
  const loop = loopDevice(tmpfs('80m'), '64M');
  run('mkfs.ext4', ['-q', loop.path]);
  const mountpoint = scratchDirectory();
  run('mount', [loop.path, mountpoint]);
  cleanups.push(() => spawnSync('umount', [mountpoint]));
  const { receiver, sink } = create({ aggregate_by: ['pid', 'comm'], devices: [loop.name] });
  await receiver.start(testHost());
  let fsyncer: number;
  let writer: number;
  try {
    fsyncer = dd('if=/dev/zero', `of=${join(mountpoint, 'fsynced')}`, 'bs=4k', `count=${blocks}`, 'conv=fsync');
    writer = dd('if=/dev/zero', `of=${join(mountpoint, 'synced')}`, 'bs=4k', `count=${blocks}`);
    run('sync', []);
  } finally {
    await receiver.shutdown();
  }
  const fsynced = sink.total('ebpf_block_io_bytes_total', { device: loop.name, operation: 'write', pid: String(fsyncer) });
  assert.ok(fsynced >= blocks * 4096, `dd conv=fsync submitted ${fsynced} bytes of its ${blocks * 4096}`);
  assert.equal(sink.total('ebpf_block_io_bytes_total', { device: loop.name, operation: 'write', pid: String(writer) }), 0, 'dd without fsync submitted writes');
  let flushed = 0;
  for (const batch of sink.batches)
    for (const metric of batch.metrics)
      if (metric.name === 'ebpf_block_io_bytes_total')
        for (const point of metric.points as { attributes: Attributes; value: number }[])
          if (point.attributes.operation === 'write' && point.attributes.comm.startsWith('kworker/')) flushed += point.value;
  assert.ok(flushed >= blocks * 4096, `the flusher wrote ${flushed} bytes of the ${blocks * 4096} that sync wrote back`);
});

test('O_DIRECT writes to a file on the root file system are block writes on its disk, by dd; /dev/shm writes are none', async () => {
  const blocks = 100;
  const disk = diskOf('/var/tmp');
  const dir = mkdtempSync('/var/tmp/blockio-test-');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const shm = mkdtempSync('/dev/shm/blockio-test-');
  cleanups.push(() => rmSync(shm, { recursive: true, force: true }));
  dd('--version'); // dd's pages are in the page cache before the measured runs: reading them is no block I/O of theirs
  const { receiver, sink } = create({ aggregate_by: ['pid'] });
  await receiver.start(testHost());
  let writer: number;
  let shmWriter: number;
  try {
    writer = dd('if=/dev/zero', `of=${join(dir, 'file')}`, 'bs=4k', `count=${blocks}`, 'oflag=direct');
    shmWriter = dd('if=/dev/zero', `of=${join(shm, 'file')}`, 'bs=4k', `count=${blocks}`, 'conv=fsync');
  } finally {
    await receiver.shutdown();
  }
  const wrote = { device: disk, operation: 'write', pid: String(writer) };
  const writeOps = sink.total('ebpf_block_io_operations_total', wrote);
  assert.ok(writeOps >= blocks, `${writeOps} block writes on ${disk} by dd for ${blocks} blocks`);
  assert.ok(sink.total('ebpf_block_io_bytes_total', wrote) >= blocks * 4096);
  // The disk has an I/O scheduler (mq-deadline here): every request waits in it, however briefly.
  const scheduler = run('cat', [`/sys/block/${disk}/queue/scheduler`]).stdout;
  if (!scheduler.includes('[none]'))
    assert.equal(histogramCount(sink, 'ebpf_block_io_queue_duration_seconds', wrote).count, writeOps, 'each write has a queue time');
  assert.equal(sink.total('ebpf_block_io_operations_total', { pid: String(shmWriter) }), 0, '/dev/shm writes made block I/O');
});

test('a block error is counted by its status: a loop device whose backing tmpfs is full fails writes with nospc', async () => {
  const backing = tmpfs('1m');
  const loop = loopDevice(backing, '16M');
  // Fill the tmpfs: dd stops with ENOSPC, as meant.
  spawnSync('dd', ['if=/dev/zero', `of=${join(backing, 'filler')}`, 'bs=64k', 'status=none']);
  const { receiver, sink } = create({ aggregate_by: ['pid'], devices: [loop.name] });
  await receiver.start(testHost());
  let writer: number;
  try {
    const failed = spawnSync('dd', ['if=/dev/zero', `of=${loop.path}`, 'bs=4k', 'count=1', 'seek=100', 'oflag=direct', 'status=none'], { encoding: 'utf8' });
    assert.notEqual(failed.status, 0, 'the write to the full backing file succeeded');
    assert.match(failed.stderr, /No space left on device/);
    writer = failed.pid;
  } finally {
    await receiver.shutdown();
  }
  const wrote = { device: loop.name, operation: 'write', pid: String(writer) };
  assert.equal(sink.total('ebpf_block_io_errors_total', { ...wrote, error: 'nospc' }), 1);
  assert.equal(sink.total('ebpf_block_io_errors_total', wrote), 1, 'no error of another status');
  assert.equal(sink.total('ebpf_block_io_operations_total', wrote), 1, 'the failed request is an operation too');
});

test('a loop device detached while the receiver runs ends its series; the receiver stays ok and counts other disks', async () => {
  const loop = loopDevice(tmpfs('80m'), '64M');
  const disk = diskOf('/var/tmp');
  const dir = mkdtempSync('/var/tmp/blockio-test-');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const { receiver, sink, settings } = create({ aggregate_by: ['pid'] });
  const status = () => settings.statuses.snapshot()[0];
  await receiver.start(testHost());
  try {
    const loopWriter = dd('if=/dev/zero', `of=${loop.path}`, 'bs=4k', 'count=50', 'oflag=direct');
    await eventually('the loop writes to be read', 10_000, async () =>
      sink.total('ebpf_block_io_operations_total', { device: loop.name, pid: String(loopWriter) }) === 50 || undefined,
    );
    assert.equal(status().status, 'ok');
    const okSince = status().since;
    loop.detach();
    const batchesAtDetach = sink.batches.length;
    await eventually('two more reads', 10_000, async () => sink.batches.length >= batchesAtDetach + 2 || undefined);
    const writer = dd('if=/dev/zero', `of=${join(dir, 'file')}`, 'bs=4k', 'count=20', 'oflag=direct');
    await eventually(`the writes on ${disk} after the detach to be read`, 10_000, async () =>
      sink.total('ebpf_block_io_operations_total', { device: disk, operation: 'write', pid: String(writer) }) >= 20 || undefined,
    );
    assert.equal(status().status, 'ok');
    assert.equal(status().since, okSince, 'the status changed in between');
    const loopSeries = sink.batches
      .slice(batchesAtDetach + 1)
      .flatMap((batch) => batch.metrics.flatMap((metric): { attributes: Attributes }[] => metric.points))
      .filter((point) => point.attributes.device === loop.name);
    assert.deepEqual(loopSeries, [], 'the detached device still has series');
  } finally {
    await receiver.shutdown();
  }
});

test('by default (aggregate_by [cgroup]) writes carry the pod and container of the cgroup that submitted them, and no pid or comm', async () => {
  const writes = 40;
  const mount = cgroup2Mount();
  assert.ok(mount, 'no cgroup v2 hierarchy mounted');
  const podUid = '5b0e4c1d-8a7f-4e2b-9c3d-2f1e0a9b8c7d';
  const containerId = 'c0ffee'.padEnd(64, '0');
  const parent = join(mount, `blockio-test-${process.pid}`);
  const pod = join(parent, `kubepods-besteffort-pod${podUid.replaceAll('-', '_')}.slice`);
  const container = join(pod, `cri-containerd-${containerId}.scope`);
  mkdirSync(container, { recursive: true });
  cleanups.push(() => [container, pod, parent].forEach((dir) => rmdirSync(dir)));
  const loop = loopDevice(tmpfs('16m'), '8M');
  const { receiver, sink } = create({ devices: [loop.name] });
  await receiver.start(testHost());
  try {
    // The shell moves itself into the container's cgroup, then becomes dd.
    run('sh', ['-c', `echo $$ > ${join(container, 'cgroup.procs')} && exec dd if=/dev/zero of=${loop.path} bs=4k count=${writes} oflag=direct status=none`]);
  } finally {
    await receiver.shutdown();
  }
  const inContainer = { device: loop.name, operation: 'write', pod: podUid, namespace: '', container: containerId };
  assert.equal(sink.total('ebpf_block_io_operations_total', inContainer), writes);
  assert.equal(sink.total('ebpf_block_io_bytes_total', inContainer), writes * 4096);
  assert.equal(histogramCount(sink, 'ebpf_block_io_duration_seconds', inContainer).count, writes);
  assert.equal(sink.total('ebpf_block_io_operations_total', { device: loop.name, operation: 'write' }), writes, 'writes outside the container');
  for (const batch of sink.batches)
    for (const metric of batch.metrics)
      for (const point of metric.points)
        assert.deepEqual(
          Object.keys(point.attributes).sort(),
          ['container', 'device', 'namespace', 'operation', 'pod', ...(metric.name === 'ebpf_block_io_errors_total' ? ['error'] : [])].sort(),
          `${metric.name} ${JSON.stringify(point.attributes)}`,
        );
});
