/**
 * The tests both OTLP exporters must pass, whatever their transport: what
 * arrives at a local sink (decoded with protoc), lifecycle, and the delivery
 * guarantees (retries, no retry, bounded queue, shutdown's deadline), each
 * item that does not arrive counted as dropped.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Component, Consumers, ExporterFactory } from '../../../collector/component.js';
import type { Signal } from '../../../collector/data/signals.js';
import { eventually, freePort } from '../../../test/support/collector.js';
import { testHost } from '../../../test/support/components.js';
import { encodeProfilesRequest } from '../profiles-request.js';
import { FIXTURE_CPU_PROFILE_TOTALS, fixtureCpuProfile, fixtureSyscallMetrics } from './fixtures.js';
import { decodeMetricsRequest, summarizeAcceptedProfiles, type PartialSuccess, type ReceivedRequest } from './otlp-sinks.js';
import { checkAgainstOfficialProtos, checkFixtureProfilesRequest, decodedSum } from './request-checks.js';
import { observedSettings, type ObservedSettings } from './telemetry.js';

export interface TestSink<F> {
  readonly received: ReceivedRequest[];
  readonly attemptTimes: number[];
  readonly attempts: number;
  readonly failNext: F[];
  readonly partialNext: PartialSuccess[];
  readonly endpoint: string;
  accepted(signal: Signal): ReceivedRequest[];
  close(): Promise<void>;
}

export interface TransportKit<F> {
  type: 'otlphttp' | 'otlp';
  factory: ExporterFactory<any>;
  /** Starts a sink on 127.0.0.1:`port` (0 for any). */
  startSink(port?: number): Promise<TestSink<F>>;
  /** The exporter's endpoint for a sink that will listen on `port`. */
  endpointFor(port: number): string;
  /** Config every exporter here gets besides endpoint (gRPC: plaintext). */
  baseConfig: Record<string, unknown>;
  /** A failure the OTLP spec says to retry (503, UNAVAILABLE). */
  retryable: F;
  /** One it says not to retry (400, INVALID_ARGUMENT). */
  permanent: F;
  /** The server asks to wait `delayMs` (429 with Retry-After, RESOURCE_EXHAUSTED with RetryInfo). */
  throttled(delayMs: number): F;
}

/** Retries fast enough for a test, yet slow enough that the queue fills between them. */
export const FAST_RETRY = { initial_interval: '50ms', max_interval: '200ms', max_elapsed_time: '60s' };

const SIGNALS: ReadonlySet<Signal> = new Set(['profiles', 'metrics']);

export interface Running {
  exporter: Component & { consumers: Consumers };
  observed: ObservedSettings;
}

export function createExporter<F>(kit: TransportKit<F>, endpoint: string, config: Record<string, unknown> = {}): Running {
  const observed = observedSettings(kit.type);
  const parsed = kit.factory.configSchema.parse({ ...kit.baseConfig, endpoint, retry_on_failure: FAST_RETRY, ...config });
  return { exporter: kit.factory.create(observed.settings, parsed, SIGNALS), observed };
}

async function consumeProfiles(exporter: Running['exporter'], times = 1): Promise<void> {
  for (let i = 0; i < times; i++) await exporter.consumers.profiles!.consume(fixtureCpuProfile());
}

const dropped = (observed: ObservedSettings, reason: string) => observed.total('dropped_items_total', { signal: 'profiles', reason });
/** The sending queue's fill as its self-telemetry gauges show it. */
const queued = (observed: ObservedSettings, unit: 'items' | 'bytes') => observed.total(`exporter_queue_${unit}`, { signal: 'profiles' });

export function deliveryTests<F>(kit: TransportKit<F>): void {
  const name = (what: string) => `${kit.type}: ${what}`;

  test(name('lifecycle: shutdown without start, and twice'), async () => {
    const { exporter } = createExporter(kit, kit.endpointFor(await freePort()));
    await exporter.shutdown();
    await exporter.shutdown();
  });

  test(name('lifecycle: start, shut down, start a fresh instance, shut down'), async () => {
    const sink = await kit.startSink();
    try {
      for (let round = 1; round <= 2; round++) {
        const { exporter } = createExporter(kit, sink.endpoint);
        await exporter.start(testHost());
        await consumeProfiles(exporter);
        await exporter.shutdown();
        await exporter.shutdown();
        assert.equal(sink.accepted('profiles').length, round, 'shutdown delivered what was queued');
      }
    } finally {
      await sink.close();
    }
  });

  test(name('a profile batch arrives as one ExportProfilesServiceRequest that protoc decodes'), async () => {
    const sink = await kit.startSink();
    const { exporter, observed } = createExporter(kit, sink.endpoint);
    try {
      await exporter.start(testHost());
      await consumeProfiles(exporter);
      const [request] = await eventually('the profiles request', 10_000, async () => (sink.accepted('profiles').length ? sink.accepted('profiles') : undefined));
      checkFixtureProfilesRequest(request.body, { processTableKnowsThisProcess: true });
      assert.deepEqual(summarizeAcceptedProfiles(sink).samplesByPid, FIXTURE_CPU_PROFILE_TOTALS.byPid);
      checkAgainstOfficialProtos(request.body, 'profiles');
      await eventually('exported items counted', 5_000, async () =>
        (await observed.total('exported_items_total', { signal: 'profiles' })) === FIXTURE_CPU_PROFILE_TOTALS.samples ? true : undefined,
      );
    } finally {
      await exporter.shutdown();
      await sink.close();
    }
  });

  test(name('an empty batch sends nothing'), async () => {
    const sink = await kit.startSink();
    const { exporter } = createExporter(kit, sink.endpoint, { temporality: 'delta' });
    try {
      await exporter.start(testHost());
      await exporter.consumers.profiles!.consume({ startTimeMs: Date.now() - 1000, endTimeMs: Date.now(), periodNs: 1e7, samples: [] });
      await exporter.consumers.metrics!.consume({ startTimeMs: Date.now() - 1000, endTimeMs: Date.now(), metrics: [] });
      await consumeProfiles(exporter);
      await eventually('the one real request', 10_000, async () => (sink.attempts === 1 ? true : undefined));
      await sleep(200);
      assert.deepEqual(sink.received.map((r) => r.signal), ['profiles']);
    } finally {
      await exporter.shutdown();
      await sink.close();
    }
  });

  for (const temporality of ['cumulative', 'delta'] as const)
    test(name(`metrics: ebpf_syscall_total arrives as a monotonic Sum with ${temporality} temporality`), async () => {
      const sink = await kit.startSink();
      const { exporter, observed } = createExporter(kit, sink.endpoint, { temporality });
      try {
        await exporter.start(testHost());
        const t0 = Date.now() - 20_000;
        await exporter.consumers.metrics!.consume(fixtureSyscallMetrics(t0, t0 + 10_000, 3, 5));
        await exporter.consumers.metrics!.consume(fixtureSyscallMetrics(t0 + 10_000, t0 + 20_000, 4, 6));
        const requests = await eventually('two metrics requests', 10_000, async () => (sink.accepted('metrics').length === 2 ? sink.accepted('metrics') : undefined));
        const [first, second] = requests.map((r) => decodedSum(decodeMetricsRequest(r.body), 'ebpf_syscall_total', 'syscall')!);
        const expectedTemporality = temporality === 'cumulative' ? 'AGGREGATION_TEMPORALITY_CUMULATIVE' : 'AGGREGATION_TEMPORALITY_DELTA';
        for (const sum of [first, second]) {
          assert.equal(sum.temporality, expectedTemporality);
          assert.equal(sum.monotonic, true);
        }
        assert.deepEqual(first.values, { read: 3, write: 5 });
        if (temporality === 'cumulative') {
          assert.deepEqual(second.values, { read: 7, write: 11 });
          assert.deepEqual(second.startTimes, first.startTimes, 'a cumulative series keeps its start time');
        } else {
          assert.deepEqual(second.values, { read: 4, write: 6 });
          assert.notDeepEqual(second.startTimes, first.startTimes, 'each delta starts where the last ended');
        }
        checkAgainstOfficialProtos(requests[1].body, 'metrics');
        await eventually('exported points counted', 5_000, async () => ((await observed.total('exported_items_total', { signal: 'metrics' })) === 6 ? true : undefined));
      } finally {
        await exporter.shutdown();
        await sink.close();
      }
    });

  test(name('three retryable failures, then success: the data arrives exactly once'), async () => {
    const sink = await kit.startSink();
    sink.failNext.push(kit.retryable, kit.retryable, kit.retryable);
    const { exporter, observed } = createExporter(kit, sink.endpoint);
    try {
      await exporter.start(testHost());
      await consumeProfiles(exporter);
      await eventually('the request to arrive', 10_000, async () => (sink.received.length > 0 ? true : undefined));
      await sleep(500); // time for a wrong extra retry (they come every 50-300 ms)
      assert.equal(sink.attempts, 4);
      assert.equal(sink.received.length, 1);
      assert.equal(await observed.total('exported_items_total', { signal: 'profiles' }), FIXTURE_CPU_PROFILE_TOTALS.samples);
      assert.equal(await observed.total('dropped_items_total'), 0);
      assert.equal(observed.status().status, 'ok', 'the status recovers once a request gets through');
    } finally {
      await exporter.shutdown();
      await sink.close();
    }
  });

  test(name('a permanent failure is not retried, and its items are counted as dropped'), async () => {
    const sink = await kit.startSink();
    sink.failNext.push(kit.permanent);
    const { exporter, observed } = createExporter(kit, sink.endpoint);
    try {
      await exporter.start(testHost());
      await consumeProfiles(exporter);
      await eventually('the drop to be counted', 10_000, async () => ((await dropped(observed, 'permanent_error')) > 0 ? true : undefined));
      await sleep(500);
      assert.equal(sink.attempts, 1);
      assert.equal(sink.received.length, 0);
      assert.equal(await dropped(observed, 'permanent_error'), FIXTURE_CPU_PROFILE_TOTALS.samples);
      assert.equal(await observed.total('export_failed_items_total', { signal: 'profiles' }), FIXTURE_CPU_PROFILE_TOTALS.samples);
      assert.equal(await queued(observed, 'items'), 0);
      assert.equal(observed.status().status, 'recoverable_error');
      // The next request is not held up by the one dropped.
      await consumeProfiles(exporter);
      await eventually('the next request', 10_000, async () => (sink.received.length === 1 ? true : undefined));
    } finally {
      await exporter.shutdown();
      await sink.close();
    }
  });

  test(name('a throttled request waits as long as the server asks before retrying'), async () => {
    const sink = await kit.startSink();
    sink.failNext.push(kit.throttled(1500));
    const { exporter } = createExporter(kit, sink.endpoint);
    try {
      await exporter.start(testHost());
      await consumeProfiles(exporter);
      await eventually('the retry to arrive', 10_000, async () => (sink.received.length > 0 ? true : undefined));
      const waitedMs = sink.attemptTimes[1] - sink.attemptTimes[0];
      // Our own backoff would have retried within 75 ms.
      assert.ok(waitedMs >= 1400, `retried after ${waitedMs} ms`);
      assert.equal(sink.attempts, 2);
    } finally {
      await exporter.shutdown();
      await sink.close();
    }
  });

  test(name('a request with no answer times out after `timeout` and is retried'), async () => {
    const sink = await kit.startSink();
    sink.failNext.push('hang' as F);
    const { exporter } = createExporter(kit, sink.endpoint, { timeout: '700ms' });
    try {
      await exporter.start(testHost());
      await consumeProfiles(exporter);
      await eventually('the retry to arrive', 10_000, async () => (sink.received.length > 0 ? true : undefined));
      const waitedMs = sink.attemptTimes[1] - sink.attemptTimes[0];
      assert.ok(waitedMs >= 650 && waitedMs < 3000, `retried after ${waitedMs} ms`);
      assert.equal(sink.received.length, 1);
    } finally {
      await exporter.shutdown();
      await sink.close();
    }
  });

  for (const bound of ['items', 'bytes'] as const)
    test(name(`while the server is down the queue stays within its ${bound} bound, drops are counted, and delivery resumes`), async () => {
      const port = await freePort();
      // Room for two fixture requests (28 samples each) by the bound under test; the other bound is far away.
      const sending_queue =
        bound === 'items' ? { queue_size: 2 * FIXTURE_CPU_PROFILE_TOTALS.samples + 10, max_bytes: 10_000_000 } : { queue_size: 1_000_000, max_bytes: Math.floor(encodedProfileSize() * 2.5) };
      const { exporter, observed } = createExporter(kit, kit.endpointFor(port), { sending_queue });
      let sink: TestSink<F> | undefined;
      try {
        await exporter.start(testHost());
        for (let i = 0; i < 10; i++) {
          await consumeProfiles(exporter);
          const items = await queued(observed, 'items');
          const bytes = await queued(observed, 'bytes');
          assert.ok(items <= sending_queue.queue_size, `${items} items queued`);
          assert.ok(bytes <= sending_queue.max_bytes, `${bytes} bytes queued`);
          await sleep(100); // retries keep failing meanwhile
        }
        assert.equal(await queued(observed, 'items'), 2 * FIXTURE_CPU_PROFILE_TOTALS.samples, 'two requests stay queued');
        assert.equal(await dropped(observed, 'sending_queue_full'), 8 * FIXTURE_CPU_PROFILE_TOTALS.samples);
        assert.equal(await observed.total('export_failed_items_total', { signal: 'profiles' }), 8 * FIXTURE_CPU_PROFILE_TOTALS.samples);
        assert.equal(observed.status().status, 'recoverable_error');

        sink = await kit.startSink(port);
        await eventually('the queued requests to arrive', 15_000, async () => (sink!.received.length === 2 ? true : undefined));
        assert.equal(await queued(observed, 'items'), 0);
        await consumeProfiles(exporter);
        await eventually('a new request to arrive', 10_000, async () => (sink!.received.length === 3 ? true : undefined));
        assert.equal(await observed.total('exported_items_total', { signal: 'profiles' }), 3 * FIXTURE_CPU_PROFILE_TOTALS.samples);
      } finally {
        await exporter.shutdown();
        await sink?.close();
      }
    });

  test(name('a request still failing after max_elapsed_time is dropped and counted'), async () => {
    const port = await freePort();
    const { exporter, observed } = createExporter(kit, kit.endpointFor(port), { retry_on_failure: { ...FAST_RETRY, max_elapsed_time: '1s' } });
    try {
      await exporter.start(testHost());
      await consumeProfiles(exporter);
      const started = Date.now();
      await eventually('the request to be given up', 10_000, async () => ((await dropped(observed, 'retries_exhausted')) > 0 ? true : undefined));
      assert.ok(Date.now() - started < 2500);
      assert.equal(await dropped(observed, 'retries_exhausted'), FIXTURE_CPU_PROFILE_TOTALS.samples);
      assert.equal(await queued(observed, 'items'), 0);
    } finally {
      await exporter.shutdown();
    }
  });

  test(name('a partial success counts what the server rejected as dropped'), async () => {
    const sink = await kit.startSink();
    sink.partialNext.push({ rejected: 1, message: 'one point too many' });
    const { exporter, observed } = createExporter(kit, sink.endpoint, { temporality: 'delta' });
    try {
      await exporter.start(testHost());
      await exporter.consumers.metrics!.consume(fixtureSyscallMetrics(Date.now() - 10_000, Date.now(), 3, 5));
      await eventually('the drop to be counted', 10_000, async () =>
        (await observed.total('dropped_items_total', { signal: 'metrics', reason: 'rejected_by_server' })) === 1 ? true : undefined,
      );
      assert.equal(await observed.total('exported_items_total', { signal: 'metrics' }), 2);
      assert.equal(sink.attempts, 1, 'a partial success is not retried');
    } finally {
      await exporter.shutdown();
      await sink.close();
    }
  });

  test(name('shutdown delivers what is queued once the server is back, within its deadline'), async () => {
    const port = await freePort();
    const { exporter, observed } = createExporter(kit, kit.endpointFor(port), { timeout: '5s' });
    let sink: TestSink<F> | undefined;
    try {
      await exporter.start(testHost());
      await consumeProfiles(exporter, 2);
      await sleep(300); // a few failed attempts
      sink = await kit.startSink(port);
      const started = Date.now();
      await exporter.shutdown();
      const tookMs = Date.now() - started;
      assert.equal(sink.received.length, 2);
      assert.ok(tookMs < 5000, `shutdown took ${tookMs} ms`);
      assert.equal(await observed.total('dropped_items_total'), 0);
    } finally {
      await exporter.shutdown();
      await sink?.close();
    }
  });

  test(name('shutdown gives up at its deadline and counts what is left as dropped'), async () => {
    const sink = await kit.startSink();
    for (let i = 0; i < 20; i++) sink.failNext.push('hang' as F);
    const { exporter, observed } = createExporter(kit, sink.endpoint, { timeout: '1s' });
    try {
      await exporter.start(testHost());
      await consumeProfiles(exporter, 2);
      await sleep(100);
      const started = Date.now();
      await exporter.shutdown();
      const tookMs = Date.now() - started;
      assert.ok(tookMs >= 900 && tookMs < 1500, `shutdown took ${tookMs} ms`);
      assert.equal(await dropped(observed, 'shutdown'), 2 * FIXTURE_CPU_PROFILE_TOTALS.samples);
      assert.equal(await queued(observed, 'items'), 0);
      // After shutdown nothing is queued any more, and what comes is counted.
      await consumeProfiles(exporter);
      assert.equal(await dropped(observed, 'shutdown'), 3 * FIXTURE_CPU_PROFILE_TOTALS.samples);
      assert.equal(sink.received.length, 0);
    } finally {
      await exporter.shutdown();
      await sink.close();
    }
  });
}

/** Bytes of one encoded fixture request, as the queue counts them, to size a queue by bytes. */
function encodedProfileSize(): number {
  return encodeProfilesRequest(fixtureCpuProfile()).body.byteLength;
}
