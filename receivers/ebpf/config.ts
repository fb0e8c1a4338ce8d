import { existsSync } from 'node:fs';
import { z } from 'zod';
import { duration } from '../../collector/config/types.js';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const labelSchema = z
  .object({
    name: z.string().regex(LABEL_NAME, 'must be a Prometheus label name'),
    /** Bytes this label takes in the map key, in order. */
    size: z.number().int().min(1).max(256),
    /** string: NUL-terminated text; uint: little-endian unsigned integer of 1, 2, 4 or 8 bytes. */
    decoder: z.enum(['string', 'uint']),
  })
  .strict()
  .superRefine((label, ctx) => {
    if (label.decoder === 'uint' && ![1, 2, 4, 8].includes(label.size))
      ctx.addIssue({ code: 'custom', path: ['size'], message: `a uint label must be 1, 2, 4 or 8 bytes, got ${label.size}` });
  });

const counterSchema = z
  .object({
    name: z.string().regex(METRIC_NAME, 'must be a Prometheus metric name'),
    description: z.string().default(''),
    /** A hash (or per-CPU hash) map whose key is the labels and whose value is a u64 count. */
    map: z.string().min(1),
    labels: z.array(labelSchema).default([]),
  })
  .strict();

/**
 * A BPF object the user built, attached by its SEC() names, with counters
 * decoded from its maps label by label, as cloudflare's ebpf_exporter does.
 */
export const ebpfConfigSchema = z
  .object({
    object: z.string().refine(existsSync, (path) => ({ message: `no such file: "${path}"` })),
    collection_interval: duration(100, 3_600_000).default('10s'),
    counters: z.array(counterSchema).min(1),
  })
  .strict();

export type EbpfConfig = z.output<typeof ebpfConfigSchema>;
export type CounterConfig = EbpfConfig['counters'][number];
