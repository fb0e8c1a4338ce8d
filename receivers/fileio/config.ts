import { z } from 'zod';
import { duration } from '../../collector/config/types.js';
import { unique } from '../common/config.js';
import { processFilterFields } from '../common/process-filter.js';

/** Sizes from bpf/fileio.h. */
const MAX_FILESYSTEMS = 256;
const FILESYSTEM_NAME_LENGTH = 31;

/** Labels the kernel may aggregate by, besides filesystem and operation; `cgroup` becomes `pod`, `namespace` and `container`. */
export const AGGREGATE_LABELS = ['cgroup', 'pid', 'comm', 'mountpoint'] as const;
export type AggregateLabel = (typeof AGGREGATE_LABELS)[number];

/**
 * Filesystems that are not storage: sockets, pipes, anonymous inodes (eventfd,
 * epoll, timerfd...), pidfds, device nodes (/dev/zero, /dev/null, ttys),
 * namespaces, and the kernel's virtual filesystems.
 */
export const DEFAULT_EXCLUDED_FILESYSTEMS = [
  'anon_inodefs', 'autofs', 'bdev', 'binfmt_misc', 'bpf', 'cgroup', 'cgroup2', 'configfs', 'debugfs', 'devpts', 'devtmpfs',
  'dmabuf', 'efivarfs', 'fusectl', 'hugetlbfs', 'mqueue', 'nsfs', 'pidfs', 'pipefs', 'proc', 'pstore', 'rpc_pipefs',
  'secretmem', 'securityfs', 'selinuxfs', 'sockfs', 'sysfs', 'tracefs',
];

const filesystemNames = z
  .array(
    z
      .string()
      .regex(/^[a-z0-9_.-]+$/, 'expected a filesystem type name as in /proc/filesystems, e.g. "ext4"')
      .max(FILESYSTEM_NAME_LENGTH),
  )
  .max(MAX_FILESYSTEMS)
  .superRefine(unique);

/**
 * File syscalls as the application sees them, by filesystem type and
 * operation. Each filter list that is not empty must match for a call to be
 * recorded.
 */
export const fileioConfigSchema = z
  .object({
    /** How often the kernel's aggregates are read and emitted. */
    collection_interval: duration(100, 3_600_000).default('10s'),
    /** Only file syscalls of these pids, comms and cgroups (e.g. "/system.slice/nginx.service", descendants included). */
    ...processFilterFields,
    /**
     * Which filesystem types count, by name: `include` (only these) or `exclude` (all but these; by default the
     * filesystems that are not storage). Decided in the kernel, before a call is timed.
     */
    filesystems: z
      .object({ include: filesystemNames.optional(), exclude: filesystemNames.optional() })
      .strict()
      .refine((lists) => !(lists.include && lists.exclude), { message: 'give either include or exclude, not both' })
      .default({}),
    /** What the kernel keeps series apart by, besides filesystem and operation. pid, comm and mountpoint multiply the series. */
    aggregate_by: z.array(z.enum(AGGREGATE_LABELS)).default(['cgroup']).superRefine(unique),
  })
  .strict();

export type FileioConfig = z.output<typeof fileioConfigSchema>;
