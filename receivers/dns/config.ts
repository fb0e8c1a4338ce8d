import { z } from 'zod';
import { duration } from '../../collector/config/types.js';
import { unique } from '../common/config.js';
import { taskAggregateBy } from '../common/task-labels.js';

/**
 * DNS query latency and failures by queried domain, for every client on the
 * machine: queries and responses on the wire, and glibc getaddrinfo calls.
 */
export const dnsConfigSchema = z
  .object({
    /** How often the kernel's aggregates are read and emitted, and unanswered queries expired. */
    collection_interval: duration(100, 3_600_000).default('10s'),
    /** The UDP port DNS servers answer on. */
    port: z.number().int().min(1).max(65_535).default(53),
    /** A query unanswered for this long is a failure with reason "timeout" (seen at the next collection). */
    timeout: duration(100, 600_000).default('5s'),
    /** Distinct domains with their own series; queries for more fold into domain="[other]". */
    max_domains: z.number().int().min(1).max(100_000).default(1000),
    /** What the kernel keeps series apart by, besides the domain. */
    aggregate_by: taskAggregateBy,
    /**
     * glibc's libc.so.6 files whose getaddrinfo is probed. Empty: the first of
     * the usual locations that exists.
     */
    libc_paths: z
      .array(z.string().regex(/^\//, 'expected an absolute path, e.g. "/lib/x86_64-linux-gnu/libc.so.6"'))
      .max(64)
      .default([])
      .superRefine(unique),
  })
  .strict();

export type DnsConfig = z.output<typeof dnsConfigSchema>;
