/**
 * The CLI's life and death: /healthz of a normal collector, a shutdown past
 * its deadline, and errors nobody caught. The faults come from a test-only
 * exporter (collector/testing/faults.ts) that the test entrypoint
 * (collector/testing/cli.ts) adds to the product's components; the rest is
 * the product: the CLI, the process receiver's BPF programs, the shutdown.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { Health } from '../../collector/status.js';
import { eventually, kernelBpfState, RunningCollector, startScrapedCollector } from '../support/collector.js';

const TEST_CLI = fileURLToPath(new URL('../../collector/testing/cli.js', import.meta.url));

/** Starts the test entrypoint in the launcher's place (RunningCollector's wrapper gets the launcher's arguments after it). */
function startTestCli(yaml: string): Promise<RunningCollector> {
  return RunningCollector.start(yaml, ['/bin/sh', '-c', `exec "${process.execPath}" "${TEST_CLI}" "$2" "$3" "$4"`, 'sh']);
}

/** The process receiver into the faulty exporter, whose first batch comes one `interval` after start. */
function faultyPipeline(fault: string, interval: string, service: Record<string, unknown> = {}): string {
  return stringify({
    receivers: { process: { collection_interval: interval } },
    exporters: { faulty: { fault } },
    service: {
      ...service,
      http: { endpoint: '127.0.0.1:HTTP_PORT' },
      telemetry: { logs: { level: 'debug' } },
      pipelines: { metrics: { receivers: ['process'], exporters: ['faulty'] } },
    },
  });
}

/** The collector's JSON log lines. */
function logLines(stderr: string): Record<string, any>[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
}

async function exitedByItself(collector: RunningCollector, timeoutMs: number): Promise<number | null> {
  await eventually('the collector to exit by itself', timeoutMs, async () => (existsSync(`/proc/${collector.pid}`) ? undefined : true));
  return collector.stop();
}

async function expectProgramsReleased(programs: Set<number>): Promise<void> {
  await eventually('the kernel to release our programs and links', 3000, async () => {
    const state = kernelBpfState();
    return state.progs.some((p) => programs.has(p.id)) || state.links.some((l) => programs.has(l.prog_id)) ? undefined : true;
  });
}

test('a normal collector answers /healthz with 200 and each receiver\'s last collection', async () => {
  const { collector } = await startScrapedCollector({ process: { collection_interval: '1s' } });
  try {
    const startedAt = Date.now();
    const health = await eventually('a collection after start on /healthz', 10_000, async () => {
      const response = await fetch(`${collector.statusUrl}/healthz`);
      const body = (await response.json()) as Health;
      assert.equal(response.status, 200, JSON.stringify(body));
      const last = body.receivers[0]?.lastCollection;
      return last && Date.parse(last) > startedAt ? body : undefined;
    });
    assert.equal(health.healthy, true);
    assert.deepEqual(health.failed, []);
    assert.deepEqual(
      health.receivers.map(({ id, status }) => [id, status]),
      [['process', 'ok']],
    );
  } finally {
    await collector.stopAndExpectReleased();
  }
});

test('a shutdown past service::shutdown_timeout exits with 1 within the deadline, naming the component that had not stopped', async () => {
  const collector = await startTestCli(faultyPipeline('shutdown_never_ends', '1s', { shutdown_timeout: '2s' }));
  const programs = new Set(collector.programIds());
  assert.ok(programs.size > 0, 'the collector holds no BPF program');
  const stopping = Date.now();
  const code = await collector.stop();
  const tookMs = Date.now() - stopping;
  assert.equal(code, 1, collector.stderr);
  assert.ok(tookMs >= 2000 && tookMs < 2000 + 3000, `exited ${tookMs} ms after SIGTERM, with a 2 s deadline`);
  const overdue = logLines(collector.stderr).find((line) => /shutdown did not finish within service::shutdown_timeout/.test(line.msg));
  assert.ok(overdue, collector.stderr);
  assert.deepEqual(overdue.notStopped, ['exporter "faulty" (stopping)']);
  // The receiver stopped before the exporter was reached; the exit would have released its links anyway.
  await expectProgramsReleased(programs);
});

test('a shutdown past its deadline exits with 1 even with a thread stuck in a system call, which would hang Node\'s exit', async () => {
  const collector = await startTestCli(faultyPipeline('shutdown_blocks_a_thread', '1s', { shutdown_timeout: '1s' }));
  const programs = new Set(collector.programIds());
  const stopping = Date.now();
  const code = await collector.stop();
  const tookMs = Date.now() - stopping;
  // Node's exit would wait for its thread pool, where one thread is still in open() on a FIFO: _exit does not.
  assert.equal(code, 1, collector.stderr);
  assert.ok(tookMs >= 1000 && tookMs < 1000 + 3000, `exited ${tookMs} ms after SIGTERM, with a 1 s deadline`);
  assert.match(collector.stderr, /still stopping: exporter \\"faulty\\" \(stopping\); exiting anyway/);
  await expectProgramsReleased(programs);
});

for (const [fault, message, logged] of [
  ['uncaught_exception', 'faulty exporter: thrown in a callback', 'uncaught exception: shutting down'],
  ['unhandled_rejection', 'faulty exporter: a rejection nobody handles', 'unhandled promise rejection: shutting down'],
] as const) {
  test(`an error nobody caught (${fault.replace('_', ' ')}) is logged as fatal, the collector shuts down cleanly and exits with 1`, async () => {
    // Time enough to see it started (and take its program ids) before the fault.
    const collector = await startTestCli(faultyPipeline(fault, '3s'));
    const programs = new Set(collector.programIds());
    assert.ok(programs.size > 0, 'the collector holds no BPF program');
    // The first batch arrives after one collection_interval; the fault follows it.
    assert.equal(await exitedByItself(collector, 15_000), 1, collector.stderr);
    const lines = logLines(collector.stderr);
    const fatal = lines.findIndex((line) => line.level === 60);
    assert.ok(fatal >= 0, `nothing logged as fatal:\n${collector.stderr}`);
    assert.equal(lines[fatal].msg, logged);
    assert.equal(lines[fatal].err.message, message);
    assert.match(lines[fatal].err.stack, /faults\.js/);
    // After it, every component stopped, in order (the receiver's BPF links first), and the CLI said so.
    const after = lines.slice(fatal + 1);
    const stopped = after.filter((line) => line.status === 'stopped').map((line) => `${line.kind} ${line.component}`);
    assert.deepEqual(stopped, ['receiver process', 'exporter faulty']);
    assert.equal(after.at(-1)!.msg, 'stopped');
    await expectProgramsReleased(programs);
  });
}
