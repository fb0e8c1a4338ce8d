/** Value types shared by component configs, with the errors a user should see. */
import { z } from 'zod';

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "500ms", "10s", "1m30s" into milliseconds; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) ms += Number(amount) * UNIT_MS[unit];
  return ms;
}

/** A duration written like "10s" or "500ms", held as milliseconds, within [minMs, maxMs]. */
export function duration(minMs: number, maxMs: number) {
  return z.unknown().transform((value, ctx): number => {
    const ms = typeof value === 'string' ? parseDuration(value) : undefined;
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a duration such as "10s" or "500ms", got ${describeValue(value)}` });
      return z.NEVER;
    }
    if (ms < minMs || ms > maxMs) {
      ctx.addIssue({ code: 'custom', message: `must be between ${formatMs(minMs)} and ${formatMs(maxMs)}, got "${value}"` });
      return z.NEVER;
    }
    return ms;
  });
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export interface Endpoint {
  host: string;
  port: number;
}

/** "host:port" for a server we listen on; port 0 picks a free port. */
export const endpoint = z.string().transform((value, ctx): Endpoint => {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `expected "host:port" with a port from 0 to 65535, got "${value}"` });
    return z.NEVER;
  }
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
});

export function formatEndpoint({ host, port }: Endpoint): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** How a value is shown in an error: its YAML type and, for scalars, the value. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return `string "${value}"`;
  return `${typeof value} ${String(value)}`;
}
