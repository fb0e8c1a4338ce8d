/** One running collector: self-telemetry, the process table, the HTTP server and the pipeline graph. */
import type { FastifyInstance } from 'fastify';
import type { CollectorConfig } from './config/load.js';
import { formatEndpoint } from './config/types.js';
import { PipelineGraph } from './graph.js';
import type { Logger } from './logger.js';
import { ProcessTable } from './processes.js';
import { createServer, listen } from './server.js';
import { StatusRegistry } from './status.js';
import { SelfTelemetry } from './telemetry.js';
import { setDisabledKernelFeatures } from '../receivers/common/kernel-requirements.js';

export class Collector {
  readonly telemetry = new SelfTelemetry();
  readonly processes = new ProcessTable();
  readonly statuses: StatusRegistry;
  private readonly graph: PipelineGraph;
  private readonly server: FastifyInstance;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private starting?: Promise<unknown>;

  constructor(private readonly config: CollectorConfig, private readonly logger: Logger) {
    this.statuses = new StatusRegistry(logger);
    this.graph = new PipelineGraph(config, { logger, telemetry: this.telemetry, statuses: this.statuses });
    this.server = createServer({ statuses: this.statuses, processes: this.processes, http: config.service.http });
  }

  /** Starts the pipelines, then the HTTP server, so that routes components add in start() are served. Returns the server's address. */
  start(): Promise<string> {
    this.state = 'running';
    const starting = this.startAll();
    this.starting = starting.catch(() => undefined);
    return starting;
  }

  private async startAll(): Promise<string> {
    setDisabledKernelFeatures(this.config.service.disabledKernelFeatures);
    await this.graph.start({ processes: this.processes, selfTelemetry: this.telemetry, http: this.server });
    const { endpoint } = this.config.service.http;
    let address: string;
    try {
      address = await listen(this.server, endpoint);
      this.logger.info({ address }, 'HTTP server listening');
    } catch (error) {
      throw new Error(`cannot listen on ${formatEndpoint(endpoint)} (service::http::endpoint): ${(error as Error).message}`, { cause: error });
    }
    this.logger.info({ pipelines: this.config.pipelines.map((p) => p.id) }, 'collector running');
    return address;
  }

  /**
   * Lets a start in progress finish, then stops everything, within
   * service::shutdown_timeout. Returns what had not finished stopping by then:
   * nothing after a clean shutdown.
   */
  async shutdown(): Promise<string[]> {
    if (this.state !== 'running') return [];
    this.state = 'stopped';
    let step = 'start';
    const stopping = (async () => {
      await this.starting;
      step = 'the pipelines';
      await this.graph.shutdown();
      step = 'the HTTP server';
      await this.server.close();
      step = 'self-telemetry';
      await this.telemetry.shutdown();
    })();
    let timer: NodeJS.Timeout | undefined;
    const overdue = new Promise<'overdue'>((resolve) => (timer = setTimeout(() => resolve('overdue'), this.config.service.shutdownTimeoutMs)));
    let outcome;
    try {
      outcome = await Promise.race([stopping, overdue]);
    } finally {
      clearTimeout(timer);
    }
    if (outcome !== 'overdue') return [];
    const components = this.graph.pendingShutdown().map(({ kind, id, state }) => `${kind} "${id}" (${state})`);
    return components.length > 0 ? components : [step];
  }
}
