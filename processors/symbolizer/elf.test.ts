/** Native frames: real programs compiled from testdata/, symbolized through their ELF files. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { unsymbolizedName, type ProfileBatch } from '../../collector/data/profiles.js';
import { ProfilesSink, testHost, testSettings } from '../../test/support/components.js';
import { symbolizerProcessorFactory } from './factory.js';
import {
  absoluteAddress, addr2line, buildIdOf, compile, fileOffsetOf, fixtureBatch, mappedFile, run, startProgram,
  symbolAddress, temporaryDir, testdata,
} from './testing/test-programs.js';

const dir = temporaryDir();
let workload: string;
after(() => dir.remove());
before(() => {
  workload = compile(testdata('workload.c'), join(dir.path, 'workload'));
});

async function symbolize(batch: ProfileBatch, config: Record<string, unknown> = {}): Promise<ProfileBatch> {
  const sink = new ProfilesSink();
  const processor = symbolizerProcessorFactory.create(
    testSettings('processor', 'symbolizer'), symbolizerProcessorFactory.configSchema.parse(config), 'profiles', sink);
  await processor.start(testHost());
  try {
    await processor.consume(batch);
  } finally {
    await processor.shutdown();
  }
  assert.equal(sink.batches.length, 1);
  return sink.batches[0];
}

/** The first line of a testdata source that matches `pattern` (where a function is defined), counted from 1. */
function definitionLine(source: string, pattern: RegExp): number {
  return readFileSync(source, 'utf8').split('\n').findIndex((line) => pattern.test(line)) + 1;
}

test('a PIE: functions, source file and line from DWARF; libc through its own mapping', async () => {
  const program = await startProgram(workload, [], workload);
  try {
    const leaf = symbolAddress(workload, 'symbolizer_leaf');
    const caller = symbolAddress(workload, 'symbolizer_caller');
    const libc = mappedFile(program.pid, '/libc.so.6');
    const getpid = symbolAddress(libc, 'getpid', true);
    const frames = [
      { kind: 'user' as const, address: absoluteAddress(program.pid, workload, workload, leaf + 4n) },
      // a return address: the symbolizer looks up the byte before it, still inside the caller
      { kind: 'user' as const, address: absoluteAddress(program.pid, workload, workload, caller + 9n) },
      { kind: 'user' as const, address: absoluteAddress(program.pid, libc, libc, getpid + 4n) },
    ];
    const [sample] = (await symbolize(fixtureBatch([{ pid: program.pid, frames }]))).samples;
    const [leafFrame, callerFrame, libcFrame] = sample.frames;

    assert.equal(leafFrame.functionName, 'symbolizer_leaf');
    assert.equal(leafFrame.fileName, testdata('workload.c'));
    assert.equal(leafFrame.line, addr2line(workload, leaf + 4n).line);
    assert.equal(leafFrame.line, definitionLine(testdata('workload.c'), /^int symbolizer_leaf/));
    assert.equal(callerFrame.functionName, 'symbolizer_caller');
    assert.equal(callerFrame.line, addr2line(workload, caller + 8n).line);

    assert.equal(leafFrame.mapping?.path, workload);
    assert.equal(leafFrame.mapping?.buildId, buildIdOf(workload));
    assert.ok(leafFrame.mapping!.start <= leafFrame.address && leafFrame.address < leafFrame.mapping!.end);

    assert.match(libcFrame.functionName ?? '', /getpid$/, `libc frame named ${libcFrame.functionName}`);
    assert.equal(libcFrame.mapping?.path, libc);
    assert.equal(libcFrame.mapping?.buildId, buildIdOf(libc));
  } finally {
    await program.stop();
  }
});

test('a stripped binary: mapping, build id and file offset, no name', async () => {
  const stripped = join(dir.path, 'workload-stripped');
  execFileSync('strip', ['-s', workload, '-o', stripped]);
  const program = await startProgram(stripped, [], stripped);
  try {
    const leaf = symbolAddress(workload, 'symbolizer_leaf');
    const address = absoluteAddress(program.pid, stripped, stripped, leaf + 4n);
    const batch = await symbolize(fixtureBatch([{ pid: program.pid, frames: [{ kind: 'user', address }] }]));
    const [frame] = batch.samples[0].frames;
    assert.equal(batch.samples[0].frames.length, 1);
    assert.equal(frame.functionName, undefined);
    assert.equal(frame.fileName, undefined);
    assert.equal(frame.mapping?.path, stripped);
    assert.equal(frame.mapping?.buildId, buildIdOf(workload), 'strip keeps the build id');
    const fileOffset = address - frame.mapping!.start + frame.mapping!.fileOffset;
    assert.equal(unsymbolizedName(frame), `workload-stripped+0x${fileOffset.toString(16)}`);
    assert.equal(fileOffset, fileOffsetOf(workload, leaf + 4n), "readelf's offset of the function in the file");
  } finally {
    await program.stop();
  }
});

/** Runs `binary` and symbolizes symbolizer_leaf+4 in it; `elfFile` is a copy with the same layout, for addresses. */
async function leafFrameOf(binary: string, config: Record<string, unknown> = {}, mappedPath = binary) {
  const program = await startProgram(binary, [], mappedPath);
  try {
    const address = absoluteAddress(program.pid, mappedPath, workload, symbolAddress(workload, 'symbolizer_leaf') + 4n);
    const batch = await symbolize(fixtureBatch([{ pid: program.pid, frames: [{ kind: 'user', address }] }]), config);
    return batch.samples[0].frames[0];
  } finally {
    await program.stop();
  }
}

test('a stripped binary with .gnu_debuglink: names and lines from the debug file beside it', async () => {
  const linked = join(dir.path, 'linked', 'workload');
  mkdirSync(join(dir.path, 'linked'));
  execFileSync('objcopy', ['--only-keep-debug', workload, `${linked}.debug`]);
  execFileSync('strip', ['-s', workload, '-o', linked]);
  execFileSync('objcopy', [`--add-gnu-debuglink=${linked}.debug`, linked]);
  const frame = await leafFrameOf(linked);
  assert.equal(frame.functionName, 'symbolizer_leaf');
  assert.equal(frame.fileName, testdata('workload.c'));
  assert.equal(frame.line, definitionLine(testdata('workload.c'), /^int symbolizer_leaf/));
});

test('a stripped binary whose debug file is found by build id under a configured debug_dirs entry', async () => {
  const stripped = join(dir.path, 'workload-by-build-id');
  execFileSync('strip', ['-s', workload, '-o', stripped]);
  const buildId = buildIdOf(workload);
  const debugDir = join(dir.path, 'debug');
  mkdirSync(join(debugDir, '.build-id', buildId.slice(0, 2)), { recursive: true });
  execFileSync('objcopy', ['--only-keep-debug', workload, join(debugDir, '.build-id', buildId.slice(0, 2), `${buildId.slice(2)}.debug`)]);

  const withoutDebugDir = await leafFrameOf(stripped);
  assert.equal(withoutDebugDir.functionName, undefined, 'the default /usr/lib/debug does not have it');
  const frame = await leafFrameOf(stripped, { debug_dirs: [debugDir] });
  assert.equal(frame.functionName, 'symbolizer_leaf');
  assert.equal(frame.line, definitionLine(testdata('workload.c'), /^int symbolizer_leaf/));
  assert.equal(frame.mapping?.buildId, buildId);
});

test('a .gnu_debuglink found under a debug_dirs entry that mirrors the binary\'s host path, checked by CRC', async () => {
  const binaryDir = join(dir.path, 'mirrored');
  mkdirSync(binaryDir);
  const linked = join(binaryDir, 'workload');
  const debugDir = join(dir.path, 'debug-tree');
  const debugFile = join(debugDir, binaryDir, 'workload.debug');
  mkdirSync(join(debugDir, binaryDir), { recursive: true });
  // Without a build id, only the debuglink can find the debug file.
  execFileSync('objcopy', ['--remove-section=.note.gnu.build-id', workload, join(dir.path, 'workload-no-build-id')]);
  execFileSync('objcopy', ['--only-keep-debug', join(dir.path, 'workload-no-build-id'), debugFile]);
  execFileSync('strip', ['-s', join(dir.path, 'workload-no-build-id'), '-o', linked]);
  execFileSync('objcopy', [`--add-gnu-debuglink=${debugFile}`, linked]);

  const frame = await leafFrameOf(linked, { debug_dirs: [debugDir] });
  assert.equal(frame.functionName, 'symbolizer_leaf');
  assert.equal(frame.line, definitionLine(testdata('workload.c'), /^int symbolizer_leaf/));

  // A debug file that changed since the link was made is not used.
  execFileSync('objcopy', ['--add-section', `.comment.extra=${debugFile}`, debugFile, `${debugFile}.changed`]);
  copyFileSync(`${debugFile}.changed`, debugFile);
  const stale = await leafFrameOf(linked, { debug_dirs: [debugDir] });
  assert.equal(stale.functionName, undefined);
});

test('no debuginfod client is loaded: debug files are only read locally', async () => {
  // libLLVM-style case: a binary with neither build-id debug file nor debuglink match.
  const stripped = join(dir.path, 'workload-without-debug');
  execFileSync('strip', ['-s', workload, '-o', stripped]);
  const frame = await leafFrameOf(stripped);
  assert.equal(frame.functionName, undefined);
  assert.doesNotMatch(readFileSync('/proc/self/maps', 'utf8'), /libdebuginfod|libcurl/);
});

test('a debug file with compressed DWARF is read from an uncompressed copy in debug_file_cache.directory', async () => {
  const stripped = join(dir.path, 'workload-compressed-debug');
  execFileSync('strip', ['-s', workload, '-o', stripped]);
  const buildId = buildIdOf(workload);
  const debugDir = join(dir.path, 'compressed-debug');
  const debugFile = join(debugDir, '.build-id', buildId.slice(0, 2), `${buildId.slice(2)}.debug`);
  mkdirSync(join(debugDir, '.build-id', buildId.slice(0, 2)), { recursive: true });
  execFileSync('objcopy', ['--only-keep-debug', '--compress-debug-sections=zlib', workload, debugFile]);
  assert.match(execFileSync('readelf', ['-SW', debugFile], { encoding: 'utf8' }), /\.debug_info .* C /, 'the fixture is compressed');
  const cacheDir = join(dir.path, 'debug-cache');
  const config = { debug_dirs: [debugDir], debug_file_cache: { directory: cacheDir } };

  for (let round = 0; round < 2; round++) {
    const frame = await leafFrameOf(stripped, config);
    assert.equal(frame.functionName, 'symbolizer_leaf');
    assert.equal(frame.fileName, testdata('workload.c'));
    assert.equal(frame.line, definitionLine(testdata('workload.c'), /^int symbolizer_leaf/));
    const copies = readdirSync(cacheDir);
    assert.equal(copies.length, 1, `one copy, reused by the second symbolizer: ${copies.join(', ')}`);
    const sections = execFileSync('readelf', ['-SW', join(cacheDir, copies[0])], { encoding: 'utf8' });
    assert.match(sections, /\.debug_info/);
    assert.doesNotMatch(sections, /\.debug_\w+ .* C /, 'no section of the copy is compressed');
  }
});

test('C++ methods are demangled', async () => {
  const binary = compile(testdata('klass.cc'), join(dir.path, 'klass'));
  const program = await startProgram(binary, [], binary);
  try {
    const method = symbolAddress(binary, '_ZN2ns5Klass6methodEi');
    const address = absoluteAddress(program.pid, binary, binary, method + 4n);
    const [frame] = (await symbolize(fixtureBatch([{ pid: program.pid, frames: [{ kind: 'user', address }] }]))).samples[0].frames;
    assert.equal(frame.functionName, 'ns::Klass::method(int)');
    assert.equal(frame.functionName, addr2line(binary, method + 4n).functionName, 'as addr2line -C names it');
    assert.equal(frame.fileName, testdata('klass.cc'));
  } finally {
    await program.stop();
  }
});

// rustc comes from scripts/setup.sh; without it the compile below fails the test.
test('Rust (legacy mangling): demangled without the hash suffix', async () => {
  const binary = join(dir.path, 'rust_legacy');
  execFileSync('rustc', ['-g', '-C', 'opt-level=0', '-C', 'force-frame-pointers=yes', testdata('rust_legacy.rs'), '-o', binary]);
  const mangled = run('nm', [binary]).split('\n').map((l) => l.split(' ')[2]).find((name) => name?.includes('hot_rust_function'))!;
  assert.match(mangled, /^_ZN.*17h[0-9a-f]{16}E$/, 'rustc used the legacy scheme');
  const program = await startProgram(binary, [], binary);
  try {
    const address = absoluteAddress(program.pid, binary, binary, symbolAddress(binary, mangled) + 4n);
    const [frame] = (await symbolize(fixtureBatch([{ pid: program.pid, frames: [{ kind: 'user', address }] }]))).samples[0].frames;
    assert.equal(frame.functionName, 'rust_legacy::workload::hot_rust_function');
    assert.equal(frame.fileName, testdata('rust_legacy.rs'));
  } finally {
    await program.stop();
  }
});

test('a binary that exists only in the process\'s mount namespace is read through /proc/PID/root', async () => {
  const mountPoint = join(dir.path, 'private-mount');
  mkdirSync(mountPoint);
  const inside = join(mountPoint, 'workload');
  // The tmpfs and the copy on it are visible only inside the new mount namespace.
  const script = `mount -t tmpfs tmpfs ${mountPoint} && cp ${workload} ${inside} && exec ${inside}`;
  const program = await startProgram('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], inside);
  try {
    assert.throws(() => readFileSync(inside), /ENOENT/, 'not visible from the collector\'s namespace');
    const address = absoluteAddress(program.pid, inside, workload, symbolAddress(workload, 'symbolizer_leaf') + 4n);
    const [frame] = (await symbolize(fixtureBatch([{ pid: program.pid, frames: [{ kind: 'user', address }] }]))).samples[0].frames;
    assert.equal(frame.functionName, 'symbolizer_leaf');
    assert.equal(frame.mapping?.path, inside);
    assert.equal(frame.mapping?.buildId, buildIdOf(workload));
  } finally {
    await program.stop();
  }
});

test('another user\'s deleted executable is read through /proc/PID/exe by a collector that cannot open their map_files', async () => {
  // The process's map_files is its user's and mode 0500: root without CAP_DAC_READ_SEARCH is refused there.
  const shared = mkdtempSync(join(tmpdir(), 'symbolizer-exe-'));
  chmodSync(shared, 0o755);
  const doomed = join(shared, 'workload-deleted-other-user');
  copyFileSync(workload, doomed);
  chmodSync(doomed, 0o755);
  const program = await startProgram('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', doomed], doomed);
  try {
    unlinkSync(doomed);
    const address = absoluteAddress(program.pid, doomed, workload, symbolAddress(workload, 'symbolizer_leaf') + 4n);
    const module = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
    const script = join(shared, 'symbolize.mjs');
    writeFileSync(script, `
      import { readFileSync } from 'node:fs';
      import { symbolizerProcessorFactory } from ${module('./factory.js')};
      import { ProfilesSink, testHost, testSettings } from ${module('../../test/support/components.js')};
      import { fixtureBatch } from ${module('./testing/test-programs.js')};
      const sink = new ProfilesSink();
      const processor = symbolizerProcessorFactory.create(testSettings('processor', 'symbolizer'), symbolizerProcessorFactory.configSchema.parse({}), 'profiles', sink);
      await processor.start(testHost());
      await processor.consume(fixtureBatch([{ pid: ${program.pid}, frames: [{ kind: 'user', address: ${address}n }] }]));
      await processor.shutdown();
      const capabilities = /^CapEff:\\s+(\\w+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1];
      console.log(JSON.stringify({ name: sink.batches[0].samples[0].frames[0].functionName ?? null, capabilities }));
    `);
    const dropped = '-dac_override,-dac_read_search';
    const output = JSON.parse(execFileSync('setpriv', ['--inh-caps', dropped, '--bounding-set', dropped, '--', process.execPath, script], { encoding: 'utf8' }));
    assert.equal(BigInt(`0x${output.capabilities}`) & 0b110n, 0n, 'symbolized without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH');
    assert.throws(() => execFileSync('setpriv', ['--inh-caps', dropped, '--bounding-set', dropped, '--', 'ls', `/proc/${program.pid}/map_files/`], { stdio: 'pipe' }), 'map_files is closed to it');
    assert.equal(output.name, 'symbolizer_leaf');
  } finally {
    await program.stop();
    rmSync(shared, { recursive: true, force: true });
  }
});

test('a deleted binary is read through /proc/PID/map_files', async () => {
  const doomed = join(dir.path, 'workload-deleted');
  copyFileSync(workload, doomed);
  const program = await startProgram(doomed, [], doomed);
  try {
    unlinkSync(doomed);
    const address = absoluteAddress(program.pid, doomed, workload, symbolAddress(workload, 'symbolizer_leaf') + 4n);
    const [frame] = (await symbolize(fixtureBatch([{ pid: program.pid, frames: [{ kind: 'user', address }] }]))).samples[0].frames;
    assert.equal(frame.functionName, 'symbolizer_leaf');
    assert.equal(frame.line, definitionLine(testdata('workload.c'), /^int symbolizer_leaf/));
    assert.equal(frame.mapping?.path, doomed, 'the path as the process saw it, without " (deleted)"');
  } finally {
    await program.stop();
  }
});

test('frames of a process that exited before symbolization keep their addresses', async () => {
  const program = await startProgram(workload, [], workload);
  const address = absoluteAddress(program.pid, workload, workload, symbolAddress(workload, 'symbolizer_leaf') + 4n);
  await program.stop();
  const batch = await symbolize(fixtureBatch([{ pid: program.pid, frames: [{ kind: 'user', address }, { kind: 'user', address: address + 16n }] }]));
  assert.deepEqual(batch.samples[0].frames, [{ kind: 'user', address }, { kind: 'user', address: address + 16n }]);
  assert.equal(unsymbolizedName(batch.samples[0].frames[0]), `0x${address.toString(16)}`);
});
