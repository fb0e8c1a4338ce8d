/**
 * The cost each TCP connect+close pays for the tcp receiver. A loopback
 * connect/accept/close loop (bench/network/tcp_connect_loop.c, in a fresh
 * network namespace per run so that TIME_WAIT sockets never run out of ports)
 * is timed with nothing attached, with the receiver started as the collector
 * would start it, and with bpftrace keeping a tcpconnlat-like latency
 * histogram and failure count by destination on the same state tracepoint
 * (Debian's tcplife.bt and tcpconnect.bt need kprobes, which this kernel lacks).
 * Modes take turns within each round so that drift on a busy machine spreads
 * over all of them; each mode's added cost is its time per connect minus the
 * bare time of the same round, and the medians over rounds are reported.
 * On a shared VM that difference is a few percent of a noisy total, so the
 * run time the kernel counts for each mode's own BPF programs
 * (kernel.bpf_stats_enabled) is reported per connect as well: exact for the
 * programs, without the tracepoint dispatch around them. It is each
 * program's mean time per run times its runs per connect, the most seen in a
 * round: other benches may switch the statistics off for a while, which
 * leaves fewer runs counted but not a different time per run.
 *
 * usage: node build/dev/bench/network/tcp_bench.js [--reps N] [--connects N]   (bench/network/tcp.sh builds what it needs)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectPath } from '../../collector/paths.js';
import { bpfProgramIds } from '../../native/index.js';
import { tcpReceiverFactory } from '../../receivers/tcp/factory.js';
import { bpfPrograms, BpfStatsSwitch, median, startBpftrace, startReceiver, tableRow, type BpfProgram, type Setup } from '../common.js';

const LOOP = projectPath('build/bench/network/tcp_connect_loop');
/** SYN_SENT (2) to ESTABLISHED (1) or CLOSE (7), by destination, as tcpconnlat does; TCP is protocol 6. */
const BPFTRACE_CONNECT_LATENCY =
  'tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 7 && args->newstate == 2/ { @start[args->skaddr] = nsecs } ' +
  'tracepoint:sock:inet_sock_set_state /args->oldstate == 2 && @start[args->skaddr]/ { ' +
  'if (args->newstate == 1) { @latency[ntop(args->daddr)] = hist(nsecs - @start[args->skaddr]) } else { @failures[ntop(args->daddr)] = count() } ' +
  'delete(@start[args->skaddr]) }';

const MODES = ['bare', 'receiver', 'bpftrace'] as const;
type Mode = (typeof MODES)[number];
/** Names (as the kernel truncates them) of each mode's BPF programs. */
const PROGRAM_NAMES: Record<Mode, RegExp> = { bare: /^$/, receiver: /^(tcp_|connect_)/, bpftrace: /^inet_sock_set_s/ };

const setups: Record<Mode, Setup> = {
  bare: async () => async () => {},
  receiver: () => startReceiver(tcpReceiverFactory),
  // Attached only once attachedToTracepoints says so.
  bpftrace: () => startBpftrace(['-e', BPFTRACE_CONNECT_LATENCY], 'Attaching'),
};

function ip(args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr}`);
}

/** Run time and runs the kernel counted for each program, by id. */
function programStats(): Map<number, BpfProgram> {
  return new Map(bpfPrograms().map((program) => [program.id, program]));
}

/** The ids of a mode's programs: those loaded while it was set up, by name (other helpers load programs too). */
function programsOf(mode: Mode, before: Set<number>): number[] {
  return bpfPrograms()
    .filter((program) => !before.has(program.id) && PROGRAM_NAMES[mode].test(program.name))
    .map((program) => program.id)
    .sort((a, b) => a - b);
}

/** Waits until `programs` are attached to their tracepoints (bpftrace reports "Attaching" before it attaches; on a busy machine that can take seconds). */
async function attachedToTracepoints(programs: number[]): Promise<void> {
  for (let waited = 0; ; waited += 100) {
    const attached = JSON.parse(spawnSync('bpftool', ['perf', 'list', '-j'], { encoding: 'utf8', maxBuffer: 1 << 26 }).stdout) as { prog_id: number }[];
    if (programs.every((id) => attached.some((entry) => entry.prog_id === id))) return;
    if (waited > 60_000) throw new Error(`programs ${programs.join(', ')} were not attached after a minute`);
    await sleep(100);
  }
}

/** ns per connect+close of one loop run, in a network namespace of its own, and how many connects it made. */
async function timeLoop(connects: number, run: number): Promise<{ nsPerConnect: number; total: number }> {
  const netns = `tcp-bench-${process.pid}-${run}`;
  ip(['netns', 'add', netns]);
  try {
    ip(['-n', netns, 'link', 'set', 'lo', 'up']);
    const child = spawn('ip', ['netns', 'exec', netns, LOOP, String(connects)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const [nsPerConnect, total] = output.trim().split(' ').map(Number);
    if (code !== 0 || !Number.isFinite(nsPerConnect) || !(total > 0)) throw new Error(`tcp_connect_loop failed (exit ${code}): ${output}`);
    return { nsPerConnect, total };
  } finally {
    ip(['netns', 'del', netns]);
  }
}

const { values: options } = parseArgs({ options: { reps: { type: 'string', default: '9' }, connects: { type: 'string', default: '10000' } } });
const reps = Number(options.reps);
const connects = Number(options.connects);
if (!existsSync(LOOP)) throw new Error(`${LOOP} is missing: run bash bench/network/tcp.sh`);

const perConnect: Record<Mode, number[]> = { bare: [], receiver: [], bpftrace: [] };
const added: Record<Mode, number[]> = { bare: [], receiver: [], bpftrace: [] };
/** Per mode and program name: run time and runs over all rounds, and runs per connect of each round. */
const bpfRuns: Record<Mode, Map<string, { timeNs: number; runs: number; runsPerConnect: number[] }>> = { bare: new Map(), receiver: new Map(), bpftrace: new Map() };
const bpfStats = new BpfStatsSwitch();
bpfStats.on();
let run = 0;
try {
  for (let round = 0; round < reps; round++) {
    const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
    const times = {} as Record<Mode, number>;
    for (const mode of order) {
      const loaded = new Set(bpfProgramIds());
      const detach = await setups[mode]();
      try {
        const programs = programsOf(mode, loaded);
        if (mode !== 'bare' && programs.length === 0) throw new Error(`no programs of ${mode} found`);
        if (mode === 'bpftrace') await attachedToTracepoints(programs);
        bpfStats.on();
        const before = programStats();
        const { nsPerConnect, total } = await timeLoop(connects, run++);
        const after = programStats();
        times[mode] = nsPerConnect;
        // Programs of one mode may share a name (bpftrace names them after their tracepoint).
        for (const [index, id] of programs.entries()) {
          const { runTimeNs, runs } = after.get(id)!;
          const name = `${after.get(id)!.name}#${index}`;
          const program = bpfRuns[mode].get(name) ?? { timeNs: 0, runs: 0, runsPerConnect: [] };
          program.timeNs += runTimeNs - before.get(id)!.runTimeNs;
          program.runs += runs - before.get(id)!.runs;
          program.runsPerConnect.push((runs - before.get(id)!.runs) / total);
          bpfRuns[mode].set(name, program);
        }
      } finally {
        await detach();
      }
    }
    for (const mode of MODES) {
      perConnect[mode].push(times[mode]);
      added[mode].push(times[mode] - times.bare);
    }
    process.stderr.write(`round ${round + 1}/${reps}: ${MODES.map((m) => `${m} ${times[m].toFixed(0)}`).join(', ')} ns/connect\n`);
  }
} finally {
  bpfStats.restore();
}

/** Each program's mean run time times its runs per connect. */
function bpfNsPerConnect(mode: Mode): number {
  let total = 0;
  for (const { timeNs, runs, runsPerConnect } of bpfRuns[mode].values()) if (runs > 0) total += (timeNs / runs) * Math.max(...runsPerConnect);
  return total;
}
const summary = Object.fromEntries(
  MODES.map((mode) => [mode, { nsPerConnect: median(perConnect[mode]), addedNs: median(added[mode]), bpfNsPerConnect: bpfNsPerConnect(mode) }]),
) as Record<Mode, { nsPerConnect: number; addedNs: number; bpfNsPerConnect: number }>;
const receiverOverBpftrace = summary.receiver.addedNs / summary.bpftrace.addedNs;
const bpfReceiverOverBpftrace = summary.receiver.bpfNsPerConnect / summary.bpftrace.bpfNsPerConnect;

console.log(`loopback connect+accept+close, ${connects} per run, ${reps} rounds; medians:\n`);
const widths = [10, 11, 9, 8, 15];
console.log(tableRow(['mode', 'ns/connect', 'added ns', 'vs bare', 'BPF ns/connect'], widths));
for (const mode of MODES) {
  const { nsPerConnect, addedNs, bpfNsPerConnect } = summary[mode];
  console.log(tableRow([mode, nsPerConnect.toFixed(0), addedNs.toFixed(0), (nsPerConnect / summary.bare.nsPerConnect).toFixed(3), bpfNsPerConnect.toFixed(0)], widths));
}
console.log(`\nreceiver / bpftrace, added time per connect: ${receiverOverBpftrace.toFixed(2)}x; run time of their BPF programs per connect: ${bpfReceiverOverBpftrace.toFixed(2)}x`);
console.log(`${summary.receiver.bpfNsPerConnect <= summary.bpftrace.bpfNsPerConnect ? 'PASS' : 'FAIL'}  the receiver's programs take no longer per connect than bpftrace's`);
for (const mode of ['receiver', 'bpftrace'] as const)
  for (const [name, { timeNs, runs, runsPerConnect }] of bpfRuns[mode])
    console.log(`  ${mode} ${name}: ${runs ? (timeNs / runs).toFixed(0) : '-'} ns per run, ${Math.max(...runsPerConnect).toFixed(2)} runs per connect`);
const programs = Object.fromEntries(MODES.map((mode) => [mode, Object.fromEntries(bpfRuns[mode])]));
console.log(JSON.stringify({ connects, reps, summary, receiverOverBpftrace, bpfReceiverOverBpftrace, runs: perConnect, programs }));
