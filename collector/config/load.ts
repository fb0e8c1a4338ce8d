/**
 * Reads a pipeline YAML in the OpenTelemetry Collector's layout, merges each
 * component's config over its factory's defaults, and checks the pipelines.
 * Every problem is collected and reported at once, each with its path.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import type { ComponentId, ComponentKind, Factory } from '../component.js';
import { SIGNALS, type Signal } from '../data/signals.js';
import { LOG_LEVELS, type LogLevel } from '../logger.js';
import { ConfigError, type ConfigProblem, joinPath, problemsFromZod } from './errors.js';
import { securedServerSchema, type SecuredServerConfig } from '../http-security.js';
import { describeValue, duration } from './types.js';
import { KERNEL_FEATURE_NAMES, type KernelFeatureName } from '../../receivers/common/kernel-requirements.js';

const PIPELINE_KINDS = ['receiver', 'processor', 'exporter'] as const;
type PipelineKind = (typeof PIPELINE_KINDS)[number];
const SECTION = {
  receiver: 'receivers',
  processor: 'processors',
  exporter: 'exporters',
  connector: 'connectors',
} as const satisfies Record<ComponentKind, string>;
const TOP_LEVEL_KEYS = ['receivers', 'processors', 'exporters', 'connectors', 'service'];
const PIPELINE_KEYS = ['receivers', 'processors', 'exporters'];
const TYPE_PATTERN = /^[a-zA-Z][0-9a-zA-Z_]{0,62}$/;
const NAME_PATTERN = /^[0-9a-zA-Z_.-]+$/;

export interface ComponentConfig {
  kind: ComponentKind;
  id: ComponentId;
  factory: Factory;
  config: unknown;
}

export interface PipelineConfig {
  /** As written: `metrics`, `metrics/net`. */
  id: string;
  signal: Signal;
  receivers: string[];
  processors: string[];
  exporters: string[];
}

export interface ServiceConfig {
  http: SecuredServerConfig;
  logLevel: LogLevel;
  /** How long shutdown may take before the CLI gives up and exits with 1. */
  shutdownTimeoutMs: number;
  /** How long a component of each kind may hold one batch before it is abandoned (dropped and counted). */
  consumeTimeoutMs: { processors: number; connectors: number; exporters: number };
  /** Kernel features treated as missing, so that receivers take their fallbacks or refuse (receivers/common/kernel-requirements.ts). */
  disabledKernelFeatures: KernelFeatureName[];
}

export interface CollectorConfig {
  components: Record<ComponentKind, Map<string, ComponentConfig>>;
  pipelines: PipelineConfig[];
  service: ServiceConfig;
}

const serviceSchema = z
  .object({
    pipelines: z.unknown(),
    http: securedServerSchema('service::http', '127.0.0.1:7071').default({}),
    telemetry: z
      .object({ logs: z.object({ level: z.enum(LOG_LEVELS).default('info') }).strict().default({}) })
      .strict()
      .default({}),
    shutdown_timeout: duration(100, 10 * 60_000).default('15s'),
    // Exporters only encode and enqueue (OTLP sends from its queue, with its own timeout and retries) or write a file.
    consume_timeout: z
      .object({
        processors: duration(100, 10 * 60_000).default('10s'),
        connectors: duration(100, 10 * 60_000).default('10s'),
        exporters: duration(100, 10 * 60_000).default('30s'),
      })
      .strict()
      .default({}),
    kernel_features: z.object({ disable: z.array(z.enum(KERNEL_FEATURE_NAMES)).default([]) }).strict().default({}),
  })
  .strict();

/** Splits `type[/name]`; returns a problem message if the id is malformed. */
export function parseComponentId(id: string): ComponentId | string {
  const slash = id.indexOf('/');
  const type = slash < 0 ? id : id.slice(0, slash);
  const name = slash < 0 ? undefined : id.slice(slash + 1);
  if (!TYPE_PATTERN.test(type)) return `invalid id: the type "${type}" must start with a letter and hold only letters, digits and "_"`;
  if (name !== undefined && !NAME_PATTERN.test(name))
    return `invalid id: the name after "/" must be non-empty and hold only letters, digits, "_", "." and "-"`;
  return name === undefined ? { type, id } : { type, name, id };
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkComponents(
  kind: ComponentKind,
  section: unknown,
  factories: Factory[],
  problems: ConfigProblem[],
): Map<string, ComponentConfig> {
  const sectionName = SECTION[kind];
  const result = new Map<string, ComponentConfig>();
  if (section === undefined || section === null) return result;
  if (!isMap(section)) {
    problems.push({ path: sectionName, message: `expected a map from component id to config, got ${describeValue(section)}` });
    return result;
  }
  const ofKind = factories.filter((f) => f.kind === kind);
  for (const [key, raw] of Object.entries(section)) {
    const path = joinPath(sectionName, key);
    const id = parseComponentId(key);
    if (typeof id === 'string') {
      problems.push({ path, message: id });
      continue;
    }
    const factory = ofKind.find((f) => f.type === id.type);
    if (!factory) {
      problems.push({ path, message: `unknown ${kind} type "${id.type}" (known types: ${ofKind.map((f) => f.type).sort().join(', ')})` });
      continue;
    }
    const input = raw ?? {};
    const parsed = factory.configSchema.safeParse(input);
    if (!parsed.success) {
      problems.push(...problemsFromZod(parsed.error, factory.configSchema, input, path));
      // Keep the id known so that pipelines referring to it are not also reported as dangling.
      result.set(key, { kind, id, factory, config: undefined });
      continue;
    }
    result.set(key, { kind, id, factory, config: parsed.data });
  }
  return result;
}

/** Why `component` cannot stand as `kind` in a pipeline of `signal`, or undefined if it can. */
function unsupportedSignal(component: ComponentConfig, kind: PipelineKind, signal: Signal): string | undefined {
  const { factory } = component;
  const ref = component.id.id;
  if (factory.kind !== 'connector') {
    return factory.signals.includes(signal)
      ? undefined
      : `${kind} "${ref}" does not support the ${signal} signal (it supports: ${factory.signals.join(', ')})`;
  }
  const end = kind === 'exporter' ? 'from' : 'to';
  if (factory.routes.some((route) => route[end] === signal)) return undefined;
  const describe = factory.routes.map((r) => `${r.from} to ${r.to}`).join(', ');
  return `connector "${ref}" cannot be ${kind === 'exporter' ? 'an exporter' : 'a receiver'} of the ${signal} signal (it converts ${describe})`;
}

/** A connector must end one pipeline and start another, on a route it supports. */
function checkConnectors(components: Record<ComponentKind, Map<string, ComponentConfig>>, pipelines: PipelineConfig[], problems: ConfigProblem[]): void {
  for (const [id, component] of components.connector) {
    if (component.factory.kind !== 'connector') continue;
    const from = pipelines.filter((p) => p.exporters.includes(id)).map((p) => p.signal);
    const to = pipelines.filter((p) => p.receivers.includes(id)).map((p) => p.signal);
    if (from.length === 0 && to.length === 0) continue;
    const routes = component.factory.routes.filter((r) => from.includes(r.from) && to.includes(r.to));
    if (routes.length === 0)
      problems.push({
        path: joinPath('connectors', id),
        message: `must be an exporter in one pipeline and a receiver in another (exporter in: ${from.join(', ') || 'none'}; receiver in: ${to.join(', ') || 'none'})`,
      });
  }
}

function checkPipelines(
  raw: unknown,
  components: Record<ComponentKind, Map<string, ComponentConfig>>,
  problems: ConfigProblem[],
): PipelineConfig[] {
  const basePath = 'service::pipelines';
  if (!isMap(raw) || Object.keys(raw).length === 0) {
    problems.push({ path: basePath, message: 'at least one pipeline is required (e.g. "metrics")' });
    return [];
  }
  const pipelines: PipelineConfig[] = [];
  for (const [id, body] of Object.entries(raw)) {
    const path = joinPath(basePath, id);
    const signal = id.split('/')[0];
    if (!(SIGNALS as readonly string[]).includes(signal)) {
      problems.push({ path, message: `unknown signal "${signal}" (supported: ${SIGNALS.join(', ')})` });
      continue;
    }
    const named = parseComponentId(id);
    if (typeof named === 'string') {
      problems.push({ path, message: named.replace('the type', 'the signal') });
      continue;
    }
    if (!isMap(body)) {
      problems.push({ path, message: `expected a map with receivers, processors and exporters, got ${describeValue(body)}` });
      continue;
    }
    for (const key of Object.keys(body))
      if (!PIPELINE_KEYS.includes(key)) problems.push({ path: joinPath(path, key), message: `unknown key (valid keys: ${PIPELINE_KEYS.join(', ')})` });

    const pipeline: PipelineConfig = { id, signal: signal as Signal, receivers: [], processors: [], exporters: [] };
    const listed: Partial<Record<PipelineKind, number>> = {};
    for (const kind of PIPELINE_KINDS) {
      const listKey = SECTION[kind];
      const list = body[listKey] ?? [];
      if (!Array.isArray(list) || list.some((item) => typeof item !== 'string')) {
        problems.push({ path: joinPath(path, listKey), message: `expected a list of ${kind} ids, got ${describeValue(list)}` });
        continue;
      }
      listed[kind] = list.length;
      const seen = new Set<string>();
      for (const ref of list as string[]) {
        if (seen.has(ref)) {
          problems.push({ path: joinPath(path, listKey), message: `"${ref}" is listed more than once` });
          continue;
        }
        seen.add(ref);
        // A connector stands in a pipeline's receivers or exporters.
        const component = components[kind].get(ref) ?? (kind !== 'processor' ? components.connector.get(ref) : undefined);
        if (!component) {
          problems.push({ path, message: `references ${kind} "${ref}" which is not configured` });
          continue;
        }
        const unsupported = unsupportedSignal(component, kind, pipeline.signal);
        if (unsupported) {
          problems.push({ path, message: unsupported });
          continue;
        }
        pipeline[listKey].push(ref);
      }
    }
    if (listed.receiver === 0) problems.push({ path, message: 'must have at least one receiver' });
    if (listed.exporter === 0) problems.push({ path, message: 'must have at least one exporter' });
    pipelines.push(pipeline);
  }
  return pipelines;
}

/** Validates a parsed YAML document. Throws ConfigError listing every problem. */
export function resolveConfig(document: unknown, factories: Factory[]): CollectorConfig {
  const problems: ConfigProblem[] = [];
  if (!isMap(document)) {
    throw new ConfigError([{ path: '', message: `the config must be a map with receivers, exporters and service, got ${describeValue(document)}` }]);
  }
  for (const key of Object.keys(document))
    if (!TOP_LEVEL_KEYS.includes(key)) problems.push({ path: key, message: `unknown key (valid keys: ${TOP_LEVEL_KEYS.join(', ')})` });

  const components = {
    receiver: checkComponents('receiver', document.receivers, factories, problems),
    processor: checkComponents('processor', document.processors, factories, problems),
    exporter: checkComponents('exporter', document.exporters, factories, problems),
    connector: checkComponents('connector', document.connectors, factories, problems),
  };

  const serviceInput = document.service ?? {};
  const service = serviceSchema.safeParse(serviceInput);
  if (!service.success) problems.push(...problemsFromZod(service.error, serviceSchema, serviceInput, 'service'));
  const pipelines = checkPipelines(isMap(serviceInput) ? serviceInput.pipelines : undefined, components, problems);
  checkConnectors(components, pipelines, problems);

  if (problems.length > 0 || !service.success) throw new ConfigError(problems);
  return {
    components,
    pipelines,
    service: {
      http: service.data.http,
      logLevel: service.data.telemetry.logs.level,
      shutdownTimeoutMs: service.data.shutdown_timeout,
      consumeTimeoutMs: service.data.consume_timeout,
      disabledKernelFeatures: service.data.kernel_features.disable,
    },
  };
}

/** Parses YAML text; syntax errors are reported as `source:line:column: message`. */
export function parseConfigText(text: string, source: string, factories: Factory[]): CollectorConfig {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, lineCounter });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return { path: `${source}:${line}:${col}`, message: error.message };
      }),
    );
  }
  return resolveConfig(document.toJS(), factories);
}

export function loadConfigFile(path: string, factories: Factory[]): CollectorConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError([{ path, message: `cannot read the config file: ${(error as Error).message}` }]);
  }
  return parseConfigText(text, path, factories);
}
