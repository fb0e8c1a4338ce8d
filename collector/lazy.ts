/**
 * Exporters whose implementation is imported when they start. The OTLP
 * exporters bring gRPC, protobufjs and the OTLP transformer (~4 MB resident),
 * which a collector whose pipelines do not use them should not hold; their
 * factories stay eager, so configs are still validated without loading them.
 */
import type { Component, Consumers, CreateSettings, ExporterFactory, Host } from './component.js';
import { setConsumer } from './consumers.js';
import type { Signal, SignalData } from './data/signals.js';

type CreateExporter<C> = ExporterFactory<C>['create'];

/** A factory's create() that imports the real one (`load`) in start(); the exporter's consumers must not mutate data. */
export function lazyExporter<C>(load: () => Promise<CreateExporter<C>>): CreateExporter<C> {
  return (settings, config, signals) => new LazyExporter(settings, config, signals, load);
}

class LazyExporter<C> implements Component {
  readonly consumers: Consumers = {};
  private exporter?: ReturnType<CreateExporter<C>>;

  constructor(
    private readonly settings: CreateSettings,
    private readonly config: C,
    private readonly signals: ReadonlySet<Signal>,
    private readonly load: () => Promise<CreateExporter<C>>,
  ) {
    for (const signal of signals) setConsumer(this.consumers, signal, { mutatesData: false, consume: (data) => this.consume(signal, data) });
  }

  async start(host: Host): Promise<void> {
    const create = await this.load();
    this.exporter = create(this.settings, this.config, this.signals);
    await this.exporter.start(host);
  }

  async shutdown(): Promise<void> {
    await this.exporter?.shutdown();
  }

  private consume<S extends Signal>(signal: S, data: SignalData[S]): Promise<void> {
    const consumer = this.exporter?.consumers[signal];
    if (!consumer) throw new Error(`exporter ${this.settings.id.id} is not started`);
    return consumer.consume(data);
  }
}
