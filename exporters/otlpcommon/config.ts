/**
 * Settings the otlp and otlphttp exporters share, named as the OpenTelemetry
 * Collector's exporterhelper and configtls name them, so that a Collector
 * user's exporter config reads the same here.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { duration } from '../../collector/config/types.js';

const HOUR_MS = 3_600_000;

const existingFile = z.string().refine(existsSync, (path) => ({ message: `no such file: "${path}"` }));

export const tlsSchema = z
  .object({
    /** Plaintext, no TLS at all (the gRPC client's `insecure`). */
    insecure: z.boolean().default(false),
    /** PEM CA certificates that verify the server, instead of the system's. */
    ca_file: existingFile.optional(),
    /** PEM client certificate and key, for servers that require mutual TLS. */
    cert_file: existingFile.optional(),
    key_file: existingFile.optional(),
  })
  .strict()
  .superRefine((tls, ctx) => {
    if ((tls.cert_file === undefined) !== (tls.key_file === undefined))
      ctx.addIssue({ code: 'custom', path: [tls.cert_file ? 'key_file' : 'cert_file'], message: 'cert_file and key_file go together' });
    if (tls.insecure && (tls.ca_file || tls.cert_file))
      ctx.addIssue({ code: 'custom', path: ['insecure'], message: 'insecure means no TLS, so ca_file, cert_file and key_file cannot be used with it' });
  });

export type TlsConfig = z.output<typeof tlsSchema>;

/** The exporterhelper's queue, sized in items (metric points, profile samples) and in encoded request bytes. */
export const sendingQueueSchema = z
  .object({
    queue_size: z.number().int().min(1).default(1_000_000),
    max_bytes: z.number().int().min(1024).default(64 * 1024 * 1024),
  })
  .strict();

/** The exporterhelper's retry_on_failure: exponential backoff with jitter. */
export const retryOnFailureSchema = z
  .object({
    enabled: z.boolean().default(true),
    initial_interval: duration(1, HOUR_MS).default('5s'),
    /** Each wait is drawn from [interval × (1 − factor), interval × (1 + factor)]. */
    randomization_factor: z.number().min(0).max(1).default(0.5),
    multiplier: z.number().min(1).max(10).default(1.5),
    max_interval: duration(1, HOUR_MS).default('30s'),
    /** Give up on a request after this long; 0 retries for ever (the queue still bounds memory). */
    max_elapsed_time: duration(0, 24 * HOUR_MS).default('300s'),
  })
  .strict()
  .superRefine((retry, ctx) => {
    // zod still runs this when a duration failed to parse; there is nothing to compare then.
    if (typeof retry.max_interval === 'number' && typeof retry.initial_interval === 'number' && retry.max_interval < retry.initial_interval)
      ctx.addIssue({ code: 'custom', path: ['max_interval'], message: 'must not be shorter than initial_interval' });
  });

/** An HTTP header name (RFC 9110 token); gRPC metadata takes the same names, lower-cased. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const commonOtlpFields = {
  /** Sent with every request (HTTP headers, or gRPC metadata), e.g. a tenant id or an authorization. */
  headers: z
    .record(
      z.string().regex(HEADER_NAME, 'must be an HTTP header name').refine((name) => !name.toLowerCase().endsWith('-bin'), 'binary (-bin) headers are not supported'),
      z.string().regex(/^[^\r\n\0]*$/, 'must be a single line'),
    )
    .default({}),
  compression: z.enum(['gzip', 'none']).default('gzip'),
  /** Per request; also how long shutdown waits for the queue to drain. */
  timeout: duration(1, 10 * 60_000).default('10s'),
  tls: tlsSchema.default({}),
  sending_queue: sendingQueueSchema.default({}),
  retry_on_failure: retryOnFailureSchema.default({}),
  /** Metrics only: receivers hand on deltas; cumulative sums them per series, as Prometheus-style backends expect. */
  temporality: z.enum(['delta', 'cumulative']).default('cumulative'),
  /** Metrics only, with cumulative temporality: a series not updated for this long is no longer sent. */
  metric_expiration: duration(1000, 7 * 24 * HOUR_MS).default('5m'),
};

const commonSchema = z.object(commonOtlpFields).strict();
export type OtlpCommonConfig = z.output<typeof commonSchema>;
export type RetryConfig = OtlpCommonConfig['retry_on_failure'];
export type SendingQueueConfig = OtlpCommonConfig['sending_queue'];
