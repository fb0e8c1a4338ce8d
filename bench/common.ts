/**
 * What the benchmarks share: the median of their rounds, table rows, a receiver started
 * as the collector starts it, bpftrace attached, kernel.bpf_stats_enabled on
 * while they measure, and the run time the kernel counts per program. Used by
 * bench/network and bench/io; bench/syscalls keeps copies it could drop.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, ReceiverFactory } from '../collector/component.js';
import { testHost, testSettings } from '../test/support/components.js';

/** Attaches a mode's tracing and returns how to detach it. */
export type Setup = () => Promise<() => Promise<void>>;

/** A row of a results table: the first cell left-aligned in `widths[0]` characters, the others right-aligned in theirs. */
export function tableRow(cells: string[], widths: number[]): string {
  return cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[0]) : cell.padStart(widths[i]))).join(' ');
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const discard: Consumer<'metrics'> = { consume: async () => {} };

/** Starts a metrics receiver through its factory, `config` over its defaults, its output discarded; returns how to stop it. */
export async function startReceiver<C>(factory: ReceiverFactory<C>, config: unknown = {}): Promise<() => Promise<void>> {
  const receiver = factory.create(testSettings('receiver', factory.type), factory.configSchema.parse(config) as C, { metrics: discard });
  await receiver.start(testHost());
  return () => receiver.shutdown();
}

/**
 * Runs bpftrace with `args` until it prints `ready` (within `timeoutMs`), then
 * waits `settleMs` more (bpftrace says "Attaching" just before it attaches);
 * returns how to stop it.
 */
export async function startBpftrace(args: string[], ready: string, { timeoutMs = 30_000, settleMs = 0 } = {}): Promise<() => Promise<void>> {
  const child = spawn('bpftrace', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  let started = false;
  // Only the tail is kept: a script may print a line per traced call.
  const take = (chunk: Buffer) => {
    output = (output + chunk).slice(-4096);
    started ||= output.includes(ready);
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  for (let waited = 0; !started; waited += 100) {
    if (child.exitCode !== null || waited > timeoutMs) throw new Error(`bpftrace did not attach: ${output}`);
    await sleep(100);
  }
  await sleep(settleMs);
  return async () => {
    child.kill('SIGINT');
    await exited;
  };
}

export interface BpfProgram {
  id: number;
  type: string;
  /** As the kernel keeps it (15 characters), or bpftool's full name from BTF. */
  name: string;
  /** Run time and runs counted while kernel.bpf_stats_enabled was on. */
  runTimeNs: number;
  runs: number;
}

/** Every loaded BPF program, from bpftool. */
export function bpfPrograms(): BpfProgram[] {
  const result = spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`bpftool prog show failed: ${result.stderr}`);
  const programs = JSON.parse(result.stdout || '[]') as { id: number; type: string; name?: string; run_time_ns?: number; run_cnt?: number }[];
  return programs.map((p) => ({ id: p.id, type: p.type, name: p.name ?? '', runTimeNs: p.run_time_ns ?? 0, runs: p.run_cnt ?? 0 }));
}

/** kernel.bpf_stats_enabled: switched on while a bench measures, and back to what it was. */
export class BpfStatsSwitch {
  private static readonly PATH = '/proc/sys/kernel/bpf_stats_enabled';
  private readonly before = readFileSync(BpfStatsSwitch.PATH, 'utf8').trim();

  /** Also again during a run: another bench that ended meanwhile may have restored it. */
  on(): void {
    writeFileSync(BpfStatsSwitch.PATH, '1');
  }

  restore(): void {
    writeFileSync(BpfStatsSwitch.PATH, this.before);
  }
}
