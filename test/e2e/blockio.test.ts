/**
 * End to end through the CLI: the blockio receiver counts a loop device's
 * O_DIRECT writes made by the test, the Prometheus scrape shows them with
 * promtool finding nothing wrong, and a clean stop leaves no program of ours.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { assertRefusedByValidate, RunningCollector, sampleValue, scrapeUntil, startScrapedCollector } from '../support/collector.js';
import { assertPromtoolClean } from '../support/exposition.js';

function run(command: string, args: string[]): { stdout: string; pid: number } {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed: ${result.error?.message ?? result.stderr}`);
  return { stdout: result.stdout.trim(), pid: result.pid };
}

test('O_DIRECT writes to a loop device are scraped as exactly that many block writes, and promtool finds the exposition clean', async () => {
  const writes = 64;
  const dir = mkdtempSync(join(tmpdir(), 'blockio-e2e-'));
  run('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', dir]);
  let loop: string | undefined;
  let collector: RunningCollector | undefined;
  try {
    run('truncate', ['-s', '16M', join(dir, 'image')]);
    loop = run('losetup', ['-f', '--show', join(dir, 'image')]).stdout;
    let metricsPort: number;
    ({ collector, metricsPort } = await startScrapedCollector({ blockio: { collection_interval: '300ms', aggregate_by: ['cgroup', 'pid'] } }));
    const ours = collector.programIds();
    assert.ok(ours.length >= 5, `expected the five blockio programs to be loaded, found ${JSON.stringify(ours)}`);

    const writer = run('dd', ['if=/dev/zero', `of=${loop}`, 'bs=4k', `count=${writes}`, 'oflag=direct', 'status=none']).pid;
    const labels = { device: basename(loop), operation: 'write', pid: String(writer) };
    const exposition = await scrapeUntil(metricsPort, `${writes} writes on ${basename(loop)}`, 10_000, (text) => sampleValue(text, 'ebpf_block_io_operations_total', labels) >= writes);
    assert.equal(sampleValue(exposition, 'ebpf_block_io_operations_total', labels), writes);
    assert.equal(sampleValue(exposition, 'ebpf_block_io_bytes_total', labels), writes * 4096);
    assert.equal(sampleValue(exposition, 'ebpf_block_io_duration_seconds_count', labels), writes);
    assert.match(exposition, /# TYPE ebpf_block_io_duration_seconds histogram/);
    assertPromtoolClean(exposition);

    assert.deepEqual(
      await collector.statuses(),
      [
        ['exporter', 'prometheus', 'ok'],
        ['receiver', 'blockio', 'ok'],
      ],
    );
    await collector.stopAndExpectReleased();
  } finally {
    await collector?.stop();
    if (loop) spawnSync('losetup', ['-d', loop]);
    spawnSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('validate names the path of each bad blockio setting', () => {
  assertRefusedByValidate(
    { blockio: { aggregate_by: ['cgroup', 'tid'], devices: ['/dev/vda'], interval: '10s' } },
    [
      /receivers::blockio::aggregate_by::1: must be one of cgroup, pid, comm, got string "tid"/,
      /receivers::blockio::devices::0: expected a disk name as in \/sys\/block, e\.g\. "vda"/,
      /receivers::blockio::interval: unknown key/,
    ],
  );
});
