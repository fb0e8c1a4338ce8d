/**
 * On-demand profiling windows, as Go's /debug/pprof/profile?seconds=N: a
 * request opens a window that keeps every batch arriving in the next N
 * seconds (only the requested pids' samples, if it names some), then hands them
 * over. Batches arrive once per receiver collection_interval, so a window
 * shorter than that may see none. At shutdown every open window closes early
 * with what it has.
 *
 * Each window costs memory and a request anyone allowed on the server can
 * make, so both are bounded: at most `maxOpen` windows at once (the route
 * answers 429 beyond), and at most `maxSamples` samples (distinct stacks of a
 * process in a batch) held by one window; what does not fit is left out and
 * counted.
 */
import type { ProfileBatch } from '../../collector/data/profiles.js';

export interface WindowRequest {
  durationMs: number;
  /** Only these processes' samples; all when absent. */
  pids?: ReadonlySet<number>;
}

export interface ClosedWindow {
  batches: ProfileBatch[];
  /** Samples (by count) left out because the window held maxSamples already. */
  droppedSamples: number;
  /** When the window opened and closed (wall clock), to date a window that saw no batch. */
  startMs: number;
  endMs: number;
}

export class PendingWindow {
  private readonly batches: ProfileBatch[] = [];
  private heldSamples = 0;
  private droppedSamples = 0;
  readonly result: Promise<ClosedWindow>;
  private readonly startMs = Date.now();
  readonly endsAtMs: number;
  private finish!: (window: ClosedWindow) => void;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly request: WindowRequest,
    private readonly maxSamples: number,
    private readonly onClose: (window: PendingWindow) => void,
  ) {
    this.result = new Promise((resolve) => (this.finish = resolve));
    this.endsAtMs = this.startMs + request.durationMs;
    this.timer = setTimeout(() => this.close(), request.durationMs);
  }

  /** Keeps the batch's samples of the requested processes that fit; returns the count of those that did not. */
  take(batch: ProfileBatch): number {
    let samples = this.request.pids ? batch.samples.filter((sample) => this.request.pids!.has(sample.pid)) : batch.samples;
    let dropped = 0;
    const room = this.maxSamples - this.heldSamples;
    if (samples.length > room) {
      for (let i = room; i < samples.length; i++) dropped += samples[i].count;
      samples = samples.slice(0, room);
    }
    this.heldSamples += samples.length;
    this.droppedSamples += dropped;
    // Kept even when empty: the window's profile still gets the batch's period and times.
    this.batches.push(samples === batch.samples ? batch : { ...batch, samples });
    return dropped;
  }

  /** Ends the window now (deadline, shutdown, or the client went away); later calls do nothing. */
  close(): void {
    clearTimeout(this.timer);
    this.onClose(this);
    this.finish({ batches: this.batches, droppedSamples: this.droppedSamples, startMs: this.startMs, endMs: Date.now() });
  }
}

/** What became of a batch handed to the open windows. */
export interface WindowsTook {
  /** Windows open when it came. */
  windows: number;
  /** Samples (by count, summed over the windows) left out of full windows. */
  droppedSamples: number;
}

export class ProfileWindows {
  private readonly open = new Set<PendingWindow>();
  private closed = false;
  private lastBatchSpanMs?: number;

  constructor(readonly maxOpen: number, private readonly maxSamples: number) {}

  /** Hands a batch to every open window. */
  add(batch: ProfileBatch): WindowsTook {
    this.lastBatchSpanMs = batch.endTimeMs - batch.startTimeMs;
    let droppedSamples = 0;
    for (const window of this.open) droppedSamples += window.take(batch);
    return { windows: this.open.size, droppedSamples };
  }

  /** True while maxOpen windows are open: a new request must wait. */
  get full(): boolean {
    return this.open.size >= this.maxOpen;
  }

  /** Milliseconds until the first open window closes (0 if none is open). */
  msUntilOneCloses(): number {
    let soonest = Infinity;
    for (const window of this.open) soonest = Math.min(soonest, window.endsAtMs);
    return soonest === Infinity ? 0 : Math.max(0, soonest - Date.now());
  }

  /** False once closeAll() ran: the exporter is shut down. */
  get accepting(): boolean {
    return !this.closed;
  }

  /** The span of the last batch, i.e. the receiver's collection interval; undefined before the first batch. */
  get batchSpanMs(): number | undefined {
    return this.lastBatchSpanMs;
  }

  /** Opens a window for request.durationMs; its `result` resolves when it closes. The caller checks `full` first. */
  collect(request: WindowRequest): PendingWindow {
    const window = new PendingWindow(request, this.maxSamples, (closing) => this.open.delete(closing));
    if (this.closed) window.close();
    else this.open.add(window);
    return window;
  }

  /** Closes every open window with what it has and refuses new ones. */
  closeAll(): void {
    this.closed = true;
    for (const window of [...this.open]) window.close();
  }
}
