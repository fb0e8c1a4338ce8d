/** What a component needs to be created and started outside the CLI, for component tests. */
import Fastify from 'fastify';
import { pino } from 'pino';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Component, ComponentKind, Consumer, CreateSettings, Factory, Host } from '../../collector/component.js';
import { parseComponentId } from '../../collector/config/load.js';
import type { MetricBatch } from '../../collector/data/metrics.js';
import type { ProfileBatch, ProfileSample } from '../../collector/data/profiles.js';
import { ProcessTable } from '../../collector/processes.js';
import { StatusRegistry } from '../../collector/status.js';
import { SelfTelemetry } from '../../collector/telemetry.js';

/** Sum of a self-telemetry metric's points whose attributes include `attributes`; undefined when no point matches. */
export async function selfMetric(telemetry: SelfTelemetry, name: string, attributes: Record<string, string> = {}): Promise<number | undefined> {
  let sum: number | undefined;
  for (const scope of (await telemetry.collect()).scopeMetrics)
    for (const metric of scope.metrics)
      if (metric.descriptor.name === name)
        for (const point of metric.dataPoints)
          if (Object.entries(attributes).every(([k, v]) => point.attributes[k] === v)) sum = (sum ?? 0) + (point.value as number);
  return sum;
}

export function testSettings(kind: ComponentKind, id: string): CreateSettings & { statuses: StatusRegistry } {
  const logger = pino({ level: 'silent' });
  const statuses = new StatusRegistry(logger);
  const parsed = parseComponentId(id);
  if (typeof parsed === 'string') throw new Error(parsed);
  return { id: parsed, logger, telemetry: new SelfTelemetry().forComponent(kind, id), status: statuses.reporter(kind, id, ['test']), statuses };
}

/** A host whose HTTP server is never started: components can add routes, tests call them with inject(). */
export function testHost(): Host {
  return { processes: new ProcessTable(), selfTelemetry: new SelfTelemetry(), http: Fastify({ logger: false }) };
}

/** A consumer that keeps every metrics batch it is handed. */
export class MetricsSink implements Consumer<'metrics'> {
  readonly batches: MetricBatch[] = [];
  async consume(batch: MetricBatch): Promise<void> {
    this.batches.push(batch);
  }

  /** Sum over all batches of one metric's points whose attributes include `attributes`. */
  total(name: string, attributes: Record<string, string> = {}): number {
    let sum = 0;
    for (const batch of this.batches)
      for (const metric of batch.metrics)
        if (metric.name === name && metric.type !== 'histogram')
          for (const point of metric.points)
            if (Object.entries(attributes).every(([k, v]) => point.attributes[k] === v)) sum += point.value;
    return sum;
  }

  /** Sum over all batches of one histogram's point counts (its `_count`) whose attributes include `attributes`. */
  histogramCount(name: string, attributes: Record<string, string> = {}): number {
    let count = 0;
    for (const batch of this.batches)
      for (const metric of batch.metrics)
        if (metric.name === name && metric.type === 'histogram')
          for (const point of metric.points)
            if (Object.entries(attributes).every(([k, v]) => point.attributes[k] === v)) count += point.count;
    return count;
  }
}

/** What `factory`'s config schema says about `config`, which it must refuse: each issue as "path: message". */
export function configIssues(factory: Factory, config: unknown): string[] {
  const result = factory.configSchema.safeParse(config);
  assert.equal(result.success, false, `${JSON.stringify(config)} was accepted`);
  return result.error!.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

/** A consumer that keeps every profile batch it is handed. */
export class ProfilesSink implements Consumer<'profiles'> {
  readonly batches: ProfileBatch[] = [];
  async consume(batch: ProfileBatch): Promise<void> {
    this.batches.push(batch);
  }

  samples(pid?: number): ProfileSample[] {
    return this.batches.flatMap((b) => b.samples).filter((s) => pid === undefined || s.pid === pid);
  }

  count(pid?: number): number {
    return this.samples(pid).reduce((sum, s) => sum + s.count, 0);
  }

  pids(): Set<number> {
    return new Set(this.samples().map((s) => s.pid));
  }
}

/**
 * The lifecycle every component must survive: shut down without start, and
 * twice; start, shut down, then the same with a fresh instance.
 */
export function testLifecycle(create: () => Component, host: () => Host = testHost): void {
  test('lifecycle: shutdown without start, and twice', async () => {
    const component = create();
    await component.shutdown();
    await component.shutdown();
  });
  test('lifecycle: start, shut down, start a fresh instance, shut down', async () => {
    for (let round = 0; round < 2; round++) {
      const component = create();
      await component.start(host());
      await component.shutdown();
      await component.shutdown();
    }
  });
}
