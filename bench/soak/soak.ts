/**
 * The soak: the default pipeline.yaml, plus an OTLP exporter for its profiles
 * and metrics, runs for `--minutes` beside short-lived processes started at
 * `--exec-rate` per second and a CPU-bound workload, while the OTLP endpoint
 * is down from minute `--outage-start` for `--outage-minutes`. Every minute it
 * samples the collector's RSS, open descriptors, CPU, BPF map fill and its own
 * item counters; at the end it waits for the exporter's backlog to drain,
 * stops the collector and checks what the issue asks (see `verdicts`).
 * Writes samples.json, table.md and summary.json into `--out`.
 *
 * usage: node build/dev/bench/soak/soak.js --out DIR [--minutes 60] [--outage-start 20] [--outage-minutes 10] [--exec-rate 200]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { projectPath } from '../../collector/paths.js';
import { OtlpGrpcSink } from '../../exporters/otlpcommon/testing/otlp-sinks.js';
import { eventually, freePort } from '../../test/support/collector.js';

const { values: options } = parseArgs({
  options: {
    out: { type: 'string' },
    minutes: { type: 'string', default: '60' },
    'outage-start': { type: 'string', default: '20' },
    'outage-minutes': { type: 'string', default: '10' },
    'exec-rate': { type: 'string', default: '200' },
    'warmup-minutes': { type: 'string', default: '5' },
    'queue-mib': { type: 'string', default: '256' },
  },
});
if (!options.out) throw new Error('--out DIR is required');
const OUT = options.out;
const MINUTES = Number(options.minutes);
const OUTAGE_START = Number(options['outage-start']);
const OUTAGE_END = OUTAGE_START + Number(options['outage-minutes']);
const EXEC_RATE = Number(options['exec-rate']);
const WARMUP = Number(options['warmup-minutes']);
const QUEUE_MIB = Number(options['queue-mib']);
const MINUTE_MS = 60_000;
const RSS_EVERY_MS = 5_000;
/** Minutes after the outage in which the backlog is delivered and its memory given back. */
const RECOVERY_MINUTES = 5;
/** The symbolizer's default max_cached_binaries (pipeline.yaml leaves it so). */
const MAX_CACHED_BINARIES = 256;
/** How long after the workloads stop the exporter's queue may take to drain. */
const DRAIN_TIMEOUT_MS = 5 * MINUTE_MS;

interface Sample {
  minute: number;
  otlpUp: boolean;
  /** The collector's RSS over the minute, read every RSS_EVERY_MS: its mean and peak (garbage collection makes it a sawtooth). */
  rssMb: number;
  rssPeakMb: number;
  /** Open descriptors over the minute, read with RSS: the fewest (a leak raises it) and the most (files open mid-collection). */
  fds: number;
  fdsPeak: number;
  /** Of the last reading: descriptors of files (the symbolizer's ELF and debug files, bounded by max_cached_binaries) and the rest (BPF objects, perf events, sockets, pipes). */
  fileFds: number;
  otherFds: number;
  /** ELF files the symbolizer holds (ebpf_collector_symbolizer_cached_binaries). */
  cachedBinaries: number;
  /** The collector's CPU (user + system) over the last minute, as a share of one CPU. */
  cpuShare: number;
  /** The fullest BPF map at its last read (entries / max_entries), and which. */
  maxMapFill: number;
  fullestMap: string;
  /** Items any component dropped, by component/signal/reason (counted: ebpf_collector_dropped_items_total). */
  dropped: Record<string, number>;
  /** The OTLP exporter's items: handed to it, delivered, failed for good, waiting in its queue. */
  otlp: { received: number; exported: number; failed: number; dropped: number; queued: number; queuedMb: number };
  /** Export requests the OTLP endpoint accepted in the last minute. */
  sinkRequests: number;
  liveProcesses: number;
}

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): Series[] {
  const series: Series[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    series.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return series;
}

function sum(series: Series[], name: string, labels: Record<string, string> = {}): number {
  return series
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

/** The default pipeline on free ports, its profiles and metrics also sent to `otlpEndpoint` with retries outlasting the outage. */
function soakConfig(metricsPort: number, httpPort: number, otlpEndpoint: string): string {
  const config = parse(readFileSync(projectPath('pipeline.yaml'), 'utf8'));
  config.exporters.prometheus.endpoint = `127.0.0.1:${metricsPort}`;
  config.exporters.pprof.directory = join(OUT, 'profiles');
  config.service.http.endpoint = `127.0.0.1:${httpPort}`;
  const outageMs = (OUTAGE_END - OUTAGE_START) * MINUTE_MS;
  config.exporters.otlp = {
    endpoint: otlpEndpoint,
    tls: { insecure: true },
    // Sized to hold the outage: the default 64 MiB holds about 5 minutes of this pipeline's profiles and metrics.
    sending_queue: { max_bytes: QUEUE_MIB * 1048576 },
    retry_on_failure: { max_interval: '30s', max_elapsed_time: `${Math.round((outageMs + 5 * MINUTE_MS) / 1000)}s` },
  };
  // As pipeline.sidecar.yaml sends metrics over OTLP: windowed, so a series is sent once a minute, not at every collection.
  config.processors.window = { window: '60s', percentiles: [50, 95, 99] };
  const pipelines = config.service.pipelines;
  pipelines.profiles.exporters.push('otlp');
  pipelines['metrics/otlp'] = { receivers: pipelines.metrics.receivers, processors: [...pipelines.metrics.processors, 'window'], exporters: ['otlp'] };
  return stringify(config);
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function start(command: string, args: string[], log: string): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const file = createWriteStream(join(OUT, log));
  child.stdout!.pipe(file);
  child.stderr!.pipe(file);
  return child;
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  // The sink holds its port from here on; a free port is only free until someone takes it, so the other two must differ.
  let sink: OtlpGrpcSink | undefined = await OtlpGrpcSink.start();
  const sinkPort = sink.port;
  const metricsPort = await freePort();
  let httpPort = await freePort();
  while (httpPort === metricsPort) httpPort = await freePort();
  const configPath = join(OUT, 'pipeline.yaml');
  writeFileSync(configPath, soakConfig(metricsPort, httpPort, sink.endpoint));

  const collector = start(projectPath('bin/ebpf-collector'), ['run', '--config', configPath], 'collector.log');
  const collectorExit = new Promise<number | null>((resolve) => collector.once('exit', resolve));
  await eventually('the collector to answer /status', 60_000, async () => {
    if (collector.exitCode !== null) throw new Error(`the collector exited with ${collector.exitCode}; see ${OUT}/collector.log`);
    return (await fetch(`http://127.0.0.1:${httpPort}/status`)).ok || undefined;
  });
  const workloads = [
    start(projectPath('build/soak/exec_churn'), [String(EXEC_RATE), '/bin/true'], 'exec_churn.log'),
    start(projectPath('build/soak/fixed_work'), ['1000000000000'], 'fixed_work.log'),
  ];

  const samples: Sample[] = [];
  const scrapeSeries = async () => parseExposition(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
  // One sample of a sawtooth says little: RSS is read every few seconds and summed up per minute.
  let rssReadings: number[] = [];
  let fdReadings: number[] = [];
  const openFds = () => readdirSync(`/proc/${collector.pid}/fd`).length;
  const rssTimer = setInterval(() => {
    rssReadings.push(rssMb(collector.pid!));
    fdReadings.push(openFds());
  }, RSS_EVERY_MS);
  const takeSample = async (minute: number, cpuBefore: number, elapsedMs: number): Promise<Sample> => {
    const series = await scrapeSeries();
    const status = (await (await fetch(`http://127.0.0.1:${httpPort}/status`)).json()) as { liveProcesses: number };
    const fills = series.filter((s) => s.name === 'ebpf_collector_bpf_map_fill_ratio');
    const fullest = fills.reduce((a, b) => (b.value > a.value ? b : a), { name: '', labels: { component: '-', map: '-' }, value: 0 });
    const dropped: Record<string, number> = {};
    for (const s of series.filter((s) => s.name === 'ebpf_collector_dropped_items_total'))
      dropped[`${s.labels.component}/${s.labels.signal}/${s.labels.reason}`] = s.value;
    const exporter = { component: 'otlp' };
    const sinkRequests = sink?.received.length ?? 0;
    // The sink keeps request bodies; an hour of them would grow this process, not the collector.
    sink?.received.splice(0);
    const readings = [...rssReadings, rssMb(collector.pid!)];
    rssReadings = [];
    const fdTargets = readdirSync(`/proc/${collector.pid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${collector.pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    const fileFds = fdTargets.filter((target) => target.startsWith('/')).length;
    const fds = [...fdReadings, fdTargets.length];
    fdReadings = [];
    return {
      minute,
      otlpUp: sink !== undefined,
      rssMb: readings.reduce((a, b) => a + b, 0) / readings.length,
      rssPeakMb: Math.max(...readings),
      fds: Math.min(...fds),
      fdsPeak: Math.max(...fds),
      fileFds,
      otherFds: fdTargets.length - fileFds,
      cachedBinaries: sum(series, 'ebpf_collector_symbolizer_cached_binaries'),
      cpuShare: (cpuSeconds(collector.pid!) - cpuBefore) / (elapsedMs / 1000),
      maxMapFill: fullest.value,
      fullestMap: `${fullest.labels.component}/${fullest.labels.map}`,
      dropped,
      otlp: {
        received: sum(series, 'ebpf_collector_received_items_total', exporter),
        exported: sum(series, 'ebpf_collector_exported_items_total', exporter),
        failed: sum(series, 'ebpf_collector_export_failed_items_total', exporter),
        dropped: sum(series, 'ebpf_collector_dropped_items_total', exporter),
        queued: sum(series, 'ebpf_collector_exporter_queue_items', exporter),
        queuedMb: sum(series, 'ebpf_collector_exporter_queue_bytes', exporter) / 1048576,
      },
      sinkRequests,
      liveProcesses: status.liveProcesses,
    };
  };

  const startedAt = Date.now();
  let cpuBefore = cpuSeconds(collector.pid!);
  let lastAt = startedAt;
  for (let minute = 1; minute <= MINUTES; minute++) {
    await sleep(Math.max(0, startedAt + minute * MINUTE_MS - Date.now()));
    const now = Date.now();
    const sample = await takeSample(minute, cpuBefore, now - lastAt);
    cpuBefore = cpuSeconds(collector.pid!);
    lastAt = now;
    samples.push(sample);
    process.stdout.write(`${JSON.stringify(sample)}\n`);
    writeFileSync(join(OUT, 'samples.json'), JSON.stringify(samples, null, 1));
    // The outage covers minutes (OUTAGE_START, OUTAGE_END]: down after the sample at OUTAGE_START, back after OUTAGE_END's.
    if (minute === OUTAGE_START && sink) {
      await sink.close();
      sink = undefined;
    } else if (minute === OUTAGE_END && !sink) {
      sink = await OtlpGrpcSink.start(sinkPort);
    }
  }
  if (!sink) sink = await OtlpGrpcSink.start(sinkPort);

  for (const workload of workloads) workload.kill('SIGTERM');
  const execsStarted = await new Promise<number>((resolve) => {
    let out = '';
    workloads[0].stdout!.on('data', (chunk) => (out += chunk));
    workloads[0].once('exit', () => resolve(Number(out.trim()) || 0));
  });
  // The backlog is delivered once the queue is empty (the collector keeps producing, so new items come and go).
  const drainStarted = Date.now();
  const drained = await eventually('the OTLP backlog to drain', DRAIN_TIMEOUT_MS, async () => {
    const series = await scrapeSeries();
    return sum(series, 'ebpf_collector_exporter_queue_items', { component: 'otlp' }) === 0 ? series : undefined;
  }).then(
    () => Date.now() - drainStarted,
    () => undefined,
  );
  const final = await takeSample(MINUTES + 1, cpuBefore, Date.now() - lastAt);
  clearInterval(rssTimer);
  const stopStarted = Date.now();
  collector.kill('SIGTERM');
  const exitCode = await collectorExit;
  const stopMs = Date.now() - stopStarted;
  await sink.close();

  const afterWarmup = samples.filter((s) => s.minute > WARMUP);
  // The outage's backlog is held in memory (bounded by the queue's max_bytes) until it is delivered: RSS is judged outside it.
  const steady = afterWarmup.filter((s) => s.minute <= OUTAGE_START || s.minute > OUTAGE_END + RECOVERY_MINUTES);
  const rssBaseline = median(steady.map((s) => s.rssMb));
  const outagePeak = Math.max(...samples.filter((s) => s.minute > OUTAGE_START && s.minute <= OUTAGE_END + RECOVERY_MINUTES).map((s) => s.rssPeakMb));
  const otherFdsAfter = afterWarmup.map((s) => s.otherFds);
  const fileFdsAfter = afterWarmup.map((s) => s.fileFds);
  const verdicts = {
    [`RSS (mean of each minute) within ±10% of its median (${rssBaseline.toFixed(1)} MB) after the ${WARMUP}-minute warm-up, outside the outage and the ${RECOVERY_MINUTES} minutes after it`]: steady.every(
      (s) => Math.abs(s.rssMb - rssBaseline) <= 0.1 * rssBaseline,
    ),
    [`RSS during the outage and its recovery (peak ${outagePeak.toFixed(1)} MB) above the steady median by less than the queue's bound (${QUEUE_MIB} MiB)`]:
      outagePeak - rssBaseline < QUEUE_MIB * 1.048576,
    [`descriptors other than files flat after warm-up (${Math.min(...otherFdsAfter)}–${Math.max(...otherFdsAfter)})`]: Math.max(...otherFdsAfter) - Math.min(...otherFdsAfter) <= 8,
    [`file descriptors bounded by the symbolizer's cache (at most ${Math.max(...fileFdsAfter)} for at most ${Math.max(...afterWarmup.map((s) => s.cachedBinaries))} cached binaries, max_cached_binaries ${MAX_CACHED_BINARIES})`]:
      afterWarmup.every((s) => s.cachedBinaries <= MAX_CACHED_BINARIES),
    [`every BPF map below its bound (fullest ${Math.max(...samples.map((s) => s.maxMapFill)).toFixed(3)})`]: samples.every((s) => s.maxMapFill < 1),
    // Every item handed to the exporter was delivered, counted as dropped, or is still queued.
    [`OTLP items accounted for: received ${final.otlp.received} = exported ${final.otlp.exported} + dropped ${final.otlp.dropped} + queued ${final.otlp.queued}`]:
      final.otlp.received === final.otlp.exported + final.otlp.dropped + final.otlp.queued,
    [`OTLP backlog delivered after the outage (${drained === undefined ? 'not drained' : `queue drained ${Math.round(drained / 1000)} s after the workloads stopped`}; nothing dropped by the exporter: ${final.otlp.dropped})`]:
      drained !== undefined && final.otlp.dropped === 0,
    [`the collector stopped cleanly (exit ${exitCode} in ${(stopMs / 1000).toFixed(1)} s)`]: exitCode === 0,
  };
  const summary = { minutes: MINUTES, execRate: EXEC_RATE, execsStarted, outage: [OUTAGE_START, OUTAGE_END], verdicts, final };
  writeFileSync(join(OUT, 'summary.json'), JSON.stringify(summary, null, 1));
  writeFileSync(join(OUT, 'table.md'), table([...samples, final]));
  process.stdout.write(`\n${table([...samples, final])}\n`);
  for (const [what, ok] of Object.entries(verdicts)) process.stdout.write(`${ok ? 'PASS' : 'FAIL'}  ${what}\n`);
  process.exitCode = Object.values(verdicts).every(Boolean) ? 0 : 1;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function table(samples: Sample[]): string {
  const rows = samples.map((s) => {
    const dropped = Object.entries(s.dropped)
      .filter(([, n]) => n > 0)
      .map(([what, n]) => `${what}=${n}`)
      .join(' ');
    return `| ${s.minute} | ${s.otlpUp ? 'up' : 'down'} | ${s.rssMb.toFixed(1)} | ${s.rssPeakMb.toFixed(1)} | ${s.fds}–${s.fdsPeak} | ${s.otherFds} / ${s.fileFds} (${s.cachedBinaries}) | ${(s.cpuShare * 100).toFixed(1)}% | ${s.maxMapFill.toFixed(3)} ${s.fullestMap} | ${s.liveProcesses} | ${s.otlp.received} | ${s.otlp.exported} | ${s.otlp.queued} (${s.otlp.queuedMb.toFixed(1)} MB) | ${s.otlp.dropped} | ${s.sinkRequests} | ${dropped || '-'} |`;
  });
  return [
    '| min | OTLP | RSS MB (mean) | RSS MB (peak) | fds | fds: other / files (cached binaries) | CPU | fullest map | processes | otlp received | exported | queued | otlp dropped | requests/min | dropped (counted, cumulative) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

await main();
