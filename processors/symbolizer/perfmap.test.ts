/** JIT frames named from perf map files: node --perf-basic-prof, a map written while the profile runs, and hostile maps. */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync, chownSync, closeSync, constants, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import type { ProfileBatch } from '../../collector/data/profiles.js';
import { projectPath } from '../../collector/paths.js';
import { SelfTelemetry } from '../../collector/telemetry.js';
import { eventually, freePort, RunningCollector, sampleValue, scrape } from '../../test/support/collector.js';
import { ProfilesSink, selfMetric, testHost, testSettings } from '../../test/support/components.js';
import { symbolizerProcessorFactory } from './factory.js';
import { fixtureBatch, startProgram, temporaryDir, testdata } from './testing/test-programs.js';

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

// Perf maps as hostile input: each test plants the file for a process it starts, as another user or a
// container could, and shows the symbolizer is neither blocked nor fooled, and says what it refused.

interface Sleeper {
  pid: number;
  /** Where the process's perf map is looked for (same mount and pid namespace as the test). */
  perfMap: string;
  stop(): Promise<void>;
}

/** A process that sleeps until stopped, as `uid` (and the same gid) if given, or `command` that runs `executable`. */
async function sleeper(options: { uid?: number; command?: string[]; executable?: string } = {}): Promise<Sleeper> {
  const [command, ...args] = options.command ?? ['sleep', '1000'];
  const child = spawn(command, args, { stdio: 'ignore', uid: options.uid, gid: options.uid });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid!;
  const perfMap = `/tmp/perf-${pid}.map`;
  const stop = async () => {
    child.kill('SIGKILL');
    await exited;
    rmSync(perfMap, { force: true });
  };
  // Until it has exec'd, the child is still a copy of this process (its uid, its executable).
  const executable = options.executable ?? '/usr/bin/sleep';
  await eventually(`pid ${pid} to run ${executable}`, 10_000, async () => (readlinkSync(`/proc/${pid}/exe`) === executable ? true : undefined)).catch(async (error) => {
    await stop();
    throw error;
  });
  return { pid, perfMap, stop };
}

/** Lines `START SIZE name` for `count` functions of 0x10 bytes from `base`, named `<prefix>_<i>` padded to `nameBytes`. */
function mapLines(prefix: string, count: number, base = 0x1000, nameBytes = 0): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(`${(base + i * 0x10).toString(16)} 10 ${`${prefix}_${i}`.padEnd(nameBytes, '_')}\n`);
  return lines.join('');
}

/** A JIT frame (a leaf, looked up at its address) inside function i of mapLines(…, base). */
function jitFrame(i: number, base = 0x1000) {
  return { kind: 'user' as const, address: BigInt(base + i * 0x10 + 4) };
}

function hostileSetup(config: Record<string, unknown> = {}) {
  const telemetry = new SelfTelemetry();
  const warnings: { pid?: number; reason?: string; msg: string }[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
  const settings = { ...testSettings('processor', 'symbolizer'), logger, telemetry: telemetry.forComponent('processor', 'symbolizer') };
  const sink = new ProfilesSink();
  const processor = symbolizerProcessorFactory.create(settings, symbolizerProcessorFactory.configSchema.parse(config), 'profiles', sink);
  const names = async (samples: { pid: number; frames: ReturnType<typeof jitFrame>[] }[]) => {
    const batch = fixtureBatch(samples);
    await withDeadline(processor.consume(batch), 'the batch');
    return batch.samples.map((s) => s.frames.map((f) => f.functionName));
  };
  const refused = (reason: string) => selfMetric(telemetry, 'ebpf_collector_symbolizer_perf_maps_refused_total', { reason });
  const tableBytes = () => selfMetric(telemetry, 'ebpf_collector_symbolizer_perf_map_bytes');
  return { processor, names, refused, tableBytes, warnings, shutdown: () => withDeadline(processor.shutdown(), 'shutdown') };
}

/** Fails (rather than hangs) when a step that must not block does. */
async function withDeadline<T>(work: Promise<T>, what: string, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('a FIFO at the perf map path is never opened: the batch and shutdown complete, other processes are still named', async () => {
  const [hostile, normal] = [await sleeper(), await sleeper()];
  const { processor, names, refused, warnings, shutdown } = hostileSetup();
  await processor.start(testHost());
  try {
    execFileSync('mkfifo', [hostile.perfMap]);
    writeFileSync(normal.perfMap, mapLines('normal', 4));
    const samples = [{ pid: hostile.pid, frames: [jitFrame(0), jitFrame(1)] }, { pid: normal.pid, frames: [jitFrame(2)] }, { pid: hostile.pid, frames: [jitFrame(3)] }];
    assert.deepEqual(await names(samples), [[undefined, undefined], ['normal_2'], [undefined]]);
    assert.deepEqual(await names(samples), [[undefined, undefined], ['normal_2'], [undefined]], 'and again: nothing is left waiting on the FIFO');
    // A FIFO with a reader lets a non-blocking writer open it; without one, ENXIO.
    assert.throws(() => openSync(hostile.perfMap, constants.O_WRONLY | constants.O_NONBLOCK), { code: 'ENXIO' }, 'the symbolizer holds no reader on the FIFO');
    await shutdown();
  } finally {
    // Should a reader still be blocked on the FIFO, a writer's open releases it, so the test cannot hang.
    try {
      closeSync(openSync(hostile.perfMap, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: no reader, as asserted above
    }
    await processor.shutdown();
    await hostile.stop();
    await normal.stop();
  }
  assert.equal(await refused('not_regular'), 1, 'counted once for the process, not per sample or batch');
  const logged = warnings.filter((w) => w.pid === hostile.pid);
  assert.equal(logged.length, 1, 'logged once');
  assert.equal(logged[0].reason, 'not_regular');
  assert.match(logged[0].msg, /perf map \/proc\/\d+\/root\/tmp\/perf-\d+\.map refused \(not_regular\): not a regular file \(a FIFO\), never opened/);
});

test('a symlink at the perf map path is not followed, nor a symlinked /tmp in the process\'s root', async () => {
  const dir = temporaryDir();
  // A map the hostile process may not show as its own: another process's, or one on the host.
  const target = join(dir.path, 'perf-other.map');
  writeFileSync(target, mapLines('not_yours', 4));
  // A process in its own root (chroot), whose /tmp is an absolute symlink: followed from outside, it would lead
  // to the collector's /tmp/…/elsewhere, not to anything inside the process's root.
  const root = join(dir.path, 'root');
  mkdirSync(root);
  writeFileSync(join(dir.path, 'pause.c'), '#include <unistd.h>\nint main(void) { for (;;) pause(); }\n');
  execFileSync('gcc', ['-static', '-O1', join(dir.path, 'pause.c'), '-o', join(root, 'pause')]);
  const elsewhere = join(dir.path, 'elsewhere');
  mkdirSync(elsewhere);
  symlinkSync(elsewhere, join(root, 'tmp'));

  const linked = await sleeper();
  const chrooted = await sleeper({ command: ['chroot', root, '/pause'], executable: join(root, 'pause') });
  const { processor, names, refused, warnings, shutdown } = hostileSetup();
  await processor.start(testHost());
  try {
    symlinkSync(target, linked.perfMap);
    writeFileSync(join(elsewhere, `perf-${chrooted.pid}.map`), mapLines('host_file', 4));
    assert.deepEqual(await names([{ pid: linked.pid, frames: [jitFrame(1)] }, { pid: chrooted.pid, frames: [jitFrame(2)] }]), [[undefined], [undefined]]);
    await shutdown();
  } finally {
    await processor.shutdown();
    await linked.stop();
    await chrooted.stop();
    dir.remove();
  }
  assert.equal(await refused('symlink'), 2);
  assert.match(warnings.find((w) => w.pid === linked.pid)!.msg, /refused \(symlink\): a symbolic link \(not followed\)/);
  assert.match(warnings.find((w) => w.pid === chrooted.pid)!.msg, new RegExp(`refused \\(symlink\\): /proc/${chrooted.pid}/root/tmp is a symbolic link`));
});

test('a perf map owned by another user is refused; one owned by the process\'s user or by root is read', async () => {
  const processUser = 4242;
  const otherUser = 4343;
  const asRoot = await sleeper();
  const asUser = await sleeper({ uid: processUser });
  const rootOwned = await sleeper({ uid: processUser });
  const { processor, names, refused, warnings, shutdown } = hostileSetup();
  await processor.start(testHost());
  try {
    writeFileSync(asRoot.perfMap, mapLines('planted', 4));
    chownSync(asRoot.perfMap, otherUser, otherUser);
    writeFileSync(asUser.perfMap, mapLines('own', 4));
    chownSync(asUser.perfMap, processUser, processUser);
    writeFileSync(rootOwned.perfMap, mapLines('root_owned', 4));
    assert.deepEqual(
      await names([asRoot, asUser, rootOwned].map(({ pid }) => ({ pid, frames: [jitFrame(3)] }))),
      [[undefined], ['own_3'], ['root_owned_3']],
    );
    await shutdown();
  } finally {
    await processor.shutdown();
    await Promise.all([asRoot.stop(), asUser.stop(), rootOwned.stop()]);
  }
  assert.equal(await refused('wrong_owner'), 1);
  assert.match(warnings.find((w) => w.pid === asRoot.pid)!.msg, /refused \(wrong_owner\): owned by uid 4343, not by the process's user \(uid 0\) or root/);
});

/** A map whose table takes about `mib` MiB: 80-byte entries (20 bytes plus a 60-byte name). */
function mapOfMib(prefix: string, mib: number): { text: string; entries: number } {
  const entries = Math.round((mib * 1024 * 1024) / 80);
  return { text: mapLines(prefix, entries, 0x1000, 60), entries };
}

test('a perf map over the per-process budget is refused and counted; other processes are still named', async () => {
  const [big, small] = [await sleeper(), await sleeper()];
  const { processor, names, refused, tableBytes, warnings, shutdown } = hostileSetup({ perf_map_max_process_mib: 1 });
  await processor.start(testHost());
  try {
    writeFileSync(big.perfMap, mapOfMib('big', 1.5).text);
    writeFileSync(small.perfMap, mapLines('small', 10, 0x1000, 60));
    const samples = [{ pid: big.pid, frames: [jitFrame(5)] }, { pid: small.pid, frames: [jitFrame(5)] }];
    assert.deepEqual(await names(samples), [[undefined], [`small_5`.padEnd(60, '_')]]);
    assert.equal(await tableBytes(), 10 * 80, 'only the small table is held');
    assert.deepEqual(await names(samples), [[undefined], [`small_5`.padEnd(60, '_')]]);
    await shutdown();
  } finally {
    await processor.shutdown();
    await big.stop();
    await small.stop();
  }
  assert.equal(await refused('too_large'), 1);
  assert.match(warnings.find((w) => w.pid === big.pid)!.msg, /refused \(too_large\): its table would exceed perf_map_max_process_mib \(1 MiB\)/);
});

test('the total budget across processes: a map that does not fit is refused until another is let go', async () => {
  const processes = [await sleeper(), await sleeper(), await sleeper()];
  const { processor, names, refused, tableBytes, shutdown } = hostileSetup({ perf_map_max_process_mib: 1, perf_map_max_total_mib: 2 });
  await processor.start(testHost());
  const maps = processes.map((_, i) => mapOfMib(`process${i}`, 0.8));
  const last = (i: number) => `process${i}_${maps[i].entries - 1}`.padEnd(60, '_');
  const lookUp = (i: number) => ({ pid: processes[i].pid, frames: [jitFrame(maps[i].entries - 1)] });
  try {
    processes.forEach(({ perfMap }, i) => writeFileSync(perfMap, maps[i].text));
    // One at a time, so that which one is refused does not depend on how their reads interleave.
    assert.deepEqual(await names([lookUp(0)]), [[last(0)]]);
    assert.deepEqual(await names([lookUp(1)]), [[last(1)]]);
    assert.deepEqual(await names([lookUp(2)]), [[undefined]], 'two maps of 0.8 MiB leave no room for a third under 2 MiB');
    assert.equal(await tableBytes(), 2 * maps[0].entries * 80);
    assert.equal(await refused('over_budget'), 1);

    await processes[0].stop();
    // This batch lets go of the exited process's table ...
    assert.deepEqual(await names([lookUp(1), lookUp(2)]), [[last(1)], [undefined]]);
    // ... so the next one reads the refused map, without waiting for its recheck.
    assert.deepEqual(await names([lookUp(1), lookUp(2)]), [[last(1)], [last(2)]]);
    assert.equal(await tableBytes(), 2 * maps[0].entries * 80);
    await shutdown();
  } finally {
    await processor.shutdown();
    await Promise.all(processes.map((p) => p.stop()));
  }
  assert.equal(await refused('over_budget'), 1, 'counted once for the process');
});

test('a map read in chunks: lines across chunk boundaries, a line longer than 64 KiB, lines perf would not read', async () => {
  const program = await sleeper();
  const { processor, names, refused, shutdown } = hostileSetup();
  await processor.start(testHost());
  // Over 200 KiB of names of varying length, so that lines straddle the 64 KiB reads.
  const count = 3000;
  const name = (i: number) => `fn_${i}_${'é'.repeat(i % 97)}`;
  const lines = Array.from({ length: count }, (_, i) => `${(0x1000 + i * 0x10).toString(16)} 10 ${name(i)}\n`);
  lines.splice(100, 0, `a000000 10 ${'x'.repeat(100 * 1024)}\n`, 'not a perf map line\n', '1234 zz bad_size\n', '12345678901234567 10 too_long_start\n', 'b000000 10    \n');
  lines.splice(2000, 0, 'c000000 10 crlf_line\r\n');
  try {
    writeFileSync(program.perfMap, lines.join(''));
    const frames = Array.from({ length: count }, (_, i) => jitFrame(i));
    frames.push({ kind: 'user', address: 0xa000004n }, { kind: 'user', address: 0xb000004n }, { kind: 'user', address: 0xc000004n });
    const [named] = await names([{ pid: program.pid, frames }]);
    assert.deepEqual(named, [...Array.from({ length: count }, (_, i) => name(i)), undefined, undefined, 'crlf_line']);
    await shutdown();
  } finally {
    await processor.shutdown();
    await program.stop();
  }
  assert.equal(await refused('too_large'), undefined, 'nothing refused');
});

/** Spins in a function copied into anonymous executable memory, as a JIT's code is; prints where it is. */
const JIT_PROGRAM = `#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
/* x86-64: loop: dec %rdi; jnz loop; ret */
static const unsigned char code[] = {0x48, 0xff, 0xcf, 0x75, 0xfb, 0xc3};
__attribute__((noinline)) void native_spin(long n) { for (volatile long i = 0; i < n; i++); }
int main(void) {
  unsigned char *jit = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (jit == MAP_FAILED) return 1;
  memcpy(jit, code, sizeof code);
  printf("%lx %zx\\n", (unsigned long)jit, sizeof code);
  fflush(stdout);
  void (*jitted)(long) = (void (*)(long))jit;
  for (;;) { jitted(50000000); native_spin(5000000); }
}
`;

test('end to end: a FIFO planted as a JIT process\'s perf map stalls neither the cpu receiver, nor the symbolizer, nor shutdown', async () => {
  const dir = temporaryDir();
  writeFileSync(join(dir.path, 'jit.c'), JIT_PROGRAM);
  const binary = join(dir.path, 'jit_fifo');
  execFileSync('gcc', ['-O1', '-fno-omit-frame-pointer', join(dir.path, 'jit.c'), '-o', binary]);
  // A second name, so that the profile's comm tells the processes apart.
  copyFileSync(binary, join(dir.path, 'jit_good'));
  const start = async (name: string) => {
    const child = spawn(join(dir.path, name), [], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const [line] = await once(child.stdout, 'data');
    const [address] = String(line).trim().split(' ');
    return { pid: child.pid!, address, perfMap: `/tmp/perf-${child.pid}.map`, stop: () => (child.kill('SIGKILL'), exited) };
  };
  const fifo = await start('jit_fifo');
  const good = await start('jit_good');
  execFileSync('mkfifo', [fifo.perfMap]);
  writeFileSync(good.perfMap, `${good.address} 6 jit_loop_from_perf_map\n`);
  const metricsPort = await freePort();
  let collector: RunningCollector | undefined;
  try {
    collector = await RunningCollector.start(`
receivers:
  cpu:
    frequency_hz: 199
    collection_interval: 1s
    pids: [${fifo.pid}, ${good.pid}]
processors:
  symbolizer: {}
connectors:
  profilemetrics: {}
exporters:
  pprof:
    write_files: false
  prometheus:
    endpoint: 127.0.0.1:${metricsPort}
service:
  http:
    endpoint: 127.0.0.1:HTTP_PORT
  pipelines:
    profiles:
      receivers: [cpu]
      processors: [symbolizer]
      exporters: [pprof, profilemetrics]
    metrics:
      receivers: [profilemetrics]
      exporters: [prometheus]
`);
    const response = await fetch(`${collector.statusUrl}/debug/pprof/folded?seconds=5&pid=${fifo.pid},${good.pid}`, { signal: AbortSignal.timeout(30_000) });
    assert.equal(response.status, 200, await response.clone().text());
    const stacks = (await response.text()).split('\n').filter(Boolean).map((line) => line.slice(0, line.lastIndexOf(' ')).split(';'));
    const leaves = (comm: string) => new Set(stacks.filter((s) => s[0] === comm).map((s) => s[s.length - 1]));
    const [fifoLeaves, goodLeaves] = [leaves('jit_fifo'), leaves('jit_good')];
    assert.ok(goodLeaves.has('jit_loop_from_perf_map'), `the regular perf map names the JIT code: ${[...goodLeaves]}`);
    assert.ok(goodLeaves.has('native_spin') && fifoLeaves.has('native_spin'), `native frames of both are named: ${[...fifoLeaves]}`);
    assert.ok([...fifoLeaves].some((leaf) => leaf.startsWith('[jit]+0x')), `the FIFO process's JIT frames are sampled and stay unnamed: ${[...fifoLeaves]}`);
    assert.ok(!fifoLeaves.has('jit_loop_from_perf_map'));
    assert.equal(sampleValue(await scrape(metricsPort), 'ebpf_collector_symbolizer_perf_maps_refused_total', { reason: 'not_regular' }), 1);
    assert.equal(await withDeadline(collector.stop(), 'the collector\'s shutdown', 30_000), 0, collector.stderr);
  } finally {
    try {
      closeSync(openSync(fifo.perfMap, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: nobody is blocked reading the FIFO
    }
    await collector?.stop();
    await Promise.all([fifo.stop(), good.stop()]);
    rmSync(fifo.perfMap, { force: true });
    rmSync(good.perfMap, { force: true });
    dir.remove();
  }
});

test('without CAP_DAC_OVERRIDE, another user\'s private perf map is unreadable: refused and counted, the lookup goes on', async () => {
  const dir = temporaryDir();
  const owner = await sleeper({ uid: 4242 });
  const readable = await sleeper({ uid: 4242 });
  try {
    writeFileSync(owner.perfMap, mapLines('private', 4), { mode: 0o600 });
    chownSync(owner.perfMap, 4242, 4242);
    writeFileSync(readable.perfMap, mapLines('readable', 4));
    chownSync(readable.perfMap, 4242, 4242);
    // The symbolizer's perf maps in a process that runs as root without the capabilities that bypass file permissions.
    const script = join(dir.path, 'lookup.mjs');
    const dist = (path: string) => pathToFileURL(projectPath('dist', path)).href;
    writeFileSync(script, `
      import { pino } from ${JSON.stringify(pathToFileURL(projectPath('node_modules', 'pino', 'pino.js')).href)};
      import { PerfMaps } from ${JSON.stringify(dist('processors/symbolizer/perfmap.js'))};
      import { SelfTelemetry } from ${JSON.stringify(dist('collector/telemetry.js'))};
      const telemetry = new SelfTelemetry();
      const settings = { id: { type: 'symbolizer', name: '', id: 'symbolizer' }, logger: pino({ level: 'silent' }), telemetry: telemetry.forComponent('processor', 'symbolizer') };
      const maps = new PerfMaps(settings, { perf_map_max_process_mib: 64, perf_map_max_total_mib: 256 });
      const names = [];
      for (const pid of [${owner.pid}, ${readable.pid}]) names.push((await maps.get(pid))?.lookup(0x1024) ?? null);
      const { scopeMetrics } = await telemetry.collect();
      const refused = scopeMetrics.flatMap((s) => s.metrics).filter((m) => m.descriptor.name === 'ebpf_collector_symbolizer_perf_maps_refused_total')
        .flatMap((m) => m.dataPoints.map((p) => [p.attributes.reason, p.value]));
      const capabilities = /^CapEff:\\s+(\\w+)$/m.exec((await import('node:fs')).readFileSync('/proc/self/status', 'utf8'))[1];
      console.log(JSON.stringify({ names, refused, capabilities }));
    `);
    const dropped = '-dac_override,-dac_read_search';
    const output = JSON.parse(execFileSync('setpriv', ['--inh-caps', dropped, '--bounding-set', dropped, '--', process.execPath, script], { encoding: 'utf8' }));
    assert.equal(BigInt(`0x${output.capabilities}`) & 0b110n, 0n, 'the lookup ran without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH');
    assert.deepEqual(output.names, [null, 'readable_2']);
    assert.deepEqual(output.refused, [['unreadable', 1]]);
  } finally {
    await owner.stop();
    await readable.stop();
    dir.remove();
  }
});

test('a process in its own pid and mount namespace: its map is the one in its /tmp, named with its pid there, not a decoy at its host pid', async () => {
  // unshare forks the namespace's pid 1, which mounts a /tmp of its own, writes its map there and sleeps.
  const unshare = spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount', 'sh', '-c', 'mount -t tmpfs none /tmp && echo "1000 10 in_container" > /tmp/perf-$$.map && exec sleep 1000'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => unshare.once('exit', () => resolve()));
  let pid = 0;
  try {
    pid = await eventually('the namespace\'s pid 1 to sleep', 10_000, async () => {
      const child = Number(readFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`, 'utf8').trim());
      return child > 0 && readlinkSync(`/proc/${child}/exe`) === '/usr/bin/sleep' ? child : undefined;
    });
    assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), new RegExp(`^NSpid:\\s+${pid}\\s+1$`, 'm'));
    writeFileSync(`/tmp/perf-${pid}.map`, mapLines('decoy', 4));
    const { processor, names, refused, shutdown } = hostileSetup();
    await processor.start(testHost());
    try {
      assert.deepEqual(await names([{ pid, frames: [{ kind: 'user', address: 0x1004n }] }]), [['in_container']]);
      await shutdown();
    } finally {
      await processor.shutdown();
    }
    assert.equal(await refused('symlink'), undefined);
  } finally {
    // --kill-child: the namespace's processes go with it.
    unshare.kill('SIGKILL');
    await exited;
    rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
});

test('appended lines merge into the table as perf reads the file: for every start, the last line read wins', async () => {
  const program = await sleeper();
  const { processor, names, shutdown } = hostileSetup();
  await processor.start(testHost());
  // A fixed pseudo-random sequence (xorshift), so that a failure can be replayed.
  let state = 0x9e3779b9;
  const random = (below: number) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % below;
  };
  // Starts on a 0x100 grid of 400 slots, code 0x10 long: many lines land on a start seen before, in a later append or the same one.
  const slots = 400;
  const expected = new Map<number, string>();
  const frames = Array.from({ length: slots }, (_, slot) => ({ kind: 'user' as const, address: BigInt(0x1000 + slot * 0x100 + 4) }));
  try {
    for (let round = 0; round < 6; round++) {
      const lines: string[] = [];
      // Sorted rounds take the path that skips sorting.
      const count = [300, 1, 50, 0, 200, 120][round];
      for (let k = 0; k < count; k++) {
        const slot = round === 2 ? k * 3 : random(slots);
        const name = `r${round}_l${k}_${'x'.repeat(random(40))}`;
        lines.push(`${(0x1000 + slot * 0x100).toString(16)} 10 ${name}\n`);
        expected.set(slot, name);
      }
      appendFileSync(program.perfMap, lines.join(''));
      const [named] = await names([{ pid: program.pid, frames }]);
      assert.deepEqual(named, frames.map((_, slot) => expected.get(slot)), `after round ${round}`);
    }
    await shutdown();
  } finally {
    await processor.shutdown();
    await program.stop();
  }
});

/** A FUSE file system whose root is an empty directory and which never answers a lookup in it, as a hung mount. */
const HUNG_FILE_SYSTEM = `#define FUSE_USE_VERSION 31
#include <fuse.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
static int getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  if (strcmp(path, "/") != 0) for (;;) pause();
  memset(st, 0, sizeof *st);
  st->st_mode = S_IFDIR | 0755;
  st->st_nlink = 2;
  return 0;
}
static const struct fuse_operations operations = { .getattr = getattr };
int main(int argc, char *argv[]) { return fuse_main(argc, argv, &operations, NULL); }
`;

test('a perf map on a file system that never answers (a hung FUSE mount) holds up the lookup for 5 s once, then not at all; shutdown completes', async () => {
  const dir = temporaryDir();
  writeFileSync(join(dir.path, 'hung.c'), HUNG_FILE_SYSTEM);
  const [cflags, libs] = ['--cflags', '--libs'].map((flag) => execFileSync('pkg-config', [flag, 'fuse3'], { encoding: 'utf8' }).trim().split(/\s+/));
  execFileSync('gcc', [...cflags, join(dir.path, 'hung.c'), ...libs, '-o', join(dir.path, 'hungfs')]);
  writeFileSync(join(dir.path, 'pause.c'), '#include <unistd.h>\nint main(void) { for (;;) pause(); }\n');
  const root = join(dir.path, 'root');
  mkdirSync(join(root, 'tmp'), { recursive: true });
  execFileSync('gcc', ['-static', '-O1', join(dir.path, 'pause.c'), '-o', join(root, 'pause')]);
  // The process's /tmp is the hung file system; -f: in the foreground, so that killing it ends the mount's requests.
  const server = spawn(join(dir.path, 'hungfs'), ['-f', join(root, 'tmp')], { stdio: 'ignore' });
  const serverExited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  let hung: Sleeper | undefined;
  let normal: Sleeper | undefined;
  const { processor, names, refused, warnings, shutdown } = hostileSetup();
  try {
    await eventually('the FUSE mount', 10_000, async () => (readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${join(root, 'tmp')} `) ? true : undefined));
    hung = await sleeper({ command: ['chroot', root, '/pause'], executable: join(root, 'pause') });
    normal = await sleeper();
    writeFileSync(normal.perfMap, mapLines('normal', 4));
    await processor.start(testHost());
    const samples = [{ pid: hung.pid, frames: [jitFrame(1)] }, { pid: normal.pid, frames: [jitFrame(1)] }];
    let started = Date.now();
    assert.deepEqual(await names(samples), [[undefined], ['normal_1']]);
    const first = Date.now() - started;
    assert.ok(first >= 4_900, `the first batch waited for the hung lookup's deadline, ${first} ms`);
    started = Date.now();
    assert.deepEqual(await names(samples), [[undefined], ['normal_1']]);
    // Generous for a loaded machine, and far below the deadline: the batch did not wait for the lookup again.
    assert.ok(Date.now() - started < 2_500, `the next batch does not wait for the lookup still hung, ${Date.now() - started} ms`);
    await shutdown();
  } finally {
    // A dead server's mount answers every request, the hung one included, with ENOTCONN.
    server.kill('SIGKILL');
    await serverExited;
    await processor.shutdown();
    execFileSync('umount', ['-l', join(root, 'tmp')]);
    await hung?.stop();
    await normal?.stop();
    dir.remove();
  }
  assert.equal(await refused('stalled'), 1);
  assert.match(warnings.find((w) => w.pid === hung!.pid)!.msg, /refused \(stalled\): no answer from its file system within 5 s/);
});
