/**
 * Deadlines on pipeline steps (StepDeadline, wired by PipelineGraph): a step
 * that holds a batch past its deadline loses that batch, counted, and the
 * pipeline goes on. The steps here are test doubles held by a Gate the test
 * opens and closes; the OTLP exporter is the real one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { z } from 'zod';
import { eventually, freePort } from '../test/support/collector.js';
import { selfMetric, testHost } from '../test/support/components.js';
import type { Component, Consumer, Consumers, ExporterFactory, ProcessorFactory, ReceiverFactory } from './component.js';
import { FACTORIES } from './components.js';
import { resolveConfig } from './config/load.js';
import type { MetricBatch } from './data/metrics.js';
import type { Signal, SignalData } from './data/signals.js';
import { PipelineGraph } from './graph.js';
import { StatusRegistry } from './status.js';
import { SelfTelemetry } from './telemetry.js';

/** Holds whoever passes while closed. */
class Gate {
  private held?: { promise: Promise<void>; release: () => void };

  close(): void {
    if (this.held) return;
    let release!: () => void;
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.held = { promise, release };
  }

  open(): void {
    this.held?.release();
    this.held = undefined;
  }

  async pass(): Promise<void> {
    await this.held?.promise;
  }
}

const gates = new Map<string, Gate>();
const gate = (id: string) => gates.get(id) ?? gates.set(id, new Gate()).get(id)!;
const inputs = new Map<string, Consumers>();
const delivered = new Map<string, MetricBatch[]>();
const noConfig = z.object({}).strict();

/** Hands on what the test pushes. */
const manualReceiverFactory: ReceiverFactory<object> = {
  kind: 'receiver',
  type: 'manual',
  configSchema: noConfig,
  signals: ['metrics'],
  create: (settings, _config, next) => {
    inputs.set(settings.id.id, next);
    return { start: async () => undefined, shutdown: async () => undefined };
  },
};

/** Waits at its gate, then hands the batch on. */
const gatedProcessorFactory: ProcessorFactory<object> = {
  kind: 'processor',
  type: 'gated',
  configSchema: noConfig,
  signals: ['metrics'],
  create: <S extends Signal>(settings: { id: { id: string } }, _config: object, _signal: S, next: Consumer<S>) => ({
    start: async () => undefined,
    shutdown: async () => undefined,
    async consume(data: SignalData[S]) {
      await gate(settings.id.id).pass();
      await next.consume(data);
    },
  }),
};

/** Keeps what passes its gate. */
const gatedSinkFactory: ExporterFactory<object> = {
  kind: 'exporter',
  type: 'sink',
  configSchema: noConfig,
  signals: ['metrics'],
  create: (settings) => {
    const id = settings.id.id;
    delivered.set(id, []);
    const exporter: Component & { consumers: Consumers } = {
      start: async () => undefined,
      shutdown: async () => undefined,
      consumers: {
        metrics: {
          async consume(batch) {
            await gate(id).pass();
            delivered.get(id)!.push(batch);
          },
        },
      },
    };
    return exporter;
  },
};

function batch(points: number): MetricBatch {
  return {
    startTimeMs: 0,
    endTimeMs: 1,
    metrics: [{ type: 'gauge', name: 'test_value', description: '', points: Array.from({ length: points }, (_, i) => ({ attributes: { i: String(i) }, value: i })) }],
  };
}

interface Started {
  graph: PipelineGraph;
  telemetry: SelfTelemetry;
  statuses: StatusRegistry;
  push(points: number): Promise<void>;
}

async function startGraph(document: Record<string, unknown>): Promise<Started> {
  const config = resolveConfig(document, [...FACTORIES, manualReceiverFactory, gatedProcessorFactory, gatedSinkFactory]);
  const logger = pino({ level: 'silent' });
  const telemetry = new SelfTelemetry();
  const statuses = new StatusRegistry(logger);
  const graph = new PipelineGraph(config, { logger, telemetry, statuses });
  await graph.start(testHost());
  return { graph, telemetry, statuses, push: (points) => inputs.get('manual')!.metrics!.consume(batch(points)) };
}

/** Fails rather than hangs if `promise` does not settle within `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const counter = async (telemetry: SelfTelemetry, name: string, attributes: Record<string, string>) => (await selfMetric(telemetry, name, attributes)) ?? 0;

const dropped = (telemetry: SelfTelemetry, component: string, reason: string) =>
  counter(telemetry, 'ebpf_collector_dropped_items_total', { component, reason });

function statusOf(statuses: StatusRegistry, id: string) {
  return statuses.snapshot().find((s) => s.id === id)!;
}

test('a processor that holds a batch past its deadline loses it, counted; batches during the stall are dropped; the late end hands nothing on; then batches pass again', async () => {
  const { graph, telemetry, statuses, push } = await startGraph({
    receivers: { manual: {} },
    processors: { gated: {} },
    exporters: { sink: {} },
    service: { consume_timeout: { processors: '200ms' }, pipelines: { metrics: { receivers: ['manual'], processors: ['gated'], exporters: ['sink'] } } },
  });
  try {
    gate('gated').close();
    const started = Date.now();
    await within(5000, 'the held batch', push(3));
    assert.ok(Date.now() - started >= 200, 'abandoned before its deadline');
    assert.equal(await dropped(telemetry, 'gated', 'deadline_exceeded'), 3);
    assert.equal(statusOf(statuses, 'gated').status, 'recoverable_error');
    assert.match(statusOf(statuses, 'gated').message!, /metrics batch of 3 items was not done within its 200 ms deadline/);

    // While the abandoned batch still runs, a new one is not started beside it.
    await within(1000, 'a batch during the stall', push(5));
    assert.equal(await dropped(telemetry, 'gated', 'step_stalled'), 5);

    // The late end: what the abandoned batch hands on was counted as dropped already.
    gate('gated').open();
    await sleep(50);
    assert.deepEqual(delivered.get('sink'), []);

    await within(1000, 'a batch after the stall', push(2));
    assert.equal(delivered.get('sink')!.length, 1);
    assert.equal(delivered.get('sink')![0].metrics[0].points.length, 2);
    assert.equal(statusOf(statuses, 'gated').status, 'ok');
    assert.equal(await dropped(telemetry, 'gated', 'deadline_exceeded'), 3);
    assert.equal(await dropped(telemetry, 'gated', 'step_stalled'), 5);
    assert.equal(await counter(telemetry, 'ebpf_collector_received_items_total', { component: 'gated' }), 10);
  } finally {
    gate('gated').open();
    gate('sink').open();
    await graph.shutdown();
  }
});

test('time a processor waits for the next step is not its own: a slow exporter within its deadline costs the processor nothing, a stalled one is the exporter\'s loss', async () => {
  const { graph, telemetry, statuses, push } = await startGraph({
    receivers: { manual: {} },
    processors: { gated: {} },
    exporters: { sink: {} },
    service: {
      consume_timeout: { processors: '200ms', exporters: '1500ms' },
      pipelines: { metrics: { receivers: ['manual'], processors: ['gated'], exporters: ['sink'] } },
    },
  });
  try {
    // The exporter takes three of the processor's deadlines, then lets the batch in.
    gate('sink').close();
    const pushed = push(4);
    await sleep(600);
    gate('sink').open();
    await within(5000, 'the slow batch', pushed);
    assert.equal(delivered.get('sink')!.length, 1);
    assert.equal(await dropped(telemetry, 'gated', 'deadline_exceeded'), 0);
    assert.equal(statusOf(statuses, 'gated').status, 'ok');

    // Stalled for good: the exporter's deadline ends the wait, and the loss is the exporter's alone.
    gate('sink').close();
    await within(10_000, 'the stalled batch', push(6));
    assert.equal(await dropped(telemetry, 'sink', 'deadline_exceeded'), 6);
    assert.equal(await dropped(telemetry, 'gated', 'deadline_exceeded'), 0);
    assert.equal(statusOf(statuses, 'gated').status, 'ok');
    assert.equal(statusOf(statuses, 'sink').status, 'recoverable_error');
  } finally {
    gate('sink').open();
    await graph.shutdown();
  }
});

test('a step stuck past three deadlines makes /healthz unhealthy, naming it', async () => {
  const { graph, statuses, push } = await startGraph({
    receivers: { manual: {} },
    exporters: { sink: {} },
    service: { consume_timeout: { exporters: '200ms' }, pipelines: { metrics: { receivers: ['manual'], exporters: ['sink'] } } },
  });
  try {
    gate('sink').close();
    const stuckAt = Date.now();
    await within(5000, 'the stuck batch', push(1));
    assert.ok(statuses.health().healthy, 'unhealthy after one deadline');
    const failed = await eventually('the stuck exporter to show on /healthz', 5000, async () => statuses.health().failed.find((f) => f.id === 'sink'));
    assert.ok(Date.now() - stuckAt >= 600, 'stalled before three deadlines');
    assert.match(failed.message!, /^stalled: no batch completed since /);
    assert.ok(Math.abs(Date.parse(failed.since) - stuckAt) < 100, `${failed.since} is not when the batch arrived`);
    gate('sink').open();
    await eventually('the exporter to be healthy once its batch ends', 5000, async () => (statuses.health().healthy ? true : undefined));
  } finally {
    gate('sink').open();
    await graph.shutdown();
  }
});

test('the OTLP exporter only enqueues: with its endpoint down, batches wait in its queue for retries and no deadline drops them', async () => {
  const deadPort = await freePort();
  const { graph, telemetry, push } = await startGraph({
    receivers: { manual: {} },
    exporters: { otlphttp: { endpoint: `http://127.0.0.1:${deadPort}`, timeout: '1s' } },
    service: { consume_timeout: { exporters: '100ms' }, pipelines: { metrics: { receivers: ['manual'], exporters: ['otlphttp'] } } },
  });
  try {
    for (let i = 0; i < 3; i++) await within(1000, 'an enqueue', push(10));
    await sleep(300);
    assert.equal(await dropped(telemetry, 'otlphttp', 'deadline_exceeded'), 0);
    assert.equal(await counter(telemetry, 'ebpf_collector_exporter_queue_items', { component: 'otlphttp' }), 30);
  } finally {
    await graph.shutdown();
  }
  // Shutdown gave up on the queue after the exporter's timeout and counted it.
  assert.equal(await dropped(telemetry, 'otlphttp', 'shutdown'), 30);
});
