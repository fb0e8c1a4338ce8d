import { z } from 'zod';
import { duration } from '../../collector/config/types.js';
import { unique } from '../common/config.js';
import { processFilterFields } from '../common/process-filter.js';

/** Labels the kernel may aggregate by; `cgroup` becomes the `pod` and `namespace` labels. */
export const AGGREGATE_LABELS = ['cgroup', 'pid', 'tid', 'uid'] as const;
export type AggregateLabel = (typeof AGGREGATE_LABELS)[number];

/**
 * Per-syscall latency, calls and errors for the whole system. Each filter
 * list that is not empty must match for a syscall to be recorded.
 */
export const syscallsConfigSchema = z
  .object({
    /** How often the kernel's aggregates are read and emitted. */
    collection_interval: duration(100, 3_600_000).default('10s'),
    /** Only syscalls of these pids, comms and cgroups (e.g. "/system.slice/nginx.service", descendants included). */
    ...processFilterFields,
    /** What the kernel keeps series apart by, besides the syscall. pid, tid and uid multiply the series. */
    aggregate_by: z.array(z.enum(AGGREGATE_LABELS)).default(['cgroup']).superRefine(unique),
  })
  .strict();

export type SyscallsConfig = z.output<typeof syscallsConfigSchema>;
