/** The recording rules the metrics contract names, which the rule files and the dashboard must both use. */
export const CONTRACT_RECORDING_RULES = [
  'cpu:hot_functions:rate5m',
  'memory:allocation_hotspots:rate5m',
  'syscall:latency:p50',
  'syscall:latency:p95',
  'syscall:latency:p99',
  'syscall:error_rate',
  'network:connection_latency:p95',
  'dns:query_latency:p99',
  'tls:handshake_latency:p95',
  'io:latency:p99',
];
