import type { ExporterFactory } from '../../collector/component.js';
import { lazyExporter } from '../../collector/lazy.js';
import { otlpHttpConfigSchema, type OtlpHttpConfig } from './config.js';

export const otlpHttpExporterFactory: ExporterFactory<OtlpHttpConfig> = {
  kind: 'exporter',
  type: 'otlphttp',
  configSchema: otlpHttpConfigSchema,
  signals: ['metrics', 'profiles'],
  create: lazyExporter(async () => {
    const [{ OtlpExporter }, { readTlsFiles }, { HttpTransport }] = await Promise.all([
      import('../otlpcommon/exporter.js'),
      import('../otlpcommon/tls.js'),
      import('./http-transport.js'),
    ]);
    return (settings, config, signals) => new OtlpExporter(settings, config, signals, () => new HttpTransport(config, readTlsFiles(config.tls)));
  }),
};
