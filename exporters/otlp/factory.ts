import type { ExporterFactory } from '../../collector/component.js';
import { lazyExporter } from '../../collector/lazy.js';
import { otlpGrpcConfigSchema, type OtlpGrpcConfig } from './config.js';

export const otlpGrpcExporterFactory: ExporterFactory<OtlpGrpcConfig> = {
  kind: 'exporter',
  type: 'otlp',
  configSchema: otlpGrpcConfigSchema,
  signals: ['metrics', 'profiles'],
  create: lazyExporter(async () => {
    const [{ OtlpExporter }, { readTlsFiles }, { GrpcTransport }] = await Promise.all([
      import('../otlpcommon/exporter.js'),
      import('../otlpcommon/tls.js'),
      import('./grpc-transport.js'),
    ]);
    return (settings, config, signals) => new OtlpExporter(settings, config, signals, () => new GrpcTransport(config, readTlsFiles(config.tls)));
  }),
};
