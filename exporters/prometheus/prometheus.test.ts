import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { metricPointCount, type MetricBatch } from '../../collector/data/metrics.js';
import { SelfTelemetry } from '../../collector/telemetry.js';
import { curl, makeCertificates } from '../../test/support/certificates.js';
import { eventually, freePort, sampleValue, scrape } from '../../test/support/collector.js';
import { settingsWith } from '../../test/support/exposition.js';
import { configIssues, testHost, testLifecycle, testSettings } from '../../test/support/components.js';
import { prometheusExporterFactory } from './factory.js';

async function create() {
  const port = await freePort();
  const config = prometheusExporterFactory.configSchema.parse({ endpoint: `127.0.0.1:${port}` });
  return { port, exporter: prometheusExporterFactory.create(testSettings('exporter', 'prometheus'), config, new Set(['metrics'] as const)) };
}

// Fixture batches: what a receiver hands on after two reads of its kernel maps.
const NOW = Date.now();
const FIXTURE_READ_1: MetricBatch = {
  startTimeMs: NOW - 2_000,
  endTimeMs: NOW - 1_000,
  metrics: [
    { type: 'sum', name: 'ebpf_process_exec_total', description: 'Execs.', monotonic: true, temporality: 'delta', points: [{ attributes: { comm: 'true' }, value: 3 }] },
    { type: 'gauge', name: 'ebpf_processes_live', description: 'Live.', points: [{ attributes: {}, value: 40 }] },
    {
      type: 'histogram',
      name: 'test_duration_seconds',
      description: 'Latency.',
      temporality: 'delta',
      points: [{ attributes: { op: 'read' }, boundaries: [0.001, 0.01], bucketCounts: [1, 2, 0], sum: 0.012, count: 3 }],
    },
  ],
};
const FIXTURE_READ_2: MetricBatch = {
  startTimeMs: NOW - 1_000,
  endTimeMs: NOW,
  metrics: [
    { type: 'sum', name: 'ebpf_process_exec_total', description: 'Execs.', monotonic: true, temporality: 'delta', points: [{ attributes: { comm: 'true' }, value: 4 }] },
    { type: 'gauge', name: 'ebpf_processes_live', description: 'Live.', points: [{ attributes: {}, value: 38 }] },
    {
      type: 'histogram',
      name: 'test_duration_seconds',
      description: 'Latency.',
      temporality: 'delta',
      points: [{ attributes: { op: 'read' }, boundaries: [0.001, 0.01], bucketCounts: [0, 1, 1], sum: 0.5, count: 2 }],
    },
  ],
};

// Every instance on one port: a fresh instance can only start if shutdown released it.
const LIFECYCLE_PORT = await freePort();
testLifecycle(() =>
  prometheusExporterFactory.create(
    testSettings('exporter', 'prometheus'),
    prometheusExporterFactory.configSchema.parse({ endpoint: `127.0.0.1:${LIFECYCLE_PORT}` }),
    new Set(['metrics'] as const),
  ),
);

test('deltas accumulate into cumulative series, gauges replace, histograms add bucket by bucket', async () => {
  const port = await freePort();
  const telemetry = new SelfTelemetry();
  const exporter = prometheusExporterFactory.create(
    settingsWith(telemetry, 'exporter', 'prometheus'),
    prometheusExporterFactory.configSchema.parse({ endpoint: `127.0.0.1:${port}` }),
    new Set(['metrics'] as const),
  );
  await exporter.start({ ...testHost(), selfTelemetry: telemetry });
  try {
    await exporter.consumers.metrics!.consume(FIXTURE_READ_1);
    await exporter.consumers.metrics!.consume(FIXTURE_READ_2);
    const body = await scrape(port);
    const section = (name: string) => body.split('\n').filter((line) => line.includes(name)).join('\n');
    assert.equal(
      section('ebpf_process_exec_total'),
      ['# HELP ebpf_process_exec_total Execs.', '# TYPE ebpf_process_exec_total counter', 'ebpf_process_exec_total{comm="true"} 7'].join('\n'),
    );
    assert.equal(
      section('ebpf_processes_live'),
      ['# HELP ebpf_processes_live Live.', '# TYPE ebpf_processes_live gauge', 'ebpf_processes_live 38'].join('\n'),
    );
    assert.equal(
      section('test_duration_seconds'),
      [
        '# HELP test_duration_seconds Latency.',
        '# TYPE test_duration_seconds histogram',
        'test_duration_seconds_count{op="read"} 5',
        'test_duration_seconds_sum{op="read"} 0.512',
        'test_duration_seconds_bucket{op="read",le="0.001"} 1',
        'test_duration_seconds_bucket{op="read",le="0.01"} 4',
        'test_duration_seconds_bucket{op="read",le="+Inf"} 5',
      ].join('\n'),
    );
    assert.match(body, /^target_info\{service_name="ebpf-collector"/m);
    assert.equal(
      sampleValue(body, 'ebpf_collector_exported_items_total', { component: 'prometheus', signal: 'metrics' }),
      metricPointCount(FIXTURE_READ_1) + metricPointCount(FIXTURE_READ_2),
      'the exporter counts every point it took',
    );
  } finally {
    await exporter.shutdown();
  }
});

test('a port already in use fails start with the endpoint named', async () => {
  const { port, exporter } = await create();
  await exporter.start(testHost());
  const config = prometheusExporterFactory.configSchema.parse({ endpoint: `127.0.0.1:${port}` });
  const second = prometheusExporterFactory.create(testSettings('exporter', 'prometheus'), config, new Set(['metrics'] as const));
  try {
    await assert.rejects(second.start(testHost()), new RegExp(`^Error: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
  } finally {
    await second.shutdown();
    await exporter.shutdown();
  }
});

// ---------------------------------------------------------------- the web config: TLS and basic auth

const certificates = await makeCertificates();
// From Prometheus's own basic-auth guide, made by Python's bcrypt: the password is "test".
const ALICE_HASH = '$2b$12$hNf2lSsxfm0.i4a.1kVpSOVyBCfIB51VRjgBUyv6kdnyTlgWj81Ay';
const SERVER_TLS = { cert_file: certificates.serverCert, key_file: certificates.serverKey };
const TRUST = ['--cacert', certificates.caCert];
const CLIENT_CERT = ['--cert', certificates.client.cert, '--key', certificates.client.key];
const STRANGER_CERT = ['--cert', certificates.strangerClient.cert, '--key', certificates.strangerClient.key];

/** An exporter with `web` settings, started, holding FIXTURE_READ_1 and FIXTURE_READ_2. */
async function startSecured(web: Record<string, unknown>) {
  const port = await freePort();
  const config = prometheusExporterFactory.configSchema.parse({ endpoint: `127.0.0.1:${port}`, ...web });
  const exporter = prometheusExporterFactory.create(testSettings('exporter', 'prometheus'), config, new Set(['metrics'] as const));
  await exporter.start(testHost());
  await exporter.consumers.metrics!.consume(FIXTURE_READ_1);
  await exporter.consumers.metrics!.consume(FIXTURE_READ_2);
  return { exporter, https: `https://127.0.0.1:${port}/metrics`, http: `http://127.0.0.1:${port}/metrics` };
}

test('web config: what Prometheus\'s web config refuses is refused here, with its path', () => {
  assert.deepEqual(configIssues(prometheusExporterFactory, { tls_server_config: { ...SERVER_TLS, client_ca_file: '/ca.crt' } }), [
    'tls_server_config.client_auth_type: client_ca_file is set, so client_auth_type must verify client certificates: VerifyClientCertIfGiven or RequireAndVerifyClientCert, got NoClientCert',
  ]);
  assert.deepEqual(configIssues(prometheusExporterFactory, { tls_server_config: { ...SERVER_TLS, client_auth_type: 'RequireAndVerifyClientCert' } }), [
    'tls_server_config.client_ca_file: RequireAndVerifyClientCert verifies client certificates against client_ca_file, which is not set',
  ]);
  assert.match(configIssues(prometheusExporterFactory, { tls_server_config: { ...SERVER_TLS, client_auth_type: 'Always' } })[0], /^tls_server_config\.client_auth_type: Invalid enum value/);
  assert.match(configIssues(prometheusExporterFactory, { tls_server_config: { cert_file: '/a.crt' } })[0], /^tls_server_config\.key_file: /);
  assert.deepEqual(configIssues(prometheusExporterFactory, { basic_auth_users: { alice: 'test' } }), [
    'basic_auth_users.alice: must be a bcrypt hash ($2y$…, e.g. from `htpasswd -nBC 10 "" | tr -d ":"`)',
  ]);
  assert.deepEqual(configIssues(prometheusExporterFactory, { basic_auth_users: { 'a:b': ALICE_HASH } }), [
    'basic_auth_users.a:b: a username cannot contain ":" (HTTP basic auth separates it from the password with one)',
  ]);
});

test('web config: a TLS file that cannot be read fails start, naming the setting', async () => {
  const missing = join(certificates.dir, 'missing.crt');
  const config = prometheusExporterFactory.configSchema.parse({ endpoint: `127.0.0.1:${await freePort()}`, tls_server_config: { ...SERVER_TLS, cert_file: missing } });
  const exporter = prometheusExporterFactory.create(testSettings('exporter', 'prometheus'), config, new Set(['metrics'] as const));
  await assert.rejects(exporter.start(testHost()), { message: `exporters::prometheus::tls_server_config::cert_file: cannot read ${missing}: ENOENT: no such file or directory, open '${missing}'` });
  await exporter.shutdown();
});

test('tls_server_config and basic_auth_users: scrapes over HTTPS with a listed user and password only', async () => {
  const { exporter, https, http } = await startSecured({ tls_server_config: SERVER_TLS, basic_auth_users: { alice: ALICE_HASH } });
  try {
    const ok = await curl(https, [...TRUST, '-u', 'alice:test']);
    assert.equal(ok.exit, 0, ok.stderr);
    assert.equal(ok.status, 200);
    assert.match(ok.body, /^ebpf_process_exec_total\{comm="true"\} 7$/m);
    // Again: the verdict is remembered, and still right.
    assert.equal((await curl(https, [...TRUST, '-u', 'alice:test'])).status, 200);
    const none = await curl(https, [...TRUST, '-D', '-']);
    assert.equal(none.status, 401);
    assert.match(none.body, /^www-authenticate: Basic realm="ebpf-collector", charset="UTF-8"\r$/im);
    assert.doesNotMatch(none.body, /ebpf_process_exec_total/);
    for (const credentials of ['alice:tesT', 'alice:', 'bob:test', 'alice:test:more'])
      assert.equal((await curl(https, [...TRUST, '-u', credentials])).status, 401, credentials);
    assert.equal((await curl(https, [...TRUST, '-H', 'Authorization: Bearer test'])).status, 401);
    const plain = await curl(http, ['-u', 'alice:test']);
    assert.notEqual(plain.status, 200, 'no plain HTTP beside HTTPS');
  } finally {
    await exporter.shutdown();
  }
});

test('basic_auth_users without TLS: plain HTTP, still only for listed users', async () => {
  const { exporter, http } = await startSecured({ basic_auth_users: { alice: ALICE_HASH } });
  try {
    assert.equal((await curl(http)).status, 401);
    assert.equal((await curl(http, ['-u', 'alice:nope'])).status, 401);
    assert.equal((await curl(http, ['-u', 'alice:test'])).status, 200);
  } finally {
    await exporter.shutdown();
  }
});

test('client_auth_type: each policy lets in exactly the clients Go\'s crypto/tls would', async () => {
  // Who gets a scrape: no certificate, one from the trusted CA, one from another CA.
  const expected: Record<string, [boolean, boolean, boolean]> = {
    NoClientCert: [true, true, true],
    RequestClientCert: [true, true, true],
    RequireAnyClientCert: [false, true, true],
    VerifyClientCertIfGiven: [true, true, false],
    RequireAndVerifyClientCert: [false, true, false],
  };
  for (const [policy, [bare, trusted, stranger]] of Object.entries(expected)) {
    const verifying = policy.startsWith('Verify') || policy.startsWith('RequireAndVerify');
    const tls = { ...SERVER_TLS, client_auth_type: policy, ...(verifying ? { client_ca_file: certificates.caCert } : {}) };
    const { exporter, https } = await startSecured({ tls_server_config: tls });
    try {
      const got = [await curl(https, TRUST), await curl(https, [...TRUST, ...CLIENT_CERT]), await curl(https, [...TRUST, ...STRANGER_CERT])];
      assert.deepEqual(
        got.map((answer) => answer.status === 200),
        [bare, trusted, stranger],
        `${policy}: ${got.map((answer) => `${answer.status}/${answer.exit}`).join(', ')}`,
      );
    } finally {
      await exporter.shutdown();
    }
  }
});

test('a real Prometheus scrapes over TLS with a client certificate and basic auth; a wrong password makes the target down', async () => {
  const { exporter, https } = await startSecured({
    tls_server_config: { ...SERVER_TLS, client_ca_file: certificates.caCert, client_auth_type: 'RequireAndVerifyClientCert' },
    basic_auth_users: { alice: ALICE_HASH },
  });
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-prometheus-'));
  writeFileSync(join(dir, 'password'), 'test');
  writeFileSync(join(dir, 'wrong-password'), 'guess');
  const target = new URL(https).host;
  const job = (name: string, passwordFile: string) => ({
    job_name: name,
    scheme: 'https',
    scrape_interval: '2s',
    scrape_timeout: '2s',
    tls_config: { ca_file: certificates.caCert, cert_file: certificates.client.cert, key_file: certificates.client.key },
    basic_auth: { username: 'alice', password_file: join(dir, passwordFile) },
    static_configs: [{ targets: [target] }],
  });
  writeFileSync(join(dir, 'prometheus.yml'), stringify({ scrape_configs: [job('collector', 'password'), job('intruder', 'wrong-password')] }));
  const webPort = await freePort();
  const prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${webPort}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  prometheus.stderr!.on('data', (chunk) => (log += chunk));
  const api = async (path: string) => ((await (await fetch(`http://127.0.0.1:${webPort}/api/v1/${path}`)).json()) as { data: any }).data;
  try {
    // The first check of a password is a cost-12 bcrypt in JavaScript, which may outlast a scrape's timeout; later scrapes find the verdict remembered.
    const byJob = await eventually('the collector job up, the intruder down', 60_000, async () => {
      if (prometheus.exitCode !== null) throw new Error(`prometheus exited with ${prometheus.exitCode}: ${log}`);
      const { activeTargets } = await api('targets');
      const jobs = Object.fromEntries(activeTargets.map((t: any) => [t.labels.job, t]));
      return jobs.collector?.health === 'up' && /401 Unauthorized/.test(jobs.intruder?.lastError ?? '') ? jobs : undefined;
    });
    assert.equal(byJob.intruder.health, 'down');
    const result = await eventually('the exec count in Prometheus', 30_000, async () => {
      const { result } = await api(`query?query=${encodeURIComponent('ebpf_process_exec_total{job="collector",comm="true"}')}`);
      return result.length === 1 ? result : undefined;
    });
    assert.equal(result[0].value[1], '7');
  } finally {
    prometheus.kill('SIGTERM');
    await new Promise((resolve) => (prometheus.exitCode !== null ? resolve(undefined) : prometheus.once('exit', resolve)));
    await exporter.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});
