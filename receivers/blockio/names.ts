/** Names of the kernel's block operations and statuses, as the labels of the blockio receiver. */
import { release } from 'node:os';

/**
 * enum req_op (include/linux/blk_types.h) as the `operation` label. Zone
 * append carries data, so it is a write; write-zeroes, secure erase, zone
 * management and driver-private commands are `other`.
 */
const OPERATIONS: Record<number, string> = { 0: 'read', 1: 'write', 2: 'flush', 3: 'discard', 7: 'write' };

export function operationName(op: number): string {
  return OPERATIONS[op] ?? 'other';
}

/**
 * blk_status_t (include/linux/blk_types.h) as the `error` label: the
 * BLK_STS_ suffix in lower case, e.g. "ioerr" for BLK_STS_IOERR (-EIO),
 * "nospc" for BLK_STS_NOSPC. 1 to 13 have kept their numbers; Linux 6.10
 * renumbered those above when it removed BLK_STS_ZONE_RESOURCE, so older
 * kernels' statuses from 14 on are labelled by number.
 */
const STATUSES = ['ok', 'notsupp', 'timeout', 'nospc', 'transport', 'target', 'resv_conflict', 'medium', 'protection', 'resource', 'ioerr', 'dm_requeue', 'again', 'dev_resource'];
const STATUSES_SINCE_6_10: Record<number, string> = {
  14: 'zone_open_resource',
  15: 'zone_active_resource',
  16: 'offline',
  17: 'duration_limit',
  19: 'inval',
};

function kernelAtLeast(major: number, minor: number): boolean {
  const [kernelMajor, kernelMinor] = release().split('.').map(Number);
  return kernelMajor > major || (kernelMajor === major && kernelMinor >= minor);
}

const RENUMBERED = kernelAtLeast(6, 10);

export function statusName(status: number): string {
  return STATUSES[status] ?? (RENUMBERED ? STATUSES_SINCE_6_10[status] : undefined) ?? `status_${status}`;
}
