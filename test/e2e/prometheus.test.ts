/**
 * The shipped rules against the shipped pipeline: a real Prometheus scrapes the
 * collector CLI running pipeline.yaml (only its ports, intervals, profile
 * directory and DNS port changed) while workloads the test starts make
 * syscalls (some failing), write and fsync files, connect, resolve and
 * handshake on loopback. Every recording rule in deploy/prometheus/rules/ must
 * return data, and every metric any rule reads must be scraped, except the
 * rules listed in PENDING_RULES, which must return nothing: when one starts
 * returning data the list is stale and this fails.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { projectPath } from '../../collector/paths.js';
import { eventually, freePort, RunningCollector } from '../support/collector.js';
import { metricsReadBy, PENDING_RULES } from '../support/metrics-contract.js';
import { projectRuleFiles, RunningPrometheus } from '../support/prometheus.js';

const SERVER_NAME = 'rules.test';
/** The name a client that does not trust the test's certificate asks for. */
const UNTRUSTING_NAME = 'untrusted.rules.test';
const DOMAIN = 'lookup.rules.test';
/** A domain the test's DNS server answers with NXDOMAIN, for the failure metrics the DNS alert reads. */
const MISSING_DOMAIN = 'missing.rules.test';
/** A path-based syscall nothing else on the machine makes fail, so its error rate is this workload's. */
const MISSING_FILE = '/nonexistent-ebpf-collector-e2e/file';

/**
 * Syscalls and file I/O: truncate() of a missing file (fails with ENOENT),
 * getppid (never fails), and a 4 KiB write + fsync to a file in `argv[1]`.
 */
const SYSCALLS_AND_FILES = `
import os, sys, time
path = os.path.join(sys.argv[1], 'data')
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
while True:
    for _ in range(200):
        try:
            os.truncate(${JSON.stringify(MISSING_FILE)}, 0)
        except FileNotFoundError:
            pass
        os.getppid()
    os.pwrite(fd, b'x' * 4096, 0)
    os.fsync(fd)
    time.sleep(0.01)
`;

/**
 * Connects to a listener of its own on 127.0.0.1 and sends A queries for
 * DOMAIN (answered) and MISSING_DOMAIN (NXDOMAIN) to the DNS server on
 * 127.0.0.1:DNS_PORT, a few times a second each.
 */
const CONNECT_AND_QUERY = `
import socket, struct, sys, threading, time
dns_port, domains = int(sys.argv[1]), sys.argv[2:]
listener = socket.socket()
listener.bind(('127.0.0.1', 0))
listener.listen(64)
def accept():
    while True:
        listener.accept()[0].close()
threading.Thread(target=accept, daemon=True).start()
def question(domain):
    return b''.join(bytes([len(label)]) + label.encode() for label in domain.split('.')) + b'\\0' + struct.pack('>HH', 1, 1)
questions = [question(domain) for domain in domains]
resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
resolver.settimeout(2)
txid = 0
while True:
    client = socket.create_connection(listener.getsockname())
    client.close()
    for q in questions:
        txid = (txid + 1) & 0xffff
        resolver.sendto(struct.pack('>HHHHHH', txid, 0x0100, 1, 0, 0, 0) + q, ('127.0.0.1', dns_port))
        try:
            resolver.recvfrom(512)
        except socket.timeout:
            pass
    time.sleep(0.1)
`;

interface Rule {
  name: string;
  kind: 'record' | 'alert';
  expr: string;
}

const RULES: Rule[] = projectRuleFiles().flatMap((file) =>
  (parse(readFileSync(file, 'utf8')) as { groups: { rules: { record?: string; alert?: string; expr: string }[] }[] }).groups.flatMap((group) =>
    group.rules.map((rule) => ({ name: rule.record ?? rule.alert!, kind: rule.record ? ('record' as const) : ('alert' as const), expr: rule.expr })),
  ),
);
const isPending = (rule: Rule) => rule.name in PENDING_RULES;

/** The collector's metrics a rule reads, also through the recording rules it uses. */
function inputsOf(rule: Rule): string[] {
  const used = RULES.filter((other) => other.kind === 'record' && other !== rule && new RegExp(`(^|[^\\w:])${other.name}([^\\w:]|$)`).test(rule.expr));
  return [...new Set([...metricsReadBy(rule.expr), ...used.flatMap(inputsOf)])].sort();
}

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-rules-'));
let collector: RunningCollector | undefined;
let prometheus: RunningPrometheus | undefined;

function start(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: 'ignore' });
  assert.ok(child.pid, `${command} should start`);
  children.push(child);
  return child;
}

/** pipeline.yaml as shipped, with test ports, a private profile directory, the test's DNS port and 1 s intervals so rules see data soon. */
function shippedPipeline(metricsPort: number, dnsPort: number): string {
  const config = parse(readFileSync(projectPath('pipeline.yaml'), 'utf8'));
  for (const receiver of Object.values<Record<string, unknown>>(config.receivers)) receiver.collection_interval = '1s';
  config.receivers.dns.port = dnsPort;
  config.exporters.pprof.directory = join(dir, 'profiles');
  config.exporters.prometheus.endpoint = `127.0.0.1:${metricsPort}`;
  config.service.http.endpoint = '127.0.0.1:HTTP_PORT';
  return stringify(config);
}

before(async () => {
  const dnsPort = await freePort();
  const tlsPort = await freePort();
  start('/usr/sbin/dnsmasq', [
    '--keep-in-foreground', '--no-resolv', '--no-hosts', '--no-poll', '--conf-file=/dev/null', '--user=root', '--pid-file',
    '--listen-address=127.0.0.1', '--bind-interfaces', `--port=${dnsPort}`, `--address=/${DOMAIN}/10.11.12.13`, `--address=/${MISSING_DOMAIN}/`,
  ]);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${SERVER_NAME}`, '-addext', `subjectAltName=DNS:${SERVER_NAME}`,
    '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.pem'),
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  start('openssl', ['s_server', '-quiet', '-www', '-accept', `127.0.0.1:${tlsPort}`, '-cert', join(dir, 'server.pem'), '-key', join(dir, 'server.key')]);

  const metricsPort = await freePort();
  collector = await RunningCollector.start(shippedPipeline(metricsPort, dnsPort));
  start('/usr/bin/python3', ['-c', SYSCALLS_AND_FILES, dir]);
  start('/usr/bin/python3', ['-c', CONNECT_AND_QUERY, String(dnsPort), DOMAIN, MISSING_DOMAIN]);
  // curl through libssl, started after the collector: the tls receiver must probe it anyway. The second
  // curl does not trust the certificate (OpenSSL fails the handshake), for the failure metrics the TLS alert reads.
  const curl = (name: string) => `curl -s -o /dev/null --resolve ${name}:${tlsPort}:127.0.0.1 https://${name}:${tlsPort}/`;
  start('/bin/sh', ['-c', `while :; do ${curl(SERVER_NAME)} --cacert ${join(dir, 'server.pem')}; ${curl(UNTRUSTING_NAME)}; sleep 0.2; done`]);
  prometheus = await RunningPrometheus.start({ targets: [`127.0.0.1:${metricsPort}`], ruleFiles: projectRuleFiles() });
});

after(async () => {
  for (const child of children) child.kill();
  await prometheus?.stop();
  await collector?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('Prometheus scrapes the shipped pipeline, every receiver started, and every rule evaluates without error', async () => {
  const [up] = await prometheus!.firstSamples('up', 60_000);
  assert.equal(up.value, 1, `the collector should be up\n${prometheus!.log}`);
  const status = await collector!.status();
  const receivers = status.components.filter((c) => c.kind === 'receiver');
  assert.deepEqual(
    receivers.filter((c) => c.status !== 'ok'),
    [],
    `every receiver of pipeline.yaml should be ok\n${collector!.stderr}`,
  );
  assert.ok(receivers.length >= 8, `pipeline.yaml's receivers: ${receivers.map((c) => c.id).join(', ')}`);
  const loaded = (await prometheus!.rules()).map((r) => r.name).sort();
  assert.deepEqual(loaded, RULES.map((r) => r.name).sort(), 'Prometheus loaded every rule of the rule files');
  await prometheus!.everyRuleHealthy(30_000);
});

test('the pending list names rules that exist', () => {
  for (const name of Object.keys(PENDING_RULES)) assert.ok(RULES.some((r) => r.name === name), `PENDING_RULES names ${name}, which no rule file has`);
});

/** How many series of a metric family were scraped in the last 5 minutes (none: an empty result). */
const scraped = (metric: string) => `count(last_over_time({__name__=~"${metric}(_bucket|_count|_sum)?"}[5m]))`;

/** Polls until `expr` returns a sample with a finite value: histogram_quantile over no observations is NaN, which is not data. */
async function finiteSamples(expr: string, timeoutMs: number): Promise<{ labels: Record<string, string>; value: number }[]> {
  return eventually(`${expr} to return a finite value`, timeoutMs, async () => {
    const samples = (await prometheus!.query(expr)).filter((s) => Number.isFinite(s.value));
    return samples.length > 0 ? samples : undefined;
  });
}

// The workloads feed every receiver within seconds; the first rule values need two scrapes and an evaluation after that.
for (const rule of RULES.filter((r) => !isPending(r))) {
  test(`${rule.name} (${rule.kind}): every metric it reads is scraped from the collector`, async () => {
    const metrics = inputsOf(rule);
    assert.ok(metrics.length > 0, `${rule.name} reads none of the collector's metrics: ${rule.expr}`);
    for (const metric of metrics) await prometheus!.firstSamples(scraped(metric), 90_000);
  });
  if (rule.kind === 'record') {
    test(`${rule.name} returns data`, async () => {
      await finiteSamples(rule.name, 90_000);
    });
  }
}

// Once every other rule has data, scrapes and evaluations have run many times: a pending rule's silence is then meaningful.
for (const rule of RULES.filter(isPending)) {
  test(`${rule.name} (${rule.kind}) is pending (${PENDING_RULES[rule.name]}): nothing emits what it reads`, async () => {
    for (const metric of inputsOf(rule)) {
      const found = await prometheus!.query(scraped(metric));
      assert.deepEqual(found, [], `${metric} is scraped now: remove ${rule.name} from PENDING_RULES in test/support/metrics-contract.ts`);
    }
    if (rule.kind === 'record')
      assert.deepEqual(await prometheus!.query(rule.name), [], `${rule.name} returns data now: remove it from PENDING_RULES`);
  });
}

test('syscall:error_rate shows the failing truncates, and no failing getppid', async () => {
  const [truncate] = await finiteSamples('syscall:error_rate{syscall="truncate"}', 60_000);
  // Every truncate the workload makes fails, and nothing else on the machine truncates a path.
  assert.ok(truncate.value > 0.9, `truncate error rate ${truncate.value}`);
  assert.deepEqual(await prometheus!.query('syscall:error_rate{syscall="getppid"} > 0'), []);
});

test('syscall:latency:p99 has a plausible value for the workload\'s syscalls', async () => {
  for (const syscall of ['getppid', 'truncate']) {
    const [p99] = await finiteSamples(`syscall:latency:p99{syscall="${syscall}"}`, 60_000);
    // Neither takes anywhere near 10 ms 99 times out of 100.
    assert.ok(p99.value > 0 && p99.value < 0.01, `${syscall} p99 ${p99.value}`);
  }
});

test('io:latency:p99 has the workload\'s writes and fsyncs', async () => {
  for (const operation of ['write', 'fsync']) {
    const samples = await finiteSamples(`io:latency:p99{operation="${operation}"}`, 60_000);
    assert.ok(samples.every((s) => s.value > 0 && s.labels.filesystem), `${operation}: ${JSON.stringify(samples)}`);
  }
});

// Loopback connects, queries and handshakes take well under a second, even on a loaded machine.
for (const [rule, labels] of [
  ['network:connection_latency:p95', 'dst_ip="127.0.0.1"'],
  ['dns:query_latency:p99', `domain="${DOMAIN}"`],
  ['tls:handshake_latency:p95', `server_name="${SERVER_NAME}"`],
] as const) {
  test(`${rule} returns the workload's latency`, async () => {
    const [sample] = await finiteSamples(`${rule}{${labels}}`, 90_000);
    assert.ok(sample.value > 0 && sample.value < 1, `${rule}{${labels}} = ${sample.value}`);
  });
}

test('cpu:hot_functions:rate5m names functions', async () => {
  const samples = await finiteSamples('cpu:hot_functions:rate5m', 60_000);
  assert.ok(samples.some((s) => s.value > 0 && s.labels.function && s.labels.function !== '[other]'), JSON.stringify(samples.slice(0, 10)));
});
