/**
 * Files a process (or a container) controls, planted to fool the symbolizer: symlinks out of a
 * container's root, a file replaced after its mapping was read, a FIFO, a .gnu_debuglink name that
 * is a path, and debug-file cache directories others could write. Real processes, real mount
 * namespaces, real files; each case shows the symbolizer is not fooled and still works.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync,
  statSync, symlinkSync, truncateSync, utimesSync, writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { after, before, test } from 'node:test';
import { SelfTelemetry } from '../../collector/telemetry.js';
import { ElfSymbolizer, type SymbolizeResult } from '../../native/index.js';
import { ProfilesSink, selfMetric, testHost, testSettings } from '../../test/support/components.js';
import { symbolizerProcessorFactory } from './factory.js';
import { parseProcMaps, ProcessMappings, type MappedFile } from './proc-maps.js';
import {
  absoluteAddress, buildIdOf, compile, fileOffsetOf, fixtureBatch, startProgram, symbolAddress, temporaryDir, testdata,
} from './testing/test-programs.js';

const dir = temporaryDir();
let workload: string;
let klass: string;
/** workload.c linked static-pie: it runs inside a root that holds nothing else. */
let staticWorkload: string;
let contain: string;
before(() => {
  workload = compile(testdata('workload.c'), join(dir.path, 'workload'));
  klass = compile(testdata('klass.cc'), join(dir.path, 'klass'));
  staticWorkload = join(dir.path, 'workload-static');
  execFileSync('gcc', ['-O0', '-g', '-fno-omit-frame-pointer', '-static-pie', testdata('workload.c'), '-o', staticWorkload]);
  contain = join(dir.path, 'contain');
  execFileSync('gcc', ['-O2', testdata('contain.c'), '-o', contain]);
});
after(() => dir.remove());

function newSymbolizer(options: { debugDirs?: string[]; debugCacheDir?: string; debugCacheMaxBytes?: number } = {}): ElfSymbolizer {
  return new ElfSymbolizer({
    maxBinaries: 16,
    maxSymbols: 1000,
    debugDirs: options.debugDirs ?? [],
    debugCacheDir: options.debugCacheDir ?? join(dir.path, 'cache-unused'),
    debugCacheMaxBytes: options.debugCacheMaxBytes ?? 0,
  });
}

/** The mapped file as /proc/PID/maps shows it now, the way the processor passes it on. */
function mappedFileOf(pid: number, path: string): MappedFile {
  const parsed = parseProcMaps(readFileSync(`/proc/${pid}/maps`, 'utf8'));
  const mapping = parsed.find((m) => m.path === path);
  assert.ok(mapping, `${pid} maps ${path}`);
  return new ProcessMappings(pid, parsed).mappedFile(mapping);
}

/** The device (glibc's dev_t encoding, shown as maps shows it) and inode of `file`, as if it were the mapped one. */
function identityOf(file: string): { device: string; inode: bigint } {
  const { dev, ino } = statSync(file, { bigint: true });
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  const hex = (n: bigint) => n.toString(16).padStart(2, '0');
  return { device: `${hex(major)}:${hex(minor)}`, inode: ino };
}

/** Function names for `offsets` in one request's answer. */
function names(result: SymbolizeResult): (string | undefined)[] {
  return [...result.function].map((i) => (i >= 0 ? result.strings[i] : undefined));
}

const leafOffset = (elf: string) => fileOffsetOf(elf, symbolAddress(elf, 'symbolizer_leaf') + 4n);
const methodOffset = () => fileOffsetOf(klass, symbolAddress(klass, '_ZN2ns5Klass6methodEi') + 4n);

/** A root directory for contain, with the static workload at /bin/workload (and an empty /proc, for a procfs, if asked). */
function containerRoot(name: string, withProc = false): string {
  const root = join(dir.path, name);
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'lib'));
  if (withProc) mkdirSync(join(root, 'proc'));
  copyFileSync(staticWorkload, join(root, 'bin', 'workload'));
  chmodSync(join(root, 'bin', 'workload'), 0o755);
  return root;
}

function createProcessor(config: Record<string, unknown>, telemetry = new SelfTelemetry(), sink = new ProfilesSink()) {
  const settings = { ...testSettings('processor', 'symbolizer'), telemetry: telemetry.forComponent('processor', 'symbolizer') };
  return symbolizerProcessorFactory.create(settings, symbolizerProcessorFactory.configSchema.parse(config), 'profiles', sink);
}

const noCache = { debug_file_cache: { max_mib: 0 } };

test('a process in its own mount namespace and root (pivot_root, as runtimes do): its binary is read inside that root', async () => {
  const root = containerRoot('container');
  const program = await startProgram(contain, [root, '/bin/workload'], '/bin/workload');
  try {
    assert.equal(readFileSync(`/proc/${program.pid}/maps`, 'utf8').includes(' /bin/workload\n'), true, 'maps show the path inside the root');
    const telemetry = new SelfTelemetry();
    const sink = new ProfilesSink();
    const processor = createProcessor(noCache, telemetry, sink);
    await processor.start(testHost());
    const address = absoluteAddress(program.pid, '/bin/workload', staticWorkload, symbolAddress(staticWorkload, 'symbolizer_leaf') + 4n);
    try {
      await processor.consume(fixtureBatch([{ pid: program.pid, frames: [{ kind: 'user', address }] }]));
    } finally {
      await processor.shutdown();
    }
    const [frame] = sink.batches[0].samples[0].frames;
    assert.equal(frame.functionName, 'symbolizer_leaf');
    assert.equal(frame.mapping?.path, '/bin/workload');
    assert.equal(await selfMetric(telemetry, 'ebpf_collector_symbolizer_refused_files_total'), undefined, 'nothing refused');
  } finally {
    await program.stop();
  }
});

test('symlinks planted in a container resolve inside its root: /etc/shadow, an absolute host path, ../../..; a magic link is refused', async () => {
  const root = containerRoot('planted', true);
  // A host file outside the container, and an ELF at all: if the symbolizer left the root, it would name klass's method.
  const outside = join(dir.path, 'outside', 'secret.so');
  mkdirSync(join(dir.path, 'outside'));
  copyFileSync(klass, outside);
  symlinkSync('/etc/shadow', join(root, 'lib', 'shadow.so'));
  symlinkSync(outside, join(root, 'lib', 'absolute.so'));
  symlinkSync(`${'../'.repeat(20)}${outside.slice(1)}`, join(root, 'lib', 'relative.so'));
  // The container's own procfs (contain mounts one) holds magic links to every process's root, this one's too.
  symlinkSync(`/proc/${process.pid}/root${outside}`, join(root, 'lib', 'magic.so'));
  const program = await startProgram(contain, [root, '/bin/workload'], '/bin/workload');
  const symbolizer = newSymbolizer();
  try {
    assert.ok(existsSync(`/proc/${program.pid}/root/proc/${process.pid}/root${outside}`), 'the container\'s procfs leads outside, were magic links followed');
    const asOutside = (path: string) => ({ pid: program.pid, path, ...identityOf(outside), fileOffsets: BigUint64Array.of(methodOffset()) });
    const shadow = await symbolizer.symbolize([{ ...asOutside('/lib/shadow.so'), ...identityOf('/etc/shadow') }]);
    assert.match(shadow.binaries[0].error ?? '', /No such file/, 'the container has no /etc/shadow; the host\'s is not opened');
    for (const path of ['/lib/absolute.so', '/lib/relative.so']) {
      const result = await symbolizer.symbolize([asOutside(path)]);
      assert.deepEqual(names(result), [undefined], `${path} does not reach ${outside}`);
      assert.match(result.binaries[0].error ?? '', /No such file/);
    }
    const magic = await symbolizer.symbolize([asOutside('/lib/magic.so')]);
    assert.deepEqual(names(magic), [undefined]);
    assert.deepEqual(magic.refusals, { unsafe_path: 1 });

    // A file at the same path inside the root is what the symlinks lead to: read only when it is the mapped one.
    const decoy = join(root, outside);
    mkdirSync(dirname(decoy), { recursive: true });
    copyFileSync(staticWorkload, decoy);
    for (const path of ['/lib/absolute.so', '/lib/relative.so']) {
      const mapped = await symbolizer.symbolize([{ pid: program.pid, path, ...identityOf(decoy), fileOffsets: BigUint64Array.of(leafOffset(staticWorkload)) }]);
      assert.deepEqual(names(mapped), ['symbolizer_leaf'], `${path} resolves to ${decoy}, inside the root`);
      const notMapped = await symbolizer.symbolize([asOutside(path)]);
      assert.deepEqual(names(notMapped), [undefined]);
      assert.deepEqual(notMapped.refusals, { replaced: 1 }, 'the file found in the root is not the one asked for');
    }
  } finally {
    symbolizer.close();
    await program.stop();
  }
});

test('a file replaced after /proc/PID/maps was read is refused as not the mapped file; the mapping, now deleted, is still read', async () => {
  const binary = join(dir.path, 'replaced', 'workload');
  mkdirSync(join(dir.path, 'replaced'));
  copyFileSync(workload, binary);
  const program = await startProgram(binary, [], binary);
  const symbolizer = newSymbolizer();
  try {
    const before = mappedFileOf(program.pid, binary);
    // Another ELF moved into its place: the path now names a different file.
    copyFileSync(klass, `${binary}.new`);
    renameSync(`${binary}.new`, binary);
    const result = await symbolizer.symbolize([{ ...before, fileOffsets: BigUint64Array.of(leafOffset(workload), methodOffset()) }]);
    assert.deepEqual(names(result), [undefined, undefined], 'neither the old offsets nor klass\'s are named from the new file');
    assert.deepEqual(result.refusals, { replaced: 1 });
    assert.match(result.binaries[0].error ?? '', new RegExp(`/proc/${program.pid}/root${binary} is not the mapped file: /proc/${program.pid}/maps has device and inode ${before.device} ${before.inode}`));

    const now = mappedFileOf(program.pid, binary);
    assert.ok(now.mapFiles, 'maps now mark the mapping deleted');
    const deleted = await symbolizer.symbolize([{ ...now, fileOffsets: BigUint64Array.of(leafOffset(workload)) }]);
    assert.deepEqual(names(deleted), ['symbolizer_leaf'], 'read through /proc/PID/map_files, the kernel\'s link to the mapped file');
    assert.deepEqual(deleted.refusals, {});
  } finally {
    symbolizer.close();
    await program.stop();
  }
});

// A blocking open would wait for a writer for ever: the timeout turns that into a failure.
test('a FIFO planted where the mapped file was is refused at once, not waited on', { timeout: 60_000 }, async () => {
  const binary = join(dir.path, 'fifo', 'workload');
  mkdirSync(join(dir.path, 'fifo'));
  copyFileSync(workload, binary);
  const program = await startProgram(binary, [], binary);
  const symbolizer = newSymbolizer();
  try {
    const before = mappedFileOf(program.pid, binary);
    rmSync(binary);
    execFileSync('mkfifo', [binary]);
    const result = await symbolizer.symbolize([{ ...before, fileOffsets: BigUint64Array.of(leafOffset(workload)) }]);
    assert.deepEqual(names(result), [undefined]);
    assert.deepEqual(result.refusals, { not_regular: 1 });
    assert.match(result.binaries[0].error ?? '', /is not a regular file/);
  } finally {
    symbolizer.close();
    await program.stop();
  }
});

test('a binary on overlayfs, as container images are mounted, passes the device and inode check', async () => {
  const base = join(dir.path, 'overlay');
  for (const part of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(base, part), { recursive: true });
  copyFileSync(workload, join(base, 'lower', 'workload'));
  const merged = join(base, 'merged', 'workload');
  const script = `mount -t overlay overlay -o lowerdir=${base}/lower,upperdir=${base}/upper,workdir=${base}/work ${base}/merged && exec ${merged}`;
  const program = await startProgram('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], merged);
  const symbolizer = newSymbolizer();
  try {
    const file = mappedFileOf(program.pid, merged);
    assert.notEqual(file.device, identityOf(join(base, 'lower', 'workload')).device, 'maps show the overlay, not the layer below');
    const result = await symbolizer.symbolize([{ ...file, fileOffsets: BigUint64Array.of(leafOffset(workload)) }]);
    assert.deepEqual(names(result), ['symbolizer_leaf']);
    assert.deepEqual(result.refusals, {});
  } finally {
    symbolizer.close();
    await program.stop();
  }
});

test('without openat2 (an old kernel, a seccomp profile without it) a file in a process\'s root is refused, not opened unchecked', async () => {
  const noOpenat2 = join(dir.path, 'no-openat2');
  execFileSync('gcc', ['-O2', testdata('no-openat2.c'), '-o', noOpenat2]);
  const program = await startProgram(workload, [], workload);
  try {
    const file = mappedFileOf(program.pid, workload);
    const request = { ...file, inode: file.inode.toString(), offset: leafOffset(workload).toString() };
    // A fresh node under the filter: openat2 fails with ENOSYS there, as where the kernel lacks it.
    const script = `
      import { ElfSymbolizer } from ${JSON.stringify(import.meta.resolve('../../native/index.js'))};
      const request = ${JSON.stringify(request)};
      const symbolizer = new ElfSymbolizer({ maxBinaries: 1, maxSymbols: 1, debugDirs: [], debugCacheDir: '/nonexistent', debugCacheMaxBytes: 0 });
      const result = await symbolizer.symbolize([{ ...request, inode: BigInt(request.inode), fileOffsets: BigUint64Array.of(BigInt(request.offset)) }]);
      console.log(JSON.stringify({ function: [...result.function], error: result.binaries[0].error, refusals: result.refusals }));
      symbolizer.close();`;
    const output = JSON.parse(execFileSync(noOpenat2, [process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' }));
    assert.deepEqual(output.function, [-1]);
    assert.deepEqual(output.refusals, { openat2_unavailable: 1 });
    assert.match(output.error, /openat2 is unavailable \(Linux 5\.6\+ and a seccomp profile that allows it are needed\)/);
  } finally {
    await program.stop();
  }
});

/** A .gnu_debuglink section naming `name`, with the CRC of `debugFile`, as objcopy writes one. */
function debuglinkSection(name: string, debugFile: string): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const padded = Buffer.alloc(Math.ceil(nameBytes.length / 4) * 4);
  nameBytes.copy(padded);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32(readFileSync(debugFile)));
  return Buffer.concat([padded, crc]);
}

test('a .gnu_debuglink name with a "/" is refused and counted, though the file it names exists with the right CRC; so is a huge candidate', { timeout: 120_000 }, async () => {
  const base = join(dir.path, 'debuglink');
  mkdirSync(join(base, 'bin'), { recursive: true });
  mkdirSync(join(base, 'debug'));
  // Without a build id, only the debuglink could find the debug file.
  const noBuildId = join(base, 'workload-no-build-id');
  execFileSync('objcopy', ['--remove-section=.note.gnu.build-id', workload, noBuildId]);
  const debugFile = join(base, 'debug', 'workload.debug');
  execFileSync('objcopy', ['--only-keep-debug', noBuildId, debugFile]);
  const sectionFile = join(base, 'section');

  const run = async (linkName: string) => {
    const binary = join(base, 'bin', `workload-${linkName.includes('/') ? 'path' : 'plain'}`);
    execFileSync('strip', ['-s', noBuildId, '-o', binary]);
    writeFileSync(sectionFile, debuglinkSection(linkName, debugFile));
    execFileSync('objcopy', ['--add-section', `.gnu_debuglink=${sectionFile}`, binary]);
    const program = await startProgram(binary, [], binary);
    const telemetry = new SelfTelemetry();
    const sink = new ProfilesSink();
    const processor = createProcessor(noCache, telemetry, sink);
    await processor.start(testHost());
    try {
      const address = absoluteAddress(program.pid, binary, noBuildId, symbolAddress(noBuildId, 'symbolizer_leaf') + 4n);
      await processor.consume(fixtureBatch([{ pid: program.pid, frames: [{ kind: 'user', address }] }]));
    } finally {
      await processor.shutdown();
      await program.stop();
    }
    const refused = async (reason: string) => selfMetric(telemetry, 'ebpf_collector_symbolizer_refused_files_total', { reason });
    return { functionName: sink.batches[0].samples[0].frames[0].functionName, refusedName: await refused('debuglink_name'), refusedSize: await refused('debuglink_too_large') };
  };

  // The same debug file beside the binary's directory: a plain name in bin/ finds it once it is there.
  copyFileSync(debugFile, join(base, 'bin', 'workload.debug'));
  assert.deepEqual(await run('workload.debug'), { functionName: 'symbolizer_leaf', refusedName: undefined, refusedSize: undefined }, 'a plain name works');
  rmSync(join(base, 'bin', 'workload.debug'));
  assert.deepEqual(await run('../debug/workload.debug'), { functionName: undefined, refusedName: 1, refusedSize: undefined });

  // A sparse file of 5 GiB under the plain name: it would be read whole for its CRC, stalling every lookup meanwhile.
  writeFileSync(join(base, 'bin', 'workload.debug'), '');
  truncateSync(join(base, 'bin', 'workload.debug'), 5 * 2 ** 30);
  assert.deepEqual(await run('workload.debug'), { functionName: undefined, refusedName: undefined, refusedSize: 1 });
});

test('debug_file_cache.directory: a symlink, another uid\'s directory, a mode 0777 directory are refused at start, naming the path', async () => {
  const start = async (directory: string) => createProcessor({ debug_file_cache: { directory } }).start(testHost());
  const real = join(dir.path, 'real-cache');
  mkdirSync(real, { mode: 0o700 });
  const link = join(dir.path, 'cache-link');
  symlinkSync(real, link);
  await assert.rejects(start(link), { message: `debug_file_cache.directory: debug-file cache directory ${link} is a symbolic link; it must be a real directory` });

  const foreign = join(dir.path, 'foreign-cache');
  mkdirSync(foreign, { mode: 0o700 });
  chownSync(foreign, 65534, 65534);
  await assert.rejects(start(foreign), { message: `debug_file_cache.directory: debug-file cache directory ${foreign} is owned by uid 65534, not by the collector's uid ${process.geteuid!()}` });

  const open = join(dir.path, 'open-cache');
  mkdirSync(open);
  chmodSync(open, 0o777);
  await assert.rejects(start(open), /debug-file cache directory .*open-cache has mode 0777: group or others can write to it/);

  const file = join(dir.path, 'file-cache');
  writeFileSync(file, '');
  await assert.rejects(start(file), /debug-file cache directory .*file-cache is not a directory/);

  // Missing: created, with its parents, mode 0700 whatever the umask allows beyond it.
  const fresh = join(dir.path, 'fresh', 'cache');
  const processor = createProcessor({ debug_file_cache: { directory: fresh } });
  await processor.start(testHost());
  await processor.shutdown();
  assert.equal(lstatSync(fresh).mode & 0o7777, 0o700);
  assert.equal(lstatSync(fresh).uid, process.geteuid!());
});

test('debug file cache: all files in it stay within max bytes, the least recently used removed first', async () => {
  // Three builds (distinct build ids), each with a compressed debug file found by build id.
  const debugDir = join(dir.path, 'bound-debug');
  const builds = ['a', 'b', 'c'].map((variant) => {
    const full = join(dir.path, `bound-${variant}`);
    execFileSync('gcc', ['-O0', '-g', '-fno-omit-frame-pointer', `-DVARIANT_${variant}`, `-Wl,--build-id=0x${variant.repeat(40)}`, testdata('workload.c'), '-o', full]);
    const buildId = buildIdOf(full);
    mkdirSync(join(debugDir, '.build-id', buildId.slice(0, 2)), { recursive: true });
    execFileSync('objcopy', ['--only-keep-debug', '--compress-debug-sections=zlib', full, join(debugDir, '.build-id', buildId.slice(0, 2), `${buildId.slice(2)}.debug`)]);
    const stripped = `${full}-stripped`;
    execFileSync('strip', ['-s', full, '-o', stripped]);
    return { full, stripped };
  });
  const cacheDir = join(dir.path, 'bound-cache');
  const usage = () => readdirSync(cacheDir).map((name) => ({ name, bytes: statSync(join(cacheDir, name)).blocks * 512 }));

  // One copy's size first, to set the bound at two and a half copies.
  const probe = newSymbolizer({ debugDirs: [debugDir], debugCacheDir: join(dir.path, 'probe-cache'), debugCacheMaxBytes: 1 << 30 });
  const programs = await Promise.all(builds.map((b) => startProgram(b.stripped, [], b.stripped)));
  try {
    const symbolize = async (symbolizer: ElfSymbolizer, i: number) => {
      const file = mappedFileOf(programs[i].pid, builds[i].stripped);
      return names(await symbolizer.symbolize([{ ...file, fileOffsets: BigUint64Array.of(leafOffset(builds[i].full)) }]));
    };
    assert.deepEqual(await symbolize(probe, 0), ['symbolizer_leaf']);
    probe.close();
    const [copy] = readdirSync(join(dir.path, 'probe-cache'));
    const copyBytes = statSync(join(dir.path, 'probe-cache', copy)).blocks * 512;
    const maxBytes = Math.floor(copyBytes * 2.5);

    // Symbolizers do not share state beyond the directory: a fresh one per step reads only the disk.
    const step = async (i: number) => {
      const symbolizer = newSymbolizer({ debugDirs: [debugDir], debugCacheDir: cacheDir, debugCacheMaxBytes: maxBytes });
      try {
        assert.deepEqual(await symbolize(symbolizer, i), ['symbolizer_leaf'], `build ${i} named from its copy`);
      } finally {
        symbolizer.close();
      }
      const files = usage();
      assert.ok(files.reduce((sum, f) => sum + f.bytes, 0) <= maxBytes, `within ${maxBytes} bytes: ${JSON.stringify(files)}`);
      return files.map((f) => f.name);
    };
    const [a] = await step(0);
    const afterB = await step(1);
    assert.equal(afterB.length, 2);
    const b = afterB.find((name) => name !== a)!;
    // Use times a minute apart, a older than b, whatever the clock's granularity: only a's reuse below can make it the newer.
    const now = Date.now() / 1000;
    utimesSync(join(cacheDir, a), now - 120, now - 120);
    utimesSync(join(cacheDir, b), now - 60, now - 60);
    assert.deepEqual((await step(0)).sort(), [a, b].sort(), 'a reused copy is not made again');
    const afterC = await step(2);
    assert.equal(afterC.length, 2);
    assert.ok(afterC.includes(a) && !afterC.includes(b), 'b, the least recently used, was removed for c');
  } finally {
    for (const program of programs) await program.stop();
  }
});
