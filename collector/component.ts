/**
 * The component model, after the OpenTelemetry Collector's: a factory per
 * type with a config schema whose defaults user config is merged over, and
 * components with start/shutdown. shutdown() must be safe without start() and
 * safe twice, and must flush what the component holds.
 */
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { Logger } from './logger.js';
import type { Signal, SignalData } from './data/signals.js';
import type { ComponentTelemetry, SelfTelemetry } from './telemetry.js';
import type { ProcessTable } from './processes.js';
import type { Heartbeat, StatusReporter } from './status.js';

export type ComponentKind = 'receiver' | 'processor' | 'exporter' | 'connector';

export interface ComponentId {
  type: string;
  name?: string;
  /** `type` or `type/name`, as written in the config. */
  id: string;
}

/** What a running component can reach of the collector. */
export interface Host {
  processes: ProcessTable;
  /** The collector's HTTP server (service::http::endpoint): add routes in start(); it listens once everything has started. */
  http: FastifyInstance;
  /** The collector's own metrics, for exporters that serve them beside the pipeline's. */
  selfTelemetry: SelfTelemetry;
}

export interface Component {
  start(host: Host): Promise<void>;
  shutdown(): Promise<void>;
  /** For components with periodic work (polling receivers): when it last completed; /healthz calls one stalled after three intervals without. */
  heartbeat?(): Heartbeat | undefined;
}

export interface Consumer<S extends Signal> {
  consume(data: SignalData[S]): Promise<void>;
  /** True if consume() modifies the data; a fan-out then hands it a copy. */
  readonly mutatesData?: boolean;
}

export type Consumers = { [S in Signal]?: Consumer<S> };

export interface CreateSettings {
  id: ComponentId;
  logger: Logger;
  telemetry: ComponentTelemetry;
  status: StatusReporter;
}

interface FactoryBase<C> {
  type: string;
  /** Validates and fills defaults; `schema.parse({})` is the default config. */
  configSchema: z.ZodType<C, z.ZodTypeDef, unknown>;
  signals: readonly Signal[];
}

/** One receiver instance serves every pipeline that lists it, whatever the signal. */
export interface ReceiverFactory<C = unknown> extends FactoryBase<C> {
  kind: 'receiver';
  create(settings: CreateSettings, config: C, next: Consumers): Component;
}

/** A processor instance belongs to one pipeline, so it serves one signal. */
export interface ProcessorFactory<C = unknown> extends FactoryBase<C> {
  kind: 'processor';
  create<S extends Signal>(settings: CreateSettings, config: C, signal: S, next: Consumer<S>): Component & Consumer<S>;
}

/** One exporter instance serves every pipeline that lists it. */
export interface ExporterFactory<C = unknown> extends FactoryBase<C> {
  kind: 'exporter';
  create(settings: CreateSettings, config: C, signals: ReadonlySet<Signal>): Component & { consumers: Consumers };
}

/**
 * A connector is an exporter at the end of one pipeline and a receiver at the
 * start of another, as in the Collector: it turns one signal into another
 * (profiles into metrics). One instance per (id, from, to).
 */
export interface ConnectorFactory<C = unknown> {
  kind: 'connector';
  type: string;
  configSchema: z.ZodType<C, z.ZodTypeDef, unknown>;
  /** The signal pairs it converts; create() is only called with one of them. */
  routes: readonly { from: Signal; to: Signal }[];
  create(settings: CreateSettings, config: C, from: Signal, to: Signal, next: Consumer<Signal>): Component & Consumer<Signal>;
}

export type Factory = ReceiverFactory<any> | ProcessorFactory<any> | ExporterFactory<any> | ConnectorFactory<any>;
