import { z } from 'zod';

export const pprofConfigSchema = z
  .object({
    /** Where one gzip'd pprof file per incoming batch is written; relative to the collector's working directory. */
    directory: z.string().min(1, 'must name a directory').default('./profiles'),
    /** Files kept in `directory`; the oldest are removed first. */
    max_files: z.number().int().min(1).max(1_000_000).default(100),
    /** False serves only the /debug/pprof/ HTTP API and writes nothing. */
    write_files: z.boolean().default(true),
    /** /debug/pprof/profile and /folded requests served at once; more are answered 429. */
    max_concurrent_requests: z.number().int().min(1).max(1000).default(4),
    /** Samples (distinct stacks of one process in one batch) one request holds; further ones are left out and counted. */
    max_samples_per_request: z.number().int().min(1).max(100_000_000).default(200_000),
  })
  .strict();

export type PprofConfig = z.output<typeof pprofConfigSchema>;
