import { z } from 'zod';
import { duration } from '../../collector/config/types.js';

/** The kernel keeps 15 bytes of a command name (TASK_COMM_LEN 16 with its NUL). */
const MAX_COMM_LENGTH = 15;
// Sizes of the filter maps in bpf/tcp.h.
const MAX_FILTER_PIDS = 1024;
const MAX_FILTER_COMMS = 256;
const MAX_FILTER_CGROUPS = 256;

/** Labels the kernel may aggregate by besides the destination; `cgroup` becomes `pod`, `namespace` and `container`. */
export const AGGREGATE_LABELS = ['cgroup', 'pid', 'comm'] as const;
export type AggregateLabel = (typeof AGGREGATE_LABELS)[number];

function unique<T>(list: T[], ctx: z.RefinementCtx): void {
  list.forEach((item, index) => {
    if (list.indexOf(item) !== index) ctx.addIssue({ code: 'custom', path: [index], message: `${JSON.stringify(item)} is listed twice` });
  });
}

/**
 * TCP connect latency and failures, retransmits and resets received, by
 * destination IP. Each filter list that is not empty must match the
 * connecting process for its connects to be recorded.
 */
export const tcpConfigSchema = z
  .object({
    /** How often the kernel's aggregates are read and emitted. */
    collection_interval: duration(100, 3_600_000).default('10s'),
    /** Only connects made by these processes (tgids: all their threads). */
    pids: z.array(z.number().int().min(1)).max(MAX_FILTER_PIDS).default([]).superRefine(unique),
    /** Only connects made by threads whose command name is exactly one of these. */
    comms: z
      .array(
        z.string().min(1).refine((comm) => Buffer.byteLength(comm, 'utf8') <= MAX_COMM_LENGTH, {
          message: `a command name has at most ${MAX_COMM_LENGTH} bytes: the kernel truncates longer names`,
        }),
      )
      .max(MAX_FILTER_COMMS)
      .default([])
      .superRefine(unique),
    /** Only connects made by processes in these cgroup v2 paths or below them; resolved at start. */
    cgroups: z
      .array(z.string().regex(/^\//, 'expected a cgroup v2 path starting with "/", e.g. "/system.slice"'))
      .max(MAX_FILTER_CGROUPS)
      .default([])
      .superRefine(unique),
    /** What the kernel keeps series apart by, besides the destination. pid and comm multiply the series. */
    aggregate_by: z.array(z.enum(AGGREGATE_LABELS)).default(['cgroup']).superRefine(unique),
    /** Distinct `dst_ip` values with their own series while the receiver runs; later ones fold into dst_ip="[other]" (counted as dropped). */
    max_destinations: z.number().int().min(1).max(100_000).default(1000),
  })
  .strict();

export type TcpConfig = z.output<typeof tcpConfigSchema>;
