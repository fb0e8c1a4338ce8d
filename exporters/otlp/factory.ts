import type { ExporterFactory } from '../../collector/component.js';
import { OtlpExporter } from '../otlpcommon/exporter.js';
import { readTlsFiles } from '../otlpcommon/tls.js';
import { otlpGrpcConfigSchema, type OtlpGrpcConfig } from './config.js';
import { GrpcTransport } from './grpc-transport.js';

export const otlpGrpcExporterFactory: ExporterFactory<OtlpGrpcConfig> = {
  kind: 'exporter',
  type: 'otlp',
  configSchema: otlpGrpcConfigSchema,
  signals: ['metrics', 'profiles'],
  create: (settings, config, signals) => new OtlpExporter(settings, config, signals, () => new GrpcTransport(config, readTlsFiles(config.tls))),
};
