/**
 * The tcp receiver against real connects: clients run in a network namespace
 * this file makes (testdata/tcp-network.ts), and the receiver records only
 * their pids, so other traffic on the machine cannot change the exact counts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { cgroup2Mount } from '../../collector/cgroups.js';
import type { Attributes } from '../../collector/data/metrics.js';
import { SelfTelemetry } from '../../collector/telemetry.js';
import { configIssues, MetricsSink, selfMetric, testHost, testLifecycle, testSettings } from '../../test/support/components.js';
import { tcpReceiverFactory } from './factory.js';
import { OTHER_DESTINATIONS } from './receiver.js';
import { CLOSED_PORT, DROPPED_PORT, TcpNamespace, UNROUTED_V4, UNROUTED_V6, type Client } from './testdata/tcp-network.js';

let network: TcpNamespace;
before(() => {
  network = TcpNamespace.create(`tcp-test-${process.pid}`);
});
after(() => network?.destroy());
afterEach(() => network.stopClients());

const startClient: TcpNamespace['startClient'] = (...args) => network.startClient(...args);

function create(config: Record<string, unknown>, sink = new MetricsSink(), settings = testSettings('receiver', 'tcp')) {
  const parsed = tcpReceiverFactory.configSchema.parse({ collection_interval: '200ms', ...config });
  return tcpReceiverFactory.create(settings, parsed, { metrics: sink });
}

/** Starts the receiver for the clients' pids, lets them connect, and returns their outcomes once everything is read. */
async function record(clients: Client[], config: Record<string, unknown>, sink: MetricsSink, settings = testSettings('receiver', 'tcp')) {
  const receiver = create({ pids: clients.map((client) => client.pid), ...config }, sink, settings);
  await receiver.start(testHost());
  try {
    // Blocking connects return after the state change that ends them: once the clients exit, the maps hold every event.
    return await Promise.all(clients.map((client) => client.go()));
  } finally {
    await receiver.shutdown(); // flushes the last interval
  }
}

const histogramCount = (sink: MetricsSink, attributes: Record<string, string>) => sink.histogramCount('ebpf_network_connect_duration_seconds', attributes);

function allAttributes(sink: MetricsSink): Attributes[] {
  return sink.batches.flatMap((batch) => batch.metrics.flatMap((metric): Attributes[] => metric.points.map((point) => point.attributes)));
}

const failures = (sink: MetricsSink, attributes: Record<string, string>) => sink.total('ebpf_network_connect_failures_total', attributes);

testLifecycle(() => create({}));

test('bad config values are errors that name their path', () => {
  const issues = (config: unknown) => configIssues(tcpReceiverFactory, config);
  assert.match(issues({ max_dests: 10 }).join('\n'), /Unrecognized key\(s\) in object: 'max_dests'/);
  assert.deepEqual(issues({ aggregate_by: ['cgroup', 'tid'] }), ["aggregate_by.1: Invalid enum value. Expected 'cgroup' | 'pid' | 'comm', received 'tid'"]);
  assert.deepEqual(issues({ aggregate_by: ['comm', 'comm'] }), ['aggregate_by.1: "comm" is listed twice']);
  assert.deepEqual(issues({ max_destinations: 0 }), ['max_destinations: Number must be greater than or equal to 1']);
  assert.deepEqual(issues({ comms: ['a-command-name-of-20b'] }), ['comms.0: a command name has at most 15 bytes: the kernel truncates longer names']);
  assert.deepEqual(issues({ pids: [1, 1] }), ['pids.1: 1 is listed twice']);
  assert.deepEqual(issues({ cgroups: ['system.slice'] }), ['cgroups.0: expected a cgroup v2 path starting with "/", e.g. "/system.slice"']);
  assert.deepEqual(issues({ collection_interval: 10 }), ['collection_interval: expected a duration such as "10s" or "500ms", got number 10']);
});

test('a missing cgroup in the filter fails start with its path', async () => {
  const receiver = create({ cgroups: ['/no-such-cgroup-ebpf-collector-tcp'] });
  await assert.rejects(receiver.start(testHost()), /cgroup "\/no-such-cgroup-ebpf-collector-tcp" not found/);
  await receiver.shutdown();
});

test('N connects to listeners on 127.0.0.1 and ::1 add exactly N to the duration count of each, with pid and comm when aggregated by', async () => {
  const connects = 40;
  const sink = new MetricsSink();
  const clients = [await startClient('127.0.0.1', 'listen', connects), await startClient('::1', 'listen', connects)];
  const outcomes = await record(clients, { aggregate_by: ['cgroup', 'pid', 'comm'] }, sink);
  assert.deepEqual(outcomes, [{ ok: connects }, { ok: connects }]);

  for (const [client, dst_ip] of [[clients[0], '127.0.0.1'], [clients[1], '::1']] as const) {
    assert.equal(histogramCount(sink, { dst_ip }), connects, `connects to ${dst_ip}`);
    assert.equal(histogramCount(sink, { dst_ip, pid: String(client.pid), comm: client.comm }), connects, `connects to ${dst_ip} labelled with the client`);
  }
  assert.equal(failures(sink, {}), 0);
  for (const metric of sink.batches.flatMap((batch) => batch.metrics))
    if (metric.name === 'ebpf_network_connect_duration_seconds' && metric.type === 'histogram')
      for (const point of metric.points) assert.ok(point.sum > 0 && point.sum < point.count * 0.5, `loopback connects took ${point.sum} s for ${point.count}`);
  for (const attributes of allAttributes(sink)) assert.deepEqual(Object.keys(attributes).sort(), ['comm', 'container', 'dst_ip', 'namespace', 'pid', 'pod']);
});

test('M refused connects, blocking, non-blocking or asked again, are M ECONNREFUSED failures and M resets received, counted once, only for the filtered pids', async () => {
  const refused = 25;
  const sink = new MetricsSink();
  const clients = [
    await startClient('127.0.0.1', CLOSED_PORT, refused),
    await startClient('::1', CLOSED_PORT, refused, 'nonblocking'),
    await startClient('::1', CLOSED_PORT, refused, 'reconnect'),
  ];
  const unwatched = await startClient('127.0.0.1', CLOSED_PORT, 10);
  const [outcomes] = await Promise.all([record(clients, {}, sink), unwatched.go()]);
  assert.deepEqual(outcomes, [{ ECONNREFUSED: refused }, { ECONNREFUSED: refused }, { ECONNREFUSED: refused }]);

  for (const [dst_ip, expected] of [['127.0.0.1', refused], ['::1', 2 * refused]] as const) {
    assert.equal(failures(sink, { dst_ip, error: 'ECONNREFUSED' }), expected, `refused connects to ${dst_ip}`);
    assert.equal(sink.total('ebpf_network_tcp_resets_received_total', { dst_ip }), expected, `resets from ${dst_ip}`);
    assert.equal(histogramCount(sink, { dst_ip }), 0);
  }
  assert.equal(failures(sink, {}), 3 * refused, 'no other failure');
  for (const attributes of allAttributes(sink)) assert.ok(!('pid' in attributes) && !('comm' in attributes), `pid and comm are not labels by default: ${JSON.stringify(attributes)}`);
});

/** The namespace's own count of retransmitted segments (Tcp: RetransSegs in /proc/net/snmp), which only this file's clients add to. */
function retransmittedSegments(): number {
  const snmp = spawnSync('ip', ['netns', 'exec', network.name, 'cat', '/proc/net/snmp'], { encoding: 'utf8' }).stdout;
  const [names, values] = snmp.split('\n').filter((line) => line.startsWith('Tcp:')).map((line) => line.split(/\s+/));
  return Number(values[names.indexOf('RetransSegs')]);
}

test('a connect whose SYNs are dropped is one ETIMEDOUT failure with its SYN retransmits, on IPv4 and IPv6, attributed to the connecting pod and pid though the timer ends it', async () => {
  const mount = cgroup2Mount();
  assert.ok(mount, 'no cgroup v2 hierarchy mounted');
  const parent = `/ebpf-collector-tcp-test-${process.pid}`;
  const podUid = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b';
  const pod = `${parent}/kubepods-besteffort-pod${podUid.replaceAll('-', '_')}.slice`;
  mkdirSync(join(mount, pod), { recursive: true });
  const sink = new MetricsSink();
  try {
    const clients = [await startClient('127.0.0.1', DROPPED_PORT, 1), await startClient('::1', DROPPED_PORT, 1)];
    for (const client of clients) writeFileSync(join(mount, pod, 'cgroup.procs'), String(client.pid));
    const retransmittedBefore = retransmittedSegments();
    const outcomes = await record(clients, { aggregate_by: ['cgroup', 'pid'] }, sink);
    const retransmitted = retransmittedSegments() - retransmittedBefore;
    assert.deepEqual(outcomes, [{ ETIMEDOUT: 1 }, { ETIMEDOUT: 1 }]);
    assert.ok(retransmitted >= 2, `the kernel retransmitted ${retransmitted} SYNs`);
    for (const [client, dst_ip] of [[clients[0], '127.0.0.1'], [clients[1], '::1']] as const) {
      const connector = { dst_ip, pod: podUid, pid: String(client.pid) };
      assert.equal(failures(sink, { ...connector, error: 'ETIMEDOUT' }), 1, `timed-out connects to ${dst_ip}`);
      assert.ok(sink.total('ebpf_network_tcp_retransmits_total', connector) >= 1, `SYN retransmits to ${dst_ip}`);
    }
    assert.equal(sink.total('ebpf_network_tcp_retransmits_total', { pod: podUid }), retransmitted, 'every retransmit the namespace counted');
    assert.equal(failures(sink, {}), 2);
  } finally {
    await network.stopClients(); // a cgroup with processes cannot be removed
    rmdirSync(join(mount, pod));
    rmdirSync(join(mount, parent));
  }
});

test('connects that fail inside connect() before any SYN are counted once with their errno', async () => {
  const unreachable = 3;
  const sink = new MetricsSink();
  const clients = [await startClient(UNROUTED_V4[0], 80, unreachable), await startClient(UNROUTED_V6, 80, unreachable)];
  const outcomes = await record(clients, {}, sink);
  assert.deepEqual(outcomes, [{ ENETUNREACH: unreachable }, { ENETUNREACH: unreachable }]);
  assert.equal(failures(sink, { dst_ip: UNROUTED_V4[0], error: 'ENETUNREACH' }), unreachable);
  assert.equal(failures(sink, { dst_ip: UNROUTED_V6, error: 'ENETUNREACH' }), unreachable);
  assert.equal(failures(sink, {}), 2 * unreachable);
});

test('destinations past max_destinations fold into dst_ip="[other]" and are counted as dropped', async () => {
  const telemetry = new SelfTelemetry();
  const settings = { ...testSettings('receiver', 'tcp'), telemetry: telemetry.forComponent('receiver', 'tcp') };
  const sink = new MetricsSink();
  const clients = await Promise.all(UNROUTED_V4.map((host) => startClient(host, 80, 2)));
  await record(clients, { max_destinations: 2 }, sink, settings);

  const named = UNROUTED_V4.filter((dst_ip) => failures(sink, { dst_ip }) > 0);
  assert.equal(named.length, 2, `destinations with their own series: ${named.join(', ')}`);
  for (const dst_ip of named) assert.equal(failures(sink, { dst_ip, error: 'ENETUNREACH' }), 2);
  assert.equal(failures(sink, { dst_ip: OTHER_DESTINATIONS, error: 'ENETUNREACH' }), 2);
  assert.equal(await selfMetric(telemetry, 'ebpf_collector_dropped_items_total', { reason: 'destination_cap' }), 2, 'the folded failures are counted as dropped');
});
