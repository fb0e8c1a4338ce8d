/**
 * The cost a syscall pays for the fileio receiver: a 4 KiB pread from the page
 * cache (a call it measures) and getppid (one it ignores), each in a tight
 * loop (bench/io/fileio_loop.c) timed with:
 * - bare: nothing attached;
 * - fileio: the receiver alone (per-syscall tracepoints on the file syscalls);
 * - fileio_raw: the receiver alone on the raw sys_enter/sys_exit pair instead (the
 *   route it takes beside a syscalls receiver; here one is created but never
 *   started), to show what the choice of route costs each kind of syscall;
 * - syscalls: the syscalls receiver alone (raw sys_enter/sys_exit);
 * - both: the two on one shared program pair, as in the default pipeline;
 * - empty_pair: empty programs on raw sys_enter/sys_exit, the floor of any BPF there
 *   (bench/syscalls/empty_pair.bpf.c);
 * - empty_tracepoints: empty programs on pread64's own syscall tracepoints, the floor
 *   of the route fileio takes alone.
 * Receivers start through their factories with their default configs, as the
 * collector starts them.
 *
 * The wall figures are noisy on a shared machine, so after the rounds each
 * mode runs the pread loop once more with the kernel's BPF run-time statistics
 * on (BPF_ENABLE_STATS, through bench/io/blockio_stats.c): the mean time of
 * each of its programs per run, steady under load. It leaves out the dispatch
 * to the programs (what the empty floors measure) and the statistics' own two
 * clock reads. Modes take turns within each round so that drift on a
 * busy machine spreads over all of them; a mode's added cost is its time per
 * call minus the bare time of the same round; medians over rounds are reported.
 *
 * usage: node build/dev/bench/io/fileio_bench.js --file PATH [--reps N] [--preads N] [--getppids N]   (bench/io/fileio.sh sets it up)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Component, Consumer } from '../../collector/component.js';
import { projectPath } from '../../collector/paths.js';
import { BpfObject } from '../../native/index.js';
import { fileioReceiverFactory } from '../../receivers/fileio/factory.js';
import { syscallsReceiverFactory } from '../../receivers/syscalls/factory.js';
import { testHost, testSettings } from '../../test/support/components.js';

const LOOP = projectPath('build/bench/io/fileio_loop');
const EMPTY_PAIR = projectPath('build/bench/io/empty_pair.bpf.o');
const EMPTY_TRACEPOINTS = projectPath('build/bench/io/fileio_empty_tracepoints.bpf.o');
const STATS = projectPath('build/bench/io/blockio_stats');

const MODES = ['bare', 'fileio', 'fileio_raw', 'syscalls', 'both', 'empty_pair', 'empty_tracepoints'] as const;
type Mode = (typeof MODES)[number];
const LOOPS = ['pread', 'getppid'] as const;
type Loop = (typeof LOOPS)[number];
/** Attaches a mode's tracing and returns how to detach it. */
type Setup = () => Promise<() => Promise<void>>;

const discard: Consumer<'metrics'> = { consume: async () => {} };

function fileio(): Component {
  return fileioReceiverFactory.create(testSettings('receiver', 'fileio'), fileioReceiverFactory.configSchema.parse({}), { metrics: discard });
}

function syscalls(): Component {
  return syscallsReceiverFactory.create(testSettings('receiver', 'syscalls'), syscallsReceiverFactory.configSchema.parse({}), { metrics: discard });
}

/** Creates the receivers first (as the collector does), then starts them in order; shuts them down in reverse. */
function receivers(...create: (() => Component)[]): Setup {
  return async () => {
    const components = create.map((make) => make());
    for (const component of components) await component.start(testHost());
    return async () => {
      for (const component of components.reverse()) await component.shutdown();
    };
  };
}

function emptyPrograms(path: string, attach: (object: BpfObject) => void): Setup {
  return async () => {
    const object = BpfObject.open(path);
    object.load();
    attach(object);
    return async () => object.close();
  };
}

/** fileio with a syscalls receiver that exists (so fileio takes the raw pair) but never starts. */
const fileioOnRawPair: Setup = async () => {
  const idle = syscalls();
  const detach = await receivers(fileio)();
  return async () => {
    await detach();
    await idle.shutdown();
  };
};

const setups: Record<Mode, Setup> = {
  bare: async () => async () => {},
  fileio: receivers(fileio),
  fileio_raw: fileioOnRawPair,
  syscalls: receivers(syscalls),
  both: receivers(fileio, syscalls),
  empty_pair: emptyPrograms(EMPTY_PAIR, (object) => {
    object.attach('empty_enter', { kind: 'auto' });
    object.attach('empty_exit', { kind: 'auto' });
  }),
  empty_tracepoints: emptyPrograms(EMPTY_TRACEPOINTS, (object) => {
    object.attach('empty_tracepoint_enter', { kind: 'tracepoint', category: 'syscalls', name: 'sys_enter_pread64' });
    object.attach('empty_tracepoint_exit', { kind: 'tracepoint', category: 'syscalls', name: 'sys_exit_pread64' });
  }),
};

async function timeLoop(args: string[]): Promise<number> {
  const child = spawn(LOOP, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const nsPerCall = Number(output.trim());
  if (code !== 0 || !Number.isFinite(nsPerCall)) throw new Error(`fileio_loop ${args.join(' ')} failed (exit ${code}): ${output}`);
  return nsPerCall;
}

/** run_time_ns and run_cnt of the programs this process holds, by id, from bpftool. */
function ourProgramStats(): Map<number, { name: string; runTimeNs: number; runs: number }> {
  const ours = new Set<number>();
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    try {
      const match = /^prog_id:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (match) ours.add(Number(match[1]));
    } catch {
      // closed meanwhile
    }
  }
  const shown = spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' });
  if (shown.status !== 0) throw new Error(`bpftool prog show failed: ${shown.stderr}`);
  const stats = new Map<number, { name: string; runTimeNs: number; runs: number }>();
  for (const prog of JSON.parse(shown.stdout) as { id: number; name: string; run_time_ns?: number; run_cnt?: number }[])
    if (ours.has(prog.id)) stats.set(prog.id, { name: prog.name, runTimeNs: prog.run_time_ns ?? 0, runs: prog.run_cnt ?? 0 });
  return stats;
}

/** Mean run time per run of each program that ran during one pread loop, with the kernel's statistics on. */
async function programTimes(mode: Mode): Promise<Record<string, number>> {
  const stats = spawn(STATS, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    stats.stdout!.once('data', () => resolve());
    stats.once('exit', (code) => reject(new Error(`blockio_stats exited with ${code}`)));
  });
  const detach = await setups[mode]();
  try {
    const before = ourProgramStats();
    await timeLoop(argv.pread);
    const times: Record<string, number> = {};
    for (const [id, after] of ourProgramStats()) {
      const runs = after.runs - (before.get(id)?.runs ?? 0);
      if (runs > 0) times[after.name] = (after.runTimeNs - (before.get(id)?.runTimeNs ?? 0)) / runs;
    }
    return times;
  } finally {
    await detach();
    stats.stdin!.end();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const { values: options } = parseArgs({
  options: { file: { type: 'string' }, reps: { type: 'string', default: '5' }, preads: { type: 'string', default: '1000000' }, getppids: { type: 'string', default: '2000000' } },
});
if (!options.file) throw new Error('--file PATH is required: run bash bench/io/fileio.sh');
const reps = Number(options.reps);
const argv: Record<Loop, string[]> = { pread: ['pread', options.file, options.preads!], getppid: ['getppid', options.getppids!] };
for (const path of [LOOP, EMPTY_PAIR, EMPTY_TRACEPOINTS, STATS]) if (!existsSync(path)) throw new Error(`${path} is missing: run bash bench/io/fileio.sh`);

const perCall = Object.fromEntries(LOOPS.map((loop) => [loop, Object.fromEntries(MODES.map((mode) => [mode, [] as number[]]))])) as Record<Loop, Record<Mode, number[]>>;
const added = Object.fromEntries(LOOPS.map((loop) => [loop, Object.fromEntries(MODES.map((mode) => [mode, [] as number[]]))])) as Record<Loop, Record<Mode, number[]>>;
let discarded = 0;
for (let round = 0; round < reps; round++) {
  const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
  const times = { pread: {}, getppid: {} } as Record<Loop, Record<Mode, number>>;
  let statisticsOn = false;
  for (const mode of order) {
    const detach = await setups[mode]();
    try {
      for (const loop of LOOPS) times[loop][mode] = await timeLoop(argv[loop]);
      // Our programs count runs only while someone has the kernel's BPF statistics on (another bench, say).
      statisticsOn ||= [...ourProgramStats().values()].some((program) => program.runs > 0);
    } finally {
      await detach();
    }
  }
  const line = `round ${round + 1}/${reps}: ${LOOPS.map((loop) => `${loop} ${MODES.map((m) => `${m} ${times[loop][m].toFixed(1)}`).join(', ')}`).join(' | ')} ns/call`;
  if (statisticsOn) {
    // Statistics add two clock reads to every program run: such a round is not comparable, run it again.
    process.stderr.write(`${line}\n  another process had BPF statistics on during this round: left out\n`);
    if (++discarded > 2 * reps) throw new Error('BPF statistics stayed on (kernel.bpf_stats_enabled or a BPF_ENABLE_STATS holder): no round is clean');
    round--;
    continue;
  }
  for (const loop of LOOPS)
    for (const mode of MODES) {
      perCall[loop][mode].push(times[loop][mode]);
      added[loop][mode].push(times[loop][mode] - times[loop].bare);
    }
  process.stderr.write(`${line}\n`);
}

const summary = Object.fromEntries(
  LOOPS.map((loop) => [loop, Object.fromEntries(MODES.map((mode) => [mode, { nsPerCall: median(perCall[loop][mode]), addedNs: median(added[loop][mode]) }]))]),
) as Record<Loop, Record<Mode, { nsPerCall: number; addedNs: number }>>;
const floor = summary.pread.empty_pair.addedNs;
const ratios = {
  fileioOverFloor: summary.pread.fileio.addedNs / floor,
  fileioRawOverFloor: summary.pread.fileio_raw.addedNs / floor,
  fileioOverTracepointFloor: summary.pread.fileio.addedNs / summary.pread.empty_tracepoints.addedNs,
  syscallsOverFloor: summary.pread.syscalls.addedNs / floor,
  bothOverFloor: summary.pread.both.addedNs / floor,
  syscallsOverFloorGetppid: summary.getppid.syscalls.addedNs / summary.getppid.empty_pair.addedNs,
  fileioIgnoredOverFloor: summary.getppid.fileio.addedNs / summary.getppid.empty_pair.addedNs,
};

console.log(`${reps} rounds; ${options.preads} preads of 4 KiB and ${options.getppids} getppids per run; medians:\n`);
console.log(`${'mode'.padEnd(18)} ${'pread ns'.padStart(9)} ${'added'.padStart(7)} ${'getppid ns'.padStart(11)} ${'added'.padStart(7)}`);
for (const mode of MODES) {
  const { pread, getppid } = summary;
  console.log(
    `${mode.padEnd(18)} ${pread[mode].nsPerCall.toFixed(1).padStart(9)} ${pread[mode].addedNs.toFixed(1).padStart(7)} ${getppid[mode].nsPerCall.toFixed(1).padStart(11)} ${getppid[mode].addedNs.toFixed(1).padStart(7)}`,
  );
}
const times: Partial<Record<Mode, Record<string, number>>> = {};
for (const mode of MODES) if (mode !== 'bare') times[mode] = await programTimes(mode);
console.log('\nprogram run time per run during a pread loop (BPF statistics; every syscall of the machine in that window):');
for (const [mode, programs] of Object.entries(times))
  console.log(`${mode.padEnd(18)} ${Object.entries(programs).map(([name, ns]) => `${name} ${ns.toFixed(1)} ns`).join(', ')}`);
console.log(`\npread:   fileio ${ratios.fileioOverFloor.toFixed(2)}x (${ratios.fileioOverTracepointFloor.toFixed(2)}x its own tracepoint floor), fileio_raw ${ratios.fileioRawOverFloor.toFixed(2)}x, syscalls ${ratios.syscallsOverFloor.toFixed(2)}x, both ${ratios.bothOverFloor.toFixed(2)}x the empty raw pair`);
console.log(
  `getppid: syscalls ${ratios.syscallsOverFloorGetppid.toFixed(2)}x the empty raw pair; fileio (ignores it) adds ${summary.getppid.fileio.addedNs.toFixed(1)} ns = ${ratios.fileioIgnoredOverFloor.toFixed(2)}x, fileio_raw ${summary.getppid.fileio_raw.addedNs.toFixed(1)} ns`,
);
console.log(`${ratios.fileioOverFloor <= 2 ? 'PASS' : 'FAIL'}  fileio adds at most 2x the floor (empty raw pair) to a pread it measures`);
console.log(`${ratios.fileioOverTracepointFloor <= 2 ? 'PASS' : 'FAIL'}  fileio adds at most 2x the floor of its own hooks (empty programs on pread64's tracepoints)`);
console.log(`${ratios.fileioIgnoredOverFloor <= 0.5 ? 'PASS' : 'FAIL'}  fileio adds at most half the floor to a syscall it ignores`);
console.log(`${ratios.syscallsOverFloorGetppid <= 2 && ratios.syscallsOverFloor <= 2 ? 'PASS' : 'FAIL'}  syscalls adds at most 2x the floor (getppid and pread)`);
console.log(JSON.stringify({ reps, summary, ratios, programTimes: times, runs: perCall }));
