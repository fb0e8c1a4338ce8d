/**
 * The labels of the task a kernel series belongs to (bpf/task_labels.h),
 * as the tcp, dns, tls and blockio receivers set them: `pod`, `namespace` and
 * `container` from its cgroup, plus `pid` and `comm` when aggregated by.
 */
import { z } from 'zod';
import type { Attributes } from '../../collector/data/metrics.js';
import { unique } from './config.js';
import { WorkloadLabels } from './workload-labels.js';

/** Labels the kernel may aggregate by; `cgroup` becomes the `pod`, `namespace` and `container` labels. */
const TASK_AGGREGATE_LABELS = ['cgroup', 'pid', 'comm'] as const;
export type TaskAggregateLabel = (typeof TASK_AGGREGATE_LABELS)[number];

/** The `aggregate_by` config field: what the kernel keeps series apart by, besides the receiver's own labels. pid and comm multiply the series. */
export const taskAggregateBy = z.array(z.enum(TASK_AGGREGATE_LABELS)).default(['cgroup']).superRefine(unique);

/** enum task_aggregate: a bit per label aggregated by. */
const AGGREGATE = { cgroup: 1, pid: 2, comm: 4 } as const;

/** The AGGREGATE_* bits of `labels`, for the kernel's settings. */
export function aggregateBits(labels: readonly TaskAggregateLabel[]): number {
  return labels.reduce((bits, label) => bits | AGGREGATE[label], 0);
}

/** A series' task fields as the kernel filled them in (those not aggregated by are 0 or empty). */
export interface TaskKey {
  cgroupId: bigint;
  pid: number;
  comm: string;
}

export class TaskLabels {
  private readonly workloads = new WorkloadLabels();

  constructor(private readonly aggregateBy: readonly TaskAggregateLabel[]) {}

  /** Resolves the cgroup ids of one read at once. */
  resolve(cgroupIds: Iterable<bigint>): void {
    this.workloads.resolve(cgroupIds);
  }

  /** pod, namespace and container; pid and comm when aggregated by. */
  of(key: TaskKey): Attributes {
    const attributes = this.workloads.of(key.cgroupId);
    if (this.aggregateBy.includes('pid')) attributes.pid = String(key.pid);
    if (this.aggregateBy.includes('comm')) attributes.comm = key.comm;
    return attributes;
  }
}
