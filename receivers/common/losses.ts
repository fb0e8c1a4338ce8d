/** What the kernel could not record, from a per-CPU losses array (bpf/loss_counter.h and the like), as dropped items. */
import type { CreateSettings } from '../../collector/component.js';
import { numPossibleCpus, type BpfObject } from '../../native/index.js';
import { sumPerCpuU64 } from './polling.js';

/** Drains the array `map` and counts each entry as dropped metrics, entry i with reason `reasons[i]`. */
export function reportLosses(object: BpfObject, telemetry: CreateSettings['telemetry'], reasons: readonly string[], map = 'losses'): void {
  const cpus = numPossibleCpus();
  const losses = object.drain(map);
  for (let i = 0; i < losses.count; i++) {
    const lost = Number(sumPerCpuU64(losses.values, i * cpus * 8, cpus));
    if (lost > 0) telemetry.dropped('metrics', lost, reasons[losses.keys.readUInt32LE(i * 4)]);
  }
}
