import { z } from 'zod';
import { duration } from '../../collector/config/types.js';

/** The kernel keeps 15 bytes of a command name (TASK_COMM_LEN 16 with its NUL). */
const MAX_COMM_LENGTH = 15;
// Sizes of the filter maps in bpf/syscalls.h.
const MAX_FILTER_PIDS = 1024;
const MAX_FILTER_COMMS = 256;
const MAX_FILTER_CGROUPS = 256;

/** Labels the kernel may aggregate by; `cgroup` becomes the `pod` and `namespace` labels. */
export const AGGREGATE_LABELS = ['cgroup', 'pid', 'tid', 'uid'] as const;
export type AggregateLabel = (typeof AGGREGATE_LABELS)[number];

function unique<T>(list: T[], ctx: z.RefinementCtx): void {
  list.forEach((item, index) => {
    if (list.indexOf(item) !== index) ctx.addIssue({ code: 'custom', path: [index], message: `${JSON.stringify(item)} is listed twice` });
  });
}

/**
 * Per-syscall latency, calls and errors for the whole system. Each filter
 * list that is not empty must match for a syscall to be recorded.
 */
export const syscallsConfigSchema = z
  .object({
    /** How often the kernel's aggregates are read and emitted. */
    collection_interval: duration(100, 3_600_000).default('10s'),
    /** Only these processes (tgids: all their threads). */
    pids: z.array(z.number().int().min(1)).max(MAX_FILTER_PIDS).default([]).superRefine(unique),
    /** Only threads whose command name is exactly one of these. */
    comms: z
      .array(
        z.string().min(1).refine((comm) => Buffer.byteLength(comm, 'utf8') <= MAX_COMM_LENGTH, {
          message: `a command name has at most ${MAX_COMM_LENGTH} bytes: the kernel truncates longer names`,
        }),
      )
      .max(MAX_FILTER_COMMS)
      .default([])
      .superRefine(unique),
    /** Only processes in these cgroup v2 paths (e.g. "/system.slice/nginx.service") or below them; resolved at start. */
    cgroups: z
      .array(z.string().regex(/^\//, 'expected a cgroup v2 path starting with "/", e.g. "/system.slice"'))
      .max(MAX_FILTER_CGROUPS)
      .default([])
      .superRefine(unique),
    /** What the kernel keeps series apart by, besides the syscall. pid, tid and uid multiply the series. */
    aggregate_by: z.array(z.enum(AGGREGATE_LABELS)).default(['cgroup']).superRefine(unique),
  })
  .strict();

export type SyscallsConfig = z.output<typeof syscallsConfigSchema>;
