/**
 * Builds receivers → processors → exporters from a validated config and runs
 * them. Connectors end one pipeline and start another. Components start
 * downstream first (exporters, then processors and connectors from the last
 * pipeline stage back, then receivers), so nothing feeds a component that is
 * not running; shutdown goes in reverse, so each flush finds its consumers up.
 * A receiver that cannot start (missing hook, no privilege) is reported and the
 * rest keeps running. Every processor, connector and exporter has a deadline
 * on each batch (service::consume_timeout, StepDeadline), so that one stalled
 * step drops its batches rather than stalling the receivers that feed it.
 */
import type { Component, ComponentKind, Consumer, Consumers, CreateSettings, Host } from './component.js';
import type { CollectorConfig, ComponentConfig, PipelineConfig } from './config/load.js';
import { counting, fanout, setConsumer, StepDeadline } from './consumers.js';
import type { Signal } from './data/signals.js';
import type { Logger } from './logger.js';
import type { StatusRegistry, StatusReporter, TrackedStatusReporter } from './status.js';
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

type Targets = Map<Signal, Consumer<Signal>[]>;

export class PipelineGraph {
  private readonly exporters: Node[] = [];
  /** Processors and connectors, downstream first (the order they start in). */
  private readonly inner: Node[] = [];
  private readonly receivers: Node[] = [];
  private started = false;
  /** Components whose shutdown has not finished, while shutdown() runs. */
  private readonly notStopped = new Set<Node>();
  private stopping?: Node;

  constructor(private readonly config: CollectorConfig, private readonly deps: GraphDeps) {
    const exporterInputs = this.createExporters();
    // Where each receiver or connector id must send each signal: the heads of the pipelines that list it.
    const targets = new Map<string, Targets>();
    const connectorInputs = new Map<string, Consumer<Signal>>();

    for (const pipeline of orderDownstreamFirst(config.pipelines, config.components.connector)) {
      const signal = pipeline.signal;
      const outputs = pipeline.exporters.map((id) => {
        const exporter = exporterInputs.get(id);
        if (exporter) return exporter[signal]! as Consumer<Signal>;
        const key = `${id}\0${signal}`;
        let input = connectorInputs.get(key);
        if (!input) {
          input = this.createConnector(config.components.connector.get(id)!, signal, targets.get(id) ?? new Map());
          connectorInputs.set(key, input);
        }
        return input;
      });
      let next = fanout(outputs);
      for (const id of [...pipeline.processors].reverse()) next = this.createProcessor(config.components.processor.get(id)!, pipeline, next);
      for (const id of pipeline.receivers) {
        const bySignal = targets.get(id) ?? new Map<Signal, Consumer<Signal>[]>();
        bySignal.set(signal, [...(bySignal.get(signal) ?? []), next]);
        targets.set(id, bySignal);
      }
    }

    for (const [id, component] of config.components.receiver) {
      const bySignal = targets.get(id);
      if (bySignal) this.createReceiver(component, bySignal);
    }
  }

  private settingsFor(kind: ComponentKind, component: ComponentConfig, pipelines: string[]): CreateSettings & { status: TrackedStatusReporter } {
    const id = component.id.id;
    return {
      id: component.id,
      logger: this.deps.logger.child({ component: id, kind }),
      telemetry: this.deps.telemetry.forComponent(kind, id),
      status: this.deps.statuses.reporter(kind, id, pipelines),
    };
  }

  private deadline(kind: 'processor' | 'connector' | 'exporter', settings: CreateSettings & { status: TrackedStatusReporter }): StepDeadline {
    return new StepDeadline({
      deadlineMs: this.config.service.consumeTimeoutMs[`${kind}s`],
      telemetry: settings.telemetry,
      status: settings.status,
      logger: settings.logger,
    });
  }

  private pipelinesListing(id: string): PipelineConfig[] {
    return this.config.pipelines.filter((p) => p.receivers.includes(id) || p.processors.includes(id) || p.exporters.includes(id));
  }

  /** One instance per exporter id, serving every signal it is used on. */
  private createExporters(): Map<string, Consumers> {
    const inputs = new Map<string, Consumers>();
    for (const [id, component] of this.config.components.exporter) {
      const pipelines = this.pipelinesListing(id);
      if (pipelines.length === 0 || component.factory.kind !== 'exporter') continue;
      const signals = new Set(pipelines.map((p) => p.signal));
      const settings = this.settingsFor('exporter', component, pipelines.map((p) => p.id));
      const exporter = component.factory.create(settings, component.config, signals);
      const deadline = this.deadline('exporter', settings);
      const consumers: Consumers = {};
      for (const signal of signals) {
        const consumer = exporter.consumers[signal];
        if (!consumer) throw new Error(`exporter "${id}" created no consumer for the ${signal} signal`);
        setConsumer(consumers, signal, counting(signal, settings.telemetry, deadline.guard(signal, consumer as Consumer<typeof signal>)));
      }
      inputs.set(id, consumers);
      this.exporters.push({ kind: 'exporter', id, component: exporter, status: settings.status });
    }
    return inputs;
  }

  /** A processor instance belongs to one pipeline. */
  private createProcessor(component: ComponentConfig, pipeline: PipelineConfig, next: Consumer<Signal>): Consumer<Signal> {
    if (component.factory.kind !== 'processor') throw new Error(`${component.id.id} is not a processor`);
    const settings = this.settingsFor('processor', component, [pipeline.id]);
    const deadline = this.deadline('processor', settings);
    const processor = component.factory.create(settings, component.config, pipeline.signal, deadline.gate(next));
    this.inner.push({ kind: 'processor', id: `${component.id.id} (${pipeline.id})`, component: processor, status: settings.status });
    return counting(pipeline.signal, settings.telemetry, deadline.guard(pipeline.signal, processor));
  }

  /** One connector instance per route from `from` to a signal of a pipeline that lists it as a receiver. */
  private createConnector(component: ComponentConfig, from: Signal, downstream: Targets): Consumer<Signal> {
    const { factory } = component;
    if (factory.kind !== 'connector') throw new Error(`${component.id.id} is not a connector`);
    const settings = this.settingsFor('connector', component, this.pipelinesListing(component.id.id).map((p) => p.id));
    const instances = factory.routes
      .filter((route) => route.from === from && downstream.has(route.to))
      .map((route) => {
        const deadline = this.deadline('connector', settings);
        const next = deadline.gate(counting(route.to, settings.telemetry, fanout(downstream.get(route.to)!)));
        const connector = factory.create(settings, component.config, from, route.to, next);
        this.inner.push({ kind: 'connector', id: `${component.id.id} (${from} to ${route.to})`, component: connector, status: settings.status });
        return deadline.guard(from, connector);
      });
    return counting(from, settings.telemetry, fanout(instances));
  }

  /** One instance per receiver id, handed one consumer per signal it feeds. */
  private createReceiver(component: ComponentConfig, bySignal: Targets): void {
    if (component.factory.kind !== 'receiver') throw new Error(`${component.id.id} is not a receiver`);
    const id = component.id.id;
    const settings = this.settingsFor('receiver', component, this.pipelinesListing(id).map((p) => p.id));
    const next: Consumers = {};
    for (const [signal, targets] of bySignal) setConsumer(next, signal, counting(signal, settings.telemetry, fanout(targets)));
    const receiver = component.factory.create(settings, component.config, next);
    if (receiver.heartbeat) settings.status.watch(() => receiver.heartbeat!());
    this.receivers.push({ kind: 'receiver', id, component: receiver, status: settings.status });
  }

  /** Starts everything. An exporter, processor or connector that fails to start fails the whole start; a receiver does not. */
  async start(host: Host): Promise<void> {
    this.started = true;
    for (const node of [...this.exporters, ...this.inner]) {
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
    const order = [...this.receivers, ...[...this.inner].reverse(), ...this.exporters];
    for (const node of order) this.notStopped.add(node);
    for (const node of order) {
      this.stopping = node;
      node.status.report('stopping');
      try {
        await node.component.shutdown();
        node.status.report('stopped');
      } catch (error) {
        this.deps.logger.error({ component: node.id, kind: node.kind, err: error }, 'shutdown failed');
        node.status.report('permanent_error', `shutdown failed: ${(error as Error).message}`);
      }
      this.notStopped.delete(node);
    }
    this.stopping = undefined;
  }

  /** While shutdown() runs: the components not done yet, the one it waits for first. */
  pendingShutdown(): { kind: ComponentKind; id: string; state: 'stopping' | 'waiting' }[] {
    return [...this.notStopped].map((node) => ({ kind: node.kind, id: node.id, state: node === this.stopping ? 'stopping' : 'waiting' }));
  }
}

/** Pipelines ordered so that one fed by a connector comes before the pipeline that feeds it. */
function orderDownstreamFirst(pipelines: PipelineConfig[], connectors: Map<string, ComponentConfig>): PipelineConfig[] {
  const feeds = (upstream: PipelineConfig, downstream: PipelineConfig) =>
    upstream.exporters.some((id) => connectors.has(id) && downstream.receivers.includes(id));
  const ordered: PipelineConfig[] = [];
  const pending = [...pipelines];
  while (pending.length > 0) {
    // A pipeline can be built once every pipeline it feeds has been.
    const index = pending.findIndex((p) => !pending.some((q) => q !== p && feeds(p, q)));
    if (index < 0) throw new Error(`pipelines ${pending.map((p) => p.id).join(', ')} form a cycle through connectors`);
    ordered.push(...pending.splice(index, 1));
  }
  return ordered;
}
