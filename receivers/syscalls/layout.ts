/** Map layouts from bpf/syscalls.h, checked against the loaded object at start. */
import type { BpfObject } from '../../native/index.js';
import { HISTOGRAM_VALUE_SIZE } from '../common/latency-histogram.js';

/** struct syscall_key: cgroup_id u64, pid, tid, uid, nr u32. */
export const SYSCALL_KEY_SIZE = 24;
/** struct error_key: a syscall_key, then errno u32 and padding. */
export const ERROR_KEY_SIZE = SYSCALL_KEY_SIZE + 8;

/** struct recent_series: a syscall_key, used u64, then a struct latency_histogram. */
export const RECENT_USED_OFFSET = SYSCALL_KEY_SIZE;
export const RECENT_HISTOGRAM_OFFSET = SYSCALL_KEY_SIZE + 8;
export const RECENT_SERIES_SIZE = RECENT_HISTOGRAM_OFFSET + HISTOGRAM_VALUE_SIZE;
export const RECENT_SYSCALL_NR = 512;

/** enum syscall_probe_bank_group (bpf/syscall_probe.h): each part's counter bank group. */
export const BANK_GROUP = { syscalls: 0, fileio: 1 } as const;

/** struct syscalls_config: filters u32, aggregate u32, enabled u32. */
export const SETTINGS_SIZE = 12;
export const AGGREGATE = { cgroup: 1, pid: 2, tid: 4, uid: 8 } as const;

/** enum syscalls_loss, as reasons for dropped-item telemetry. */
export const LOSS_REASONS = ['histogram_map_full', 'error_map_full', 'task_storage_unavailable'];

/** struct names_request: tgid, fd, state, found (u32 each). */
export const NAMES_REQUEST_SIZE = 16;
export const NAMES_STATE = { pending: 1, done: 2, notASyscallEvent: 3 } as const;
export const SYSCALL_NAME_LEN = 64;

export interface SyscallKey {
  cgroupId: bigint;
  pid: number;
  tid: number;
  uid: number;
  nr: number;
}

export function readSyscallKey(keys: Buffer, offset: number): SyscallKey {
  return {
    cgroupId: keys.readBigUInt64LE(offset),
    pid: keys.readUInt32LE(offset + 8),
    tid: keys.readUInt32LE(offset + 12),
    uid: keys.readUInt32LE(offset + 16),
    nr: keys.readUInt32LE(offset + 20),
  };
}

/** Fails at start, with what differs, if the object's maps do not have the layouts above. */
export function checkLayout(object: BpfObject): void {
  const expect = (map: string, keySize: number, valueSize: number) => {
    const info = object.mapInfo(map);
    if (info.keySize !== keySize || info.valueSize !== valueSize)
      throw new Error(`map "${map}" has ${info.keySize}-byte keys and ${info.valueSize}-byte values, expected ${keySize} and ${valueSize}: rebuild with \`make -C bpf\``);
  };
  expect('histograms_0', SYSCALL_KEY_SIZE, HISTOGRAM_VALUE_SIZE);
  expect('errors_0', ERROR_KEY_SIZE, 8);
  expect('recent_series_0', 4, RECENT_SERIES_SIZE);
  if (object.mapInfo('recent_series_0').maxEntries !== RECENT_SYSCALL_NR) throw new Error(`map "recent_series_0" does not have ${RECENT_SYSCALL_NR} entries: rebuild with \`make -C bpf\``);
  expect('receiver_settings', 4, SETTINGS_SIZE);
  expect('names_request', 4, NAMES_REQUEST_SIZE);
  expect('syscall_names', 4, SYSCALL_NAME_LEN);
}
