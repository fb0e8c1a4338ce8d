/** The otlp (gRPC) exporter against a local @grpc/grpc-js server on 127.0.0.1. */
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../../test/support/collector.js';
import { testHost } from '../../test/support/components.js';
import { makeTestCertificates } from '../otlpcommon/testing/certificates.js';
import { createExporter, deliveryTests, type TransportKit } from '../otlpcommon/testing/delivery-suite.js';
import { FIXTURE_CPU_PROFILE_TOTALS, fixtureCpuProfile } from '../otlpcommon/testing/fixtures.js';
import { OtlpGrpcSink, type GrpcFailure } from '../otlpcommon/testing/otlp-sinks.js';
import { checkFixtureProfilesRequest } from '../otlpcommon/testing/request-checks.js';
import { otlpGrpcExporterFactory } from './factory.js';

const kit: TransportKit<GrpcFailure> = {
  type: 'otlp',
  factory: otlpGrpcExporterFactory,
  startSink: (port) => OtlpGrpcSink.start(port),
  endpointFor: (port) => `127.0.0.1:${port}`,
  baseConfig: { tls: { insecure: true } },
  retryable: { code: grpc.status.UNAVAILABLE, details: 'overloaded' },
  permanent: { code: grpc.status.INVALID_ARGUMENT, details: 'bad request' },
  throttled: (delayMs) => ({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'slow down', retryDelayMs: delayMs }),
};

deliveryTests(kit);

test('otlp: the configured headers arrive as gRPC metadata', async () => {
  const sink = await OtlpGrpcSink.start();
  const { exporter } = createExporter(kit, sink.endpoint, { headers: { 'X-Scope-OrgID': 'tenant-1' } });
  try {
    await exporter.start(testHost());
    await exporter.consumers.profiles!.consume(fixtureCpuProfile());
    const [request] = await eventually('the request', 10_000, async () => (sink.received.length ? sink.received : undefined));
    assert.equal(request.headers['x-scope-orgid'], 'tenant-1');
    assert.match(request.headers['user-agent'], /^ebpf-collector\//);
  } finally {
    await exporter.shutdown();
    await sink.close();
  }
});

/**
 * A bare HTTP/2 server that answers every gRPC call with OK and keeps what
 * grpc-js hides from its handlers: the grpc-encoding header and the
 * compressed flag of the message frame.
 */
async function startFrameRecorder(): Promise<{ endpoint: string; frames: { encoding?: string; compressedFlag: number; message: Buffer }[]; close(): Promise<void> }> {
  const frames: { encoding?: string; compressedFlag: number; message: Buffer }[] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      frames.push({ encoding: headers['grpc-encoding'] as string | undefined, compressedFlag: body[0], message: body.subarray(5, 5 + body.readUInt32BE(1)) });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0])); // an empty response message, uncompressed
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { endpoint: `127.0.0.1:${port}`, frames, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

for (const compression of ['gzip', 'none'] as const)
  test(`otlp: compression ${compression} is what goes on the wire`, async () => {
    const recorder = await startFrameRecorder();
    const { exporter } = createExporter(kit, recorder.endpoint, { compression });
    try {
      await exporter.start(testHost());
      await exporter.consumers.profiles!.consume(fixtureCpuProfile());
      const [frame] = await eventually('the call', 10_000, async () => (recorder.frames.length ? recorder.frames : undefined));
      if (compression === 'gzip') {
        assert.equal(frame.encoding, 'gzip');
        assert.equal(frame.compressedFlag, 1);
        checkFixtureProfilesRequest(gunzipSync(frame.message), { processTableKnowsThisProcess: true });
      } else {
        assert.notEqual(frame.encoding, 'gzip');
        assert.equal(frame.compressedFlag, 0);
        checkFixtureProfilesRequest(frame.message, { processTableKnowsThisProcess: true });
      }
    } finally {
      await exporter.shutdown();
      await recorder.close();
    }
  });

test('otlp: DEADLINE_EXCEEDED and ABORTED are retried; RESOURCE_EXHAUSTED without RetryInfo and UNAUTHENTICATED are not', async () => {
  const sink = await OtlpGrpcSink.start();
  sink.failNext.push(
    { code: grpc.status.DEADLINE_EXCEEDED },
    { code: grpc.status.ABORTED },
    { code: grpc.status.RESOURCE_EXHAUSTED, details: 'message too large' },
    { code: grpc.status.UNAUTHENTICATED },
  );
  const { exporter, observed } = createExporter(kit, sink.endpoint);
  try {
    await exporter.start(testHost());
    for (let i = 0; i < 3; i++) await exporter.consumers.profiles!.consume(fixtureCpuProfile());
    // First request: DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED (dropped). Second: UNAUTHENTICATED (dropped). Third: accepted.
    await eventually('the third request', 10_000, async () => (sink.received.length === 1 ? true : undefined));
    await sleep(300);
    assert.equal(sink.attempts, 5);
    assert.equal(await observed.total('dropped_items_total', { reason: 'permanent_error' }), 2 * 28);
  } finally {
    await exporter.shutdown();
    await sink.close();
  }
});

test('otlp: TLS with a private CA and a client certificate (mutual TLS)', async () => {
  const certs = makeTestCertificates();
  const sink = await OtlpGrpcSink.start(0, { key: certs.read(certs.serverKeyFile), cert: certs.read(certs.serverCertFile), clientCa: certs.read(certs.caFile) });
  const tls = { ca_file: certs.caFile, cert_file: certs.clientCertFile, key_file: certs.clientKeyFile };
  const withClientCert = createExporter(kit, sink.endpoint, { tls });
  const withoutClientCert = createExporter(kit, sink.endpoint, { tls: { ca_file: certs.caFile }, timeout: '1s' });
  const plaintext = createExporter(kit, sink.endpoint, { timeout: '1s' });
  try {
    for (const { exporter } of [withClientCert, withoutClientCert, plaintext]) {
      await exporter.start(testHost());
      await exporter.consumers.profiles!.consume(fixtureCpuProfile());
    }
    await eventually('the request with a client certificate', 10_000, async () => (sink.received.length === 1 ? true : undefined));
    for (const refused of [withoutClientCert, plaintext]) {
      await eventually('the others to fail', 10_000, async () => (refused.observed.status().status === 'recoverable_error' ? true : undefined));
      assert.equal(await refused.observed.total('exporter_queue_items', { signal: 'profiles' }), FIXTURE_CPU_PROFILE_TOTALS.samples, 'refused by the server, still queued for retry');
    }
    assert.equal(sink.received.length, 1);
  } finally {
    for (const { exporter } of [withClientCert, withoutClientCert, plaintext]) await exporter.shutdown();
    await sink.close();
  }
});
