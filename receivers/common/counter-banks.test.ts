/**
 * Exact counts while the kernel keeps counting (bpf/counter_bank.h): each test runs an exact workload
 * beside a second process that hammers the same counter (same comm, same cgroup: the same key), with a
 * 100 ms collection interval, so that many drains happen while both count. The total must be the
 * exact sum of both, and the counts must have arrived over many drains, or the test proves nothing.
 * The processes are test/workloads/exact_calls, filtered by its comm, so other activity cannot add.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { before, test } from 'node:test';
import type { Component } from '../../collector/component.js';
import { projectPath } from '../../collector/paths.js';
import { MetricsSink, testHost, testSettings } from '../../test/support/components.js';
import { processReceiverFactory } from '../process/factory.js';
import { syscallsReceiverFactory } from '../syscalls/factory.js';
import { tcpReceiverFactory } from '../tcp/factory.js';

const COMM = 'exact_calls';
const WORKLOAD = projectPath('build/workloads', COMM);
const INTERVAL = '100ms';
/** Drains that must have carried counts of the workload: at 100 ms, a run of a second or more gives ten. */
const MIN_DRAINS_WITH_COUNTS = 8;

before(() => {
  const make = spawnSync('make', ['-s', '-C', projectPath('test/workloads')], { encoding: 'utf8' });
  assert.equal(make.status, 0, `make -C test/workloads failed: ${make.stderr}`);
});

/** Runs exact_calls with `args` to its end; it exits 0 only if every call did what was asked. */
async function run(...args: (string | number)[]): Promise<void> {
  const child = spawn(WORKLOAD, args.map(String), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, `exact_calls ${args.join(' ')} failed: ${stderr}`);
}

/** Starts `receiver`, runs `workloads` to their end, and shuts it down: its last read flushes every count. */
async function record(receiver: Component, workloads: () => Promise<unknown>): Promise<void> {
  await receiver.start(testHost());
  try {
    await workloads();
  } finally {
    await receiver.shutdown();
  }
}

/** Batches that carried a non-zero point of `metric` matching `attributes`: the drains that found counts. */
function drainsWithCounts(sink: MetricsSink, metric: string, attributes: Record<string, string>): number {
  return sink.batches.filter((batch) =>
    batch.metrics.some(
      (m) =>
        m.name === metric &&
        m.points.some((point) => Object.entries(attributes).every(([k, v]) => point.attributes[k] === v) && ('count' in point ? point.count : point.value) > 0),
    ),
  ).length;
}

function syscallsReceiver(sink: MetricsSink) {
  const config = syscallsReceiverFactory.configSchema.parse({ collection_interval: INTERVAL, comms: [COMM] });
  return syscallsReceiverFactory.create(testSettings('receiver', 'syscalls'), config, { metrics: sink });
}

test('N getppid calls are counted exactly while another process hammers the same series', async () => {
  const sink = new MetricsSink();
  const n = 100_000;
  const hammer = 1_000_000;
  await record(syscallsReceiver(sink), () => Promise.all([run('getppid', hammer), run('getppid', n)]));
  const counted = sink.histogramCount('ebpf_syscall_duration_seconds', { syscall: 'getppid' });
  assert.equal(sink.total('ebpf_syscall_total', { syscall: 'getppid' }), n + hammer, 'ebpf_syscall_total{syscall="getppid"}');
  assert.equal(counted, n + hammer, 'the duration histogram counts every call too');
  const drains = drainsWithCounts(sink, 'ebpf_syscall_total', { syscall: 'getppid' });
  assert.ok(drains >= MIN_DRAINS_WITH_COUNTS, `counts arrived over ${drains} drains, expected at least ${MIN_DRAINS_WITH_COUNTS}`);
});

test('M opens failing with ENOENT are counted exactly while another process hammers the same error series', async () => {
  const sink = new MetricsSink();
  const m = 20_000;
  const hammer = 300_000;
  await record(syscallsReceiver(sink), () => Promise.all([run('enoent', hammer), run('enoent', m)]));
  const failed = { syscall: 'openat', errno: 'ENOENT' };
  assert.equal(sink.total('ebpf_syscall_errors_total', failed), m + hammer, 'ebpf_syscall_errors_total{syscall="openat",errno="ENOENT"}');
  const drains = drainsWithCounts(sink, 'ebpf_syscall_errors_total', failed);
  assert.ok(drains >= MIN_DRAINS_WITH_COUNTS, `counts arrived over ${drains} drains, expected at least ${MIN_DRAINS_WITH_COUNTS}`);
});

test('50 execs are counted exactly while another process execs the same comm over and over', async () => {
  const sink = new MetricsSink();
  const config = processReceiverFactory.configSchema.parse({ collection_interval: INTERVAL });
  const receiver = processReceiverFactory.create(testSettings('receiver', 'process'), config, { metrics: sink });
  const execs = 50;
  const hammer = 1000;
  await record(receiver, () =>
    Promise.all([
      run('exec', hammer), // itself, then `hammer` children: hammer + 1 execs of exact_calls
      (async () => {
        for (let i = 0; i < execs; i++) await run('exit');
      })(),
    ]),
  );
  assert.equal(sink.total('ebpf_process_exec_total', { comm: COMM }), execs + hammer + 1, 'ebpf_process_exec_total{comm="exact_calls"}');
  const drains = drainsWithCounts(sink, 'ebpf_process_exec_total', { comm: COMM });
  assert.ok(drains >= MIN_DRAINS_WITH_COUNTS, `counts arrived over ${drains} drains, expected at least ${MIN_DRAINS_WITH_COUNTS}`);
});

test('K connects to a loopback listener are counted exactly while another process hammers the same destination', async () => {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    // The clients close with a reset: the error is expected, the socket just goes.
    sockets.add(socket.on('error', () => {}).on('close', () => sockets.delete(socket)));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const sink = new MetricsSink();
  const config = tcpReceiverFactory.configSchema.parse({ collection_interval: INTERVAL, comms: [COMM] });
  const receiver = tcpReceiverFactory.create(testSettings('receiver', 'tcp'), config, { metrics: sink });
  const k = 500;
  const hammer = 5000;
  try {
    await record(receiver, () => Promise.all([run('connect', port, hammer), run('connect', port, k)]));
  } finally {
    for (const socket of sockets) socket.destroy();
    server.close();
  }
  const destination = { dst_ip: '127.0.0.1' };
  assert.equal(sink.histogramCount('ebpf_network_connect_duration_seconds', destination), k + hammer, 'connects to 127.0.0.1');
  assert.equal(sink.total('ebpf_network_connect_failures_total'), 0, 'no connect failed');
  const drains = drainsWithCounts(sink, 'ebpf_network_connect_duration_seconds', destination);
  assert.ok(drains >= MIN_DRAINS_WITH_COUNTS, `counts arrived over ${drains} drains, expected at least ${MIN_DRAINS_WITH_COUNTS}`);
});
