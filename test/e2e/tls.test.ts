/**
 * End to end through the CLI: the tls receiver's uprobes on the system's
 * libssl.so.3 and on node see real curl and node https handshakes with a
 * local `openssl s_server`; a Prometheus scrape shows them by SNI name, side
 * and failure reason, exactly, promtool finds the exposition clean, a binary
 * that is not OpenSSL 3.0 is named in /status while the rest works, and a
 * clean stop leaves no program of ours.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildFakeOpenssl, TlsFixture } from '../../receivers/tls/testdata/tls-workloads.js';
import { assertRefusedByValidate, eventually, sampleValue, scrape, scrapeUntil, startScrapedCollector } from '../support/collector.js';
import { assertPromtoolClean } from '../support/exposition.js';

const COUNT = 'ebpf_tls_handshake_duration_seconds_count';
const FAILURES = 'ebpf_tls_handshake_failures_total';

let fixture: TlsFixture;
let directory: string;
before(() => {
  fixture = TlsFixture.create();
  directory = mkdtempSync(join(tmpdir(), 'tls-e2e-'));
});
after(async () => {
  await fixture?.cleanup();
  rmSync(directory, { recursive: true, force: true });
});

test('curl and node https handshakes are scraped by SNI name, side and reason, exactly; an unknown OpenSSL is named in /status', async () => {
  const [a, b] = fixture.names;
  const fake = buildFakeOpenssl(directory, '0x30100000');
  const server = await fixture.opensslServer();
  const { collector, metricsPort } = await startScrapedCollector({ tls: { collection_interval: '300ms', binaries: [fake] } });
  try {
    const status = await eventually('the refused binary in /status', 10_000, async () => {
      const tls = (await collector.status()).components.find((c) => c.id === 'tls');
      return tls?.status === 'recoverable_error' ? tls : undefined;
    });
    assert.match(status.message!, new RegExp(`not probing ${fake}: OpenSSL 3\\.1\\.0 \\(0x30100000\\): only 3\\.0\\.x is known`));

    const client = (name: string) => ({ server_name: name, side: 'client' });
    for (let i = 0; i < 6; i++) assert.equal(fixture.curl(a, server.port).ok, 1);
    assert.equal(fixture.nodeClient(b, server.port, 4).ok, 4);
    for (let i = 0; i < 2; i++) assert.equal(fixture.curl(a, server.port, { ca: false }).ok, 0);

    await scrapeUntil(metricsPort, '12 handshakes scraped', 15_000, (text) => sampleValue(text, COUNT, client(a)) >= 8 && sampleValue(text, COUNT, client(b)) >= 4);
    await sleep(700); // two more reads: nothing more may arrive
    const exposition = await scrape(metricsPort);
    assert.equal(sampleValue(exposition, COUNT, client(a)), 8, 'curl: 6 handshakes that succeeded and 2 that failed');
    assert.equal(sampleValue(exposition, COUNT, client(b)), 4, 'node: 4 handshakes');
    assert.equal(sampleValue(exposition, FAILURES, { ...client(a), reason: 'certificate_verify_failed' }), 2);
    assert.equal(sampleValue(exposition, FAILURES, client(b)), 0);
    assert.match(exposition, new RegExp(`${COUNT}\\{server_name="${a.replaceAll('.', '\\.')}",side="client",pod="",namespace="",container=""\\} 8`));
    assert.equal(sampleValue(exposition, 'ebpf_collector_dropped_items_total', { component: 'tls', reason: 'unknown_tls_layout' }), 1);
    assertPromtoolClean(exposition);
    await collector.stopAndExpectReleased();
  } finally {
    await collector.stop();
  }
});

test('bad tls config is refused by `validate` with exit status 2, naming each path', () => {
  assertRefusedByValidate(
    { tls: { binaries: ['usr/bin/node'], max_server_names: 0, aggregate_by: ['tid'] } },
    [
      /receivers::tls::binaries::0: expected an absolute path/,
      /receivers::tls::max_server_names: /,
      /receivers::tls::aggregate_by::0: must be one of cgroup, pid, comm, got string "tid"/,
    ],
  );
});
