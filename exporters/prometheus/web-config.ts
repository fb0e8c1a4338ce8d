/**
 * The scrape endpoint's protection, as Prometheus exporters configure it
 * (the exporter-toolkit's web config): `tls_server_config` (cert_file,
 * key_file, client_ca_file, client_auth_type) and `basic_auth_users`
 * (username → bcrypt hash). Plain HTTP stays allowed, as the Prometheus
 * convention has it.
 */
import { createHash } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CLIENT_AUTH_TYPES, createFastifyServer, loadTls } from '../../collector/http-security.js';

const file = z.string().min(1, 'must name a file');
const BCRYPT_HASH = /^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$/;
const VERIFYING = new Set(['VerifyClientCertIfGiven', 'RequireAndVerifyClientCert']);

export const tlsServerConfigSchema = z
  .object({
    cert_file: file,
    key_file: file,
    client_ca_file: file.optional(),
    client_auth_type: z.enum(CLIENT_AUTH_TYPES).default('NoClientCert'),
  })
  .strict()
  .superRefine((tls, ctx) => {
    // The exporter-toolkit's own rule: a CA without a policy that uses it is a mistake.
    if (tls.client_ca_file !== undefined && !VERIFYING.has(tls.client_auth_type))
      ctx.addIssue({
        code: 'custom',
        path: ['client_auth_type'],
        message: `client_ca_file is set, so client_auth_type must verify client certificates: VerifyClientCertIfGiven or RequireAndVerifyClientCert, got ${tls.client_auth_type}`,
      });
    if (tls.client_ca_file === undefined && VERIFYING.has(tls.client_auth_type))
      ctx.addIssue({ code: 'custom', path: ['client_ca_file'], message: `${tls.client_auth_type} verifies client certificates against client_ca_file, which is not set` });
  });

export const basicAuthUsersSchema = z.record(
  z.string().regex(/^[^:]+$/, 'a username cannot contain ":" (HTTP basic auth separates it from the password with one)'),
  z.string().regex(BCRYPT_HASH, 'must be a bcrypt hash ($2y$…, e.g. from `htpasswd -nBC 10 "" | tr -d ":"`)'),
);

export type TlsServerConfig = z.output<typeof tlsServerConfigSchema>;
export type BasicAuthUsers = z.output<typeof basicAuthUsersSchema>;

/** The hash of a random password nobody kept, compared for unknown users so that they take about as long as known ones. */
const UNKNOWN_USER_HASH = '$2b$10$5THdVD.KvRKH3Vbe85cUtOdWLM2WfM4OlaPYumtIefz2v9r17nTEC';
/** Credentials recently checked, by digest: bcrypt takes a tenth of a second or more, and Prometheus sends the same ones every scrape. */
const MAX_REMEMBERED = 100;

class BasicAuth {
  private readonly remembered = new Map<string, boolean>();
  /** One bcrypt at a time: it runs on the main thread, beside the pipeline. */
  private checking: Promise<unknown> = Promise.resolve();

  constructor(private readonly users: BasicAuthUsers) {}

  async allows(authorization: string | undefined): Promise<boolean> {
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
    if (!match) return false;
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = Object.hasOwn(this.users, user) ? this.users[user] : undefined;
    const key = createHash('sha256').update(`${user}\0${password}\0${hash ?? ''}`).digest('base64');
    const known = this.remembered.get(key);
    if (known !== undefined) return known;
    const check = this.checking.then(() => bcrypt.compare(password, hash ?? UNKNOWN_USER_HASH));
    this.checking = check.catch(() => undefined);
    const allowed = (await check) && hash !== undefined;
    if (this.remembered.size >= MAX_REMEMBERED) this.remembered.delete(this.remembered.keys().next().value!);
    this.remembered.set(key, allowed);
    return allowed;
  }
}

/** The scrape endpoint's server: HTTPS with the client-certificate policy when tls_server_config is set, basic auth when users are. Reads the files now. */
export function createScrapeServer(tls: TlsServerConfig | undefined, users: BasicAuthUsers | undefined, settingPath: string): FastifyInstance {
  const app = createFastifyServer(tls && loadTls(tls, `${settingPath}::tls_server_config`), tls?.client_auth_type ?? 'NoClientCert');
  if (users && Object.keys(users).length > 0) {
    const auth = new BasicAuth(users);
    app.addHook('onRequest', async (request, reply) => {
      if (await auth.allows(request.headers.authorization)) return;
      return reply.code(401).header('WWW-Authenticate', 'Basic realm="ebpf-collector", charset="UTF-8"').type('text/plain; charset=utf-8').send('Unauthorized\n');
    });
  }
  return app;
}
