import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { pprofExporterFactory } from '../exporters/pprof/factory.js';
import { curl, makeCertificates } from '../test/support/certificates.js';
import { assertRefusedByValidate } from '../test/support/collector.js';
import { testHost, testSettings } from '../test/support/components.js';
import { ConfigError } from './config/errors.js';
import { projectPath } from './paths.js';
import { ProcessTable } from './processes.js';
import { createServer } from './server.js';
import { StatusRegistry } from './status.js';
import { bearerTokenMatches, isLoopbackHost, type SecuredServerConfig } from './http-security.js';

const certificates = await makeCertificates();
const scratch = mkdtempSync(join(tmpdir(), 'ebpf-collector-http-security-'));
const TOKEN = 'f3a9c1d27b6e4058a1c2d3e4f5a6b7c8';
const tokenFile = join(scratch, 'token');
writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });

function pipeline(http: Record<string, unknown>): string {
  return stringify({
    receivers: { process: {} },
    exporters: { prometheus: { endpoint: '127.0.0.1:0' } },
    service: { http, pipelines: { metrics: { receivers: ['process'], exporters: ['prometheus'] } } },
  });
}

function validate(yaml: string) {
  const path = join(mkdtempSync(join(scratch, 'validate-')), 'pipeline.yaml');
  writeFileSync(path, yaml);
  return spawnSync(projectPath('bin/ebpf-collector'), ['validate', '--config', path], { encoding: 'utf8' });
}

const servers: FastifyInstance[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

/** The collector's status server for `http` (its endpoint ignored), with the pprof exporter's routes, listening on a free loopback port. */
async function serve(http: Omit<SecuredServerConfig, 'endpoint'>): Promise<{ https: string; http: string }> {
  const server = createServer({
    statuses: new StatusRegistry(pino({ level: 'silent' })),
    processes: new ProcessTable(),
    http: { endpoint: { host: '127.0.0.1', port: 0 }, ...http },
  });
  servers.push(server);
  const pprof = pprofExporterFactory.create(testSettings('exporter', 'pprof'), pprofExporterFactory.configSchema.parse({ write_files: false }), new Set(['profiles'] as const));
  await pprof.start({ ...testHost(), http: server });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const { port } = server.server.address() as { port: number };
  return { https: `https://127.0.0.1:${port}`, http: `http://127.0.0.1:${port}` };
}

describe('the rule: beyond the loopback, TLS or a bearer token', () => {
  test('loopback addresses are told apart from the rest', () => {
    for (const host of ['127.0.0.1', '127.3.2.1', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(host), host);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.1', 'node-1.example', '::ffff:10.0.0.1', '128.0.0.1']) assert.ok(!isLoopbackHost(host), host);
  });

  test('validate refuses a status server reachable from other machines without TLS or a token, naming the settings', () => {
    for (const endpoint of ['0.0.0.0:7071', '[::]:7071', '10.1.2.3:7071'])
      assertRefusedByValidate(pipeline({ endpoint }), [
        new RegExp(
          `service::http::endpoint: ${endpoint.replace(/[[\].]/g, '\\$&')} is reachable from other machines, and this server exposes stacks and starts work as root: ` +
            'set service::http::tls \\(cert_file and key_file, and client_ca_file for client certificates\\) or service::http::auth::bearer_token_file, ' +
            'or listen on a loopback address such as 127.0.0.1',
        ),
      ]);
  });

  test('validate accepts the loopback as it is, and other addresses with TLS or a token', () => {
    const accepted = [
      {},
      { endpoint: '127.0.0.1:7071' },
      { endpoint: 'localhost:7071' },
      { endpoint: '[::1]:7071' },
      { endpoint: '0.0.0.0:7071', tls: { cert_file: '/etc/ebpf-collector/tls/tls.crt', key_file: '/etc/ebpf-collector/tls/tls.key' } },
      { endpoint: '0.0.0.0:7071', auth: { bearer_token_file: '/etc/ebpf-collector/token' } },
    ];
    for (const http of accepted) {
      const result = validate(pipeline(http));
      assert.equal(result.status, 0, `${JSON.stringify(http)}: ${result.stderr}`);
    }
  });

  test('validate names a malformed tls or auth setting', () => {
    assertRefusedByValidate(pipeline({ endpoint: '0.0.0.0:7071', tls: { cert_file: '/a.crt' } }), [/service::http::tls::key_file: /]);
    assertRefusedByValidate(pipeline({ endpoint: '0.0.0.0:7071', auth: { token: 'x' } }), [/service::http::auth::token: unknown key \(valid keys: bearer_token_file\)/]);
  });

  test('a file the settings name that cannot be read fails the start, naming the setting', () => {
    const missing = join(scratch, 'missing.crt');
    assert.throws(
      () => createServer({ statuses: new StatusRegistry(pino({ level: 'silent' })), processes: new ProcessTable(), http: { endpoint: { host: '0.0.0.0', port: 0 }, tls: { cert_file: missing, key_file: certificates.serverKey } } }),
      (error) => error instanceof ConfigError && error.message === `service::http::tls::cert_file: cannot read ${missing}: ENOENT: no such file or directory, open '${missing}'`,
    );
    const empty = join(scratch, 'empty-token');
    writeFileSync(empty, '\n');
    assert.throws(
      () => createServer({ statuses: new StatusRegistry(pino({ level: 'silent' })), processes: new ProcessTable(), http: { endpoint: { host: '0.0.0.0', port: 0 }, auth: { bearer_token_file: empty } } }),
      (error) => error instanceof ConfigError && error.message === `service::http::auth::bearer_token_file: ${empty} is empty: it must hold the token`,
    );
  });

  test('the CLI refuses to run with a TLS file it cannot read, naming the setting', () => {
    const dir = mkdtempSync(join(scratch, 'run-'));
    const path = join(dir, 'pipeline.yaml');
    const missing = join(dir, 'missing.key');
    writeFileSync(path, pipeline({ endpoint: '127.0.0.1:0', tls: { cert_file: certificates.serverCert, key_file: missing } }));
    const result = spawnSync(projectPath('bin/ebpf-collector'), ['run', '--config', path], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`^invalid configuration in ${path.replace(/[.]/g, '\\.')}:\n  service::http::tls::key_file: cannot read ${missing.replace(/[.]/g, '\\.')}: ENOENT`));
  });
});

describe('TLS on the status server', () => {
  test('https with the CA works; plain http gets no status', async () => {
    const { https, http } = await serve({ tls: { cert_file: certificates.serverCert, key_file: certificates.serverKey } });
    const secure = await curl(`${https}/status`, ['--cacert', certificates.caCert]);
    assert.equal(secure.exit, 0, secure.stderr);
    assert.equal(secure.status, 200);
    assert.match(secure.body, /"version":/);
    const profiling = await curl(`${https}/debug/pprof/`, ['--cacert', certificates.caCert]);
    assert.equal(profiling.status, 200);
    const plain = await curl(`${http}/status`);
    assert.notEqual(plain.status, 200, 'plain HTTP must not be answered');
    assert.doesNotMatch(plain.body, /"version":/);
    // And a client that does not trust the certificate refuses it (curl: 60, peer certificate cannot be authenticated).
    assert.equal((await curl(`${https}/status`)).exit, 60);
  });

  test('with client_ca_file, a client without a certificate, or with one from another CA, is refused', async () => {
    const { https } = await serve({ tls: { cert_file: certificates.serverCert, key_file: certificates.serverKey, client_ca_file: certificates.caCert } });
    const trusted = ['--cacert', certificates.caCert];
    const withCert = await curl(`${https}/status`, [...trusted, '--cert', certificates.client.cert, '--key', certificates.client.key]);
    assert.equal(withCert.exit, 0, withCert.stderr);
    assert.equal(withCert.status, 200);
    const without = await curl(`${https}/status`, trusted);
    assert.notEqual(without.exit, 0, 'no client certificate');
    assert.equal(without.status, 0);
    const stranger = await curl(`${https}/status`, [...trusted, '--cert', certificates.strangerClient.cert, '--key', certificates.strangerClient.key]);
    assert.notEqual(stranger.exit, 0, 'a client certificate from another CA');
    assert.equal(stranger.status, 0);
  });
});

describe('a bearer token on the status server', () => {
  test('401 without it or with another; 200 with it; the probes answer without it', async () => {
    const { http } = await serve({ auth: { bearer_token_file: tokenFile } });
    for (const path of ['/status', '/debug/pprof/', '/debug/pprof/profile?seconds=1', '/no-such-route']) {
      const without = await curl(`${http}${path}`, ['-D', '-']);
      assert.equal(without.status, 401, path);
      assert.match(without.body, /^www-authenticate: Bearer realm="ebpf-collector"\r$/im);
      assert.match(without.body, /this endpoint needs the bearer token of service::http::auth::bearer_token_file/);
      assert.equal((await curl(`${http}${path}`, ['-H', `Authorization: Bearer ${TOKEN.slice(0, -1)}x`])).status, 401, `${path}, another token`);
      assert.equal((await curl(`${http}${path}`, ['-H', `Authorization: Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`])).status, 401, `${path}, basic`);
    }
    for (const path of ['/status', '/debug/pprof/']) assert.equal((await curl(`${http}${path}`, ['-H', `Authorization: Bearer ${TOKEN}`])).status, 200, path);
    for (const path of ['/healthz', '/livez']) assert.equal((await curl(`${http}${path}`)).status, 200, path);
  });

  test('with TLS too: both', async () => {
    const { https } = await serve({ tls: { cert_file: certificates.serverCert, key_file: certificates.serverKey }, auth: { bearer_token_file: tokenFile } });
    const trusted = ['--cacert', certificates.caCert];
    assert.equal((await curl(`${https}/status`, trusted)).status, 401);
    assert.equal((await curl(`${https}/status`, [...trusted, '--oauth2-bearer', TOKEN])).status, 200);
  });

  test('the comparison takes the header as a whole token', () => {
    const token = Buffer.from(TOKEN);
    assert.ok(bearerTokenMatches(`Bearer ${TOKEN}`, token));
    assert.ok(bearerTokenMatches(`bearer ${TOKEN}`, token));
    for (const header of [undefined, '', TOKEN, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Bearer ${TOKEN} extra`, `Basic ${TOKEN}`]) assert.ok(!bearerTokenMatches(header, token), String(header));
  });
});
