/**
 * The cost each TLS handshake pays for the tls receiver, and for Debian's
 * bpftrace ssllatency.bt (SSL_read/SSL_write/SSL_do_handshake latency) on
 * the same loop. A loopback loop of full TLS 1.3 handshakes
 * (bench/network/tls_handshake_loop.c: RSA-2048 certificate, SNI, verified
 * chain, client and server on libssl.so.3) runs with each tracer attached,
 * in runs that alternate between the system's libssl.so.3 (probed) and a
 * private copy of it (another inode, so no probe sees it). Pairing each
 * probed run with the unprobed run next to it cancels most of the drift
 * that other work on a shared VM causes; the median of the pairs'
 * differences is the added cost. Measured per handshake: CPU time of client
 * and server (user and system, where the uprobe traps are charged) and wall
 * time, and the kernel's run time of the tracer's BPF programs
 * (kernel.bpf_stats_enabled, on only while this runs), which leaves out the
 * traps themselves.
 *
 * usage: node build/dev/bench/network/tls_bench.js [--pairs N] [--handshakes N]   (bench/network/tls.sh builds what it needs)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { projectPath } from '../../collector/paths.js';
import { bpfProgramIds } from '../../native/index.js';
import { tlsReceiverFactory } from '../../receivers/tls/factory.js';
import { bpfPrograms, BpfStatsSwitch, median, startBpftrace, startReceiver, tableRow, type Setup } from '../common.js';

const OUT = projectPath('build/bench/network');
const LOOP = join(OUT, 'tls_handshake_loop');
const CERTS = join(OUT, 'tls');
const NAME = 'bench.tls.test';
const SSLLATENCY = '/usr/sbin/ssllatency.bt';
const LIBSSL = '/usr/lib/x86_64-linux-gnu/libssl.so.3';
/** A copy of libssl.so.3 that no probe sees: the loop loads it through LD_LIBRARY_PATH. */
const UNPROBED = join(OUT, 'unprobed-libssl');

const TRACERS = ['receiver', 'bpftrace'] as const;
type Mode = (typeof TRACERS)[number] | 'bare';
/** Names (as the kernel truncates them) of each mode's BPF programs. */
const PROGRAM_NAMES: Record<(typeof TRACERS)[number], RegExp> = { receiver: /^(handshake_call_|read_call_exit|ssl_free|ssl_ctrl|servername_|error_raised)/, bpftrace: /^(SSL_do_handshak|SSL_write|SSL_read|RSA_verify|RSA_sign)$/ };

const setups: Record<(typeof TRACERS)[number], Setup> = {
  // The system's libssl.so.3 is probed as always; the copy is not, since processes are not searched.
  receiver: () => startReceiver(tlsReceiverFactory, { discover_processes: false }),
  bpftrace: () => startBpftrace([SSLLATENCY], 'Tracing SSL/TLS handshake', { timeoutMs: 60_000 }),
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

/** Wall and CPU ns per handshake of one loop run, on the system's libssl or on the unprobed copy. */
function timeLoop(handshakes: number, probed: boolean): { wall: number; cpu: number } {
  const env = probed ? process.env : { ...process.env, LD_LIBRARY_PATH: UNPROBED };
  const run = spawnSync(LOOP, [join(CERTS, `${NAME}.pem`), join(CERTS, `${NAME}.key`), join(CERTS, 'ca.pem'), NAME, String(handshakes)], { encoding: 'utf8', env });
  const [wall, cpu, total] = run.stdout.trim().split(' ').map(Number);
  if (run.status !== 0 || total !== handshakes) throw new Error(`tls_handshake_loop failed (exit ${run.status}): ${run.stdout}${run.stderr}`);
  return { wall, cpu };
}

const { values: options } = parseArgs({ options: { pairs: { type: 'string', default: '15' }, handshakes: { type: 'string', default: '150' } } });
const pairs = Number(options.pairs);
const handshakes = Number(options.handshakes);
if (!existsSync(LOOP)) throw new Error(`${LOOP} is missing: run bash bench/network/tls.sh`);
makeCertificates();
mkdirSync(UNPROBED, { recursive: true });
copyFileSync(LIBSSL, join(UNPROBED, 'libssl.so.3'));

interface Result {
  cpuUs: number;
  addedCpuUs: number;
  wallUs: number;
  addedWallUs: number;
  bpfUs: number;
  /** BPF program runs per handshake: each is a uprobe trap (an entry, or a return). */
  runs: number;
}
const us = (ns: number) => ns / 1000;
const results = {} as Record<Mode, Result>;
const unprobed: { cpu: number[]; wall: number[] } = { cpu: [], wall: [] };
const bpfStats = new BpfStatsSwitch();
try {
  for (const tracer of TRACERS) {
    const loaded = new Set(bpfProgramIds());
    const detach = await setups[tracer]();
    try {
      const ours = bpfPrograms().filter((p) => !loaded.has(p.id) && PROGRAM_NAMES[tracer].test(p.name)).map((p) => p.id);
      if (ours.length === 0) throw new Error(`no programs of ${tracer} found`);
      timeLoop(handshakes, true); // warm up
      const added = { cpu: [] as number[], wall: [] as number[] };
      const probed = { cpu: [] as number[], wall: [] as number[] };
      const bpf: number[] = [];
      const runs: number[] = [];
      for (let pair = 0; pair < pairs; pair++) {
        // Alternate which goes first, so that a trend within a pair cancels over pairs.
        const first = pair % 2 === 0;
        const a = timeLoop(handshakes, first);
        bpfStats.on();
        const stats = () => new Map(bpfPrograms().map((p) => [p.id, { time: p.runTimeNs, count: p.runs }]));
        const before = stats();
        const b = timeLoop(handshakes, !first);
        const after = stats();
        bpfStats.restore();
        const [withProbes, without] = first ? [a, b] : [b, a];
        const delta = (field: 'time' | 'count') => ours.reduce((sum, id) => sum + (after.get(id)?.[field] ?? 0) - (before.get(id)?.[field] ?? 0), 0) / handshakes;
        if (!first) {
          bpf.push(delta('time'));
          runs.push(delta('count'));
        }
        for (const kind of ['cpu', 'wall'] as const) {
          added[kind].push(withProbes[kind] - without[kind]);
          probed[kind].push(withProbes[kind]);
          unprobed[kind].push(without[kind]);
        }
      }
      results[tracer] = { cpuUs: us(median(probed.cpu)), addedCpuUs: us(median(added.cpu)), wallUs: us(median(probed.wall)), addedWallUs: us(median(added.wall)), bpfUs: us(median(bpf)), runs: median(runs) };
      process.stderr.write(`${tracer}: ${JSON.stringify(results[tracer])}\n`);
    } finally {
      await detach();
    }
  }
} finally {
  bpfStats.restore();
}
results.bare = { cpuUs: us(median(unprobed.cpu)), addedCpuUs: 0, wallUs: us(median(unprobed.wall)), addedWallUs: 0, bpfUs: 0, runs: 0 };
const addedShare = results.receiver.addedCpuUs / results.bare.cpuUs;

console.log(`loopback TLS 1.3 handshakes (client and server on libssl.so.3), ${pairs} pairs of runs of ${handshakes} per tracer; medians per handshake:\n`);
const widths = [10, 8, 7, 7, 8, 7, 11, 6];
console.log(tableRow(['mode', 'CPU µs', 'added', 'share', 'wall µs', 'added', 'BPF run µs', 'traps'], widths));
for (const mode of ['bare', ...TRACERS] as const) {
  const row = results[mode];
  const share = `${((row.addedCpuUs / results.bare.cpuUs) * 100).toFixed(1)}%`;
  console.log(tableRow([mode, row.cpuUs.toFixed(0), row.addedCpuUs.toFixed(1), share, row.wallUs.toFixed(0), row.addedWallUs.toFixed(1), row.bpfUs.toFixed(1), row.runs.toFixed(1)], widths));
}
console.log(`\n${addedShare <= 0.05 ? 'PASS' : 'FAIL'}  the receiver adds ${(addedShare * 100).toFixed(1)}% CPU to a handshake (target <= 5%)`);
console.log(`${results.receiver.addedCpuUs <= results.bpftrace.addedCpuUs ? 'PASS' : 'FAIL'}  the receiver adds ${results.receiver.addedCpuUs.toFixed(1)} µs CPU, bpftrace ssllatency.bt ${results.bpftrace.addedCpuUs.toFixed(1)} µs (target: no more)`);
console.log(JSON.stringify({ pairs, handshakes, results }));
