/** Map layouts from bpf/tls.h, checked against the loaded object at start. */
import type { BpfObject } from '../../native/index.js';
import { HISTOGRAM_VALUE_SIZE } from '../common/latency-histogram.js';
import { cString } from '../common/polling.js';
import type { OpensslLayout } from './openssl-layout.js';
import { SSL_REASON_NAMES, X509_VERIFY_NAMES } from './reason-names.js';
import { expectMapLayout } from '../common/map-layout.js';

const COMM_LEN = 16;
const SERVER_NAME_LEN = 256;

/** struct series_key: cgroup_id u64, pid u32, side u32, comm, server_name. */
export const SERIES_KEY_SIZE = 16 + COMM_LEN + SERVER_NAME_LEN;
/** struct failure_key: a series_key, then reason u32 and padding. */
export const FAILURE_KEY_SIZE = SERIES_KEY_SIZE + 8;
/** struct handshake: a series_key, start_ns, duration_ns, verify_result, phase u32, padding. */
const HANDSHAKE_SIZE = SERIES_KEY_SIZE + 32;
/** struct ssl_key: ssl u64, tgid u32, padding. */
const SSL_KEY_SIZE = 16;
/** struct tls_config: aggregate (receivers/common/task-labels.ts), then the offsets of OpensslLayout (u32 each). */
export const SETTINGS_SIZE = 24;

const SIDES = ['client', 'server'] as const;

/** enum tls_loss, as reasons for dropped-item telemetry. */
export const LOSS_REASONS = ['handshake_map_full', 'duration_map_full', 'failure_map_full'];

export interface SeriesKey {
  cgroupId: bigint;
  pid: number;
  side: string;
  comm: string;
  serverName: string;
}

export function readSeriesKey(keys: Buffer, offset: number): SeriesKey {
  return {
    cgroupId: keys.readBigUInt64LE(offset),
    pid: keys.readUInt32LE(offset + 8),
    side: SIDES[keys.readUInt32LE(offset + 12)] ?? 'unknown',
    comm: cString(keys, offset + 16, COMM_LEN),
    // Invalid UTF-8 (the kernel copies whatever the application passed) becomes U+FFFD: label values stay valid.
    serverName: cString(keys, offset + 16 + COMM_LEN, SERVER_NAME_LEN),
  };
}

/** enum tls_reason_class: the top byte of a failure reason. */
const REASON_CLASS_SHIFT = 24;
const REASON_CODE_MASK = 0xffffff;
/** SSL_AD_REASON_OFFSET: a received alert's reason is this plus the alert number. */
const ALERT_REASON_OFFSET = 1000;

/** The `reason` label of a failure_key's reason. */
export function reasonName(reason: number): string {
  const code = reason & REASON_CODE_MASK;
  switch (reason >>> REASON_CLASS_SHIFT) {
    case 0:
      return SSL_REASON_NAMES.get(code) ?? (code >= ALERT_REASON_OFFSET && code < ALERT_REASON_OFFSET + 256 ? `alert_${code - ALERT_REASON_OFFSET}` : `ssl_error_${code}`);
    case 1:
      return X509_VERIFY_NAMES.get(code) ?? `x509_error_${code}`;
    case 2:
      return 'handshake_incomplete';
    default:
      return 'unknown';
  }
}

/** struct tls_config. */
export function settingsValue(aggregate: number, layout: OpensslLayout): Buffer {
  const value = Buffer.alloc(SETTINGS_SIZE);
  value.writeUInt32LE(aggregate, 0);
  value.writeUInt32LE(layout.handState, 4);
  value.writeUInt32LE(layout.inInit, 8);
  value.writeUInt32LE(layout.flowState, 12);
  value.writeUInt32LE(layout.server, 16);
  value.writeUInt32LE(layout.verifyResult, 20);
  return value;
}

/** Fails at start, with what differs, if the object's maps do not have the layouts above. */
export function checkLayout(object: BpfObject): void {
  expectMapLayout(object, 'tls_settings', 4, SETTINGS_SIZE);
  expectMapLayout(object, 'handshakes', SSL_KEY_SIZE, HANDSHAKE_SIZE);
  expectMapLayout(object, 'durations_0', SERIES_KEY_SIZE, HISTOGRAM_VALUE_SIZE);
  expectMapLayout(object, 'failures_0', FAILURE_KEY_SIZE, 8);
}
