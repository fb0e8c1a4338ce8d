/**
 * The OTLP protobuf schema, loaded with protobufjs from the copies of
 * opentelemetry-proto v1.11.0 under ./proto (field names kept in snake_case,
 * as the .proto files and the OTLP spec spell them).
 */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { projectPath } from '../../collector/paths.js';
import type { Signal } from '../../collector/data/signals.js';

/** Where the .proto files live, for protobufjs here and for protoc in tests. */
export const PROTO_DIR = projectPath('exporters', 'otlpcommon', 'proto');

export const PROFILES_SERVICE_PROTO = 'opentelemetry/proto/collector/profiles/v1development/profiles_service.proto';
export const METRICS_SERVICE_PROTO = 'opentelemetry/proto/collector/metrics/v1/metrics_service.proto';
const STATUS_PROTO = 'google/rpc/status.proto';

export const EXPORT_PROFILES_REQUEST = 'opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest';
export const EXPORT_METRICS_REQUEST = 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest';
const RESPONSE: Record<Signal, string> = {
  profiles: 'opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceResponse',
  metrics: 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse',
};
const RETRY_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.RetryInfo';

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  // Imports are written from the proto root ("opentelemetry/proto/..."), as protoc -I takes them.
  root.resolvePath = (_origin, target) => join(PROTO_DIR, target);
  root.loadSync([PROFILES_SERVICE_PROTO, METRICS_SERVICE_PROTO, STATUS_PROTO], { keepCase: true });
  root.resolveAll();
  return root;
}

const root = loadRoot();
export const exportProfilesRequestType = root.lookupType(EXPORT_PROFILES_REQUEST);
const statusType = root.lookupType('google.rpc.Status');
const retryInfoType = root.lookupType('google.rpc.RetryInfo');
const responseTypes: Record<Signal, protobuf.Type> = {
  profiles: root.lookupType(RESPONSE.profiles),
  metrics: root.lookupType(RESPONSE.metrics),
};

/** A 64-bit integer as protobufjs writes it, without going through a lossy JavaScript number. */
export interface Int64 {
  low: number;
  high: number;
}

export function int64(value: bigint): Int64 {
  return { low: Number(value & 0xffffffffn), high: Number((value >> 32n) & 0xffffffffn) };
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (value && typeof value === 'object' && 'low' in value && 'high' in value)
    return new protobuf.util.LongBits((value as Int64).low >>> 0, (value as Int64).high >>> 0).toNumber();
  return 0;
}

export interface PartialSuccess {
  /** Data points (metrics) or profiles (profiles) the server refused. */
  rejected: number;
  message: string;
}

/** The partial_success of an Export*ServiceResponse; an empty body is full success. */
export function decodeExportResponse(signal: Signal, body: Uint8Array): PartialSuccess {
  const decoded = responseTypes[signal].decode(body) as unknown as { partial_success?: Record<string, unknown> };
  const partial = decoded.partial_success ?? {};
  const rejected = signal === 'metrics' ? partial.rejected_data_points : partial.rejected_profiles;
  return { rejected: toNumber(rejected), message: String(partial.error_message ?? '') };
}

export interface RpcStatus {
  message: string;
  /** From a google.rpc.RetryInfo detail: how long the server asks us to wait. */
  retryDelayMs?: number;
}

/** A google.rpc.Status (an OTLP/HTTP error body, or gRPC's grpc-status-details-bin); undefined if it is not one. */
export function decodeRpcStatus(body: Uint8Array): RpcStatus | undefined {
  try {
    const status = statusType.decode(body) as unknown as { message?: string; details?: { type_url?: string; value?: Uint8Array }[] };
    const result: RpcStatus = { message: status.message ?? '' };
    for (const detail of status.details ?? []) {
      if (detail.type_url !== RETRY_INFO_TYPE_URL || !detail.value) continue;
      const info = retryInfoType.decode(detail.value) as unknown as { retry_delay?: { seconds?: unknown; nanos?: number } };
      if (info.retry_delay) result.retryDelayMs = toNumber(info.retry_delay.seconds) * 1000 + (info.retry_delay.nanos ?? 0) / 1e6;
    }
    return result;
  } catch {
    return undefined;
  }
}
