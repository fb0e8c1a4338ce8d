/**
 * Test-only: DNS servers and clients in network namespaces the test makes, so
 * that no lookup ever reaches the host's resolver. A namespace has lo and a
 * veth pair with the test's addresses (getaddrinfo's AI_ADDRCONFIG needs a
 * non-loopback address), and its own /etc/netns/<name>/resolv.conf, which
 * `ip netns exec` mounts over /etc/resolv.conf for glibc clients.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectPath } from '../../../collector/paths.js';

/** dnsmasq's addresses, and the address of a UDP socket that reads queries and never answers. */
export const SERVER_V4 = '10.53.0.1';
export const SERVER_V6 = 'fd53::1';
export const SILENT_SERVER = '10.53.0.2';

/** Answers for *.ok.test (A and AAAA), NXDOMAIN for *.nx.test, REFUSED for everything else (no upstream). */
const DNSMASQ_ANSWERS = ['--address=/ok.test/10.0.0.1', '--address=/ok.test/fd00::1', '--address=/nx.test/'];

const SILENT_SOCKET = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print('ready', flush=True)
while True:
    s.recv(4096)
`;

function run(command: string, args: string[], env = process.env): string {
  const result = spawnSync(command, args, { encoding: 'utf8', env });
  if (result.error) throw result.error;
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

export class DnsNamespace {
  private readonly children: ChildProcess[] = [];

  private constructor(readonly name: string) {}

  /** A namespace `name` whose resolv.conf points at `nameserver`, with `addresses` (CIDR) on its veth. */
  static create(name: string, addresses: string[], nameserver: string): DnsNamespace {
    spawnSync('ip', ['netns', 'delete', name]); // left over by a killed run
    run('ip', ['netns', 'add', name]);
    const namespace = new DnsNamespace(name);
    run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', name, 'link', 'add', 'dns0', 'type', 'veth', 'peer', 'name', 'dns1']);
    for (const address of addresses) run('ip', ['-n', name, 'addr', 'add', address, 'dev', 'dns0', ...(address.includes(':') ? ['nodad'] : [])]);
    run('ip', ['-n', name, 'link', 'set', 'dns0', 'up']);
    run('ip', ['-n', name, 'link', 'set', 'dns1', 'up']);
    mkdirSync(`/etc/netns/${name}`, { recursive: true });
    writeFileSync(`/etc/netns/${name}/resolv.conf`, `nameserver ${nameserver}\noptions timeout:1 attempts:1\n`);
    return namespace;
  }

  /** `args` run inside the namespace; resolves with the exit code (failures are what some tests want). */
  async exec(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    // No stdin pipe: ending one to a child that had already exited failed the test with EPIPE.
    const child = spawn('ip', ['netns', 'exec', this.name, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    // 'close', not 'exit': the output may still be in the pipes when the child exits.
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    return { code, stdout, stderr };
  }

  /** A long-running process in the namespace, killed by destroy(). */
  background(args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    return child;
  }

  /** dnsmasq on SERVER_V4 and SERVER_V6, port `port`, in the foreground; resolves once it listens. */
  async startDnsmasq(pidFile: string, port = 53): Promise<void> {
    const child = this.background([
      'dnsmasq',
      '--no-daemon',
      '--keep-in-foreground',
      '--no-resolv',
      '--no-hosts',
      `--port=${port}`,
      `--listen-address=${SERVER_V4}`,
      `--listen-address=${SERVER_V6}`,
      '--bind-interfaces',
      `--pid-file=${pidFile}`,
      ...DNSMASQ_ANSWERS,
    ]);
    let log = '';
    child.stderr!.on('data', (chunk) => (log += chunk));
    for (let waited = 0; ; waited += 100) {
      const sockets = run('ip', ['netns', 'exec', this.name, 'ss', '-Hnul']);
      if (sockets.includes(`${SERVER_V4}:${port} `) && sockets.includes(`[${SERVER_V6}]:${port} `)) return;
      if (child.exitCode !== null || waited > 10_000) throw new Error(`dnsmasq did not start: ${log}`);
      await sleep(100);
    }
  }

  /** A UDP socket on `address` port 53 that reads queries and never answers. */
  async startSilentServer(address: string): Promise<void> {
    const child = this.background(['/usr/bin/python3', '-c', SILENT_SOCKET, address]);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk) => String(chunk).includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`the silent server exited with ${code}`)));
    });
  }

  destroy(): void {
    for (const child of this.children) child.kill('SIGKILL');
    spawnSync('ip', ['netns', 'delete', this.name]);
    rmSync(`/etc/netns/${this.name}`, { recursive: true, force: true });
  }
}

/** `count` queries for `name` with dig, one after the other, over one try each. */
export async function dig(namespace: DnsNamespace, server: string, name: string, count: number, port = 53): Promise<void> {
  for (let i = 0; i < count; i++) await namespace.exec(['dig', `@${server}`, '-p', String(port), '+tries=1', '+time=1', name]);
}

const GO_RESOLVER = projectPath('build/test-dns/go_resolver');

/** Builds testdata/go_resolver.go: a client with Go's own resolver, on the wire without libc. */
export function buildGoResolver(): void {
  // go needs a build cache; without HOME (some CI runners) it has no default.
  const env = process.env.HOME || process.env.XDG_CACHE_HOME || process.env.GOCACHE ? process.env : { ...process.env, GOCACHE: projectPath('build/go-cache') };
  run('go', ['build', '-o', GO_RESOLVER, projectPath('receivers/dns/testdata/go_resolver.go')], env);
}

/** `count` lookups of `name`'s A record with Go's resolver (built by buildGoResolver), one query each to `server`. */
export async function goLookups(namespace: DnsNamespace, server: string, name: string, count: number): Promise<void> {
  const { code, stderr } = await namespace.exec([GO_RESOLVER, server, name, String(count)]);
  assert.equal(code, 0, stderr);
}

/** `count` getaddrinfo calls for `name` through `getent ahosts` (glibc, with AI_ADDRCONFIG). */
export async function getent(namespace: DnsNamespace, name: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await namespace.exec(['getent', 'ahosts', name]);
}

/** `count` socket.getaddrinfo calls for `name` in one Python process; returns its pid. */
export async function pythonGetaddrinfo(namespace: DnsNamespace, name: string, count: number): Promise<number> {
  const script = `
import os, socket, sys
print(os.getpid(), flush=True)
for _ in range(int(sys.argv[2])):
    try:
        socket.getaddrinfo(sys.argv[1], 80, type=socket.SOCK_STREAM)
    except socket.gaierror:
        pass
`;
  const { code, stdout, stderr } = await namespace.exec(['/usr/bin/python3', '-c', script, name, String(count)]);
  assert.equal(code, 0, stderr);
  return Number(stdout.trim());
}

/** Node's dns.lookup (getaddrinfo on libuv's threads) and dns.resolve4 (c-ares, to SERVER_V4), `count` each, one after the other. */
export async function nodeLookups(namespace: DnsNamespace, lookupName: string, resolveName: string, count: number): Promise<void> {
  const script = `
const dns = require('node:dns');
const [lookupName, resolveName, count] = process.argv.slice(1);
const resolver = new dns.promises.Resolver({ timeout: 1000, tries: 1 });
resolver.setServers(['${SERVER_V4}']);
(async () => {
  for (let i = 0; i < Number(count); i++) await dns.promises.lookup(lookupName).catch(() => {});
  for (let i = 0; i < Number(count); i++) await resolver.resolve4(resolveName).catch(() => {});
})();
`;
  const { code, stderr } = await namespace.exec([process.execPath, '-e', script, lookupName, resolveName, String(count)]);
  assert.equal(code, 0, stderr);
}

/**
 * DNS messages no resolver sends, each to `server` port 53 from inside the
 * namespace: a truncated header, a question whose name is a compression
 * pointer to itself, a name longer than 255 bytes, and random bytes.
 */
export async function sendMalformed(namespace: DnsNamespace, server: string): Promise<number> {
  const script = `
import random, socket, struct, sys
header = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0)
question_tail = struct.pack('>HH', 1, 1)
packets = [
    header[:5],
    header + b'\\xc0\\x0c' + question_tail,
    header + (b'\\x3f' + b'a' * 63) * 5 + b'\\x00' + question_tail,
    random.Random(17).randbytes(64),
]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for packet in packets:
    s.sendto(packet, (sys.argv[1], 53))
print(len(packets))
`;
  const { code, stdout, stderr } = await namespace.exec(['/usr/bin/python3', '-c', script, server]);
  assert.equal(code, 0, stderr);
  return Number(stdout.trim());
}
