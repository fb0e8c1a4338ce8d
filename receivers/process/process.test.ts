import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { MetricsSink, testHost, testLifecycle, testSettings } from '../../test/support/components.js';
import { processReceiverFactory } from './factory.js';

const config = processReceiverFactory.configSchema.parse({ collection_interval: '200ms' });

function create(sink = new MetricsSink()) {
  return processReceiverFactory.create(testSettings('receiver', 'process'), config, { metrics: sink });
}

testLifecycle(() => create());


test('counts real execs by comm and keeps the live process table', async () => {
  const sink = new MetricsSink();
  const host = testHost();
  const receiver = create(sink);
  await receiver.start(host);
  try {
    for (let i = 0; i < 20; i++) spawnSync('/bin/true');
    const child = spawn('sleep', ['0.8']);
    const sleeper = child.pid!;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const inTable = () => host.processes.list().find((p) => p.pid === sleeper);
    assert.equal(inTable()?.comm, 'sleep', 'a process that exec\'d after attach is in the table');
    assert.equal(inTable()?.executable, '/usr/bin/sleep');
    assert.ok(host.processes.list().some((p) => p.pid === process.pid), 'processes from before attach are seeded');
    await exited;
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(inTable(), undefined, 'an exited process leaves the table');
  } finally {
    // shutdown flushes the last interval, so nothing counted is lost
    await receiver.shutdown();
  }
  assert.ok(sink.total('ebpf_process_exec_total', { comm: 'true' }) >= 20, `saw ${sink.total('ebpf_process_exec_total', { comm: 'true' })}`);
  assert.ok(sink.batches.every((b) => b.endTimeMs >= b.startTimeMs));
});
