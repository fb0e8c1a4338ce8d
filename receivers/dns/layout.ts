/** Map layouts from bpf/dns.h, checked against the loaded object at start. */
import type { BpfObject } from '../../native/index.js';
import { HISTOGRAM_VALUE_SIZE } from '../common/latency-histogram.js';
import { expectMapLayout } from '../common/map-layout.js';

export const COMM_LEN = 16;
export const NAME_LEN = 256;

/** struct dns_series: cgroup_id u64, pid u32, padding, comm[16], name[256]. */
export const SERIES = { cgroupId: 0, pid: 8, comm: 16, name: 32, size: 288 } as const;
/** struct dns_failure_key: a dns_series, reason u32, padding. */
export const FAILURE_KEY = { reason: SERIES.size, size: SERIES.size + 8 } as const;
/** struct dns_flow: client[16], server[16], netns u32, client_port u16, id u16. */
export const FLOW_SIZE = 40;
/** struct dns_query: a dns_series, start_ns u64, resolver_tid u32, padding. */
export const QUERY = { startNs: SERIES.size, resolverTid: SERIES.size + 8, size: SERIES.size + 16 } as const;
/** struct resolver_call: start_ns u64, sent, answered, rcode, padding (u32), name[256]. */
export const RESOLVER_CALL = { startNs: 0, size: 24 + NAME_LEN } as const;
/** struct dns_config: port u16 (network order), padding u16, aggregate u32 (receivers/common/task-labels.ts). */
export const SETTINGS_SIZE = 8;

/** dns_failure_key.reason beyond rcodes. */
export const REASON_TIMEOUT = 0x10000;
export const REASON_EAI = 0x20000;

/** enum dns_loss, as reasons for dropped-item telemetry. */
export const LOSS_REASONS = [
  'malformed_packet',
  'packet_not_linear',
  'in_flight_map_full',
  'histogram_map_full',
  'failure_map_full',
  'resolver_call_map_full',
] as const;

/** Fails at start, with what differs, if the object's maps do not have the layouts above. */
export function checkLayout(object: BpfObject): void {
  expectMapLayout(object, 'receiver_settings', 4, SETTINGS_SIZE);
  expectMapLayout(object, 'in_flight', FLOW_SIZE, QUERY.size);
  expectMapLayout(object, 'histograms_0', SERIES.size, HISTOGRAM_VALUE_SIZE);
  expectMapLayout(object, 'failures_0', FAILURE_KEY.size, 8);
  expectMapLayout(object, 'resolver_calls', 4, RESOLVER_CALL.size);
  expectMapLayout(object, 'losses_0', 4, 8);
  if (object.mapInfo('losses_0').maxEntries !== LOSS_REASONS.length) throw new Error('map "losses_0" does not have one entry per loss reason: rebuild with `make -C bpf`');
}
