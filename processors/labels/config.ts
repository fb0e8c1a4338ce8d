import { z } from 'zod';
import { duration } from '../../collector/config/types.js';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const labelList = z.array(z.string().regex(LABEL_NAME, 'must be a Prometheus label name'));

const filterSchema = z
  .object({
    metric: z.string().regex(METRIC_NAME, 'must be a Prometheus metric name'),
    /** If set, only these labels survive. */
    keep_labels: labelList.optional(),
    /** These labels are removed. */
    drop_labels: labelList.optional(),
  })
  .strict()
  .superRefine((filter, ctx) => {
    if (!filter.keep_labels && !filter.drop_labels)
      ctx.addIssue({ code: 'custom', message: 'set keep_labels, drop_labels or both (drop_labels: [] keeps every label)' });
    const kept = new Set(filter.keep_labels);
    filter.drop_labels?.forEach((label, i) => {
      if (kept.has(label)) ctx.addIssue({ code: 'custom', path: ['drop_labels', i], message: `"${label}" is also in keep_labels` });
    });
  });

/**
 * Drops labels per metric, then caps the series each metric may have.
 * A metric with a filter entry gets exactly that entry; default_drop_labels
 * applies to every other metric.
 */
export const labelsConfigSchema = z
  .object({
    filters: z
      .array(filterSchema)
      .default([])
      .superRefine((filters, ctx) => {
        const seen = new Set<string>();
        filters.forEach((filter, i) => {
          if (seen.has(filter.metric)) ctx.addIssue({ code: 'custom', path: [i, 'metric'], message: `"${filter.metric}" has more than one filter` });
          seen.add(filter.metric);
        });
      }),
    default_drop_labels: labelList.default(['tid', 'pid', 'uid']),
    /** Distinct label sets kept per metric; the rest fold into one overflow series. 0 = no cap. */
    max_series_per_metric: z.number().int().min(0).default(1000),
    /** A kept label set unseen for this long gives its place under the cap back. */
    series_expiration: duration(1000, 7 * 86_400_000).default('5m'),
  })
  .strict();

export type LabelsConfig = z.output<typeof labelsConfigSchema>;
export type LabelFilter = LabelsConfig['filters'][number];
