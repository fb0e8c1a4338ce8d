/**
 * TCP connect latency, failed connects by errno, retransmits and resets
 * received, by destination IP (bpf/tcp.bpf.c). The kernel filters and
 * aggregates; every interval the per-CPU maps are drained and emitted as deltas.
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
import { writeProcessFilters } from '../common/process-filter.js';
import { aggregateBits, TaskLabels } from '../common/task-labels.js';
import { errnoName } from '../syscalls/errno-names.js';
import type { TcpConfig } from './config.js';
import {
  checkLayout,
  COUNT_ERROR_OFFSET,
  COUNT_KEY_SIZE,
  COUNT_KIND,
  COUNT_KIND_OFFSET,
  LOSS_REASONS,
  readSeriesKey,
  SERIES_KEY_SIZE,
  SETTINGS_SIZE,
  type SeriesKey,
} from './layout.js';

/** The dst_ip of everything past max_destinations. */
export const OTHER_DESTINATIONS = OTHER_VALUE;

export class TcpReceiver extends PollingBpfReceiver {
  private readonly tasks: TaskLabels;
  /** dst_ip values that have their own series, at most max_destinations. */
  private readonly destinations: FirstValuesCap;

  constructor(settings: CreateSettings, private readonly config: TcpConfig, private readonly next: Consumer<'metrics'>) {
    super(settings, bpfObjectPath('tcp'), config.collection_interval);
    this.tasks = new TaskLabels(config.aggregate_by);
    this.destinations = new FirstValuesCap(config.max_destinations);
  }

  protected override attach(object: BpfObject): void {
    checkLayout(object);
    this.writeSettings(object);
    object.attach('tcp_state_change', { kind: 'auto' });
    object.attach('tcp_retransmit', { kind: 'auto' });
    object.attach('tcp_reset_received', { kind: 'auto' });
    object.attach('connect_exit', { kind: 'auto' });
  }

  /** Filters and aggregation go into the kernel's maps before anything is attached. */
  private writeSettings(object: BpfObject): void {
    const settings = Buffer.alloc(SETTINGS_SIZE);
    settings.writeUInt32LE(writeProcessFilters(object, this.config), 0);
    settings.writeUInt32LE(aggregateBits(this.config.aggregate_by), 4);
    object.update('receiver_settings', u32(0), settings);
  }

  protected override async collect(object: BpfObject, startTimeMs: number, endTimeMs: number): Promise<void> {
    const { telemetry } = this.settings;
    const cpus = numPossibleCpus();
    const bank = await retireBank(object);
    const durationEntries = bank.drainReportingFill(telemetry, 'durations');
    const countEntries = bank.drainReportingFill(telemetry, 'counts');
    reportLosses(bank, telemetry, LOSS_REASONS);

    const durationKeys = Array.from({ length: durationEntries.count }, (_, i) => readSeriesKey(durationEntries.keys, i * SERIES_KEY_SIZE));
    const countKeys = Array.from({ length: countEntries.count }, (_, i) => readSeriesKey(countEntries.keys, i * COUNT_KEY_SIZE));
    this.tasks.resolve([...durationKeys, ...countKeys].map((key) => key.cgroupId));

    let folded = 0;
    const durations = new HistogramSeries();
    durationKeys.forEach((key, i) => {
      const offset = i * cpus * HISTOGRAM_VALUE_SIZE;
      const attributes = this.labels(key);
      if (attributes.dst_ip === OTHER_DESTINATIONS) folded += histogramCount(durationEntries.values, offset, cpus);
      durations.add(attributes, durationEntries.values, offset, cpus);
    });

    const counters = { [COUNT_KIND.connectFailure]: new CounterSeries(), [COUNT_KIND.retransmit]: new CounterSeries(), [COUNT_KIND.resetReceived]: new CounterSeries() };
    countKeys.forEach((key, i) => {
      const offset = i * COUNT_KEY_SIZE;
      const kind = countEntries.keys.readUInt32LE(offset + COUNT_KIND_OFFSET) as (typeof COUNT_KIND)[keyof typeof COUNT_KIND];
      const points = counters[kind];
      if (!points) return;
      const attributes = this.labels(key);
      if (kind === COUNT_KIND.connectFailure) attributes.error = errnoName(countEntries.keys.readUInt32LE(offset + COUNT_ERROR_OFFSET));
      const value = Number(sumPerCpuU64(countEntries.values, i * cpus * 8, cpus));
      if (attributes.dst_ip === OTHER_DESTINATIONS) folded += value;
      points.add(attributes, value);
    });
    if (folded > 0) telemetry.dropped('metrics', folded, 'destination_cap');

    const counter = (name: string, description: string, kind: keyof typeof counters) => ({
      type: 'sum' as const,
      name,
      description,
      monotonic: true,
      temporality: 'delta' as const,
      points: counters[kind].points(),
    });
    await this.next.consume({
      startTimeMs,
      endTimeMs,
      metrics: [
        {
          type: 'histogram',
          name: 'ebpf_network_connect_duration_seconds',
          description: 'Time from a TCP connect sending its SYN (SYN_SENT) to ESTABLISHED, by destination IP.',
          temporality: 'delta',
          points: durations.points(),
        },
        counter(
          'ebpf_network_connect_failures_total',
          'TCP connects that failed, by destination IP and errno name: after SYN_SENT from the socket error, before it from connect()\'s return.',
          COUNT_KIND.connectFailure,
        ),
        counter('ebpf_network_tcp_retransmits_total', 'TCP segments retransmitted, by destination IP.', COUNT_KIND.retransmit),
        counter('ebpf_network_tcp_resets_received_total', 'TCP resets received, by destination IP.', COUNT_KIND.resetReceived),
      ],
    });
  }

  /** dst_ip (within max_destinations), pod, namespace and container; pid and comm when the kernel aggregates by them. */
  private labels(key: SeriesKey): Attributes {
    return { dst_ip: this.destinations.admit(key.dstIp) ?? OTHER_DESTINATIONS, ...this.tasks.of(key) };
  }
}
