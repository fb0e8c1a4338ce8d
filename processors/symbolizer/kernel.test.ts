/** Kernel frames: real kernel addresses from /proc/kallsyms, including a JIT-compiled BPF program's. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ProfileBatch } from '../../collector/data/profiles.js';
import { projectPath } from '../../collector/paths.js';
import { BpfObject } from '../../native/index.js';
import { ProfilesSink, testHost, testSettings } from '../../test/support/components.js';
import { symbolizerProcessorFactory } from './factory.js';
import { KernelSymbols } from './kallsyms.js';
import { fixtureBatch } from './testing/test-programs.js';

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

test('kallsyms fixture: module spans, the last symbol\'s bound, data symbols and unsorted module rows', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kallsyms-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fixture = join(dir, 'kallsyms.fixture');
  writeFileSync(
    fixture,
    [
      '0000000000000000 A fixed_percpu_data',
      'ffffffff81000000 T _stext',
      'ffffffff81000100 T first_fn',
      'ffffffff81000200 t second_fn',
      'ffffffff81000300 D some_data',
      'ffffffff81001000 T _etext',
      'ffffffffc0002000 t mod_b_fn\t[mod_b]',
      'ffffffffc0001000 t mod_a_fn\t[mod_a]',
      'ffffffffc0001800 t mod_a_other\t[mod_a]',
      'ffffffffc0003000 t bpf_prog_1234_handler\t[bpf]',
      '',
    ].join('\n'),
  );
  const table = new KernelSymbols();
  await table.read(fixture);
  const [first, second, inData, pastText, modA, modAOther, modB, bpf, pastLast, low] = table.lookup(
    new BigUint64Array([0xffffffff81000150n, 0xffffffff810002ffn, 0xffffffff81000300n, 0xffffffff81000f00n, 0xffffffffc0001004n, 0xffffffffc0001900n, 0xffffffffc0002010n, 0xffffffffc0003100n, 0xffffffffc0013000n, 0x1000n]),
  );
  assert.deepEqual(first, { name: 'first_fn', rangeStart: 0xffffffff81000000n, rangeEnd: 0xffffffff81001000n });
  assert.equal(second?.name, 'second_fn');
  assert.equal(inData, undefined, 'a data symbol names no frame');
  assert.equal(pastText, undefined, 'an address after a data symbol is not given a function\'s name');
  assert.deepEqual(modA, { name: 'mod_a_fn', module: 'mod_a', rangeStart: 0xffffffffc0001000n, rangeEnd: 0xffffffffc0002000n });
  assert.equal(modAOther?.name, 'mod_a_other');
  assert.deepEqual(modB, { name: 'mod_b_fn', module: 'mod_b', rangeStart: 0xffffffffc0002000n, rangeEnd: 0xffffffffc0003000n });
  assert.deepEqual(bpf, { name: 'bpf_prog_1234_handler', module: 'bpf', rangeStart: 0xffffffffc0003000n, rangeEnd: 0xffffffffc0013000n });
  assert.equal(pastLast, undefined, 'the last symbol covers 64 KiB, not the rest of the address space');
  assert.equal(low, undefined);
  assert.equal(table.inCoreText(0xffffffff81000150n), true);
  assert.equal(table.inCoreText(0xffffffffc0001004n), false);

  const hidden = join(dir, 'kallsyms.hidden.fixture');
  writeFileSync(hidden, '0000000000000000 T _stext\n0000000000000000 T first_fn\n');
  await assert.rejects(new KernelSymbols().read(hidden), /lists no addresses \(kernel\.kptr_restrict/);
  await assert.rejects(table.read(join(dir, 'missing')), /cannot read .*missing: No such file/);
  assert.equal(table.lookup(new BigUint64Array([0xffffffff81000150n]))[0]?.name, 'first_fn', 'a failed read keeps the table read before');
});
