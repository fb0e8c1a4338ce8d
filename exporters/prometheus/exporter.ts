/**
 * The Prometheus scrape endpoint: the pipeline's metrics, accumulated to
 * cumulative values, plus the collector's own `ebpf_collector_*` telemetry,
 * serialized by @opentelemetry/exporter-prometheus and served by fastify,
 * over HTTPS and with basic auth when the web config settings ask for them.
 */
import type { FastifyInstance } from 'fastify';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { Component, Consumer, CreateSettings, Host } from '../../collector/component.js';
import { formatEndpoint } from '../../collector/config/types.js';
import { metricPointCount, type MetricBatch } from '../../collector/data/metrics.js';
import { toOtelMetrics } from '../../collector/data/otel.js';
import { VERSION } from '../../collector/version.js';
import { CumulativeAccumulator } from './accumulator.js';
import type { PrometheusConfig } from './config.js';
import { createScrapeServer } from './web-config.js';

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class PrometheusExporter implements Component, Consumer<'metrics'> {
  readonly consumers = { metrics: this };
  private readonly accumulator: CumulativeAccumulator;
  // No scope labels on every series, no timestamps: what a Prometheus user expects from a scrape target.
  private readonly serializer = new PrometheusSerializer('', false, undefined, false, true);
  private server?: FastifyInstance;

  constructor(private readonly settings: CreateSettings, private readonly config: PrometheusConfig) {
    this.accumulator = new CumulativeAccumulator(config.metric_expiration);
  }

  async consume(batch: MetricBatch): Promise<void> {
    const refused = this.accumulator.add(batch);
    if (refused > 0) this.settings.telemetry.dropped('metrics', refused, 'conflicting_metric_shape');
    this.settings.telemetry.exported('metrics', metricPointCount(batch) - refused);
  }

  async start(host: Host): Promise<void> {
    const app = createScrapeServer(this.config.tls_server_config, this.config.basic_auth_users, `exporters::${this.settings.id.id}`);
    app.get('/metrics', async (_request, reply) => {
      const self = await host.selfTelemetry.collect();
      const pipeline = this.accumulator.snapshot(Date.now());
      const body = this.serializer.serialize({
        resource: self.resource,
        scopeMetrics: [{ scope: { name: 'ebpf-collector', version: VERSION }, metrics: toOtelMetrics(pipeline) }, ...self.scopeMetrics],
      });
      reply.type(CONTENT_TYPE);
      return body;
    });
    try {
      await app.listen({ host: this.config.endpoint.host, port: this.config.endpoint.port });
    } catch (error) {
      await app.close();
      throw new Error(`cannot listen on ${formatEndpoint(this.config.endpoint)}: ${(error as Error).message}`, { cause: error });
    }
    this.server = app;
    this.settings.logger.info(
      { endpoint: formatEndpoint(this.config.endpoint), tls: this.config.tls_server_config !== undefined, basicAuth: this.config.basic_auth_users !== undefined },
      'serving /metrics',
    );
  }

  async shutdown(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }
}
