/** How an exporter puts an encoded request on the wire: OTLP/HTTP or OTLP/gRPC. */
import type { Signal } from '../../collector/data/signals.js';

export type SendOutcome =
  /** Accepted; `rejected` counts what a partial success refused (data points, or profiles). */
  | { kind: 'delivered'; rejected: number; message: string }
  /** Worth another try (network error, 429, 503, UNAVAILABLE...); the server may say how long to wait. */
  | { kind: 'retryable'; reason: string; retryAfterMs?: number }
  /** Will fail again the same way (400, INVALID_ARGUMENT...). */
  | { kind: 'permanent'; reason: string };

export interface OtlpTransport {
  /** Never throws: every failure is an outcome. Gives up when `abort` fires. */
  send(signal: Signal, body: Uint8Array, abort: AbortSignal): Promise<SendOutcome>;
  close(): Promise<void>;
}
