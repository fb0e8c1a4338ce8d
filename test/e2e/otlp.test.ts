/**
 * OTLP end to end through the CLI, as a sidecar user runs it: a real workload
 * is profiled and its profiles arrive at a local OTLP sink (HTTP and gRPC),
 * decoded with protoc against the project's schema and compared with what the
 * pprof exporter wrote for the same windows; syscall counts arrive as OTLP sums.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { projectPath } from '../../collector/paths.js';
import { decodedSum } from '../../exporters/otlpcommon/testing/request-checks.js';
import { messages, scalars, type TextMessage } from '../../exporters/otlpcommon/testing/protoc.js';
import {
  decodeMetricsRequest,
  decodeProfilesRequest,
  OtlpGrpcSink,
  OtlpHttpSink,
  summarizeAcceptedProfiles,
} from '../../exporters/otlpcommon/testing/otlp-sinks.js';
import { goToolPprof, parseRaw } from '../../exporters/pprof/testing/go-tool-pprof.js';
import { compileWorkload, removeWorkloads, startWorkload } from '../../receivers/cpu/testing/workloads.js';
import { eventually, freePort, RunningCollector, sampleValue, scrape } from '../support/collector.js';

after(removeWorkloads);

const DICTIONARY_TABLES = ['mapping_table', 'location_table', 'function_table', 'attribute_table', 'stack_table'];

/** Samples of `pid` in every pprof file of `directory`, read back with go tool pprof. */
async function pprofSamples(directory: string, pid: number): Promise<number> {
  let total = 0;
  for (const file of readdirSync(directory)) {
    const profile = parseRaw((await goToolPprof(['-raw'], join(directory, file))).stdout);
    for (const sample of profile.samples) if (sample.labels.pid === `[${pid}]` || sample.labels.pid === String(pid)) total += sample.values[0];
  }
  return total;
}

function checkDictionary(request: TextMessage): void {
  const dictionary = messages(request, 'dictionary')[0];
  assert.equal(scalars(dictionary, 'string_table')[0], '', 'string_table[0] is the empty string');
  for (const table of DICTIONARY_TABLES) {
    const first = messages(dictionary, table)[0];
    assert.deepEqual(first, {}, `${table}[0] is the zero value`);
  }
  // The spec asks for the zero link as 16 and 8 zero bytes, for codecs that check lengths.
  const link = messages(dictionary, 'link_table')[0];
  assert.deepEqual(link, { trace_id: ['\0'.repeat(16)], span_id: ['\0'.repeat(8)] }, 'link_table[0] is the zero link');
}

async function profileThrough(exporter: string, exporterConfig: string, sink: OtlpHttpSink | OtlpGrpcSink): Promise<void> {
  const workload = startWorkload(compileWorkload('hotspots'), ['3']);
  const profiles = join(mkdtempSync(join(tmpdir(), 'ebpf-collector-otlp-e2e-')), 'profiles');
  const collector = await RunningCollector.start(`
receivers:
  cpu: { frequency_hz: 199, collection_interval: 1s, pids: [${workload.pid}] }
processors:
  symbolizer: {}
exporters:
  pprof: { directory: ${profiles} }
  ${exporter}: ${exporterConfig}
service:
  http: { endpoint: 127.0.0.1:HTTP_PORT }
  pipelines:
    profiles: { receivers: [cpu], processors: [symbolizer], exporters: [pprof, ${exporter}] }
`);
  try {
    workload.go();
    await workload.finished;
  } finally {
    // Shutdown flushes the last window to both exporters.
    assert.equal(await collector.stop(), 0, collector.stderr);
  }
  const requests = sink.accepted('profiles');
  assert.ok(requests.length > 0, 'profiles arrived');
  for (const request of requests) checkDictionary(decodeProfilesRequest(request.body));
  const summary = summarizeAcceptedProfiles(sink);
  for (const name of ['hot_a', 'hot_b', 'hot_c']) assert.ok((summary.samplesByFunction.get(name) ?? 0) > 0, `${name} is in the string table and sampled`);
  assert.equal(summary.resourceByPid.get(workload.pid)?.['process.pid'], String(workload.pid));
  assert.equal(summary.resourceByPid.get(workload.pid)?.['service.name'], 'hotspots');
  assert.equal(summary.samplesByPid.get(workload.pid), await pprofSamples(profiles, workload.pid), 'OTLP and pprof saw the same samples');
}

test('a real workload\'s profiles arrive over OTLP/HTTP, decodable by protoc, matching the pprof exporter', async () => {
  const sink = await OtlpHttpSink.start();
  try {
    await profileThrough('otlphttp', `{ endpoint: "${sink.endpoint}", compression: gzip }`, sink);
  } finally {
    await sink.close();
  }
});

test('the same over OTLP/gRPC', async () => {
  const sink = await OtlpGrpcSink.start();
  try {
    await profileThrough('otlp', `{ endpoint: "${sink.endpoint}", tls: { insecure: true } }`, sink);
  } finally {
    await sink.close();
  }
});

test('syscall counts arrive as an OTLP monotonic sum', async () => {
  const sink = await OtlpHttpSink.start();
  const workload = spawn(projectPath('build', 'workloads', 'syscall_mix'), ['20000', '100'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ready = new Promise((resolve) => workload.stdout.once('data', resolve));
  const exited = new Promise((resolve) => workload.once('exit', resolve));
  const collector = await RunningCollector.start(`
receivers:
  syscalls: { collection_interval: 500ms, pids: [${workload.pid}] }
exporters:
  otlphttp: { endpoint: "${sink.endpoint}", temporality: cumulative }
service:
  http: { endpoint: 127.0.0.1:HTTP_PORT }
  pipelines:
    metrics: { receivers: [syscalls], exporters: [otlphttp] }
`);
  try {
    await ready;
    workload.stdin.end('go\n');
    await exited;
    const sum = await eventually('ebpf_syscall_total for getppid', 15_000, async () => {
      const last = sink.accepted('metrics').at(-1);
      const decoded = last && decodedSum(decodeMetricsRequest(last.body), 'ebpf_syscall_total', 'syscall');
      return decoded && decoded.values.getppid >= 20_000 ? decoded : undefined;
    });
    assert.equal(sum.monotonic, true);
    assert.equal(sum.temporality, 'AGGREGATION_TEMPORALITY_CUMULATIVE');
    assert.ok(Math.abs(sum.values.getppid - 20_000) <= 200, `getppid counted ${sum.values.getppid} times, made 20000`);
  } finally {
    assert.equal(await collector.stop(), 0, collector.stderr);
    await sink.close();
  }
});

test('with the sink down for a minute the queue stays within its bound, drops are counted, and delivery resumes', async () => {
  const sinkPort = await freePort();
  const metricsPort = await freePort();
  const maxBytes = 100_000;
  const collector = await RunningCollector.start(`
receivers:
  cpu: { frequency_hz: 97, collection_interval: 1s }
  process: { collection_interval: 1s }
processors:
  symbolizer: {}
exporters:
  otlphttp:
    endpoint: "http://127.0.0.1:${sinkPort}"
    sending_queue: { queue_size: 100000, max_bytes: ${maxBytes} }
    retry_on_failure: { initial_interval: 1s, max_interval: 5s, max_elapsed_time: 10m }
  prometheus: { endpoint: "127.0.0.1:${metricsPort}" }
service:
  http: { endpoint: 127.0.0.1:HTTP_PORT }
  pipelines:
    profiles: { receivers: [cpu], processors: [symbolizer], exporters: [otlphttp] }
    metrics: { receivers: [process], exporters: [prometheus] }
`);
  let sink: OtlpHttpSink | undefined;
  try {
    const queueBytes = async () =>
      sampleValue(await scrape(metricsPort), 'ebpf_collector_exporter_queue_bytes', { component: 'otlphttp', signal: 'profiles' });
    let peak = 0;
    const outageEnds = Date.now() + 60_000;
    while (Date.now() < outageEnds) {
      peak = Math.max(peak, await queueBytes());
      assert.ok(peak <= maxBytes, `the queue holds ${peak} bytes, over its ${maxBytes} bound`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    assert.ok(peak > 0, 'profiles queued up while the sink was down');
    const dropped = sampleValue(await scrape(metricsPort), 'ebpf_collector_dropped_items_total', {
      component: 'otlphttp',
      signal: 'profiles',
      reason: 'sending_queue_full',
    });
    assert.ok(dropped > 0, `a minute of whole-system profiles overflows a 100 kB queue, and the overflow is counted (peak ${peak} bytes): ${(await scrape(metricsPort)).split('\n').filter((l) => l.includes('otlphttp')).join('\n')}`);

    sink = await OtlpHttpSink.start(sinkPort);
    const arrived = sink;
    await eventually('delivery to resume', 30_000, async () => (arrived.accepted('profiles').length > 0 ? true : undefined));
    await eventually('the queue to drain', 30_000, async () => ((await queueBytes()) < maxBytes / 2 ? true : undefined));
  } finally {
    assert.equal(await collector.stop(), 0, collector.stderr);
    await sink?.close();
  }
});
