/**
 * OTLP/HTTP with binary protobuf bodies, as https://opentelemetry.io/docs/specs/otlp/#otlphttp
 * says: POST to /v1/metrics and /v1development/profiles; 429, 502, 503 and 504
 * are retried (after Retry-After when the server sends one), every other error
 * status is not.
 */
import http from 'node:http';
import https from 'node:https';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Signal } from '../../collector/data/signals.js';
import { VERSION } from '../../collector/version.js';
import { decodeExportResponse, decodeRpcStatus } from '../otlpcommon/schema.js';
import type { TlsMaterial } from '../otlpcommon/tls.js';
import type { OtlpTransport, SendOutcome } from '../otlpcommon/transport.js';
import type { OtlpHttpConfig } from './config.js';

const gzipAsync = promisify(gzip);

export const SIGNAL_PATHS: Record<Signal, string> = { metrics: '/v1/metrics', profiles: '/v1development/profiles' };
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
/** Enough for any Export*ServiceResponse or error Status; the rest of a larger body is read and discarded. */
const MAX_RESPONSE_BYTES = 1 << 20;
const PROTOBUF = 'application/x-protobuf';

export class HttpTransport implements OtlpTransport {
  private readonly agent: http.Agent;
  private readonly client: typeof http | typeof https;

  constructor(
    private readonly config: OtlpHttpConfig,
    tls: TlsMaterial,
  ) {
    const secure = config.endpoint.startsWith('https:');
    this.client = secure ? https : http;
    this.agent = secure ? new https.Agent({ keepAlive: true, ...tls }) : new http.Agent({ keepAlive: true });
  }

  async send(signal: Signal, body: Uint8Array, abort: AbortSignal): Promise<SendOutcome> {
    const timeout = AbortSignal.timeout(this.config.timeout);
    const gzipped = this.config.compression === 'gzip';
    const payload = gzipped ? await gzipAsync(body) : body;
    return new Promise((resolve) => {
      const request = this.client.request(
        this.config.endpoint + SIGNAL_PATHS[signal],
        {
          method: 'POST',
          agent: this.agent,
          signal: AbortSignal.any([abort, timeout]),
          headers: {
            ...this.config.headers,
            'content-type': PROTOBUF,
            'content-length': payload.byteLength,
            'user-agent': `ebpf-collector/${VERSION}`,
            ...(gzipped ? { 'content-encoding': 'gzip' } : {}),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
          });
          response.on('end', () => resolve(outcomeOf(signal, response, Buffer.concat(chunks))));
          response.on('error', (error) => resolve({ kind: 'retryable', reason: `reading the response failed: ${error.message}` }));
        },
      );
      request.on('error', (error) =>
        resolve({ kind: 'retryable', reason: timeout.aborted ? `no response within ${this.config.timeout} ms` : `${describeError(error)}` }),
      );
      request.end(payload);
    });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}

function outcomeOf(signal: Signal, response: http.IncomingMessage, body: Buffer): SendOutcome {
  const status = response.statusCode ?? 0;
  const isProtobuf = (response.headers['content-type'] ?? '').startsWith(PROTOBUF);
  if (status >= 200 && status < 300) {
    if (!isProtobuf || body.length === 0) return { kind: 'delivered', rejected: 0, message: '' };
    try {
      return { kind: 'delivered', ...decodeExportResponse(signal, body) };
    } catch (error) {
      return { kind: 'delivered', rejected: 0, message: `undecodable response body: ${(error as Error).message}` };
    }
  }
  const detail = (isProtobuf ? decodeRpcStatus(body)?.message : undefined) ?? body.toString('utf8', 0, Math.min(body.length, 200)).trim();
  const reason = `HTTP ${status}${detail ? `: ${detail}` : ''}`;
  if (!RETRYABLE_STATUS.has(status)) return { kind: 'permanent', reason };
  const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
  return retryAfterMs === undefined ? { kind: 'retryable', reason } : { kind: 'retryable', reason, retryAfterMs };
}

/** Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, nowMs = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

function describeError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}
