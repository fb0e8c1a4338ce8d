/**
 * The deployment files against the project and each other: docker-compose.yml and
 * what it mounts (deploy/otel-collector, deploy/prometheus, deploy/grafana,
 * pipeline.sidecar.yaml), and the Kubernetes manifests in deploy/kubernetes. No
 * Docker engine or Kubernetes runs on the development machines, so these checks
 * are what keeps the files right: every path they name exists, every port and
 * host one file names is the one the other serves, the pipelines validate with
 * the real CLI, the PromQL parses with promtool and names only the metrics
 * contract's series, and the Kubernetes rules are the Prometheus rule files.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { projectPath } from '../../collector/paths.js';
import { PROBE_ROUTES } from '../../collector/server.js';
import { percentileGaugeName } from '../../processors/window/percentile-names.js';
import { CONTRACT_RECORDING_RULES } from '../support/metrics-contract.js';

// The names users query, from the metrics contract (/work/shared/spec/metrics-contract.md).
const CONTRACT_METRICS = [
  'parca_cpu_samples_total',
  'parca_memory_alloc_bytes_total',
  'parca_memory_free_bytes_total',
  'ebpf_memory_pressure_some',
  'parca_lock_contention_total',
  'ebpf_syscall_total',
  'ebpf_syscall_errors_total',
  'ebpf_network_connect_failures_total',
  'ebpf_dns_query_failures_total',
  'ebpf_tls_handshake_failures_total',
  'ebpf_io_operations_total',
  // The profilemetrics connector's (README), which turns samples per second into cores.
  'parca_cpu_sampling_frequency_hertz',
];
const CONTRACT_HISTOGRAMS = [
  'ebpf_syscall_duration_seconds',
  'ebpf_network_connect_duration_seconds',
  'ebpf_dns_query_duration_seconds',
  'ebpf_tls_handshake_duration_seconds',
  'ebpf_io_duration_seconds',
];
const CONTRACT_NAMES = new Set([
  ...CONTRACT_METRICS,
  ...CONTRACT_HISTOGRAMS.flatMap((name) => ['_bucket', '_count', '_sum'].map((suffix) => name + suffix)),
  ...CONTRACT_RECORDING_RULES,
]);

// The guide's six panels, in order.
const PANEL_TITLES = [
  'CPU Profiling by Function',
  'Syscall Latency Distribution',
  'Network Connection Performance',
  'DNS Resolution Metrics',
  'Memory Allocation Hotspots',
  'I/O Performance',
];

// What the collector's container may see of the host, all read-only.
const HOST_PATHS = ['/sys/kernel/btf', '/sys/kernel/tracing', '/sys/fs/cgroup'];
// Compose and the DaemonSet grant the same set; their comments say why each is needed.
const CAPABILITIES = ['BPF', 'CHECKPOINT_RESTORE', 'PERFMON', 'SYSLOG', 'SYS_PTRACE', 'SYS_RESOURCE'];
const KIND_FOLDERS = { receiver: 'receivers', processor: 'processors', exporter: 'exporters', connector: 'connectors' } as const;

type Yaml = Record<string, any>;

function readText(path: string): string {
  return readFileSync(projectPath(path), 'utf8');
}

function readYaml(path: string): Yaml {
  return parse(readText(path));
}

function version(): string {
  return JSON.parse(readText('package.json')).version;
}

/** "host:port" → its parts. */
function hostPort(endpoint: string): { host: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(endpoint);
  assert.ok(match, `"${endpoint}" is not host:port`);
  return { host: match[1], port: Number(match[2]) };
}

// ---------------------------------------------------------------- compose

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
  kind: 'project' | 'host' | 'volume';
}

/** A short-syntax compose volume: SOURCE:TARGET[:ro]. */
function parseMount(spec: string): Mount {
  const [source, target, mode, ...rest] = spec.split(':');
  assert.ok(target && rest.length === 0 && (mode === undefined || ['ro', 'rw'].includes(mode)), `volume "${spec}" is not SOURCE:TARGET[:ro|rw]`);
  const kind = source.startsWith('.') ? 'project' : source.startsWith('/') ? 'host' : 'volume';
  return { source, target, readOnly: mode === 'ro', kind };
}

interface PublishedPort {
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

function parsePort(spec: string): PublishedPort {
  const match = /^(\d+\.\d+\.\d+\.\d+):(\d+):(\d+)$/.exec(spec);
  assert.ok(match, `port "${spec}" is not HOST_IP:HOST_PORT:CONTAINER_PORT`);
  return { hostIp: match[1], hostPort: Number(match[2]), containerPort: Number(match[3]) };
}

const compose = readYaml('docker-compose.yml');
const services: Record<string, Yaml> = compose.services;

function mounts(service: string): Mount[] {
  return (services[service].volumes ?? []).map(parseMount);
}

/** Where `service` mounts the project path `source`. */
function mountTarget(service: string, source: string): string {
  const mount = mounts(service).find((m) => m.kind === 'project' && posix.normalize(m.source) === posix.normalize(source));
  assert.ok(mount, `${service} does not mount ${source}`);
  return mount.target;
}

/** The value of a `--flag=value` argument in a compose command. */
function flagValue(service: string, flag: string): string | undefined {
  const command: string[] = services[service].command ?? [];
  return command.find((arg) => arg.startsWith(`${flag}=`))?.slice(flag.length + 1);
}

/** The Dockerfile's CMD, exec form. */
function dockerfileCmd(): string[] {
  const match = /^CMD\s+(\[.*\])\s*$/m.exec(readText('Dockerfile'));
  assert.ok(match, 'the Dockerfile has no exec-form CMD');
  return JSON.parse(match[1]);
}

const sidecar = readYaml('pipeline.sidecar.yaml');
const otelConfig = readYaml('deploy/otel-collector/config.yaml');
const prometheusConfig = readYaml('deploy/prometheus/prometheus.yml');

// ---------------------------------------------------------------- pipelines

/**
 * Runs `ebpf-collector validate` on a pipeline file. While some component types
 * are still being written, the only errors allowed are "unknown ... type" for
 * them (each must have its folder in the project already, so a misspelt type
 * cannot pass for one in progress) and the pipelines' references to those ids.
 * Returns the types not registered yet; once every one is, the file must be valid.
 */
function validateAllowingUnregistered(configPath: string): string[] {
  const result = spawnSync(process.execPath, [projectPath('dist/collector/cli.js'), 'validate', '--config', configPath], { encoding: 'utf8' });
  if (result.status === 0) return [];
  assert.equal(result.status, 2, `validate failed without a configuration error:\n${result.stderr}`);
  const problems = result.stderr.split('\n').slice(1).map((line) => line.trim()).filter(Boolean);
  const unknownIds = new Set<string>();
  const missing: string[] = [];
  for (const problem of problems) {
    const unknown = /^(\w+)::([^:]+): unknown (receiver|processor|exporter|connector) type "([^"]+)"/.exec(problem);
    if (!unknown) continue;
    const [, , id, kind, type] = unknown;
    const folder = `${KIND_FOLDERS[kind as keyof typeof KIND_FOLDERS]}/${type}`;
    assert.ok(existsSync(projectPath(folder)), `${problem}\n(and there is no ${folder}/ being written: is the type misspelt?)`);
    unknownIds.add(id);
    missing.push(`${kind} ${type}`);
  }
  const others = problems.filter((problem) => {
    if (/unknown (receiver|processor|exporter|connector) type/.test(problem)) return false;
    const reference = /references (?:receiver|processor|exporter) "([^"]+)" which is not configured$/.exec(problem);
    return !(reference && unknownIds.has(reference[1]));
  });
  assert.deepEqual(others, [], `${configPath} has errors besides not-yet-registered component types:\n${result.stderr}`);
  return missing;
}

function reportMissing(t: TestContext, file: string, missing: string[]): void {
  t.diagnostic(missing.length === 0 ? `${file}: fully valid` : `${file}: valid except for types not registered yet: ${missing.join(', ')}`);
}

describe('pipeline.sidecar.yaml', () => {
  test('validates with the CLI, apart from component types still being written', (t) => {
    reportMissing(t, 'pipeline.sidecar.yaml', validateAllowingUnregistered(projectPath('pipeline.sidecar.yaml')));
  });

  test('has every component of the sidecar example', () => {
    assert.deepEqual(Object.keys(sidecar.receivers).sort(), ['blockio', 'cpu', 'dns', 'fileio', 'process', 'syscalls', 'tcp', 'tls']);
    assert.deepEqual(Object.keys(sidecar.processors).sort(), ['labels', 'symbolizer', 'window']);
    assert.deepEqual(Object.keys(sidecar.connectors), ['profilemetrics']);
    assert.deepEqual(Object.keys(sidecar.exporters).sort(), ['otlp', 'otlphttp', 'pprof', 'prometheus']);
    assert.ok(sidecar.service.pipelines.profiles.exporters.includes('profilemetrics'));
  });

  test('listens where the other containers can reach it', () => {
    assert.deepEqual(hostPort(sidecar.exporters.prometheus.endpoint), { host: '0.0.0.0', port: 9464 });
    assert.deepEqual(hostPort(sidecar.service.http.endpoint), { host: '0.0.0.0', port: 7071 });
  });

  test('the status server asks for the bearer token in the secret docker-compose.yml mounts, which stays out of git', () => {
    const collector = services['ebpf-collector'];
    assert.deepEqual(collector.secrets, ['ebpf-collector-status-token']);
    assert.equal(sidecar.service.http.auth.bearer_token_file, '/run/secrets/ebpf-collector-status-token', 'where compose mounts a secret');
    const file: string = compose.secrets['ebpf-collector-status-token'].file;
    assert.ok(file.startsWith('./deploy/'), `${file}: the project's`);
    const ignored = readText('.gitignore').split('\n');
    assert.ok(ignored.includes(file.replace(/^\./, '')), `${file} must be in .gitignore`);
    assert.match(readText('docker-compose.yml'), new RegExp(`openssl rand -hex 32 > ${file.replace(/^\.\//, '')}`), 'the header says how to make it');
  });

  test('sends OTLP to the ports the OpenTelemetry Collector receives on', () => {
    const receiver = otelConfig.receivers.otlp.protocols;
    const grpc = hostPort(sidecar.exporters.otlp.endpoint);
    assert.equal(grpc.host, 'otel-collector');
    assert.equal(grpc.port, hostPort(receiver.grpc.endpoint).port);
    assert.equal(sidecar.exporters.otlp.tls.insecure, true);
    const http = new URL(sidecar.exporters.otlphttp.endpoint);
    assert.equal(http.hostname, 'otel-collector');
    assert.equal(Number(http.port), hostPort(receiver.http.endpoint).port);
    assert.equal(sidecar.exporters.otlphttp.compression, 'gzip');
  });
});

// ---------------------------------------------------------------- compose

describe('docker-compose.yml', () => {
  test('has the collector, an OpenTelemetry Collector, Prometheus and Grafana', () => {
    assert.deepEqual(Object.keys(services).sort(), ['ebpf-collector', 'grafana', 'otel-collector', 'prometheus']);
    assert.match(services['otel-collector'].image, /^otel\/opentelemetry-collector-contrib:\d+\.\d+\.\d+$/);
    assert.match(services.prometheus.image, /^prom\/prometheus:v\d+\.\d+\.\d+$/);
    assert.match(services.grafana.image, /^grafana\/grafana:\d+\.\d+\.\d+$/);
  });

  test('every project file or folder it names exists', () => {
    const build = services['ebpf-collector'].build;
    assert.ok(statSync(projectPath(build.context)).isDirectory());
    assert.ok(existsSync(projectPath(build.context, build.dockerfile)), `${build.dockerfile} is missing`);
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, service] of Object.entries(services))
      for (const mount of (service.volumes ?? []).map(parseMount)) {
        if (mount.kind === 'project') assert.ok(existsSync(projectPath(mount.source)), `${name} mounts ${mount.source}, which does not exist`);
        if (mount.kind === 'volume') assert.ok(declared.includes(mount.source), `${name} uses the undeclared volume ${mount.source}`);
        if (mount.kind === 'host') assert.equal(name, 'ebpf-collector', `only the collector may see host paths, not ${name}`);
      }
  });

  test('publishes the documented ports on the loopback only', () => {
    const published = Object.fromEntries(
      Object.entries(services).map(([name, service]) => [name, (service.ports ?? []).map(parsePort)]),
    ) as Record<string, PublishedPort[]>;
    assert.deepEqual(
      Object.fromEntries(Object.entries(published).map(([name, ports]) => [name, ports.map((p) => p.containerPort)])),
      { 'ebpf-collector': [9464, 7071], 'otel-collector': [4317, 4318], prometheus: [9090], grafana: [3000] },
    );
    for (const port of Object.values(published).flat()) {
      assert.equal(port.hostIp, '127.0.0.1');
      assert.equal(port.hostPort, port.containerPort);
    }
  });

  test('the collector runs with the listed capabilities only, in the host pid and cgroup namespaces', () => {
    const collector = services['ebpf-collector'];
    assert.equal(collector.pid, 'host');
    assert.equal(collector.cgroup, 'host');
    assert.notEqual(collector.privileged, true);
    assert.equal(collector.security_opt, undefined, 'no seccomp or AppArmor opt-outs');
    assert.deepEqual(collector.cap_drop, ['ALL']);
    assert.deepEqual([...collector.cap_add].sort(), CAPABILITIES);
    assert.equal(collector.image, `ebpf-collector:${version()}`);
  });

  test('the collector sees only the host paths it needs, read-only', () => {
    const hostMounts = mounts('ebpf-collector').filter((m) => m.kind === 'host');
    assert.deepEqual(hostMounts.map((m) => m.source).sort(), [...HOST_PATHS].sort());
    for (const mount of hostMounts) {
      assert.equal(mount.target, mount.source, `${mount.source} must appear where libbpf and the collector look for it`);
      assert.ok(mount.readOnly, `${mount.source} must be read-only`);
    }
  });

  test('the collector reads pipeline.sidecar.yaml where the image looks for its pipeline', () => {
    const cmd = dockerfileCmd();
    const imageConfig = cmd[cmd.indexOf('--config') + 1];
    assert.equal(mountTarget('ebpf-collector', './pipeline.sidecar.yaml'), imageConfig);
  });

  test('the collector writes only to volumes: pprof files go to one', () => {
    const collector = services['ebpf-collector'];
    assert.equal(collector.read_only, true);
    const volumes = mounts('ebpf-collector').filter((m) => m.kind === 'volume' && !m.readOnly);
    assert.ok(
      volumes.some((m) => m.target === sidecar.exporters.pprof.directory),
      `the pprof directory ${sidecar.exporters.pprof.directory} is not a writable volume`,
    );
  });

  test('the OpenTelemetry Collector runs its mounted config with the profiles feature gate', () => {
    assert.equal(flagValue('otel-collector', '--config'), mountTarget('otel-collector', './deploy/otel-collector/config.yaml'));
    assert.equal(flagValue('otel-collector', '--feature-gates'), 'service.profilesSupport');
  });

  test('Prometheus loads its mounted config and finds the project rule files where it mounts them', () => {
    const configTarget = mountTarget('prometheus', './deploy/prometheus/prometheus.yml');
    assert.equal(flagValue('prometheus', '--config.file'), configTarget);
    const rulesTarget = mountTarget('prometheus', './deploy/prometheus/rules');
    assert.ok(prometheusConfig.rule_files.length > 0);
    for (const glob of prometheusConfig.rule_files as string[])
      assert.equal(posix.join(posix.dirname(configTarget), posix.dirname(glob)), rulesTarget, `rule_files "${glob}" does not point into ${rulesTarget}`);
  });

  test('Prometheus scrapes the ports the collectors serve', () => {
    const served: Record<string, number> = {
      'ebpf-collector': hostPort(sidecar.exporters.prometheus.endpoint).port,
      'otel-collector': hostPort(otelConfig.exporters.prometheus.endpoint).port,
    };
    const targets = (prometheusConfig.scrape_configs as Yaml[]).flatMap((job) => job.static_configs.flatMap((c: Yaml) => c.targets as string[]));
    const scraped = targets.map(hostPort).filter((t) => t.host !== 'localhost');
    assert.deepEqual(Object.fromEntries(scraped.map((t) => [t.host, t.port])), served);
  });

  test('promtool accepts the Prometheus config and the rule files it loads', () => {
    const result = spawnSync('promtool', ['check', 'config', projectPath('deploy/prometheus/prometheus.yml')], { encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
  });

  test('Grafana is provisioned with that Prometheus and the mounted dashboards', () => {
    const provisioningTarget = mountTarget('grafana', './deploy/grafana/provisioning');
    assert.equal(provisioningTarget, '/etc/grafana/provisioning');
    const datasources = readYaml('deploy/grafana/provisioning/datasources/prometheus.yaml').datasources as Yaml[];
    assert.equal(datasources.length, 1);
    const url = new URL(datasources[0].url);
    assert.equal(url.hostname, 'prometheus');
    assert.deepEqual(services.prometheus.ports.map((p: string) => parsePort(p).containerPort), [Number(url.port)]);
    const providers = readYaml('deploy/grafana/provisioning/dashboards/ebpf-collector.yaml').providers as Yaml[];
    assert.deepEqual(providers.map((p) => p.options.path), [mountTarget('grafana', './deploy/grafana/dashboards')]);
    const uids = new Set(dashboardPanels().flatMap((panel) => [panel.datasource, ...panel.targets.map((t: Yaml) => t.datasource)]).map((d: Yaml) => d.uid));
    assert.deepEqual([...uids], [datasources[0].uid]);
  });
});

// ---------------------------------------------------------------- OpenTelemetry Collector

describe('deploy/otel-collector/config.yaml', () => {
  test('receives OTLP on 4317 and 4318', () => {
    assert.equal(otelConfig.receivers.otlp.protocols.grpc.endpoint, '0.0.0.0:4317');
    assert.equal(otelConfig.receivers.otlp.protocols.http.endpoint, '0.0.0.0:4318');
  });

  test('has a profiles pipeline and metrics pipelines to debug and Prometheus', () => {
    const pipelines: Record<string, Yaml> = otelConfig.service.pipelines;
    assert.deepEqual(pipelines.profiles.receivers, ['otlp']);
    assert.ok(pipelines.profiles.exporters.includes('debug'));
    const metricsExporters = Object.entries(pipelines)
      .filter(([id]) => id.split('/')[0] === 'metrics')
      .flatMap(([, pipeline]) => pipeline.exporters as string[]);
    assert.ok(metricsExporters.includes('debug') && metricsExporters.includes('prometheus'));
  });

  test('every component a pipeline names is configured', () => {
    for (const [id, pipeline] of Object.entries(otelConfig.service.pipelines as Record<string, Yaml>))
      for (const section of ['receivers', 'processors', 'exporters'])
        for (const ref of pipeline[section] ?? []) assert.ok(ref in (otelConfig[section] ?? {}), `pipeline ${id} names ${section} ${ref}, not configured`);
  });

  test('hands Prometheus only the window percentiles, which the scrape endpoint does not carry', () => {
    const conditions: string[] = otelConfig.processors['filter/window_percentiles'].metrics.metric;
    assert.equal(conditions.length, 1);
    const match = /^not IsMatch\(name, "(.+)"\)$/.exec(conditions[0]);
    assert.ok(match, `unexpected filter condition ${conditions[0]}`);
    // The filter drops what does not match, so what matches is what Prometheus gets.
    const kept = new RegExp(match[1]);
    const window = sidecar.processors.window;
    for (const histogram of [...CONTRACT_HISTOGRAMS, 'ebpf_queue_depth'])
      for (const percentile of [...window.percentiles, 99.9]) {
        const name = percentileGaugeName(histogram, percentile);
        assert.ok(kept.test(name), `${name} would not reach Prometheus`);
      }
    for (const name of CONTRACT_NAMES) assert.ok(!kept.test(name), `${name} would reach Prometheus twice`);
    const pipeline = otelConfig.service.pipelines['metrics/prometheus'];
    assert.deepEqual(pipeline.exporters, ['prometheus']);
    assert.equal(pipeline.processors[0], 'filter/window_percentiles');
  });
});

// ---------------------------------------------------------------- Grafana

function dashboardPanels(): Yaml[] {
  return JSON.parse(readText('deploy/grafana/dashboards/ebpf-collector.json')).panels;
}

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** The metric and recording-rule names a PromQL expression reads. */
function promqlNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of bare.matchAll(/(?<![\w:.])[a-zA-Z_:][a-zA-Z0-9_:]*(?![\w:])/g)) {
    const after = bare.slice(match.index! + match[0].length);
    if (/^\s*\(/.test(after)) continue; // a function or aggregation
    if (PROMQL_KEYWORDS.has(match[0].toLowerCase())) continue;
    names.add(match[0]);
  }
  return [...names];
}

describe('deploy/grafana/dashboards/ebpf-collector.json', () => {
  const panels = dashboardPanels();

  test('has the guide\'s six panels', () => {
    assert.deepEqual(panels.map((panel) => panel.title), PANEL_TITLES);
    for (const panel of panels) assert.ok(panel.targets.length > 0, `${panel.title} has no query`);
  });

  test('finds names in PromQL the way Prometheus reads them', () => {
    assert.deepEqual(
      promqlNames('topk(10, sum by (function, pod) (rate(parca_cpu_samples_total{pod!="a:b"}[5m]))) / on (job) group_left max(x:y:z) > bool 2'),
      ['parca_cpu_samples_total', 'x:y:z'],
    );
  });

  test('queries only the metrics contract\'s names, and only recording rules the rule files define', () => {
    const rulesDir = projectPath('deploy/prometheus/rules');
    const recorded = new Set(
      readdirSync(rulesDir)
        .filter((file) => /\.ya?ml$/.test(file))
        .flatMap((file) => (parse(readFileSync(join(rulesDir, file), 'utf8')).groups as Yaml[]).flatMap((g) => g.rules as Yaml[]))
        .map((rule) => rule.record)
        .filter(Boolean),
    );
    for (const panel of panels) {
      const names = panel.targets.flatMap((target: Yaml) => promqlNames(target.expr));
      assert.ok(names.length > 0, `${panel.title} queries no metric`);
      for (const name of names) {
        assert.ok(CONTRACT_NAMES.has(name), `${panel.title} queries ${name}, which is not in the metrics contract`);
        if (name.includes(':')) assert.ok(recorded.has(name), `${panel.title} queries ${name}, which deploy/prometheus/rules does not record`);
      }
    }
  });

  test('every query parses (promtool check rules)', () => {
    const exprs = panels.flatMap((panel) => panel.targets.map((target: Yaml) => target.expr as string));
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-dashboard-'));
    try {
      const file = join(dir, 'dashboard-queries.yml');
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] }));
      const result = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- Kubernetes

const K8S_DIR = 'deploy/kubernetes';

function k8sFiles(): string[] {
  return readdirSync(projectPath(K8S_DIR)).filter((file) => /\.ya?ml$/.test(file)).sort();
}

function k8sDocuments(file: string): Yaml[] {
  const documents = parseAllDocuments(readText(`${K8S_DIR}/${file}`));
  for (const document of documents) assert.deepEqual(document.errors, [], `${file} does not parse`);
  return documents.map((document) => document.toJS()).filter(Boolean);
}

const manifests = k8sFiles()
  .filter((file) => file !== 'kustomization.yaml')
  .flatMap((file) => k8sDocuments(file));

function manifest(kind: string): Yaml {
  const found = manifests.filter((m) => m.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind}`);
  return found[0];
}

describe('deploy/kubernetes', () => {
  const daemonSet = manifest('DaemonSet');
  const pod = daemonSet.spec.template.spec;
  const container = pod.containers[0];
  const configMap = manifest('ConfigMap');
  const pipelineVolume = pod.volumes.find((v: Yaml) => v.configMap);
  const pipelineMount = container.volumeMounts.find((m: Yaml) => m.name === pipelineVolume.name);
  const pipelineYaml: string = configMap.data['pipeline.yaml'];
  const pipeline = parse(pipelineYaml);
  const service = manifest('Service');

  test('every manifest parses and has apiVersion, kind and metadata.name', () => {
    for (const file of k8sFiles())
      for (const document of k8sDocuments(file)) {
        for (const field of ['apiVersion', 'kind']) assert.equal(typeof document[field], 'string', `${file}: ${field}`);
        assert.equal(typeof document.metadata?.name, 'string', `${file}: metadata.name`);
      }
  });

  test('the kustomization lists every manifest, and all live in the collector\'s namespace', () => {
    const kustomization = k8sDocuments('kustomization.yaml')[0];
    assert.deepEqual([...kustomization.resources].sort(), k8sFiles().filter((file) => file !== 'kustomization.yaml'));
    const namespace = manifest('Namespace').metadata.name;
    for (const m of manifests.filter((m) => m.kind !== 'Namespace')) assert.equal(m.metadata.namespace, namespace, `${m.kind} ${m.metadata.name}`);
  });

  test('the DaemonSet is not privileged and adds only the listed capabilities', () => {
    assert.equal(pod.containers.length, 1);
    assert.equal(pod.hostPID, true);
    assert.notEqual(pod.hostNetwork, true);
    assert.notEqual(pod.securityContext?.privileged, true);
    const security = container.securityContext;
    assert.equal(security.privileged, false);
    assert.equal(security.allowPrivilegeEscalation, false);
    assert.equal(security.readOnlyRootFilesystem, true);
    assert.deepEqual(security.capabilities.drop, ['ALL']);
    assert.deepEqual([...security.capabilities.add].sort(), CAPABILITIES);
    assert.equal(container.image, `ebpf-collector:${version()}`);
  });

  test('the DaemonSet mounts only the host paths it needs, read-only', () => {
    const hostVolumes = pod.volumes.filter((v: Yaml) => v.hostPath);
    assert.deepEqual(hostVolumes.map((v: Yaml) => v.hostPath.path).sort(), [...HOST_PATHS, '/usr/lib/debug'].sort());
    for (const volume of hostVolumes) {
      const mount = container.volumeMounts.find((m: Yaml) => m.name === volume.name);
      assert.ok(mount, `${volume.name} is not mounted`);
      assert.equal(mount.mountPath, volume.hostPath.path);
      assert.equal(mount.readOnly, true, `${mount.mountPath} must be read-only`);
    }
    for (const mount of container.volumeMounts) assert.ok(pod.volumes.some((v: Yaml) => v.name === mount.name), `no volume ${mount.name}`);
  });

  test('the DaemonSet has resource requests and limits', () => {
    for (const bound of ['requests', 'limits'])
      for (const resource of ['cpu', 'memory']) assert.ok(container.resources?.[bound]?.[resource], `${bound}.${resource}`);
  });

  test('the pipeline comes from the ConfigMap, where the image looks for it', () => {
    assert.equal(pipelineVolume.configMap.name, configMap.metadata.name);
    assert.equal(pipelineMount.readOnly, true);
    const cmd = dockerfileCmd();
    const imageConfig = cmd[cmd.indexOf('--config') + 1];
    assert.equal(posix.join(pipelineMount.mountPath, 'pipeline.yaml'), imageConfig);
    assert.deepEqual(container.args, cmd);
  });

  test('the ConfigMap\'s pipeline validates with the CLI, apart from component types still being written', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-configmap-'));
    try {
      const file = join(dir, 'pipeline.yaml');
      writeFileSync(file, pipelineYaml);
      reportMissing(t, 'the ConfigMap\'s pipeline.yaml', validateAllowingUnregistered(file));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('probes and ports are the ones the pipeline serves', () => {
    const port = (name: string) => container.ports.find((p: Yaml) => p.name === name)?.containerPort;
    assert.deepEqual(hostPort(pipeline.service.http.endpoint), { host: '0.0.0.0', port: port('status') });
    assert.deepEqual(hostPort(pipeline.exporters.prometheus.endpoint), { host: '0.0.0.0', port: port('metrics') });
    assert.deepEqual(container.readinessProbe.httpGet, { path: '/healthz', port: 'status', scheme: 'HTTPS' });
    assert.deepEqual(container.livenessProbe.httpGet, { path: '/livez', port: 'status', scheme: 'HTTPS' });
  });

  test('the status server has TLS and a bearer token from mounted secrets; the probes are routes that need no token', () => {
    const { tls, auth } = pipeline.service.http;
    const secretMount = (file: string): string => {
      const mount = container.volumeMounts.find((m: Yaml) => posix.dirname(file) === m.mountPath);
      assert.ok(mount, `${file} is on no volume mount`);
      assert.equal(mount.readOnly, true, mount.mountPath);
      const volume = pod.volumes.find((v: Yaml) => v.name === mount.name);
      assert.ok(volume.secret, `${mount.name} is not a secret volume`);
      assert.equal(volume.secret.defaultMode, 0o400, '0400, written in decimal (256), which YAML 1.1 and 1.2 read alike');
      return volume.secret.secretName;
    };
    assert.equal(secretMount(tls.cert_file), 'ebpf-collector-tls');
    assert.equal(secretMount(tls.key_file), 'ebpf-collector-tls');
    assert.deepEqual([posix.basename(tls.cert_file), posix.basename(tls.key_file)], ['tls.crt', 'tls.key'], 'the keys of a kubernetes.io/tls secret');
    assert.equal(secretMount(auth.bearer_token_file), 'ebpf-collector-token');
    for (const probe of [container.readinessProbe, container.livenessProbe])
      assert.ok((PROBE_ROUTES as readonly string[]).includes(probe.httpGet.path), `${probe.httpGet.path} would answer the kubelet 401`);
    // The kustomization's header says how to create both secrets.
    const header = readText(`${K8S_DIR}/kustomization.yaml`);
    assert.match(header, /create secret tls ebpf-collector-tls /);
    assert.match(header, /create secret generic ebpf-collector-token --from-literal=token=/);
  });

  test('the NetworkPolicy lets only the monitoring namespace in, and only to the metrics port', () => {
    const policy = manifest('NetworkPolicy');
    assert.equal(policy.apiVersion, 'networking.k8s.io/v1');
    const podLabels = daemonSet.spec.template.metadata.labels;
    for (const [key, value] of Object.entries(policy.spec.podSelector.matchLabels)) assert.equal(podLabels[key], value, `podSelector ${key}`);
    assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
    assert.deepEqual(policy.spec.ingress, [
      { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ port: 'metrics', protocol: 'TCP' }] },
    ]);
    assert.ok(container.ports.some((p: Yaml) => p.name === 'metrics' && p.containerPort === hostPort(pipeline.exporters.prometheus.endpoint).port));
  });

  test('the Service selects the DaemonSet\'s pods and the ServiceMonitor scrapes the Service', () => {
    const podLabels = daemonSet.spec.template.metadata.labels;
    for (const [key, value] of Object.entries(service.spec.selector)) assert.equal(podLabels[key], value, `Service selector ${key}`);
    assert.deepEqual(service.spec.ports.map((p: Yaml) => [p.name, p.targetPort]), [['metrics', 'metrics']]);
    const serviceMonitor = manifest('ServiceMonitor');
    assert.equal(serviceMonitor.apiVersion, 'monitoring.coreos.com/v1');
    for (const [key, value] of Object.entries(serviceMonitor.spec.selector.matchLabels))
      assert.equal(service.metadata.labels[key], value, `ServiceMonitor selector ${key}`);
    assert.deepEqual(serviceMonitor.spec.namespaceSelector.matchNames, [service.metadata.namespace]);
    assert.deepEqual(serviceMonitor.spec.endpoints.map((e: Yaml) => e.port), ['metrics']);
    assert.equal(pod.serviceAccountName, manifest('ServiceAccount').metadata.name);
  });

  test('the PrometheusRule\'s groups are exactly the rule files\' groups', () => {
    const rulesDir = projectPath('deploy/prometheus/rules');
    const files = existsSync(rulesDir) ? readdirSync(rulesDir).filter((file) => /\.ya?ml$/.test(file)).sort() : [];
    assert.notEqual(files.length, 0, 'deploy/prometheus/rules has no rule files');
    const groups = files.flatMap((file) => parse(readFileSync(join(rulesDir, file), 'utf8')).groups);
    const rule = manifest('PrometheusRule');
    assert.equal(rule.apiVersion, 'monitoring.coreos.com/v1');
    assert.deepEqual(rule.spec.groups, groups, `copy the groups of deploy/prometheus/rules/{${files.join(',')}} into ${K8S_DIR}/prometheusrule.yaml`);
  });
});
