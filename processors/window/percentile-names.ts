/**
 * The name of a histogram's per-window percentile gauge:
 * `ebpf_syscall_duration_seconds` at 99 → `ebpf_syscall_duration_window_p99_seconds`,
 * at 99.9 → `..._window_p99_9_seconds`.
 *
 * One gauge per percentile rather than one gauge with a percentile label:
 * Prometheus reserves the `quantile` label for summaries (`promtool check
 * metrics` flags it on a gauge), a separate name cannot clash with the
 * histogram's own labels, and each name reads like the recording rules it
 * stands beside (`syscall:latency:p99`). The unit suffix stays last, as
 * Prometheus naming wants.
 */
const BASE_UNITS = ['seconds', 'bytes', 'meters', 'grams', 'joules', 'volts', 'amperes', 'celsius', 'ratio'];

export function percentileGaugeName(histogramName: string, percentile: number): string {
  const label = `p${String(percentile).replace('.', '_')}`;
  const unit = BASE_UNITS.find((u) => histogramName.endsWith(`_${u}`));
  if (!unit) return `${histogramName}_window_${label}`;
  return `${histogramName.slice(0, -unit.length - 1)}_window_${label}_${unit}`;
}
