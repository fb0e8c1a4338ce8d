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
import {
  Function as PprofFunction,
  Label,
  Line,
  Location,
  Mapping as PprofMapping,
  Profile,
  Sample,
  StringTable,
  ValueType,
} from 'pprof-format';
import { unsymbolizedName, type Frame, type Mapping, type ProfileBatch, type ProfileSample } from '../../collector/data/profiles.js';

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

/** A location as the symbolizer described it, to find it again. */
interface KnownLocation {
  id: number;
  functionName?: string;
  fileName?: string;
  line?: number;
}

/** Builds one pprof Profile from any number of batches; identical stacks with identical labels are summed. */
class PprofBuilder {
  private readonly strings = new StringTable();
  private readonly mappings = new Map<string, PprofMapping>();
  private readonly mappingsByObject = new Map<Mapping, PprofMapping>();
  /** By name, then file name. */
  private readonly functions = new Map<string, Map<string, PprofFunction>>();
  private readonly functionList: PprofFunction[] = [];
  private readonly locations = new Map<PprofMapping, Map<bigint, KnownLocation[]>>();
  private readonly locationList: Location[] = [];
  private readonly samples = new Map<string, Sample>();
  private startMs = Infinity;
  private endMs = -Infinity;
  private periodNs?: number;

  add(batch: ProfileBatch): void {
    this.startMs = Math.min(this.startMs, batch.startTimeMs);
    this.endMs = Math.max(this.endMs, batch.endTimeMs);
    // Batches of one receiver share a period; if receivers with different frequencies meet here, each sample's
    // cpu/nanoseconds still uses its own batch's period and the profile's `period` is the first batch's.
    this.periodNs ??= batch.periodNs;
    for (const sample of batch.samples) this.addSample(sample, batch.periodNs);
  }

  /** The profile for what was added; `emptyWindowMs` gives time and duration when nothing was. */
  build(emptyWindowMs: { startMs: number; endMs: number }): Profile {
    const hasData = this.startMs <= this.endMs;
    const startMs = hasData ? this.startMs : emptyWindowMs.startMs;
    const endMs = hasData ? this.endMs : emptyWindowMs.endMs;
    const periodNs = this.periodNs === undefined ? 0 : Math.round(this.periodNs);
    return new Profile({
      stringTable: this.strings,
      sampleType: [this.valueType('samples', 'count'), this.valueType('cpu', 'nanoseconds')],
      periodType: this.valueType('cpu', 'nanoseconds'),
      period: periodNs,
      timeNanos: BigInt(Math.round(startMs)) * MS_TO_NS,
      durationNanos: BigInt(Math.round(endMs - startMs)) * MS_TO_NS,
      sample: [...this.samples.values()],
      location: this.locationList,
      function: this.functionList,
      mapping: [...this.mappings.values()],
    });
  }

  private valueType(type: string, unit: string): ValueType {
    return new ValueType({ type: this.strings.dedup(type), unit: this.strings.dedup(unit) });
  }

  private addSample(sample: ProfileSample, periodNs: number): void {
    const locationIds = sample.frames.map((frame) => this.locationId(frame));
    const key = `${locationIds.join(',')}\0${sample.pid}\0${sample.comm}\0${sample.containerId ?? ''}\0${sample.podUid ?? ''}`;
    const cpuNs = Math.round(sample.count * periodNs);
    const existing = this.samples.get(key);
    if (existing) {
      existing.value[0] = Number(existing.value[0]) + sample.count;
      existing.value[1] = Number(existing.value[1]) + cpuNs;
      return;
    }
    const label = [
      new Label({ key: this.strings.dedup('pid'), num: sample.pid }),
      new Label({ key: this.strings.dedup('comm'), str: this.strings.dedup(sample.comm) }),
    ];
    if (sample.containerId) label.push(new Label({ key: this.strings.dedup('container_id'), str: this.strings.dedup(sample.containerId) }));
    if (sample.podUid) label.push(new Label({ key: this.strings.dedup('pod_uid'), str: this.strings.dedup(sample.podUid) }));
    this.samples.set(key, new Sample({ locationId: locationIds, value: [sample.count, cpuNs], label }));
  }

  private locationId(frame: Frame): number {
    const mapping = this.mapping(frame.mapping ?? (frame.kind === 'kernel' ? KERNEL_MAPPING : UNKNOWN_MAPPING));
    // Keyed by mapping, then address (bigint keys compare by value), then what the symbolizer said there. A hit
    // needs no string built: an unnamed frame's name follows from its mapping and address.
    let atAddress = this.locations.get(mapping);
    if (!atAddress) this.locations.set(mapping, (atAddress = new Map()));
    let known = atAddress.get(frame.address);
    if (!known) atAddress.set(frame.address, (known = []));
    const hit = known.find((k) => k.functionName === frame.functionName && k.fileName === frame.fileName && k.line === frame.line);
    if (hit) return hit.id;

    const fn = this.function(frame);
    if (frame.fileName) mapping.hasFilenames = true;
    if (frame.line) mapping.hasLineNumbers = true;
    const id = this.locationList.length + 1;
    this.locationList.push(new Location({ id, mappingId: mapping.id, address: frame.address, line: [new Line({ functionId: fn.id, line: frame.line ?? 0 })] }));
    known.push({ id, functionName: frame.functionName, fileName: frame.fileName, line: frame.line });
    return id;
  }

  private mapping(mapping: Mapping): PprofMapping {
    // The symbolizer shares one Mapping object among a process's frames: look it up by identity first.
    const known = this.mappingsByObject.get(mapping);
    if (known) return known;
    const key = `${mapping.path}\0${mapping.buildId ?? ''}\0${mapping.start}\0${mapping.end}\0${mapping.fileOffset}`;
    let entry = this.mappings.get(key);
    if (!entry) {
      entry = new PprofMapping({
        id: this.mappings.size + 1,
        memoryStart: mapping.start,
        memoryLimit: mapping.end,
        fileOffset: mapping.fileOffset,
        filename: this.strings.dedup(mapping.path),
        buildId: this.strings.dedup(mapping.buildId ?? ''),
        hasFunctions: true,
      });
      this.mappings.set(key, entry);
    }
    this.mappingsByObject.set(mapping, entry);
    return entry;
  }

  private function(frame: Frame): PprofFunction {
    const name = frame.functionName ?? unsymbolizedName(frame);
    const fileName = frame.fileName ?? '';
    let inFiles = this.functions.get(name);
    if (!inFiles) this.functions.set(name, (inFiles = new Map()));
    let fn = inFiles.get(fileName);
    if (!fn) {
      const nameId = this.strings.dedup(name);
      fn = new PprofFunction({ id: this.functionList.length + 1, name: nameId, systemName: nameId, filename: this.strings.dedup(fileName) });
      inFiles.set(fileName, fn);
      this.functionList.push(fn);
    }
    return fn;
  }
}

/** One gzip'd pprof profile from `batches` (merged); `emptyWindowMs` dates it when there are none. */
export async function encodePprof(batches: readonly ProfileBatch[], emptyWindowMs: { startMs: number; endMs: number }): Promise<Buffer> {
  const builder = new PprofBuilder();
  for (const batch of batches) builder.add(batch);
  return gzipAsync(await builder.build(emptyWindowMs).encodeAsync());
}
