import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cgroup2Mount } from '../../collector/cgroups.js';
import type { Attributes } from '../../collector/data/metrics.js';
import { SelfTelemetry } from '../../collector/telemetry.js';
import { configIssues, MetricsSink, selfMetric, testHost, testLifecycle, testSettings } from '../../test/support/components.js';
import { eventually } from '../../test/support/collector.js';
import { dnsReceiverFactory } from './factory.js';
import { OTHER_DOMAIN } from './domain-cap.js';
import { presentationName } from './names.js';
import {
  buildGoResolver,
  dig,
  DnsNamespace,
  getent,
  goLookups,
  nodeLookups,
  pythonGetaddrinfo,
  sendMalformed,
  SERVER_V4,
  SERVER_V6,
  SILENT_SERVER,
} from './testdata/dns-network.js';

/** Domains unique to this run, so that no other process's queries count. */
const RUN = `r${process.pid}`;
const name = (label: string, zone: 'ok.test' | 'nx.test' | 'refused.example' | 'silent.example') => `${label}-${RUN}.${zone}`;

let network: DnsNamespace;
/** Its resolv.conf names a server that never answers: getaddrinfo times out. */
let silentNetwork: DnsNamespace;

before(async () => {
  buildGoResolver();
  network = DnsNamespace.create(`dns-test-${process.pid}`, ['10.53.0.1/24', '10.53.0.2/24', 'fd53::1/64'], SERVER_V4);
  await network.startDnsmasq(`/tmp/dns-test-${process.pid}.pid`);
  await network.startDnsmasq(`/tmp/dns-test-${process.pid}-5353.pid`, 5353);
  await network.startSilentServer(SILENT_SERVER);
  silentNetwork = DnsNamespace.create(`dns-test-silent-${process.pid}`, ['10.53.1.1/24'], '10.53.1.1');
  await silentNetwork.startSilentServer('10.53.1.1');
});

after(() => {
  network?.destroy();
  silentNetwork?.destroy();
});

function create(config: Record<string, unknown>, sink = new MetricsSink(), settings = testSettings('receiver', 'dns')) {
  const parsed = dnsReceiverFactory.configSchema.parse({ collection_interval: '200ms', timeout: '1s', ...config });
  return dnsReceiverFactory.create(settings, parsed, { metrics: sink });
}

const histogramCount = (sink: MetricsSink, attributes: Record<string, string>) => sink.histogramCount('ebpf_dns_query_duration_seconds', attributes);

function histogramSum(sink: MetricsSink, domain: string): number {
  let sum = 0;
  for (const batch of sink.batches)
    for (const metric of batch.metrics)
      if (metric.name === 'ebpf_dns_query_duration_seconds' && metric.type === 'histogram')
        for (const point of metric.points) if (point.attributes.domain === domain) sum += point.sum;
  return sum;
}

const failures = (sink: MetricsSink, domain: string, reason: string) => sink.total('ebpf_dns_query_failures_total', { domain, reason });

function allAttributes(sink: MetricsSink): Attributes[] {
  return sink.batches.flatMap((batch) => batch.metrics.flatMap((metric): Attributes[] => metric.points.map((point) => point.attributes)));
}

async function dropped(telemetry: SelfTelemetry, reason: string): Promise<number> {
  return (await selfMetric(telemetry, 'ebpf_collector_dropped_items_total', { reason })) ?? 0;
}

/** Runs the receiver while `workload` runs, until `arrived` holds (then one more interval, for anything extra to show). */
async function observe(config: Record<string, unknown>, workload: () => Promise<void>, arrived: (sink: MetricsSink) => boolean, settings = testSettings('receiver', 'dns')) {
  const sink = new MetricsSink();
  const receiver = create(config, sink, settings);
  await receiver.start(testHost());
  try {
    await workload();
    await eventually('the queries to be counted', 20_000, async () => (arrived(sink) ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
  } finally {
    await receiver.shutdown();
  }
  return sink;
}

testLifecycle(() => create({}));

test('bad config values are errors that name their path', () => {
  const issues = (config: unknown) => configIssues(dnsReceiverFactory, config);
  assert.match(issues({ ports: [53] }).join('\n'), /Unrecognized key\(s\) in object: 'ports'/);
  assert.deepEqual(issues({ port: 0 }), ['port: Number must be greater than or equal to 1']);
  assert.deepEqual(issues({ port: 70000 }), ['port: Number must be less than or equal to 65535']);
  assert.deepEqual(issues({ timeout: '5' }), ['timeout: expected a duration such as "10s" or "500ms", got string "5"']);
  assert.deepEqual(issues({ max_domains: 0 }), ['max_domains: Number must be greater than or equal to 1']);
  assert.deepEqual(issues({ aggregate_by: ['cgroup', 'tid'] }), ["aggregate_by.1: Invalid enum value. Expected 'cgroup' | 'pid' | 'comm', received 'tid'"]);
  assert.deepEqual(issues({ aggregate_by: ['pid', 'pid'] }), ['aggregate_by.1: "pid" is listed twice']);
  assert.deepEqual(issues({ libc_paths: ['libc.so.6'] }), ['libc_paths.0: expected an absolute path, e.g. "/lib/x86_64-linux-gnu/libc.so.6"']);
});

test('each client\'s N queries are exactly N in _count for its domain: dig (IPv4 and IPv6), Go, getent, Python, Node lookup and resolve4', async () => {
  const expected = {
    [name('dig', 'ok.test')]: 5,
    [name('go', 'ok.test')]: 4,
    [name('dig6', 'ok.test')]: 3,
    [name('getent', 'ok.test')]: 4,
    [name('python', 'ok.test')]: 3,
    [name('lookup', 'ok.test')]: 3,
    [name('resolve', 'ok.test')]: 3,
  };
  const sink = await observe(
    {},
    async () => {
      await dig(network, SERVER_V4, name('dig', 'ok.test'), 5);
      await dig(network, SERVER_V6, name('dig6', 'ok.test'), 3);
      await goLookups(network, SERVER_V4, name('go', 'ok.test'), 4);
      await getent(network, name('getent', 'ok.test'), 4);
      await pythonGetaddrinfo(network, name('python', 'ok.test'), 3);
      await nodeLookups(network, name('lookup', 'ok.test'), name('resolve', 'ok.test'), 3);
    },
    (sink) => Object.entries(expected).every(([domain, n]) => histogramCount(sink, { domain }) >= n),
  );
  for (const [domain, n] of Object.entries(expected)) {
    assert.equal(histogramCount(sink, { domain }), n, `queries for ${domain}`);
    assert.equal(sink.total('ebpf_dns_query_failures_total', { domain }), 0, `failures for ${domain}`);
    const seconds = histogramSum(sink, domain);
    assert.ok(seconds > 0 && seconds < n * 0.5, `${n} local answers for ${domain} took ${seconds} s`);
  }
  for (const attributes of allAttributes(sink).filter((a) => a.domain.endsWith(`${RUN}.ok.test`)))
    assert.deepEqual(Object.keys(attributes).sort(), ['container', 'domain', 'namespace', 'pod'], 'pid and comm only when aggregated by');
});

test('failures carry their reason: NXDOMAIN and REFUSED answers (also in the histogram) and timeouts (not in it), from every layer', async () => {
  const expected: [string, string, number, boolean][] = [
    // domain, reason, failures, answered (in the duration histogram)
    [name('dig', 'nx.test'), 'NXDOMAIN', 2, true],
    [name('dig', 'refused.example'), 'REFUSED', 2, true],
    [name('dig', 'silent.example'), 'timeout', 2, false],
    [name('getent', 'nx.test'), 'NXDOMAIN', 2, true],
    [name('python', 'refused.example'), 'REFUSED', 1, true],
    [name('getent', 'silent.example'), 'timeout', 1, false],
    [name('lookup', 'nx.test'), 'NXDOMAIN', 1, true],
    [name('resolve', 'nx.test'), 'NXDOMAIN', 1, true],
    [name('go', 'nx.test'), 'NXDOMAIN', 2, true],
  ];
  const sink = await observe(
    {},
    async () => {
      await dig(network, SERVER_V4, name('dig', 'nx.test'), 2);
      await dig(network, SERVER_V4, name('dig', 'refused.example'), 2);
      await dig(network, SILENT_SERVER, name('dig', 'silent.example'), 2);
      await getent(network, name('getent', 'nx.test'), 2);
      await pythonGetaddrinfo(network, name('python', 'refused.example'), 1);
      await getent(silentNetwork, name('getent', 'silent.example'), 1);
      await nodeLookups(network, name('lookup', 'nx.test'), name('resolve', 'nx.test'), 1);
      await goLookups(network, SERVER_V4, name('go', 'nx.test'), 2);
    },
    (sink) => expected.every(([domain, reason, n]) => failures(sink, domain, reason) >= n),
  );
  for (const [domain, reason, n, answered] of expected) {
    assert.equal(failures(sink, domain, reason), n, `${reason} failures for ${domain}`);
    assert.equal(sink.total('ebpf_dns_query_failures_total', { domain }), n, `no other failures for ${domain}`);
    assert.equal(histogramCount(sink, { domain }), answered ? n : 0, `answered queries for ${domain} in the histogram`);
  }
});

test('malformed queries are counted as lost, and the receiver keeps counting good ones', async () => {
  const telemetry = new SelfTelemetry();
  const settings = { ...testSettings('receiver', 'dns'), telemetry: telemetry.forComponent('receiver', 'dns') };
  const after = name('after-malformed', 'ok.test');
  let sent = 0;
  const sink = await observe(
    {},
    async () => {
      sent = await sendMalformed(network, SERVER_V4);
      await dig(network, SERVER_V4, after, 1);
      // Any byte may be in a label: upper case is folded, the rest escaped as dig prints it.
      await dig(network, SERVER_V4, `\\200Odd\\.Label\\\\-${RUN}.OK.test.`, 1);
    },
    (sink) => histogramCount(sink, { domain: after }) >= 1 && histogramCount(sink, { domain: `\\200odd\\.label\\\\-${RUN}.ok.test` }) >= 1,
    settings,
  );
  assert.equal(sent, 4);
  assert.equal(await dropped(telemetry, 'malformed_packet'), sent, 'every malformed query is counted once');
  assert.equal(histogramCount(sink, { domain: after }), 1);
  for (const attributes of allAttributes(sink))
    for (const value of Object.values(attributes)) assert.ok(Buffer.from(value, 'utf8').toString('utf8') === value && !value.includes('\uFFFD'), `label value ${JSON.stringify(value)}`);
});

test('presentation names: escapes, the root, and names cut at the buffer end', () => {
  const wire = (...labels: (string | Buffer)[]) => Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([Buffer.from(l).length]), Buffer.from(l)])), Buffer.from([0])]);
  assert.equal(presentationName(wire('www', 'example', 'com'), 0, 256), 'www.example.com');
  assert.equal(presentationName(wire(Buffer.from([0xc3, 0x28, 0x20, 0x2e, 0x5c])), 0, 256), '\\195(\\032\\.\\\\');
  assert.equal(presentationName(Buffer.from([0]), 0, 256), '.');
  assert.equal(presentationName(Buffer.from([5, 0x61, 0x62]), 0, 3), 'ab');
});

test('beyond max_domains, queries fold into domain="[other]" and are counted', async () => {
  const telemetry = new SelfTelemetry();
  const settings = { ...testSettings('receiver', 'dns'), telemetry: telemetry.forComponent('receiver', 'dns') };
  const domains = ['cap-a', 'cap-b', 'cap-c', 'cap-d'].map((label) => name(label, 'ok.test'));
  const sink = await observe(
    { max_domains: 2 },
    async () => {
      for (const domain of domains) await dig(network, SERVER_V4, domain, 1);
    },
    (sink) => histogramCount(sink, {}) >= 4 && histogramCount(sink, { domain: OTHER_DOMAIN }) >= 2,
    settings,
  );
  // Other processes' queries may take places too: only this run's domains are checked.
  const named = domains.filter((domain) => histogramCount(sink, { domain }) === 1);
  assert.ok(named.length <= 2, `at most two domains keep their name: ${named}`);
  const ownFolded = domains.length - named.length;
  assert.ok(histogramCount(sink, { domain: OTHER_DOMAIN }) >= ownFolded);
  assert.ok((await dropped(telemetry, 'domain_cap')) >= ownFolded && ownFolded >= 2);
  const labelled = new Set(allAttributes(sink).map((a) => a.domain));
  assert.ok(labelled.size <= 3, `two domains and [other]: ${[...labelled]}`);
});

test('the DNS port is configurable: with port 5353, queries to 5353 count and those to 53 do not', async () => {
  const on5353 = name('port-5353', 'ok.test');
  const on53 = name('port-53', 'ok.test');
  const sink = await observe(
    { port: 5353 },
    async () => {
      await dig(network, SERVER_V4, on53, 2);
      await dig(network, SERVER_V4, on5353, 3, 5353);
    },
    (sink) => histogramCount(sink, { domain: on5353 }) >= 3,
  );
  assert.equal(histogramCount(sink, { domain: on5353 }), 3);
  assert.equal(histogramCount(sink, { domain: on53 }), 0);
});

test('pod and container come from the cgroup of the querying process, on the wire and through getaddrinfo', async () => {
  const mount = cgroup2Mount();
  assert.ok(mount, 'a cgroup v2 hierarchy is mounted');
  const podUid = '3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b';
  const containerId = 'c0ffee'.padEnd(64, '0');
  const parent = `/ebpf-collector-dns-test-${process.pid}`;
  const pod = `${parent}/kubepods-besteffort-pod${podUid.replaceAll('-', '_')}.slice`;
  const container = `${pod}/cri-containerd-${containerId}.scope`;
  mkdirSync(join(mount, container), { recursive: true });
  const viaDig = name('pod-dig', 'ok.test');
  const viaGetent = name('pod-getent', 'ok.test');
  // The shell moves itself into the container's cgroup, then becomes the client (`ip netns exec` hides the host's /sys).
  const inContainer = async (command: string) => {
    const child = spawn('sh', ['-c', `echo $$ > ${join(mount, container, 'cgroup.procs')} && exec ip netns exec ${network.name} ${command}`], { stdio: 'ignore' });
    await new Promise((resolve) => child.once('exit', resolve));
  };
  let sink: MetricsSink;
  try {
    sink = await observe(
      {},
      async () => {
        await inContainer(`dig @${SERVER_V4} +tries=1 +time=1 ${viaDig}`);
        await inContainer(`getent ahosts ${viaGetent}`);
      },
      (sink) => histogramCount(sink, { domain: viaDig }) >= 1 && histogramCount(sink, { domain: viaGetent }) >= 1,
    );
  } finally {
    for (const path of [container, pod, parent]) rmdirSync(join(mount, path));
  }
  for (const domain of [viaDig, viaGetent]) assert.equal(histogramCount(sink, { domain, pod: podUid, namespace: '', container: containerId }), 1, domain);
});

test('aggregate_by pid and comm labels the querying process', async () => {
  const domain = name('by-pid', 'ok.test');
  let pid = 0;
  const sink = await observe(
    { aggregate_by: ['cgroup', 'pid', 'comm'] },
    async () => {
      pid = await pythonGetaddrinfo(network, domain, 2);
    },
    (sink) => histogramCount(sink, { domain }) >= 2,
  );
  assert.equal(histogramCount(sink, { domain, pid: String(pid), comm: 'python3' }), 2);
});

test('without libc\'s getaddrinfo probed, the status says so and wire queries are still counted', async () => {
  const settings = testSettings('receiver', 'dns');
  const domain = name('no-libc', 'ok.test');
  const sink = await observe(
    { libc_paths: ['/nonexistent/libc.so.6'] },
    async () => {
      await dig(network, SERVER_V4, domain, 2);
      await getent(network, name('no-libc-getent', 'ok.test'), 1);
    },
    (sink) => histogramCount(sink, { domain }) >= 2,
    settings,
  );
  assert.equal(histogramCount(sink, { domain }), 2);
  // getaddrinfo's A and AAAA queries, each counted on its own.
  assert.equal(histogramCount(sink, { domain: name('no-libc-getent', 'ok.test') }), 2);
  const [status] = settings.statuses.snapshot();
  assert.equal(status.status, 'recoverable_error');
  assert.match(status.message ?? '', /getaddrinfo is not probed.*\/nonexistent\/libc\.so\.6/);
});
