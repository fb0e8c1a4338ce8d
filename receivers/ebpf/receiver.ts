/**
 * A user's BPF object: every program attached from its SEC() name, counters drained from its maps.
 * Its maps are read and reset while its programs keep counting (it has no counter banks,
 * bpf/counter_bank.h), so an increment between the read and the reset of an entry is lost:
 * these counts are close, not exact, unlike the built-in receivers'.
 */
import { resolve } from 'node:path';
import type { Consumer, CreateSettings } from '../../collector/component.js';
import type { Attributes, Metric } from '../../collector/data/metrics.js';
import { BpfObject, numPossibleCpus } from '../../native/index.js';
import { cString, PollingBpfReceiver, sumPerCpuU64 } from '../common/polling.js';
import type { CounterConfig, EbpfConfig } from './config.js';

export class EbpfReceiver extends PollingBpfReceiver {
  constructor(settings: CreateSettings, private readonly config: EbpfConfig, private readonly next: Consumer<'metrics'>) {
    super(settings, resolve(config.object), config.collection_interval);
  }

  protected override attach(object: BpfObject): void {
    for (const counter of this.config.counters) checkLayout(object, counter);
    for (const program of object.programNames()) object.attach(program, { kind: 'auto' });
  }

  protected override async collect(object: BpfObject, startTimeMs: number, endTimeMs: number): Promise<void> {
    const metrics: Metric[] = this.config.counters.map((counter) => {
      const info = object.mapInfo(counter.map);
      const { count, keys, values } = object.drain(counter.map);
      this.settings.telemetry.mapFill(counter.map, count, info.maxEntries);
      const cpus = info.perCpu ? numPossibleCpus() : 1;
      const points = [];
      for (let i = 0; i < count; i++) {
        const value = info.perCpu ? sumPerCpuU64(values, i * cpus * 8, cpus) : values.readBigUInt64LE(i * 8);
        points.push({ attributes: decodeLabels(counter, keys, i * info.keySize), value: Number(value) });
      }
      return { type: 'sum', name: counter.name, description: counter.description, monotonic: true, temporality: 'delta', points };
    });
    await this.next.consume({ startTimeMs, endTimeMs, metrics });
  }
}

function checkLayout(object: BpfObject, counter: CounterConfig): void {
  const info = object.mapInfo(counter.map);
  const keySize = counter.labels.reduce((sum, label) => sum + label.size, 0);
  if (info.keySize !== keySize)
    throw new Error(`counter ${counter.name}: map "${counter.map}" has ${info.keySize}-byte keys but its labels add up to ${keySize} bytes`);
  if (info.valueSize !== 8) throw new Error(`counter ${counter.name}: map "${counter.map}" must hold u64 values, its values are ${info.valueSize} bytes`);
}

function decodeLabels(counter: CounterConfig, keys: Buffer, offset: number): Attributes {
  const attributes: Attributes = {};
  for (const label of counter.labels) {
    attributes[label.name] =
      label.decoder === 'string'
        ? cString(keys, offset, label.size)
        : label.size === 8
          ? keys.readBigUInt64LE(offset).toString()
          : keys.readUIntLE(offset, label.size).toString();
    offset += label.size;
  }
  return attributes;
}
