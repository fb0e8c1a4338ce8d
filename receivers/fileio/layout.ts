/** Map layouts from bpf/fileio.h, checked against the loaded object at start. */
import type { BpfObject } from '../../native/index.js';
import { HISTOGRAM_VALUE_SIZE } from '../common/latency-histogram.js';

export const COMM_LEN = 16;
export const FILESYSTEM_NAME_LEN = 32;
export const MAX_SYSCALL_NR = 512;

/** struct fileio_config: enabled, route, filters, aggregate, include_listed (u32 each). */
export const SETTINGS_SIZE = 20;
export const AGGREGATE = { cgroup: 1, pid: 2, comm: 4, mountpoint: 8 } as const;

/** struct fileio_key: cgroup_id u64, fs_type u64, pid, mnt_id, operation, padding (u32), comm[16]. */
export const KEY_SIZE = 48;
/** struct fileio_value: a struct latency_histogram, then bytes u64. */
export const VALUE_SIZE = HISTOGRAM_VALUE_SIZE + 8;
export const BYTES_OFFSET = HISTOGRAM_VALUE_SIZE;
/** struct filesystem: name[32], wanted u32, padding. */
export const FILESYSTEM_SIZE = FILESYSTEM_NAME_LEN + 8;
/** struct file_syscall: operation, source, flags_arg, padding (u8 each). */
export const FILE_SYSCALL_SIZE = 4;
/** Both banks of series and of recent series (bpf/counter_bank.h). */
export const SERIES_MAPS = ['series_0', 'series_1'] as const;
export const RECENT_MAPS = ['recent_0', 'recent_1'] as const;
/** struct fileio_recent: a fileio_key, used u64, then a struct fileio_value. */
export const RECENT_USED_OFFSET = KEY_SIZE;
export const RECENT_VALUE_OFFSET = KEY_SIZE + 8;
export const RECENT_SIZE = RECENT_VALUE_OFFSET + VALUE_SIZE;

/** enum file_operation, by value (0: not a file syscall). */
export const OPERATIONS = ['', 'read', 'write', 'open', 'fsync', 'fdatasync', 'close', 'stat'] as const;
/** enum file_source. */
const SOURCE = { fdArg: 0, result: 1, emptyPath: 2 } as const;

/**
 * The syscalls timed, by their names in the kernel's syscall metadata, with
 * the operation they count as and where their file comes from. Path-based
 * stats (newstat, newlstat, and newfstatat/statx with a path) are left out:
 * their filesystem is only known by walking the path.
 */
export const FILE_SYSCALLS: Record<string, { operation: (typeof OPERATIONS)[number]; source: number; flagsArg?: number }> = {
  read: { operation: 'read', source: SOURCE.fdArg },
  pread64: { operation: 'read', source: SOURCE.fdArg },
  readv: { operation: 'read', source: SOURCE.fdArg },
  preadv: { operation: 'read', source: SOURCE.fdArg },
  preadv2: { operation: 'read', source: SOURCE.fdArg },
  write: { operation: 'write', source: SOURCE.fdArg },
  pwrite64: { operation: 'write', source: SOURCE.fdArg },
  writev: { operation: 'write', source: SOURCE.fdArg },
  pwritev: { operation: 'write', source: SOURCE.fdArg },
  pwritev2: { operation: 'write', source: SOURCE.fdArg },
  open: { operation: 'open', source: SOURCE.result },
  openat: { operation: 'open', source: SOURCE.result },
  openat2: { operation: 'open', source: SOURCE.result },
  creat: { operation: 'open', source: SOURCE.result },
  fsync: { operation: 'fsync', source: SOURCE.fdArg },
  sync_file_range: { operation: 'fsync', source: SOURCE.fdArg },
  fdatasync: { operation: 'fdatasync', source: SOURCE.fdArg },
  close: { operation: 'close', source: SOURCE.fdArg },
  newfstat: { operation: 'stat', source: SOURCE.fdArg },
  // glibc's fstat: newfstatat(fd, "", buf, AT_EMPTY_PATH) and statx(fd, "", AT_EMPTY_PATH, ...).
  newfstatat: { operation: 'stat', source: SOURCE.emptyPath, flagsArg: 3 },
  statx: { operation: 'stat', source: SOURCE.emptyPath, flagsArg: 2 },
};

/** enum fileio_loss, as reasons for dropped-item telemetry. */
export const LOSS_REASONS = ['series_map_full', 'filesystem_map_full'];

export interface SeriesKey {
  cgroupId: bigint;
  fsType: bigint;
  pid: number;
  mntId: number;
  operation: number;
  comm: Buffer;
}

export function readSeriesKey(keys: Buffer, offset: number): SeriesKey {
  return {
    cgroupId: keys.readBigUInt64LE(offset),
    fsType: keys.readBigUInt64LE(offset + 8),
    pid: keys.readUInt32LE(offset + 16),
    mntId: keys.readUInt32LE(offset + 20),
    operation: keys.readUInt32LE(offset + 24),
    comm: keys.subarray(offset + 32, offset + 32 + COMM_LEN),
  };
}

/** struct file_syscall for one syscall. */
export function fileSyscallValue(name: string): Buffer {
  const value = Buffer.alloc(FILE_SYSCALL_SIZE);
  const call = FILE_SYSCALLS[name];
  value.writeUInt8(OPERATIONS.indexOf(call.operation), 0);
  value.writeUInt8(call.source, 1);
  value.writeUInt8(call.flagsArg ?? 0, 2);
  return value;
}

/** Fails at start, with what differs, if the object's maps do not have the layouts above. */
export function checkLayout(object: BpfObject): void {
  const expect = (map: string, keySize: number, valueSize: number) => {
    const info = object.mapInfo(map);
    if (info.keySize !== keySize || info.valueSize !== valueSize)
      throw new Error(`map "${map}" has ${info.keySize}-byte keys and ${info.valueSize}-byte values, expected ${keySize} and ${valueSize}: rebuild with \`make -C bpf\``);
  };
  for (const map of SERIES_MAPS) expect(map, KEY_SIZE, VALUE_SIZE);
  for (const map of RECENT_MAPS) {
    expect(map, 4, RECENT_SIZE);
    if (object.mapInfo(map).maxEntries !== OPERATIONS.length) throw new Error(`map "${map}" does not have ${OPERATIONS.length} entries: rebuild with \`make -C bpf\``);
  }
  expect('fileio_settings', 4, SETTINGS_SIZE);
  expect('file_syscalls', 4, FILE_SYSCALL_SIZE);
  expect('filesystems', 8, FILESYSTEM_SIZE);
  expect('filesystem_filter', FILESYSTEM_NAME_LEN, 1);
  if (object.mapInfo('file_syscalls').maxEntries !== MAX_SYSCALL_NR) throw new Error(`map "file_syscalls" does not have ${MAX_SYSCALL_NR} entries: rebuild with \`make -C bpf\``);
}
