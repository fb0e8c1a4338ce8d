/**
 * End to end through the CLI: the dns receiver counts the queries the test
 * makes in its own network namespace (dnsmasq, a server that never answers,
 * dig and glibc's getaddrinfo as clients), the Prometheus scrape shows them by
 * domain and failure reason with promtool finding nothing wrong, and a clean
 * stop leaves no program of ours. Bad config is refused with its path.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertRefusedByValidate, sampleValue, scrapeUntil, startScrapedCollector } from '../support/collector.js';
import { assertPromtoolClean } from '../support/exposition.js';
import { dig, DnsNamespace, getent, sendMalformed, SERVER_V4, SILENT_SERVER } from '../../receivers/dns/testdata/dns-network.js';

const RUN = `e${process.pid}`;
let network: DnsNamespace;

before(async () => {
  network = DnsNamespace.create(`dns-e2e-${process.pid}`, ['10.53.0.1/24', '10.53.0.2/24', 'fd53::1/64'], SERVER_V4);
  await network.startDnsmasq(`/tmp/dns-e2e-${process.pid}.pid`);
  await network.startSilentServer(SILENT_SERVER);
});

after(() => network?.destroy());

test('queries by dig and getaddrinfo are scraped by domain and reason, exactly, and promtool finds the exposition clean', async () => {
  const { collector, metricsPort } = await startScrapedCollector({ dns: { collection_interval: '300ms', timeout: '1s' } });
  try {
    const ours = collector.programIds();
    assert.ok(ours.length >= 4, `expected the four dns programs to be loaded, found ${JSON.stringify(ours)}`);

    const ok = `dig-${RUN}.ok.test`;
    const gai = `getent-${RUN}.ok.test`;
    const nx = `dig-${RUN}.nx.test`;
    const refused = `getent-${RUN}.refused.example`;
    const silent = `dig-${RUN}.silent.example`;
    await dig(network, SERVER_V4, ok, 4);
    await getent(network, gai, 3);
    await dig(network, SERVER_V4, nx, 2);
    await getent(network, refused, 1);
    await dig(network, SILENT_SERVER, silent, 2);
    const malformed = await sendMalformed(network, SERVER_V4);

    const count = (text: string, domain: string) => sampleValue(text, 'ebpf_dns_query_duration_seconds_count', { domain });
    const failed = (text: string, domain: string, reason: string) => sampleValue(text, 'ebpf_dns_query_failures_total', { domain, reason });
    const exposition = await scrapeUntil(metricsPort, 'every query to be scraped', 20_000, (text) => {
      const lost = sampleValue(text, 'ebpf_collector_dropped_items_total', { component: 'dns', reason: 'malformed_packet' });
      return count(text, ok) >= 4 && count(text, gai) >= 3 && failed(text, silent, 'timeout') >= 2 && failed(text, refused, 'REFUSED') >= 1 && lost >= malformed;
    });
    assert.equal(count(exposition, ok), 4, 'dig: one per query');
    assert.equal(count(exposition, gai), 3, 'getaddrinfo: one per call, not per A and AAAA query');
    assert.equal(count(exposition, nx), 2, 'answered failures are in the histogram');
    assert.equal(failed(exposition, nx, 'NXDOMAIN'), 2);
    assert.equal(failed(exposition, refused, 'REFUSED'), 1);
    assert.equal(count(exposition, silent), 0, 'timeouts are not in the histogram');
    assert.equal(failed(exposition, silent, 'timeout'), 2);
    assert.equal(sampleValue(exposition, 'ebpf_dns_query_failures_total', { domain: ok }), 0);
    assert.equal(sampleValue(exposition, 'ebpf_collector_dropped_items_total', { component: 'dns', reason: 'malformed_packet' }), malformed);
    assert.match(exposition, /# TYPE ebpf_dns_query_duration_seconds histogram/);
    assert.match(exposition, new RegExp(`ebpf_dns_query_duration_seconds_count\\{domain="${ok.replaceAll('.', '\\.')}",pod="",namespace="",container=""`));
    assertPromtoolClean(exposition);

    assert.deepEqual(
      await collector.statuses(),
      [
        ['exporter', 'prometheus', 'ok'],
        ['receiver', 'dns', 'ok'],
      ],
    );
    await collector.stopAndExpectReleased();
  } finally {
    await collector.stop();
  }
});

test('bad dns config is refused by `validate` with exit status 2, naming each path', () => {
  assertRefusedByValidate(
    { dns: { port: 0, timeout: 'soon', aggregate_by: ['tid'] } },
    [
      /receivers::dns::port: must be at least 1, got number 0/,
      /receivers::dns::timeout: expected a duration such as "10s" or "500ms", got string "soon"/,
      /receivers::dns::aggregate_by::0: must be one of cgroup, pid, comm, got string "tid"/,
    ],
  );
});
