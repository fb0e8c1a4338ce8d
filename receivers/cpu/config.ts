import { z } from 'zod';
import { duration } from '../../collector/config/types.js';

/** The kernel keeps 15 bytes of a command name (TASK_COMM_LEN 16 with its NUL). */
const MAX_COMM_LENGTH = 15;
// Sizes of the filter maps in bpf/cpu.h.
const MAX_FILTER_PIDS = 1024;
const MAX_FILTER_CGROUPS = 256;

const commPattern = z
  .string()
  .regex(/^[^*]+\*?$/, 'expected a command name, or a prefix ending in "*" (e.g. "nginx" or "python*")')
  .refine((pattern) => Buffer.byteLength(pattern.replace(/\*$/, ''), 'utf8') <= MAX_COMM_LENGTH, {
    message: `a command name has at most ${MAX_COMM_LENGTH} bytes: the kernel truncates longer names`,
  });

/**
 * Whole-system CPU profiling. Without filters every process is sampled; with
 * several, a sample must pass all of them.
 */
export const cpuConfigSchema = z
  .object({
    /** Samples per second on each CPU. */
    frequency_hz: z.number().int().min(1).max(1000).default(97),
    /** How often the kernel's aggregated samples are read and emitted. */
    collection_interval: duration(100, 3_600_000).default('10s'),
    /** Only these processes (tgids). */
    pids: z.array(z.number().int().min(1)).min(1).max(MAX_FILTER_PIDS).optional(),
    /** Only processes in these cgroup v2 paths (e.g. "/system.slice/nginx.service") or below them; resolved at start. */
    cgroups: z
      .array(z.string().regex(/^\//, 'expected a cgroup v2 path starting with "/", e.g. "/system.slice"'))
      .min(1)
      .max(MAX_FILTER_CGROUPS)
      .optional(),
    /** Only processes whose command name is this, or starts with this prefix when it ends in "*". */
    comm: commPattern.optional(),
  })
  .strict();

export type CpuConfig = z.output<typeof cpuConfigSchema>;
