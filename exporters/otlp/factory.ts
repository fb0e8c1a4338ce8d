import type { ExporterFactory } from '../../collector/component.js';
import { lazyOtlpExporter } from '../otlpcommon/factory.js';
import { otlpGrpcConfigSchema, type OtlpGrpcConfig } from './config.js';

export const otlpGrpcExporterFactory: ExporterFactory<OtlpGrpcConfig> = {
  kind: 'exporter',
  type: 'otlp',
  configSchema: otlpGrpcConfigSchema,
  signals: ['metrics', 'profiles'],
  create: lazyOtlpExporter(async () => (await import('./grpc-transport.js')).GrpcTransport),
};
