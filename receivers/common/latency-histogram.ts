/**
 * The kernel's latency histogram (bpf/latency_histogram.h) as Prometheus
 * buckets: slot upper bounds in seconds, and series summed across CPUs and
 * across kernel keys that end up with the same labels.
 */
import { attributesKey, type Attributes, type HistogramPoint } from '../../collector/data/metrics.js';

export const HISTOGRAM_MIN_SHIFT = 10;
export const HISTOGRAM_MAX_SHIFT = 34;
export const SUB_BUCKET_BITS = 2;
export const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
export const HISTOGRAM_SLOTS = 2 + (HISTOGRAM_MAX_SHIFT - HISTOGRAM_MIN_SHIFT) * SUB_BUCKETS;
/** struct latency_histogram: the slots, then sum_ns. */
export const HISTOGRAM_VALUE_SIZE = (HISTOGRAM_SLOTS + 1) * 8;

/** Upper bound in nanoseconds of each slot but the last (+Inf): 2^10, then 2^k + j * 2^(k-2) for j = 1..4. */
function slotUpperBoundNs(slot: number): number {
  if (slot === 0) return 2 ** HISTOGRAM_MIN_SHIFT;
  const octave = HISTOGRAM_MIN_SHIFT + Math.floor((slot - 1) / SUB_BUCKETS);
  const sub = (slot - 1) % SUB_BUCKETS;
  return 2 ** octave + (sub + 1) * 2 ** (octave - SUB_BUCKET_BITS);
}

/** Prometheus `le` boundaries in seconds, one per slot but the last. */
export const BOUNDARIES_SECONDS: readonly number[] = Array.from({ length: HISTOGRAM_SLOTS - 1 }, (_, slot) => slotUpperBoundNs(slot) / 1e9);

/** Histograms by label set: kernel entries (one per CPU, and per cgroup that maps to the same pod) add up. */
export class HistogramSeries {
  private readonly series = new Map<string, { attributes: Attributes; slots: number[]; sumNs: number }>();

  /** Adds the struct latency_histogram values (one per CPU for per-CPU maps; cpus 1 otherwise) of one map entry, starting at `offset` in `values`. */
  add(attributes: Attributes, values: Buffer, offset: number, cpus: number): void {
    const key = attributesKey(attributes);
    let entry = this.series.get(key);
    if (!entry) {
      entry = { attributes, slots: new Array<number>(HISTOGRAM_SLOTS).fill(0), sumNs: 0 };
      this.series.set(key, entry);
    }
    for (let cpu = 0; cpu < cpus; cpu++) {
      const base = offset + cpu * HISTOGRAM_VALUE_SIZE;
      for (let slot = 0; slot < HISTOGRAM_SLOTS; slot++) entry.slots[slot] += Number(values.readBigUInt64LE(base + slot * 8));
      entry.sumNs += Number(values.readBigUInt64LE(base + HISTOGRAM_SLOTS * 8));
    }
  }

  points(): HistogramPoint[] {
    return [...this.series.values()].map(({ attributes, slots, sumNs }) => ({
      attributes,
      boundaries: [...BOUNDARIES_SECONDS],
      bucketCounts: slots,
      sum: sumNs / 1e9,
      count: slots.reduce((total, n) => total + n, 0),
    }));
  }

  /** Calls per label set: every recorded call is in exactly one slot. */
  counts(): { attributes: Attributes; value: number }[] {
    return [...this.series.values()].map(({ attributes, slots }) => ({ attributes, value: slots.reduce((total, n) => total + n, 0) }));
  }
}

/** Durations recorded in `cpus` consecutive struct latency_histogram values at `offset`: each is in exactly one slot. */
export function histogramCount(values: Buffer, offset: number, cpus = 1): number {
  let count = 0;
  for (let cpu = 0; cpu < cpus; cpu++)
    for (let slot = 0; slot < HISTOGRAM_SLOTS; slot++) count += Number(values.readBigUInt64LE(offset + cpu * HISTOGRAM_VALUE_SIZE + slot * 8));
  return count;
}
