/**
 * PollingBpfReceiver (receivers/common/polling.ts) for receivers that do not
 * own their BPF object: subclasses say how to get it (open) and give it back
 * (close), here a part of the shared syscall probe.
 */
import type { Component, CreateSettings, Host } from '../../collector/component.js';
import type { BpfObject } from '../../native/index.js';

export abstract class PollingReceiver implements Component {
  private object?: BpfObject;
  private timer?: NodeJS.Timeout;
  private collecting?: Promise<void>;
  private lastReadMs = Date.now();

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
    this.schedule();
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
