import { z } from 'zod';
import { commonOtlpFields } from '../otlpcommon/config.js';

/** A base URL such as http://127.0.0.1:4318; requests go to {endpoint}/v1/metrics and {endpoint}/v1development/profiles. */
const baseUrl = z.string().transform((value, ctx): string => {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash) {
    ctx.addIssue({ code: 'custom', message: `expected an http:// or https:// base URL such as "http://127.0.0.1:4318", got "${value}"` });
    return z.NEVER;
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
});

/** The Collector's otlphttp exporter: OTLP/HTTP with protobuf bodies. */
export const otlpHttpConfigSchema = z
  .object({ endpoint: baseUrl, ...commonOtlpFields })
  .strict()
  .superRefine((config, ctx) => {
    // zod still runs this when a field failed; there is nothing to compare then.
    if (typeof config.endpoint !== 'string') return;
    if (config.tls.insecure && config.endpoint.startsWith('https:'))
      ctx.addIssue({ code: 'custom', path: ['tls', 'insecure'], message: 'an https:// endpoint always uses TLS; write http:// for plaintext' });
    if (config.endpoint.startsWith('http:') && (config.tls.ca_file || config.tls.cert_file))
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'ca_file, cert_file and key_file need an https:// endpoint' });
  });

export type OtlpHttpConfig = z.output<typeof otlpHttpConfigSchema>;
