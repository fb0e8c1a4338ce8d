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

export class Collector {
  readonly telemetry = new SelfTelemetry();
  readonly processes = new ProcessTable();
  readonly statuses: StatusRegistry;
  private readonly graph: PipelineGraph;
  private readonly server: FastifyInstance;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(private readonly config: CollectorConfig, private readonly logger: Logger) {
    this.statuses = new StatusRegistry(logger);
    this.graph = new PipelineGraph(config, { logger, telemetry: this.telemetry, statuses: this.statuses });
    this.server = createServer({ statuses: this.statuses, processes: this.processes, http: config.service.http });
  }

  /** Starts the pipelines, then the HTTP server, so that routes components add in start() are served. */
  async start(): Promise<void> {
    this.state = 'running';
    await this.graph.start({ processes: this.processes, selfTelemetry: this.telemetry, http: this.server });
    const { endpoint } = this.config.service.http;
    try {
      const address = await listen(this.server, endpoint);
      this.logger.info({ address }, 'HTTP server listening');
    } catch (error) {
      throw new Error(`cannot listen on ${formatEndpoint(endpoint)} (service::http::endpoint): ${(error as Error).message}`, { cause: error });
    }
    this.logger.info({ pipelines: this.config.pipelines.map((p) => p.id) }, 'collector running');
  }

  async shutdown(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopped';
    await this.graph.shutdown();
    await this.server.close();
    await this.telemetry.shutdown();
  }
}
