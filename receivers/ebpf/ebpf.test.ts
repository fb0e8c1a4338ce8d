import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { projectPath } from '../../collector/paths.js';
import { MetricsSink, testHost, testLifecycle, testSettings } from '../../test/support/components.js';
import { ebpfReceiverFactory } from './factory.js';

const config = ebpfReceiverFactory.configSchema.parse({
  object: projectPath('build/test-bpf/getppid_counter.bpf.o'),
  collection_interval: '200ms',
  counters: [
    {
      name: 'test_getppid_calls_total',
      map: 'calls',
      labels: [
        { name: 'comm', size: 16, decoder: 'string' },
        { name: 'pid', size: 4, decoder: 'uint' },
      ],
    },
  ],
});

function create(sink = new MetricsSink()) {
  return ebpfReceiverFactory.create(testSettings('receiver', 'ebpf'), config, { metrics: sink });
}

testLifecycle(() => create());


test('decodes a per-CPU counter map label by label from a real tracepoint', async () => {
  const sink = new MetricsSink();
  const receiver = create(sink);
  await receiver.start(testHost());
  let pid = 0;
  try {
    const child = spawn('python3', ['-c', 'import os\nfor _ in range(5000): os.getppid()']);
    pid = child.pid!;
    await new Promise((resolve) => child.once('exit', resolve));
  } finally {
    await receiver.shutdown();
  }
  assert.equal(sink.total('test_getppid_calls_total', { comm: 'python3', pid: String(pid) }), 5000);
});

test('a map whose key does not match the labels is refused at start with the reason', async () => {
  const bad = { ...config, counters: [{ ...config.counters[0], labels: [{ name: 'comm', size: 16, decoder: 'string' as const }] }] };
  const receiver = ebpfReceiverFactory.create(testSettings('receiver', 'ebpf'), bad, { metrics: new MetricsSink() });
  await assert.rejects(receiver.start(testHost()), {
    message: 'counter test_getppid_calls_total: map "calls" has 20-byte keys but its labels add up to 16 bytes',
  });
  await receiver.shutdown();
});
