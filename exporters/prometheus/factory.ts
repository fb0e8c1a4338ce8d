import type { ExporterFactory } from '../../collector/component.js';
import { prometheusConfigSchema, type PrometheusConfig } from './config.js';
import { PrometheusExporter } from './exporter.js';

export const prometheusExporterFactory: ExporterFactory<PrometheusConfig> = {
  kind: 'exporter',
  type: 'prometheus',
  configSchema: prometheusConfigSchema,
  signals: ['metrics'],
  create: (settings, config) => new PrometheusExporter(settings, config),
};
