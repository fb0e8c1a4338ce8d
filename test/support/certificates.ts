/** Certificates made with the openssl CLI for TLS tests, and curl as the client that checks them. */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  dir: string;
  /** The CA that signed the server's and the client's certificates. */
  caCert: string;
  /** For localhost and 127.0.0.1. */
  serverCert: string;
  serverKey: string;
  client: { cert: string; key: string };
  /** A client certificate from another CA, which the server must not trust. */
  strangerClient: { cert: string; key: string };
}

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args);
}

async function newCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-keyout', key, '-out', cert,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key };
}

async function newLeaf(dir: string, name: string, ca: { cert: string; key: string }, extensions: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const request = join(dir, `${name}.csr`);
  const extfile = join(dir, `${name}.ext`);
  writeFileSync(extfile, extensions);
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', key, '-out', request]);
  await openssl(['x509', '-req', '-in', request, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-out', cert, '-extfile', extfile]);
  return { cert, key };
}

export async function makeCertificates(): Promise<TestCertificates> {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-tls-'));
  const ca = await newCa(dir, 'test-ca');
  const stranger = await newCa(dir, 'stranger-ca');
  const server = await newLeaf(dir, 'localhost', ca, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  const client = await newLeaf(dir, 'scraper', ca, 'extendedKeyUsage=clientAuth\n');
  const strangerClient = await newLeaf(dir, 'stranger', stranger, 'extendedKeyUsage=clientAuth\n');
  return { dir, caCert: ca.cert, serverCert: server.cert, serverKey: server.key, client, strangerClient };
}

export interface CurlResult {
  /** curl's exit status: 0, or why the transfer failed (35 TLS handshake, 56 receive error, 52 empty reply…). */
  exit: number;
  /** The HTTP status, 0 when there was no answer. */
  status: number;
  body: string;
  stderr: string;
}

/** Runs curl on `url` with `args`; never throws for a failed transfer, so tests can check how it failed. */
export async function curl(url: string, args: string[] = []): Promise<CurlResult> {
  try {
    const { stdout, stderr } = await run('curl', ['-sS', '--max-time', '20', '-w', '\n%{http_code}', ...args, url]);
    return { exit: 0, ...splitStatus(stdout), stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    if (typeof failure.code !== 'number') throw error;
    return { exit: failure.code, ...splitStatus(failure.stdout), stderr: failure.stderr };
  }
}

function splitStatus(stdout: string): { status: number; body: string } {
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)) || 0, body: stdout.slice(0, cut) };
}
