import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { configIssues, MetricsSink, testHost, testLifecycle, testSettings } from '../../test/support/components.js';
import { eventually } from '../../test/support/collector.js';
import { tlsReceiverFactory } from './factory.js';
import { inspectOpenssl, RefusedBinary } from './openssl-layout.js';
import { OTHER_SERVER_NAME } from './receiver.js';
import { buildFakeOpenssl, TlsFixture } from './testdata/tls-workloads.js';

const DURATION = 'ebpf_tls_handshake_duration_seconds';
const FAILURES = 'ebpf_tls_handshake_failures_total';

let fixture: TlsFixture;
before(() => {
  fixture = TlsFixture.create();
});
after(async () => {
  await fixture?.cleanup();
});

/** A receiver that keeps series apart by pid, so that a test counts only the processes it started. */
function create(config: Record<string, unknown> = {}, sink = new MetricsSink(), settings = testSettings('receiver', 'tls')) {
  const parsed = tlsReceiverFactory.configSchema.parse({ collection_interval: '200ms', aggregate_by: ['cgroup', 'pid'], ...config });
  return tlsReceiverFactory.create(settings, parsed, { metrics: sink });
}

/** Handshakes in the duration histograms of these pids whose labels include `attributes`. */
function handshakes(sink: MetricsSink, pids: number[], attributes: Record<string, string>): number {
  let count = 0;
  for (const batch of sink.batches)
    for (const metric of batch.metrics)
      if (metric.name === DURATION && metric.type === 'histogram')
        for (const point of metric.points)
          if (pids.map(String).includes(point.attributes.pid as string) && Object.entries(attributes).every(([k, v]) => point.attributes[k] === v)) count += point.count;
  return count;
}

function failures(sink: MetricsSink, pids: number[], attributes: Record<string, string>): number {
  return pids.reduce((total, pid) => total + sink.total(FAILURES, { ...attributes, pid: String(pid) }), 0);
}

testLifecycle(() => create());

test('bad config values are errors that name their path', () => {
  const issues = (config: unknown) => configIssues(tlsReceiverFactory, config);
  assert.match(issues({ libraries: [] }).join('\n'), /Unrecognized key\(s\) in object: 'libraries'/);
  assert.deepEqual(issues({ binaries: ['usr/bin/node'] }), ['binaries.0: expected an absolute path']);
  assert.deepEqual(issues({ binaries: ['/usr/bin/node', '/usr/bin/node'] }), ['binaries.1: "/usr/bin/node" is listed twice']);
  assert.deepEqual(issues({ aggregate_by: ['tid'] }), ["aggregate_by.0: Invalid enum value. Expected 'cgroup' | 'pid' | 'comm', received 'tid'"]);
  assert.deepEqual(issues({ max_server_names: 0 }), ['max_server_names: Number must be greater than or equal to 1']);
  assert.deepEqual(issues({ collection_interval: '1h1s' }), ['collection_interval: must be between 100ms and 3600s, got "1h1s"']);
});

test("the layout read from libssl.so.3's accessors is the one node's embedded OpenSSL 3.0 has", () => {
  const libssl = inspectOpenssl('/usr/lib/x86_64-linux-gnu/libssl.so.3');
  const node = inspectOpenssl(process.execPath);
  assert.match(libssl!.version, /^3\.0\.\d+$/);
  assert.equal(node!.version, process.versions.openssl.replace(/[a-z+].*$/, ''));
  assert.deepEqual(libssl!.layout, node!.layout);
  assert.equal(inspectOpenssl('/usr/lib/x86_64-linux-gnu/libcrypto.so.3')!.layout, undefined, 'libcrypto has no SSL struct, only errors to probe');
  assert.equal(inspectOpenssl('/bin/true'), undefined, 'a binary without OpenSSL is not one');
});

test('curl and node https clients: each handshake counted once under its SNI name, on the client side', async () => {
  const [a, b] = fixture.names;
  const server = await fixture.opensslServer();
  const sink = new MetricsSink();
  const receiver = create({}, sink);
  await receiver.start(testHost());
  const curlA: number[] = [];
  const curlB: number[] = [];
  let nodePid = 0;
  try {
    for (let i = 0; i < 5; i++) curlA.push(fixture.curl(a, server.port).pid);
    for (let i = 0; i < 3; i++) curlB.push(fixture.curl(b, server.port).pid);
    const node = fixture.nodeClient(a, server.port, 4);
    assert.deepEqual(node.errors, []);
    nodePid = node.pid;
  } finally {
    await receiver.shutdown(); // flushes the last interval: every handshake was judged before its client exited
  }
  assert.equal(handshakes(sink, curlA, { server_name: a, side: 'client' }), 5, 'curl handshakes with a');
  assert.equal(handshakes(sink, curlB, { server_name: b, side: 'client' }), 3, 'curl handshakes with b');
  assert.equal(handshakes(sink, [nodePid], { server_name: a, side: 'client' }), 4, 'node handshakes with a');
  assert.equal(handshakes(sink, [...curlA, ...curlB, nodePid], {}), 12, 'no other series for these processes');
  assert.equal(failures(sink, [...curlA, ...curlB, nodePid], {}), 0);
  for (const batch of sink.batches)
    for (const metric of batch.metrics) {
      for (const point of metric.points)
        assert.deepEqual(Object.keys(point.attributes).sort(), [...(metric.name === FAILURES ? ['reason'] : []), 'container', 'namespace', 'pid', 'pod', 'server_name', 'side'].sort());
      if (metric.type === 'histogram')
        for (const point of metric.points.filter((p) => p.attributes.pid === String(nodePid))) assert.ok(point.sum > 0 && point.sum < 4 * 5, `4 handshakes took ${point.sum} s`);
    }
});

test('a refused certificate (curl, node) and a protocol version mismatch are failures with their reason', async () => {
  const [a] = fixture.names;
  const server = await fixture.opensslServer();
  const tls13Only = await fixture.opensslServer(['-tls1_3']);
  const sink = new MetricsSink();
  const receiver = create({}, sink);
  await receiver.start(testHost());
  const curlUntrusted: number[] = [];
  const curlTls12: number[] = [];
  let nodePid = 0;
  let nodeTls12Pid = 0;
  try {
    for (let i = 0; i < 2; i++) curlUntrusted.push(fixture.curl(a, server.port, { ca: false }).pid);
    for (let i = 0; i < 2; i++) curlTls12.push(fixture.curl(a, tls13Only.port, { extra: ['--tls-max', '1.2'] }).pid);
    const node = fixture.nodeClient(a, server.port, 3, { ca: false });
    assert.deepEqual(node.errors, Array(3).fill('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'node refuses the certificate in JavaScript');
    nodePid = node.pid;
    const nodeTls12 = fixture.nodeClient(a, tls13Only.port, 2, { maxVersion: 'TLSv1.2' });
    assert.equal(nodeTls12.errors.length, 2);
    nodeTls12Pid = nodeTls12.pid;
  } finally {
    await receiver.shutdown();
  }
  const client = { server_name: a, side: 'client' };
  assert.equal(failures(sink, curlUntrusted, { ...client, reason: 'certificate_verify_failed' }), 2);
  assert.equal(failures(sink, [nodePid], { ...client, reason: 'unable_to_verify_leaf_signature' }), 3);
  assert.equal(failures(sink, curlTls12, { ...client, reason: 'protocol_version' }), 2);
  assert.equal(failures(sink, [nodeTls12Pid], { ...client, reason: 'protocol_version' }), 2, "node's own OpenSSL names the alert too");
  const all = [...curlUntrusted, ...curlTls12, nodePid, nodeTls12Pid];
  assert.equal(failures(sink, all, {}), 9, 'no other failures for these processes');
  assert.equal(handshakes(sink, all, client), 9, 'failed handshakes are in the duration histogram too');
});

test('a node https server handshaking with curl is counted on the server side, with the SNI it was asked for', async () => {
  const [a] = fixture.names;
  const server = await fixture.nodeServer();
  const sink = new MetricsSink();
  const receiver = create({}, sink);
  await receiver.start(testHost());
  const clients: number[] = [];
  try {
    for (let i = 0; i < 3; i++) clients.push(fixture.curl(a, server.port).pid);
    await eventually('the server side of 3 handshakes', 10_000, async () => (handshakes(sink, [server.pid], { side: 'server' }) >= 3 ? true : undefined));
  } finally {
    await receiver.shutdown();
  }
  assert.equal(handshakes(sink, [server.pid], { server_name: a, side: 'server' }), 3);
  assert.equal(handshakes(sink, clients, { server_name: a, side: 'client' }), 3);
  assert.equal(failures(sink, [server.pid, ...clients], {}), 0);
});

test('binaries that are not OpenSSL 3.0 are refused by name in the status, and the others keep being probed', async () => {
  const [a] = fixture.names;
  const directory = mkdtempSync(join(tmpdir(), 'ebpf-tls-fake-'));
  try {
    const otherCode = buildFakeOpenssl(directory, '0x30000130'); // says 3.0.19, but its accessors are not OpenSSL's
    const otherVersion = buildFakeOpenssl(directory, '0x30100000'); // 3.1.0
    assert.throws(() => inspectOpenssl(otherCode), (error) => error instanceof RefusedBinary && /^SSL_get_state: unexpected memory operand not based on %rdi/.test(error.message));
    assert.throws(() => inspectOpenssl(otherVersion), (error) => error instanceof RefusedBinary && /^OpenSSL 3\.1\.0 \(0x30100000\): only 3\.0\.x is known$/.test(error.message));

    const missing = join(directory, 'libssl-missing.so.3');
    const server = await fixture.opensslServer();
    const sink = new MetricsSink();
    const settings = testSettings('receiver', 'tls');
    const receiver = create({ binaries: [otherCode, otherVersion, missing, '/bin/true'] }, sink, settings);
    await receiver.start(testHost());
    let curl = 0;
    try {
      await sleep(10); // the status is reported right after start
      const [status] = settings.statuses.snapshot();
      assert.equal(status.status, 'recoverable_error');
      assert.match(status.message!, new RegExp(`not probing ${otherCode}: SSL_get_state: unexpected memory operand`));
      assert.match(status.message!, new RegExp(`not probing ${otherVersion}: OpenSSL 3\\.1\\.0 \\(0x30100000\\): only 3\\.0\\.x is known`));
      assert.match(status.message!, new RegExp(`not probing ${missing}: not found`));
      assert.match(status.message!, /not probing \/bin\/true: exports neither libssl's SSL_read and SSL_write nor libcrypto's OpenSSL_version_num and ERR_set_error/);
      curl = fixture.curl(a, server.port).pid;
    } finally {
      await receiver.shutdown();
    }
    assert.equal(handshakes(sink, [curl], { server_name: a, side: 'client' }), 1, 'libssl is still probed');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('a library replaced on disk (a new inode at the same path) is attached again', async () => {
  const [a] = fixture.names;
  const directory = mkdtempSync(join(tmpdir(), 'ebpf-tls-upgrade-'));
  const system = '/usr/lib/x86_64-linux-gnu';
  const library = join(directory, 'libssl.so.3');
  const install = () => {
    copyFileSync(join(system, 'libssl.so.3'), `${library}.new`);
    renameSync(`${library}.new`, library); // as a package upgrade does: the old inode lives on where it is mapped
  };
  try {
    install();
    symlinkSync(join(system, 'libcrypto.so.3'), join(directory, 'libcrypto.so.3'));
    const server = await fixture.opensslServer();
    const sink = new MetricsSink();
    // Only the configured copy and the system's libraries: processes are not searched, so only the path finds the new inode.
    const receiver = create({ binaries: [library], discover_processes: false }, sink);
    await receiver.start(testHost());
    const curl = () => fixture.curl(a, server.port, { env: { LD_LIBRARY_PATH: directory } }).pid;
    const before: number[] = [];
    const after: number[] = [];
    try {
      for (let i = 0; i < 2; i++) before.push(curl());
      const inode = statSync(library).ino;
      install();
      assert.notEqual(statSync(library).ino, inode);
      await sleep(600); // a few intervals: each looks at the path again
      for (let i = 0; i < 3; i++) after.push(curl());
    } finally {
      await receiver.shutdown();
    }
    assert.equal(handshakes(sink, before, { server_name: a, side: 'client' }), 2, 'curl on the first copy');
    assert.equal(handshakes(sink, after, { server_name: a, side: 'client' }), 3, 'curl on the replaced copy');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('server names past max_server_names are counted as "[other]"', async () => {
  const [a, b] = fixture.names;
  const server = await fixture.opensslServer();
  const sink = new MetricsSink();
  const receiver = create({ max_server_names: 1 }, sink);
  await receiver.start(testHost());
  let first = 0;
  let second = 0;
  try {
    first = fixture.curl(a, server.port).pid;
    // Once a's handshake is read, the one place is taken (by a, or by a name another process on this machine used first).
    await eventually('the first handshake to be read', 10_000, async () => (handshakes(sink, [first], {}) === 1 ? true : undefined));
    second = fixture.curl(b, server.port).pid;
  } finally {
    await receiver.shutdown();
  }
  assert.equal(handshakes(sink, [first], { server_name: a }) + handshakes(sink, [first], { server_name: OTHER_SERVER_NAME }), 1);
  assert.equal(handshakes(sink, [second], { server_name: OTHER_SERVER_NAME }), 1);
  assert.equal(handshakes(sink, [second], { server_name: b }), 0);
});
