/**
 * Local OTLP receivers for tests, on 127.0.0.1 only: an OTLP/HTTP server
 * (node:http) and an OTLP/gRPC server (@grpc/grpc-js) that keep every request
 * body they accept, and can be told to fail the next requests first.
 * Bodies are decoded with protoc (see ./protoc.ts) by the helpers below.
 */
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import type { Signal } from '../../../collector/data/signals.js';
import { EXPORT_METHODS } from '../../otlp/grpc-transport.js';
import { SIGNAL_PATHS } from '../../otlphttp/http-transport.js';
import { EXPORT_METRICS_REQUEST, EXPORT_PROFILES_REQUEST, METRICS_SERVICE_PROTO, PROFILES_SERVICE_PROTO, PROTO_DIR } from '../schema.js';
import { message, messages, protocDecode, scalar, scalars, type TextMessage } from './protoc.js';

export interface ReceivedRequest {
  signal: Signal;
  /** The Export*ServiceRequest, decompressed. */
  body: Buffer;
  /** HTTP headers, or gRPC metadata. */
  headers: Record<string, string>;
}

/** How the sink answers one request instead of accepting it; 'hang' never answers. */
export type HttpFailure = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

export type GrpcFailure =
  | {
      code: grpc.status;
      details?: string;
      /** Sent as google.rpc.RetryInfo in grpc-status-details-bin. */
      retryDelayMs?: number;
    }
  | 'hang';

/** A partial success the sink answers with, still keeping the request. */
export interface PartialSuccess {
  rejected: number;
  message: string;
}

export interface SinkTls {
  key: Buffer;
  cert: Buffer;
  /** When set, clients must present a certificate this CA signed. */
  clientCa?: Buffer;
}

abstract class Sink<F> {
  /** Requests accepted (answered with success), in arrival order. */
  readonly received: ReceivedRequest[] = [];
  /** When each request reached the sink (Date.now()), answered or failed. */
  readonly attemptTimes: number[] = [];
  /** The next requests are answered with these, in order; once empty, requests are accepted. */
  readonly failNext: F[] = [];
  /** The next accepted requests are answered with these partial successes, in order. */
  readonly partialNext: PartialSuccess[] = [];

  get attempts(): number {
    return this.attemptTimes.length;
  }

  accepted(signal: Signal): ReceivedRequest[] {
    return this.received.filter((r) => r.signal === signal);
  }

  /** An Export*ServiceResponse: empty (full success) or with partial_success{rejected, error_message}, the same fields for every signal. */
  protected nextResponse(): Buffer {
    const partial = this.partialNext.shift();
    if (!partial) return Buffer.alloc(0);
    const inner = [0x08, ...varint(partial.rejected), ...lengthDelimited(2, [...Buffer.from(partial.message)])];
    return Buffer.from(lengthDelimited(1, inner));
  }
}

function varint(value: number): number[] {
  const bytes: number[] = [];
  for (; value > 0x7f; value = Math.floor(value / 128)) bytes.push((value & 0x7f) | 0x80);
  bytes.push(value);
  return bytes;
}

function lengthDelimited(field: number, payload: number[]): number[] {
  return [(field << 3) | 2, ...varint(payload.length), ...payload];
}

export class OtlpHttpSink extends Sink<HttpFailure> {
  private constructor(
    private readonly server: http.Server,
    readonly secure: boolean,
  ) {
    super();
  }

  /** Listens on 127.0.0.1:`port` (0 for a free one). */
  static async start(port = 0, tls?: SinkTls): Promise<OtlpHttpSink> {
    let sink!: OtlpHttpSink;
    const handler: http.RequestListener = (request, response) => sink.handle(request, response);
    const server = tls
      ? https.createServer({ key: tls.key, cert: tls.cert, ca: tls.clientCa, requestCert: Boolean(tls.clientCa), rejectUnauthorized: Boolean(tls.clientCa) }, handler)
      : http.createServer(handler);
    sink = new OtlpHttpSink(server, Boolean(tls));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return sink;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The exporter's `endpoint`. */
  get endpoint(): string {
    return `${this.secure ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      this.attemptTimes.push(Date.now());
      const signal = (Object.keys(SIGNAL_PATHS) as Signal[]).find((s) => SIGNAL_PATHS[s] === request.url);
      if (request.method !== 'POST' || !signal) {
        response.writeHead(404).end();
        return;
      }
      const failure = this.failNext.shift();
      if (failure === 'hang') return;
      if (failure) {
        response.writeHead(failure.status, { 'content-type': 'text/plain', ...failure.headers }).end(failure.body ?? '');
        return;
      }
      const raw = Buffer.concat(chunks);
      const body = request.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      this.received.push({ signal, body, headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, String(v)])) });
      response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(this.nextResponse());
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

export class OtlpGrpcSink extends Sink<GrpcFailure> {
  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {
    super();
  }

  static async start(port = 0, tls?: SinkTls): Promise<OtlpGrpcSink> {
    const server = new grpc.Server();
    let sink!: OtlpGrpcSink;
    const passThrough = (bytes: Buffer) => bytes;
    for (const signal of Object.keys(EXPORT_METHODS) as Signal[]) {
      const definition: grpc.ServiceDefinition = {
        Export: {
          path: EXPORT_METHODS[signal],
          requestStream: false,
          responseStream: false,
          requestSerialize: passThrough,
          requestDeserialize: passThrough,
          responseSerialize: passThrough,
          responseDeserialize: passThrough,
        },
      };
      server.addService(definition, {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => sink.handle(signal, call, callback),
      });
    }
    const credentials = tls
      ? grpc.ServerCredentials.createSsl(tls.clientCa ?? null, [{ private_key: tls.key, cert_chain: tls.cert }], Boolean(tls.clientCa))
      : grpc.ServerCredentials.createInsecure();
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, credentials, (error, actual) => (error ? reject(error) : resolve(actual))),
    );
    sink = new OtlpGrpcSink(server, bound);
    return sink;
  }

  /** The exporter's `endpoint`. */
  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  private handle(signal: Signal, call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
    this.attemptTimes.push(Date.now());
    const failure = this.failNext.shift();
    if (failure === 'hang') return;
    if (failure) {
      const metadata = new grpc.Metadata();
      if (failure.retryDelayMs !== undefined) metadata.set('grpc-status-details-bin', encodeRetryInfoStatus(failure.code, failure.details ?? '', failure.retryDelayMs));
      callback({ code: failure.code, details: failure.details ?? '', metadata });
      return;
    }
    const headers = Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)]));
    this.received.push({ signal, body: call.request, headers });
    callback(null, this.nextResponse());
  }

  async close(): Promise<void> {
    this.server.forceShutdown();
  }
}

/** google.rpc.Status{code, message, details: [Any{RetryInfo{retry_delay}}]}, written by hand so that the sink shares no encoder with the exporter. */
function encodeRetryInfoStatus(code: number, text: string, delayMs: number): Buffer {
  const seconds = Math.floor(delayMs / 1000);
  const nanos = Math.round((delayMs % 1000) * 1e6);
  const duration = [...(seconds ? [0x08, ...varint(seconds)] : []), ...(nanos ? [0x10, ...varint(nanos)] : [])];
  const retryInfo = lengthDelimited(1, duration);
  const any = [...lengthDelimited(1, [...Buffer.from('type.googleapis.com/google.rpc.RetryInfo')]), ...lengthDelimited(2, retryInfo)];
  return Buffer.from([0x08, ...varint(code), ...lengthDelimited(2, [...Buffer.from(text)]), ...lengthDelimited(3, any)]);
}

/** A received ExportProfilesServiceRequest, decoded by protoc against `protoDir` (by default the project's copy). */
export function decodeProfilesRequest(body: Uint8Array, protoDir = PROTO_DIR): TextMessage {
  return protocDecode(body, EXPORT_PROFILES_REQUEST, protoDir, PROFILES_SERVICE_PROTO);
}

export function decodeMetricsRequest(body: Uint8Array, protoDir = PROTO_DIR): TextMessage {
  return protocDecode(body, EXPORT_METRICS_REQUEST, protoDir, METRICS_SERVICE_PROTO);
}

export interface ProfilesSummary {
  /** Sum of all sample values. */
  samples: number;
  samplesByPid: Map<number, number>;
  /** Samples whose stack holds a function of this name anywhere, by name. */
  samplesByFunction: Map<string, number>;
  /** Resource attributes by pid (string values; ints as decimal strings). */
  resourceByPid: Map<number, Record<string, string>>;
}

/** summarizeProfiles() over every profiles request a sink accepted, added up: for end-to-end tests of a real workload. */
export function summarizeAcceptedProfiles(sink: { accepted(signal: Signal): ReceivedRequest[] }): ProfilesSummary {
  const total: ProfilesSummary = { samples: 0, samplesByPid: new Map(), samplesByFunction: new Map(), resourceByPid: new Map() };
  const add = <K>(into: Map<K, number>, from: Map<K, number>) => from.forEach((count, key) => into.set(key, (into.get(key) ?? 0) + count));
  for (const request of sink.accepted('profiles')) {
    const summary = summarizeProfiles(decodeProfilesRequest(request.body));
    total.samples += summary.samples;
    add(total.samplesByPid, summary.samplesByPid);
    add(total.samplesByFunction, summary.samplesByFunction);
    summary.resourceByPid.forEach((attributes, pid) => total.resourceByPid.set(pid, attributes));
  }
  return total;
}

/**
 * What a decoded profiles request says, resolved through its dictionary: for
 * asserting on what a real workload produced (e.g. its hot function is there,
 * under its pid) without knowing the encoding.
 */
export function summarizeProfiles(request: TextMessage): ProfilesSummary {
  const dictionary = message(request, 'dictionary');
  const strings = scalars(dictionary, 'string_table');
  const functions = messages(dictionary, 'function_table');
  const locations = messages(dictionary, 'location_table');
  const stacks = messages(dictionary, 'stack_table');
  const functionNamesOfStack = (stackIndex: number): Set<string> => {
    const names = new Set<string>();
    for (const locationIndex of scalars(stacks[stackIndex], 'location_indices'))
      for (const line of messages(locations[Number(locationIndex)], 'lines'))
        names.add(strings[Number(scalar(functions[Number(scalar(line, 'function_index'))], 'name_strindex'))]);
    return names;
  };
  const summary: ProfilesSummary = { samples: 0, samplesByPid: new Map(), samplesByFunction: new Map(), resourceByPid: new Map() };
  for (const resourceProfiles of messages(request, 'resource_profiles')) {
    const attributes: Record<string, string> = {};
    for (const attribute of messages(message(resourceProfiles, 'resource'), 'attributes')) {
      const value = message(attribute, 'value');
      attributes[scalar(attribute, 'key', '')] = scalar(value, 'string_value', '') || scalar(value, 'int_value', '');
    }
    const pid = Number(attributes['process.pid']);
    summary.resourceByPid.set(pid, attributes);
    for (const scopeProfiles of messages(resourceProfiles, 'scope_profiles'))
      for (const profile of messages(scopeProfiles, 'profiles'))
        for (const sample of messages(profile, 'samples')) {
          const count = scalars(sample, 'values').reduce((sum, v) => sum + Number(v), 0);
          summary.samples += count;
          summary.samplesByPid.set(pid, (summary.samplesByPid.get(pid) ?? 0) + count);
          for (const name of functionNamesOfStack(Number(scalar(sample, 'stack_index'))))
            summary.samplesByFunction.set(name, (summary.samplesByFunction.get(name) ?? 0) + count);
        }
  }
  return summary;
}
