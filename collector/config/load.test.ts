/** Configuration loading: one valid pipeline and a table of broken ones, each with its exact error. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FACTORIES } from '../components.js';
import { projectPath } from '../paths.js';
import { ConfigError, formatProblem } from './errors.js';
import { parseConfigText } from './load.js';

const VALID = `
receivers:
  process:
    collection_interval: 2s
  process/slow: {}
exporters:
  prometheus:
    endpoint: 127.0.0.1:19464
service:
  pipelines:
    metrics:
      receivers: [process]
      exporters: [prometheus]
    metrics/slow:
      receivers: [process/slow]
      exporters: [prometheus]
`;

function problemsOf(yaml: string): string[] {
  try {
    parseConfigText(yaml, 'test.yaml', FACTORIES);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map(formatProblem);
    throw error;
  }
  assert.fail('expected a configuration error');
}

test('a valid pipeline merges user config over defaults', () => {
  const config = parseConfigText(VALID, 'test.yaml', FACTORIES);
  assert.deepEqual(
    config.pipelines.map((p) => [p.id, p.signal, p.receivers, p.exporters]),
    [
      ['metrics', 'metrics', ['process'], ['prometheus']],
      ['metrics/slow', 'metrics', ['process/slow'], ['prometheus']],
    ],
  );
  assert.deepEqual(config.components.receiver.get('process')!.config, { collection_interval: 2000 });
  assert.deepEqual(config.components.receiver.get('process/slow')!.config, { collection_interval: 10_000 });
  assert.deepEqual(config.components.exporter.get('prometheus')!.config, {
    endpoint: { host: '127.0.0.1', port: 19464 },
    metric_expiration: 300_000,
  });
  assert.deepEqual(config.service, {
    http: { endpoint: { host: '127.0.0.1', port: 7071 } },
    logLevel: 'info',
    shutdownTimeoutMs: 15_000,
    consumeTimeoutMs: { processors: 10_000, connectors: 10_000, exporters: 30_000 },
    disabledKernelFeatures: [],
  });
});

test('the bundled pipeline.yaml is valid', () => {
  const result = spawnSync(process.execPath, [projectPath('dist/collector/cli.js'), 'validate'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /pipeline\.yaml: valid \(profiles, metrics\)/);
});

const PIPELINE = `
service:
  pipelines:
    metrics:
      receivers: [process]
      exporters: [prometheus]
`;
const EXPORTER = `
exporters:
  prometheus: {}
`;
const RECEIVER = `
receivers:
  process: {}
`;

const BROKEN: { name: string; yaml: string; errors: string[] }[] = [
  {
    name: 'unknown top-level key',
    yaml: `recievers:\n  process: {}\n${EXPORTER}${PIPELINE}`,
    errors: [
      'recievers: unknown key (valid keys: receivers, processors, exporters, connectors, service)',
      'service::pipelines::metrics: references receiver "process" which is not configured',
    ],
  },
  {
    name: 'unknown key in a component',
    yaml: `receivers:\n  process:\n    interval: 5s\n${EXPORTER}${PIPELINE}`,
    errors: ['receivers::process::interval: unknown key (valid keys: collection_interval)'],
  },
  {
    name: 'unknown receiver type',
    yaml: `receivers:\n  kprobe: {}\n  process: {}\n${EXPORTER}${PIPELINE}`,
    errors: ['receivers::kprobe: unknown receiver type "kprobe" (known types: blockio, cpu, dns, ebpf, fileio, process, syscalls, tcp, tls)'],
  },
  {
    name: 'bad id: empty name',
    yaml: `receivers:\n  process/: {}\n  process: {}\n${EXPORTER}${PIPELINE}`,
    errors: ['receivers::process/: invalid id: the name after "/" must be non-empty and hold only letters, digits, "_", "." and "-"'],
  },
  {
    name: 'bad id: type starts with a digit',
    yaml: `${RECEIVER}exporters:\n  9prom: {}\n  prometheus: {}\n${PIPELINE}`,
    errors: ['exporters::9prom: invalid id: the type "9prom" must start with a letter and hold only letters, digits and "_"'],
  },
  {
    name: 'dangling processor reference',
    yaml: `${RECEIVER}${EXPORTER}
service:
  pipelines:
    metrics:
      receivers: [process]
      processors: [window/2]
      exporters: [prometheus]
`,
    errors: ['service::pipelines::metrics: references processor "window/2" which is not configured'],
  },
  {
    name: 'dangling exporter reference',
    yaml: `${RECEIVER}${EXPORTER}
service:
  pipelines:
    metrics:
      receivers: [process]
      exporters: [prometheus, otlp]
`,
    errors: ['service::pipelines::metrics: references exporter "otlp" which is not configured'],
  },
  {
    name: 'pipeline without a receiver',
    yaml: `${RECEIVER}${EXPORTER}
service:
  pipelines:
    metrics:
      exporters: [prometheus]
`,
    errors: ['service::pipelines::metrics: must have at least one receiver'],
  },
  {
    name: 'pipeline without an exporter',
    yaml: `${RECEIVER}${EXPORTER}
service:
  pipelines:
    metrics:
      receivers: [process]
      exporters: []
`,
    errors: ['service::pipelines::metrics: must have at least one exporter'],
  },
  {
    name: 'component on a signal it does not support',
    yaml: `${RECEIVER}${EXPORTER}
service:
  pipelines:
    profiles:
      receivers: [process]
      exporters: [prometheus]
`,
    errors: [
      'service::pipelines::profiles: receiver "process" does not support the profiles signal (it supports: metrics)',
      'service::pipelines::profiles: exporter "prometheus" does not support the profiles signal (it supports: metrics)',
    ],
  },
  {
    name: 'unknown signal',
    yaml: `${RECEIVER}${EXPORTER}
service:
  pipelines:
    logs:
      receivers: [process]
      exporters: [prometheus]
`,
    errors: ['service::pipelines::logs: unknown signal "logs" (supported: metrics, profiles)'],
  },
  {
    name: 'wrong value type',
    yaml: `receivers:\n  process:\n    collection_interval: true\n${EXPORTER}${PIPELINE}`,
    errors: ['receivers::process::collection_interval: expected a duration such as "10s" or "500ms", got boolean true'],
  },
  {
    name: 'duration out of range',
    yaml: `receivers:\n  process:\n    collection_interval: 2h\n${EXPORTER}${PIPELINE}`,
    errors: ['receivers::process::collection_interval: must be between 100ms and 3600s, got "2h"'],
  },
  {
    name: 'malformed endpoint',
    yaml: `${RECEIVER}exporters:\n  prometheus:\n    endpoint: localhost\n${PIPELINE}`,
    errors: ['exporters::prometheus::endpoint: expected "host:port" with a port from 0 to 65535, got "localhost"'],
  },
  {
    name: 'list where a map belongs',
    yaml: `${RECEIVER}exporters:\n  - prometheus\n${PIPELINE}`,
    errors: [
      'exporters: expected a map from component id to config, got a list',
      'service::pipelines::metrics: references exporter "prometheus" which is not configured',
    ],
  },
  {
    name: 'component listed twice',
    yaml: `${RECEIVER}${EXPORTER}
service:
  pipelines:
    metrics:
      receivers: [process, process]
      exporters: [prometheus]
`,
    errors: ['service::pipelines::metrics::receivers: "process" is listed more than once'],
  },
  {
    name: 'no pipelines',
    yaml: `${RECEIVER}${EXPORTER}service:\n  telemetry:\n    logs:\n      level: loud\n`,
    errors: ['service::telemetry::logs::level: must be one of debug, info, warn, error, got string "loud"', 'service::pipelines: at least one pipeline is required (e.g. "metrics")'],
  },
  {
    name: 'ebpf receiver: missing object file and bad label',
    yaml: `receivers:
  ebpf:
    object: /nonexistent/prog.bpf.o
    counters:
      - name: opens_total
        map: counts
        labels: [{ name: pid, size: 3, decoder: uint }]
${EXPORTER}
service:
  pipelines:
    metrics:
      receivers: [ebpf]
      exporters: [prometheus]
`,
    errors: [
      'receivers::ebpf::object: no such file: "/nonexistent/prog.bpf.o"',
      'receivers::ebpf::counters::0::labels::0::size: a uint label must be 1, 2, 4 or 8 bytes, got 3',
    ],
  },
  {
    name: 'YAML syntax error',
    yaml: `receivers:\n  process: {\n${EXPORTER}`,
    errors: ['test.yaml:4:1: Flow map in block collection must be sufficiently indented and end with a }'],
  },
];

const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-config-'));

for (const { name, yaml, errors } of BROKEN) {
  test(`broken config: ${name}`, () => {
    assert.deepEqual(problemsOf(yaml), errors);
    const file = join(dir, `${name.replace(/\W+/g, '_')}.yaml`);
    writeFileSync(file, yaml);
    const result = spawnSync(process.execPath, [projectPath('dist/collector/cli.js'), 'validate', '--config', file], { encoding: 'utf8' });
    assert.equal(result.status, 2, `validate should exit 2, stderr: ${result.stderr}`);
    for (const error of errors) assert.ok(result.stderr.includes(error.replace('test.yaml', file)), `stderr lacks "${error}": ${result.stderr}`);
  });
}

test('a connector must end one pipeline and start another, on a route it supports', () => {
  assert.deepEqual(
    problemsOf(`
receivers:
  process: {}
connectors:
  profilemetrics: {}
exporters:
  prometheus: {}
service:
  pipelines:
    metrics:
      receivers: [process, profilemetrics]
      exporters: [prometheus, profilemetrics]
`),
    [
      'service::pipelines::metrics: connector "profilemetrics" cannot be an exporter of the metrics signal (it converts profiles to metrics)',
      'connectors::profilemetrics: must be an exporter in one pipeline and a receiver in another (exporter in: none; receiver in: metrics)',
    ],
  );
});
