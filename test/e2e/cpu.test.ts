/**
 * CPU profiling end to end through the CLI: the cpu receiver samples a real
 * program, the symbolizer names its frames, the pprof exporter serves the
 * on-demand profile that `go tool pprof` reads, and profilemetrics feeds
 * parca_cpu_samples_total to the Prometheus endpoint.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import { after } from 'node:test';
import { goToolPprof, parseRaw, parseTop } from '../../exporters/pprof/testing/go-tool-pprof.js';
import { buildIdOf } from '../../processors/symbolizer/testing/test-programs.js';
import { compileWorkload, copyAs, removeWorkloads, startWorkload } from '../../receivers/cpu/testing/workloads.js';
import { eventually, freePort, RunningCollector, sampleValue, scrape } from '../support/collector.js';

function pipeline(pid: number, metricsPort: number, profilesDir: string): string {
  return `
receivers:
  cpu:
    frequency_hz: 199
    collection_interval: 1s
    pids: [${pid}]
processors:
  symbolizer: {}
connectors:
  profilemetrics: {}
exporters:
  pprof:
    directory: ${profilesDir}
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
`;
}

test('hot functions in a 6:3:1 ratio come out at 60/30/10 in go tool pprof -top, and as parca_cpu_samples_total', async () => {
  const workload = startWorkload(compileWorkload('hotspots'), ['8']);
  const metricsPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-cpu-e2e-'));
  const collector = await RunningCollector.start(pipeline(workload.pid, metricsPort, join(dir, 'profiles')));
  try {
    workload.go();
    const response = await fetch(`${collector.statusUrl}/debug/pprof/profile?seconds=5`);
    assert.equal(response.status, 200, await response.clone().text());
    const file = join(dir, 'profile.pb.gz');
    writeFileSync(file, Buffer.from(await response.arrayBuffer()));

    const { stdout, stderr } = await goToolPprof(['-top', '-sample_index=samples', '-nodecount=1000'], file);
    assert.equal(stderr.trim(), '', 'go tool pprof reads the profile without warnings');
    const top = parseTop(stdout);
    const flat = (name: string) => top.get(name)?.flat ?? 0;
    const total = [...top.values()].reduce((sum, row) => sum + row.flat, 0);
    assert.ok(total >= 500, `expected at least 500 samples in 5 s at 199 Hz, got ${total}: ${stdout}`);
    const share = (name: string) => (100 * flat(name)) / total;
    for (const [name, expected] of [['hot_a', 60], ['hot_b', 30], ['hot_c', 10]] as const)
      assert.ok(Math.abs(share(name) - expected) <= 5, `${name}: ${share(name).toFixed(1)}% of samples, expected ${expected} ± 5\n${stdout}`);

    await eventually('parca_cpu_samples_total for hot_a', 10_000, async () => {
      const value = sampleValue(await scrape(metricsPort), 'parca_cpu_samples_total', { function: 'hot_a', comm: 'hotspots' });
      return value > 0 ? value : undefined;
    });
    assert.equal(sampleValue(await scrape(metricsPort), 'parca_cpu_sampling_frequency_hertz'), 199);
    await workload.finished;
    assert.equal(await collector.stop(), 0, collector.stderr);
  } finally {
    await collector.stop();
  }
});

after(removeWorkloads);

/** Runs the collector on one pid and returns the folded stacks of the next `seconds`, as [stack, count] rows. */
async function foldedFor(pid: number, seconds: number): Promise<[string[], number][]> {
  const collector = await RunningCollector.start(pipeline(pid, await freePort(), join(mkdtempSync(join(tmpdir(), 'ebpf-cpu-e2e-')), 'profiles')));
  try {
    const response = await fetch(`${collector.statusUrl}/debug/pprof/folded?seconds=${seconds}`);
    assert.equal(response.status, 200);
    const text = await response.text();
    return text
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const cut = line.lastIndexOf(' ');
        return [line.slice(0, cut).split(';'), Number(line.slice(cut + 1))];
      });
  } finally {
    assert.equal(await collector.stop(), 0, collector.stderr);
  }
}

const total = (rows: [string[], number][]) => rows.reduce((sum, [, count]) => sum + count, 0);

test('a Node script under --perf-basic-prof shows its hot JavaScript function by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-cpu-e2e-node-'));
  const script = join(dir, 'hot.js');
  writeFileSync(
    script,
    `function hotJavaScriptFunction(n) { let t = 0; for (let i = 0; i < n; i++) t += Math.sqrt(i) * (i % 7); return t; }
let sink = 0; const end = Date.now() + 8000;
while (Date.now() < end) sink += hotJavaScriptFunction(100000);
console.log(sink > 0);`,
  );
  // Without --no-turbo-inlining V8 inlines the function into the optimized loop and the samples rightly name the loop.
  const node = spawn(process.execPath, ['--perf-basic-prof', '--no-turbo-inlining', script], { stdio: 'ignore' });
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000)); // let V8 compile it and write the perf map
    const rows = await foldedFor(node.pid!, 3);
    const named = rows.filter(([stack]) => stack.some((frame) => frame.includes('hotJavaScriptFunction')));
    assert.ok(total(named) >= 0.3 * total(rows), `hotJavaScriptFunction in ${total(named)} of ${total(rows)} samples:\n${rows.sort((a, b) => b[1] - a[1]).slice(0, 15).map(([s, c]) => `${s.join(';')} ${c}`).join('\n')}`);
  } finally {
    node.kill();
  }
});

test('a syscall-heavy workload shows kernel frames by name', async () => {
  const dd = spawn('dd', ['if=/dev/zero', 'of=/dev/null', 'bs=1', 'count=100000000'], { stdio: 'ignore' });
  try {
    const rows = await foldedFor(dd.pid!, 3);
    const inKernel = rows.filter(([stack]) => stack.includes('do_syscall_64'));
    assert.ok(total(inKernel) >= 0.3 * total(rows), `do_syscall_64 in ${total(inKernel)} of ${total(rows)} samples`);
    const kernelLeaves = new Set(inKernel.map(([stack]) => stack[stack.length - 1]));
    assert.ok(
      [...kernelLeaves].every((name) => /^[A-Za-z_][\w.]*$/.test(name)),
      `kernel leaves should be names, not addresses: ${[...kernelLeaves].join(', ')}`,
    );
  } finally {
    dd.kill();
  }
});

test('a stripped binary comes out as binary+0xoffset with its build id', async () => {
  const stripped = copyAs(compileWorkload('hotspots'), 'hotspots_stripped');
  assert.equal(spawnSync('strip', ['-s', stripped]).status, 0);
  const buildId = buildIdOf(stripped);
  const workload = startWorkload(stripped, ['6']);
  const collector = await RunningCollector.start(pipeline(workload.pid, await freePort(), join(mkdtempSync(join(tmpdir(), 'ebpf-cpu-e2e-')), 'profiles')));
  try {
    workload.go();
    const response = await fetch(`${collector.statusUrl}/debug/pprof/profile?seconds=3`);
    const file = join(mkdtempSync(join(tmpdir(), 'ebpf-cpu-e2e-')), 'stripped.pb.gz');
    writeFileSync(file, Buffer.from(await response.arrayBuffer()));
    const profile = parseRaw((await goToolPprof(['-raw'], file)).stdout);
    const mapping = [...profile.mappings.values()].find((m) => m.file.endsWith('/hotspots_stripped'));
    assert.equal(mapping?.buildId, buildId, 'the binary\'s mapping carries its build id');
    const names = [...profile.locations.values()].filter((l) => profile.mappings.get(l.mappingId) === mapping).map((l) => l.functionName);
    assert.ok(names.length > 0, 'samples in the stripped binary are kept');
    for (const name of names) assert.match(name, /^hotspots_stripped\+0x[0-9a-f]+$/);
    await workload.finished;
  } finally {
    assert.equal(await collector.stop(), 0, collector.stderr);
  }
});
