import { z } from 'zod';
import { duration } from '../../collector/config/types.js';
import { unique } from '../common/config.js';
import { taskAggregateBy } from '../common/task-labels.js';

/**
 * TLS handshake latency and failures from uprobes on OpenSSL 3.0: the
 * libssl.so.3 found in the system's library directories, every libssl and
 * every binary that embeds OpenSSL and exports its symbols (node) that a
 * live process maps, and `binaries`.
 */
export const tlsConfigSchema = z
  .object({
    /** How often the kernel's aggregates are read, and processes searched for new OpenSSL binaries. */
    collection_interval: duration(100, 3_600_000).default('10s'),
    /** More ELF files to probe (absolute paths): libraries or executables that export OpenSSL 3.0's SSL_* functions. */
    binaries: z.array(z.string().regex(/^\//, 'expected an absolute path')).default([]).superRefine(unique),
    /** Search the executables and libraries live processes map (/proc/PID/maps) for OpenSSL each interval. */
    discover_processes: z.boolean().default(true),
    /** Distinct server_name values kept; later names are counted as server_name="[other]". */
    max_server_names: z.number().int().min(1).max(100_000).default(1000),
    /** What the kernel keeps series apart by, besides server_name and side. */
    aggregate_by: taskAggregateBy,
  })
  .strict();

export type TlsConfig = z.output<typeof tlsConfigSchema>;
