/**
 * TLS workloads for the tls receiver's tests, all on 127.0.0.1: a CA and
 * server certificates for two SNI names made with `openssl req`, `openssl
 * s_server`, a node https server, and curl and node https clients whose
 * pids are returned so that tests count only their own handshakes. The
 * names carry the test's pid: other tests on the machine never use them.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectPath } from '../../../collector/paths.js';
import { freePort } from '../../../test/support/collector.js';

const TESTDATA = projectPath('receivers', 'tls', 'testdata');

export interface Server {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export interface ClientRun {
  pid: number;
  /** Requests that got a response. */
  ok: number;
  /** Why the others failed (curl's exit status, node's error code). */
  errors: string[];
}

export class TlsFixture {
  readonly names: [string, string];
  private readonly servers: ChildProcess[] = [];

  private constructor(readonly directory: string) {
    this.names = [`a-${process.pid}.tls.test`, `b-${process.pid}.tls.test`];
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: directory, stdio: 'pipe' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ebpf-collector test CA');
    for (const name of this.names) {
      openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      writeFileSync(join(directory, `${name}.ext`), `subjectAltName=DNS:${name}\n`);
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
    }
  }

  static create(): TlsFixture {
    return new TlsFixture(mkdtempSync(join(tmpdir(), 'ebpf-tls-test-')));
  }

  get caPath(): string {
    return join(this.directory, 'ca.pem');
  }

  path(file: string): string {
    return join(this.directory, file);
  }

  /** `openssl s_server -www` for both names (the second by SNI), with `extra` arguments. */
  async opensslServer(extra: string[] = []): Promise<Server> {
    const [a, b] = this.names;
    const port = await freePort();
    const args = ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', this.path(`${a}.pem`), '-key', this.path(`${a}.key`)];
    args.push('-servername', b, '-cert2', this.path(`${b}.pem`), '-key2', this.path(`${b}.key`), '-www', ...extra);
    return this.start('openssl', args, 'ACCEPT', () => port);
  }

  /** A node https server for the first name. */
  async nodeServer(): Promise<Server> {
    const [a] = this.names;
    let port = 0;
    return this.start(process.execPath, [join(TESTDATA, 'https-server.mjs'), this.path(`${a}.key`), this.path(`${a}.pem`)], 'ready', (line) => {
      port = Number(/ready (\d+)/.exec(line)![1]);
      return port;
    });
  }

  /** One `curl` GET of https://NAME:PORT/ resolved to 127.0.0.1; `ca: false` trusts nothing. */
  curl(name: string, port: number, { ca = true, extra = [] as string[], env = {} as Record<string, string> } = {}): ClientRun {
    const args = ['-s', '-o', '/dev/null', '--resolve', `${name}:${port}:127.0.0.1`, ...(ca ? ['--cacert', this.caPath] : []), ...extra, `https://${name}:${port}/`];
    const run = spawnSync('curl', args, { encoding: 'utf8', env: { ...process.env, ...env } });
    if (run.error) throw run.error;
    return { pid: run.pid!, ok: run.status === 0 ? 1 : 0, errors: run.status === 0 ? [] : [`curl exit ${run.status}`] };
  }

  /** `count` node https GETs, each on its own connection, in one node process. */
  nodeClient(name: string, port: number, count: number, { ca = true, maxVersion = '' } = {}): ClientRun {
    const args = [join(TESTDATA, 'https-client.mjs'), String(port), name, ca ? this.caPath : '-', String(count), ...(maxVersion ? [maxVersion] : [])];
    const run = spawnSync(process.execPath, args, { encoding: 'utf8' });
    assert.equal(run.status, 0, `https-client.mjs failed: ${run.stderr}`);
    return { pid: run.pid!, ...(JSON.parse(run.stdout) as { ok: number; errors: string[] }) };
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.servers.map((child) => stop(child)));
    rmSync(this.directory, { recursive: true, force: true });
  }

  private async start(command: string, args: string[], readyText: string, portOf: (line: string) => number): Promise<Server> {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.servers.push(child);
    let output = '';
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (chunk) => {
        output += chunk;
        const line = output.split('\n').find((l) => l.includes(readyText));
        if (line) resolve(portOf(line));
      });
      child.stderr!.resume();
      child.once('exit', (code) => reject(new Error(`${command} ${args.join(' ')} exited with ${code} before it was ready: ${output}`)));
    });
    return { port, pid: child.pid!, stop: () => stop(child) };
  }
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** A library exporting OpenSSL's names with other code (or version): see fake_openssl.c. */
export function buildFakeOpenssl(directory: string, version: string): string {
  const output = join(directory, `libfake-openssl-${version}.so`);
  execFileSync('cc', ['-O2', '-shared', '-fPIC', `-DVERSION=${version}UL`, '-o', output, join(TESTDATA, 'fake_openssl.c')]);
  return output;
}
