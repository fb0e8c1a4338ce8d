import { z } from 'zod';
import { duration, endpoint } from '../../collector/config/types.js';

export const prometheusConfigSchema = z
  .object({
    /** Where the scrape endpoint listens; metrics are served at /metrics. */
    endpoint: endpoint.default('127.0.0.1:9464'),
    /** A series not updated for this long is dropped, so that gone processes do not pile up. */
    metric_expiration: duration(1000, 7 * 86_400_000).default('5m'),
  })
  .strict();

export type PrometheusConfig = z.output<typeof prometheusConfigSchema>;
