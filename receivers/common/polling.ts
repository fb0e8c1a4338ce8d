/**
 * The life of a receiver whose data aggregates in kernel maps: get a BPF
 * object with its programs attached, read its maps every interval and hand
 * the result on, give the object back at shutdown.
 */
import { BpfObject } from '../../native/index.js';
import type { Component, CreateSettings, Host } from '../../collector/component.js';
import { objectForKernel } from './kernel-requirements.js';
import type { Heartbeat } from '../../collector/status.js';

export abstract class PollingReceiver implements Component {
  private object?: BpfObject;
  private timer?: NodeJS.Timeout;
  private collecting?: Promise<void>;
  private lastReadMs = Date.now();
  /** When the last collection ended, read or failed (or start, before the first): /healthz's view of whether the loop still turns. */
  private lastCompletedMs = Date.now();

  protected constructor(
    protected readonly settings: CreateSettings,
    private readonly intervalMs: number,
  ) {}

  /** Gets the object with this receiver's programs attached and recording. */
  protected abstract open(host: Host): Promise<BpfObject>;

  /** Stops recording and gives the object back; called once per open(), and at shutdown without start. */
  protected abstract close(): void;

  /** Read (and usually clear) the maps for the interval [startMs, endMs] and pass the data on. */
  protected abstract collect(object: BpfObject, startMs: number, endMs: number): Promise<void>;

  async start(host: Host): Promise<void> {
    this.object = await this.open(host);
    this.lastReadMs = Date.now();
    this.lastCompletedMs = this.lastReadMs;
    this.schedule();
  }

  /** While collecting every interval: when a collection last ended. */
  heartbeat(): Heartbeat | undefined {
    return this.timer ? { lastMs: this.lastCompletedMs, intervalMs: this.intervalMs, work: 'collection' } : undefined;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.collecting = this.collectOnce().finally(() => {
        this.collecting = undefined;
        if (this.timer) this.schedule();
      });
    }, this.intervalMs);
  }

  private async collectOnce(): Promise<void> {
    if (!this.object) return;
    const endMs = Date.now();
    try {
      await this.collect(this.object, this.lastReadMs, endMs);
      this.lastReadMs = endMs;
      this.settings.status.report('ok');
    } catch (error) {
      // A failed read is reported and retried next interval; the collector keeps running.
      this.settings.status.report('recoverable_error', `read failed: ${(error as Error).message}`);
    }
    this.lastCompletedMs = Date.now();
  }

  /** Stops the timer, flushes one last read, and gives the object back. Safe without start and twice. */
  async shutdown(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.collecting;
    await this.collectOnce();
    this.object = undefined;
    this.close();
  }
}

/** A PollingReceiver that opens, loads and owns its BPF object: subclasses say what to attach and how to read. */
export abstract class PollingBpfReceiver extends PollingReceiver {
  /** Set as soon as opened, so that a start that fails halfway still releases it. */
  private owned?: BpfObject;

  protected constructor(settings: CreateSettings, private readonly objectPath: string, intervalMs: number) {
    super(settings, intervalMs);
  }

  /** Attach programs; called once the object is loaded. */
  protected abstract attach(object: BpfObject, host: Host): void | Promise<void>;

  protected override async open(host: Host): Promise<BpfObject> {
    const object = BpfObject.open(objectForKernel(this.objectPath));
    this.owned = object;
    object.load();
    await this.attach(object, host);
    return object;
  }

  /** Detaches everything. */
  protected override close(): void {
    this.owned?.close();
    this.owned = undefined;
  }
}

/** A NUL-terminated C string from a fixed-size field. */
export function cString(buffer: Buffer, offset: number, size: number): string {
  const end = buffer.indexOf(0, offset);
  return buffer.toString('utf8', offset, end < 0 || end > offset + size ? offset + size : end);
}

/**
 * A map read's bytes as native-endian 32-bit words, as the kernel wrote them.
 * Buffer's read methods allocate on every call until V8 optimizes them, and
 * the collector runs unoptimized (bin/ebpf-collector); indexing does not.
 */
export function uint32Words(buffer: Buffer): Uint32Array {
  const aligned = buffer.byteOffset % 4 === 0 ? buffer : Buffer.from(buffer);
  return new Uint32Array(aligned.buffer, aligned.byteOffset, Math.floor(aligned.length / 4));
}

/** A u64 from two native-endian 32-bit words at `index`, as a number (exact below 2^53, like counts). */
export function uint64At(words: Uint32Array, index: number): number {
  return words[index] + words[index + 1] * 2 ** 32;
}

/** Sums a per-CPU u64 value (stride rounded to 8 bytes per CPU). */
export function sumPerCpuU64(values: Buffer, offset: number, cpus: number): bigint {
  let total = 0n;
  for (let cpu = 0; cpu < cpus; cpu++) total += values.readBigUInt64LE(offset + cpu * 8);
  return total;
}

/** A u32 map key or value, native (little-endian) order. */
export function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value);
  return buffer;
}
