/**
 * The cost each block request pays for the blockio receiver, beside a
 * bpftrace biolatency-style one-liner on block_rq_issue/block_rq_complete.
 * A writer (bench/io/blockio_write.c) makes synchronous O_DIRECT 4 KiB writes
 * to a loop device over a tmpfs file, so the device is fast and every request
 * is submitted, issued and completed on the writer's critical path.
 *
 * Two figures per mode, from the same rounds:
 * - wall time per write (of the fastest chunk of 500 writes in a run, the
 *   one other load disturbed least) minus the bare time of the same round:
 *   everything the tracing adds, dispatch included, but on a shared 2-core
 *   machine still noisy;
 * - BPF run time per completed request (BPF_ENABLE_STATS: run_time_ns over the
 *   complete program's run_cnt, every disk's requests in that window): only
 *   the programs' own time, but steady. It leaves out what the perf-buffer
 *   tracepoints bpftrace uses cost before its programs run (filling the
 *   trace entry, rwbs and cmd strings included), so it flatters bpftrace.
 * Modes take turns within each round; medians over the rounds are reported.
 *
 * usage: node build/dev/bench/io/blockio_bench.js --device /dev/loopN [--reps N] [--requests N]   (bench/io/blockio.sh sets it up)
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { parseArgs } from 'node:util';
import { projectPath } from '../../collector/paths.js';
import { blockioReceiverFactory } from '../../receivers/blockio/factory.js';
import { bpfPrograms, median, startBpftrace, startReceiver, tableRow, type BpfProgram, type Setup } from '../common.js';

const WRITER = projectPath('build/bench/io/blockio_write');
const STATS = projectPath('build/bench/io/blockio_stats');
const BPFTRACE_BIOLATENCY =
  'tracepoint:block:block_rq_issue { @s[args->dev, args->sector] = nsecs } ' +
  'tracepoint:block:block_rq_complete /@s[args->dev, args->sector]/ { @us = hist((nsecs - @s[args->dev, args->sector]) / 1000); delete(@s[args->dev, args->sector]) }';

const MODES = ['bare', 'blockio', 'bpftrace'] as const;
type Mode = (typeof MODES)[number];
/**
 * The type and names of a mode's programs as bpftool shows them (the kernel
 * keeps 15 characters; bpftool takes the full name from BTF where there is
 * one), and the one that runs once per completed request.
 */
const PROGRAMS: Record<Exclude<Mode, 'bare'>, { type: string; names: string[]; complete: string }> = {
  blockio: { type: 'tracing', names: ['block_io_start', 'block_rq_insert', 'block_rq_issue', 'block_rq_merge', 'block_rq_complete'], complete: 'block_rq_complete' },
  bpftrace: { type: 'tracepoint', names: ['block_rq_issue', 'block_rq_comple'], complete: 'block_rq_comple' },
};
const setups: Record<Mode, Setup> = {
  bare: async () => async () => {},
  blockio: () => startReceiver(blockioReceiverFactory),
  bpftrace: () => startBpftrace(['-e', BPFTRACE_BIOLATENCY], 'Attaching', { settleMs: 1000 }),
};

async function timeWrites(device: string, requests: number): Promise<number> {
  const child = spawn(WRITER, [device, String(requests)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const nsPerWrite = Number(output.trim());
  if (code !== 0 || !Number.isFinite(nsPerWrite)) throw new Error(`blockio_write failed (exit ${code}): ${output}`);
  return nsPerWrite;
}

/** Keeps the kernel's BPF run-time statistics on until the returned function is called. */
async function enableStats(): Promise<() => Promise<void>> {
  const child: ChildProcessWithoutNullStreams = spawn(STATS, [], { stdio: 'pipe' });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`blockio_stats exited with ${code}`)));
  });
  return async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin.end();
    await exited;
  };
}

/** BPF ns per completed block request of the programs `mode` loaded (those not in `before`), while the writer runs. */
async function bpfTimePerRequest(mode: Exclude<Mode, 'bare'>, before: Set<number>, device: string, requests: number): Promise<number> {
  const { type, names, complete } = PROGRAMS[mode];
  const ours = () => bpfPrograms().filter((p) => !before.has(p.id) && p.type === type && names.includes(p.name));
  const disable = await enableStats();
  let start: BpfProgram[];
  let end: BpfProgram[];
  try {
    start = ours();
    await timeWrites(device, requests);
    end = ours();
  } finally {
    await disable();
  }
  if (end.length !== names.length) throw new Error(`expected ${names.length} programs of ${mode}, found ${JSON.stringify(end.map((p) => p.name))}`);
  const delta = (p: BpfProgram, field: 'runTimeNs' | 'runs') => p[field] - (start.find((s) => s.id === p.id)?.[field] ?? 0);
  const runTime = end.reduce((total, p) => total + delta(p, 'runTimeNs'), 0);
  return runTime / delta(end.find((p) => p.name === complete)!, 'runs');
}

const { values: options } = parseArgs({
  options: { device: { type: 'string' }, reps: { type: 'string', default: '7' }, requests: { type: 'string', default: '20000' } },
});
if (!options.device) throw new Error('--device /dev/loopN is required: run bash bench/io/blockio.sh');
const device = options.device;
const reps = Number(options.reps);
const requests = Number(options.requests);

const wall: Record<Mode, number[]> = { bare: [], blockio: [], bpftrace: [] };
const added: Record<Mode, number[]> = { bare: [], blockio: [], bpftrace: [] };
const bpfNs: Record<Exclude<Mode, 'bare'>, number[]> = { blockio: [], bpftrace: [] };
for (let round = 0; round < reps; round++) {
  const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
  const times = {} as Record<Mode, number>;
  for (const mode of order) {
    const before = new Set(bpfPrograms().map((p) => p.id));
    const detach = await setups[mode]();
    try {
      times[mode] = await timeWrites(device, requests);
      if (mode !== 'bare') bpfNs[mode].push(await bpfTimePerRequest(mode, before, device, requests / 4));
    } finally {
      await detach();
    }
  }
  for (const mode of MODES) {
    wall[mode].push(times[mode]);
    added[mode].push(times[mode] - times.bare);
  }
  process.stderr.write(
    `round ${round + 1}/${reps}: ${MODES.map((m) => `${m} ${times[m].toFixed(0)}`).join(', ')} ns/write; ` +
      `BPF blockio ${bpfNs.blockio[round].toFixed(0)}, bpftrace ${bpfNs.bpftrace[round].toFixed(0)} ns/request\n`,
  );
}

const summary = {
  bare: { nsPerWrite: median(wall.bare), addedNs: 0 },
  blockio: { nsPerWrite: median(wall.blockio), addedNs: median(added.blockio), bpfNsPerRequest: median(bpfNs.blockio) },
  bpftrace: { nsPerWrite: median(wall.bpftrace), addedNs: median(added.bpftrace), bpfNsPerRequest: median(bpfNs.bpftrace) },
};
const bpfRatio = summary.blockio.bpfNsPerRequest / summary.bpftrace.bpfNsPerRequest;
console.log(`O_DIRECT 4 KiB writes to ${device}, ${requests} per run, ${reps} rounds; medians:\n`);
const widths = [10, 9, 9, 15];
console.log(tableRow(['mode', 'ns/write', 'added ns', 'BPF ns/request'], widths));
for (const mode of MODES) {
  const row = summary[mode];
  const bpf = 'bpfNsPerRequest' in row ? row.bpfNsPerRequest.toFixed(0) : '-';
  console.log(tableRow([mode, row.nsPerWrite.toFixed(0), row.addedNs.toFixed(0), bpf], widths));
}
console.log(`\nblockio BPF time / bpftrace BPF time per request: ${bpfRatio.toFixed(2)}x`);
console.log(`${bpfRatio <= 1 ? 'PASS' : 'FAIL'}  blockio's programs take at most what bpftrace's take per request`);
console.log(JSON.stringify({ device, requests, reps, summary, bpfRatio, runs: { wall, bpfNs } }));
