/** The processor as a pipeline component: lifecycle, config, pass-through, self-telemetry, and the native cache's bounds. */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { projectPath } from '../../collector/paths.js';
import { SelfTelemetry } from '../../collector/telemetry.js';
import { ElfSymbolizer, type SymbolizeRequest } from '../../native/index.js';
import { configIssues, ProfilesSink, selfMetric, testHost, testSettings } from '../../test/support/components.js';
import { symbolizerProcessorFactory } from './factory.js';
import { parseProcMaps, ProcessMappings } from './proc-maps.js';
import {
  absoluteAddress, compile, fileOffsetOf, fixtureBatch, startProgram, symbolAddress, temporaryDir, testdata, type RunningProgram,
} from './testing/test-programs.js';

const dir = temporaryDir();
let workload: string;
let klass: string;
before(() => {
  workload = compile(testdata('workload.c'), join(dir.path, 'workload'));
  klass = compile(testdata('klass.cc'), join(dir.path, 'klass'));
});
after(() => dir.remove());

function create(config: Record<string, unknown> = {}, sink = new ProfilesSink(), telemetry = new SelfTelemetry()) {
  const settings = { ...testSettings('processor', 'symbolizer'), telemetry: telemetry.forComponent('processor', 'symbolizer') };
  return symbolizerProcessorFactory.create(settings, symbolizerProcessorFactory.configSchema.parse(config), 'profiles', sink);
}

test('lifecycle: shutdown without start, and twice', async () => {
  const processor = create();
  await processor.shutdown();
  await processor.shutdown();
});

test('lifecycle: start, shut down, start a fresh instance, shut down', async () => {
  for (let round = 0; round < 2; round++) {
    const processor = create();
    await processor.start(testHost());
    await processor.shutdown();
    await processor.shutdown();
  }
});

test('config: defaults, and errors that name the key', () => {
  assert.deepEqual(symbolizerProcessorFactory.configSchema.parse({}), {
    max_cached_binaries: 256,
    max_cached_symbols: 200_000,
    perf_maps: true,
    perf_map_max_process_mib: 64,
    perf_map_max_total_mib: 256,
    debug_dirs: ['/usr/lib/debug'],
    debug_file_cache: { directory: '/var/cache/ebpf-collector', max_mib: 1024 },
  });
  const issues = (config: unknown) => configIssues(symbolizerProcessorFactory, config);
  assert.match(issues({ max_binaries: 3 }).join('\n'), /Unrecognized key\(s\) in object: 'max_binaries'/);
  assert.deepEqual(issues({ max_cached_binaries: 0 }), ['max_cached_binaries: Number must be greater than or equal to 1']);
  assert.deepEqual(issues({ debug_dirs: ['debug'] }), ['debug_dirs.0: must be an absolute path without \':\', got "debug"']);
  assert.deepEqual(issues({ debug_file_cache: { directory: 'cache' } }), ['debug_file_cache.directory: must be an absolute path without \':\', got "cache"']);
  assert.match(issues({ debug_file_cache: { max_bytes: 1 } }).join('\n'), /debug_file_cache: Unrecognized key\(s\) in object: 'max_bytes'/);
  assert.deepEqual(issues({ perf_maps: 'yes' }), ['perf_maps: Expected boolean, received string']);
  assert.equal(create().mutatesData, true, 'frames are filled in place, so a fan-out hands the processor its own copy');
});

test('the DaemonSet keeps the debug-file cache on its own volume, not /tmp, and the pipeline bounds it below the volume\'s sizeLimit', () => {
  const daemonSet = parse(readFileSync(projectPath('deploy', 'kubernetes', 'daemonset.yaml'), 'utf8'));
  const configMap = parse(readFileSync(projectPath('deploy', 'kubernetes', 'configmap.yaml'), 'utf8'));
  const pipeline = parse(configMap.data['pipeline.yaml']);
  const cache = symbolizerProcessorFactory.configSchema.parse(pipeline.processors.symbolizer).debug_file_cache;
  const pod = daemonSet.spec.template.spec;
  const mounts: { name: string; mountPath: string }[] = pod.containers.find((c: { name: string }) => c.name === 'collector').volumeMounts;
  const mount = mounts.filter((m) => cache.directory.startsWith(`${m.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  assert.ok(mount, `${cache.directory} is on no volume`);
  assert.notEqual(mount.mountPath, '/tmp');
  assert.notEqual(mount.mountPath, cache.directory, 'an emptyDir is 0777: the collector must make the directory itself, inside it');
  const sizeLimit: string = pod.volumes.find((v: { name: string }) => v.name === mount.name).emptyDir.sizeLimit;
  const mib = Number(/^(\d+)Mi$/.exec(sizeLimit)?.[1] ?? /^(\d+)Gi$/.exec(sizeLimit)?.[1]) * (sizeLimit.endsWith('Gi') ? 1024 : 1);
  assert.ok(cache.max_mib > 0 && cache.max_mib < mib, `max_mib ${cache.max_mib} below the volume's ${sizeLimit}`);
});

test('a batch before start or after shutdown passes through untouched', async () => {
  const sink = new ProfilesSink();
  const processor = create({}, sink);
  const batch = fixtureBatch([{ pid: process.pid, frames: [{ kind: 'user', address: 0x1000n }] }]);
  await processor.consume(batch);
  await processor.start(testHost());
  await processor.shutdown();
  await processor.consume(batch);
  assert.deepEqual(sink.batches, [batch, batch]);
  assert.deepEqual(batch.samples[0].frames, [{ kind: 'user', address: 0x1000n }]);
});

test('self-telemetry: frames by result, the symbolized fraction, and cached binaries', async () => {
  const telemetry = new SelfTelemetry();
  const sink = new ProfilesSink();
  const processor = create({ max_cached_binaries: 1 }, sink, telemetry);
  const running = await startProgram(workload, [], workload);
  const gone = await startProgram(workload, [], workload);
  await gone.stop();
  await processor.start(testHost());
  try {
    const leaf = absoluteAddress(running.pid, workload, workload, symbolAddress(workload, 'symbolizer_leaf') + 4n);
    const elfHeader = absoluteAddress(running.pid, workload, workload, 0n);
    const libcStart = absoluteAddress(running.pid, '/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6', 0n);
    const batch = fixtureBatch([
      // symbolized; unsymbolized (the ELF header has no function); in no mapping; libc's header (a second binary)
      { pid: running.pid, frames: [{ kind: 'user', address: leaf }, { kind: 'user', address: elfHeader }, { kind: 'user', address: 0x1000n }, { kind: 'user', address: libcStart }] },
      { pid: gone.pid, frames: [{ kind: 'user', address: leaf }, { kind: 'user', address: leaf }] },
    ]);
    await processor.consume(batch);
    assert.equal(sink.batches[0], batch, 'the same batch goes on, filled in place');
    assert.deepEqual(batch.samples.map((s) => s.frames.length), [4, 2], 'no frame is dropped');
  } finally {
    await running.stop();
    await processor.shutdown();
  }
  const frames = (result: string) => selfMetric(telemetry, 'ebpf_collector_symbolizer_frames_total', { frame_kind: 'user', result, component: 'symbolizer' });
  assert.equal(await frames('symbolized'), 1);
  assert.equal(await frames('unsymbolized'), 2);
  assert.equal(await frames('unmapped'), 1);
  assert.equal(await frames('process_exited'), 2);
  assert.equal(await selfMetric(telemetry, 'ebpf_collector_symbolizer_symbolized_ratio'), 1 / 6);
  assert.equal(await selfMetric(telemetry, 'ebpf_collector_symbolizer_cached_binaries'), 1, 'max_cached_binaries bounds the open ELF files');
});

test('native cache: bounded by binaries and by symbols, shared by build id, right after eviction', async () => {
  const symbolizer = new ElfSymbolizer({ maxBinaries: 2, maxSymbols: 3, debugDirs: ['/usr/lib/debug'], debugCacheDir: join(dir.path, 'cache'), debugCacheMaxBytes: 0 });
  const copy = join(dir.path, 'workload-copy');
  copyFileSync(workload, copy);
  const programs = await Promise.all([workload, copy, klass].map((binary) => startProgram(binary, [], binary)));
  const leaf = fileOffsetOf(workload, symbolAddress(workload, 'symbolizer_leaf') + 4n);
  const caller = fileOffsetOf(workload, symbolAddress(workload, 'symbolizer_caller') + 4n);
  const method = fileOffsetOf(klass, symbolAddress(klass, '_ZN2ns5Klass6methodEi') + 4n);
  const libc = '/usr/lib/x86_64-linux-gnu/libc.so.6';
  // The file as the process maps it, the way the processor passes it on.
  const mapped = (program: RunningProgram, path: string) => {
    const parsed = parseProcMaps(readFileSync(`/proc/${program.pid}/maps`, 'utf8'));
    return new ProcessMappings(program.pid, parsed).mappedFile(parsed.find((m) => m.path === path)!);
  };
  const names = async (program: RunningProgram, path: string, offsets: bigint[]) => {
    const result = await symbolizer.symbolize([{ ...mapped(program, path), fileOffsets: BigUint64Array.from(offsets) }]);
    return [...result.function].map((i) => (i >= 0 ? result.strings[i] : undefined));
  };
  const [workloadProgram, copyProgram, klassProgram] = programs;
  try {
    assert.deepEqual(await names(workloadProgram, workload, [leaf, caller]), ['symbolizer_leaf', 'symbolizer_caller']);
    assert.deepEqual(await names(copyProgram, copy, [leaf]), ['symbolizer_leaf']);
    assert.equal(symbolizer.stats().binaries, 1, 'a copy with the same build id shares the open binary');
    assert.deepEqual(await names(klassProgram, klass, [method, 0n, 1n]), ['ns::Klass::method(int)', undefined, undefined], 'the ELF header has no function');
    assert.deepEqual(symbolizer.stats(), { binaries: 2, symbols: 3 });
    assert.deepEqual(await names(klassProgram, libc, [0n]), [undefined]);
    assert.equal(symbolizer.stats().binaries, 2, 'the least recently used binary was closed');
    assert.deepEqual(await names(workloadProgram, workload, [caller, leaf]), ['symbolizer_caller', 'symbolizer_leaf'], 'reopened after eviction');
    const missing = await symbolizer.symbolize([{ ...mapped(workloadProgram, workload), path: join(dir.path, 'no-such-file'), fileOffsets: BigUint64Array.from([0n]) }]);
    assert.match(missing.binaries[0].error ?? '', /No such file/);
    assert.deepEqual([...missing.function], [-1]);
  } finally {
    symbolizer.close();
    for (const program of programs) await program.stop();
  }
  await assert.rejects(async () => symbolizer.symbolize([]), /closed/);
});

test('native requests: malformed fields are named', () => {
  const symbolizer = new ElfSymbolizer({ maxBinaries: 1, maxSymbols: 1, debugDirs: [], debugCacheDir: join(dir.path, 'cache'), debugCacheMaxBytes: 0 });
  const valid = { pid: process.pid, path: '/bin/true', device: 'fd:01', inode: 1n, fileOffsets: BigUint64Array.of(0n) };
  const bad = (fields: Record<string, unknown>) => () => symbolizer.symbolize([{ ...valid, ...fields } as SymbolizeRequest]);
  try {
    assert.throws(bad({ path: 'bin/true' }), /requests\[0\]\.path must be an absolute path/);
    assert.throws(bad({ device: '253' }), /requests\[0\]\.device must be "major:minor" in hex/);
    assert.throws(bad({ inode: 1 }), /requests\[0\]\.inode must be a bigint/);
    assert.throws(bad({ mapFiles: '../../1/root' }), /requests\[0\]\.mapFiles must be "start-end"/);
    assert.throws(bad({ pid: 0 }), /requests\[0\]\.pid must be an integer/);
  } finally {
    symbolizer.close();
  }
});
