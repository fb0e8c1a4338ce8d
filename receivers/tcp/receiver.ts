/**
 * TCP connect latency, failed connects by errno, retransmits and resets
 * received, by destination IP (bpf/tcp.bpf.c). The kernel filters and
 * aggregates; every interval the per-CPU maps are drained and emitted as deltas.
 */
import type { Consumer, CreateSettings } from '../../collector/component.js';
import type { Attributes, NumberPoint } from '../../collector/data/metrics.js';
import { attributesKey } from '../../collector/data/metrics.js';
import { bpfObjectPath } from '../../collector/paths.js';
import { cgroupId } from '../../collector/cgroups.js';
import { BpfObject, numPossibleCpus } from '../../native/index.js';
import { PollingBpfReceiver, sumPerCpuU64 } from '../common/polling.js';
import { HistogramSeries, HISTOGRAM_SLOTS, HISTOGRAM_VALUE_SIZE } from '../common/latency-histogram.js';
import { WorkloadLabels } from '../common/workload-labels.js';
import { errnoName } from '../syscalls/errno-names.js';
import type { TcpConfig } from './config.js';
import {
  AGGREGATE,
  checkLayout,
  COMM_LEN,
  COUNT_ERROR_OFFSET,
  COUNT_KEY_SIZE,
  COUNT_KIND,
  COUNT_KIND_OFFSET,
  FILTER,
  LOSS_REASONS,
  readSeriesKey,
  SERIES_KEY_SIZE,
  SETTINGS_SIZE,
  type SeriesKey,
} from './layout.js';

/** The dst_ip of everything past max_destinations. */
export const OTHER_DESTINATIONS = '[other]';

export class TcpReceiver extends PollingBpfReceiver {
  private readonly workloads = new WorkloadLabels();
  /** dst_ip values that have their own series, at most max_destinations. */
  private readonly destinations = new Set<string>();

  constructor(settings: CreateSettings, private readonly config: TcpConfig, private readonly next: Consumer<'metrics'>) {
    super(settings, bpfObjectPath('tcp'), config.collection_interval);
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
    const { pids, comms, cgroups, aggregate_by } = this.config;
    const present = Buffer.from([1]);
    for (const pid of pids) object.update('filter_pids', u32(pid), present);
    for (const comm of comms) {
      const key = Buffer.alloc(COMM_LEN);
      key.write(comm, 'utf8');
      object.update('filter_comms', key, present);
    }
    for (const path of cgroups) {
      const key = Buffer.alloc(8);
      key.writeBigUInt64LE(cgroupId(path));
      object.update('filter_cgroups', key, present);
    }
    const settings = Buffer.alloc(SETTINGS_SIZE);
    settings.writeUInt32LE((pids.length ? FILTER.pids : 0) | (comms.length ? FILTER.comms : 0) | (cgroups.length ? FILTER.cgroups : 0), 0);
    settings.writeUInt32LE(aggregate_by.reduce((bits, label) => bits | AGGREGATE[label], 0), 4);
    object.update('receiver_settings', u32(0), settings);
  }

  protected override async collect(object: BpfObject, startTimeMs: number, endTimeMs: number): Promise<void> {
    const { telemetry } = this.settings;
    const cpus = numPossibleCpus();
    const durationEntries = object.drain('durations');
    const countEntries = object.drain('counts');
    telemetry.mapFill('durations', durationEntries.count, object.mapInfo('durations').maxEntries);
    telemetry.mapFill('counts', countEntries.count, object.mapInfo('counts').maxEntries);
    this.countLosses(object, cpus);

    const durationKeys = Array.from({ length: durationEntries.count }, (_, i) => readSeriesKey(durationEntries.keys, i * SERIES_KEY_SIZE));
    const countKeys = Array.from({ length: countEntries.count }, (_, i) => readSeriesKey(countEntries.keys, i * COUNT_KEY_SIZE));
    this.workloads.resolve([...durationKeys, ...countKeys].map((key) => key.cgroupId));

    let folded = 0;
    const durations = new HistogramSeries();
    durationKeys.forEach((key, i) => {
      const offset = i * cpus * HISTOGRAM_VALUE_SIZE;
      const attributes = this.labels(key);
      if (attributes.dst_ip === OTHER_DESTINATIONS) folded += connectsIn(durationEntries.values, offset, cpus);
      durations.add(attributes, durationEntries.values, offset, cpus);
    });

    const counters = { [COUNT_KIND.connectFailure]: new Map<string, NumberPoint>(), [COUNT_KIND.retransmit]: new Map(), [COUNT_KIND.resetReceived]: new Map() };
    countKeys.forEach((key, i) => {
      const offset = i * COUNT_KEY_SIZE;
      const kind = countEntries.keys.readUInt32LE(offset + COUNT_KIND_OFFSET) as (typeof COUNT_KIND)[keyof typeof COUNT_KIND];
      const points = counters[kind];
      if (!points) return;
      const attributes = this.labels(key);
      if (kind === COUNT_KIND.connectFailure) attributes.error = errnoName(countEntries.keys.readUInt32LE(offset + COUNT_ERROR_OFFSET));
      const value = Number(sumPerCpuU64(countEntries.values, i * cpus * 8, cpus));
      if (attributes.dst_ip === OTHER_DESTINATIONS) folded += value;
      const point = points.get(attributesKey(attributes));
      if (point) point.value += value;
      else points.set(attributesKey(attributes), { attributes, value });
    });
    if (folded > 0) telemetry.dropped('metrics', folded, 'destination_cap');

    const counter = (name: string, description: string, kind: keyof typeof counters) => ({
      type: 'sum' as const,
      name,
      description,
      monotonic: true,
      temporality: 'delta' as const,
      points: [...counters[kind].values()],
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
    const attributes: Attributes = { dst_ip: this.destination(key.dstIp), ...this.workloads.of(key.cgroupId) };
    const { aggregate_by } = this.config;
    if (aggregate_by.includes('pid')) attributes.pid = String(key.pid);
    if (aggregate_by.includes('comm')) attributes.comm = key.comm;
    return attributes;
  }

  private destination(ip: string): string {
    if (this.destinations.has(ip)) return ip;
    if (this.destinations.size >= this.config.max_destinations) return OTHER_DESTINATIONS;
    this.destinations.add(ip);
    return ip;
  }

  /** Events the kernel could not record, as dropped items by reason. */
  private countLosses(object: BpfObject, cpus: number): void {
    const losses = object.drain('losses');
    for (let i = 0; i < losses.count; i++) {
      const lost = Number(sumPerCpuU64(losses.values, i * cpus * 8, cpus));
      if (lost > 0) this.settings.telemetry.dropped('metrics', lost, LOSS_REASONS[losses.keys.readUInt32LE(i * 4)]);
    }
  }
}

/** Connects recorded in one per-CPU histogram entry: each is in exactly one slot. */
function connectsIn(values: Buffer, offset: number, cpus: number): number {
  let total = 0;
  for (let cpu = 0; cpu < cpus; cpu++)
    for (let slot = 0; slot < HISTOGRAM_SLOTS; slot++) total += Number(values.readBigUInt64LE(offset + cpu * HISTOGRAM_VALUE_SIZE + slot * 8));
  return total;
}

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value);
  return buffer;
}
