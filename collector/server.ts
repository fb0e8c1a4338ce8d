/**
 * The collector's own HTTP server (fastify): component status, probes, and
 * the routes components add (the profiling API). Listens on
 * service::http::endpoint, 127.0.0.1:7071 by default; anywhere else it needs
 * service::http::tls or service::http::auth (collector/http-security.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Endpoint } from './config/types.js';
import { createSecuredServer, type SecuredServerConfig } from './http-security.js';
import type { ProcessTable } from './processes.js';
import type { StatusRegistry } from './status.js';
import { VERSION } from './version.js';

export interface ServerDeps {
  statuses: StatusRegistry;
  processes: ProcessTable;
  http: SecuredServerConfig;
}

/**
 * The probes answer without the bearer token, since a kubelet or Docker
 * healthcheck cannot send a secret; they start no work and show no stacks.
 * TLS, when configured, covers them too.
 */
export const PROBE_ROUTES = ['/healthz', '/livez'] as const;

/** Reads service::http's TLS and token files now: a missing one fails the start, naming its setting. */
export function createServer({ statuses, processes, http }: ServerDeps): FastifyInstance {
  const app = createSecuredServer(http, 'service::http', PROBE_ROUTES);
  const startedAt = new Date().toISOString();
  app.get('/status', async () => ({
    version: VERSION,
    startedAt,
    liveProcesses: processes.size,
    components: statuses.snapshot(),
  }));
  // Alive while the server answers (liveness); /healthz says whether the pipeline works (readiness).
  app.get('/livez', async () => ({ alive: true }));
  // Healthy while every component that should be running is: a failed component, or a receiver whose
  // collection has not completed for three intervals, makes it 503 naming them; receivers' last collection is listed.
  app.get('/healthz', async (_request, reply) => {
    const health = statuses.health();
    reply.code(health.healthy ? 200 : 503);
    return health;
  });
  return app;
}

export async function listen(app: FastifyInstance, endpoint: Endpoint): Promise<string> {
  return app.listen({ host: endpoint.host, port: endpoint.port });
}
