/** The otlp and otlphttp exporters' config: the Collector's names and defaults, and errors that name their path. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FACTORIES } from '../../collector/components.js';
import { ConfigError, formatProblem } from '../../collector/config/errors.js';
import { parseConfigText } from '../../collector/config/load.js';
import { otlpGrpcExporterFactory } from '../otlp/factory.js';
import { otlpHttpExporterFactory } from '../otlphttp/factory.js';

const factories = [...FACTORIES, otlpHttpExporterFactory, otlpGrpcExporterFactory];

function pipeline(exporters: string): string {
  return `
receivers:
  process: {}
exporters:
${exporters}
service:
  pipelines:
    metrics:
      receivers: [process]
      exporters: [${[...exporters.matchAll(/^  (\S+):/gm)].map((m) => m[1]).join(', ')}]
`;
}

function problemsOf(exporters: string): string[] {
  try {
    parseConfigText(pipeline(exporters), 'test.yaml', factories);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map(formatProblem);
    throw error;
  }
  assert.fail('expected a configuration error');
}

const DEFAULTS = {
  headers: {},
  compression: 'gzip',
  timeout: 10_000,
  tls: { insecure: false },
  sending_queue: { queue_size: 1_000_000, max_bytes: 64 * 1024 * 1024 },
  retry_on_failure: { enabled: true, initial_interval: 5000, randomization_factor: 0.5, multiplier: 1.5, max_interval: 30_000, max_elapsed_time: 300_000 },
  temporality: 'cumulative',
  metric_expiration: 300_000,
};

test('defaults are the Collector exporterhelper\'s', () => {
  const config = parseConfigText(
    pipeline('  otlphttp:\n    endpoint: http://127.0.0.1:4318/\n  otlp:\n    endpoint: 127.0.0.1:4317\n    tls:\n      insecure: true\n'),
    'test.yaml',
    factories,
  );
  assert.deepEqual(config.components.exporter.get('otlphttp')!.config, { endpoint: 'http://127.0.0.1:4318', ...DEFAULTS });
  assert.deepEqual(config.components.exporter.get('otlp')!.config, { endpoint: { host: '127.0.0.1', port: 4317 }, ...DEFAULTS, tls: { insecure: true } });
});

test('user settings are merged over the defaults', () => {
  const config = parseConfigText(
    pipeline(`  otlphttp/tempo:
    endpoint: https://tempo.example:4318/otlp
    headers: { X-Scope-OrgID: tenant-1 }
    compression: none
    timeout: 3s
    sending_queue: { queue_size: 5000 }
    retry_on_failure: { initial_interval: 1s, max_elapsed_time: 0s }
    temporality: delta
`),
    'test.yaml',
    factories,
  );
  assert.deepEqual(config.components.exporter.get('otlphttp/tempo')!.config, {
    ...DEFAULTS,
    endpoint: 'https://tempo.example:4318/otlp',
    headers: { 'X-Scope-OrgID': 'tenant-1' },
    compression: 'none',
    timeout: 3000,
    sending_queue: { ...DEFAULTS.sending_queue, queue_size: 5000 },
    retry_on_failure: { ...DEFAULTS.retry_on_failure, initial_interval: 1000, max_elapsed_time: 0 },
    temporality: 'delta',
  });
});

test('bad settings are reported with their path', () => {
  const cases: [string, string[]][] = [
    ['  otlphttp: {}\n', ['exporters::otlphttp::endpoint: is required']],
    ['  otlp: {}\n', ['exporters::otlp::endpoint: is required']],
    [
      '  otlphttp:\n    endpoint: 127.0.0.1:4318\n',
      ['exporters::otlphttp::endpoint: expected an http:// or https:// base URL such as "http://127.0.0.1:4318", got "127.0.0.1:4318"'],
    ],
    ['  otlp:\n    endpoint: http://127.0.0.1:4317\n', ['exporters::otlp::endpoint: expected "host:port" with a port from 1 to 65535, such as "127.0.0.1:4317", got "http://127.0.0.1:4317"']],
    ['  otlp:\n    endpoint: 127.0.0.1:0\n', ['exporters::otlp::endpoint: expected "host:port" with a port from 1 to 65535, such as "127.0.0.1:4317", got "127.0.0.1:0"']],
    [
      '  otlphttp:\n    endpoint: http://h:4318\n    compresion: gzip\n',
      [
        'exporters::otlphttp::compresion: unknown key (valid keys: endpoint, headers, compression, timeout, tls, sending_queue, retry_on_failure, temporality, metric_expiration)',
      ],
    ],
    ['  otlphttp:\n    endpoint: http://h:4318\n    compression: zstd\n', [`exporters::otlphttp::compression: must be one of gzip, none, got string "zstd"`]],
    ['  otlphttp:\n    endpoint: http://h:4318\n    retry_on_failure:\n      initial_interval: 5\n', ['exporters::otlphttp::retry_on_failure::initial_interval: expected a duration such as "10s" or "500ms", got number 5']],
    [
      '  otlphttp:\n    endpoint: http://h:4318\n    retry_on_failure:\n      initial_interval: 10s\n      max_interval: 1s\n',
      ['exporters::otlphttp::retry_on_failure::max_interval: must not be shorter than initial_interval'],
    ],
    ['  otlphttp:\n    endpoint: http://h:4318\n    sending_queue:\n      queue_size: 0\n', ['exporters::otlphttp::sending_queue::queue_size: must be at least 1, got number 0']],
    ['  otlphttp:\n    endpoint: https://h:4318\n    tls:\n      insecure: true\n', ['exporters::otlphttp::tls::insecure: an https:// endpoint always uses TLS; write http:// for plaintext']],
    ['  otlphttp:\n    endpoint: http://h:4318\n    tls:\n      ca_file: /etc/hostname\n', ['exporters::otlphttp::tls: ca_file, cert_file and key_file need an https:// endpoint']],
    ['  otlp:\n    endpoint: h:4317\n    tls:\n      ca_file: /no/such/ca.pem\n', ['exporters::otlp::tls::ca_file: no such file: "/no/such/ca.pem"']],
    ['  otlp:\n    endpoint: h:4317\n    tls:\n      cert_file: /etc/hostname\n', ['exporters::otlp::tls::key_file: cert_file and key_file go together']],
    [
      '  otlp:\n    endpoint: h:4317\n    tls:\n      insecure: true\n      ca_file: /etc/hostname\n',
      ['exporters::otlp::tls::insecure: insecure means no TLS, so ca_file, cert_file and key_file cannot be used with it'],
    ],
    ['  otlp:\n    endpoint: h:4317\n    headers:\n      "bad header": x\n', ['exporters::otlp::headers::bad header: must be an HTTP header name']],
    ['  otlp:\n    endpoint: h:4317\n    headers:\n      trace-bin: x\n', ['exporters::otlp::headers::trace-bin: binary (-bin) headers are not supported']],
    ['  otlp:\n    endpoint: h:4317\n    headers:\n      authorization: "a\\nb"\n', ['exporters::otlp::headers::authorization: must be a single line']],
    ['  otlp:\n    endpoint: h:4317\n    temporality: sometimes\n', ['exporters::otlp::temporality: must be one of delta, cumulative, got string "sometimes"']],
  ];
  for (const [exporters, expected] of cases) assert.deepEqual(problemsOf(exporters), expected, exporters);
});
