/** Kernel frames: real kernel addresses from /proc/kallsyms, including a JIT-compiled BPF program's. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { ProfileBatch } from '../../collector/data/profiles.js';
import { projectPath } from '../../collector/paths.js';
import { BpfObject } from '../../native/index.js';
import { ProfilesSink, testHost, testSettings } from '../../test/support/components.js';
import { symbolizerProcessorFactory } from './factory.js';
import { fixtureBatch } from './test-programs.js';

function kallsymsAddress(name: string, module?: string): bigint {
  const line = readFileSync('/proc/kallsyms', 'utf8')
    .split('\n')
    .find((l) => {
      const [, , symbol, owner] = l.split(/\s+/);
      return symbol === name && owner === (module ? `[${module}]` : undefined);
    });
  if (!line) throw new Error(`/proc/kallsyms has no ${name}`);
  return BigInt(`0x${line.split(' ')[0]}`);
}

async function symbolize(batch: ProfileBatch): Promise<ProfileBatch> {
  const sink = new ProfilesSink();
  const processor = symbolizerProcessorFactory.create(testSettings('processor', 'symbolizer'), symbolizerProcessorFactory.configSchema.parse({}), 'profiles', sink);
  await processor.start(testHost());
  await processor.consume(batch);
  await processor.shutdown();
  return sink.batches[0];
}

test('kernel functions by kallsyms, for the leaf and for return addresses', async () => {
  const ksysRead = kallsymsAddress('ksys_read');
  const openat2 = kallsymsAddress('do_sys_openat2');
  const etext = kallsymsAddress('_etext');
  const batch = await symbolize(
    fixtureBatch([
      {
        pid: 0,
        frames: [
          { kind: 'kernel', address: ksysRead + 8n },
          // return address just past the symbol's first byte: the byte before is still in it
          { kind: 'kernel', address: openat2 + 1n },
          { kind: 'kernel', address: etext + 0x1000n },
        ],
      },
    ]),
  );
  const [read, open, pastText] = batch.samples[0].frames;
  assert.equal(read.functionName, 'ksys_read');
  assert.equal(read.mapping?.path, '[kernel.kallsyms]');
  assert.equal(read.mapping?.start, kallsymsAddress('_stext'));
  assert.equal(read.mapping?.end, etext);
  assert.equal(open.functionName, 'do_sys_openat2');
  assert.equal(pastText.functionName, undefined, 'an address past the kernel text is not given a neighbour\'s name');
  assert.equal(pastText.mapping, undefined);
});

test('a BPF program loaded after the table was read is named from its kallsyms entry, with [bpf] as its module', async () => {
  const sink = new ProfilesSink();
  const processor = symbolizerProcessorFactory.create(testSettings('processor', 'symbolizer'), symbolizerProcessorFactory.configSchema.parse({}), 'profiles', sink);
  await processor.start(testHost());
  const object = BpfObject.open(projectPath('build', 'test-bpf', 'getppid_counter.bpf.o'));
  try {
    await processor.consume(fixtureBatch([{ pid: 0, frames: [{ kind: 'kernel', address: kallsymsAddress('ksys_read') }] }]));
    object.load();
    const line = readFileSync('/proc/kallsyms', 'utf8')
      .split('\n')
      .find((l) => /^\S+ t bpf_prog_[0-9a-f]+_count_getppid\s+\[bpf\]$/.test(l));
    assert.ok(line, 'the kernel lists the loaded program in kallsyms (net.core.bpf_jit_kallsyms)');
    const [address, , name] = line.split(/\s+/);
    await processor.consume(fixtureBatch([{ pid: 0, frames: [{ kind: 'kernel', address: BigInt(`0x${address}`) + 4n }] }]));
    const [frame] = sink.batches[1].samples[0].frames;
    assert.equal(frame.functionName, name);
    assert.equal(frame.mapping?.path, '[bpf]');
  } finally {
    object.close();
    await processor.shutdown();
  }
});
