/**
 * End to end through the CLI, with the syscalls receiver beside fileio as in
 * the default pipeline: dd's O_DIRECT writes to the root ext4 and to /dev/shm
 * are scraped as exactly that many writes by filesystem, the two receivers run
 * on one sys_enter/sys_exit program pair, promtool finds the exposition clean,
 * a real Prometheus returns io:latency:p99, and a clean stop leaves no program
 * of ours.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { projectPath } from '../../collector/paths.js';
import { assertRefusedByValidate, eventually, kernelBpfState, RunningCollector, sampleValue, scrape, startScrapedCollector } from '../support/collector.js';
import { assertPromtoolClean } from '../support/exposition.js';
import { RunningPrometheus } from '../support/prometheus.js';

const RULES_DIR = projectPath('deploy/prometheus/rules');

/** dd of `blocks` 4 KiB O_DIRECT writes to `path`; its pid. */
function dd(path: string, blocks: number): number {
  const result = spawnSync('dd', ['if=/dev/zero', `of=${path}`, 'bs=4k', `count=${blocks}`, 'oflag=direct', 'status=none'], { encoding: 'utf8' });
  assert.equal(result.status, 0, `dd failed: ${result.error?.message ?? result.stderr}`);
  return result.pid;
}

/** Names of the programs the collector has attached (held by a link), from bpftool. */
function attachedPrograms(collector: RunningCollector): string[] {
  const ours = new Set(collector.programIds());
  const { progs, links } = kernelBpfState();
  const linked = new Set(links.filter((link) => ours.has(link.prog_id)).map((link) => link.prog_id));
  return progs.filter((prog) => linked.has(prog.id)).map((prog) => prog.name ?? String(prog.id)).sort();
}

test('dd writes to ext4 and tmpfs are scraped as exactly that many writes and bytes, beside syscalls on one program pair; promtool is clean', async () => {
  const onRoot = mkdtempSync('/var/tmp/fileio-e2e-');
  const onShm = mkdtempSync('/dev/shm/fileio-e2e-');
  let collector: RunningCollector | undefined;
  try {
    let metricsPort: number;
    ({ collector, metricsPort } = await startScrapedCollector({
      syscalls: { collection_interval: '300ms' },
      fileio: { collection_interval: '300ms', aggregate_by: ['cgroup', 'pid'] },
    }));
    // One pass per syscall for both receivers: the raw pair and the switch program, no per-syscall tracepoint programs.
    assert.deepEqual(attachedPrograms(collector), ['syscall_enter', 'syscall_exit', 'syscall_switch']);

    const blocks = 75;
    const rootWriter = dd(join(onRoot, 'dd.out'), blocks);
    const shmWriter = dd(join(onShm, 'dd.out'), blocks + 1);
    const ext4 = { filesystem: 'ext4', operation: 'write', pid: String(rootWriter) };
    const tmpfs = { filesystem: 'tmpfs', operation: 'write', pid: String(shmWriter) };
    let last = '';
    const exposition = await eventually('both dd runs to be scraped', 20_000, async () => {
      last = await scrape(metricsPort);
      return sampleValue(last, 'ebpf_io_operations_total', ext4) >= blocks && sampleValue(last, 'ebpf_io_operations_total', tmpfs) >= blocks + 1
        ? last
        : undefined;
    }).catch((error: Error) => {
      const seen = last.split('\n').filter((line) => line.startsWith('ebpf_io_operations_total') || line.startsWith('ebpf_collector_dropped'));
      throw new Error(`${error.message}; last scrape:\n${seen.join('\n')}\nstatus and log:\n${collector!.stderr.slice(-2000)}`);
    });
    assert.equal(sampleValue(exposition, 'ebpf_io_operations_total', ext4), blocks);
    assert.equal(sampleValue(exposition, 'ebpf_io_bytes_total', ext4), blocks * 4096);
    assert.equal(sampleValue(exposition, 'ebpf_io_duration_seconds_count', ext4), blocks);
    assert.equal(sampleValue(exposition, 'ebpf_io_operations_total', tmpfs), blocks + 1);
    assert.equal(sampleValue(exposition, 'ebpf_io_bytes_total', tmpfs), (blocks + 1) * 4096);
    assert.equal(sampleValue(exposition, 'ebpf_io_operations_total', { filesystem: 'tmpfs', pid: String(rootWriter) }), 0);
    for (const excluded of ['proc', 'pipefs', 'sockfs', 'devtmpfs', 'anon_inodefs'])
      assert.doesNotMatch(exposition, new RegExp(`^ebpf_io_\\w+\\{[^}]*filesystem="${excluded}"`, 'm'));
    assert.match(exposition, /# TYPE ebpf_io_duration_seconds histogram/);
    assert.ok(sampleValue(exposition, 'ebpf_syscall_total', { syscall: 'write' }) > 0, 'the syscalls receiver counts too');
    assertPromtoolClean(exposition);

    const status = await collector.status();
    assert.deepEqual(
      status.components.map((c) => [c.kind, c.id, c.status]).sort(),
      [
        ['exporter', 'prometheus', 'ok'],
        ['receiver', 'fileio', 'ok'],
        ['receiver', 'syscalls', 'ok'],
      ],
    );
    await collector.stopAndExpectReleased();
  } finally {
    await collector?.stop();
    rmSync(onRoot, { recursive: true, force: true });
    rmSync(onShm, { recursive: true, force: true });
  }
});

test('fileio alone attaches per-syscall tracepoint programs, not the raw pair', async () => {
  const { collector } = await startScrapedCollector({ fileio: { collection_interval: '1s' } });
  try {
    assert.deepEqual(attachedPrograms(collector), ['fileio_fd_enter', 'fileio_open_enter', 'fileio_stat_at_enter', 'fileio_syscall_exit', 'syscall_switch']);
    await collector.stopAndExpectReleased();
  } finally {
    await collector.stop();
  }
});

test('a real Prometheus returns io:latency:p99 by filesystem and operation', async () => {
  const dir = mkdtempSync('/var/tmp/fileio-e2e-prometheus-');
  let writer: ChildProcess | undefined;
  let collector: RunningCollector | undefined;
  let prometheus: RunningPrometheus | undefined;
  try {
    // Appends and fsyncs a file on the root ext4 until stopped.
    writer = spawn('/usr/bin/python3', ['-c', `
import os, time
fd = os.open('${dir}/log', os.O_WRONLY | os.O_CREAT | os.O_APPEND)
while True:
    os.write(fd, b'x' * 4096)
    os.fsync(fd)
    time.sleep(0.005)
`], { stdio: 'ignore' });
    let metricsPort: number;
    ({ collector, metricsPort } = await startScrapedCollector({ fileio: { collection_interval: '1s', pids: [writer.pid!] } }));
    prometheus = await RunningPrometheus.start({
      targets: [`127.0.0.1:${metricsPort}`],
      ruleFiles: readdirSync(RULES_DIR).filter((name) => name.endsWith('.yml')).map((name) => join(RULES_DIR, name)),
    });
    for (const operation of ['write', 'fsync']) {
      const [p99] = await eventually(`io:latency:p99 for ${operation}`, 60_000, async () => {
        const samples = await prometheus!.query(`io:latency:p99{filesystem="ext4", operation="${operation}"}`);
        return samples.length > 0 && Number.isFinite(samples[0].value) ? samples : undefined;
      });
      // A 4 KiB append takes microseconds, an fsync on a VM's disk well under a second.
      assert.ok(p99.value > 0 && p99.value < 1, `${operation} p99 ${p99.value}`);
    }
  } finally {
    writer?.kill();
    await prometheus?.stop();
    await collector?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('validate names the path of each bad fileio setting', () => {
  assertRefusedByValidate(
    `
receivers:
  fileio:
    aggregate_by: [cgroup, tid]
    filesystems:
      include: [ext4]
      exclude: [proc]
    interval: 10s
exporters:
  prometheus: {}
service:
  pipelines:
    metrics:
      receivers: [fileio]
      exporters: [prometheus]
`,
    [
      /receivers::fileio::aggregate_by::1: must be one of cgroup, pid, comm, mountpoint, got string "tid"/,
      /receivers::fileio::filesystems: give either include or exclude, not both/,
      /receivers::fileio::interval: unknown key/,
    ],
  );
});
