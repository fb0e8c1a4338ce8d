/**
 * Whole-system CPU profiling (bpf/cpu.bpf.c): a cpu-clock perf event on every
 * online CPU samples user and kernel stacks at frequency_hz; the kernel counts
 * samples by {pid, stacks, comm} and this reads the counts and stacks every
 * collection_interval and emits them as a ProfileBatch of unsymbolized frames.
 */
import type { Consumer, CreateSettings, Host } from '../../collector/component.js';
import type { Frame, ProfileSample } from '../../collector/data/profiles.js';
import { bpfObjectPath } from '../../collector/paths.js';
import { BpfObject } from '../../native/index.js';
import { retireBank } from '../common/counter-banks.js';
import { reportLosses } from '../common/losses.js';
import { PollingBpfReceiver, uint32Words, uint64At } from '../common/polling.js';
import { cgroupId } from '../../collector/cgroups.js';
import type { CpuConfig } from './config.js';
import {
  decodeSampleKey,
  encodeControl,
  LOSS_REASONS,
  MAX_STACK_DEPTH,
  NO_STACK,
  referencedStackIds,
  u32Key,
  u64Key,
} from './layout.js';
import { StackFrames } from './stack-frames.js';

const PRESENT = Buffer.from([1]);
const NO_FRAMES: readonly Frame[] = [];

export class CpuReceiver extends PollingBpfReceiver {
  private host?: Host;

  constructor(settings: CreateSettings, private readonly config: CpuConfig, private readonly next: Consumer<'profiles'>) {
    super(settings, bpfObjectPath('cpu'), config.collection_interval);
  }

  protected override attach(object: BpfObject, host: Host): void {
    this.host = host;
    const { pids, cgroups, frequency_hz } = this.config;
    // Filters are in place before the first sample.
    for (const pid of pids ?? []) object.update('filter_pids', u32Key(pid), PRESENT);
    for (const path of cgroups ?? []) object.update('filter_cgroups', u64Key(cgroupId(path)), PRESENT);
    this.writeControl(object);
    object.attach('sample', { kind: 'perf_event', frequencyHz: frequency_hz });
  }

  private writeControl(object: BpfObject): void {
    const { pids, cgroups, comm } = this.config;
    object.update(
      'control',
      u32Key(0),
      encodeControl({ filterPids: pids !== undefined, filterCgroups: cgroups !== undefined, comm }),
    );
  }

  protected override async collect(object: BpfObject, startTimeMs: number, endTimeMs: number): Promise<void> {
    const { telemetry } = this.settings;
    const bank = await retireBank(object);
    const counts = bank.drainReportingFill(telemetry, 'sample_counts');
    const stacks = bank.drain('stacks', referencedStackIds(counts));
    telemetry.mapFill('stacks', stacks.count, object.mapInfo(bank.map('stacks')).maxEntries);
    reportLosses(bank, telemetry, LOSS_REASONS, 'losses', 'profiles');

    const stackFrames = new StackFrames(stacks);
    const samples: ProfileSample[] = [];
    let missing = 0;
    let truncated = 0;
    const keyWords = uint32Words(counts.keys);
    const countWords = uint32Words(counts.values);
    for (let i = 0; i < counts.count; i++) {
      const key = decodeSampleKey(counts.keys, keyWords, i);
      const count = uint64At(countWords, i * 2);
      const kernel = key.kernelStackId === NO_STACK ? NO_FRAMES : stackFrames.kernel(key.kernelStackId);
      const user = key.userStackId === NO_STACK ? NO_FRAMES : stackFrames.user(key.pid, key.userStackId);
      if (!kernel || !user) {
        // Not expected: a bank's stacks are read with its counts, once no program writes to either.
        missing += count;
        continue;
      }
      // A stack that fills every slot was probably cut: its outermost frames are lost, the sample is kept.
      if (kernel.length === MAX_STACK_DEPTH || user.length === MAX_STACK_DEPTH) truncated += count;
      const frames = kernel.concat(user);
      const sample: ProfileSample = { pid: key.pid, comm: key.comm, frames, count };
      const info = this.host!.processes.get(key.pid);
      if (info?.containerId) sample.containerId = info.containerId;
      if (info?.podUid) sample.podUid = info.podUid;
      samples.push(sample);
    }
    if (missing > 0) telemetry.dropped('profiles', missing, 'stack_missing');
    if (truncated > 0) telemetry.dropped('profiles', truncated, 'stack_truncated');
    if (samples.length === 0) return;
    await this.next.consume({ startTimeMs, endTimeMs, periodNs: 1e9 / this.config.frequency_hz, samples });
  }
}
