/** Map layouts from bpf/tcp.h, checked against the loaded object at start. */
import type { BpfObject } from '../../native/index.js';
import { HISTOGRAM_VALUE_SIZE } from '../common/latency-histogram.js';
import { cString } from '../common/polling.js';
import { expectMapLayout } from '../common/map-layout.js';

export const COMM_LEN = 16;

/** struct tcp_series_key: daddr[16], cgroup_id u64, pid u32, family u16, padding u16, comm[16]. */
export const SERIES_KEY_SIZE = 48;
const CGROUP_OFFSET = 16;
const PID_OFFSET = 24;
const FAMILY_OFFSET = 28;
const COMM_OFFSET = 32;
/** struct tcp_count_key: a tcp_series_key, then kind u32 and error u32. */
export const COUNT_KEY_SIZE = SERIES_KEY_SIZE + 8;
export const COUNT_KIND_OFFSET = SERIES_KEY_SIZE;
export const COUNT_ERROR_OFFSET = SERIES_KEY_SIZE + 4;

/** enum tcp_count_kind. */
export const COUNT_KIND = { connectFailure: 0, retransmit: 1, resetReceived: 2 } as const;

/** struct tcp_config: filters u32 (receivers/common/process-filter.ts), aggregate u32 (receivers/common/task-labels.ts). */
export const SETTINGS_SIZE = 8;

/** enum tcp_loss, as reasons for dropped-item telemetry. */
export const LOSS_REASONS = ['duration_map_full', 'count_map_full', 'socket_storage_unavailable'];

const AF_INET = 2;
const AF_INET6 = 10;

export interface SeriesKey {
  dstIp: string;
  cgroupId: bigint;
  pid: number;
  comm: string;
}

export function readSeriesKey(keys: Buffer, offset: number): SeriesKey {
  return {
    dstIp: formatAddress(keys, offset, keys.readUInt16LE(offset + FAMILY_OFFSET)),
    cgroupId: keys.readBigUInt64LE(offset + CGROUP_OFFSET),
    pid: keys.readUInt32LE(offset + PID_OFFSET),
    comm: cString(keys, offset + COMM_OFFSET, COMM_LEN),
  };
}

/** An address as `ip` prints it: dotted IPv4, IPv4-mapped IPv6 as IPv4, other IPv6 with the longest zero run compressed. */
export function formatAddress(bytes: Buffer, offset: number, family: number): string {
  if (family === AF_INET) return ipv4(bytes, offset);
  if (family !== AF_INET6) return `[family ${family}]`;
  const isV4Mapped = bytes.subarray(offset, offset + 10).every((b) => b === 0) && bytes.readUInt16BE(offset + 10) === 0xffff;
  if (isV4Mapped) return ipv4(bytes, offset + 12);
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(offset + i * 2));
  let bestStart = -1;
  let bestLength = 1; // RFC 5952: a single zero group is not compressed
  for (let start = 0; start < 8; ) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) [bestStart, bestLength] = [start, end - start];
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function ipv4(bytes: Buffer, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** Fails at start, with what differs, if the object's maps do not have the layouts above. */
export function checkLayout(object: BpfObject): void {
  expectMapLayout(object, 'durations_0', SERIES_KEY_SIZE, HISTOGRAM_VALUE_SIZE);
  expectMapLayout(object, 'counts_0', COUNT_KEY_SIZE, 8);
  expectMapLayout(object, 'receiver_settings', 4, SETTINGS_SIZE);
  expectMapLayout(object, 'filter_comms', COMM_LEN, 1);
}
