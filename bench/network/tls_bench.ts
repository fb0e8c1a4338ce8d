/**
 * The cost each TLS handshake pays for the tls receiver. A loopback loop of
 * full TLS 1.3 handshakes (bench/network/tls_handshake_loop.c: RSA-2048
 * certificate, SNI, verified chain, libssl.so.3 on both sides) is timed with
 * nothing attached, with the receiver started as the collector would start
 * it (every OpenSSL on the machine probed, node included), and with Debian's
 * bpftrace ssllatency.bt (SSL_read/SSL_write/SSL_do_handshake latency).
 * Modes take turns within each round so that drift on a busy machine spreads
 * over all of them; a mode's added cost is its time per handshake minus the
 * bare time of the same round, and medians over rounds are reported: CPU
 * time of client and server (user and system, where the uprobe traps are
 * charged), which other work on a shared 2-core VM disturbs little, and the
 * wall time, which it disturbs much. The
 * kernel's run time of each mode's own BPF programs per handshake
 * (kernel.bpf_stats_enabled, on only while this runs) is reported too: it
 * leaves out the uprobe traps, which cost most.
 *
 * usage: node dist/bench/network/tls_bench.js [--reps N] [--handshakes N]   (bench/network/tls.sh builds what it needs)
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer } from '../../collector/component.js';
import { projectPath } from '../../collector/paths.js';
import { bpfProgramIds } from '../../native/index.js';
import { tlsReceiverFactory } from '../../receivers/tls/factory.js';
import { testHost, testSettings } from '../../test/support/components.js';

const OUT = projectPath('build/bench/network');
const LOOP = join(OUT, 'tls_handshake_loop');
const CERTS = join(OUT, 'tls');
const NAME = 'bench.tls.test';
const SSLLATENCY = '/usr/sbin/ssllatency.bt';

const MODES = ['bare', 'receiver', 'bpftrace'] as const;
type Mode = (typeof MODES)[number];
type Setup = () => Promise<() => Promise<void>>;
/** Names (as the kernel truncates them) of each mode's BPF programs. */
const PROGRAM_NAMES: Record<Mode, RegExp> = { bare: /^$/, receiver: /^(handshake_call_|read_call_exit|ssl_free|ssl_ctrl|servername_|error_raised)/, bpftrace: /^(SSL_do_handshak|SSL_write|SSL_read|RSA_verify|RSA_sign)$/ };
const BPF_STATS = '/proc/sys/kernel/bpf_stats_enabled';

const discard: Consumer<'metrics'> = { consume: async () => {} };

const setups: Record<Mode, Setup> = {
  bare: async () => async () => {},
  receiver: async () => {
    const receiver = tlsReceiverFactory.create(testSettings('receiver', 'tls'), tlsReceiverFactory.configSchema.parse({}), { metrics: discard });
    await receiver.start(testHost());
    return () => receiver.shutdown();
  },
  bpftrace: async () => {
    const child = spawn('bpftrace', [SSLLATENCY], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    for (let waited = 0; !output.includes('Tracing SSL/TLS handshake'); waited += 100) {
      if (child.exitCode !== null || waited > 60_000) throw new Error(`bpftrace did not attach: ${output}`);
      await sleep(100);
    }
    return async () => {
      child.kill('SIGINT');
      await exited;
    };
  },
};

function makeCertificates(): void {
  if (existsSync(join(CERTS, `${NAME}.pem`))) return;
  mkdirSync(CERTS, { recursive: true });
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: CERTS, stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=bench CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${NAME}.key`, '-out', `${NAME}.csr`, '-subj', `/CN=${NAME}`);
  writeFileSync(join(CERTS, `${NAME}.ext`), `subjectAltName=DNS:${NAME}\n`);
  openssl('x509', '-req', '-in', `${NAME}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${NAME}.pem`, '-days', '30', '-extfile', `${NAME}.ext`);
}

function programs(): { id: number; name?: string; run_time_ns?: number }[] {
  return JSON.parse(spawnSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8', maxBuffer: 1 << 26 }).stdout);
}

/** Wall and CPU ns per handshake of one loop run. */
function timeLoop(handshakes: number): { wall: number; cpu: number } {
  const run = spawnSync(LOOP, [join(CERTS, `${NAME}.pem`), join(CERTS, `${NAME}.key`), join(CERTS, 'ca.pem'), NAME, String(handshakes)], { encoding: 'utf8' });
  const [wall, cpu, total] = run.stdout.trim().split(' ').map(Number);
  if (run.status !== 0 || total !== handshakes) throw new Error(`tls_handshake_loop failed (exit ${run.status}): ${run.stdout}${run.stderr}`);
  return { wall, cpu };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const { values: options } = parseArgs({ options: { reps: { type: 'string', default: '9' }, handshakes: { type: 'string', default: '300' } } });
const reps = Number(options.reps);
const handshakes = Number(options.handshakes);
if (!existsSync(LOOP)) throw new Error(`${LOOP} is missing: run bash bench/network/tls.sh`);
makeCertificates();

const KINDS = ['cpu', 'wall'] as const;
type Kind = (typeof KINDS)[number];
const perHandshake: Record<Kind, Record<Mode, number[]>> = { cpu: { bare: [], receiver: [], bpftrace: [] }, wall: { bare: [], receiver: [], bpftrace: [] } };
const added: Record<Kind, Record<Mode, number[]>> = { cpu: { bare: [], receiver: [], bpftrace: [] }, wall: { bare: [], receiver: [], bpftrace: [] } };
const bpfNs: Record<Mode, number[]> = { bare: [], receiver: [], bpftrace: [] };
const statsBefore = readFileSync(BPF_STATS, 'utf8').trim();
writeFileSync(BPF_STATS, '1');
try {
  timeLoop(Math.ceil(handshakes / 4)); // warm the page cache and the CPU frequency
  for (let round = 0; round < reps; round++) {
    const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
    const times = {} as Record<Mode, { wall: number; cpu: number }>;
    for (const mode of order) {
      const loaded = new Set(bpfProgramIds());
      const detach = await setups[mode]();
      try {
        const ours = programs().filter((p) => !loaded.has(p.id) && PROGRAM_NAMES[mode].test(p.name ?? '')).map((p) => p.id);
        if (mode !== 'bare' && ours.length === 0) throw new Error(`no programs of ${mode} found`);
        const runTime = () => new Map(programs().map((p) => [p.id, p.run_time_ns ?? 0]));
        const before = runTime();
        times[mode] = timeLoop(handshakes);
        const after = runTime();
        bpfNs[mode].push(ours.reduce((sum, id) => sum + (after.get(id) ?? 0) - (before.get(id) ?? 0), 0) / handshakes);
      } finally {
        await detach();
      }
    }
    for (const kind of KINDS)
      for (const mode of MODES) {
        perHandshake[kind][mode].push(times[mode][kind]);
        added[kind][mode].push(times[mode][kind] - times.bare[kind]);
      }
    process.stderr.write(`round ${round + 1}/${reps}: ${MODES.map((m) => `${m} ${(times[m].cpu / 1000).toFixed(0)} CPU, ${(times[m].wall / 1000).toFixed(0)} wall`).join('; ')} µs/handshake\n`);
  }
} finally {
  writeFileSync(BPF_STATS, statsBefore);
}

const us = (ns: number) => ns / 1000;
const summary = Object.fromEntries(
  MODES.map((mode) => [
    mode,
    {
      cpuUs: us(median(perHandshake.cpu[mode])),
      addedCpuUs: us(median(added.cpu[mode])),
      wallUs: us(median(perHandshake.wall[mode])),
      addedWallUs: us(median(added.wall[mode])),
      bpfUs: us(median(bpfNs[mode])),
    },
  ]),
) as Record<Mode, { cpuUs: number; addedCpuUs: number; wallUs: number; addedWallUs: number; bpfUs: number }>;
const addedShare = summary.receiver.addedCpuUs / summary.bare.cpuUs;

console.log(`loopback TLS 1.3 handshakes (client and server on libssl.so.3), ${handshakes} per run, ${reps} rounds; medians per handshake:\n`);
console.log(`${'mode'.padEnd(10)} ${'CPU µs'.padStart(8)} ${'added'.padStart(7)} ${'vs bare'.padStart(8)} ${'wall µs'.padStart(8)} ${'added'.padStart(7)} ${'BPF run µs'.padStart(11)}`);
for (const mode of MODES) {
  const row = summary[mode];
  console.log(
    `${mode.padEnd(10)} ${row.cpuUs.toFixed(0).padStart(8)} ${row.addedCpuUs.toFixed(1).padStart(7)} ${(row.cpuUs / summary.bare.cpuUs).toFixed(3).padStart(8)} ${row.wallUs.toFixed(0).padStart(8)} ${row.addedWallUs.toFixed(1).padStart(7)} ${row.bpfUs.toFixed(1).padStart(11)}`,
  );
}
console.log(`\n${addedShare <= 0.05 ? 'PASS' : 'FAIL'}  the receiver adds ${(addedShare * 100).toFixed(1)}% CPU to a handshake (target <= 5%)`);
console.log(`${summary.receiver.addedCpuUs <= summary.bpftrace.addedCpuUs ? 'PASS' : 'FAIL'}  the receiver adds ${summary.receiver.addedCpuUs.toFixed(1)} µs CPU, bpftrace ssllatency.bt ${summary.bpftrace.addedCpuUs.toFixed(1)} µs (target: no more)`);
console.log(JSON.stringify({ handshakes, reps, summary, runs: perHandshake, bpfNs }));
