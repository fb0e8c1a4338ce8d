import type { ExporterFactory } from '../../collector/component.js';
import { OtlpExporter } from '../otlpcommon/exporter.js';
import { readTlsFiles } from '../otlpcommon/tls.js';
import { otlpHttpConfigSchema, type OtlpHttpConfig } from './config.js';
import { HttpTransport } from './http-transport.js';

export const otlpHttpExporterFactory: ExporterFactory<OtlpHttpConfig> = {
  kind: 'exporter',
  type: 'otlphttp',
  configSchema: otlpHttpConfigSchema,
  signals: ['metrics', 'profiles'],
  create: (settings, config, signals) => new OtlpExporter(settings, config, signals, () => new HttpTransport(config, readTlsFiles(config.tls))),
};
