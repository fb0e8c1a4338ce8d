// Exercises the addon against the running kernel: needs root, BTF, clang and bpftool.
// Run after `npx tsc -p tsconfig.test.json` with `node --test build/dev/native/`.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { BpfObject, libbpfVersion, numPossibleCpus, onlineCpus, type MapEntries } from './index.js';

function projectRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'ebpf-collector') return dir;
  }
  throw new Error('project root not found');
}

const testdata = join(projectRoot(), 'native', 'testdata');
const SELFTEST = join(testdata, 'build', 'selftest.bpf.o');
const REJECTED = join(testdata, 'build', 'rejected.bpf.o');
const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';
const STACK_DEPTH = 127;
const SYS_KILL = 62; // x86_64

before(() => {
  if (!existsSync('/sys/kernel/tracing/events')) {
    execFileSync('mount', ['-t', 'tracefs', 'tracefs', '/sys/kernel/tracing']);
  }
  execFileSync('make', ['-s', '-C', testdata], { stdio: 'inherit' });
});

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value);
  return buffer;
}

function u64(value: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(BigInt(value));
  return buffer;
}

/** Splits packed entries into per-entry key/value views. */
function entries(e: MapEntries): { key: Buffer; value: Buffer }[] {
  const keySize = e.count ? e.keys.length / e.count : 0;
  const stride = e.count ? e.values.length / e.count : 0;
  return Array.from({ length: e.count }, (_, i) => ({
    key: e.keys.subarray(i * keySize, (i + 1) * keySize),
    value: e.values.subarray(i * stride, (i + 1) * stride),
  }));
}

/** Sum of a per-CPU u64 value (one 8-byte slot per possible CPU). */
function perCpuSum(value: Buffer): number {
  assert.equal(value.length, 8 * numPossibleCpus());
  let sum = 0n;
  for (let offset = 0; offset < value.length; offset += 8) sum += value.readBigUInt64LE(offset);
  return Number(sum);
}

function loadedProgramIds(): Set<number> {
  const programs = JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8' })) as { id: number }[];
  return new Set(programs.map((p) => p.id));
}

function run(file: string, args: string[] = []): number {
  const child = spawnSync(file, args, { stdio: 'ignore' });
  assert.equal(child.status, 0, `${file} failed`);
  return child.pid!;
}

function withSelftest(fn: (obj: BpfObject) => void): void {
  const obj = BpfObject.open(SELFTEST);
  try {
    obj.load();
    fn(obj);
  } finally {
    obj.close();
  }
}

test('module functions describe libbpf and the CPUs', () => {
  assert.match(libbpfVersion(), /^1\.\d+$/);
  const online = onlineCpus();
  assert.ok(online.length >= 1);
  assert.ok(online.every((cpu, i) => Number.isInteger(cpu) && (i === 0 || cpu > online[i - 1]!)));
  assert.ok(numPossibleCpus() >= online.length);
});

test('open reports missing files with libbpf context', () => {
  assert.throws(() => BpfObject.open('/nonexistent/x.bpf.o'), (err: Error) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /^cannot open BPF object \/nonexistent\/x\.bpf\.o: No such file or directory; libbpf: /);
    return true;
  });
  assert.throws(() => new (BpfObject as unknown as new () => BpfObject)(), /BpfObject\.open/);
});

test('introspection works before load; map access needs load', () => {
  const obj = BpfObject.open(SELFTEST);
  try {
    assert.equal(obj.path, SELFTEST);
    assert.ok(obj instanceof BpfObject);
    assert.deepEqual(obj.programNames().sort(), ['on_cpu_clock', 'on_exec', 'on_getppid', 'on_missing_function', 'on_sys_enter', 'on_uprobe']);
    assert.ok(obj.mapNames().includes('stacks'));
    assert.deepEqual(obj.mapInfo('uprobe_hits'), {
      name: 'uprobe_hits', type: 5, typeName: 'percpu_hash', keySize: 4, valueSize: 8, maxEntries: 16, perCpu: true,
    });
    assert.deepEqual(obj.mapInfo('stacks'), {
      name: 'stacks', type: 7, typeName: 'stack_trace', keySize: 4, valueSize: STACK_DEPTH * 8, maxEntries: 1024, perCpu: false,
    });
    assert.throws(() => obj.mapInfo('nope'), { message: `no map named "nope" in ${SELFTEST}` });
    assert.throws(() => obj.attach('nope', { kind: 'auto' }), { message: `no program named "nope" in ${SELFTEST}` });
    assert.throws(() => obj.dump('stacks'), /map "stacks" .* is not loaded/);
    assert.deepEqual(obj.progIds(), []);
  } finally {
    obj.close();
  }
});

test('load failures carry the verifier log', () => {
  const obj = BpfObject.open(REJECTED);
  try {
    assert.throws(() => obj.load(), (err: Error) => {
      assert.match(err.message, /^cannot load BPF object .*rejected\.bpf\.o: Permission denied; libbpf: /);
      assert.match(err.message, /invalid mem access 'map_value_or_null'/);
      assert.match(err.message, /END PROG LOAD LOG/);
      return true;
    });
  } finally {
    obj.close();
  }
});

test('tracepoint, raw_tracepoint and uprobe programs count real events', () => {
  withSelftest((obj) => {
    obj.attach('on_exec', { kind: 'tracepoint', category: 'sched', name: 'sched_process_exec' });
    obj.attach('on_getppid', { kind: 'auto' }); // SEC("tracepoint/syscalls/sys_enter_getppid")
    obj.attach('on_sys_enter', { kind: 'raw_tracepoint', name: 'sys_enter' });
    obj.attach('on_uprobe', { kind: 'uprobe', binaryPath: LIBC, functionName: 'uname' });
    assert.equal(obj.linkCount(), 4);
    obj.update('target_tgid', u32(0), u32(process.pid));

    const truePids = [1, 2, 3, 4, 5].map(() => run('/bin/true'));
    const unamePid = run('/bin/uname');
    run('/usr/bin/perl', ['-e', 'getppid() for 1..100']);
    for (let i = 0; i < 100; i++) process.kill(process.pid, 0);

    const execs = new Map(entries(obj.drain('exec_by_pid')).map((e) => [e.key.readUInt32LE(), e.value.readBigUInt64LE()]));
    for (const pid of [...truePids, unamePid]) assert.equal(execs.get(pid), 1n, `exec of pid ${pid} counted`);
    // Other processes on the machine may exec meanwhile: only the drained entries must be gone.
    const left = new Set(entries(obj.dump('exec_by_pid')).map((e) => e.key.readUInt32LE()));
    for (const pid of [...truePids, unamePid]) assert.ok(!left.has(pid), `drain removed pid ${pid}'s entry`);

    const total = obj.dump('exec_total');
    assert.equal(total.count, 1);
    assert.ok(perCpuSum(total.values) >= truePids.length + 2, "every exec counted (true, uname, perl)");

    assert.ok(obj.lookup('getppid_calls', u32(0))!.readBigUInt64LE() >= 100n);

    const kills = obj.lookup('syscalls_by_nr', u32(SYS_KILL));
    assert.ok(kills && kills.readBigUInt64LE() >= 100n, 'kill(2) calls of this process counted');

    const hits = obj.lookup('uprobe_hits', u32(unamePid));
    assert.ok(hits && perCpuSum(hits) >= 1, 'uname() in /bin/uname hit the uprobe');
  });
});

test('perf_event sampling records stacks in a stack-trace map', () => {
  withSelftest((obj) => {
    obj.attach('on_cpu_clock', { kind: 'perf_event', frequencyHz: 499 });
    const linksPerSpec = onlineCpus().length;
    assert.equal(obj.linkCount(), linksPerSpec);

    // A CPU that cannot exist: the attach fails and its earlier CPUs are rolled back.
    assert.throws(
      () => obj.attach('on_cpu_clock', { kind: 'perf_event', frequencyHz: 499, cpus: [0, 4095] }),
      /^Error: cannot attach on_cpu_clock \(perf_event cpu-clock 499 Hz on CPUs 0,4095; perf_event_open on CPU 4095\): /,
    );
    assert.equal(obj.linkCount(), linksPerSpec);

    const until = Date.now() + 300;
    while (Date.now() < until); // burn CPU so this process gets sampled

    assert.equal(obj.mapInfo('samples').perCpu, true);
    assert.ok(perCpuSum(obj.dump('samples').values) >= 20);

    const ours = entries(obj.dump('stack_counts'))
      .map((e) => ({ tgid: e.key.readUInt32LE(0), kernelStack: e.key.readInt32LE(4), userStack: e.key.readInt32LE(8) }))
      .filter((k) => k.tgid === process.pid && k.userStack >= 0);
    assert.ok(ours.length > 0, 'samples of this process with a user stack');
    const frames = obj.lookup('stacks', u32(ours[0]!.userStack));
    assert.ok(frames && frames.length === STACK_DEPTH * 8);
    assert.notEqual(frames.readBigUInt64LE(0), 0n, 'first frame is an instruction pointer');

    const stacks = obj.dump('stacks'); // iterate path: stack maps have no batch ops
    assert.ok(stacks.count > 0);
    assert.equal(stacks.keys.length, stacks.count * 4);
    assert.equal(stacks.values.length, stacks.count * STACK_DEPTH * 8);
    assert.throws(() => obj.drain('stacks', Buffer.alloc(6)), /^RangeError: expectedKeys for map "stacks" must be whole 4-byte keys, got 6 bytes$/);
    // Expected keys are taken first, duplicates and absent ones allowed; the rest are still drained.
    const dumped = new Map(entries(stacks).map((e) => [e.key.readUInt32LE(), e.value]));
    const absent = [...Array(dumped.size + 1).keys()].find((id) => !dumped.has(id))!;
    const expected = Buffer.concat([u32(ours[0]!.userStack), u32(ours[0]!.userStack), u32(absent)]);
    const drained = new Map(entries(obj.drain('stacks', expected)).map((e) => [e.key.readUInt32LE(), e.value]));
    assert.equal(drained.get(ours[0]!.userStack)?.equals(frames), true, 'an expected stack comes out whole');
    for (const [id, value] of dumped) assert.equal(drained.get(id)?.equals(value), true, `stack ${id} drained`);
    assert.equal(obj.lookup('stacks', u32(ours[0]!.userStack)), null);
  });
});

test('attaching a kprobe on a function no kernel has fails with an Error naming the program, the function and the reason', () => {
  withSelftest((obj) => {
    assert.throws(() => obj.attach('on_missing_function', { kind: 'auto' }), (err: Error) => {
      assert.ok(err instanceof Error);
      // libbpf's last line is the same on every kernel; a kernel without a kprobe PMU (this one) logs its legacy attempt before it.
      const cut = err.message.indexOf('; libbpf: ');
      assert.equal(err.message.slice(0, cut), 'cannot attach on_missing_function (auto, SEC("kprobe/ebpf_collector_no_such_function")): No such file or directory');
      assert.equal(
        err.message.slice(cut).split('\n').at(-1),
        "prog 'on_missing_function': failed to create kprobe 'ebpf_collector_no_such_function+0x0' perf event: No such file or directory",
      );
      return true;
    });
    assert.equal(obj.linkCount(), 0);
    obj.attach('on_exec', { kind: 'auto' }); // the object stays usable
    assert.equal(obj.linkCount(), 1);
  });
});

test('update, lookup and delete, including per-CPU values and array drains', () => {
  withSelftest((obj) => {
    const stride = 8 * numPossibleCpus();
    const value = Buffer.alloc(stride);
    for (let cpu = 0; cpu < numPossibleCpus(); cpu++) value.writeBigUInt64LE(BigInt(cpu + 1), cpu * 8);
    obj.update('uprobe_hits', u32(7), value);
    assert.deepEqual(obj.lookup('uprobe_hits', u32(7)), value);
    assert.throws(() => obj.update('uprobe_hits', u32(7), u64(1)), new RegExp(`must be ${stride} bytes, got 8`));
    assert.throws(() => obj.lookup('uprobe_hits', Buffer.alloc(2)), /key for map "uprobe_hits" must be 4 bytes/);
    const dumped = obj.dump('uprobe_hits');
    assert.equal(dumped.count, 1);
    assert.deepEqual(dumped.values, value);
    assert.equal(obj.delete('uprobe_hits', u32(7)), true);
    assert.equal(obj.delete('uprobe_hits', u32(7)), false);
    assert.equal(obj.lookup('uprobe_hits', u32(7)), null);

    obj.update('getppid_calls', u32(0), u64(42));
    const drained = obj.drain('getppid_calls');
    assert.equal(drained.count, 1);
    assert.equal(drained.values.readBigUInt64LE(), 42n);
    assert.deepEqual(obj.lookup('getppid_calls', u32(0)), u64(0), 'array values are zeroed, not deleted');

    // More entries than one batch (256) exercises the batch token loop.
    for (let nr = 0; nr < 500; nr++) obj.update('syscalls_by_nr', u32(nr), u64(nr));
    const all = entries(obj.drain('syscalls_by_nr'));
    assert.equal(all.length, 500);
    assert.ok(all.every((e) => BigInt(e.key.readUInt32LE()) === e.value.readBigUInt64LE()));
    assert.equal(obj.dump('syscalls_by_nr').count, 0);
  });
});

test('close() releases every program and link of the object', () => {
  const obj = BpfObject.open(SELFTEST);
  obj.load();
  obj.attach('on_exec', { kind: 'auto' });
  obj.attach('on_cpu_clock', { kind: 'perf_event', frequencyHz: 99 });
  const ids = obj.progIds();
  assert.equal(ids.length, 6);
  const before = loadedProgramIds();
  assert.ok(ids.every((id) => before.has(id)));

  obj.close();
  obj.close(); // idempotent
  const after = loadedProgramIds();
  assert.deepEqual(ids.filter((id) => after.has(id)), []);
  assert.throws(() => obj.linkCount(), { message: `BPF object ${SELFTEST} is closed` });
  assert.throws(() => obj.dump('stacks'), { message: `BPF object ${SELFTEST} is closed` });
});

test('a garbage-collected object releases its programs without close()', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const ids = (() => {
    const obj = BpfObject.open(SELFTEST);
    obj.load();
    obj.attach('on_exec', { kind: 'auto' });
    const loaded = loadedProgramIds();
    assert.equal(obj.progIds().length, 6);
    assert.ok(obj.progIds().every((id) => loaded.has(id)));
    return obj.progIds();
  })();
  for (let attempt = 0; attempt < 50; attempt++) {
    gc();
    await nextTurn(); // finalizers run outside of the GC pause
    const loaded = loadedProgramIds();
    if (!ids.some((id) => loaded.has(id))) return;
  }
  assert.fail(`programs ${ids.join(',')} still loaded after GC`);
});
