import { z } from 'zod';

export const profileMetricsConfigSchema = z
  .object({
    /** Leaf functions kept by name per window, by samples; the rest count as function="[other]". */
    top_k: z.number().int().min(1).max(10_000).default(100),
  })
  .strict();

export type ProfileMetricsConfig = z.output<typeof profileMetricsConfigSchema>;
