/**
 * What the dns receiver costs, in a network namespace of the bench's own with
 * dnsmasq on port 53 (bench/network/dns_loops.c does the work):
 * - per DNS query: a loop of UDP queries, each waiting for its answer;
 * - per getaddrinfo call (glibc: an A and an AAAA query), beside bpftrace's
 *   gethostlatency.bt, which probes the same function;
 * - per packet that is not DNS: a blast of UDP datagrams on lo, beside an
 *   empty tp_btf program pair on the same two tracepoints (the floor: what
 *   running any BPF there costs).
 * Modes take turns within each round so that drift on a busy machine spreads
 * over all of them; each loop runs twice per mode and the faster run counts;
 * a mode's added cost is its time minus the bare time of the same round, and
 * medians over rounds are reported. With
 * kernel.bpf_stats_enabled on, the kernel's own run time per program run is
 * reported too: the part of the per-packet cost spent inside the programs.
 *
 * usage: node build/dev/bench/network/dns_bench.js [--reps N] [--queries N] [--calls N] [--packets N]   (bench/network/dns.sh builds what it needs)
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { projectPath } from '../../collector/paths.js';
import { BpfObject } from '../../native/index.js';
import { dnsReceiverFactory } from '../../receivers/dns/factory.js';
import { DnsNamespace, SERVER_V4 } from '../../receivers/dns/testdata/dns-network.js';
import { bpfPrograms, BpfStatsSwitch, median, startBpftrace, startReceiver, type Setup } from '../common.js';

const LOOPS = projectPath('build/bench/network/dns_loops');
const EMPTY_PAIR = projectPath('build/bench/network/dns_empty_pair.bpf.o');
const GETHOSTLATENCY = '/usr/sbin/gethostlatency.bt';
const NAME = 'bench.ok.test';
/** A port nothing listens on but the blast's own sink: not DNS. */
const BLAST_PORT = 9999;

const MODES = ['bare', 'empty_pair', 'receiver', 'bpftrace'] as const;
type Mode = (typeof MODES)[number];
const WORKS = ['query', 'getaddrinfo', 'packet'] as const;
type Work = (typeof WORKS)[number];

/** The programs whose kernel run time is read per mode (bpftool shows names cut to 15 characters). */
const PROGRAMS: Partial<Record<Mode, string[]>> = {
  empty_pair: ['empty_sent', 'empty_received'],
  receiver: ['dns_query_sent', 'dns_response_re', 'resolver_call_e'],
};

const setups: Record<Mode, Setup> = {
  bare: async () => async () => {},
  empty_pair: async () => {
    const object = BpfObject.open(EMPTY_PAIR);
    object.load();
    object.attach('empty_sent', { kind: 'auto' });
    object.attach('empty_received', { kind: 'auto' });
    return async () => object.close();
  },
  receiver: () => startReceiver(dnsReceiverFactory),
  bpftrace: () => startBpftrace([GETHOSTLATENCY], 'Tracing getaddr'),
};

/** Kernel run time and runs so far of the loaded programs named `names` (bpf_stats). */
function programStats(names: string[]): { runTimeNs: number; runs: number } {
  let runTimeNs = 0;
  let runs = 0;
  for (const program of bpfPrograms())
    if (names.includes(program.name)) {
      runTimeNs += program.runTimeNs;
      runs += program.runs;
    }
  return { runTimeNs, runs };
}

async function timeLoop(network: DnsNamespace, args: string[]): Promise<number> {
  const { code, stdout, stderr } = await network.exec([LOOPS, ...args]);
  const ns = Number(stdout.trim());
  if (code !== 0 || !Number.isFinite(ns)) throw new Error(`dns_loops ${args.join(' ')} failed (exit ${code}): ${stdout}${stderr}`);
  return ns;
}

const { values: options } = parseArgs({
  options: {
    reps: { type: 'string', default: '7' },
    queries: { type: 'string', default: '2000' },
    calls: { type: 'string', default: '400' },
    packets: { type: 'string', default: '150000' },
  },
});
const reps = Number(options.reps);
const counts: Record<Work, number> = { query: Number(options.queries), getaddrinfo: Number(options.calls), packet: Number(options.packets) };
for (const path of [LOOPS, EMPTY_PAIR, GETHOSTLATENCY]) if (!existsSync(path)) throw new Error(`${path} is missing: run bash bench/network/dns.sh`);

const bpfStats = new BpfStatsSwitch();
const network = DnsNamespace.create(`dns-bench-${process.pid}`, [`${SERVER_V4}/24`, 'fd53::1/64'], SERVER_V4);
const times = Object.fromEntries(MODES.map((mode) => [mode, Object.fromEntries(WORKS.map((work) => [work, [] as number[]]))])) as Record<Mode, Record<Work, number[]>>;
const added = Object.fromEntries(MODES.map((mode) => [mode, Object.fromEntries(WORKS.map((work) => [work, [] as number[]]))])) as Record<Mode, Record<Work, number[]>>;
/** Kernel run time of a mode's programs per query, per call, and per packet, by round. */
const programNs = Object.fromEntries(Object.keys(PROGRAMS).map((mode) => [mode, Object.fromEntries(WORKS.map((work) => [work, [] as number[]]))])) as Partial<
  Record<Mode, Record<Work, number[]>>
>;
try {
  bpfStats.on();
  await network.startDnsmasq(`/tmp/dns-bench-${process.pid}.pid`);
  const run: Record<Work, () => Promise<number>> = {
    query: () => timeLoop(network, ['query', SERVER_V4, NAME, String(counts.query)]),
    getaddrinfo: () => timeLoop(network, ['getaddrinfo', NAME, String(counts.getaddrinfo)]),
    packet: () => timeLoop(network, ['blast', '127.0.0.1', String(BLAST_PORT), String(counts.packet)]),
  };
  for (const work of WORKS) await run[work](); // warm caches and dnsmasq
  for (let round = 0; round < reps; round++) {
    const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
    for (const mode of order) {
      const detach = await setups[mode]();
      try {
        for (const work of WORKS) {
          const names = work === 'packet' ? PROGRAMS[mode]?.slice(0, 2) : PROGRAMS[mode]; // the pair that runs per packet first
          const before = names && programStats(names);
          // The faster of two runs: load spikes from other processes only ever add time.
          times[mode][work].push(Math.min(await run[work](), await run[work]()));
          if (!names || !before) continue;
          const after = programStats(names);
          // Per packet: the mean run of the pair, whatever else passed meanwhile; otherwise everything the loops' two runs cost, per iteration.
          const perIteration =
            work === 'packet' ? ((after.runTimeNs - before.runTimeNs) / (after.runs - before.runs)) * 2 : (after.runTimeNs - before.runTimeNs) / (2 * counts[work]);
          programNs[mode]![work].push(perIteration);
        }
      } finally {
        await detach();
      }
    }
    for (const mode of MODES) for (const work of WORKS) added[mode][work].push(times[mode][work][round] - times.bare[work][round]);
    process.stderr.write(`round ${round + 1}/${reps}: ${MODES.map((m) => `${m} ${WORKS.map((w) => times[m][w][round].toFixed(0)).join('/')}`).join(', ')} ns per query/call/packet\n`);
  }
} finally {
  bpfStats.restore();
  network.destroy();
}

const summary = Object.fromEntries(
  MODES.map((mode) => [mode, Object.fromEntries(WORKS.map((work) => [work, { ns: median(times[mode][work]), addedNs: median(added[mode][work]) }]))]),
) as Record<Mode, Record<Work, { ns: number; addedNs: number }>>;
const programMedians = Object.fromEntries(
  Object.entries(programNs).map(([mode, byWork]) => [mode, Object.fromEntries(WORKS.map((work) => [work, median(byWork[work])]))]),
) as Partial<Record<Mode, Record<Work, number>>>;

console.log(`${reps} rounds; ${counts.query} queries, ${counts.getaddrinfo} getaddrinfo calls, ${counts.packet} non-DNS packets per run; medians:\n`);
console.log(`${'mode'.padEnd(11)} ${WORKS.map((w) => `${w} ns`.padStart(16) + `${'added'.padStart(9)}`).join(' ')}`);
for (const mode of MODES)
  console.log(`${mode.padEnd(11)} ${WORKS.map((w) => summary[mode][w].ns.toFixed(0).padStart(16) + summary[mode][w].addedNs.toFixed(0).padStart(9)).join(' ')}`);
console.log('\nkernel run time of the programs (bpf_stats), ns per query, per call, and per packet (both packet programs):');
for (const [mode, byWork] of Object.entries(programMedians)) console.log(`${mode.padEnd(11)} ${WORKS.map((w) => byWork[w].toFixed(1).padStart(25)).join(' ')}`);
const packetOverFloor = summary.receiver.packet.addedNs / summary.empty_pair.packet.addedNs;
// Both pairs pay the same dispatch on the same tracepoints, so the ratio of what they add is at most the ratio of their run times.
const programOverFloor = programMedians.receiver!.packet / programMedians.empty_pair!.packet;
const getaddrinfoOverBpftrace = summary.receiver.getaddrinfo.addedNs / summary.bpftrace.getaddrinfo.addedNs;
console.log(`receiver / empty pair, per packet: ${packetOverFloor.toFixed(2)}x timed, ${programOverFloor.toFixed(2)}x in-program run time (an upper bound of the added-cost ratio)`);
console.log(`receiver added per getaddrinfo call / gethostlatency.bt added: ${getaddrinfoOverBpftrace.toFixed(2)}x`);
console.log(`${programOverFloor <= 2 ? 'PASS' : 'FAIL'}  a non-DNS packet pays at most 2x the empty pair's cost`);
console.log(JSON.stringify({ reps, counts, summary, programNs: programMedians, packetOverFloor, programOverFloor, getaddrinfoOverBpftrace, runs: times }));
