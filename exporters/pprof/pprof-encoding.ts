/**
 * Profile batches → a gzip'd pprof profile (profile.proto), as `go tool pprof`,
 * Pyroscope and Parca read it: sample types samples/count and cpu/nanoseconds,
 * one Mapping per distinct mapping (with its build id), one Location per
 * distinct (mapping, address, function, line), labels pid/comm/container_id/pod_uid.
 *
 * Every location carries a function: the symbolizer's name, or for a frame it
 * could not name `unsymbolizedName(frame)` (`libfoo.so+0x1234`). The location
 * keeps its address and mapping (path, range, offset, build id), so a backend
 * can still symbolize it from the build id. Because every location has a
 * function, every mapping has has_functions: `go tool pprof` then does not
 * look for the binaries on the machine it runs on, which would print
 * "Local symbolization failed" wherever they are missing
 * (`-symbolize=force` with PPROF_BINARY_PATH still re-symbolizes).
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { unsymbolizedName, type Frame, type Mapping, type ProfileBatch, type ProfileSample } from '../../collector/data/profiles.js';
import { ProtobufWriter } from './protobuf-writer.js';

const gzipAsync = promisify(gzip);

/** Kernel frames carry no mapping of their own; they go under the name perf and pprof use for the kernel image. */
const KERNEL_MAPPING: Mapping = { path: '[kernel.kallsyms]', start: 0xffff_8000_0000_0000n, end: 0xffff_ffff_ffff_ffffn, fileOffset: 0n };
/**
 * User frames whose mapping is unknown (the process was gone before the
 * symbolizer read its maps). pprof skips mappings named `[...]` when it
 * symbolizes, and a profile without any mapping would get a nameless one.
 */
const UNKNOWN_MAPPING: Mapping = { path: '[unknown]', start: 0n, end: 0n, fileOffset: 0n };

const MS_TO_NS = 1_000_000n;

/** Field numbers of profile.proto (github.com/google/pprof/proto/profile.proto). */
const PROFILE = { sampleType: 1, sample: 2, mapping: 3, location: 4, function: 5, stringTable: 6, timeNanos: 9, durationNanos: 10, periodType: 11, period: 12 };
const VALUE_TYPE = { type: 1, unit: 2 };
const SAMPLE = { locationId: 1, value: 2, label: 3 };
const LABEL = { key: 1, str: 2, num: 3 };
const MAPPING = { id: 1, memoryStart: 2, memoryLimit: 3, fileOffset: 4, filename: 5, buildId: 6, hasFunctions: 7, hasFilenames: 8, hasLineNumbers: 9 };
const LOCATION = { id: 1, mappingId: 2, address: 3, line: 4 };
const LINE = { functionId: 1, line: 2 };
const FUNCTION = { id: 1, name: 2, systemName: 3, filename: 4 };

/** Ids are positions + 1 in the profile's lists; strings are string_table indexes. */
interface PprofMapping {
  id: number;
  mapping: Mapping;
  filename: number;
  buildId: number;
  hasFilenames: boolean;
  hasLineNumbers: boolean;
}

/** With what the symbolizer said there, to find it again; locations at one address are chained. */
interface PprofLocation {
  id: number;
  mappingId: number;
  address: bigint;
  functionId: number;
  functionName?: string;
  fileName?: string;
  line?: number;
  next?: PprofLocation;
}

/** Functions of one name are chained, one per file name. */
interface PprofFunction {
  id: number;
  name: number;
  fileName: string;
  filename: number;
  next?: PprofFunction;
}

interface PprofSample {
  locationIds: number[];
  count: number;
  cpuNs: number;
  pid: number;
  comm: number;
  containerId: number;
  podUid: number;
}

/** Builds one pprof profile from any number of batches; identical stacks with identical labels are summed. */
class PprofBuilder {
  private readonly strings: string[] = [''];
  private readonly stringIds = new Map<string, number>([['', 0]]);
  private readonly labelKeys = {
    pid: this.stringId('pid'),
    comm: this.stringId('comm'),
    containerId: this.stringId('container_id'),
    podUid: this.stringId('pod_uid'),
  };
  private readonly mappings = new Map<string, PprofMapping>();
  private readonly mappingsByObject = new Map<Mapping, PprofMapping>();
  // Chains and arrays rather than maps of maps: the collector runs unoptimized, where every Map and
  // iterator step is an allocation the next scavenge pays for.
  private readonly functions = new Map<string, PprofFunction>();
  private readonly functionList: PprofFunction[] = [];
  private readonly locations = new Map<PprofMapping, Map<bigint, PprofLocation>>();
  private readonly locationList: PprofLocation[] = [];
  /** Receivers share one Frame object among the stacks that hold it: a frame seen before has its id. */
  private readonly locationIdByFrame = new Map<Frame, number>();
  private readonly samples = new Map<string, PprofSample>();
  private readonly sampleList: PprofSample[] = [];
  private startMs = Infinity;
  private endMs = -Infinity;
  private periodNs?: number;

  add(batch: ProfileBatch): void {
    this.startMs = Math.min(this.startMs, batch.startTimeMs);
    this.endMs = Math.max(this.endMs, batch.endTimeMs);
    // Batches of one receiver share a period; if receivers with different frequencies meet here, each sample's
    // cpu/nanoseconds still uses its own batch's period and the profile's `period` is the first batch's.
    this.periodNs ??= batch.periodNs;
    const { samples } = batch;
    for (let i = 0; i < samples.length; i++) this.addSample(samples[i], batch.periodNs);
  }

  /** The encoded (not yet compressed) profile for what was added; `emptyWindowMs` dates it when nothing was. */
  encode(emptyWindowMs: { startMs: number; endMs: number }): Buffer {
    const hasData = this.startMs <= this.endMs;
    const startMs = hasData ? this.startMs : emptyWindowMs.startMs;
    const endMs = hasData ? this.endMs : emptyWindowMs.endMs;
    const samplesCount = this.valueType('samples', 'count');
    const cpuNanoseconds = this.valueType('cpu', 'nanoseconds');
    const out = new ProtobufWriter();
    for (const [type, unit] of [samplesCount, cpuNanoseconds]) {
      const valueType = out.begin(PROFILE.sampleType);
      out.uint(VALUE_TYPE.type, type);
      out.uint(VALUE_TYPE.unit, unit);
      out.end(valueType);
    }
    for (let i = 0; i < this.sampleList.length; i++) this.encodeSample(out, this.sampleList[i]);
    for (const mapping of this.mappings.values()) this.encodeMapping(out, mapping);
    for (let i = 0; i < this.locationList.length; i++) {
      const location = this.locationList[i];
      const message = out.begin(PROFILE.location);
      out.uint(LOCATION.id, location.id);
      out.uint(LOCATION.mappingId, location.mappingId);
      out.uint64(LOCATION.address, location.address);
      const line = out.begin(LOCATION.line);
      out.uint(LINE.functionId, location.functionId);
      out.uint(LINE.line, location.line ?? 0);
      out.end(line);
      out.end(message);
    }
    for (let i = 0; i < this.functionList.length; i++) {
      const fn = this.functionList[i];
      const message = out.begin(PROFILE.function);
      out.uint(FUNCTION.id, fn.id);
      out.uint(FUNCTION.name, fn.name);
      out.uint(FUNCTION.systemName, fn.name);
      out.uint(FUNCTION.filename, fn.filename);
      out.end(message);
    }
    for (let i = 0; i < this.strings.length; i++) out.string(PROFILE.stringTable, this.strings[i]);
    out.uint64(PROFILE.timeNanos, BigInt(Math.round(startMs)) * MS_TO_NS);
    out.uint64(PROFILE.durationNanos, BigInt(Math.round(endMs - startMs)) * MS_TO_NS);
    const periodType = out.begin(PROFILE.periodType);
    out.uint(VALUE_TYPE.type, cpuNanoseconds[0]);
    out.uint(VALUE_TYPE.unit, cpuNanoseconds[1]);
    out.end(periodType);
    out.uint(PROFILE.period, this.periodNs === undefined ? 0 : Math.round(this.periodNs));
    return out.finish();
  }

  private encodeSample(out: ProtobufWriter, sample: PprofSample): void {
    const message = out.begin(PROFILE.sample);
    const locationIds = out.begin(SAMPLE.locationId);
    for (let i = 0; i < sample.locationIds.length; i++) out.packed(sample.locationIds[i]);
    out.end(locationIds);
    const values = out.begin(SAMPLE.value);
    out.packed(sample.count);
    out.packed(sample.cpuNs);
    out.end(values);
    const keys = this.labelKeys;
    this.encodeLabel(out, keys.pid, 0, sample.pid);
    this.encodeLabel(out, keys.comm, sample.comm, 0);
    if (sample.containerId) this.encodeLabel(out, keys.containerId, sample.containerId, 0);
    if (sample.podUid) this.encodeLabel(out, keys.podUid, sample.podUid, 0);
    out.end(message);
  }

  private encodeLabel(out: ProtobufWriter, key: number, str: number, num: number): void {
    const label = out.begin(SAMPLE.label);
    out.uint(LABEL.key, key);
    out.uint(LABEL.str, str);
    out.uint(LABEL.num, num);
    out.end(label);
  }

  private encodeMapping(out: ProtobufWriter, { id, mapping, filename, buildId, hasFilenames, hasLineNumbers }: PprofMapping): void {
    const message = out.begin(PROFILE.mapping);
    out.uint(MAPPING.id, id);
    out.uint64(MAPPING.memoryStart, mapping.start);
    out.uint64(MAPPING.memoryLimit, mapping.end);
    out.uint64(MAPPING.fileOffset, mapping.fileOffset);
    out.uint(MAPPING.filename, filename);
    out.uint(MAPPING.buildId, buildId);
    out.bool(MAPPING.hasFunctions, true);
    out.bool(MAPPING.hasFilenames, hasFilenames);
    out.bool(MAPPING.hasLineNumbers, hasLineNumbers);
    out.end(message);
  }

  private stringId(string: string): number {
    let id = this.stringIds.get(string);
    if (id === undefined) {
      id = this.strings.push(string) - 1;
      this.stringIds.set(string, id);
    }
    return id;
  }

  private valueType(type: string, unit: string): [number, number] {
    return [this.stringId(type), this.stringId(unit)];
  }

  private addSample(sample: ProfileSample, periodNs: number): void {
    const { frames } = sample;
    const locationIds: number[] = new Array(frames.length);
    for (let i = 0; i < frames.length; i++) locationIds[i] = this.locationId(frames[i]);
    const key = `${locationIds.join(',')}\0${sample.pid}\0${sample.comm}\0${sample.containerId ?? ''}\0${sample.podUid ?? ''}`;
    const cpuNs = Math.round(sample.count * periodNs);
    const existing = this.samples.get(key);
    if (existing) {
      existing.count += sample.count;
      existing.cpuNs += cpuNs;
      return;
    }
    const added: PprofSample = {
      locationIds,
      count: sample.count,
      cpuNs,
      pid: sample.pid,
      comm: this.stringId(sample.comm),
      containerId: sample.containerId ? this.stringId(sample.containerId) : 0,
      podUid: sample.podUid ? this.stringId(sample.podUid) : 0,
    };
    this.samples.set(key, added);
    this.sampleList.push(added);
  }

  private locationId(frame: Frame): number {
    const seen = this.locationIdByFrame.get(frame);
    if (seen !== undefined) return seen;
    const id = this.findOrAddLocation(frame);
    this.locationIdByFrame.set(frame, id);
    return id;
  }

  private findOrAddLocation(frame: Frame): number {
    const mapping = this.mapping(frame.mapping ?? (frame.kind === 'kernel' ? KERNEL_MAPPING : UNKNOWN_MAPPING));
    // Keyed by mapping, then address (bigint keys compare by value), then what the symbolizer said there. A hit
    // needs no string built: an unnamed frame's name follows from its mapping and address.
    let atAddress = this.locations.get(mapping);
    if (!atAddress) this.locations.set(mapping, (atAddress = new Map()));
    const first = atAddress.get(frame.address);
    for (let known = first; known; known = known.next)
      if (known.functionName === frame.functionName && known.fileName === frame.fileName && known.line === frame.line) return known.id;

    const fn = this.function(frame);
    if (frame.fileName) mapping.hasFilenames = true;
    if (frame.line) mapping.hasLineNumbers = true;
    const location: PprofLocation = {
      id: this.locationList.length + 1,
      mappingId: mapping.id,
      address: frame.address,
      functionId: fn.id,
      functionName: frame.functionName,
      fileName: frame.fileName,
      line: frame.line,
      next: first,
    };
    this.locationList.push(location);
    atAddress.set(frame.address, location);
    return location.id;
  }

  private mapping(mapping: Mapping): PprofMapping {
    // The symbolizer shares one Mapping object among a process's frames: look it up by identity first.
    const known = this.mappingsByObject.get(mapping);
    if (known) return known;
    const key = `${mapping.path}\0${mapping.buildId ?? ''}\0${mapping.start}\0${mapping.end}\0${mapping.fileOffset}`;
    let entry = this.mappings.get(key);
    if (!entry) {
      entry = {
        id: this.mappings.size + 1,
        mapping,
        filename: this.stringId(mapping.path),
        buildId: this.stringId(mapping.buildId ?? ''),
        hasFilenames: false,
        hasLineNumbers: false,
      };
      this.mappings.set(key, entry);
    }
    this.mappingsByObject.set(mapping, entry);
    return entry;
  }

  private function(frame: Frame): PprofFunction {
    const name = frame.functionName ?? unsymbolizedName(frame);
    const fileName = frame.fileName ?? '';
    const first = this.functions.get(name);
    for (let known = first; known; known = known.next) if (known.fileName === fileName) return known;
    const fn: PprofFunction = { id: this.functionList.length + 1, name: this.stringId(name), fileName, filename: this.stringId(fileName), next: first };
    this.functions.set(name, fn);
    this.functionList.push(fn);
    return fn;
  }
}

/** One gzip'd pprof profile from `batches` (merged); `emptyWindowMs` dates it when there are none. */
export async function encodePprof(batches: readonly ProfileBatch[], emptyWindowMs: { startMs: number; endMs: number }): Promise<Buffer> {
  const builder = new PprofBuilder();
  for (const batch of batches) builder.add(batch);
  return gzipAsync(builder.encode(emptyWindowMs));
}
