/** What a decoded ExportProfilesServiceRequest made from fixtureCpuProfile() must say, checked field by field. */
import assert from 'node:assert/strict';
import { existsSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { FIXTURE_CPU_PROFILE_TOTALS, fixtureCpuProfile } from './fixtures.js';
import { decodeProfilesRequest, summarizeProfiles } from './otlp-sinks.js';
import { message, messages, protocDecodeText, scalar, scalars, type TextMessage } from './protoc.js';
import type { Signal } from '../../../collector/data/signals.js';
import { projectPath } from '../../../collector/paths.js';
import { EXPORT_METRICS_REQUEST, EXPORT_PROFILES_REQUEST, METRICS_SERVICE_PROTO, PROFILES_SERVICE_PROTO, PROTO_DIR } from '../schema.js';

/** The official opentelemetry-proto files in ../shared beside the project (development and CI); the project never needs them to run. */
export const OFFICIAL_PROTO_DIR = projectPath('..', 'shared', 'otlp-proto');

const DICTIONARY_TABLES = ['mapping_table', 'location_table', 'function_table', 'link_table', 'attribute_table', 'stack_table'];

/** Decodes `body` with protoc against the project's schema and checks it against the fixture. */
export function checkFixtureProfilesRequest(body: Uint8Array, options: { processTableKnowsThisProcess: boolean }): TextMessage {
  const request = decodeProfilesRequest(body);
  const dictionary = message(request, 'dictionary');
  const strings = scalars(dictionary, 'string_table');
  const string = (parent: TextMessage, field: string) => strings[Number(scalar(parent, field))];

  // Index 0 of every table is its zero value.
  assert.equal(strings[0], '', 'string_table[0] is ""');
  for (const table of DICTIONARY_TABLES.filter((t) => t !== 'link_table')) assert.deepEqual(messages(dictionary, table)[0], {}, `${table}[0] is empty`);
  const zeroLink = messages(dictionary, 'link_table')[0];
  assert.deepEqual([scalar(zeroLink, 'trace_id', ''), scalar(zeroLink, 'span_id', '')], ['\0'.repeat(16), '\0'.repeat(8)], 'link_table[0] is the zero link');
  assert.equal(new Set(strings).size, strings.length, 'no string twice in string_table');

  for (const name of FIXTURE_CPU_PROFILE_TOTALS.functionNames) assert.ok(strings.includes(name), `function ${name} is in the string table`);
  const summary = summarizeProfiles(request);
  assert.equal(summary.samples, FIXTURE_CPU_PROFILE_TOTALS.samples);
  assert.deepEqual(summary.samplesByPid, FIXTURE_CPU_PROFILE_TOTALS.byPid);
  assert.equal(summary.samplesByFunction.get('_PyEval_EvalFrameDefault'), 14);
  assert.equal(summary.samplesByFunction.get('worker_thread'), 3);

  // One ResourceProfiles per process, with what a Collector's processors look for.
  assert.equal(messages(request, 'resource_profiles').length, FIXTURE_CPU_PROFILE_TOTALS.byPid.size);
  const fixture = fixtureCpuProfile();
  assert.deepEqual(summary.resourceByPid.get(4_100_001), {
    'service.name': 'python3',
    'host.name': hostname(),
    'process.pid': '4100001',
    'process.executable.name': 'python3',
    'container.id': fixture.samples[0].containerId,
  });
  if (options.processTableKnowsThisProcess) {
    const executable = readlinkSync(`/proc/${process.pid}/exe`);
    const self = summary.resourceByPid.get(process.pid)!;
    assert.equal(self['process.executable.path'], executable);
    assert.equal(self['process.executable.name'], basename(executable));
    assert.equal(self['service.name'], 'node');
  }

  // One CPU profile per process: samples counted, each standing for one sampling period of CPU time.
  for (const resourceProfiles of messages(request, 'resource_profiles')) {
    const [profile, ...others] = messages(message(resourceProfiles, 'scope_profiles'), 'profiles');
    assert.equal(others.length, 0);
    assert.deepEqual([string(message(profile, 'sample_type'), 'type_strindex'), string(message(profile, 'sample_type'), 'unit_strindex')], ['samples', 'count']);
    assert.deepEqual([string(message(profile, 'period_type'), 'type_strindex'), string(message(profile, 'period_type'), 'unit_strindex')], ['cpu', 'nanoseconds']);
    assert.equal(Number(scalar(profile, 'period')), fixture.periodNs);
    assert.equal(scalar(profile, 'duration_nano'), '10000000000');
    assert.equal(scalar(profile, 'profile_id', '').length, 16);
    const start = BigInt(scalar(profile, 'time_unix_nano'));
    for (const sample of messages(profile, 'samples')) {
      const [time, ...moreTimes] = scalars(sample, 'timestamps_unix_nano').map(BigInt);
      assert.equal(moreTimes.length, 0);
      assert.equal(scalars(sample, 'values').length, 1, 'one value per timestamp');
      assert.ok(time >= start && time < start + 10_000_000_000n, 'timestamps fall within [time_unix_nano, time_unix_nano + duration_nano)');
    }
  }

  // Mappings keep their build id; a frame with no name keeps its address and mapping.
  const mappings = messages(dictionary, 'mapping_table');
  const attributes = messages(dictionary, 'attribute_table');
  const attributesOf = (entry: TextMessage) =>
    Object.fromEntries(scalars(entry, 'attribute_indices').map((i) => [string(attributes[Number(i)], 'key_strindex'), scalar(message(attributes[Number(i)], 'value'), 'string_value', '')]));
  const libc = mappings.find((m) => string(m, 'filename_strindex') === '/usr/lib/x86_64-linux-gnu/libc.so.6')!;
  assert.deepEqual(attributesOf(libc), { 'process.executable.build_id.gnu': '6c1a1d2e5c0b4e0c8d3ab5c3a7a4c0f6f0f3c9aa' });
  assert.equal(BigInt(scalar(libc, 'memory_start')), 0x7f3a_1c00_0000n);
  assert.equal(BigInt(scalar(libc, 'memory_limit')), 0x7f3a_1c19_5000n);
  assert.equal(BigInt(scalar(libc, 'file_offset')), 0x28000n);
  const locations = messages(dictionary, 'location_table');
  const unnamed = locations.find((l) => BigInt(scalar(l, 'address')) === 0x55d0_0020_0010n)!;
  assert.equal(string(mappings[Number(scalar(unnamed, 'mapping_index'))], 'filename_strindex'), '/usr/bin/python3.11');
  assert.deepEqual(messages(unnamed, 'lines'), []);
  assert.deepEqual(attributesOf(unnamed), { 'profile.frame.type': 'native' });
  const kernel = locations.find((l) => BigInt(scalar(l, 'address')) === 0xffff_ffff_8100_1234n)!;
  assert.equal(scalar(kernel, 'mapping_index'), '0');
  assert.deepEqual(attributesOf(kernel), { 'profile.frame.type': 'kernel' });
  return request;
}

/**
 * Decodes `body` with protoc against the official protos as well: the same
 * text as with the project's copy, and no field the official schema does not
 * know (protoc prints those by number). Fails when the protos are missing.
 */
export function checkAgainstOfficialProtos(body: Uint8Array, signal: Signal): void {
  assert.ok(existsSync(OFFICIAL_PROTO_DIR), `${OFFICIAL_PROTO_DIR} is missing: development machines and CI have ../shared beside the project`);
  const [type, file] = signal === 'profiles' ? [EXPORT_PROFILES_REQUEST, PROFILES_SERVICE_PROTO] : [EXPORT_METRICS_REQUEST, METRICS_SERVICE_PROTO];
  const official = protocDecodeText(body, type, OFFICIAL_PROTO_DIR, file);
  assert.doesNotMatch(official, /^\s*\d+[:{ ]/m, 'no unknown fields');
  assert.equal(official, protocDecodeText(body, type, PROTO_DIR, file));
}

export interface DecodedSum {
  temporality: string;
  monotonic: boolean;
  /** as_double by the value of `attribute`. */
  values: Record<string, number>;
  startTimes: string[];
}

/** The Sum metric `name` of a decoded ExportMetricsServiceRequest, or undefined if it is not there as a Sum. */
export function decodedSum(request: TextMessage, name: string, attribute: string): DecodedSum | undefined {
  for (const resourceMetrics of messages(request, 'resource_metrics'))
    for (const scopeMetrics of messages(resourceMetrics, 'scope_metrics'))
      for (const metric of messages(scopeMetrics, 'metrics')) {
        if (scalar(metric, 'name', '') !== name || !metric.sum) continue;
        const sum = message(metric, 'sum');
        const values: Record<string, number> = {};
        const startTimes: string[] = [];
        for (const point of messages(sum, 'data_points')) {
          const label = messages(point, 'attributes').find((a) => scalar(a, 'key', '') === attribute);
          values[label ? scalar(message(label, 'value'), 'string_value', '') : ''] = Number(scalar(point, 'as_double'));
          startTimes.push(scalar(point, 'start_time_unix_nano'));
        }
        return { temporality: scalar(sum, 'aggregation_temporality', 'AGGREGATION_TEMPORALITY_UNSPECIFIED'), monotonic: scalar(sum, 'is_monotonic', 'false') === 'true', values, startTimes };
      }
  return undefined;
}
