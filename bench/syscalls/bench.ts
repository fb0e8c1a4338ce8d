/**
 * The cost each syscall pays for the syscalls receiver. A tight getppid loop
 * (bench/syscalls/getppid_loop.c) is timed with nothing attached, with the
 * receiver started as the collector would start it, with an empty program
 * pair on the raw sys_enter/sys_exit tracepoints (the floor: what running any
 * BPF there costs), and with bpftrace keeping the same latency histogram.
 * Modes take turns within each round so that drift on a busy machine spreads
 * over all of them; each mode's added cost is its time per call minus the
 * bare time of the same round, and the medians over rounds are reported.
 *
 * usage: node build/dev/bench/syscalls/bench.js [--reps N] [--calls N]   (bench/syscalls/run.sh builds what it needs)
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer } from '../../collector/component.js';
import { projectPath } from '../../collector/paths.js';
import { BpfObject } from '../../native/index.js';
import { syscallsReceiverFactory } from '../../receivers/syscalls/factory.js';
import { testHost, testSettings } from '../../test/support/components.js';

const LOOP = projectPath('build/bench/syscalls/getppid_loop');
const EMPTY_PAIR = projectPath('build/bench/syscalls/empty_pair.bpf.o');
const BPFTRACE_HISTOGRAM =
  'tracepoint:raw_syscalls:sys_enter { @start[tid] = nsecs } ' +
  'tracepoint:raw_syscalls:sys_exit /@start[tid]/ { @lat[args->id] = hist(nsecs - @start[tid]); delete(@start[tid]) }';

const MODES = ['bare', 'receiver', 'empty_pair', 'bpftrace'] as const;
type Mode = (typeof MODES)[number];
/** Attaches a mode's tracing and returns how to detach it. */
type Setup = () => Promise<() => Promise<void>>;

const discard: Consumer<'metrics'> = { consume: async () => {} };

const setups: Record<Mode, Setup> = {
  bare: async () => async () => {},
  receiver: async () => {
    const config = syscallsReceiverFactory.configSchema.parse({});
    const receiver = syscallsReceiverFactory.create(testSettings('receiver', 'syscalls'), config, { metrics: discard });
    await receiver.start(testHost());
    return () => receiver.shutdown();
  },
  empty_pair: async () => {
    const object = BpfObject.open(EMPTY_PAIR);
    object.load();
    object.attach('empty_enter', { kind: 'auto' });
    object.attach('empty_exit', { kind: 'auto' });
    return async () => object.close();
  },
  bpftrace: async () => {
    const child = spawn('bpftrace', ['-e', BPFTRACE_HISTOGRAM], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    for (let waited = 0; !output.includes('Attaching'); waited += 100) {
      if (child.exitCode !== null || waited > 30_000) throw new Error(`bpftrace did not attach: ${output}`);
      await sleep(100);
    }
    await sleep(1000); // "Attaching" comes just before the probes are attached
    return async () => {
      child.kill('SIGINT');
      await exited;
    };
  },
};

async function timeLoop(calls: number): Promise<number> {
  const child = spawn(LOOP, [String(calls)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const nsPerCall = Number(output.trim());
  if (code !== 0 || !Number.isFinite(nsPerCall)) throw new Error(`getppid_loop failed (exit ${code}): ${output}`);
  return nsPerCall;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const { values: options } = parseArgs({ options: { reps: { type: 'string', default: '5' }, calls: { type: 'string', default: '5000000' } } });
const reps = Number(options.reps);
const calls = Number(options.calls);
for (const path of [LOOP, EMPTY_PAIR]) if (!existsSync(path)) throw new Error(`${path} is missing: run bash bench/syscalls/run.sh`);

const perCall: Record<Mode, number[]> = { bare: [], receiver: [], empty_pair: [], bpftrace: [] };
const added: Record<Mode, number[]> = { bare: [], receiver: [], empty_pair: [], bpftrace: [] };
for (let round = 0; round < reps; round++) {
  const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
  const times = {} as Record<Mode, number>;
  for (const mode of order) {
    const detach = await setups[mode]();
    try {
      times[mode] = await timeLoop(calls);
    } finally {
      await detach();
    }
  }
  for (const mode of MODES) {
    perCall[mode].push(times[mode]);
    added[mode].push(times[mode] - times.bare);
  }
  process.stderr.write(`round ${round + 1}/${reps}: ${MODES.map((m) => `${m} ${times[m].toFixed(1)}`).join(', ')} ns/call\n`);
}

const summary = Object.fromEntries(MODES.map((mode) => [mode, { nsPerCall: median(perCall[mode]), addedNs: median(added[mode]) }])) as Record<
  Mode,
  { nsPerCall: number; addedNs: number }
>;
const receiverOverFloor = summary.receiver.addedNs / summary.empty_pair.addedNs;
const receiverOverBpftrace = summary.receiver.addedNs / summary.bpftrace.addedNs;

console.log(`getppid, ${calls} calls per run, ${reps} rounds; medians:\n`);
console.log(`${'mode'.padEnd(12)} ${'ns/call'.padStart(9)} ${'added ns'.padStart(9)}`);
for (const mode of MODES) console.log(`${mode.padEnd(12)} ${summary[mode].nsPerCall.toFixed(1).padStart(9)} ${summary[mode].addedNs.toFixed(1).padStart(9)}`);
console.log(`\nreceiver added / empty pair added: ${receiverOverFloor.toFixed(2)}x`);
console.log(`receiver added / bpftrace added:   ${receiverOverBpftrace.toFixed(2)}x`);
console.log(`${receiverOverFloor <= 2 ? 'PASS' : 'FAIL'}  the receiver adds at most 2x the floor's cost per syscall`);
console.log(JSON.stringify({ calls, reps, summary, receiverOverFloor, receiverOverBpftrace, runs: perCall }));
