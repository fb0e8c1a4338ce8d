import type { ExporterFactory } from '../../collector/component.js';
import { lazyOtlpExporter } from '../otlpcommon/factory.js';
import { otlpHttpConfigSchema, type OtlpHttpConfig } from './config.js';

export const otlpHttpExporterFactory: ExporterFactory<OtlpHttpConfig> = {
  kind: 'exporter',
  type: 'otlphttp',
  configSchema: otlpHttpConfigSchema,
  signals: ['metrics', 'profiles'],
  create: lazyOtlpExporter(async () => (await import('./http-transport.js')).HttpTransport),
};
