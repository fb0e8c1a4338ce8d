import { z } from 'zod';

export const pprofConfigSchema = z
  .object({
    /** Where one gzip'd pprof file per incoming batch is written; relative to the collector's working directory. */
    directory: z.string().min(1, 'must name a directory').default('./profiles'),
    /** Files kept in `directory`; the oldest are removed first. */
    max_files: z.number().int().min(1).max(1_000_000).default(100),
    /** False serves only the /debug/pprof/ HTTP API and writes nothing. */
    write_files: z.boolean().default(true),
  })
  .strict();

export type PprofConfig = z.output<typeof pprofConfigSchema>;
