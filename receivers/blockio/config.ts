import { z } from 'zod';
import { duration } from '../../collector/config/types.js';

/** The kernel keeps 31 bytes of a disk name (DISK_NAME_LEN 32 with its NUL). */
const MAX_DISK_NAME_LENGTH = 31;

/** Labels the kernel may aggregate by, besides device and operation; `cgroup` becomes `pod`, `namespace` and `container`. */
export const AGGREGATE_LABELS = ['cgroup', 'pid', 'comm'] as const;
export type AggregateLabel = (typeof AGGREGATE_LABELS)[number];

function unique<T>(list: T[], ctx: z.RefinementCtx): void {
  list.forEach((item, index) => {
    if (list.indexOf(item) !== index) ctx.addIssue({ code: 'custom', path: [index], message: `${JSON.stringify(item)} is listed twice` });
  });
}

/** Block-layer requests of every disk, by device and operation, attributed to the task that submitted them. */
export const blockioConfigSchema = z
  .object({
    /** How often the kernel's aggregates are read and emitted. */
    collection_interval: duration(100, 3_600_000).default('10s'),
    /** What the kernel keeps series apart by, besides device and operation. pid and comm multiply the series. */
    aggregate_by: z.array(z.enum(AGGREGATE_LABELS)).default(['cgroup']).superRefine(unique),
    /** Only these disks (e.g. "vda", "nvme0n1"); empty: all. Series of other disks are dropped when read. */
    devices: z
      .array(
        z
          .string()
          .regex(/^[^\s/]+$/, 'expected a disk name as in /sys/block, e.g. "vda"')
          .refine((name) => Buffer.byteLength(name, 'utf8') <= MAX_DISK_NAME_LENGTH, {
            message: `a disk name has at most ${MAX_DISK_NAME_LENGTH} bytes`,
          }),
      )
      .default([])
      .superRefine(unique),
  })
  .strict();

export type BlockioConfig = z.output<typeof blockioConfigSchema>;
