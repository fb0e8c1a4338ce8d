import assert from 'node:assert/strict';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { CreateSettings } from '../../collector/component.js';
import type { ProfileSample } from '../../collector/data/profiles.js';
import { SelfTelemetry } from '../../collector/telemetry.js';
import { ProfilesSink, selfMetric, testHost, testSettings } from '../../test/support/components.js';
import { cgroup2Mount } from '../../collector/cgroups.js';
import type { CpuConfig } from './config.js';
import { cpuReceiverFactory } from './factory.js';
import { compileWorkload, copyAs, functionRanges, kernelTextRange, removeWorkloads, startWorkload, type Workload } from './testing/workloads.js';

function config(overrides: Record<string, unknown> = {}): CpuConfig {
  return cpuReceiverFactory.configSchema.parse({ collection_interval: '500ms', ...overrides });
}

function create(cfg: CpuConfig, sink = new ProfilesSink(), settings: CreateSettings = testSettings('receiver', 'cpu')) {
  return cpuReceiverFactory.create(settings, cfg, { profiles: sink });
}

/** Starts receivers, lets the workloads run to the end, shuts the receivers down (flushing), and returns the workloads' output. */
async function profile(receivers: ReturnType<typeof create>[], workloads: Workload[]): Promise<string[]> {
  const started = [];
  try {
    for (const receiver of receivers) {
      await receiver.start(testHost());
      started.push(receiver);
    }
    for (const workload of workloads) workload.go();
    return await Promise.all(workloads.map((w) => w.finished));
  } finally {
    for (const receiver of started) await receiver.shutdown();
  }
}

function firstUserFrame(sample: ProfileSample): bigint | undefined {
  return sample.frames.find((f) => f.kind === 'user')?.address;
}

const hotspots = compileWorkload('hotspots');
after(removeWorkloads);

test('lifecycle: shutdown without start, and twice', async () => {
  const receiver = create(config());
  await receiver.shutdown();
  await receiver.shutdown();
});

test('lifecycle: start, shut down, start a fresh instance, shut down', async () => {
  for (let round = 0; round < 2; round++) {
    const receiver = create(config());
    await receiver.start(testHost());
    await receiver.shutdown();
    await receiver.shutdown();
  }
});

test('config: defaults, and clear errors with their paths', () => {
  const schema = cpuReceiverFactory.configSchema;
  assert.deepEqual(schema.parse({}), { frequency_hz: 97, collection_interval: 10_000 });
  assert.deepEqual(schema.parse({ frequency_hz: 1000, pids: [42], cgroups: ['/system.slice'], comm: 'python*' }), {
    frequency_hz: 1000,
    collection_interval: 10_000,
    pids: [42],
    cgroups: ['/system.slice'],
    comm: 'python*',
  });
  const problems = (input: unknown) => {
    const result = schema.safeParse(input);
    assert.equal(result.success, false, `${JSON.stringify(input)} is refused`);
    return result.error!.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  };
  assert.match(problems({ frequency_hz: 0 })[0], /^frequency_hz: .*greater than or equal to 1/);
  assert.match(problems({ frequency_hz: 1001 })[0], /^frequency_hz: .*less than or equal to 1000/);
  assert.match(problems({ frequency_hz: 99.5 })[0], /^frequency_hz: Expected integer/);
  assert.match(problems({ interval: '1s' })[0], /unrecognized key.*interval/i);
  assert.match(problems({ collection_interval: 'soon' })[0], /^collection_interval: expected a duration/);
  assert.match(problems({ pids: [] })[0], /^pids: /);
  assert.match(problems({ pids: [0] })[0], /^pids\.0: /);
  assert.match(problems({ cgroups: ['system.slice'] })[0], /^cgroups\.0: expected a cgroup v2 path starting with "\/"/);
  assert.match(problems({ comm: 'py*thon' })[0], /^comm: expected a command name, or a prefix ending in "\*"/);
  assert.match(problems({ comm: '*' })[0], /^comm: expected a command name/);
  assert.match(problems({ comm: 'a-very-long-command' })[0], /^comm: a command name has at most 15 bytes/);
});

test('leaf frames land in the hot functions in their 6:3:1 proportion, kernel frames first', async () => {
  const workload = startWorkload(hotspots, ['3']);
  const ranges = functionRanges(hotspots, workload.pid, ['hot_a', 'hot_b', 'hot_c']);
  const sink = new ProfilesSink();
  // About 1500 samples in 3 CPU seconds, so that a share is known to within about 1.3 points (one standard deviation).
  await profile([create(config({ pids: [workload.pid], frequency_hz: 499 }), sink)], [workload]);

  assert.ok(sink.batches.length >= 2, 'several intervals were read');
  assert.ok(sink.batches.every((b) => b.periodNs === 1e9 / 499 && b.endTimeMs >= b.startTimeMs));
  const all = sink.samples(workload.pid);
  assert.ok(all.every((s) => s.comm === 'hotspots'));
  // A sample taken while the process exits, after its memory is released, rightly has kernel frames only.
  const samples = all.filter((s) => s.frames.some((f) => f.kind === 'user'));
  const kernelOnly = all.length - samples.length;
  assert.ok(kernelOnly <= Math.max(1, 0.01 * all.length), `${kernelOnly} of ${all.length} samples of a user process have no user frames`);
  for (const sample of samples) {
    const firstUser = sample.frames.findIndex((f) => f.kind === 'user');
    assert.ok(sample.frames.slice(firstUser).every((f) => f.kind === 'user'), 'kernel frames come before user frames');
    assert.ok(sample.frames.every((f) => f.mapping === undefined && f.functionName === undefined), 'left for the symbolizer');
  }
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const sample of samples) {
    const leaf = firstUserFrame(sample)!;
    const hit = [...ranges].find(([, r]) => leaf >= r.start && leaf < r.end)?.[0] ?? 'elsewhere';
    byFunction.set(hit, (byFunction.get(hit) ?? 0) + sample.count);
    total += sample.count;
  }
  assert.ok(total >= 500, `enough samples to judge (${total})`);
  // Shares of the samples in the three functions: the rest (about 2%: the loop's clock_gettime and the ends of
  // context switches) is no function's work. Each may stray 5 binomial standard deviations at that count.
  const hot = total - (byFunction.get('elsewhere') ?? 0);
  const counts = [...byFunction].map(([name, n]) => `${name} ${n}`).join(', ');
  assert.ok(hot >= 0.9 * total, `only ${hot} of ${total} samples in the hot functions: ${counts}`);
  for (const [name, expected] of [['hot_a', 0.6], ['hot_b', 0.3], ['hot_c', 0.1]] as const) {
    const share = (byFunction.get(name) ?? 0) / hot;
    const tolerance = 5 * Math.sqrt((expected * (1 - expected)) / hot);
    assert.ok(Math.abs(share - expected) <= tolerance, `${name} ${(100 * share).toFixed(1)}% of ${hot}, expected ${100 * expected} ± ${(100 * tolerance).toFixed(1)}: ${counts}`);
  }
});

test('a CPU-bound thread gets frequency_hz samples per CPU second (within 15%)', async () => {
  const workload = startWorkload(hotspots, ['5']);
  const sink = new ProfilesSink();
  const [output] = await profile([create(config({ pids: [workload.pid] }), sink)], [workload]);
  // The workload stops after 5 CPU seconds and reports exactly how many it used.
  const cpuSeconds = Number(output);
  const expected = 97 * cpuSeconds;
  const seen = sink.count(workload.pid);
  assert.ok(Math.abs(seen - expected) <= 0.15 * expected, `${seen} samples for ${cpuSeconds.toFixed(2)} CPU seconds at 97 Hz (expected ${expected.toFixed(0)})`);
});

test('a syscall-heavy process has kernel frames at kernel addresses', async () => {
  // The shell waits for the cue, then becomes dd under the same pid.
  const workload = startWorkload('/bin/sh', ['-c', 'read cue && exec dd if=/dev/zero of=/dev/null bs=1 count=2000000 status=none']);
  const sink = new ProfilesSink();
  await profile([create(config({ pids: [workload.pid] }), sink)], [workload]);

  const samples = sink.samples(workload.pid).filter((s) => s.comm === 'dd');
  const total = samples.reduce((sum, s) => sum + s.count, 0);
  const inKernel = samples.filter((s) => s.frames[0]?.kind === 'kernel');
  const kernelCount = inKernel.reduce((sum, s) => sum + s.count, 0);
  assert.ok(total >= 20, `dd was sampled (${total})`);
  assert.ok(kernelCount >= total / 2, `most of dd's samples are in the kernel (${kernelCount} of ${total})`);

  const kernelHalf = 0xffff800000000000n;
  const text = kernelTextRange();
  for (const sample of samples) {
    for (const frame of sample.frames) {
      if (frame.kind === 'kernel') assert.ok(frame.address >= kernelHalf, `kernel frame 0x${frame.address.toString(16)}`);
      else assert.ok(frame.address < 0x800000000000n, `user frame 0x${frame.address.toString(16)}`);
    }
  }
  // Other tools' BPF programs on the syscall tracepoints (JIT code) and modules run in x86-64's module mapping
  // space (Documentation/arch/x86/x86_64/mm.rst: ffffffffa0000000 to fffffffffeffffff), so leaves land there too.
  const inCode = (address: bigint) => (address >= text.start && address < text.end) || (address >= 0xffffffffa0000000n && address < 0xffffffffff000000n);
  const leavesInCode = inKernel.filter((s) => inCode(s.frames[0].address)).length;
  assert.ok(leavesInCode >= 0.9 * inKernel.length, `${leavesInCode} of ${inKernel.length} kernel leaves are in the kernel's text, modules or BPF programs`);
});

test('without filters every process is sampled; a pid filter keeps the others out', async () => {
  const chosen = startWorkload(hotspots, ['2']);
  const other = startWorkload(hotspots, ['2']);
  const filtered = new ProfilesSink();
  const everything = new ProfilesSink();
  await profile([create(config({ pids: [chosen.pid] }), filtered), create(config(), everything)], [chosen, other]);

  assert.deepEqual([...filtered.pids()], [chosen.pid]);
  assert.ok(filtered.count(chosen.pid) >= 50, `the chosen pid was sampled (${filtered.count(chosen.pid)})`);
  assert.ok(everything.count(chosen.pid) >= 50 && everything.count(other.pid) >= 50, 'both were sampled without a filter');
  assert.ok(everything.samples().every((s) => s.pid !== 0), 'the idle task is left out');
});

test('the comm filter matches a name exactly, or a prefix ending in "*"', async () => {
  const alpha = startWorkload(copyAs(hotspots, 'cpuspin-alpha'), ['2']);
  const beta = startWorkload(copyAs(hotspots, 'cpuspin-beta'), ['2']);
  const exact = new ProfilesSink();
  const prefix = new ProfilesSink();
  const unfinished = new ProfilesSink();
  await profile(
    [create(config({ comm: 'cpuspin-alpha' }), exact), create(config({ comm: 'cpuspin-*' }), prefix), create(config({ comm: 'cpuspin' }), unfinished)],
    [alpha, beta],
  );

  assert.deepEqual([...exact.pids()], [alpha.pid]);
  assert.ok(exact.samples().every((s) => s.comm === 'cpuspin-alpha'));
  assert.deepEqual(new Set(prefix.pids()), new Set([alpha.pid, beta.pid]));
  assert.ok(prefix.samples().every((s) => s.comm.startsWith('cpuspin-')));
  assert.equal(unfinished.count(), 0, 'a name without "*" is not a prefix');
});

test('the cgroups filter keeps the processes in a cgroup and its descendants', async () => {
  const parent = `/ebpf-cpu-test-${process.pid}`;
  const child = join(cgroup2Mount()!, parent, 'inner');
  mkdirSync(child, { recursive: true });
  const inside = startWorkload(hotspots, ['2']);
  const outside = startWorkload(hotspots, ['2']);
  try {
    writeFileSync(join(child, 'cgroup.procs'), String(inside.pid));
    const sink = new ProfilesSink();
    await profile([create(config({ cgroups: [parent] }), sink)], [inside, outside]);
    assert.deepEqual([...sink.pids()], [inside.pid]);
    assert.ok(sink.count(inside.pid) >= 50, `the process in the cgroup was sampled (${sink.count(inside.pid)})`);
  } finally {
    await Promise.allSettled([inside.finished, outside.finished]);
    rmdirSync(child);
    rmdirSync(join(cgroup2Mount()!, parent));
  }
});

test('a cgroup that does not exist fails start with its path', async () => {
  const receiver = create(config({ cgroups: ['/no-such-cgroup-for-ebpf-cpu'] }));
  await assert.rejects(receiver.start(testHost()), /cgroup "\/no-such-cgroup-for-ebpf-cpu" not found/);
  await receiver.shutdown();
});

test('stacks lost to stack-map collisions are counted, so samples kept plus lost match the CPU time', async () => {
  const telemetry = new SelfTelemetry();
  const settings = { ...testSettings('receiver', 'cpu'), telemetry: telemetry.forComponent('receiver', 'cpu') };
  const randomStacks = compileWorkload('random_stacks');
  const workload = startWorkload(randomStacks, ['3']);
  const sink = new ProfilesSink();
  // At 1000 Hz nearly every sample has a new stack, so some collide in the stack map's hash buckets.
  const [output] = await profile([create(config({ pids: [workload.pid], frequency_hz: 1000, collection_interval: '10s' }), sink, settings)], [workload]);

  const dropped = async (reason: string) => (await selfMetric(telemetry, 'ebpf_collector_dropped_items_total', { signal: 'profiles', reason })) ?? 0;
  const collisions = await dropped('stack_collision');
  const lost = collisions + (await dropped('stack_map_full')) + (await dropped('stack_walk_failed')) + (await dropped('stack_error'));
  const kept = sink.count(workload.pid);
  const expected = 1000 * Number(output);
  assert.ok(collisions > 0, 'collisions happened and were counted');
  assert.ok(Math.abs(kept + lost - expected) <= 0.15 * expected, `${kept} kept + ${lost} lost for ${expected.toFixed(0)} expected samples`);
  assert.ok(((await selfMetric(telemetry, 'ebpf_collector_bpf_map_fill_ratio', { map: 'stacks' })) ?? 0) > 0, 'stack map fill reported');
  assert.ok(((await selfMetric(telemetry, 'ebpf_collector_bpf_map_fill_ratio', { map: 'sample_counts' })) ?? 0) > 0, 'counts map fill reported');
});

test('stacks deeper than the kernel records are counted as truncated, their samples kept', async () => {
  const telemetry = new SelfTelemetry();
  const settings = { ...testSettings('receiver', 'cpu'), telemetry: telemetry.forComponent('receiver', 'cpu') };
  const workload = startWorkload(compileWorkload('deep_stack'), ['2']);
  const sink = new ProfilesSink();
  await profile([create(config({ pids: [workload.pid] }), sink, settings)], [workload]);

  const deep = sink.samples(workload.pid).filter((s) => s.frames.filter((f) => f.kind === 'user').length === 127);
  const deepCount = deep.reduce((sum, s) => sum + s.count, 0);
  assert.ok(deepCount > 0, 'samples with a full stack are kept');
  assert.equal(await selfMetric(telemetry, 'ebpf_collector_dropped_items_total', { signal: 'profiles', reason: 'stack_truncated' }), deepCount);
});
