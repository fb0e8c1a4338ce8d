import { z } from 'zod';
import { duration } from '../../collector/config/types.js';

// A plain decimal, so that it reads well in a metric name (99.9 → p99_9).
const PLAIN_DECIMAL = /^\d+(\.\d+)?$/;

// A refinement rather than gt/lt: the config loader words zod's bounds as inclusive ("at least").
const percentile = z
  .number()
  .refine((p) => p > 0 && p < 100, (p) => ({ message: `must be above 0 and below 100, got ${p}` }))
  .refine((p) => PLAIN_DECIMAL.test(String(p)), (p) => ({ message: `must be a plain decimal such as 99.9, got ${p}` }));

/** Aggregates delta batches over a window and emits one batch per window, with percentile gauges for histograms. */
export const windowConfigSchema = z
  .object({
    /** The window length; windows are aligned to the processor's start. */
    window: duration(1000, 3_600_000).default('60s'),
    /** Percentiles computed for every histogram, in (0, 100). */
    percentiles: z
      .array(percentile)
      .default([50, 95, 99])
      .superRefine((percentiles, ctx) => {
        percentiles.forEach((p, i) => {
          if (percentiles.indexOf(p) !== i) ctx.addIssue({ code: 'custom', path: [i], message: `${p} is listed more than once` });
        });
      }),
  })
  .strict();

export type WindowConfig = z.output<typeof windowConfigSchema>;
