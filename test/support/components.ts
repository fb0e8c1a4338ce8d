/** What a component needs to be created and started outside the CLI, for component tests. */
import Fastify from 'fastify';
import { pino } from 'pino';
import type { Consumer, Host, CreateSettings, ComponentKind } from '../../collector/component.js';
import { parseComponentId } from '../../collector/config/load.js';
import type { MetricBatch } from '../../collector/data/metrics.js';
import { ProcessTable } from '../../collector/processes.js';
import { StatusRegistry } from '../../collector/status.js';
import { SelfTelemetry } from '../../collector/telemetry.js';

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
}
