/**
 * Delivery of one signal's requests, after the Collector's exporterhelper: a
 * bounded queue, one request on the wire at a time (so that order is kept),
 * retries with backoff on what the OTLP spec calls retryable, and every item
 * that does not arrive counted as dropped with its reason.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CreateSettings } from '../../collector/component.js';
import type { Signal } from '../../collector/data/signals.js';
import { ExponentialBackoff } from './backoff.js';
import type { RetryConfig, SendingQueueConfig } from './config.js';
import { BoundedQueue, type QueuedRequest } from './queue.js';
import type { OtlpTransport, SendOutcome } from './transport.js';

/** Why items were dropped, as the `reason` label of ebpf_collector_dropped_items_total. */
export type DropReason =
  | 'sending_queue_full'
  /** One request larger than the whole queue: it could never be queued. */
  | 'request_too_large'
  /** The server refused it in a way retrying cannot fix (400, INVALID_ARGUMENT...). */
  | 'permanent_error'
  /** Retryable failures until retry_on_failure.max_elapsed_time ran out (or retries are disabled). */
  | 'retries_exhausted'
  /** The server accepted the request but refused part of it (partial success). */
  | 'rejected_by_server'
  /** Still queued or in flight when shutdown's deadline came. */
  | 'shutdown'
  | 'encode_failed'
  /** Cumulative temporality: a metric name reused with another type or bucket layout. */
  | 'conflicting_metric_shape';

export class QueuedSender {
  readonly queue: BoundedQueue;
  private readonly stop = new AbortController();
  private loop?: Promise<void>;
  private wake?: () => void;
  private closing = false;

  constructor(
    private readonly signal: Signal,
    private readonly settings: CreateSettings,
    queueConfig: SendingQueueConfig,
    private readonly retry: RetryConfig,
  ) {
    this.queue = new BoundedQueue(queueConfig.queue_size, queueConfig.max_bytes);
  }

  enqueue(request: QueuedRequest): void {
    if (this.closing) return this.drop(request.items, 'shutdown', 'the exporter is shutting down');
    const result = this.queue.offer(request);
    if (result === 'full') return this.drop(request.items, 'sending_queue_full', `the sending queue is full (${this.describeQueue()})`);
    if (result === 'too_large')
      return this.drop(request.items, 'request_too_large', `a request of ${request.items} items, ${request.body.byteLength} bytes exceeds the sending queue's bounds`);
    this.reportQueue();
    this.wake?.();
  }

  start(transport: OtlpTransport): void {
    this.loop ??= this.run(transport);
  }

  /** Delivers what is queued until `deadlineMs` from now, then gives up on the rest and counts it. Safe twice. */
  async shutdown(deadlineMs: number): Promise<void> {
    this.closing = true;
    this.wake?.();
    if (this.loop) {
      const timer = setTimeout(() => this.stop.abort(), deadlineMs);
      await this.loop;
      clearTimeout(timer);
    }
    const left = this.queue.drain();
    const items = left.reduce((sum, request) => sum + request.items, 0);
    if (left.length > 0) this.drop(items, 'shutdown', `${left.length} requests still queued at the shutdown deadline`);
    this.reportQueue();
  }

  private async run(transport: OtlpTransport): Promise<void> {
    while (!this.stop.signal.aborted) {
      const head = this.queue.peek();
      if (!head) {
        if (this.closing) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      // Cut off by the shutdown deadline: the request stays queued and is counted as dropped by shutdown().
      if (!(await this.deliver(transport, head))) return;
      this.queue.remove();
      this.reportQueue();
    }
  }

  /** True once the request's fate is settled (delivered or dropped), false if shutdown's deadline cut it off. */
  private async deliver(transport: OtlpTransport, request: QueuedRequest): Promise<boolean> {
    const backoff = new ExponentialBackoff(this.retry);
    const firstAttemptMs = Date.now();
    for (;;) {
      // A transport reports failures as outcomes; should one throw anyway, the request is retried, not lost.
      const outcome = await transport
        .send(this.signal, request.body, this.stop.signal)
        .catch((error: Error): SendOutcome => ({ kind: 'retryable', reason: `unexpected: ${error.message}` }));
      if (this.stop.signal.aborted) return false;
      if (outcome.kind === 'delivered') {
        this.delivered(request, outcome.rejected, outcome.message);
        return true;
      }
      if (outcome.kind === 'permanent') {
        this.drop(request.items, 'permanent_error', outcome.reason);
        return true;
      }
      const waitMs = outcome.retryAfterMs ?? backoff.next();
      const elapsedMs = Date.now() - firstAttemptMs;
      if (!this.retry.enabled || (this.retry.max_elapsed_time > 0 && elapsedMs + waitMs > this.retry.max_elapsed_time)) {
        const why = this.retry.enabled ? `still failing after ${Math.round(elapsedMs / 1000)}s of retries` : 'retry_on_failure is disabled';
        this.drop(request.items, 'retries_exhausted', `${outcome.reason} (${why})`);
        return true;
      }
      this.settings.logger.warn({ signal: this.signal, reason: outcome.reason, retry_in_ms: Math.round(waitMs) }, 'export failed, will retry');
      this.reportStatus('recoverable_error', `exporting ${this.signal} failed, retrying: ${outcome.reason}`);
      const waited = await sleep(waitMs, true, { signal: this.stop.signal }).catch(() => false);
      if (!waited) return false;
    }
  }

  private delivered(request: QueuedRequest, rejected: number, message: string): void {
    // The server counts rejections in its own unit (data points, profiles): scaled to our items.
    const rejectedItems = rejected > 0 ? Math.min(request.items, Math.round((request.items * rejected) / Math.max(request.serverUnits, 1))) : 0;
    this.settings.telemetry.exported(this.signal, request.items - rejectedItems);
    if (rejectedItems > 0) this.drop(rejectedItems, 'rejected_by_server', `partial success, ${rejected} rejected: ${message}`);
    else if (message) this.settings.logger.warn({ signal: this.signal }, `the server accepted the export with a warning: ${message}`);
    this.reportStatus('ok');
  }

  /** Counts a loss both ways: dropped by reason, and as items the exporter failed to deliver. */
  drop(items: number, reason: DropReason, detail: string): void {
    this.settings.telemetry.dropped(this.signal, items, reason);
    this.settings.telemetry.exportFailed(this.signal, items);
    this.settings.logger.warn({ signal: this.signal, items, reason }, `dropped ${items} ${this.signal} items: ${detail}`);
    if (reason !== 'shutdown') this.reportStatus('recoverable_error', `dropped ${items} ${this.signal} items (${reason}): ${detail}`);
  }

  private reportStatus(status: 'ok' | 'recoverable_error', message?: string): void {
    // While shutting down, the collector reports our status.
    if (!this.closing) this.settings.status.report(status, message);
  }

  private reportQueue(): void {
    const attributes = { signal: this.signal };
    this.settings.telemetry.gauge('exporter_queue_items', 'Items in an exporter\'s sending queue, including the request in flight.', this.queue.items, attributes);
    this.settings.telemetry.gauge('exporter_queue_bytes', 'Encoded bytes in an exporter\'s sending queue, including the request in flight.', this.queue.bytes, attributes);
  }

  private describeQueue(): string {
    return `${this.queue.items}/${this.queue.maxItems} items, ${this.queue.bytes}/${this.queue.maxBytes} bytes`;
  }
}
