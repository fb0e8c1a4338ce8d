/**
 * The kernel's filters on the acting process (bpf/process_filter.h for tcp,
 * bpf/syscall_probe.h for syscalls and fileio): their config fields and the
 * maps they are written to.
 */
import { z } from 'zod';
import { cgroupId } from '../../collector/cgroups.js';
import type { BpfObject } from '../../native/index.js';
import { unique } from './config.js';
import { u32 } from './polling.js';

/** The kernel keeps 15 bytes of a command name (TASK_COMM_LEN 16 with its NUL). */
const MAX_COMM_LENGTH = 15;
const COMM_LEN = 16;
// Sizes of the filter maps in bpf/process_filter.h.
const MAX_FILTER_PIDS = 1024;
const MAX_FILTER_COMMS = 256;
const MAX_FILTER_CGROUPS = 256;
/** enum process_filter: a bit per filter that is on. */
const FILTER = { pids: 1, comms: 2, cgroups: 4 } as const;

/** Config fields of the filters: each list that is not empty must match the process for its events to be recorded. */
export const processFilterFields = {
  /** Only these processes (tgids: all their threads). */
  pids: z.array(z.number().int().min(1)).max(MAX_FILTER_PIDS).default([]).superRefine(unique),
  /** Only threads whose command name is exactly one of these. */
  comms: z
    .array(
      z.string().min(1).refine((comm) => Buffer.byteLength(comm, 'utf8') <= MAX_COMM_LENGTH, {
        message: `a command name has at most ${MAX_COMM_LENGTH} bytes: the kernel truncates longer names`,
      }),
    )
    .max(MAX_FILTER_COMMS)
    .default([])
    .superRefine(unique),
  /** Only processes in these cgroup v2 paths or below them; resolved at start. */
  cgroups: z
    .array(z.string().regex(/^\//, 'expected a cgroup v2 path starting with "/", e.g. "/system.slice"'))
    .max(MAX_FILTER_CGROUPS)
    .default([])
    .superRefine(unique),
};

export interface ProcessFilters {
  pids: number[];
  comms: string[];
  cgroups: string[];
}

/** The bits of the filters that are on (enum process_filter, enum syscall_probe_filter). */
export function processFilterBits({ pids, comms, cgroups }: ProcessFilters): number {
  return (pids.length ? FILTER.pids : 0) | (comms.length ? FILTER.comms : 0) | (cgroups.length ? FILTER.cgroups : 0);
}

/**
 * Writes the filters into the object's `<prefix>filter_pids`, `<prefix>filter_comms`
 * and `<prefix>filter_cgroups` maps; returns the bits of those that are on.
 */
export function writeProcessFilters(object: BpfObject, filters: ProcessFilters, mapPrefix = ''): number {
  const present = Buffer.from([1]);
  for (const pid of filters.pids) object.update(`${mapPrefix}filter_pids`, u32(pid), present);
  for (const comm of filters.comms) {
    const key = Buffer.alloc(COMM_LEN);
    key.write(comm, 'utf8');
    object.update(`${mapPrefix}filter_comms`, key, present);
  }
  for (const path of filters.cgroups) {
    const key = Buffer.alloc(8);
    key.writeBigUInt64LE(cgroupId(path));
    object.update(`${mapPrefix}filter_cgroups`, key, present);
  }
  return processFilterBits(filters);
}
