import { z } from 'zod';
import { duration } from '../../collector/config/types.js';

export const processConfigSchema = z
  .object({
    /** How often the kernel maps are read. */
    collection_interval: duration(100, 3_600_000).default('10s'),
  })
  .strict();

export type ProcessConfig = z.output<typeof processConfigSchema>;
