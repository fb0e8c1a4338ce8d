/** What the kernel could not record, from a per-CPU losses array (bpf/loss_counter.h and the like), as dropped items. */
import type { CreateSettings } from '../../collector/component.js';
import { numPossibleCpus } from '../../native/index.js';
import type { RetiredBank } from './counter-banks.js';
import { sumPerCpuU64 } from './polling.js';

/** Drains the banked array `map` of `bank` and counts each entry as dropped items of `signal`, entry i with reason `reasons[i]`. */
export function reportLosses(
  bank: RetiredBank,
  telemetry: CreateSettings['telemetry'],
  reasons: readonly string[],
  map = 'losses',
  signal: Parameters<CreateSettings['telemetry']['dropped']>[0] = 'metrics',
): void {
  const cpus = numPossibleCpus();
  const losses = bank.drain(map);
  for (let i = 0; i < losses.count; i++) {
    const lost = Number(sumPerCpuU64(losses.values, i * cpus * 8, cpus));
    if (lost > 0) telemetry.dropped(signal, lost, reasons[losses.keys.readUInt32LE(i * 4)]);
  }
}
