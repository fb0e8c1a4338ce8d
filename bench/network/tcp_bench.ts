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
 *
 * usage: node dist/bench/network/tcp_bench.js [--reps N] [--connects N]   (bench/network/tcp.sh builds what it needs)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer } from '../../collector/component.js';
import { projectPath } from '../../collector/paths.js';
import { tcpReceiverFactory } from '../../receivers/tcp/factory.js';
import { testHost, testSettings } from '../../test/support/components.js';

const LOOP = projectPath('build/bench/network/tcp_connect_loop');
/** SYN_SENT (2) to ESTABLISHED (1) or CLOSE (7), by destination, as tcpconnlat does; TCP is protocol 6. */
const BPFTRACE_CONNECT_LATENCY =
  'tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 7 && args->newstate == 2/ { @start[args->skaddr] = nsecs } ' +
  'tracepoint:sock:inet_sock_set_state /args->oldstate == 2 && @start[args->skaddr]/ { ' +
  'if (args->newstate == 1) { @latency[ntop(args->daddr)] = hist(nsecs - @start[args->skaddr]) } else { @failures[ntop(args->daddr)] = count() } ' +
  'delete(@start[args->skaddr]) }';

const MODES = ['bare', 'receiver', 'bpftrace'] as const;
type Mode = (typeof MODES)[number];
/** Attaches a mode's tracing and returns how to detach it. */
type Setup = () => Promise<() => Promise<void>>;

const discard: Consumer<'metrics'> = { consume: async () => {} };

const setups: Record<Mode, Setup> = {
  bare: async () => async () => {},
  receiver: async () => {
    const config = tcpReceiverFactory.configSchema.parse({});
    const receiver = tcpReceiverFactory.create(testSettings('receiver', 'tcp'), config, { metrics: discard });
    await receiver.start(testHost());
    return () => receiver.shutdown();
  },
  bpftrace: async () => {
    const child = spawn('bpftrace', ['-e', BPFTRACE_CONNECT_LATENCY], { stdio: ['ignore', 'pipe', 'pipe'] });
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

function ip(args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr}`);
}

/** ns per connect+close of one loop run, in a network namespace of its own. */
async function timeLoop(connects: number, run: number): Promise<number> {
  const netns = `tcp-bench-${process.pid}-${run}`;
  ip(['netns', 'add', netns]);
  try {
    ip(['-n', netns, 'link', 'set', 'lo', 'up']);
    const child = spawn('ip', ['netns', 'exec', netns, LOOP, String(connects)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const nsPerConnect = Number(output.trim());
    if (code !== 0 || !Number.isFinite(nsPerConnect)) throw new Error(`tcp_connect_loop failed (exit ${code}): ${output}`);
    return nsPerConnect;
  } finally {
    ip(['netns', 'del', netns]);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const { values: options } = parseArgs({ options: { reps: { type: 'string', default: '5' }, connects: { type: 'string', default: '20000' } } });
const reps = Number(options.reps);
const connects = Number(options.connects);
if (!existsSync(LOOP)) throw new Error(`${LOOP} is missing: run bash bench/network/tcp.sh`);

const perConnect: Record<Mode, number[]> = { bare: [], receiver: [], bpftrace: [] };
const added: Record<Mode, number[]> = { bare: [], receiver: [], bpftrace: [] };
let run = 0;
for (let round = 0; round < reps; round++) {
  const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
  const times = {} as Record<Mode, number>;
  for (const mode of order) {
    const detach = await setups[mode]();
    try {
      times[mode] = await timeLoop(connects, run++);
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

const summary = Object.fromEntries(MODES.map((mode) => [mode, { nsPerConnect: median(perConnect[mode]), addedNs: median(added[mode]) }])) as Record<
  Mode,
  { nsPerConnect: number; addedNs: number }
>;
const receiverOverBpftrace = summary.receiver.addedNs / summary.bpftrace.addedNs;

console.log(`loopback connect+accept+close, ${connects} per run, ${reps} rounds; medians:\n`);
console.log(`${'mode'.padEnd(10)} ${'ns/connect'.padStart(11)} ${'added ns'.padStart(9)} ${'vs bare'.padStart(8)}`);
for (const mode of MODES)
  console.log(
    `${mode.padEnd(10)} ${summary[mode].nsPerConnect.toFixed(0).padStart(11)} ${summary[mode].addedNs.toFixed(0).padStart(9)} ${(summary[mode].nsPerConnect / summary.bare.nsPerConnect).toFixed(3).padStart(8)}`,
  );
console.log(`\nreceiver added / bpftrace added: ${receiverOverBpftrace.toFixed(2)}x`);
console.log(`${summary.receiver.addedNs <= summary.bpftrace.addedNs ? 'PASS' : 'FAIL'}  the receiver adds no more per connect than bpftrace`);
console.log(JSON.stringify({ connects, reps, summary, receiverOverBpftrace, runs: perConnect }));
