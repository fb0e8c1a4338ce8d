/**
 * The collector's own telemetry, `ebpf_collector_*`, kept with the
 * OpenTelemetry metrics SDK and pulled by the Prometheus exporter at scrape time.
 */
import { hostname } from 'node:os';
import type { Attributes as OtelAttributes, Counter, Meter } from '@opentelemetry/api';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ComponentKind } from './component.js';
import type { Signal } from './data/signals.js';
import { VERSION } from './version.js';

class PullReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

export interface ComponentTelemetry {
  received(signal: Signal, items: number): void;
  dropped(signal: Signal, items: number, reason: string): void;
  exported(signal: Signal, items: number): void;
  exportFailed(signal: Signal, items: number): void;
  /** Entries seen in a kernel map at its last read, against its capacity. */
  mapFill(map: string, entries: number, capacity: number): void;
  /** A component's own counter, `ebpf_collector_<name>`; labelled with the component. */
  count(name: string, description: string, delta: number, attributes?: OtelAttributes): void;
  /** A component's own gauge (last value wins), `ebpf_collector_<name>`; labelled with the component. */
  gauge(name: string, description: string, value: number, attributes?: OtelAttributes): void;
}

export class SelfTelemetry {
  readonly resource: Resource;
  private readonly reader = new PullReader();
  private readonly provider: MeterProvider;
  private readonly receivedItems: Counter;
  private readonly droppedItems: Counter;
  private readonly exportedItems: Counter;
  private readonly exportFailedItems: Counter;
  private readonly meter: Meter;
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Map<string, { attributes: OtelAttributes; value: number }>>();

  constructor() {
    this.resource = resourceFromAttributes({
      'service.name': 'ebpf-collector',
      'service.version': VERSION,
      'host.name': hostname(),
    });
    this.provider = new MeterProvider({ resource: this.resource, readers: [this.reader] });
    const meter = this.provider.getMeter('ebpf-collector', VERSION);
    this.meter = meter;
    this.receivedItems = meter.createCounter('ebpf_collector_received_items_total', {
      description: 'Items (metric points, profile samples) a component accepted.',
    });
    this.droppedItems = meter.createCounter('ebpf_collector_dropped_items_total', {
      description: 'Items a component dropped or lost, by reason.',
    });
    this.exportedItems = meter.createCounter('ebpf_collector_exported_items_total', {
      description: 'Items an exporter delivered.',
    });
    this.exportFailedItems = meter.createCounter('ebpf_collector_export_failed_items_total', {
      description: 'Items an exporter failed to deliver.',
    });
  }

  private counter(name: string, description: string): Counter {
    let counter = this.counters.get(name);
    if (!counter) {
      counter = this.meter.createCounter(name, { description });
      this.counters.set(name, counter);
    }
    return counter;
  }

  /** Sets a gauge series; instruments are made on first use, so components can name their own. */
  private setGauge(name: string, description: string, value: number, attributes: OtelAttributes): void {
    let series = this.gauges.get(name);
    if (!series) {
      const values = new Map<string, { attributes: OtelAttributes; value: number }>();
      series = values;
      this.gauges.set(name, values);
      this.meter.createObservableGauge(name, { description }).addCallback((result) => {
        for (const entry of values.values()) result.observe(entry.value, entry.attributes);
      });
    }
    series.set(JSON.stringify(Object.entries(attributes).sort()), { attributes, value });
  }

  forComponent(kind: ComponentKind, id: string): ComponentTelemetry {
    const base = { component: id, kind };
    return {
      received: (signal, items) => this.receivedItems.add(items, { ...base, signal }),
      dropped: (signal, items, reason) => this.droppedItems.add(items, { ...base, signal, reason }),
      exported: (signal, items) => this.exportedItems.add(items, { ...base, signal }),
      exportFailed: (signal, items) => this.exportFailedItems.add(items, { ...base, signal }),
      mapFill: (map, entries, capacity) =>
        this.setGauge(
          'ebpf_collector_bpf_map_fill_ratio',
          'Entries found in a BPF map at its last read divided by its max_entries.',
          capacity > 0 ? entries / capacity : 0,
          { component: id, map },
        ),
      count: (name, description, delta, attributes = {}) =>
        this.counter(`ebpf_collector_${name}`, description).add(delta, { ...attributes, ...base }),
      gauge: (name, description, value, attributes = {}) =>
        this.setGauge(`ebpf_collector_${name}`, description, value, { ...attributes, ...base }),
    };
  }

  async collect(): Promise<ResourceMetrics> {
    const { resourceMetrics } = await this.reader.collect();
    return resourceMetrics;
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}
