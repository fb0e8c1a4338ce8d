/**
 * TLS handshake latency and failures, client and server side, from uprobes
 * on OpenSSL 3.0 (bpf/tls.bpf.c). The kernel follows each handshake and
 * aggregates by series; every interval the per-CPU maps are drained and
 * emitted as deltas, and processes are searched for OpenSSL binaries not yet
 * probed. Binaries whose OpenSSL version or code is not known are refused
 * and named in the status; the others keep being probed.
 */
import type { Consumer, CreateSettings } from '../../collector/component.js';
import type { Attributes } from '../../collector/data/metrics.js';
import { bpfObjectPath } from '../../collector/paths.js';
import { BpfObject, numPossibleCpus } from '../../native/index.js';
import { CounterSeries } from '../common/counter-series.js';
import { FirstValuesCap, OTHER_VALUE } from '../common/label-cap.js';
import { histogramCount, HistogramSeries, HISTOGRAM_VALUE_SIZE } from '../common/latency-histogram.js';
import { retireBank } from '../common/counter-banks.js';
import { reportLosses } from '../common/losses.js';
import { PollingBpfReceiver, sumPerCpuU64, u32 } from '../common/polling.js';
import { aggregateBits, TaskLabels } from '../common/task-labels.js';
import type { TlsConfig } from './config.js';
import { checkLayout, FAILURE_KEY_SIZE, LOSS_REASONS, readSeriesKey, reasonName, SERIES_KEY_SIZE, settingsValue, type SeriesKey } from './layout.js';
import { OpensslProbes } from './probes.js';

/** The server_name of handshakes past max_server_names distinct names. */
export const OTHER_SERVER_NAME = OTHER_VALUE;

export class TlsReceiver extends PollingBpfReceiver {
  private readonly next: Consumer<'metrics'>;
  private readonly probes: OpensslProbes;
  private readonly tasks: TaskLabels;
  /** server_name values admitted so far, up to max_server_names. */
  private readonly serverNames: FirstValuesCap;
  private loaded?: BpfObject;

  constructor(settings: CreateSettings, config: TlsConfig, next: Consumer<'metrics'>) {
    const status = new ProbeStatus(settings);
    super({ ...settings, status }, bpfObjectPath('tls'), config.collection_interval);
    this.next = next;
    this.tasks = new TaskLabels(config.aggregate_by);
    this.serverNames = new FirstValuesCap(config.max_server_names);
    const aggregate = aggregateBits(config.aggregate_by);
    this.probes = new OpensslProbes(config.binaries, config.discover_processes, {
      layout: (layout) => this.loaded!.update('tls_settings', u32(0), settingsValue(aggregate, layout)),
      refused: (name, why, unknownLayout) => {
        settings.logger.warn({ binary: name }, `not probing ${name}: ${why}`);
        if (unknownLayout) settings.telemetry.dropped('metrics', 1, 'unknown_tls_layout');
      },
      attached: (name, version) => settings.logger.info({ binary: name, version }, `probing OpenSSL ${version} in ${name}`),
    });
    status.probes = this.probes;
  }

  protected override attach(object: BpfObject): void {
    checkLayout(object);
    this.loaded = object;
    this.probes.scan(object);
    // After start() returns the collector reports `ok`; refusals found now must show at once, not one interval later.
    setImmediate(() => this.settings.status.report('ok'));
  }

  protected override async collect(object: BpfObject, startTimeMs: number, endTimeMs: number): Promise<void> {
    const { telemetry } = this.settings;
    this.probes.scan(object);
    const cpus = numPossibleCpus();
    const bank = await retireBank(object);
    const durations = bank.drainReportingFill(telemetry, 'durations');
    const failures = bank.drainReportingFill(telemetry, 'failures');
    reportLosses(bank, telemetry, LOSS_REASONS);

    const durationKeys = Array.from({ length: durations.count }, (_, i) => readSeriesKey(durations.keys, i * SERIES_KEY_SIZE));
    const failureKeys = Array.from({ length: failures.count }, (_, i) => readSeriesKey(failures.keys, i * FAILURE_KEY_SIZE));
    this.tasks.resolve([...durationKeys, ...failureKeys].map((key) => key.cgroupId));

    const histograms = new HistogramSeries();
    durationKeys.forEach((key, i) => histograms.add(this.labels(key, durations.values, i * cpus * HISTOGRAM_VALUE_SIZE, cpus), durations.values, i * cpus * HISTOGRAM_VALUE_SIZE, cpus));
    const failed = new CounterSeries();
    failureKeys.forEach((key, i) => {
      const value = Number(sumPerCpuU64(failures.values, i * cpus * 8, cpus));
      failed.add({ ...this.labels(key), reason: reasonName(failures.keys.readUInt32LE(i * FAILURE_KEY_SIZE + SERIES_KEY_SIZE)) }, value);
    });

    await this.next.consume({
      startTimeMs,
      endTimeMs,
      metrics: [
        {
          type: 'histogram',
          name: 'ebpf_tls_handshake_duration_seconds',
          description: 'Time from the first handshake call on an SSL object to the handshake finishing (or failing), by SNI server name and side.',
          temporality: 'delta',
          points: histograms.points(),
        },
        {
          type: 'sum',
          name: 'ebpf_tls_handshake_failures_total',
          description: "TLS handshakes that failed, by SNI server name, side and reason (OpenSSL's error, the refused certificate's verify error, or handshake_incomplete).",
          monotonic: true,
          temporality: 'delta',
          points: failed.points(),
        },
      ],
    });
  }

  /**
   * server_name (capped), side, pod, namespace, container; pid and comm when
   * aggregated by. With `values`, the handshakes a capped name folds are counted.
   */
  private labels(key: SeriesKey, values?: Buffer, offset = 0, cpus = 1): Attributes {
    return { server_name: this.admit(key.serverName, values, offset, cpus), side: key.side, ...this.tasks.of(key) };
  }

  /** The name itself while fewer than max_server_names are known, else "[other]" (its handshakes counted as dropped labels). */
  private admit(name: string, values: Buffer | undefined, offset: number, cpus: number): string {
    const admitted = this.serverNames.admit(name);
    if (admitted !== undefined) return admitted;
    if (values) this.settings.telemetry.dropped('metrics', histogramCount(values, offset, cpus), 'server_name_cap');
    return OTHER_SERVER_NAME;
  }
}

/** The receiver's status: refused binaries (or none found at all) turn `ok` into `recoverable_error` naming them. */
class ProbeStatus {
  probes?: OpensslProbes;
  constructor(private readonly settings: CreateSettings) {}

  report(status: Parameters<CreateSettings['status']['report']>[0], message?: string): void {
    const problem = status === 'ok' ? this.problem() : undefined;
    this.settings.status.report(problem ? 'recoverable_error' : status, problem ?? message);
  }

  private problem(): string | undefined {
    if (!this.probes) return undefined;
    const problems: string[] = [];
    if (this.probes.attachedFiles === 0) problems.push('no OpenSSL 3.0 library or binary found to probe yet');
    for (const [name, why] of this.probes.refusals) problems.push(`not probing ${name}: ${why}`);
    return problems.length ? problems.join('; ') : undefined;
  }
}
