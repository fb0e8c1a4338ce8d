/** JIT frames named from perf map files: node --perf-basic-prof, and a map written while the profile runs. */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProfileBatch } from '../../collector/data/profiles.js';
import { ProfilesSink, testHost, testSettings } from '../../test/support/components.js';
import { symbolizerProcessorFactory } from './factory.js';
import { fixtureBatch, startProgram, testdata } from './testing/test-programs.js';

function createProcessor(config: Record<string, unknown> = {}) {
  const sink = new ProfilesSink();
  const processor = symbolizerProcessorFactory.create(testSettings('processor', 'symbolizer'), symbolizerProcessorFactory.configSchema.parse(config), 'profiles', sink);
  return { processor, sink };
}

async function symbolizeOnce(batch: ProfileBatch, config: Record<string, unknown> = {}): Promise<ProfileBatch> {
  const { processor, sink } = createProcessor(config);
  await processor.start(testHost());
  await processor.consume(batch);
  await processor.shutdown();
  return sink.batches[0];
}

test('node --perf-basic-prof: an optimized JavaScript function is named from /tmp/perf-PID.map', async () => {
  const program = await startProgram(process.execPath, ['--perf-basic-prof', testdata('hot.js')], process.execPath);
  const perfMap = `/tmp/perf-${program.pid}.map`;
  try {
    let entry: string[] | undefined;
    for (let i = 0; i < 300 && !entry; i++) {
      await sleep(20);
      if (!existsSync(perfMap)) continue;
      entry = readFileSync(perfMap, 'utf8')
        .split('\n')
        .find((l) => l.includes(' JS:*hotFunctionForSymbolizer '))
        ?.split(' ');
    }
    assert.ok(entry, 'V8 optimized the hot function and wrote it to the perf map');
    const [start, size, ...name] = entry;
    const address = BigInt(`0x${start}`) + BigInt(`0x${size}`) / 2n;
    const batch = await symbolizeOnce(fixtureBatch([{ pid: program.pid, frames: [{ kind: 'user', address }] }]));
    const [frame] = batch.samples[0].frames;
    assert.equal(frame.functionName, name.join(' '));
    assert.match(frame.functionName!, /hotFunctionForSymbolizer .*hot\.js:\d+:\d+$/);
    assert.equal(frame.mapping?.path, '[jit]', 'V8 code lives in anonymous executable memory');

    const disabled = await symbolizeOnce(fixtureBatch([{ pid: program.pid, frames: [{ kind: 'user', address }] }]), { perf_maps: false });
    assert.equal(disabled.samples[0].frames[0].functionName, undefined, 'perf_maps: false leaves JIT frames unnamed');
  } finally {
    await program.stop();
    rmSync(perfMap, { force: true });
  }
});

test('a perf map that grows is re-read, and a later entry for reused code wins', async () => {
  // This process's own perf map, written by the test as a JIT would. Addresses below
  // mmap_min_addr are never mapped, so the symbolizer looks them up in the perf map.
  const perfMap = `/tmp/perf-${process.pid}.map`;
  assert.equal(existsSync(perfMap), false, 'the test runner writes no perf map of its own');
  const { processor, sink } = createProcessor();
  await processor.start(testHost());
  const frames = () => [{ kind: 'user' as const, address: 0x1010n }, { kind: 'user' as const, address: 0x2010n }];
  try {
    writeFileSync(perfMap, '1000 100 first_function\n2000 1');
    await processor.consume(fixtureBatch([{ pid: process.pid, frames: frames() }]));
    appendFileSync(perfMap, '00 second_function\n1000 80 recompiled_first\n');
    await processor.consume(fixtureBatch([{ pid: process.pid, frames: frames() }]));
  } finally {
    await processor.shutdown();
    rmSync(perfMap, { force: true });
  }
  // Frame 1 is a return address: it is looked up one byte earlier, still inside.
  assert.deepEqual(sink.batches[0].samples[0].frames.map((f) => f.functionName), ['first_function', undefined], 'a line still being written is not read');
  assert.deepEqual(sink.batches[1].samples[0].frames.map((f) => f.functionName), ['recompiled_first', 'second_function']);
  assert.equal(sink.batches[1].samples[0].frames[0].mapping, undefined, 'the address is in no mapping');
});
