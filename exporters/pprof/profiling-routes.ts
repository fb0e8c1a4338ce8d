/**
 * The on-demand profiling API on the collector's HTTP server, after Go's
 * net/http/pprof:
 *   GET /debug/pprof/                          this index
 *   GET /debug/pprof/profile?seconds=N&pid=P   gzip'd pprof of the next N seconds
 *   GET /debug/pprof/folded?seconds=N&pid=P    the same window as folded stacks
 * N defaults to 30 and may be 1 to 300; it must be at least the receiver's
 * collection_interval, since a window only sees the batches that arrive during
 * it. `pid` is one process id or a comma-separated list. Requests beyond the
 * exporter's max_concurrent_requests are answered 429 with Retry-After; a
 * window that held max_samples_per_request says how many it left out in
 * X-Dropped-Samples.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { encodeFolded } from './folded-encoding.js';
import { encodePprof } from './pprof-encoding.js';
import type { ClosedWindow, ProfileWindows, WindowRequest } from './profile-windows.js';

export const PROFILING_PATH = '/debug/pprof/';
const PROFILE_PATH = `${PROFILING_PATH}profile`;
const FOLDED_PATH = `${PROFILING_PATH}folded`;

/** Samples a window left out because it was full; 0 when it held them all. */
export const DROPPED_HEADER = 'X-Dropped-Samples';
const DEFAULT_SECONDS = 30;
const MAX_SECONDS = 300;

const INDEX = `<!DOCTYPE html>
<html><head><title>/debug/pprof/</title></head><body>
<h1>/debug/pprof/</h1>
<p>CPU profiles of every process on this host, sampled by the collector's eBPF receiver.
A request collects the batches that arrive in the next <code>seconds</code> (default ${DEFAULT_SECONDS}, at most ${MAX_SECONDS}):
ask for at least the receiver's <code>collection_interval</code>. <code>pid=1234</code> or <code>pid=1234,5678</code> keeps only those processes.</p>
<ul>
<li><a href="profile?seconds=${DEFAULT_SECONDS}">profile</a>: gzip'd pprof, for <code>go tool pprof http://HOST${PROFILE_PATH}?seconds=${DEFAULT_SECONDS}</code></li>
<li><a href="folded?seconds=${DEFAULT_SECONDS}">folded</a>: folded stacks (<code>comm;root;&hellip;;leaf count</code>) for flamegraph.pl, inferno or speedscope</li>
</ul>
</body></html>
`;

/** Adds the routes; false if another pprof exporter already serves them on this server. */
export function registerProfilingRoutes(http: FastifyInstance, windows: ProfileWindows): boolean {
  if (http.hasRoute({ method: 'GET', url: PROFILE_PATH })) return false;
  const index = async (_request: FastifyRequest, reply: FastifyReply) => reply.type('text/html; charset=utf-8').send(INDEX);
  http.get(PROFILING_PATH, index);
  http.get(PROFILING_PATH.slice(0, -1), index);
  http.get(PROFILE_PATH, async (request, reply) => {
    const window = await collectWindow(request, reply, windows);
    if (!window) return reply;
    const profile = await encodePprof(window.batches, window);
    return reply
      .header(DROPPED_HEADER, window.droppedSamples)
      .type('application/octet-stream')
      .header('Content-Disposition', 'attachment; filename="profile.pb.gz"')
      .header('X-Content-Type-Options', 'nosniff')
      .send(profile);
  });
  http.get(FOLDED_PATH, async (request, reply) => {
    const window = await collectWindow(request, reply, windows);
    if (!window) return reply;
    return reply.header(DROPPED_HEADER, window.droppedSamples).type('text/plain; charset=utf-8').send(encodeFolded(window.batches));
  });
  return true;
}

/** Validates the query and waits out the window; undefined when it already answered with an error. */
async function collectWindow(request: FastifyRequest, reply: FastifyReply, windows: ProfileWindows): Promise<ClosedWindow | undefined> {
  const parsed = parseQuery(request.query as Record<string, string | string[] | undefined>, windows.batchSpanMs);
  if (typeof parsed === 'string') {
    await reply.code(400).type('text/plain; charset=utf-8').send(`${parsed}\n`);
    return undefined;
  }
  if (!windows.accepting) {
    await reply.code(503).type('text/plain; charset=utf-8').send('the pprof exporter is shut down\n');
    return undefined;
  }
  if (windows.full) {
    await reply
      .code(429)
      .header('Retry-After', Math.max(1, Math.ceil(windows.msUntilOneCloses() / 1000)))
      .type('text/plain; charset=utf-8')
      .send(
        `${windows.maxOpen} profiling requests are running already, the most the pprof exporter's max_concurrent_requests allows; try again when one has finished\n`,
      );
    return undefined;
  }
  const window = windows.collect(parsed);
  // A client that hangs up ends its window: nothing would read the answer.
  reply.raw.once('close', () => window.close());
  return window.result;
}

/** The window a query asks for, or why it is refused. */
function parseQuery(query: Record<string, string | string[] | undefined>, batchSpanMs: number | undefined): WindowRequest | string {
  const seconds = query.seconds === undefined ? String(DEFAULT_SECONDS) : query.seconds;
  if (typeof seconds !== 'string' || !/^\d+$/.test(seconds) || Number(seconds) < 1 || Number(seconds) > MAX_SECONDS)
    return `seconds must be a whole number from 1 to ${MAX_SECONDS}, got ${JSON.stringify(seconds)}`;
  // A batch spans a little more than the interval (the read itself takes time): whole seconds of it are the interval.
  const intervalSeconds = Math.floor((batchSpanMs ?? 0) / 1000);
  if (Number(seconds) < intervalSeconds)
    return `seconds=${seconds} is shorter than the time between batches (${intervalSeconds}s, the receiver's collection_interval): no batch would arrive in time; ask for seconds=${intervalSeconds} or more`;
  const durationMs = Number(seconds) * 1000;
  if (query.pid === undefined) return { durationMs };
  const pids = new Set<number>();
  for (const text of [query.pid].flat().flatMap((value) => value.split(','))) {
    if (!/^\d+$/.test(text.trim()) || Number(text) < 1) return `pid must be a process id or a comma-separated list of them, got ${JSON.stringify([query.pid].flat().join(','))}`;
    pids.add(Number(text));
  }
  return { durationMs, pids };
}
