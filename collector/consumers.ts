import type { Consumer, Consumers } from './component.js';
import { itemCount, type Signal, type SignalData } from './data/signals.js';
import type { Logger } from './logger.js';
import type { TrackedStatusReporter } from './status.js';
import type { ComponentTelemetry } from './telemetry.js';

/**
 * Hands each batch to every consumer. A consumer that mutates data gets its own
 * copy when others share the batch; the others share one read-only batch.
 */
export function fanout<S extends Signal>(consumers: Consumer<S>[]): Consumer<S> {
  if (consumers.length === 1) return consumers[0];
  return {
    mutatesData: false,
    async consume(data: SignalData[S]) {
      const results = await Promise.allSettled(consumers.map((c) => c.consume(c.mutatesData ? structuredClone(data) : data)));
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
      if (failures.length === 1) throw failures[0];
      if (failures.length > 1) throw new AggregateError(failures, `${failures.length} of ${consumers.length} consumers failed`);
    },
  };
}

/** Counts what a component accepts, for `ebpf_collector_received_items_total`. */
export function counting<S extends Signal>(signal: S, telemetry: ComponentTelemetry, inner: Consumer<S>): Consumer<S> {
  const count = itemCount[signal] as (data: SignalData[S]) => number;
  return {
    mutatesData: inner.mutatesData,
    consume(data: SignalData[S]) {
      telemetry.received(signal, count(data));
      return inner.consume(data);
    },
  };
}

/** Sets `consumers[signal]`, keeping the signal and its consumer's data type together. */
export function setConsumer<S extends Signal>(consumers: Consumers, signal: S, consumer: Consumer<S>): void {
  (consumers as Record<S, Consumer<S>>)[signal] = consumer;
}

/** A batch's share of its component's deadline; the timer only runs while the component itself holds the batch. */
interface RunningBatch {
  arrivedMs: number;
  remainingMs: number;
  resumedMs: number;
  timer?: NodeJS.Timeout;
  expire(): void;
}

export interface StepDeadlineOptions {
  deadlineMs: number;
  telemetry: ComponentTelemetry;
  status: TrackedStatusReporter;
  logger: Logger;
}

/**
 * One component's deadline on each batch it is handed, shared by its
 * consumers for every signal. A batch the component has not finished within
 * `deadlineMs` is abandoned: its items are counted as dropped
 * (`deadline_exceeded`), the status says so, and the pipeline goes on; its
 * late end is ignored, and what it hands on late is discarded, as it was
 * counted already. Time spent in the next component (through gate()) does not
 * count: that one has a deadline of its own, which bounds the wait.
 *
 * While an abandoned batch still runs, new batches are dropped on arrival
 * (`step_stalled`): a call stuck for ever (an addon call on a file that never
 * answers holds one of libuv's four threads) is not joined by more.
 *
 * Only asynchronous stalls can be caught: synchronous work holds the event
 * loop, and with it every timer.
 */
export class StepDeadline {
  private readonly running = new Set<RunningBatch>();
  private abandoned?: { count: number; sinceMs: number };
  /** Calls into the next component in progress; while there are any, the running batches' timers stand still. */
  private downstream = 0;
  /** The status message this deadline set, to take back once batches are done in time again. */
  private reported?: string;

  constructor(private readonly options: StepDeadlineOptions) {
    // An abandoned batch that runs on for three deadlines makes /healthz unhealthy: the component is stuck.
    options.status.watch(() => this.abandoned && { lastMs: this.abandoned.sinceMs, intervalMs: options.deadlineMs, work: 'batch' });
  }

  /** `inner` with the deadline on each batch. */
  guard<S extends Signal>(signal: S, inner: Consumer<S>): Consumer<S> {
    const count = itemCount[signal] as (data: SignalData[S]) => number;
    return { mutatesData: inner.mutatesData, consume: (data) => this.run(signal, count(data), () => inner.consume(data)) };
  }

  /** `next` as the component must call it: the wait for it is not the component's own time. */
  gate<S extends Signal>(next: Consumer<S>): Consumer<S> {
    return {
      mutatesData: next.mutatesData,
      consume: async (data) => {
        // No batch of ours runs in time, so this comes from an abandoned one, whose items were counted as dropped.
        if (this.abandoned && this.running.size === 0) return;
        if (this.downstream++ === 0) for (const batch of this.running) pause(batch);
        try {
          await next.consume(data);
        } finally {
          if (--this.downstream === 0) for (const batch of this.running) arm(batch);
        }
      },
    };
  }

  private run(signal: Signal, items: number, consume: () => Promise<void>): Promise<void> {
    if (this.abandoned) {
      this.options.telemetry.dropped(signal, items, 'step_stalled');
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      let late = false;
      const now = Date.now();
      const batch: RunningBatch = {
        arrivedMs: now,
        remainingMs: this.options.deadlineMs,
        resumedMs: now,
        expire: () => {
          late = true;
          this.running.delete(batch);
          this.abandon(signal, items, batch.arrivedMs);
          resolve();
        },
      };
      this.running.add(batch);
      if (this.downstream === 0) arm(batch);
      const settle = (error?: { cause: unknown }) => {
        if (late) return this.endedLate(error?.cause);
        clearTimeout(batch.timer);
        this.running.delete(batch);
        if (error) return reject(error.cause);
        this.doneInTime();
        resolve();
      };
      let work: Promise<void>;
      try {
        work = consume();
      } catch (error) {
        work = Promise.reject(error);
      }
      work.then(
        () => settle(),
        (cause: unknown) => settle({ cause }),
      );
    });
  }

  private abandon(signal: Signal, items: number, arrivedMs: number): void {
    if (this.abandoned) this.abandoned.count++;
    else this.abandoned = { count: 1, sinceMs: arrivedMs };
    this.options.telemetry.dropped(signal, items, 'deadline_exceeded');
    this.reported =
      `a ${signal} batch of ${items} items was not done within its ${this.options.deadlineMs} ms deadline: ` +
      `dropped, and batches that arrive before it ends are dropped too`;
    this.options.status.report('recoverable_error', this.reported);
  }

  private endedLate(error: unknown): void {
    if (this.abandoned && --this.abandoned.count === 0) this.abandoned = undefined;
    this.options.logger.warn({ err: error }, error ? 'a batch abandoned at its deadline failed later' : 'a batch abandoned at its deadline ended later');
  }

  private doneInTime(): void {
    if (this.abandoned || !this.reported) return;
    const { current } = this.options.status;
    if (current.status === 'recoverable_error' && current.message === this.reported) this.options.status.report('ok');
    this.reported = undefined;
  }
}

function arm(batch: RunningBatch): void {
  batch.resumedMs = Date.now();
  batch.timer = setTimeout(batch.expire, batch.remainingMs);
}

function pause(batch: RunningBatch): void {
  clearTimeout(batch.timer);
  batch.remainingMs -= Date.now() - batch.resumedMs;
}
