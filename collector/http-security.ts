/**
 * Who may reach the collector's own servers. The status server, the profiling
 * API and any endpoint that starts work or exposes stacks run with the
 * collector's privileges: bound to anything but a loopback address, such a
 * server needs TLS (optionally with client certificates) or a bearer token, or
 * its configuration is refused. The rule (securedServerSchema), the loading of
 * the files it names and the token check are independent of the protocol, so
 * a gRPC server can apply them too; the fastify parts are at the end.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerOptions as HttpsServerOptions, Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ConfigError } from './config/errors.js';
import { endpoint, formatEndpoint, type Endpoint } from './config/types.js';

const file = z.string().min(1, 'must name a file');

/** As the OpenTelemetry Collector's confighttp server `tls`; client_ca_file turns on mutual TLS. */
export const serverTlsSchema = z.object({ cert_file: file, key_file: file, client_ca_file: file.optional() }).strict();
export const serverAuthSchema = z.object({ bearer_token_file: file }).strict();

export type ServerTlsConfig = z.output<typeof serverTlsSchema>;
export type ServerAuthConfig = z.output<typeof serverAuthSchema>;

export interface SecuredServerConfig {
  endpoint: Endpoint;
  tls?: ServerTlsConfig;
  auth?: ServerAuthConfig;
}

/** The Go crypto/tls client-certificate policies, by the names Prometheus's web config uses. */
export const CLIENT_AUTH_TYPES = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** True for addresses only this machine reaches: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const lower = host.toLowerCase();
  return lower === 'localhost' || lower === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(lower);
}

/** Why a server exposing stacks or starting work may not run as configured, or undefined if it may. */
export function exposureProblem(config: SecuredServerConfig, settingPath: string): string | undefined {
  if (isLoopbackHost(config.endpoint.host) || config.tls || config.auth) return undefined;
  return (
    `${formatEndpoint(config.endpoint)} is reachable from other machines, and this server exposes stacks and starts work as root: ` +
    `set ${settingPath}::tls (cert_file and key_file, and client_ca_file for client certificates) or ${settingPath}::auth::bearer_token_file, ` +
    `or listen on a loopback address such as 127.0.0.1`
  );
}

/** The config of such a server at `settingPath` (e.g. `service::http`), refused at validate time when exposed without TLS or a token. */
export function securedServerSchema(settingPath: string, defaultEndpoint: string) {
  return z
    .object({ endpoint: endpoint.default(defaultEndpoint), tls: serverTlsSchema.optional(), auth: serverAuthSchema.optional() })
    .strict()
    .superRefine((config, ctx) => {
      const problem = exposureProblem(config, settingPath);
      if (problem) ctx.addIssue({ code: 'custom', path: ['endpoint'], message: problem });
    });
}

export interface LoadedTls {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

/** Reads a file a setting names; a failure names the setting (ConfigError, so the CLI reports it as configuration). */
export function readSettingFile(path: string, settingPath: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError([{ path: settingPath, message: `cannot read ${path}: ${(error as Error).message}` }]);
  }
}

export function loadTls(tls: { cert_file: string; key_file: string; client_ca_file?: string }, settingPath: string): LoadedTls {
  return {
    cert: readSettingFile(tls.cert_file, `${settingPath}::cert_file`),
    key: readSettingFile(tls.key_file, `${settingPath}::key_file`),
    ca: tls.client_ca_file === undefined ? undefined : readSettingFile(tls.client_ca_file, `${settingPath}::client_ca_file`),
  };
}

/** The token a bearer_token_file holds (surrounding whitespace and a final newline are not part of it). */
export function loadBearerToken(path: string, settingPath: string): Buffer {
  const token = readSettingFile(path, settingPath).toString('utf8').trim();
  if (token.length === 0) throw new ConfigError([{ path: settingPath, message: `${path} is empty: it must hold the token` }]);
  return Buffer.from(token, 'utf8');
}

/** Whether an Authorization header carries `token`, compared in constant time (digests, so lengths leak nothing either). */
export function bearerTokenMatches(authorization: string | undefined, token: Buffer): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!match) return false;
  const digest = (value: Buffer) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(Buffer.from(match[1], 'utf8')), digest(token));
}

// ---------------------------------------------------------------- fastify

/** Node's TLS options for a server with this client-certificate policy; the rest of the policy is enforceClientAuth's. */
function httpsOptions(tls: LoadedTls, clientAuth: ClientAuthType): HttpsServerOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    ca: tls.ca,
    requestCert: clientAuth !== 'NoClientCert',
    // Node verifies or not; "any certificate" and "verify if given" are checked after the handshake.
    rejectUnauthorized: clientAuth === 'RequireAndVerifyClientCert',
  };
}

/** Drops connections the policy refuses that Node's own options let through. */
function enforceClientAuth(server: HttpsServer, clientAuth: ClientAuthType): void {
  if (clientAuth !== 'RequireAnyClientCert' && clientAuth !== 'VerifyClientCertIfGiven') return;
  server.on('secureConnection', (socket: TLSSocket) => {
    const given = Object.keys(socket.getPeerCertificate()).length > 0;
    if (clientAuth === 'RequireAnyClientCert' ? !given : given && !socket.authorized) socket.destroy();
  });
}

/** A fastify server over HTTPS when `tls` is given, else plain HTTP. */
export function createFastifyServer(tls: LoadedTls | undefined, clientAuth: ClientAuthType): FastifyInstance {
  if (!tls) return Fastify({ logger: false });
  // Routes and hooks are the same on an HTTPS server; only the raw server's type differs.
  const app = Fastify({ logger: false, https: httpsOptions(tls, clientAuth) }) as unknown as FastifyInstance;
  enforceClientAuth(app.server as unknown as HttpsServer, clientAuth);
  return app;
}

/**
 * The server of a SecuredServerConfig: TLS from its files (client certificates
 * required and verified when client_ca_file is set) and, with a token, every
 * route but `unauthenticatedRoutes` answering 401 without it. Reads the files
 * now, so a missing one fails the start with its setting named.
 */
export function createSecuredServer(config: SecuredServerConfig, settingPath: string, unauthenticatedRoutes: readonly string[] = []): FastifyInstance {
  const tls = config.tls && loadTls(config.tls, `${settingPath}::tls`);
  const app = createFastifyServer(tls, tls?.ca ? 'RequireAndVerifyClientCert' : 'NoClientCert');
  if (config.auth) {
    const token = loadBearerToken(config.auth.bearer_token_file, `${settingPath}::auth::bearer_token_file`);
    const open = new Set(unauthenticatedRoutes);
    app.addHook('onRequest', async (request, reply) => {
      if (request.routeOptions.url !== undefined && open.has(request.routeOptions.url)) return;
      if (bearerTokenMatches(request.headers.authorization, token)) return;
      return reply
        .code(401)
        .header('WWW-Authenticate', 'Bearer realm="ebpf-collector"')
        .type('text/plain; charset=utf-8')
        .send(`this endpoint needs the bearer token of ${settingPath}::auth::bearer_token_file in an "Authorization: Bearer" header\n`);
    });
  }
  return app;
}
