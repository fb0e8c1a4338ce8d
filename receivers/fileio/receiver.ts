/**
 * File operations as applications see them, by filesystem type and
 * operation: latency histograms, operations and bytes from the file syscalls,
 * timed by the fileio part of the syscall probe it shares with the syscalls
 * receiver (receivers/syscalls/probe.ts, bpf/fileio_probe.h). The kernel
 * filters (processes, filesystems) and aggregates; every interval one bank of
 * series is drained and emitted as deltas.
 */
import { readFileSync } from 'node:fs';
import type { Consumer, CreateSettings } from '../../collector/component.js';
import type { Attributes, NumberPoint } from '../../collector/data/metrics.js';
import { attributesKey } from '../../collector/data/metrics.js';
import { type BpfObject, numPossibleCpus } from '../../native/index.js';
import { HistogramSeries } from '../common/latency-histogram.js';
import { cString, u32 } from '../common/polling.js';
import { processFilterBits, writeProcessFilters } from '../common/process-filter.js';
import { retireBank } from '../common/counter-banks.js';
import { reportLosses } from '../common/losses.js';
import { WorkloadLabels } from '../common/workload-labels.js';
import { FILEIO_ROUTE, ProbePartReceiver, syscallsReceiversPending, type SyscallProbe } from '../syscalls/probe.js';
import { syscallNames } from '../syscalls/syscall-names.js';
import { BANK_GROUP } from '../syscalls/layout.js';
import type { FileioConfig } from './config.js';
import { DEFAULT_EXCLUDED_FILESYSTEMS } from './config.js';
import {
  AGGREGATE,
  BYTES_OFFSET,
  checkLayout,
  COMM_LEN,
  FILE_SYSCALLS,
  FILESYSTEM_NAME_LEN,
  FILESYSTEM_SIZE,
  fileSyscallValue,
  KEY_SIZE,
  LOSS_REASONS,
  MAX_SYSCALL_NR,
  OPERATIONS,
  readSeriesKey,
  RECENT_MAPS,
  RECENT_SIZE,
  RECENT_USED_OFFSET,
  RECENT_VALUE_OFFSET,
  SERIES_MAPS,
  SETTINGS_SIZE,
  type SeriesKey,
  VALUE_SIZE,
} from './layout.js';

/** The per-syscall tracepoint entry program for each enum file_source: each reads only the arguments its syscalls have. */
const ENTRY_PROGRAMS = ['fileio_fd_enter', 'fileio_open_enter', 'fileio_stat_at_enter'];
/** Maps that hold one receiver's settings, emptied when it stops so that a later one on the same probe starts clean. */
const PER_RECEIVER_MAPS = ['fileio_filter_pids', 'fileio_filter_comms', 'fileio_filter_cgroups', 'filesystem_filter', 'filesystems', 'last_filesystem', ...SERIES_MAPS, ...RECENT_MAPS];

export class FileioReceiver extends ProbePartReceiver {
  private readonly workloads = new WorkloadLabels();
  /** Filesystem type names by the kernel address of their struct file_system_type. */
  private filesystemNames = new Map<bigint, string>();
  /** Mount points by mount id (aggregate_by mountpoint), from /proc/self/mountinfo. */
  private mountPoints = new Map<number, string>();
  private enabled = false;
  private route: number = FILEIO_ROUTE.tracepoints;

  constructor(settings: CreateSettings, private readonly config: FileioConfig, private readonly next: Consumer<'metrics'>) {
    super(settings, 'fileio', config.collection_interval);
  }

  protected override enable(probe: SyscallProbe): void {
    const { object } = probe;
    checkLayout(object);
    const names = syscallNames(this.settings.logger);
    const timed: string[] = [];
    for (const [nr, name] of names)
      if (Object.hasOwn(FILE_SYSCALLS, name) && nr < MAX_SYSCALL_NR) {
        object.update('file_syscalls', u32(nr), fileSyscallValue(name));
        timed.push(name);
      }
    if (timed.length === 0) throw new Error('the kernel names none of the file syscalls (syscall trace events are needed: CONFIG_FTRACE_SYSCALLS, tracefs mounted)');
    this.writeFilters(object);

    this.enabled = true;
    probe.onFileioRouteChange = () => {
      this.route = FILEIO_ROUTE[probe.fileioRoute];
      this.writeConfig(object);
    };
    // Riding on the raw pair when a syscalls receiver runs or is about to start: per-syscall tracepoints would be a second pass.
    if (probe.rawPairAttached || syscallsReceiversPending() > 0) {
      probe.attachRawPair();
      probe.onFileioRouteChange();
    } else {
      this.route = FILEIO_ROUTE.tracepoints;
      this.writeConfig(object);
      probe.attachFileTracepoints(timed.map((syscall) => ({ program: ENTRY_PROGRAMS[FILE_SYSCALLS[syscall].source], syscall })));
    }
  }

  protected override disable(probe: SyscallProbe): void {
    this.enabled = false;
    this.writeConfig(probe.object);
    for (const map of PER_RECEIVER_MAPS) probe.object.drain(map);
  }

  private writeFilters(object: BpfObject): void {
    const { filesystems } = this.config;
    const present = Buffer.from([1]);
    writeProcessFilters(object, this.config, 'fileio_');
    for (const name of filesystems.include ?? filesystems.exclude ?? DEFAULT_EXCLUDED_FILESYSTEMS)
      object.update('filesystem_filter', fixedString(name, FILESYSTEM_NAME_LEN), present);
  }

  /** struct fileio_config. */
  private writeConfig(object: BpfObject): void {
    const { aggregate_by, filesystems } = this.config;
    const settings = Buffer.alloc(SETTINGS_SIZE);
    settings.writeUInt32LE(this.enabled ? 1 : 0, 0);
    settings.writeUInt32LE(this.route, 4);
    settings.writeUInt32LE(processFilterBits(this.config), 8);
    settings.writeUInt32LE(aggregate_by.reduce((bits, label) => bits | AGGREGATE[label], 0), 12);
    settings.writeUInt32LE(filesystems.include ? 1 : 0, 16);
    object.update('fileio_settings', u32(0), settings);
  }

  protected override async collect(object: BpfObject, startTimeMs: number, endTimeMs: number): Promise<void> {
    const { telemetry } = this.settings;
    const cpus = numPossibleCpus();
    const bank = await retireBank(object, BANK_GROUP.fileio);
    const series = bank.drainReportingFill(telemetry, 'series');
    const recent = bank.drain('recent');
    // After the series: a filesystem is named before any series of it is made.
    this.readFilesystemNames(object);
    reportLosses(bank, telemetry, LOSS_REASONS, 'fileio_losses');

    // Every value to add: its key, and where its struct fileio_value is. A CPU's recent series has its own key.
    const entries: { key: SeriesKey; values: Buffer; offset: number }[] = [];
    const stride = Math.ceil(VALUE_SIZE / 8) * 8;
    for (let i = 0; i < series.count; i++) {
      const key = readSeriesKey(series.keys, i * KEY_SIZE);
      for (let cpu = 0; cpu < cpus; cpu++) entries.push({ key, values: series.values, offset: (i * cpus + cpu) * stride });
    }
    for (let offset = 0; offset < recent.values.length; offset += RECENT_SIZE)
      if (recent.values.readBigUInt64LE(offset + RECENT_USED_OFFSET) !== 0n)
        entries.push({ key: readSeriesKey(recent.values, offset), values: recent.values, offset: offset + RECENT_VALUE_OFFSET });
    this.workloads.resolve(entries.map(({ key }) => key.cgroupId));
    if (this.config.aggregate_by.includes('mountpoint') && entries.some(({ key }) => !this.mountPoints.has(key.mntId))) this.readMountPoints();

    const durations = new HistogramSeries();
    const bytes = new Map<string, NumberPoint>();
    let unnamed = 0;
    for (const { key, values, offset } of entries) {
      const attributes = this.labels(key);
      if (!attributes) {
        unnamed++;
        continue;
      }
      // One CPU's value at a time: it is a histogram and a byte count, not a histogram alone.
      durations.add(attributes, values, offset, 1);
      const transferred = Number(values.readBigUInt64LE(offset + BYTES_OFFSET));
      const point = bytes.get(attributesKey(attributes));
      if (point) point.value += transferred;
      else bytes.set(attributesKey(attributes), { attributes, value: transferred });
    }
    if (unnamed > 0) telemetry.dropped('metrics', unnamed, 'filesystem_unnamed');

    await this.next.consume({
      startTimeMs,
      endTimeMs,
      metrics: [
        {
          type: 'histogram',
          name: 'ebpf_io_duration_seconds',
          description: 'Time from a file syscall\'s entry to its exit, by filesystem type and operation.',
          temporality: 'delta',
          points: durations.points(),
        },
        {
          type: 'sum',
          name: 'ebpf_io_operations_total',
          description: 'File syscalls that returned, by filesystem type and operation.',
          monotonic: true,
          temporality: 'delta',
          points: durations.counts(),
        },
        {
          type: 'sum',
          name: 'ebpf_io_bytes_total',
          description: 'Bytes read and written by file syscalls (their return values), by filesystem type and operation.',
          monotonic: true,
          temporality: 'delta',
          points: [...bytes.values()].filter((point) => point.attributes.operation === 'read' || point.attributes.operation === 'write'),
        },
      ],
    });
  }

  private readFilesystemNames(object: BpfObject): void {
    const { count, keys, values } = object.dump('filesystems');
    for (let i = 0; i < count; i++) this.filesystemNames.set(keys.readBigUInt64LE(i * 8), cString(values, i * FILESYSTEM_SIZE, FILESYSTEM_NAME_LEN));
  }

  /** Mount ids are unique across mount namespaces; a mount the collector's namespace does not see keeps its id. */
  private readMountPoints(): void {
    this.mountPoints = new Map();
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const fields = line.split(' ');
      if (fields.length > 4) this.mountPoints.set(Number(fields[0]), unescapeMountinfo(fields[4]));
    }
  }

  /** filesystem, operation, pod, namespace and container; pid, comm and mountpoint when aggregated by; undefined for an unnamed filesystem. */
  private labels(key: SeriesKey): Attributes | undefined {
    const filesystem = this.filesystemNames.get(key.fsType);
    if (filesystem === undefined) return undefined;
    const attributes: Attributes = { filesystem, operation: OPERATIONS[key.operation] ?? `unknown_${key.operation}`, ...this.workloads.of(key.cgroupId) };
    const { aggregate_by } = this.config;
    if (aggregate_by.includes('pid')) attributes.pid = String(key.pid);
    if (aggregate_by.includes('comm')) attributes.comm = cString(key.comm, 0, COMM_LEN);
    if (aggregate_by.includes('mountpoint')) attributes.mountpoint = this.mountPoints.get(key.mntId) ?? `[mount ${key.mntId}]`;
    return attributes;
  }
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

function fixedString(value: string, size: number): Buffer {
  const buffer = Buffer.alloc(size);
  buffer.write(value, 'utf8');
  return buffer;
}
