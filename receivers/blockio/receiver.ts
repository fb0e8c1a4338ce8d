/**
 * Block-layer requests by disk and operation from the block_rq_* tracepoints
 * (bpf/blockio.bpf.c): latency and queue-time histograms, operations, bytes
 * and errors, attributed to the submitting task's cgroup. The kernel
 * aggregates in per-CPU maps; every interval they are drained and emitted as
 * deltas.
 */
import type { Consumer, CreateSettings } from '../../collector/component.js';
import type { Attributes } from '../../collector/data/metrics.js';
import { bpfObjectPath } from '../../collector/paths.js';
import { BpfObject, numPossibleCpus } from '../../native/index.js';
import { CounterSeries } from '../common/counter-series.js';
import { histogramCount, HistogramSeries } from '../common/latency-histogram.js';
import { retireBank } from '../common/counter-banks.js';
import { reportLosses } from '../common/losses.js';
import { cString, PollingBpfReceiver, sumPerCpuU64 } from '../common/polling.js';
import { aggregateBits, TaskLabels } from '../common/task-labels.js';
import type { BlockioConfig } from './config.js';
import {
  BYTES_OFFSET,
  checkLayout,
  DISK_NAME_LEN,
  DURATION_OFFSET,
  ERROR_KEY_SIZE,
  LOSS_REASONS,
  QUEUE_OFFSET,
  readSeriesKey,
  REQUEST_START_SIZE,
  SERIES_KEY_SIZE,
  SERIES_VALUE_SIZE,
  SETTINGS_SIZE,
  type SeriesKey,
} from './layout.js';
import { operationName, statusName } from './names.js';

/** include/linux/kdev_t.h: the kernel's dev_t is major << 20 | minor. */
const MINOR_BITS = 20;

export class BlockioReceiver extends PollingBpfReceiver {
  private readonly tasks: TaskLabels;
  /** Disk names by dev_t, as the kernel last reported them. */
  private readonly deviceNames = new Map<number, string>();
  private readonly devices: Set<string>;

  constructor(settings: CreateSettings, private readonly config: BlockioConfig, private readonly next: Consumer<'metrics'>) {
    super(settings, bpfObjectPath('blockio'), config.collection_interval);
    this.devices = new Set(config.devices);
    this.tasks = new TaskLabels(config.aggregate_by);
  }

  protected override attach(object: BpfObject): void {
    checkLayout(object);
    const settings = Buffer.alloc(SETTINGS_SIZE);
    settings.writeUInt32LE(aggregateBits(this.config.aggregate_by), 0);
    object.update('receiver_settings', Buffer.alloc(4), settings);
    // Completion first, then the events that make in-flight entries, so that none is stranded.
    object.attach('block_rq_complete', { kind: 'auto' });
    object.attach('block_rq_merge', { kind: 'auto' });
    object.attach('block_rq_issue', { kind: 'auto' });
    object.attach('block_rq_insert', { kind: 'auto' });
    object.attach('block_io_start', { kind: 'auto' });
  }

  protected override async collect(object: BpfObject, startTimeMs: number, endTimeMs: number): Promise<void> {
    const { telemetry } = this.settings;
    const cpus = numPossibleCpus();
    const bank = await retireBank(object);
    const series = bank.drainReportingFill(telemetry, 'series');
    const errors = bank.drainReportingFill(telemetry, 'errors');
    // After the series: a series' name is written before the series is, so every series drained has its name.
    this.readDeviceNames(object);
    telemetry.mapFill('in_flight', this.slotsTaken(object), object.mapInfo('in_flight').maxEntries);
    reportLosses(bank, telemetry, LOSS_REASONS);

    const cgroupIds: bigint[] = [];
    for (let i = 0; i < series.count; i++) cgroupIds.push(series.keys.readBigUInt64LE(i * SERIES_KEY_SIZE));
    for (let i = 0; i < errors.count; i++) cgroupIds.push(errors.keys.readBigUInt64LE(i * ERROR_KEY_SIZE));
    this.tasks.resolve(cgroupIds);

    const stride = Math.ceil(SERIES_VALUE_SIZE / 8) * 8;
    const durations = new HistogramSeries();
    const queueDurations = new HistogramSeries();
    const bytes = new CounterSeries();
    for (let i = 0; i < series.count; i++) {
      const attributes = this.labels(readSeriesKey(series.keys, i * SERIES_KEY_SIZE));
      if (!attributes) continue;
      const base = i * cpus * stride;
      let transferred = 0;
      let queued = 0;
      for (let cpu = 0; cpu < cpus; cpu++) {
        const offset = base + cpu * stride;
        transferred += Number(series.values.readBigUInt64LE(offset + BYTES_OFFSET));
        queued += histogramCount(series.values, offset + QUEUE_OFFSET);
        durations.add(attributes, series.values, offset + DURATION_OFFSET, 1);
      }
      bytes.add(attributes, transferred);
      // Requests issued without being queued have no queue time: a series with none has no queue histogram.
      if (queued > 0)
        for (let cpu = 0; cpu < cpus; cpu++) queueDurations.add(attributes, series.values, base + cpu * stride + QUEUE_OFFSET, 1);
    }
    const failures = new CounterSeries();
    for (let i = 0; i < errors.count; i++) {
      const attributes = this.labels(readSeriesKey(errors.keys, i * ERROR_KEY_SIZE));
      if (!attributes) continue;
      attributes.error = statusName(errors.keys.readUInt32LE(i * ERROR_KEY_SIZE + SERIES_KEY_SIZE));
      failures.add(attributes, Number(sumPerCpuU64(errors.values, i * cpus * 8, cpus)));
    }

    await this.next.consume({
      startTimeMs,
      endTimeMs,
      metrics: [
        {
          type: 'histogram',
          name: 'ebpf_block_io_duration_seconds',
          description: 'Time from a block request\'s issue to the device to its completion, by disk and operation.',
          temporality: 'delta',
          points: durations.points(),
        },
        {
          type: 'histogram',
          name: 'ebpf_block_io_queue_duration_seconds',
          description: 'Time block requests waited in the I/O scheduler, from insert to issue, by disk and operation; requests issued directly are not in it.',
          temporality: 'delta',
          points: queueDurations.points(),
        },
        {
          type: 'sum',
          name: 'ebpf_block_io_operations_total',
          description: 'Block requests issued to the device and completed, by disk and operation.',
          monotonic: true,
          temporality: 'delta',
          points: durations.counts(),
        },
        {
          type: 'sum',
          name: 'ebpf_block_io_bytes_total',
          description: 'Bytes block requests transferred, by disk and operation.',
          monotonic: true,
          temporality: 'delta',
          points: bytes.points(),
        },
        {
          type: 'sum',
          name: 'ebpf_block_io_errors_total',
          description: 'Block requests that completed with an error, by disk, operation and block status (e.g. "ioerr" for BLK_STS_IOERR).',
          monotonic: true,
          temporality: 'delta',
          points: failures.points(),
        },
      ],
    });
  }

  /** New and renamed disks; names of disks that are gone stay, so their last series keep their names. */
  private readDeviceNames(object: BpfObject): void {
    const names = object.dump('device_names');
    for (let i = 0; i < names.count; i++)
      this.deviceNames.set(names.keys.readUInt32LE(i * 4), cString(names.values, i * DISK_NAME_LEN, DISK_NAME_LEN));
  }

  /** device, operation, pod, namespace and container; pid and comm when aggregated by; undefined for a disk not in `devices`. */
  private labels(key: SeriesKey): Attributes | undefined {
    const device = this.deviceNames.get(key.dev) ?? `${key.dev >>> MINOR_BITS}:${key.dev & ((1 << MINOR_BITS) - 1)}`;
    if (this.devices.size > 0 && !this.devices.has(device)) return undefined;
    return { device, operation: operationName(key.operation), ...this.tasks.of(key) };
  }

  /** Slots of in_flight that a request holds (struct request_start.request is not 0). */
  private slotsTaken(object: BpfObject): number {
    const slots = object.dump('in_flight').values;
    let taken = 0;
    for (let offset = 0; offset < slots.length; offset += REQUEST_START_SIZE) if (slots.readBigUInt64LE(offset) !== 0n) taken++;
    return taken;
  }
}
