/** The otlphttp exporter against a local OTLP/HTTP server (node:http) on 127.0.0.1. */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { eventually } from '../../test/support/collector.js';
import { testHost } from '../../test/support/components.js';
import { makeTestCertificates } from '../otlpcommon/testing/certificates.js';
import { createExporter, deliveryTests, type TransportKit } from '../otlpcommon/testing/delivery-suite.js';
import { FIXTURE_CPU_PROFILE_TOTALS, fixtureCpuProfile } from '../otlpcommon/testing/fixtures.js';
import { OtlpHttpSink, type HttpFailure } from '../otlpcommon/testing/otlp-sinks.js';
import { otlpHttpExporterFactory } from './factory.js';
import { parseRetryAfter } from './http-transport.js';

const kit: TransportKit<HttpFailure> = {
  type: 'otlphttp',
  factory: otlpHttpExporterFactory,
  startSink: (port) => OtlpHttpSink.start(port),
  endpointFor: (port) => `http://127.0.0.1:${port}`,
  baseConfig: {},
  retryable: { status: 503, body: 'overloaded' },
  permanent: { status: 400, body: 'bad request' },
  // Retry-After counts whole seconds.
  throttled: (delayMs) => ({ status: 429, headers: { 'retry-after': String(Math.ceil(delayMs / 1000)) } }),
};

deliveryTests(kit);

test('otlphttp: requests are POSTed gzip-compressed protobuf with the configured headers', async () => {
  const sink = await OtlpHttpSink.start();
  const { exporter } = createExporter(kit, sink.endpoint, { headers: { 'X-Scope-OrgID': 'tenant-1' } });
  try {
    await exporter.start(testHost());
    await exporter.consumers.profiles!.consume(fixtureCpuProfile());
    const [request] = await eventually('the request', 10_000, async () => (sink.received.length ? sink.received : undefined));
    assert.equal(request.headers['content-type'], 'application/x-protobuf');
    assert.equal(request.headers['content-encoding'], 'gzip');
    assert.equal(request.headers['x-scope-orgid'], 'tenant-1');
    assert.match(request.headers['user-agent'], /^ebpf-collector\//);
  } finally {
    await exporter.shutdown();
    await sink.close();
  }
});

test('otlphttp: compression none sends the protobuf as it is', async () => {
  const sink = await OtlpHttpSink.start();
  const { exporter } = createExporter(kit, sink.endpoint, { compression: 'none' });
  try {
    await exporter.start(testHost());
    await exporter.consumers.profiles!.consume(fixtureCpuProfile());
    const [request] = await eventually('the request', 10_000, async () => (sink.received.length ? sink.received : undefined));
    assert.equal(request.headers['content-encoding'], undefined);
    assert.equal(Number(request.headers['content-length']), request.body.length);
  } finally {
    await exporter.shutdown();
    await sink.close();
  }
});

test('otlphttp: 502 and 504 are retried too; 401 and 413 are not', async () => {
  const sink = await OtlpHttpSink.start();
  sink.failNext.push({ status: 502 }, { status: 504 }, { status: 401 }, { status: 413 });
  const { exporter, observed } = createExporter(kit, sink.endpoint);
  try {
    await exporter.start(testHost());
    for (let i = 0; i < 3; i++) await exporter.consumers.profiles!.consume(fixtureCpuProfile());
    // First request: 502, 504, 401 (dropped). Second: 413 (dropped). Third: accepted.
    await eventually('the third request', 10_000, async () => (sink.received.length === 1 ? true : undefined));
    assert.equal(sink.attempts, 5);
    assert.equal(await observed.total('dropped_items_total', { reason: 'permanent_error' }), 2 * 28);
  } finally {
    await exporter.shutdown();
    await sink.close();
  }
});

test('otlphttp: Retry-After is read as seconds or as an HTTP date', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 10_000);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(undefined), undefined);
});

test('otlphttp: https with a private CA and a client certificate (mutual TLS)', async () => {
  const certs = makeTestCertificates();
  const sink = await OtlpHttpSink.start(0, { key: certs.read(certs.serverKeyFile), cert: certs.read(certs.serverCertFile), clientCa: certs.read(certs.caFile) });
  const withClientCert = createExporter(kit, sink.endpoint, { tls: { ca_file: certs.caFile, cert_file: certs.clientCertFile, key_file: certs.clientKeyFile } });
  const withoutClientCert = createExporter(kit, sink.endpoint, { tls: { ca_file: certs.caFile }, timeout: '1s' });
  try {
    await withClientCert.exporter.start(testHost());
    await withoutClientCert.exporter.start(testHost());
    await withoutClientCert.exporter.consumers.profiles!.consume(fixtureCpuProfile());
    await withClientCert.exporter.consumers.profiles!.consume(fixtureCpuProfile());
    await eventually('the request with a client certificate', 10_000, async () => (sink.received.length === 1 ? true : undefined));
    await eventually('the other to fail', 10_000, async () => (withoutClientCert.observed.status().status === 'recoverable_error' ? true : undefined));
    assert.equal(await withoutClientCert.observed.total('exporter_queue_items', { signal: 'profiles' }), FIXTURE_CPU_PROFILE_TOTALS.samples, 'refused by the server, still queued for retry');
    assert.equal(sink.received.length, 1);
  } finally {
    await withClientCert.exporter.shutdown();
    await withoutClientCert.exporter.shutdown();
    await sink.close();
  }
});

test('otlphttp: a TLS file that cannot be read fails start, naming it', async () => {
  const directory = tmpdir();
  const { exporter } = createExporter(kit, 'https://127.0.0.1:4318', { tls: { ca_file: directory } });
  await assert.rejects(exporter.start(testHost()), new RegExp(`^Error: tls::ca_file: cannot read "${directory}": EISDIR`));
  await exporter.shutdown();
});
