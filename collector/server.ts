/**
 * The collector's own HTTP server (fastify): component status now, the
 * profiling API later. Listens on service::http::endpoint, 127.0.0.1:7071 by default.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Endpoint } from './config/types.js';
import type { ProcessTable } from './processes.js';
import type { StatusRegistry } from './status.js';
import { VERSION } from './version.js';

export interface ServerDeps {
  statuses: StatusRegistry;
  processes: ProcessTable;
}

export function createServer({ statuses, processes }: ServerDeps): FastifyInstance {
  const app = Fastify({ logger: false });
  const startedAt = new Date().toISOString();
  app.get('/status', async () => ({
    version: VERSION,
    startedAt,
    liveProcesses: processes.size,
    components: statuses.snapshot(),
  }));
  // Healthy while every component that should be running is: a failed receiver makes it 503 with the reasons.
  app.get('/healthz', async (_request, reply) => {
    const failed = statuses.snapshot().filter((s) => s.status === 'permanent_error');
    reply.code(failed.length ? 503 : 200);
    return { healthy: failed.length === 0, failed: failed.map(({ id, kind, message }) => ({ id, kind, message })) };
  });
  return app;
}

export async function listen(app: FastifyInstance, endpoint: Endpoint): Promise<string> {
  return app.listen({ host: endpoint.host, port: endpoint.port });
}
