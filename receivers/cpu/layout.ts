/** The kernel side's data layouts (bpf/cpu.h), encoded and decoded. */
import type { MapEntries } from '../../native/index.js';
import { cString, uint32Words } from '../common/polling.js';

export const COMM_LEN = 16;
export const MAX_STACK_DEPTH = 127;
export const NO_STACK = -1;

/** enum cpu_loss, in order: why samples were not recorded. */
export const LOSS_REASONS = ['stack_collision', 'stack_map_full', 'stack_walk_failed', 'stack_error', 'counts_map_full'] as const;

/** struct sample_key: pid, user_stack_id, kernel_stack_id, comm. */
export const SAMPLE_KEY_SIZE = 4 + 4 + 4 + COMM_LEN;

export interface SampleKey {
  pid: number;
  userStackId: number;
  kernelStackId: number;
  comm: string;
}

/** The index-th key of a drained sample_counts map; `words` is uint32Words(keys). */
export function decodeSampleKey(keys: Buffer, words: Uint32Array, index: number): SampleKey {
  const offset = index * SAMPLE_KEY_SIZE;
  const word = offset / 4;
  return {
    pid: words[word],
    userStackId: words[word + 1] | 0,
    kernelStackId: words[word + 2] | 0,
    comm: cString(keys, offset + 12, COMM_LEN),
  };
}

/** The stack ids the drained counts refer to, packed as stack map keys (u32), duplicates included. */
export function referencedStackIds(counts: MapEntries): Buffer {
  const keyWords = uint32Words(counts.keys);
  const stride = SAMPLE_KEY_SIZE / 4;
  const noStack = NO_STACK >>> 0;
  const ids = new Uint32Array(counts.count * 2);
  let n = 0;
  for (let i = 0; i < counts.count; i++) {
    // Words 1 and 2 of struct sample_key: user_stack_id, kernel_stack_id.
    const user = keyWords[i * stride + 1];
    const kernel = keyWords[i * stride + 2];
    if (user !== noStack) ids[n++] = user;
    if (kernel !== noStack) ids[n++] = kernel;
  }
  return Buffer.from(ids.buffer, 0, n * 4);
}

export interface ControlSettings {
  filterPids: boolean;
  filterCgroups: boolean;
  /** Exact command name, or a prefix ending in "*"; undefined for any. */
  comm?: string;
}

/** struct control: filter_pids u8, filter_cgroups u8, comm_match_len u8, padding u8, comm[16]. */
export function encodeControl(settings: ControlSettings): Buffer {
  const value = Buffer.alloc(4 + COMM_LEN);
  value.writeUInt8(settings.filterPids ? 1 : 0, 0);
  value.writeUInt8(settings.filterCgroups ? 1 : 0, 1);
  if (settings.comm !== undefined) {
    const prefix = settings.comm.endsWith('*');
    const name = Buffer.from(prefix ? settings.comm.slice(0, -1) : settings.comm, 'utf8');
    name.copy(value, 4);
    // An exact name is compared with its NUL terminator, so that "sh" does not match "sshd".
    value.writeUInt8(prefix ? name.length : name.length + 1, 2);
  }
  return value;
}

export function u32Key(value: number): Buffer {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(value);
  return key;
}

export function u64Key(value: bigint): Buffer {
  const key = Buffer.alloc(8);
  key.writeBigUInt64LE(value);
  return key;
}
