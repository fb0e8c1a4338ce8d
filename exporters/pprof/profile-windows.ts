/**
 * On-demand profiling windows, as Go's /debug/pprof/profile?seconds=N: a
 * request opens a window that keeps every batch arriving in the next N
 * seconds (only the requested pids' samples, if it names some), then hands them
 * over. Batches arrive once per receiver collection_interval, so a window
 * shorter than that may see none. At shutdown every open window closes early
 * with what it has.
 */
import type { ProfileBatch } from '../../collector/data/profiles.js';

export interface WindowRequest {
  durationMs: number;
  /** Only these processes' samples; all when absent. */
  pids?: ReadonlySet<number>;
}

export interface ClosedWindow {
  batches: ProfileBatch[];
  /** When the window opened and closed (wall clock), to date a window that saw no batch. */
  startMs: number;
  endMs: number;
}

export class PendingWindow {
  readonly batches: ProfileBatch[] = [];
  readonly result: Promise<ClosedWindow>;
  private readonly startMs = Date.now();
  private finish!: (window: ClosedWindow) => void;
  private readonly timer: NodeJS.Timeout;

  constructor(readonly request: WindowRequest, private readonly onClose: (window: PendingWindow) => void) {
    this.result = new Promise((resolve) => (this.finish = resolve));
    this.timer = setTimeout(() => this.close(), request.durationMs);
  }

  /** Ends the window now (deadline, shutdown, or the client went away); later calls do nothing. */
  close(): void {
    clearTimeout(this.timer);
    this.onClose(this);
    this.finish({ batches: this.batches, startMs: this.startMs, endMs: Date.now() });
  }
}

export class ProfileWindows {
  private readonly open = new Set<PendingWindow>();
  private closed = false;
  private lastBatchSpanMs?: number;

  /** Hands a batch to every open window; returns how many took it. */
  add(batch: ProfileBatch): number {
    this.lastBatchSpanMs = batch.endTimeMs - batch.startTimeMs;
    for (const window of this.open) window.batches.push(selectPids(batch, window.request.pids));
    return this.open.size;
  }

  /** False once closeAll() ran: the exporter is shut down. */
  get accepting(): boolean {
    return !this.closed;
  }

  /** The span of the last batch, i.e. the receiver's collection interval; undefined before the first batch. */
  get batchSpanMs(): number | undefined {
    return this.lastBatchSpanMs;
  }

  /** Opens a window for request.durationMs; its `result` resolves when it closes. */
  collect(request: WindowRequest): PendingWindow {
    const window = new PendingWindow(request, (closing) => this.open.delete(closing));
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

function selectPids(batch: ProfileBatch, pids: ReadonlySet<number> | undefined): ProfileBatch {
  return pids ? { ...batch, samples: batch.samples.filter((sample) => pids.has(sample.pid)) } : batch;
}
