/**
 * End to end with a real Prometheus: it scrapes the collector CLI running the
 * tcp, dns and tls receivers while local workloads connect, resolve and
 * handshake on loopback, evaluates the project's rule files, and the network,
 * DNS and TLS recording rules return data for those workloads.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, RunningCollector, startScrapedCollector } from '../support/collector.js';
import { projectRuleFiles, RunningPrometheus } from '../support/prometheus.js';
const SERVER_NAME = 'rules.test';
const DOMAIN = 'lookup.rules.test';

/**
 * Connects to a listener of its own on 127.0.0.1 and sends A queries for
 * DOMAIN to the DNS server on 127.0.0.1:DNS_PORT, a few times a second each.
 */
const CONNECT_AND_QUERY = `
import socket, struct, sys, threading, time
dns_port, domain = int(sys.argv[1]), sys.argv[2]
listener = socket.socket()
listener.bind(('127.0.0.1', 0))
listener.listen(64)
def accept():
    while True:
        listener.accept()[0].close()
threading.Thread(target=accept, daemon=True).start()
question = b''.join(bytes([len(label)]) + label.encode() for label in domain.split('.')) + b'\\0' + struct.pack('>HH', 1, 1)
resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
resolver.settimeout(2)
txid = 0
while True:
    client = socket.create_connection(listener.getsockname())
    client.close()
    txid = (txid + 1) & 0xffff
    resolver.sendto(struct.pack('>HHHHHH', txid, 0x0100, 1, 0, 0, 0) + question, ('127.0.0.1', dns_port))
    try:
        resolver.recvfrom(512)
    except socket.timeout:
        pass
    time.sleep(0.1)
`;

const children: ChildProcess[] = [];
let collector: RunningCollector | undefined;
let prometheus: RunningPrometheus | undefined;

function start(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: 'ignore' });
  assert.ok(child.pid, `${command} should start`);
  children.push(child);
  return child;
}

before(async () => {
  const dnsPort = await freePort();
  const tlsPort = await freePort();
  start('/usr/sbin/dnsmasq', [
    '--keep-in-foreground', '--no-resolv', '--no-hosts', '--no-poll', '--conf-file=/dev/null', '--user=root', '--pid-file',
    '--listen-address=127.0.0.1', '--bind-interfaces', `--port=${dnsPort}`, `--address=/${DOMAIN}/10.11.12.13`,
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'network-rules-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${SERVER_NAME}`, '-addext', `subjectAltName=DNS:${SERVER_NAME}`,
    '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.pem'),
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  start('openssl', ['s_server', '-quiet', '-www', '-accept', `127.0.0.1:${tlsPort}`, '-cert', join(dir, 'server.pem'), '-key', join(dir, 'server.key')]);

  let metricsPort: number;
  ({ collector, metricsPort } = await startScrapedCollector({
    tcp: { collection_interval: '1s' },
    dns: { collection_interval: '1s', port: dnsPort },
    tls: { collection_interval: '1s' },
  }));
  start('/usr/bin/python3', ['-c', CONNECT_AND_QUERY, String(dnsPort), DOMAIN]);
  // curl through libssl, started after the collector: the tls receiver must probe it anyway.
  start('/bin/sh', ['-c', `while :; do curl -s -o /dev/null --cacert ${join(dir, 'server.pem')} --resolve ${SERVER_NAME}:${tlsPort}:127.0.0.1 https://${SERVER_NAME}:${tlsPort}/; sleep 0.2; done`]);
  prometheus = await RunningPrometheus.start({
    targets: [`127.0.0.1:${metricsPort}`],
    ruleFiles: projectRuleFiles(),
  });
});

after(async () => {
  for (const child of children) child.kill();
  await prometheus?.stop();
  await collector?.stop();
});

test('every receiver started and every rule evaluates without error', async () => {
  const status = await collector!.status();
  for (const id of ['tcp', 'dns', 'tls']) {
    const component = status.components.find((c) => c.id === id && c.kind === 'receiver');
    assert.equal(component?.status, 'ok', `${id}: ${JSON.stringify(component)}\n${collector!.stderr}`);
  }
  await prometheus!.everyRuleHealthy(30_000);
});

// Loopback connects, queries and handshakes take well under 100 ms; NaN (nothing in the window) fails too.
for (const [rule, labels] of [
  ['network:connection_latency:p95', 'dst_ip="127.0.0.1"'],
  ['dns:query_latency:p99', `domain="${DOMAIN}"`],
  ['tls:handshake_latency:p95', `server_name="${SERVER_NAME}"`],
] as const) {
  test(`${rule} returns the workload's latency`, async () => {
    const [sample] = await prometheus!.firstSamples(`${rule}{${labels}}`, 90_000);
    assert.ok(sample.value > 0 && sample.value < 0.1, `${rule}{${labels}} = ${sample.value}`);
  });
}
