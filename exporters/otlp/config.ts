import { z } from 'zod';
import type { Endpoint } from '../../collector/config/types.js';
import { commonOtlpFields } from '../otlpcommon/config.js';

/** host:port of the gRPC server (a host name, IPv4, or [IPv6]), e.g. 127.0.0.1:4317. */
const serverEndpoint = z.string().transform((value, ctx): Endpoint => {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:/\s]+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `expected "host:port" with a port from 1 to 65535, such as "127.0.0.1:4317", got "${value}"` });
    return z.NEVER;
  }
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
});

/** The Collector's otlp exporter: OTLP/gRPC. Like the Collector's, it uses TLS unless `tls.insecure` is true. */
export const otlpGrpcConfigSchema = z.object({ endpoint: serverEndpoint, ...commonOtlpFields }).strict();

export type OtlpGrpcConfig = z.output<typeof otlpGrpcConfigSchema>;
