/**
 * The OTLP exporter component, whatever the transport: it encodes each
 * incoming batch into an Export*ServiceRequest at once (so that a cumulative
 * snapshot is taken when the data arrives) and hands it to its signal's
 * queued sender. otlphttp and otlp differ only in the transport they open.
 */
import type { Component, Consumer, Consumers, CreateSettings, Host } from '../../collector/component.js';
import type { MetricBatch } from '../../collector/data/metrics.js';
import { itemCount, type Signal } from '../../collector/data/signals.js';
import type { ProfileBatch } from '../../collector/data/profiles.js';
import type { OtlpCommonConfig } from './config.js';
import { MetricsRequestEncoder } from './metrics-request.js';
import { encodeProfilesRequest } from './profiles-request.js';
import type { QueuedRequest } from './queue.js';
import { QueuedSender } from './sender.js';
import type { OtlpTransport } from './transport.js';

export class OtlpExporter implements Component {
  readonly consumers: Consumers = {};
  private readonly senders = new Map<Signal, QueuedSender>();
  private transport?: OtlpTransport;
  private host?: Host;

  /** `openTransport` is called by start(): reading TLS files and the like fail start, not creation. */
  constructor(
    settings: CreateSettings,
    private readonly config: OtlpCommonConfig,
    signals: ReadonlySet<Signal>,
    private readonly openTransport: () => OtlpTransport,
  ) {
    for (const signal of signals) this.senders.set(signal, new QueuedSender(signal, settings, config.sending_queue, config.retry_on_failure));
    if (signals.has('profiles')) this.consumers.profiles = this.consumer('profiles', (batch: ProfileBatch) => this.encodeProfiles(batch));
    if (signals.has('metrics')) {
      const encoder = new MetricsRequestEncoder(config.temporality, config.metric_expiration);
      this.consumers.metrics = this.consumer('metrics', (batch: MetricBatch) => {
        const encoded = encoder.encode(batch);
        if (encoded && encoded.refused > 0) this.senders.get('metrics')!.drop(encoded.refused, 'conflicting_metric_shape', 'a metric name reused with another type or bucket layout');
        return encoded && { body: encoded.body, items: encoded.items, serverUnits: encoded.points };
      });
    }
  }

  private encodeProfiles(batch: ProfileBatch): QueuedRequest | undefined {
    if (batch.samples.length === 0) return undefined;
    const encoded = encodeProfilesRequest(batch, (pid) => this.host?.processes.get(pid));
    return { body: encoded.body, items: encoded.items, serverUnits: encoded.profiles };
  }

  private consumer<S extends Signal>(signal: S, encode: (data: Parameters<Consumer<S>['consume']>[0]) => QueuedRequest | undefined): Consumer<S> {
    const sender = this.senders.get(signal)!;
    return {
      consume: async (data) => {
        let request: QueuedRequest | undefined;
        try {
          request = encode(data);
        } catch (error) {
          sender.drop(itemCount[signal](data), 'encode_failed', (error as Error).message);
          return;
        }
        if (request) sender.enqueue(request);
      },
    };
  }

  async start(host: Host): Promise<void> {
    this.host = host;
    this.transport = this.openTransport();
    for (const sender of this.senders.values()) sender.start(this.transport);
  }

  /** Drains every queue within `timeout`, counts what is left as dropped, closes the connection. Safe without start and twice. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.senders.values()].map((sender) => sender.shutdown(this.config.timeout)));
    await this.transport?.close();
    this.transport = undefined;
  }
}
