import { z } from 'zod';
import { duration } from '../../collector/config/types.js';
import { unique } from '../common/config.js';
import { taskAggregateBy } from '../common/task-labels.js';

/** The kernel keeps 31 bytes of a disk name (DISK_NAME_LEN 32 with its NUL). */
const MAX_DISK_NAME_LENGTH = 31;

/** Block-layer requests of every disk, by device and operation, attributed to the task that submitted them. */
export const blockioConfigSchema = z
  .object({
    /** How often the kernel's aggregates are read and emitted. */
    collection_interval: duration(100, 3_600_000).default('10s'),
    /** What the kernel keeps series apart by, besides device and operation. */
    aggregate_by: taskAggregateBy,
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
