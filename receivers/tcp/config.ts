import { z } from 'zod';
import { duration } from '../../collector/config/types.js';
import { processFilterFields } from '../common/process-filter.js';
import { taskAggregateBy } from '../common/task-labels.js';

/**
 * TCP connect latency and failures, retransmits and resets received, by
 * destination IP. Each filter list that is not empty must match the
 * connecting process for its connects to be recorded.
 */
export const tcpConfigSchema = z
  .object({
    /** How often the kernel's aggregates are read and emitted. */
    collection_interval: duration(100, 3_600_000).default('10s'),
    /** Only connects made by these pids, comms and cgroups: the connecting process's. */
    ...processFilterFields,
    /** What the kernel keeps series apart by, besides the destination. */
    aggregate_by: taskAggregateBy,
    /** Distinct `dst_ip` values with their own series while the receiver runs; later ones fold into dst_ip="[other]" (counted as dropped). */
    max_destinations: z.number().int().min(1).max(100_000).default(1000),
  })
  .strict();

export type TcpConfig = z.output<typeof tcpConfigSchema>;
