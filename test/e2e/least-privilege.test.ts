/**
 * Least privilege, tested: the bundled pipeline.yaml run by the CLI as uid 0
 * with exactly the capabilities deploy/kubernetes/daemonset.yaml grants (read
 * from the manifest, so the two cannot drift) and no other, through setpriv.
 * It shows what works there (every component's status, metrics from each
 * receiver for workloads the test starts, CPU profiles symbolized for a
 * process of another user, one in another mount namespace and one whose
 * binary was deleted, kernel frames named, TLS handshakes and getaddrinfo
 * calls counted through uprobe-multi links) and what degrades, with the exact
 * status that says so. With service::kernel_features::disable's uprobe_multi
 * the uprobes fall back to perf_event: they work as full root, and with these
 * capabilities dns and tls say that they need CAP_SYS_ADMIN there.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { cgroup2Mount } from '../../collector/cgroups.js';
import { projectPath } from '../../collector/paths.js';
import { BpfObject } from '../../native/index.js';
import { compileWorkload, removeWorkloads } from '../../receivers/cpu/testing/workloads.js';
import { dig, DnsNamespace, getent, SERVER_V4 } from '../../receivers/dns/testdata/dns-network.js';
import { TlsFixture, type Server as TlsServer } from '../../receivers/tls/testdata/tls-workloads.js';
import { eventually, freePort, kernelBpfState, prometheusPipeline, RunningCollector, sampleValue, scrape, scrapeUntil } from '../support/collector.js';

const RUN = `lp${process.pid}`;
const POD_UID = `1eaf0000-0000-4000-8000-${String(process.pid).padStart(12, '0')}`;

/** The container's securityContext in the DaemonSet; it must drop everything and add a list. */
function manifestCapabilities(): string[] {
  const manifest = parse(readFileSync(projectPath('deploy/kubernetes/daemonset.yaml'), 'utf8'));
  const context = manifest.spec.template.spec.containers[0].securityContext;
  assert.equal(context.privileged, false);
  assert.equal(context.allowPrivilegeEscalation, false);
  assert.equal(context.runAsUser, 0);
  assert.deepEqual(context.capabilities.drop, ['ALL']);
  return context.capabilities.add;
}

/** Capability bits by name (`BPF` → 39), from the kernel's UAPI header. */
function capabilityBits(): Map<string, number> {
  const header = readFileSync('/usr/include/linux/capability.h', 'utf8');
  return new Map([...header.matchAll(/^#define CAP_(\w+)\s+(\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
}

function capabilitySet(status: string, field: string): bigint {
  const match = new RegExp(`^${field}:\\s+([0-9a-f]+)$`, 'm').exec(status);
  assert.ok(match, `no ${field} in /proc/PID/status`);
  return BigInt(`0x${match[1]}`);
}

const capabilities = manifestCapabilities();
const bits = capabilityBits();
const maskOf = (names: string[]) =>
  names.reduce((mask, name) => {
    assert.ok(bits.has(name), `capability ${name} is not in linux/capability.h`);
    return mask | (1n << BigInt(bits.get(name)!));
  }, 0n);
// Root's bounding set here: a capability it lacks cannot be granted to the collector either.
const ourBounding = capabilitySet(readFileSync('/proc/self/status', 'utf8'), 'CapBnd');
const grantable = capabilities.filter((name) => (ourBounding & maskOf([name])) !== 0n);
/** As Kubernetes starts the container: uid 0, these capabilities bounding, permitted and effective, no inheritable ones, no new privileges. */
const setpriv = setprivWith(grantable);

/** setpriv's options for `names` as the DaemonSet would grant them. */
function setprivWith(names: string[]): string[] {
  return ['setpriv', '--bounding-set', `-all,${names.map((c) => `+${c.toLowerCase()}`).join(',')}`, '--inh-caps', '-all', '--no-new-privs', '--'];
}

/** The bundled pipeline.yaml with free ports, a temporary pprof directory and 1 s collection intervals, so the test need not wait 10 s windows. */
function defaultPipeline(metricsPort: number, profiles: string): string {
  const pipeline = parse(readFileSync(projectPath('pipeline.yaml'), 'utf8'));
  for (const config of Object.values<Record<string, unknown>>(pipeline.receivers)) config.collection_interval = '1s';
  pipeline.exporters.pprof.directory = profiles;
  pipeline.exporters.prometheus.endpoint = `127.0.0.1:${metricsPort}`;
  pipeline.service.http.endpoint = '127.0.0.1:HTTP_PORT';
  return stringify(pipeline);
}

let dir: string;
let cgroupMount: string;
let podCgroup: string;
let network: DnsNamespace;
let server: Server;
let tls: TlsFixture;
let tlsServer: TlsServer;
let collector: RunningCollector;
let metricsPort: number;
const workloads: ChildProcess[] = [];

/** `command` run to its end inside the test's pod cgroup, so its series carry pod=POD_UID and no other process's; returns its exit status. */
function runInPod(command: string, input = ''): number | null {
  const result = spawnSync('sh', ['-c', `echo $$ > ${join(cgroupMount, podCgroup, 'cgroup.procs')} && exec ${command}`], { input, encoding: 'utf8' });
  if (result.error) throw result.error;
  return result.status;
}

/** dd under its own name (comm lp-dd), mostly in the kernel: one-byte reads and writes until killed. */
function startKernelBound(): ChildProcess {
  const binary = join(dir, 'lp-dd');
  if (!existsSync(binary)) {
    copyFileSync('/bin/dd', binary);
    chmodSync(binary, 0o755);
  }
  const child = spawn(binary, ['if=/dev/zero', 'of=/dev/null', 'bs=1'], { stdio: 'ignore' });
  workloads.push(child);
  return child;
}

/** The folded profile of the next `seconds`; a server that does not answer in time fails the test rather than hanging it. */
async function foldedProfile(statusUrl: string, seconds: number): Promise<string> {
  const response = await fetch(`${statusUrl}/debug/pprof/folded?seconds=${seconds}`, { signal: AbortSignal.timeout(seconds * 1000 + 10_000) });
  assert.equal(response.status, 200, await response.clone().text());
  return response.text();
}

/** A CPU-bound hotspots process (until killed) started by `argv`, fed "go" on stdin. */
function startSpinner(argv: string[]): ChildProcess {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'ignore', 'inherit'] });
  child.stdin!.end('go\n');
  workloads.push(child);
  return child;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-least-privilege-'));
  chmodSync(dir, 0o755);
  const mount = cgroup2Mount();
  assert.ok(mount, 'no cgroup v2 hierarchy is mounted');
  cgroupMount = mount;
  podCgroup = `/ebpf-collector-${RUN}/kubepods-besteffort-pod${POD_UID.replaceAll('-', '_')}.slice`;
  mkdirSync(join(cgroupMount, podCgroup), { recursive: true });
  network = DnsNamespace.create(`${RUN}-dns`, ['10.53.0.1/24', 'fd53::1/64'], SERVER_V4);
  await network.startDnsmasq(join(dir, 'dnsmasq.pid'));
  server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  tls = TlsFixture.create();
  tlsServer = await tls.opensslServer();
  metricsPort = await freePort();
  collector = await RunningCollector.start(defaultPipeline(metricsPort, join(dir, 'profiles')), setpriv);
});

after(async () => {
  for (const child of workloads) child.kill('SIGKILL');
  await collector?.stop();
  server?.close();
  await tls?.cleanup();
  network?.destroy();
  for (const cgroup of [podCgroup, `/ebpf-collector-${RUN}`]) if (cgroupMount && cgroup && existsSync(join(cgroupMount, cgroup))) rmdirSync(join(cgroupMount, cgroup));
  removeWorkloads();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the collector runs as uid 0 with exactly the DaemonSet\'s capabilities', () => {
  const status = readFileSync(`/proc/${collector.pid}/status`, 'utf8');
  assert.match(status, /^Name:\s+node$/m, 'setpriv and the launcher exec the collector in place');
  assert.match(status, /^Uid:\s+0\s+0\s+0\s+0$/m);
  assert.match(status, /^NoNewPrivs:\s+1$/m);
  const expected = maskOf(grantable);
  for (const field of ['CapEff', 'CapPrm', 'CapBnd'])
    assert.equal(capabilitySet(status, field).toString(16), expected.toString(16), `${field} is the DaemonSet's set`);
  assert.equal(capabilitySet(status, 'CapInh'), 0n);
  assert.equal(capabilitySet(status, 'CapAmb'), 0n);
  // This machine's root has no CAP_SYS_RESOURCE to give; only kernels before 5.11 need it (RLIMIT_MEMLOCK for maps).
  assert.deepEqual(
    capabilities.filter((c) => !grantable.includes(c)),
    capabilities.includes('SYS_RESOURCE') && !grantable.includes('SYS_RESOURCE') ? ['SYS_RESOURCE'] : [],
    'the test grants every capability of the manifest that this machine has',
  );
});

/** The kinds of the kernel's links to `collector`'s uprobe programs (kprobe type): bpftool before 7.3 shows uprobe-multi links as 12. */
function uprobeLinkKinds(collector: RunningCollector): string[] {
  const ours = new Set(collector.programIds());
  const state = kernelBpfState() as { progs: { id: number; type?: string }[]; links: { prog_id: number; type?: string | number }[] };
  const uprobePrograms = new Set(state.progs.filter((p) => ours.has(p.id) && p.type === 'kprobe').map((p) => p.id));
  return [...new Set(state.links.filter((l) => uprobePrograms.has(l.prog_id)).map((l) => (l.type === 12 ? 'uprobe_multi' : String(l.type))))].sort();
}

test('every component is ok, dns and tls too: their uprobes attach as uprobe-multi links, which need no CAP_SYS_ADMIN', async () => {
  const components = await eventually('every component to report', 20_000, async () => {
    const { components } = await collector.status();
    return components.every((c) => c.status !== 'starting' && c.status !== 'created') ? components : undefined;
  });
  const byId = new Map(components.map((c) => [`${c.kind}/${c.id}`, c]));
  assert.deepEqual(
    [...byId.keys()].sort(),
    [
      'connector/profilemetrics',
      'exporter/pprof',
      'exporter/prometheus',
      'processor/labels',
      'processor/symbolizer',
      'receiver/blockio',
      'receiver/cpu',
      'receiver/dns',
      'receiver/fileio',
      'receiver/process',
      'receiver/syscalls',
      'receiver/tcp',
      'receiver/tls',
    ],
  );
  for (const [key, component] of byId) assert.equal(component.status, 'ok', `${key}: ${component.message}`);
  assert.deepEqual(uprobeLinkKinds(collector), ['uprobe_multi'], 'getaddrinfo and libssl are probed through uprobe-multi links only');
});

test('metrics flow from process, syscalls, tcp, dns (getaddrinfo calls too), fileio, blockio and tls', async () => {
  const exec = `lpexec${process.pid % 100_000}`;
  const execBinary = join(dir, exec);
  copyFileSync('/bin/true', execBinary);
  chmodSync(execBinary, 0o755);
  for (let i = 0; i < 5; i++) assert.equal(runInPod(execBinary), 0);
  assert.equal(runInPod(`${projectPath('build/workloads/syscall_mix')} 2000 200`, 'x'), 0);
  const { port } = server.address() as { port: number };
  const closedPort = await freePort();
  assert.equal(runInPod(`bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}'`), 0);
  assert.notEqual(runInPod(`bash -c 'exec 3<>/dev/tcp/127.0.0.1/${closedPort}' 2>/dev/null`), 0, 'nothing listens on the closed port');
  assert.equal(runInPod(`dd if=/dev/zero of=${join(dir, 'buffered')} bs=4k count=100 status=none`), 0);
  assert.equal(runInPod(`dd if=/dev/zero of=${join(dir, 'direct')} bs=4k count=64 oflag=direct status=none`), 0);
  const answered = `dig-${RUN}.ok.test`;
  const resolved = `getent-${RUN}.ok.test`;
  await dig(network, SERVER_V4, answered, 3);
  await getent(network, resolved, 1);
  const [tlsName] = tls.names;
  for (let i = 0; i < 3; i++) assert.equal(tls.curl(tlsName, tlsServer.port).ok, 1, 'curl\'s handshake with openssl s_server');

  const pod = { pod: POD_UID };
  const wanted: [string, string, Record<string, string>, number][] = [
    ['process', 'ebpf_process_exec_total', { comm: exec }, 5],
    ['syscalls', 'ebpf_syscall_total', { syscall: 'getppid', ...pod }, 2000],
    ['syscalls', 'ebpf_syscall_errors_total', { syscall: 'openat', errno: 'ENOENT', ...pod }, 200],
    ['tcp', 'ebpf_network_connect_duration_seconds_count', { dst_ip: '127.0.0.1', ...pod }, 1],
    ['tcp', 'ebpf_network_connect_failures_total', { dst_ip: '127.0.0.1', error: 'ECONNREFUSED', ...pod }, 1],
    ['dns', 'ebpf_dns_query_duration_seconds_count', { domain: answered }, 3],
    // One getaddrinfo call, counted once (not as its A and AAAA queries on the wire): the uprobes see it.
    ['dns', 'ebpf_dns_query_duration_seconds_count', { domain: resolved }, 1],
    ['fileio', 'ebpf_io_operations_total', { filesystem: 'ext4', operation: 'write', ...pod }, 100],
    ['blockio', 'ebpf_block_io_operations_total', { operation: 'write', ...pod }, 64],
    ['tls', 'ebpf_tls_handshake_duration_seconds_count', { server_name: tlsName, side: 'client' }, 3],
  ];
  const exposition = await scrapeUntil(metricsPort, 'every receiver\'s metrics for the workloads', 20_000, (text) =>
    wanted.every(([, name, labels, least]) => sampleValue(text, name, labels) >= least),
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${collector.stderr.slice(-4000)}`);
  });
  for (const [receiver, name, labels, least] of wanted)
    assert.ok(sampleValue(exposition, name, labels) >= least, `${receiver}: ${name}${JSON.stringify(labels)} is ${sampleValue(exposition, name, labels)}, expected at least ${least}`);
  assert.equal(sampleValue(exposition, 'ebpf_dns_query_duration_seconds_count', { domain: resolved }), 1, 'getaddrinfo is counted per call');
  assert.equal(sampleValue(exposition, 'ebpf_tls_handshake_duration_seconds_count', { server_name: tlsName, side: 'client' }), 3, 'each handshake once');
});

/** dns and tls alone, scraped, with uprobe-multi links turned off, so that their uprobes go through perf_event. */
async function startWithoutUprobeMulti(wrapper: string[]): Promise<{ fallback: RunningCollector; port: number }> {
  const port = await freePort();
  const pipeline = parse(prometheusPipeline({ dns: { collection_interval: '300ms' }, tls: { collection_interval: '300ms' } }, port));
  pipeline.service.kernel_features = { disable: ['uprobe_multi'] };
  return { fallback: await RunningCollector.start(stringify(pipeline), wrapper), port };
}

test('with uprobe_multi turned off, as full root, the uprobes attach through perf_event and count getaddrinfo calls and handshakes', async () => {
  const { fallback, port } = await startWithoutUprobeMulti([]);
  try {
    const receivers = await eventually('dns and tls to report', 20_000, async () => {
      const ours = (await fallback.status()).components.filter((c) => c.kind === 'receiver');
      return ours.length === 2 && ours.every((c) => c.status !== 'starting' && c.status !== 'created') ? ours : undefined;
    });
    for (const receiver of receivers) assert.equal(receiver.status, 'ok', `${receiver.id}: ${receiver.message}`);
    assert.deepEqual(uprobeLinkKinds(fallback), ['perf_event'], 'getaddrinfo and libssl are probed through perf_event links only');

    const resolved = `fallback-${RUN}.ok.test`;
    await getent(network, resolved, 1);
    // The second name: the collector of the tests above counts the first.
    const tlsName = tls.names[1];
    for (let i = 0; i < 2; i++) assert.equal(tls.curl(tlsName, tlsServer.port).ok, 1, 'curl\'s handshake with openssl s_server');
    const getaddrinfoCalls = (text: string) => sampleValue(text, 'ebpf_dns_query_duration_seconds_count', { domain: resolved });
    const handshakes = (text: string) => sampleValue(text, 'ebpf_tls_handshake_duration_seconds_count', { server_name: tlsName, side: 'client' });
    await scrapeUntil(port, 'the getaddrinfo call and the handshakes', 15_000, (text) => getaddrinfoCalls(text) >= 1 && handshakes(text) >= 2);
    const exposition = await scrape(port);
    assert.equal(getaddrinfoCalls(exposition), 1, 'getaddrinfo is counted per call');
    assert.equal(handshakes(exposition), 2, 'each handshake once');
    await fallback.stopAndExpectReleased();
  } finally {
    await fallback.stop();
  }
});

test('with uprobe_multi turned off and these capabilities, dns and tls say that perf_event uprobes need CAP_SYS_ADMIN here', async () => {
  const { fallback } = await startWithoutUprobeMulti(setpriv);
  try {
    // The tls receiver reports after its first scan of processes.
    const receivers = await eventually('dns and tls to report', 20_000, async () => {
      const ours = (await fallback.status()).components.filter((c) => c.kind === 'receiver');
      return ours.length === 2 && ours.every((c) => c.status !== 'starting' && c.status !== 'created' && c.message) ? ours : undefined;
    });
    const byId = new Map(receivers.map((c) => [c.id, c]));
    // Linux 6.16 and its stable backports ("perf: Revert to requiring CAP_SYS_ADMIN for uprobes") refuse perf uprobes without SYS_ADMIN.
    const refused = String.raw`cannot attach \w+ \(u(?:ret)?probe [^;()]+; uprobes through perf_event need CAP_SYS_ADMIN on this kernel \(Linux 6\.16\+\); uprobe-multi links \(Linux 6\.6\+\) need only CAP_BPF and CAP_PERFMON\): Permission denied; libbpf: prog '\w+': failed to create u(?:ret)?probe '[^']+' perf event: Permission denied`;
    const dns = byId.get('dns')!;
    assert.equal(dns.status, 'recoverable_error');
    assert.match(dns.message!, new RegExp(String.raw`^getaddrinfo is not probed, so its calls are counted per wire query \(\S+/libc\.so\.6: ${refused}\)$`));
    const tlsStatus = byId.get('tls')!;
    assert.equal(tlsStatus.status, 'recoverable_error');
    assert.match(tlsStatus.message!, new RegExp(String.raw`^no OpenSSL 3\.0 library or binary found to probe yet; not probing \S+/libssl\.so\.3: attach failed: ${refused}`));
    assert.equal(await fallback.stop(), 0, fallback.stderr);
  } finally {
    await fallback.stop();
  }
});

test('CPU profiles name the frames of another user\'s process, of one in another mount namespace, of a deleted binary, and the kernel\'s', async () => {
  const hotspots = compileWorkload('hotspots');
  chmodSync(join(hotspots, '..'), 0o755);
  const copy = (name: string) => {
    const path = join(dir, name);
    copyFileSync(hotspots, path);
    chmodSync(path, 0o755);
    return path;
  };
  const comms = { otherUser: 'lp-hot-user', mountNs: 'lp-hot-mntns', deleted: 'lp-hot-deleted' };
  // uid 65534 (nobody): its /proc/PID/{maps,root} need SYS_PTRACE.
  startSpinner(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', copy(comms.otherUser), '600']);
  // The binary exists only inside a private tmpfs of a new mount namespace: found through /proc/PID/root.
  const hidden = join(dir, 'mntns');
  mkdirSync(hidden);
  startSpinner(['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs tmpfs ${hidden} && cp ${hotspots} ${hidden}/${comms.mountNs} && exec ${hidden}/${comms.mountNs} 600`]);
  // Deleted while it runs: only /proc/PID/map_files still opens it (CHECKPOINT_RESTORE).
  const deletedPath = copy(comms.deleted);
  const deleted = startSpinner([deletedPath, '600']);
  await eventually('the deleted workload to map its binary', 5000, async () => (readFileSync(`/proc/${deleted.pid}/maps`, 'utf8').includes(deletedPath) ? true : undefined));
  rmSync(deletedPath);
  startKernelBound();

  // Profiles accumulate until every function shows: on a loaded machine each workload gets few samples a window.
  let folded = '';
  const stacks = (comm: string) => folded.split('\n').filter((line) => line.startsWith(`${comm};`));
  const missing = () => {
    const problems: string[] = [];
    for (const comm of Object.values(comms)) {
      const leaves = stacks(comm).map((line) => line.slice(0, line.lastIndexOf(' ')).split(';').at(-1));
      for (const name of ['hot_a', 'hot_b']) if (!leaves.includes(name)) problems.push(`${comm}: no stack ends in ${name}`);
      if (!stacks(comm).some((line) => line.includes(';main;hot_a '))) problems.push(`${comm}: no stack where main calls hot_a`);
    }
    // Kernel frames are named from /proc/kallsyms, whose addresses SYSLOG shows.
    const kernelFrames = stacks('lp-dd').flatMap((line) => line.split(';').slice(1)).filter((frame) => /^(entry_SYSCALL_64|do_syscall_64|ksys_(read|write)|vfs_(read|write))/.test(frame));
    if (kernelFrames.length === 0) problems.push('lp-dd: no named kernel frame');
    return problems;
  };
  await eventually('every workload\'s functions in the profiles', 60_000, async () => {
    folded += `${await foldedProfile(collector.statusUrl, 3)}\n`;
    const problems = missing();
    if (problems.length > 0) throw new Error(`${problems.join('; ')} in\n${folded}`);
    return true;
  });
});

test('kallsyms changes are seen without CAP_SYS_ADMIN: a BPF program loaded meanwhile changes kallsymsVersion()', async () => {
  // kallsymsVersion() in a process with the DaemonSet's capabilities, before and after the test loads a program.
  const script = `
import { kallsymsVersion } from ${JSON.stringify(projectPath('dist/processors/symbolizer/kallsyms.js'))};
import { createInterface } from 'node:readline';
console.log(JSON.stringify(await kallsymsVersion()));
for await (const _ of createInterface({ input: process.stdin })) console.log(JSON.stringify(await kallsymsVersion()));
`;
  const child = spawn(setpriv[0], [...setpriv.slice(1), process.execPath, '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  workloads.push(child);
  const lines: string[] = [];
  let buffered = '';
  child.stdout!.on('data', (chunk) => {
    buffered += chunk;
    const complete = buffered.split('\n');
    buffered = complete.pop()!;
    lines.push(...complete);
  });
  const line = (n: number) => eventually(`version ${n} from the child`, 10_000, async () => lines[n]);
  const before = await line(0);
  const object = BpfObject.open(projectPath('build', 'test-bpf', 'getppid_counter.bpf.o'));
  try {
    object.load();
    child.stdin!.write('\n');
    assert.notEqual(await line(1), before, 'the program loaded changes the version');
  } finally {
    object.close();
    child.stdin!.end();
  }
});

test('without SYSLOG, kernel frames keep their addresses, and the collector says why once, however often BPF programs come and go', async () => {
  const hidden = Number(readFileSync('/proc/sys/kernel/kptr_restrict', 'utf8')) >= 1 || Number(readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8')) >= 2;
  assert.ok(hidden, 'this kernel shows kallsyms addresses to anyone (kptr_restrict 0, perf_event_paranoid <= 1): nothing to show');
  const kernelBound = startKernelBound();
  const withoutSyslog = await RunningCollector.start(
    stringify({
      receivers: { cpu: { frequency_hz: 97, collection_interval: '1s', pids: [kernelBound.pid] } },
      processors: { symbolizer: {} },
      exporters: { pprof: { directory: join(dir, 'profiles-without-syslog') } },
      service: { http: { endpoint: '127.0.0.1:HTTP_PORT' }, pipelines: { profiles: { receivers: ['cpu'], processors: ['symbolizer'], exporters: ['pprof'] } } },
    }),
    setprivWith(grantable.filter((c) => c !== 'SYSLOG')),
  );
  try {
    const warning = /"msg":"kernel frames stay unnamed: \/proc\/kallsyms lists no addresses \(kernel\.kptr_restrict, or kernel\.perf_event_paranoid >= 2, hides them without CAP_SYSLOG\)"/g;
    await eventually('the warning', 10_000, async () => (withoutSyslog.stderr.match(warning) ? true : undefined));
    // Each program loaded and unloaded is a new kallsyms version, which the symbolizer reads again.
    for (let i = 0; i < 3; i++) {
      const object = BpfObject.open(projectPath('build', 'test-bpf', 'getppid_counter.bpf.o'));
      object.load();
      object.close();
      await eventually('a profile of lp-dd with its kernel frames as addresses', 15_000, async () => {
        const folded = await foldedProfile(withoutSyslog.statusUrl, 2);
        return /^lp-dd;.*;0xffff[0-9a-f]{12}[; ]/m.test(folded) ? true : undefined;
      });
    }
    assert.equal(withoutSyslog.stderr.match(warning)?.length, 1, withoutSyslog.stderr);
    assert.equal(await withoutSyslog.stop(), 0, withoutSyslog.stderr);
  } finally {
    await withoutSyslog.stop();
  }
});

test('with these capabilities a stop is still clean: exit 0, and the kernel holds none of its programs or links', async () => {
  await collector.stopAndExpectReleased();
});
