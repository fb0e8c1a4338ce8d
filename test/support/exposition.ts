/**
 * What metrics components' tests share: a real Prometheus exporter to feed and
 * scrape, settings whose self-telemetry shows on that exporter's endpoint,
 * promtool to judge an exposition, and config errors as a user reads them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { ComponentKind, Consumer, Factory, Host } from '../../collector/component.js';
import { formatProblem, joinPath, problemsFromZod } from '../../collector/config/errors.js';
import { SelfTelemetry } from '../../collector/telemetry.js';
import { prometheusExporterFactory } from '../../exporters/prometheus/factory.js';
import { freePort, scrape } from './collector.js';
import { testHost, testSettings } from './components.js';

/** A started Prometheus exporter; `telemetry` is the self-telemetry its endpoint serves. */
export interface ScrapedExporter {
  input: Consumer<'metrics'>;
  telemetry: SelfTelemetry;
  scrape(): Promise<string>;
  shutdown(): Promise<void>;
}

export async function startPrometheusExporter(): Promise<ScrapedExporter> {
  const port = await freePort();
  const config = prometheusExporterFactory.configSchema.parse({ endpoint: `127.0.0.1:${port}` });
  const exporter = prometheusExporterFactory.create(testSettings('exporter', 'prometheus'), config, new Set(['metrics'] as const));
  const telemetry = new SelfTelemetry();
  const host: Host = { ...testHost(), selfTelemetry: telemetry };
  await exporter.start(host);
  return { input: exporter.consumers.metrics!, telemetry, scrape: () => scrape(port), shutdown: () => exporter.shutdown() };
}

/** Test settings whose counters (dropped items …) land in `telemetry`. */
export function settingsWith(telemetry: SelfTelemetry, kind: ComponentKind, id: string): ReturnType<typeof testSettings> {
  return { ...testSettings(kind, id), telemetry: telemetry.forComponent(kind, id) };
}

/** The lines of one metric family (HELP, TYPE and samples, histogram series included), in exposition order. */
export function family(exposition: string, name: string): string[] {
  const names = new Set([name, `${name}_bucket`, `${name}_sum`, `${name}_count`]);
  return exposition.split('\n').filter((line) => {
    const comment = /^# (?:HELP|TYPE|UNIT) (\S+)/.exec(line);
    if (comment) return comment[1] === name;
    return names.has(/^[^{ ]+/.exec(line)?.[0] ?? '');
  });
}

/** `promtool check metrics` on an exposition: its exit status and what it printed. */
export function promtoolCheckMetrics(exposition: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

/** promtool finds nothing wrong with `exposition`, not even a remark. */
export function assertPromtoolClean(exposition: string): void {
  const check = promtoolCheckMetrics(exposition);
  assert.equal(check.status, 0, check.output);
  assert.equal(check.output, '', 'promtool has remarks');
}

/** The problems a user would see for `input` as the config of `processors::<id>`, each "path: message". */
export function configProblems(factory: Factory, id: string, input: unknown): string[] {
  const parsed = factory.configSchema.safeParse(input);
  return parsed.success ? [] : problemsFromZod(parsed.error, factory.configSchema, input, joinPath('processors', id)).map(formatProblem);
}
