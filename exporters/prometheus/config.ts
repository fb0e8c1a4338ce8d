import { z } from 'zod';
import { duration, endpoint } from '../../collector/config/types.js';
import { basicAuthUsersSchema, tlsServerConfigSchema } from './web-config.js';

export const prometheusConfigSchema = z
  .object({
    /** Where the scrape endpoint listens; metrics are served at /metrics. */
    endpoint: endpoint.default('127.0.0.1:9464'),
    /** A series not updated for this long is dropped, so that gone processes do not pile up. */
    metric_expiration: duration(1000, 7 * 86_400_000).default('5m'),
    /** HTTPS, as in Prometheus's web config; client certificates by client_auth_type. */
    tls_server_config: tlsServerConfigSchema.optional(),
    /** username → bcrypt hash; scrapes must then send one of them (HTTP basic auth). */
    basic_auth_users: basicAuthUsersSchema.optional(),
  })
  .strict();

export type PrometheusConfig = z.output<typeof prometheusConfigSchema>;
