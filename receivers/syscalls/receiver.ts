/**
 * Per-syscall latency histograms, calls and errors from raw sys_enter/sys_exit
 * (bpf/syscalls.bpf.c), the syscalls part of the probe it shares with the
 * fileio receiver (probe.ts). The kernel filters and aggregates; every
 * interval the per-CPU maps are drained and emitted as deltas.
 */
import type { Consumer, CreateSettings } from '../../collector/component.js';
import type { Attributes, NumberPoint } from '../../collector/data/metrics.js';
import { attributesKey } from '../../collector/data/metrics.js';
import { parseCgroupPath } from '../../collector/processes.js';
import { type BpfObject, numPossibleCpus } from '../../native/index.js';
import { sumPerCpuU64, u32 } from '../common/polling.js';
import { CgroupPaths } from '../../collector/cgroups.js';
import { processFilterBits, writeProcessFilters } from '../common/process-filter.js';
import { retireBank } from '../common/counter-banks.js';
import { reportLosses } from '../common/losses.js';
import type { SyscallsConfig } from './config.js';
import { errnoName } from './errno-names.js';
import { HistogramSeries, HISTOGRAM_VALUE_SIZE } from '../common/latency-histogram.js';
import {
  AGGREGATE,
  BANK_GROUP,
  checkLayout,
  ERROR_KEY_SIZE,
  LOSS_REASONS,
  RECENT_HISTOGRAM_OFFSET,
  RECENT_SERIES_SIZE,
  RECENT_USED_OFFSET,
  readSyscallKey,
  SETTINGS_SIZE,
  SYSCALL_KEY_SIZE,
  type SyscallKey,
} from './layout.js';
import { ProbePartReceiver, type SyscallProbe } from './probe.js';
import { syscallName, syscallNames, type SyscallNames } from './syscall-names.js';

export class SyscallsReceiver extends ProbePartReceiver {
  private names: SyscallNames = new Map();
  private readonly cgroupPaths = new CgroupPaths();

  constructor(settings: CreateSettings, private readonly config: SyscallsConfig, private readonly next: Consumer<'metrics'>) {
    super(settings, 'syscalls', config.collection_interval);
  }

  protected override enable(probe: SyscallProbe): void {
    checkLayout(probe.object);
    this.names = syscallNames(this.settings.logger);
    this.writeSettings(probe.object);
    probe.attachRawPair();
  }

  /** The programs may keep running for the fileio part: they stop timing calls for this one. */
  protected override disable(probe: SyscallProbe): void {
    this.writeConfig(probe.object, false);
    // A later syscalls receiver may get this probe: it must not inherit these filters.
    for (const map of ['filter_pids', 'filter_comms', 'filter_cgroups']) probe.object.drain(map);
  }

  /** Filters and aggregation go into the kernel's maps before anything is attached. */
  private writeSettings(object: BpfObject): void {
    writeProcessFilters(object, this.config);
    this.writeConfig(object);
  }

  /** struct syscalls_config. */
  private writeConfig(object: BpfObject, enabled = true): void {
    const { aggregate_by } = this.config;
    const settings = Buffer.alloc(SETTINGS_SIZE);
    settings.writeUInt32LE(processFilterBits(this.config), 0);
    settings.writeUInt32LE(aggregate_by.reduce((bits, label) => bits | AGGREGATE[label], 0), 4);
    settings.writeUInt32LE(enabled ? 1 : 0, 8);
    object.update('receiver_settings', u32(0), settings);
  }

  protected override async collect(object: BpfObject, startTimeMs: number, endTimeMs: number): Promise<void> {
    const { telemetry } = this.settings;
    const cpus = numPossibleCpus();
    const bank = await retireBank(object, BANK_GROUP.syscalls);
    const recent = bank.drain('recent_series');
    const histograms = bank.drainReportingFill(telemetry, 'histograms');
    const errors = bank.drainReportingFill(telemetry, 'errors');
    reportLosses(bank, telemetry, LOSS_REASONS);

    // Each CPU's recent series of a syscall has its own key: the used ones, by their offset in `recent.values`.
    const recentOffsets: number[] = [];
    for (let offset = 0; offset < recent.values.length; offset += RECENT_SERIES_SIZE)
      if (recent.values.readBigUInt64LE(offset + RECENT_USED_OFFSET) !== 0n) recentOffsets.push(offset);

    const cgroupIds: bigint[] = [];
    for (const offset of recentOffsets) cgroupIds.push(recent.values.readBigUInt64LE(offset));
    for (let i = 0; i < histograms.count; i++) cgroupIds.push(histograms.keys.readBigUInt64LE(i * SYSCALL_KEY_SIZE));
    for (let i = 0; i < errors.count; i++) cgroupIds.push(errors.keys.readBigUInt64LE(i * ERROR_KEY_SIZE));
    const cgroupPaths = this.cgroupPaths.resolve(cgroupIds);

    const durations = new HistogramSeries();
    for (const offset of recentOffsets)
      durations.add(this.labels(readSyscallKey(recent.values, offset), cgroupPaths), recent.values, offset + RECENT_HISTOGRAM_OFFSET, 1);
    for (let i = 0; i < histograms.count; i++) {
      const key = readSyscallKey(histograms.keys, i * SYSCALL_KEY_SIZE);
      durations.add(this.labels(key, cgroupPaths), histograms.values, i * cpus * HISTOGRAM_VALUE_SIZE, cpus);
    }
    const failures = new Map<string, NumberPoint>();
    for (let i = 0; i < errors.count; i++) {
      const key = readSyscallKey(errors.keys, i * ERROR_KEY_SIZE);
      const attributes = { ...this.labels(key, cgroupPaths), errno: errnoName(errors.keys.readUInt32LE(i * ERROR_KEY_SIZE + SYSCALL_KEY_SIZE)) };
      const value = Number(sumPerCpuU64(errors.values, i * cpus * 8, cpus));
      const point = failures.get(attributesKey(attributes));
      if (point) point.value += value;
      else failures.set(attributesKey(attributes), { attributes, value });
    }

    await this.next.consume({
      startTimeMs,
      endTimeMs,
      metrics: [
        {
          type: 'histogram',
          name: 'ebpf_syscall_duration_seconds',
          description: 'Time from syscall entry to exit, by syscall.',
          temporality: 'delta',
          points: durations.points(),
        },
        {
          type: 'sum',
          name: 'ebpf_syscall_total',
          description: 'Syscalls that returned, by syscall.',
          monotonic: true,
          temporality: 'delta',
          points: durations.counts(),
        },
        {
          type: 'sum',
          name: 'ebpf_syscall_errors_total',
          description: 'Syscalls that returned an error (-errno), by syscall and errno name.',
          monotonic: true,
          temporality: 'delta',
          points: [...failures.values()],
        },
      ],
    });
  }

  /** syscall, pod and namespace always; pid, tid and uid when the kernel aggregates by them. */
  private labels(key: SyscallKey, cgroupPaths: Map<bigint, string>): Attributes {
    const path = cgroupPaths.get(key.cgroupId);
    const attributes: Attributes = {
      syscall: syscallName(this.names, key.nr),
      pod: (path && parseCgroupPath(path).podUid) ?? '',
      // Cgroup paths carry a pod's UID but not its namespace; a Kubernetes metadata processor can fill it in.
      namespace: '',
    };
    const { aggregate_by } = this.config;
    if (aggregate_by.includes('pid')) attributes.pid = String(key.pid);
    if (aggregate_by.includes('tid')) attributes.tid = String(key.tid);
    if (aggregate_by.includes('uid')) attributes.uid = String(key.uid);
    return attributes;
  }
}
