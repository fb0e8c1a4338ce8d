import type { ExporterFactory } from '../../collector/component.js';
import { pprofConfigSchema, type PprofConfig } from './config.js';
import { PprofExporter } from './exporter.js';

export const pprofExporterFactory: ExporterFactory<PprofConfig> = {
  kind: 'exporter',
  type: 'pprof',
  configSchema: pprofConfigSchema,
  signals: ['profiles'],
  create: (settings, config) => new PprofExporter(settings, config),
};
