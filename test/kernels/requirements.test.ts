/**
 * Kernel requirements on this kernel, through the CLI: with
 * service::kernel_features::disable a feature counts as missing, so every
 * fallback and every refusal runs here too. Without bpf_rdonly_cast the
 * syscalls, fileio and dns receivers load their compat objects and still count
 * exactly; without any other feature, exactly the receivers whose objects need
 * it refuse to start, before loading, with a status naming the feature and the
 * Linux release that added it, and the others run.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { assertRefusedByValidate, eventually, freePort, kernelBpfState, RunningCollector, sampleValue, scrape } from '../support/collector.js';
import { bpfObjectPath, projectPath } from '../../collector/paths.js';
import { BpfObject } from '../../native/index.js';
import { KERNEL_FEATURE_NAMES, kernelHas } from '../../receivers/common/kernel-requirements.js';
import { dig, DnsNamespace, SERVER_V4 } from '../../receivers/dns/testdata/dns-network.js';

const METRICS_RECEIVERS = ['process', 'syscalls', 'fileio', 'tcp', 'dns', 'tls', 'blockio'];

/** Every receiver (cpu into pprof, the others scraped), with these kernel features turned off. */
function pipeline(disable: string[], metricsPort: number, receivers = METRICS_RECEIVERS, withCpu = true): string {
  return stringify({
    receivers: Object.fromEntries([...receivers.map((type) => [type, { collection_interval: '300ms' }]), ...(withCpu ? [['cpu', {}]] : [])]),
    exporters: { prometheus: { endpoint: `127.0.0.1:${metricsPort}` }, ...(withCpu ? { pprof: { write_files: false } } : {}) },
    service: {
      http: { endpoint: '127.0.0.1:HTTP_PORT' },
      kernel_features: { disable },
      pipelines: {
        metrics: { receivers, exporters: ['prometheus'] },
        ...(withCpu ? { profiles: { receivers: ['cpu'], exporters: ['pprof'] } } : {}),
      },
    },
  });
}

/** The kernel's tags of an object's programs, by name, as loaded by this test (the same instructions give the same tag). */
function programTags(objectPath: string): Map<string, string> {
  const object = BpfObject.open(objectPath);
  try {
    object.load();
    const ids = new Set(object.progIds());
    return new Map(kernelBpfState().progs.filter((prog) => ids.has(prog.id)).map((prog) => [prog.name!, (prog as { tag?: string }).tag!]));
  } finally {
    object.close();
  }
}

let network: DnsNamespace;

before(async () => {
  const make = spawnSync('make', ['-s', '-C', projectPath('test/workloads')], { encoding: 'utf8' });
  assert.equal(make.status, 0, `make -C test/workloads failed: ${make.stderr}`);
  network = DnsNamespace.create(`kreq-${process.pid}`, ['10.53.0.1/24', 'fd53::1/64'], SERVER_V4);
  await network.startDnsmasq(`/tmp/kreq-dnsmasq-${process.pid}.pid`);
});

after(() => network?.destroy());

test('without bpf_rdonly_cast, syscalls, fileio and dns load their compat objects and count exactly', async () => {
  const metricsPort = await freePort();
  // Only the workloads' own calls, so that the scrapes stay small on a busy machine.
  const receivers = { syscalls: { aggregate_by: ['cgroup', 'pid'], comms: ['exact_calls'] }, fileio: { aggregate_by: ['cgroup', 'pid'], comms: ['dd'] }, dns: {} };
  const yaml = stringify({
    receivers: Object.fromEntries(Object.entries(receivers).map(([type, config]) => [type, { ...config, collection_interval: '300ms' }])),
    exporters: { prometheus: { endpoint: `127.0.0.1:${metricsPort}` } },
    service: {
      http: { endpoint: '127.0.0.1:HTTP_PORT' },
      kernel_features: { disable: ['bpf_rdonly_cast'] },
      pipelines: { metrics: { receivers: Object.keys(receivers), exporters: ['prometheus'] } },
    },
  });
  const collector = await RunningCollector.start(yaml);
  const directory = mkdtempSync('/var/tmp/kernel-requirements-');
  try {
    assert.deepEqual(await collector.statuses(), [
      ['exporter', 'prometheus', 'ok'],
      ['receiver', 'syscalls', 'ok'],
      ['receiver', 'fileio', 'ok'],
      ['receiver', 'dns', 'ok'],
    ]);
    // The programs running are the compat objects' (same instructions, same tag), not the others'.
    const ours = new Set(collector.programIds());
    const running = new Map(kernelBpfState().progs.filter((prog) => ours.has(prog.id)).map((prog) => [prog.name!, (prog as { tag?: string }).tag!]));
    for (const [object, program] of [['syscalls', 'syscall_enter'], ['dns', 'dns_query_sent']]) {
      const compat = programTags(bpfObjectPath(`${object}_compat`)).get(program);
      const usual = programTags(bpfObjectPath(object)).get(program);
      assert.ok(compat && usual && compat !== usual, `${object}: the two objects' ${program} differ (${compat}, ${usual})`);
      assert.equal(running.get(program), compat, `the collector runs ${object}_compat.bpf.o's ${program}`);
    }

    const blocks = 40;
    const dd = spawn('dd', ['if=/dev/zero', `of=${join(directory, 'out')}`, 'bs=4096', `count=${blocks}`, 'status=none'], { stdio: 'ignore' });
    const ddPid = String(dd.pid);
    const ddExit = await new Promise<number | null>((resolve) => dd.once('exit', resolve));
    assert.equal(ddExit, 0);
    const getppids = 5000;
    const calls = spawnSync(projectPath('build/workloads/exact_calls'), ['getppid', String(getppids)]);
    assert.equal(calls.status, 0);
    const domain = `compat-${process.pid}.ok.test`;
    await dig(network, SERVER_V4, domain, 3);

    const getppid = { syscall: 'getppid', pid: String(calls.pid) };
    const fileWrites = { operation: 'write', pid: ddPid };
    let last = '';
    const exposition = await eventually('the writes and queries to be scraped', 20_000, async () => {
      const text = (last = await scrape(metricsPort));
      return sampleValue(text, 'ebpf_syscall_total', getppid) >= getppids &&
        sampleValue(text, 'ebpf_io_operations_total', fileWrites) >= blocks &&
        sampleValue(text, 'ebpf_dns_query_duration_seconds_count', { domain }) >= 3
        ? text
        : undefined;
    }).catch((error: Error) => {
      const seen = last.split('\n').filter((line) => line.includes(ddPid) || line.includes(String(calls.pid)) || line.includes(domain));
      throw new Error(`${error.message}; last scrape:\n${seen.join('\n')}\nlog:\n${collector.stderr.slice(-2000)}`);
    });
    assert.equal(sampleValue(exposition, 'ebpf_syscall_total', getppid), getppids);
    assert.equal(sampleValue(exposition, 'ebpf_io_operations_total', { ...fileWrites, filesystem: 'ext4' }), blocks);
    assert.equal(sampleValue(exposition, 'ebpf_io_bytes_total', { ...fileWrites, filesystem: 'ext4' }), blocks * 4096);
    assert.equal(sampleValue(exposition, 'ebpf_dns_query_duration_seconds_count', { domain }), 3);
    await collector.stopAndExpectReleased();
  } finally {
    await collector.stop();
    rmSync(directory, { recursive: true, force: true });
  }
});

/** Each feature, the receivers whose objects need it, and the Linux release a status names. */
const REFUSALS: { feature: string; since: string; refused: string[] }[] = [
  { feature: 'btf', since: '5.4', refused: ['process', 'cpu', 'syscalls', 'fileio', 'tcp', 'dns', 'tls', 'blockio'] },
  { feature: 'tp_btf', since: '5.5', refused: ['process', 'syscalls', 'fileio', 'tcp', 'dns', 'blockio'] },
  { feature: 'raw_tracepoint', since: '4.17', refused: ['syscalls', 'fileio'] },
  { feature: 'tracepoint', since: '4.7', refused: ['syscalls', 'fileio', 'tcp'] },
  { feature: 'perf_event', since: '4.9', refused: ['cpu'] },
  { feature: 'uprobe', since: '4.3', refused: ['tls'] },
  { feature: 'bpf_probe_read_kernel', since: '5.5', refused: ['cpu', 'syscalls', 'fileio', 'tcp', 'dns', 'blockio'] },
  { feature: 'bpf_get_current_ancestor_cgroup_id', since: '5.7', refused: ['cpu', 'syscalls', 'fileio', 'tcp'] },
  { feature: 'bpf_get_current_task_btf', since: '5.11', refused: ['syscalls', 'fileio', 'tcp', 'tls', 'blockio'] },
  { feature: 'task_storage', since: '5.12', refused: ['syscalls', 'fileio', 'tls'] },
  { feature: 'sk_storage', since: '5.11', refused: ['tcp'] },
  { feature: 'bpf_task_pt_regs', since: '5.15', refused: ['tcp'] },
  { feature: 'bpf_loop', since: '5.17', refused: ['syscalls', 'fileio', 'dns'] },
  { feature: 'tp_btf/block_io_start', since: '6.5', refused: ['blockio'] },
];

for (const { feature, since, refused } of REFUSALS) {
  test(`without ${feature}, exactly ${refused.join(', ')} refuse to start, naming it and Linux ${since}`, async () => {
    const collector = await RunningCollector.start(pipeline([feature], await freePort()));
    try {
      const ours = new Set(collector.programIds());
      const { components } = await collector.status();
      for (const receiver of [...METRICS_RECEIVERS, 'cpu']) {
        const status = components.find((component) => component.kind === 'receiver' && component.id === receiver);
        assert.ok(status, `${receiver} is listed`);
        if (refused.includes(receiver)) {
          assert.equal(status.status, 'permanent_error', `${receiver}: ${status.message}`);
          assert.ok(status.message?.includes(`Linux ${since}+`), `${receiver}'s status names Linux ${since}: ${status.message}`);
          assert.ok(status.message?.includes(`service::kernel_features::disable turns off ${feature}`), `${receiver}: ${status.message}`);
          assert.doesNotMatch(status.message!, /libbpf|verifier|BEGIN PROG LOAD LOG/, 'refused before loading');
        } else {
          assert.equal(status.status, 'ok', `${receiver}: ${status.message}`);
        }
      }
      assert.equal((await fetch(`${collector.statusUrl}/healthz`)).status, 503);
      if (refused.length < 8) assert.ok(ours.size > 0, 'the other receivers run their programs');
      assert.equal(await collector.stop(), 0, collector.stderr);
    } finally {
      await collector.stop();
    }
  });
}

test('without CAP_PERFMON every receiver says it may not load tracing programs, not that the kernel lacks features', async () => {
  const dropped = '-perfmon,-sys_admin';
  const collector = await RunningCollector.start(pipeline([], await freePort()), ['setpriv', '--inh-caps', dropped, '--bounding-set', dropped, '--']);
  try {
    const { components } = await collector.status();
    for (const receiver of [...METRICS_RECEIVERS, 'cpu']) {
      const status = components.find((component) => component.kind === 'receiver' && component.id === receiver);
      assert.equal(status?.status, 'permanent_error', `${receiver}: ${status?.message}`);
      assert.match(status.message!, /: this process may not load tracing BPF programs \(Operation not permitted\): it needs CAP_BPF and CAP_PERFMON/, receiver);
      assert.doesNotMatch(status.message!, /Linux \d|lacks/, `${receiver} blames no kernel feature`);
    }
    assert.equal(await collector.stop(), 0, collector.stderr);
  } finally {
    await collector.stop();
  }
});

test('an unknown kernel feature is refused by validate, listing the known ones', () => {
  assertRefusedByValidate(
    stringify({
      receivers: { process: {} },
      exporters: { prometheus: {} },
      service: { kernel_features: { disable: ['bpf_lop'] }, pipelines: { metrics: { receivers: ['process'], exporters: ['prometheus'] } } },
    }),
    [/service::kernel_features::disable::0: must be one of btf, tp_btf, .*bpf_loop.*, got string "bpf_lop"/],
  );
});

test('the probes agree with this kernel: every feature the objects need is here (6.5 or later, with BTF)', () => {
  assert.deepEqual(
    KERNEL_FEATURE_NAMES.filter((feature) => !kernelHas(feature)),
    [],
    'features this kernel lacks',
  );
});
