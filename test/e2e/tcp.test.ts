/**
 * End to end through the CLI: the tcp receiver, filtered to clients the test
 * starts in its own network namespace, counts their connects, refusals,
 * resets and pre-SYN failures exactly; the Prometheus scrape shows them by
 * dst_ip and errno name with promtool finding nothing wrong, and a clean stop
 * leaves no program of ours. Bad config is refused with its path.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { CLOSED_PORT, TcpNamespace, UNROUTED_V4 } from '../../receivers/tcp/testdata/tcp-network.js';
import { assertRefusedByValidate, sampleValue, scrapeUntil, startScrapedCollector } from '../support/collector.js';
import { assertPromtoolClean } from '../support/exposition.js';

let network: TcpNamespace;
before(() => {
  network = TcpNamespace.create(`tcp-e2e-${process.pid}`);
});
after(() => network?.destroy());
afterEach(() => network.stopClients());

test('connects, refusals and connects without a route are scraped by dst_ip and error, exactly, and promtool finds the exposition clean', async () => {
  const connects = 30;
  const refused = 12;
  const unrouted = 3;
  // The clients wait to connect until the collector, filtered to their pids, runs.
  const clients = [
    await network.startClient('127.0.0.1', 'listen', connects),
    await network.startClient('::1', CLOSED_PORT, refused),
    await network.startClient(UNROUTED_V4[0], 80, unrouted),
  ];
  const { collector, metricsPort } = await startScrapedCollector({
    tcp: { collection_interval: '300ms', pids: clients.map((client) => client.pid) },
  });
  try {
    const ours = collector.programIds();
    assert.ok(ours.length >= 4, `expected the four tcp programs to be loaded, found ${JSON.stringify(ours)}`);
    assert.deepEqual(await Promise.all(clients.map((client) => client.go())), [{ ok: connects }, { ECONNREFUSED: refused }, { ENETUNREACH: unrouted }]);

    const count = (text: string) => sampleValue(text, 'ebpf_network_connect_duration_seconds_count', { dst_ip: '127.0.0.1' });
    const failed = (text: string, dst_ip: string, error: string) => sampleValue(text, 'ebpf_network_connect_failures_total', { dst_ip, error });
    const resets = (text: string) => sampleValue(text, 'ebpf_network_tcp_resets_received_total', { dst_ip: '::1' });
    const exposition = await scrapeUntil(
      metricsPort,
      'every connect to be scraped',
      20_000,
      (text) => count(text) >= connects && failed(text, '::1', 'ECONNREFUSED') >= refused && resets(text) >= refused && failed(text, UNROUTED_V4[0], 'ENETUNREACH') >= unrouted,
    );
    assert.equal(count(exposition), connects);
    assert.equal(failed(exposition, '::1', 'ECONNREFUSED'), refused);
    assert.equal(resets(exposition), refused);
    assert.equal(failed(exposition, UNROUTED_V4[0], 'ENETUNREACH'), unrouted);
    const allFailures = exposition
      .split('\n')
      .filter((line) => line.startsWith('ebpf_network_connect_failures_total{'))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    assert.equal(allFailures, refused + unrouted, 'no other failure');
    assert.match(exposition, /# TYPE ebpf_network_connect_duration_seconds histogram/);
    assert.match(exposition, /ebpf_network_connect_duration_seconds_count\{dst_ip="127\.0\.0\.1",pod="",namespace="",container=""/);
    assertPromtoolClean(exposition);
    assert.deepEqual(
      await collector.statuses(),
      [
        ['exporter', 'prometheus', 'ok'],
        ['receiver', 'tcp', 'ok'],
      ],
    );

    await collector.stopAndExpectReleased();
  } finally {
    await collector.stop();
  }
});

test('bad tcp config is refused by `validate` with exit status 2, naming each path', () => {
  assertRefusedByValidate(
    { tcp: { max_destinations: 0, aggregate_by: ['tid'], collection_interval: 'often' } },
    [
      /receivers::tcp::max_destinations: /,
      /receivers::tcp::aggregate_by::0: must be one of cgroup, pid, comm, got string "tid"/,
      /receivers::tcp::collection_interval: expected a duration such as "10s" or "500ms", got string "often"/,
    ],
  );
});
