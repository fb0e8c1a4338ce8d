/** create() for the OTLP exporters: the exporter and its transport are imported when it starts (see collector/lazy.ts). */
import type { ExporterFactory } from '../../collector/component.js';
import { lazyExporter } from '../../collector/lazy.js';
import type { OtlpCommonConfig } from './config.js';
import type { TlsMaterial } from './tls.js';
import type { OtlpTransport } from './transport.js';

export function lazyOtlpExporter<C extends OtlpCommonConfig>(
  loadTransport: () => Promise<new (config: C, tls: TlsMaterial) => OtlpTransport>,
): ExporterFactory<C>['create'] {
  return lazyExporter(async () => {
    const [{ OtlpExporter }, { readTlsFiles }, Transport] = await Promise.all([import('./exporter.js'), import('./tls.js'), loadTransport()]);
    return (settings, config, signals) => new OtlpExporter(settings, config, signals, () => new Transport(config, readTlsFiles(config.tls)));
  });
}
