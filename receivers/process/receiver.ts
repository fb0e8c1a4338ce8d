/**
 * Process lifecycle from sched_process_exec/exit (bpf/process.bpf.c): counts
 * execs by comm as `ebpf_process_exec_total`, and keeps the collector's table
 * of live processes in step with the kernel's.
 */
import { existsSync } from 'node:fs';
import type { Consumer, CreateSettings, Host } from '../../collector/component.js';
import type { NumberPoint } from '../../collector/data/metrics.js';
import { bpfObjectPath } from '../../collector/paths.js';
import { ProcessTable } from '../../collector/processes.js';
import { BpfObject } from '../../native/index.js';
import { retireBank } from '../common/counter-banks.js';
import { reportLosses } from '../common/losses.js';
import { cString, PollingBpfReceiver } from '../common/polling.js';
import type { ProcessConfig } from './config.js';

// Layouts from bpf/process.h.
const COMM_LEN = 16;
const LIVE_VALUE_SIZE = COMM_LEN + 8 + 8;
const LOSS_REASONS = ['exec_comm_table_full', 'live_table_full'];

export class ProcessReceiver extends PollingBpfReceiver {
  private host?: Host;

  constructor(settings: CreateSettings, config: ProcessConfig, private readonly next: Consumer<'metrics'>) {
    super(settings, bpfObjectPath('process'), config.collection_interval);
  }

  protected override attach(object: BpfObject, host: Host): void {
    this.host = host;
    object.attach('handle_exec', { kind: 'auto' });
    object.attach('handle_exit', { kind: 'auto' });
    this.seedLiveTable(object);
  }

  /** Processes that started before we attached are put in the kernel's table from /proc. */
  private seedLiveTable(object: BpfObject): void {
    const known = new Set(pidsOf(object.dump('live').keys));
    for (const pid of ProcessTable.scanProc()) {
      if (known.has(pid)) continue;
      const info = this.host!.processes.get(pid);
      if (!info) continue;
      const key = Buffer.alloc(4);
      key.writeUInt32LE(pid);
      const value = Buffer.alloc(LIVE_VALUE_SIZE);
      value.write(info.comm.slice(0, COMM_LEN - 1), 0, 'utf8');
      object.update('live', key, value);
    }
  }

  protected override async collect(object: BpfObject, startTimeMs: number, endTimeMs: number): Promise<void> {
    const { telemetry } = this.settings;
    const bank = await retireBank(object);
    const execs = bank.drainReportingFill(telemetry, 'exec_counts');
    const points: NumberPoint[] = [];
    for (let i = 0; i < execs.count; i++) {
      points.push({ attributes: { comm: cString(execs.keys, i * COMM_LEN, COMM_LEN) }, value: Number(execs.values.readBigUInt64LE(i * 8)) });
    }

    const live = this.readLiveTable(object);
    this.host!.processes.sync(live);
    telemetry.mapFill('live', live.size, object.mapInfo('live').maxEntries);

    reportLosses(bank, telemetry, LOSS_REASONS);

    await this.next.consume({
      startTimeMs,
      endTimeMs,
      metrics: [
        {
          type: 'sum',
          name: 'ebpf_process_exec_total',
          description: 'Programs executed (execve), by the comm of the new program.',
          monotonic: true,
          temporality: 'delta',
          points,
        },
        {
          type: 'gauge',
          name: 'ebpf_processes_live',
          description: 'Processes alive at the last read.',
          points: [{ attributes: {}, value: live.size }],
        },
      ],
    });
  }

  /** pid → comm from the kernel's table; seeded entries whose process has gone are pruned. */
  private readLiveTable(object: BpfObject): Map<number, string> {
    const { count, keys, values } = object.dump('live');
    const live = new Map<number, string>();
    for (let i = 0; i < count; i++) {
      const pid = keys.readUInt32LE(i * 4);
      const execNs = values.readBigUInt64LE(i * LIVE_VALUE_SIZE + COMM_LEN + 8);
      // A seeded entry (exec_ns 0) can outlive a process that exited between the /proc scan and the seeding.
      if (execNs === 0n && !existsSync(`/proc/${pid}`)) {
        object.delete('live', keys.subarray(i * 4, i * 4 + 4));
        continue;
      }
      live.set(pid, cString(values, i * LIVE_VALUE_SIZE, COMM_LEN));
    }
    return live;
  }
}

function pidsOf(keys: Buffer): number[] {
  const pids: number[] = [];
  for (let offset = 0; offset < keys.length; offset += 4) pids.push(keys.readUInt32LE(offset));
  return pids;
}
