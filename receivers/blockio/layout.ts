/** Map layouts from bpf/blockio.h, checked against the loaded object at start. */
import type { BpfObject } from '../../native/index.js';
import { HISTOGRAM_VALUE_SIZE } from '../common/latency-histogram.js';
import { cString } from '../common/polling.js';
import { expectMapLayout } from '../common/map-layout.js';

export const COMM_LEN = 16;
export const DISK_NAME_LEN = 32;

/** struct submitter: cgroup_id u64, pid u32, padding u32, comm[16]. */
export const SUBMITTER_SIZE = 32;
/** struct series_key: a submitter, then dev and operation (u32 each). */
export const SERIES_KEY_SIZE = SUBMITTER_SIZE + 8;
/** struct error_key: a series_key, then status u32 and padding. */
export const ERROR_KEY_SIZE = SERIES_KEY_SIZE + 8;
/** struct series_value: the duration and queue histograms, then bytes (u64). */
export const DURATION_OFFSET = 0;
export const QUEUE_OFFSET = HISTOGRAM_VALUE_SIZE;
export const BYTES_OFFSET = 2 * HISTOGRAM_VALUE_SIZE;
export const SERIES_VALUE_SIZE = BYTES_OFFSET + 8;
/** struct request_start: request, insert_ns, issue_ns, then a submitter. */
export const REQUEST_START_SIZE = 24 + SUBMITTER_SIZE;

/** struct blockio_config: aggregate u32 (receivers/common/task-labels.ts), padding. */
export const SETTINGS_SIZE = 8;

/** enum blockio_loss, as reasons for dropped-item telemetry. */
export const LOSS_REASONS = ['in_flight_map_full', 'series_map_full', 'error_map_full'];

export interface SeriesKey {
  cgroupId: bigint;
  pid: number;
  comm: string;
  dev: number;
  operation: number;
}

export function readSeriesKey(keys: Buffer, offset: number): SeriesKey {
  return {
    cgroupId: keys.readBigUInt64LE(offset),
    pid: keys.readUInt32LE(offset + 8),
    comm: cString(keys, offset + 16, COMM_LEN),
    dev: keys.readUInt32LE(offset + SUBMITTER_SIZE),
    operation: keys.readUInt32LE(offset + SUBMITTER_SIZE + 4),
  };
}

/** Fails at start, with what differs, if the object's maps do not have the layouts above. */
export function checkLayout(object: BpfObject): void {
  expectMapLayout(object, 'series_0', SERIES_KEY_SIZE, SERIES_VALUE_SIZE);
  expectMapLayout(object, 'errors_0', ERROR_KEY_SIZE, 8);
  expectMapLayout(object, 'in_flight', 4, REQUEST_START_SIZE);
  expectMapLayout(object, 'device_names', 4, DISK_NAME_LEN);
  expectMapLayout(object, 'receiver_settings', 4, SETTINGS_SIZE);
}
