/**
 * OTLP/gRPC with @grpc/grpc-js: requests go out as the protobuf bytes we
 * encoded (no code generation, no proto-loader). Status codes are retried as
 * https://opentelemetry.io/docs/specs/otlp/#failures says: UNAVAILABLE,
 * DEADLINE_EXCEEDED and the like always, RESOURCE_EXHAUSTED only when the
 * server says when (RetryInfo), everything else never.
 */
import * as grpc from '@grpc/grpc-js';
import { formatEndpoint } from '../../collector/config/types.js';
import type { Signal } from '../../collector/data/signals.js';
import { VERSION } from '../../collector/version.js';
import { decodeExportResponse, decodeRpcStatus } from '../otlpcommon/schema.js';
import type { TlsMaterial } from '../otlpcommon/tls.js';
import type { OtlpTransport, SendOutcome } from '../otlpcommon/transport.js';
import type { OtlpGrpcConfig } from './config.js';

export const EXPORT_METHODS: Record<Signal, string> = {
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  profiles: '/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export',
};

const RETRYABLE = new Set([
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.ABORTED,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const identity = (bytes: Buffer): Buffer => bytes;

export class GrpcTransport implements OtlpTransport {
  private readonly client: grpc.Client;

  constructor(
    private readonly config: OtlpGrpcConfig,
    tls: TlsMaterial,
  ) {
    const credentials = config.tls.insecure ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
    this.client = new grpc.Client(formatEndpoint(config.endpoint), credentials, {
      'grpc.primary_user_agent': `ebpf-collector/${VERSION}`,
      'grpc.default_compression_algorithm': config.compression === 'gzip' ? grpc.compressionAlgorithms.gzip : grpc.compressionAlgorithms.identity,
      // Reconnect at least as often as we retry, so that a server that is back is used by the next retry.
      'grpc.initial_reconnect_backoff_ms': Math.min(1000, config.retry_on_failure.initial_interval),
      'grpc.max_reconnect_backoff_ms': config.retry_on_failure.max_interval,
    });
  }

  send(signal: Signal, body: Uint8Array, abort: AbortSignal): Promise<SendOutcome> {
    return new Promise((resolve) => {
      const metadata = new grpc.Metadata();
      for (const [key, value] of Object.entries(this.config.headers)) metadata.set(key.toLowerCase(), value);
      const call = this.client.makeUnaryRequest(
        EXPORT_METHODS[signal],
        asBuffer,
        identity,
        body,
        metadata,
        { deadline: Date.now() + this.config.timeout },
        (error, response) => {
          abort.removeEventListener('abort', cancel);
          resolve(error ? outcomeOfError(error) : outcomeOfResponse(signal, response ?? Buffer.alloc(0)));
        },
      );
      const cancel = () => call.cancel();
      abort.addEventListener('abort', cancel, { once: true });
    });
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

function outcomeOfResponse(signal: Signal, body: Buffer): SendOutcome {
  try {
    return { kind: 'delivered', ...decodeExportResponse(signal, body) };
  } catch (error) {
    return { kind: 'delivered', rejected: 0, message: `undecodable response: ${(error as Error).message}` };
  }
}

function outcomeOfError(error: grpc.ServiceError): SendOutcome {
  const reason = `${grpc.status[error.code] ?? error.code}: ${error.details}`;
  if (RETRYABLE.has(error.code)) return { kind: 'retryable', reason };
  if (error.code === grpc.status.RESOURCE_EXHAUSTED) {
    const [details] = error.metadata?.get('grpc-status-details-bin') ?? [];
    const retryDelayMs = details instanceof Buffer ? decodeRpcStatus(details)?.retryDelayMs : undefined;
    // Without RetryInfo the server is out of something a retry will not bring back (e.g. message too large).
    if (retryDelayMs !== undefined) return { kind: 'retryable', reason, retryAfterMs: retryDelayMs };
  }
  return { kind: 'permanent', reason };
}
