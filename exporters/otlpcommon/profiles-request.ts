/**
 * ProfileBatch → ExportProfilesServiceRequest (opentelemetry-proto v1.11.0,
 * profiles v1development): one ResourceProfiles per process, each with one
 * CPU profile, and one ProfilesDictionary shared by the whole request.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import type { ProcessInfo } from '../../collector/processes.js';
import { profileSampleCount, type ProfileBatch, type ProfileSample } from '../../collector/data/profiles.js';
import { VERSION } from '../../collector/version.js';
import { ProfilesDictionaryBuilder, type ProfilesDictionaryMessage } from './profiles-dictionary.js';
import { exportProfilesRequestType, int64, type Int64 } from './schema.js';

interface KeyValueMessage {
  key: string;
  value: { string_value: string } | { int_value: number };
}

interface SampleMessage {
  stack_index: number;
  values: number[];
  timestamps_unix_nano: Int64[];
}

interface ProfileMessage {
  sample_type: { type_strindex: number; unit_strindex: number };
  samples: SampleMessage[];
  time_unix_nano: Int64;
  duration_nano: Int64;
  period_type: { type_strindex: number; unit_strindex: number };
  period: number;
  profile_id: Uint8Array;
}

interface ResourceProfilesMessage {
  resource: { attributes: KeyValueMessage[] };
  scope_profiles: { scope: { name: string; version: string }; profiles: ProfileMessage[] }[];
}

export interface ExportProfilesRequestMessage {
  resource_profiles: ResourceProfilesMessage[];
  dictionary: ProfilesDictionaryMessage;
}

export interface EncodedRequest {
  body: Uint8Array;
  items: number;
  /** Profiles in the request: what a partial success counts as rejected. */
  profiles: number;
}

/** What the collector's process table knows about a pid, beyond the sample's own pid and comm. */
export type ProcessLookup = (pid: number) => ProcessInfo | undefined;

const HOST_NAME = hostname();

export function buildProfilesRequest(batch: ProfileBatch, lookup?: ProcessLookup): ExportProfilesRequestMessage {
  const dictionary = new ProfilesDictionaryBuilder();
  // CPU samples counted as taken, with the sampling period saying how much CPU time each stands for.
  const sampleType = { type_strindex: dictionary.string('samples'), unit_strindex: dictionary.string('count') };
  const periodType = { type_strindex: dictionary.string('cpu'), unit_strindex: dictionary.string('nanoseconds') };
  const startNs = BigInt(Math.round(batch.startTimeMs)) * 1_000_000n;
  const endNs = BigInt(Math.round(batch.endTimeMs)) * 1_000_000n;
  // Per-sample times are unknown: each sample is stamped at the window's last nanosecond, inside [start, end).
  const sampleTime = int64(endNs > startNs ? endNs - 1n : startNs);

  const byProcess = new Map<string, ProfileSample[]>();
  for (const sample of batch.samples) {
    const key = `${sample.pid}\0${sample.comm}`;
    const samples = byProcess.get(key);
    if (samples) samples.push(sample);
    else byProcess.set(key, [sample]);
  }

  const resourceProfiles = [...byProcess.values()].map((samples): ResourceProfilesMessage => {
    // Samples with the same stack are one Sample, as the spec's sample identity asks.
    const countByStack = new Map<number, number>();
    for (const sample of samples) {
      const stack = dictionary.stack(sample.frames.map((frame) => dictionary.location(frame)));
      countByStack.set(stack, (countByStack.get(stack) ?? 0) + sample.count);
    }
    const profile: ProfileMessage = {
      sample_type: sampleType,
      samples: [...countByStack].map(([stack, count]) => ({ stack_index: stack, values: [count], timestamps_unix_nano: [sampleTime] })),
      time_unix_nano: int64(startNs),
      duration_nano: int64(endNs - startNs),
      period_type: periodType,
      period: batch.periodNs,
      profile_id: randomBytes(16),
    };
    return {
      resource: { attributes: processAttributes(samples[0], lookup?.(samples[0].pid)) },
      scope_profiles: [{ scope: { name: 'ebpf-collector', version: VERSION }, profiles: [profile] }],
    };
  });
  return { resource_profiles: resourceProfiles, dictionary: dictionary.build() };
}

/** Resource attributes a Collector's processors (k8sattributes, resourcedetection...) expect of a process. */
function processAttributes(sample: ProfileSample, info: ProcessInfo | undefined): KeyValueMessage[] {
  const text = (key: string, value: string): KeyValueMessage => ({ key, value: { string_value: value } });
  const attributes = [
    text('service.name', sample.comm),
    text('host.name', HOST_NAME),
    { key: 'process.pid', value: { int_value: sample.pid } },
    text('process.executable.name', info?.executable ? basename(info.executable) : sample.comm),
  ];
  if (info?.executable) attributes.push(text('process.executable.path', info.executable));
  const containerId = sample.containerId ?? info?.containerId;
  if (containerId) attributes.push(text('container.id', containerId));
  const podUid = sample.podUid ?? info?.podUid;
  if (podUid) attributes.push(text('k8s.pod.uid', podUid));
  return attributes;
}

export function encodeProfilesRequest(batch: ProfileBatch, lookup?: ProcessLookup): EncodedRequest {
  const request = buildProfilesRequest(batch, lookup);
  return {
    body: exportProfilesRequestType.encode(request as unknown as Record<string, unknown>).finish(),
    items: profileSampleCount(batch),
    profiles: request.resource_profiles.length,
  };
}
