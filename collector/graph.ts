/**
 * Builds receivers → processors → exporters from a validated config and runs
 * them: exporters start first and receivers last, so nothing feeds a component
 * that is not running; shutdown goes in reverse. A receiver that cannot start
 * (missing hook, no privilege) is reported and the rest keeps running.
 */
import type { Component, ComponentKind, Consumer, Consumers, CreateSettings, Host } from './component.js';
import type { CollectorConfig, ComponentConfig } from './config/load.js';
import { counting, fanout } from './consumers.js';
import type { Signal } from './data/signals.js';
import type { Logger } from './logger.js';
import type { StatusRegistry, StatusReporter } from './status.js';
import type { SelfTelemetry } from './telemetry.js';

interface Node {
  kind: ComponentKind;
  id: string;
  component: Component;
  status: StatusReporter;
}

export interface GraphDeps {
  logger: Logger;
  telemetry: SelfTelemetry;
  statuses: StatusRegistry;
}

export class PipelineGraph {
  private readonly exporters: Node[] = [];
  private readonly processors: Node[] = [];
  private readonly receivers: Node[] = [];
  private started = false;

  constructor(config: CollectorConfig, private readonly deps: GraphDeps) {
    const pipelinesOf = (kind: ComponentKind, id: string) =>
      config.pipelines.filter((p) => (p[`${kind}s` as const] as string[]).includes(id)).map((p) => p.id);

    const settingsFor = (kind: ComponentKind, component: ComponentConfig, pipelines: string[]): CreateSettings => ({
      id: component.id,
      logger: deps.logger.child({ component: component.id.id, kind }),
      telemetry: deps.telemetry.forComponent(kind, component.id.id),
      status: deps.statuses.reporter(kind, component.id.id, pipelines),
    });

    // Exporters: one instance per id, serving every signal it is used on.
    const exporterInputs = new Map<string, Consumers>();
    for (const [id, component] of config.components.exporter) {
      const pipelines = pipelinesOf('exporter', id);
      if (pipelines.length === 0) continue;
      const signals = new Set(config.pipelines.filter((p) => p.exporters.includes(id)).map((p) => p.signal));
      const settings = settingsFor('exporter', component, pipelines);
      const exporter = component.factory.kind === 'exporter' ? component.factory.create(settings, component.config, signals) : undefined;
      if (!exporter) throw new Error(`${id} is not an exporter`);
      const inputs: Consumers = {};
      for (const signal of signals) {
        const consumer = exporter.consumers[signal];
        if (!consumer) throw new Error(`exporter "${id}" created no consumer for the ${signal} signal`);
        setConsumer(inputs, signal, counting(signal, settings.telemetry, consumer as Consumer<typeof signal>));
      }
      exporterInputs.set(id, inputs);
      this.exporters.push({ kind: 'exporter', id, component: exporter, status: settings.status });
    }

    // Pipelines: processors chained back to front; one instance per pipeline.
    const receiverTargets = new Map<string, Map<Signal, Consumer<Signal>[]>>();
    for (const pipeline of config.pipelines) {
      const signal = pipeline.signal;
      let next = fanout(pipeline.exporters.map((id) => exporterInputs.get(id)![signal]!)) as Consumer<Signal>;
      for (const id of [...pipeline.processors].reverse()) {
        const component = config.components.processor.get(id)!;
        const settings = settingsFor('processor', component, [pipeline.id]);
        if (component.factory.kind !== 'processor') throw new Error(`${id} is not a processor`);
        const processor = component.factory.create(settings, component.config, signal, next);
        this.processors.push({ kind: 'processor', id: `${id} (${pipeline.id})`, component: processor, status: settings.status });
        next = counting(signal, settings.telemetry, processor);
      }
      for (const id of pipeline.receivers) {
        const bySignal = receiverTargets.get(id) ?? new Map<Signal, Consumer<Signal>[]>();
        bySignal.set(signal, [...(bySignal.get(signal) ?? []), next]);
        receiverTargets.set(id, bySignal);
      }
    }

    // Receivers: one instance per id, handed one consumer per signal it feeds.
    for (const [id, bySignal] of receiverTargets) {
      const component = config.components.receiver.get(id)!;
      const settings = settingsFor('receiver', component, pipelinesOf('receiver', id));
      const next: Consumers = {};
      for (const [signal, targets] of bySignal) setConsumer(next, signal, counting(signal, settings.telemetry, fanout(targets)));
      if (component.factory.kind !== 'receiver') throw new Error(`${id} is not a receiver`);
      const receiver = component.factory.create(settings, component.config, next);
      this.receivers.push({ kind: 'receiver', id, component: receiver, status: settings.status });
    }
  }

  /** Starts everything. An exporter or processor that fails to start fails the whole start; a receiver does not. */
  async start(host: Host): Promise<void> {
    this.started = true;
    for (const node of [...this.exporters, ...this.processors]) {
      node.status.report('starting');
      try {
        await node.component.start(host);
      } catch (error) {
        node.status.report('permanent_error', (error as Error).message);
        throw new Error(`${node.kind} "${node.id}" failed to start: ${(error as Error).message}`, { cause: error });
      }
      node.status.report('ok');
    }
    for (const node of this.receivers) {
      node.status.report('starting');
      try {
        await node.component.start(host);
        node.status.report('ok');
      } catch (error) {
        node.status.report('permanent_error', (error as Error).message);
        // Release whatever the receiver managed to set up before it failed.
        await node.component.shutdown().catch(() => undefined);
      }
    }
  }

  /** Shuts down in reverse start order. Safe before start() and safe twice. */
  async shutdown(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const node of [...this.receivers, ...[...this.processors].reverse(), ...this.exporters]) {
      node.status.report('stopping');
      try {
        await node.component.shutdown();
        node.status.report('stopped');
      } catch (error) {
        this.deps.logger.error({ component: node.id, kind: node.kind, err: error }, 'shutdown failed');
        node.status.report('permanent_error', `shutdown failed: ${(error as Error).message}`);
      }
    }
  }
}

function setConsumer<S extends Signal>(consumers: Consumers, signal: S, consumer: Consumer<S>): void {
  (consumers as Record<S, Consumer<S>>)[signal] = consumer;
}
