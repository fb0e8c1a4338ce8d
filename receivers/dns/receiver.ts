/**
 * DNS query latency and failures by domain (bpf/dns.bpf.c): queries and
 * responses on the wire, and glibc getaddrinfo calls counted once for the
 * queries they send. The kernel matches responses to queries and aggregates;
 * every interval the maps are drained, and queries left unanswered for
 * `timeout` are expired here as failures with reason "timeout".
 */
import { existsSync, realpathSync } from 'node:fs';
import type { Consumer, CreateSettings } from '../../collector/component.js';
import type { Attributes } from '../../collector/data/metrics.js';
import { bpfObjectPath } from '../../collector/paths.js';
import type { BpfObject } from '../../native/index.js';
import { CounterSeries } from '../common/counter-series.js';
import { histogramCount, HistogramSeries, HISTOGRAM_VALUE_SIZE } from '../common/latency-histogram.js';
import { retireBank } from '../common/counter-banks.js';
import { reportLosses } from '../common/losses.js';
import { cString, PollingBpfReceiver } from '../common/polling.js';
import { aggregateBits, TaskLabels } from '../common/task-labels.js';
import type { DnsConfig } from './config.js';
import { DomainCap, OTHER_DOMAIN } from './domain-cap.js';
import { checkLayout, COMM_LEN, FAILURE_KEY, FLOW_SIZE, LOSS_REASONS, QUERY, REASON_TIMEOUT, RESOLVER_CALL, SERIES, SETTINGS_SIZE } from './layout.js';
import { failureReason, presentationName } from './names.js';

/** Where glibc's libc.so.6 usually is; the first that exists is probed when libc_paths is empty. */
const USUAL_LIBC_PATHS = [
  '/lib/x86_64-linux-gnu/libc.so.6',
  '/lib/aarch64-linux-gnu/libc.so.6',
  '/lib64/libc.so.6',
  '/usr/lib64/libc.so.6',
  '/lib/libc.so.6',
];

/** A getaddrinfo call still marked after this long lost its return (its thread died): the mark is removed. */
const RESOLVER_CALL_MAX_AGE_NS = 300n * 1_000_000_000n;

export class DnsReceiver extends PollingBpfReceiver {
  private readonly tasks: TaskLabels;
  private readonly domains: DomainCap;
  /** Why getaddrinfo is not probed, kept in the status while the wire path runs. */
  private readonly degraded: { reason?: string };

  constructor(settings: CreateSettings, private readonly config: DnsConfig, private readonly next: Consumer<'metrics'>) {
    const degraded: { reason?: string } = {};
    // The base class reports "ok" after every read; while getaddrinfo is not probed the status says so instead.
    const status = {
      report: (status: Parameters<CreateSettings['status']['report']>[0], message?: string) =>
        status === 'ok' && degraded.reason ? settings.status.report('recoverable_error', degraded.reason) : settings.status.report(status, message),
    };
    super({ ...settings, status }, bpfObjectPath('dns'), config.collection_interval);
    this.degraded = degraded;
    this.domains = new DomainCap(config.max_domains);
    this.tasks = new TaskLabels(config.aggregate_by);
  }

  protected override attach(object: BpfObject): void {
    checkLayout(object);
    const settings = Buffer.alloc(SETTINGS_SIZE);
    settings.writeUInt16BE(this.config.port, 0);
    settings.writeUInt32LE(aggregateBits(this.config.aggregate_by), 4);
    object.update('receiver_settings', Buffer.alloc(4), settings);
    // The return probe first: a call already running when the entry probe attaches is then never half-seen.
    this.probeGetaddrinfo(object);
    object.attach('dns_response_received', { kind: 'auto' });
    object.attach('dns_query_sent', { kind: 'auto' });
  }

  private probeGetaddrinfo(object: BpfObject): void {
    const paths = this.config.libc_paths.length ? this.config.libc_paths : USUAL_LIBC_PATHS.filter((path) => existsSync(path)).slice(0, 1);
    const problems: string[] = [];
    if (paths.length === 0) problems.push(`no libc.so.6 in ${USUAL_LIBC_PATHS.join(', ')}`);
    for (const path of new Set(paths.map((path) => (existsSync(path) ? realpathSync(path) : path)))) {
      try {
        object.attach('resolver_call_exit', { kind: 'uprobe', binaryPath: path, functionName: 'getaddrinfo', retprobe: true });
        object.attach('resolver_call_enter', { kind: 'uprobe', binaryPath: path, functionName: 'getaddrinfo' });
      } catch (error) {
        problems.push(`${path}: ${(error as Error).message}`);
      }
    }
    if (problems.length === 0) return;
    this.degraded.reason = `getaddrinfo is not probed, so its calls are counted per wire query (${problems.join('; ')})`;
    this.settings.logger.warn(this.degraded.reason);
  }

  protected override async collect(object: BpfObject, startTimeMs: number, endTimeMs: number): Promise<void> {
    const { telemetry } = this.settings;
    const timeouts = this.expireQueries(object);
    this.expireResolverCalls(object);
    const bank = await retireBank(object);
    const histograms = bank.drainReportingFill(telemetry, 'histograms');
    const failures = bank.drainReportingFill(telemetry, 'failures');
    reportLosses(bank, telemetry, LOSS_REASONS);

    const cgroupIds: bigint[] = [];
    for (let i = 0; i < histograms.count; i++) cgroupIds.push(histograms.keys.readBigUInt64LE(i * SERIES.size));
    for (let i = 0; i < failures.count; i++) cgroupIds.push(failures.keys.readBigUInt64LE(i * FAILURE_KEY.size));
    for (let i = 0; i < timeouts.count; i++) cgroupIds.push(timeouts.series.readBigUInt64LE(i * SERIES.size));
    this.tasks.resolve(cgroupIds);
    this.domains.expire(endTimeMs);

    let folded = 0;
    const durations = new HistogramSeries();
    for (let i = 0; i < histograms.count; i++) {
      const attributes = this.labels(histograms.keys, i * SERIES.size, endTimeMs);
      if (attributes.domain === OTHER_DOMAIN) folded += histogramCount(histograms.values, i * HISTOGRAM_VALUE_SIZE);
      durations.add(attributes, histograms.values, i * HISTOGRAM_VALUE_SIZE, 1);
    }
    const failed = new CounterSeries();
    for (let i = 0; i < failures.count; i++) {
      const offset = i * FAILURE_KEY.size;
      const reason = failures.keys.readUInt32LE(offset + FAILURE_KEY.reason);
      const value = Number(failures.values.readBigUInt64LE(i * 8));
      const attributes = this.labels(failures.keys, offset, endTimeMs);
      // Timeouts are the only failures not also in the duration histogram.
      if (attributes.domain === OTHER_DOMAIN && reason === REASON_TIMEOUT) folded += value;
      failed.add({ ...attributes, reason: failureReason(reason) }, value);
    }
    for (let i = 0; i < timeouts.count; i++) {
      const attributes = this.labels(timeouts.series, i * SERIES.size, endTimeMs);
      if (attributes.domain === OTHER_DOMAIN) folded++;
      failed.add({ ...attributes, reason: 'timeout' }, 1);
    }
    if (folded > 0) telemetry.dropped('metrics', folded, 'domain_cap');

    await this.next.consume({
      startTimeMs,
      endTimeMs,
      metrics: [
        {
          type: 'histogram',
          name: 'ebpf_dns_query_duration_seconds',
          description: 'Time from a DNS query to its response (any rcode), or of a getaddrinfo call that queried DNS, by queried domain.',
          temporality: 'delta',
          points: durations.points(),
        },
        {
          type: 'sum',
          name: 'ebpf_dns_query_failures_total',
          description: 'DNS queries that failed, by queried domain and reason: the rcode name, timeout, or the getaddrinfo error.',
          monotonic: true,
          temporality: 'delta',
          points: failed.points(),
        },
      ],
    });
  }

  /**
   * Removes wire queries unanswered for `timeout`; returns the series of those
   * that count as timeouts (a getaddrinfo call counts its own).
   */
  private expireQueries(object: BpfObject): { count: number; series: Buffer } {
    const inFlight = object.dump('in_flight');
    this.settings.telemetry.mapFill('in_flight', inFlight.count, object.mapInfo('in_flight').maxEntries);
    const oldestStart = process.hrtime.bigint() - BigInt(this.config.timeout) * 1_000_000n; // CLOCK_MONOTONIC, as bpf_ktime_get_ns
    const series: Buffer[] = [];
    for (let i = 0; i < inFlight.count; i++) {
      const offset = i * QUERY.size;
      if (inFlight.values.readBigUInt64LE(offset + QUERY.startNs) > oldestStart) continue;
      // A response that arrives meanwhile deletes it first and is counted as answered instead.
      if (!object.delete('in_flight', inFlight.keys.subarray(i * FLOW_SIZE, (i + 1) * FLOW_SIZE))) continue;
      if (inFlight.values.readUInt32LE(offset + QUERY.resolverTid) === 0) series.push(inFlight.values.subarray(offset, offset + SERIES.size));
    }
    return { count: series.length, series: Buffer.concat(series) };
  }

  private expireResolverCalls(object: BpfObject): void {
    const calls = object.dump('resolver_calls');
    const oldestStart = process.hrtime.bigint() - RESOLVER_CALL_MAX_AGE_NS;
    for (let i = 0; i < calls.count; i++)
      if (calls.values.readBigUInt64LE(i * RESOLVER_CALL.size + RESOLVER_CALL.startNs) < oldestStart) object.delete('resolver_calls', calls.keys.subarray(i * 4, i * 4 + 4));
  }

  /** domain (capped), pod, namespace and container always; pid and comm when the kernel aggregates by them. */
  private labels(keys: Buffer, offset: number, nowMs: number): Attributes {
    const domain = this.domains.admit(presentationName(keys, offset + SERIES.name, SERIES.size - SERIES.name), nowMs);
    const task = {
      cgroupId: keys.readBigUInt64LE(offset + SERIES.cgroupId),
      pid: keys.readUInt32LE(offset + SERIES.pid),
      comm: cString(keys, offset + SERIES.comm, COMM_LEN),
    };
    return { domain, ...this.tasks.of(task) };
  }
}
