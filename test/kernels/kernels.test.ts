/**
 * The BPF objects on the kernels users run, as libbpf's CI does it: run.sh
 * boots Debian 12's own 6.1 kernels (cloud and PREEMPT_RT) under QEMU with an
 * initramfs that loads, attaches and runs every object of build/bpf, and does
 * the same on this machine's kernel. On 6.1 every receiver's object, or its
 * compat object where bpf_rdonly_cast (6.2) is missing, loads, attaches every
 * program and runs them; blockio alone needs a newer kernel (block_io_start,
 * 6.5). The syscalls slot check (two threads and a SCHED_FIFO preemptor on one
 * CPU) records exactly the calls made on every kernel, PREEMPT_RT included,
 * and no tracepoint or perf_event program ran preemptible there.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { release } from 'node:os';
import { test } from 'node:test';
import { projectPath } from '../../collector/paths.js';

/** Runs run.sh; its table as cells[object][kernel], and its slot-check lines. */
async function runKernels(): Promise<{ kernels: string[]; cells: Map<string, Map<string, string>>; output: string }> {
  const child = spawn('bash', [projectPath('test/kernels/run.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.equal(code, 0, `run.sh failed:\n${output}`);
  // The header and one row per object (the |---| line does not start with "| ").
  // The header, then one row per object: the |---| line does not start with "| ".
  const rows = output.split('\n').filter((line) => line.startsWith('| '));
  const kernels = rows[0].split('|').slice(2, -1).map((cell) => cell.trim());
  const cells = new Map<string, Map<string, string>>();
  for (const row of rows.slice(1)) {
    const [object, ...values] = row.split('|').slice(1, -1).map((cell) => cell.trim());
    cells.set(object, new Map(kernels.map((kernel, i) => [kernel, values[i]])));
  }
  return { kernels, cells, output };
}

/** "attached=N/N ran=R/N": every program attached, and at least `ran` of them ran. */
function assertRan(cell: string | undefined, where: string, allRan = true): void {
  const match = /^attached=(\d+)\/(\d+) ran=(\d+)\/(\d+)$/.exec(cell ?? '');
  assert.ok(match, `${where}: ${cell}`);
  const [attached, total, ran] = [Number(match[1]), Number(match[2]), Number(match[3])];
  assert.equal(attached, total, `${where}: every program attaches`);
  // tcp_retransmit needs a lost segment, which the guest's loopback connects do not have.
  assert.ok(allRan ? ran === total : ran >= total - 1, `${where}: programs ran: ${cell}`);
}

test("Debian 12's cloud and PREEMPT_RT kernels load, attach and run every receiver's object; the slot check holds on each", { timeout: 20 * 60_000 }, async () => {
  const { kernels, cells, output } = await runKernels();
  const debian = kernels.filter((kernel) => /^6\.1\.0-\d+-(cloud|rt)-amd64$/.test(kernel));
  assert.deepEqual(debian.map((kernel) => kernel.replace(/^6\.1\.0-\d+-/, '')), ['cloud-amd64', 'rt-amd64'], output);
  assert.ok(kernels.includes(release()), `this machine's kernel is a column: ${kernels.join(', ')}`);

  for (const kernel of debian) {
    for (const object of ['process.bpf.o', 'cpu.bpf.o', 'tls.bpf.o', 'syscalls_compat.bpf.o', 'dns_compat.bpf.o'])
      assertRan(cells.get(object)?.get(kernel), `${object} on ${kernel}`);
    assertRan(cells.get('tcp.bpf.o')?.get(kernel), `tcp.bpf.o on ${kernel}`, false);
    for (const object of ['syscalls.bpf.o', 'dns.bpf.o'])
      assert.match(cells.get(object)?.get(kernel) ?? '', /load FAIL: .*'bpf_rdonly_cast': not found/, `${object} on ${kernel}`);
    assert.match(cells.get('blockio.bpf.o')?.get(kernel) ?? '', /load FAIL: .*block_io_start/, `blockio.bpf.o on ${kernel}`);
  }
  for (const object of ['process.bpf.o', 'cpu.bpf.o', 'tls.bpf.o', 'syscalls.bpf.o', 'syscalls_compat.bpf.o', 'dns.bpf.o', 'dns_compat.bpf.o'])
    assertRan(cells.get(object)?.get(release()), `${object} on this machine`);
  assertRan(cells.get('tcp.bpf.o')?.get(release()), 'tcp.bpf.o on this machine', false);

  // The per-CPU designs of the tracepoint and perf_event receivers assume their programs are never preempted: on 6.1, RT too, they are not.
  for (const kernel of debian) {
    const runs = output.split('\n').find((line) => line.startsWith(`- ${kernel}: hook=`)) ?? '';
    for (const hook of ['raw_tp', 'tp_btf/sched_switch', 'tp_btf/net_dev_queue', 'tracepoint', 'perf_event'])
      assert.match(runs, new RegExp(`hook=${hook} runs=[1-9]\\d* preemptible=0(;|$)`), `${hook} on ${kernel}: ${runs}`);
  }

  for (const kernel of kernels) {
    const check = output.split('\n').find((line) => line.startsWith(`- ${kernel}: `)) ?? '';
    assert.match(check, /result ok$/, `slot check on ${kernel}: ${check}`);
    assert.equal((check.match(/ ok;/g) ?? []).length, 7, `two players' read, write and getppid, and the preemptor's sleeps, each exact: ${check}`);
  }
});
