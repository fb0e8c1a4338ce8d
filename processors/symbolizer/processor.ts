/**
 * Names the frames of profile samples in place: kernel frames from
 * /proc/kallsyms, native frames through the ELF files the process has mapped
 * (symbols and DWARF, by the native addon over elfutils, one call per batch),
 * and JIT frames from perf map files. A frame that cannot be named keeps its
 * mapping, build id and file offset, so a backend can still symbolize it.
 */
import { existsSync } from 'node:fs';
import type { Component, Consumer, CreateSettings } from '../../collector/component.js';
import type { Frame, Mapping, ProfileBatch } from '../../collector/data/profiles.js';
import { ElfSymbolizer } from '../../native/index.js';
import type { SymbolizerConfig } from './config.js';
import { kallsymsVersion, KernelSymbols } from './kallsyms.js';
import { PerfMaps } from './perfmap.js';
import { isAnonymousExecutable, isFileBacked, ProcessMappingsReader, type MappedFile, type ProcMapping } from './proc-maps.js';

type Outcome = 'symbolized' | 'unsymbolized' | 'unmapped' | 'process_exited';

interface PendingFrame {
  frame: Frame;
  /** Not the leaf of its stack: the address after a call, looked up one byte earlier to land in the call. */
  isReturnAddress: boolean;
}

/**
 * The frames of one ELF file in this batch, from any process, where to open
 * it, and its distinct file offsets: frames[i] is looked up at offsets[slots[i]].
 */
interface BinaryRequest {
  file: MappedFile;
  offsets: number[];
  slotByOffset: Map<number, number>;
  frames: Frame[];
  slots: number[];
  pids: number[];
}

export class SymbolizerProcessor implements Component, Consumer<'profiles'> {
  readonly mutatesData = true;
  private symbolizer?: ElfSymbolizer;
  private readonly kernel = new KernelSymbols();
  /** The last read of kallsyms succeeded. */
  private kernelRead = false;
  /** kallsymsVersion() when `kernel` was read. */
  private kernelVersion?: string;
  private kernelLoading?: Promise<void>;
  /** Why the last read of kallsyms failed: logged once, not again at each new version while it stays so. */
  private kernelProblem?: string;
  private readonly perfMaps: PerfMaps;
  private readonly processMappings = new ProcessMappingsReader();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly settings: CreateSettings,
    private readonly config: SymbolizerConfig,
    private readonly next: Consumer<'profiles'>,
  ) {
    this.perfMaps = new PerfMaps(settings, config);
  }

  async start(): Promise<void> {
    const cache = this.config.debug_file_cache;
    try {
      this.symbolizer = new ElfSymbolizer({
        maxBinaries: this.config.max_cached_binaries,
        maxSymbols: this.config.max_cached_symbols,
        debugDirs: this.config.debug_dirs,
        debugCacheDir: cache.directory,
        debugCacheMaxBytes: cache.max_mib * 1024 * 1024,
      });
    } catch (error) {
      throw new Error(`debug_file_cache.directory: ${(error as Error).message}`);
    }
  }

  async consume(batch: ProfileBatch): Promise<void> {
    if (this.symbolizer) {
      const work = this.symbolize(batch, this.symbolizer).catch((error: Error) => {
        // The batch still goes on, with whatever was named before the failure.
        this.settings.status.report('recoverable_error', `symbolization failed: ${error.message}`);
      });
      this.inFlight.add(work);
      await work.finally(() => this.inFlight.delete(work));
    }
    await this.next.consume(batch);
  }

  /** Lets running batches finish, then closes the ELF handles. Safe without start and twice. */
  async shutdown(): Promise<void> {
    const symbolizer = this.symbolizer;
    this.symbolizer = undefined;
    await Promise.allSettled([...this.inFlight]);
    symbolizer?.close();
    this.perfMaps.clear();
    this.processMappings.clear();
    this.kernelVersion = undefined;
  }

  private async symbolize(batch: ProfileBatch, symbolizer: ElfSymbolizer): Promise<void> {
    const kernelFrames: PendingFrame[] = [];
    const userFramesByPid = new Map<number, PendingFrame[]>();
    // Receivers share a Frame object among the stacks that hold it (always as a leaf, or always as a caller).
    const seen = new Set<Frame>();
    // Indexed loops over frames: unoptimized (bin/ebpf-collector), for-of allocates an iterator result per step.
    for (let s = 0; s < batch.samples.length; s++) {
      const sample = batch.samples[s];
      const { frames } = sample;
      for (let i = 0; i < frames.length; i++) {
        const frame = frames[i];
        if (frame.functionName !== undefined || seen.has(frame)) continue;
        seen.add(frame);
        const pending = { frame, isReturnAddress: i > 0 && frames[i - 1].kind === frame.kind };
        if (frame.kind === 'kernel') kernelFrames.push(pending);
        else getOrCreate(userFramesByPid, sample.pid, newList).push(pending);
      }
    }
    const outcomes = new OutcomeCounter();
    await this.symbolizeKernel(kernelFrames);
    for (let i = 0; i < kernelFrames.length; i++) outcomes.addFrame(kernelFrames[i].frame);
    await this.symbolizeUser(userFramesByPid, symbolizer, outcomes);
    this.report(outcomes, symbolizer);
    this.settings.status.report('ok');
  }

  private async symbolizeKernel(frames: PendingFrame[]): Promise<void> {
    if (frames.length === 0) return;
    // Core kernel text never changes, so only frames elsewhere (modules, BPF programs) can need a fresh table;
    // reading kallsyms costs the kernel ~50 ms, too much for every BPF program someone loads.
    if (!this.kernelRead || frames.some(({ frame }) => !this.kernel.inCoreText(frame.address))) {
      // Read before the table, so that a program loaded meanwhile makes the next batch read it again.
      const version = await kallsymsVersion();
      if (version !== this.kernelVersion) await this.reloadKernelSymbols(version);
    }
    if (!this.kernelRead) return;
    const mappings = new Map<string, Mapping>();
    const symbols = this.kernel.lookup(BigUint64Array.from(frames, ({ frame, isReturnAddress }) => (isReturnAddress ? frame.address - 1n : frame.address)));
    for (let i = 0; i < frames.length; i++) {
      const symbol = symbols[i];
      if (!symbol) continue;
      const { frame } = frames[i];
      frame.functionName = symbol.name;
      const path = symbol.module ? `[${symbol.module}]` : '[kernel.kallsyms]';
      frame.mapping = getOrCreate(mappings, path, () => ({ path, start: symbol.rangeStart, end: symbol.rangeEnd, fileOffset: 0n }));
    }
  }

  private reloadKernelSymbols(version: string): Promise<void> {
    this.kernelLoading ??= this.kernel
      .read()
      .then(() => {
        this.kernelRead = true;
        this.kernelProblem = undefined;
      })
      .catch((error: Error) => {
        // Without kallsyms kernel frames keep their addresses; user frames are unaffected.
        this.kernelRead = false;
        if (error.message !== this.kernelProblem) this.settings.logger.warn({ component: this.settings.id.id }, `kernel frames stay unnamed: ${error.message}`);
        this.kernelProblem = error.message;
      })
      .finally(() => {
        this.kernelVersion = version;
        this.kernelLoading = undefined;
      });
    return this.kernelLoading;
  }

  private async symbolizeUser(byPid: Map<number, PendingFrame[]>, symbolizer: ElfSymbolizer, outcomes: OutcomeCounter): Promise<void> {
    // /proc/PID/maps is read once per process per batch.
    const pids = [...byPid.keys()];
    const allMappings = await Promise.all(pids.map((pid) => this.processMappings.read(pid)));
    // Keyed by the file's identity in the maps, so processes sharing a library share a request.
    const requests = new Map<string, BinaryRequest>();
    const jitFramesByPid = new Map<number, PendingFrame[]>();
    const done: Frame[] = [];

    pids.forEach((pid, p) => {
      const frames = byPid.get(pid)!;
      const mappings = allMappings[p];
      if (!mappings) {
        outcomes.add('user', 'process_exited', frames.length);
        return;
      }
      const shared = new Map<ProcMapping, Mapping>();
      for (let i = 0; i < frames.length; i++) {
        const pending = frames[i];
        // User-space addresses (< 2^47) are exact as doubles, which hash and compare cheaply.
        const address = Number(pending.frame.address);
        const procMapping = mappings.find(address);
        if (!procMapping) {
          getOrCreate(jitFramesByPid, pid, newList).push(pending);
          continue;
        }
        pending.frame.mapping = getOrCreate(shared, procMapping, toMapping);
        if (isFileBacked(procMapping)) {
          const file = `${procMapping.device}:${procMapping.inode}`;
          let request = requests.get(file);
          if (!request) requests.set(file, (request = newRequest(mappings.mappedFile(procMapping))));
          const fileOffset = (pending.isReturnAddress ? address - 1 : address) - procMapping.fileBase;
          let slot = request.slotByOffset.get(fileOffset);
          if (slot === undefined) {
            slot = request.offsets.push(fileOffset) - 1;
            request.slotByOffset.set(fileOffset, slot);
          }
          request.frames.push(pending.frame);
          request.slots.push(slot);
          request.pids.push(pid);
        } else if (isAnonymousExecutable(procMapping)) {
          getOrCreate(jitFramesByPid, pid, newList).push(pending);
        } else {
          done.push(pending.frame);
        }
      }
    });

    const binaries = [...requests.values()];
    if (binaries.length > 0) {
      const result = await symbolizer.symbolize(binaries.map((request) => ({ ...request.file, fileOffsets: BigUint64Array.from(request.offsets, BigInt) })));
      for (const [reason, count] of Object.entries(result.refusals)) {
        this.settings.telemetry.count('symbolizer_refused_files_total', 'Files the symbolizer would not read, by reason: replaced (not the mapped file), not_regular, unsafe_path, openat2_unavailable, debuglink_name, debuglink_too_large.', count, { reason });
      }
      let base = 0;
      binaries.forEach((request, b) => {
        const { buildId, error } = result.binaries[b];
        for (let i = 0; i < request.frames.length; i++) {
          const frame = request.frames[i];
          const index = base + request.slots[i];
          const functionIndex = result.function[index];
          const fileIndex = result.file[index];
          const line = result.line[index];
          if (buildId) frame.mapping!.buildId = buildId;
          if (functionIndex >= 0) frame.functionName = result.strings[functionIndex];
          if (fileIndex >= 0) frame.fileName = result.strings[fileIndex];
          if (line > 0) frame.line = line;
          // Not an ELF file (e.g. a JIT's memfd double mapping): the perf map may know the code.
          if (error && functionIndex < 0) getOrCreate(jitFramesByPid, request.pids[i], newList).push({ frame, isReturnAddress: false });
          else done.push(frame);
        }
        base += request.offsets.length;
      });
    }

    if (this.config.perf_maps) await this.symbolizeJit(jitFramesByPid);
    for (const frames of jitFramesByPid.values()) for (let i = 0; i < frames.length; i++) done.push(frames[i].frame);
    for (let i = 0; i < done.length; i++) outcomes.addFrame(done[i]);
    this.perfMaps.prune((pid) => byPid.has(pid) || existsSync(`/proc/${pid}`));
    // Only processes sampled in this batch keep their maps text: idle ones would hold memory for nothing.
    this.processMappings.prune((pid) => byPid.has(pid));
  }

  private async symbolizeJit(byPid: Map<number, PendingFrame[]>): Promise<void> {
    await Promise.all(
      [...byPid].map(async ([pid, frames]) => {
        const perfMap = await this.perfMaps.get(pid);
        if (!perfMap) return;
        for (let i = 0; i < frames.length; i++) {
          const { frame, isReturnAddress } = frames[i];
          const address = Number(frame.address);
          const name = perfMap.lookup(isReturnAddress ? address - 1 : address);
          if (name !== undefined) frame.functionName = name;
        }
      }),
    );
  }

  private report(outcomes: OutcomeCounter, symbolizer: ElfSymbolizer): void {
    const { telemetry } = this.settings;
    let total = 0;
    let symbolized = 0;
    for (const [frameKind, result, count] of outcomes.entries()) {
      telemetry.count('symbolizer_frames_total', 'Stack frames the symbolizer processed, by frame kind and result.', count, { frame_kind: frameKind, result });
      total += count;
      if (result === 'symbolized') symbolized += count;
    }
    if (total > 0) telemetry.gauge('symbolizer_symbolized_ratio', 'Fraction of the frames of the last batch that got a function name.', symbolized / total);
    const stats = symbolizer.stats();
    telemetry.gauge('symbolizer_cached_binaries', 'ELF files the symbolizer holds open (or remembers as unreadable).', stats.binaries);
    telemetry.gauge('symbolizer_cached_symbols', 'Symbol lookups the symbolizer keeps cached.', stats.symbols);
  }
}

const OUTCOMES: readonly Outcome[] = ['symbolized', 'unsymbolized', 'unmapped', 'process_exited'];

class OutcomeCounter {
  private readonly counts: Record<Frame['kind'], Record<Outcome, number>> = {
    kernel: { symbolized: 0, unsymbolized: 0, unmapped: 0, process_exited: 0 },
    user: { symbolized: 0, unsymbolized: 0, unmapped: 0, process_exited: 0 },
  };

  /** A frame the symbolizer looked up: named, or at least placed in a mapping, or neither. */
  addFrame(frame: Frame): void {
    this.counts[frame.kind][frame.functionName !== undefined ? 'symbolized' : frame.mapping ? 'unsymbolized' : 'unmapped']++;
  }

  add(frameKind: Frame['kind'], outcome: Outcome, count: number): void {
    this.counts[frameKind][outcome] += count;
  }

  /** Non-zero counts as [frame kind, outcome, count]. */
  *entries(): Generator<[Frame['kind'], Outcome, number]> {
    for (const kind of ['kernel', 'user'] as const)
      for (const outcome of OUTCOMES) if (this.counts[kind][outcome] > 0) yield [kind, outcome, this.counts[kind][outcome]];
  }
}

function newList<T>(): T[] {
  return [];
}

function newRequest(file: MappedFile): BinaryRequest {
  return { file, offsets: [], slotByOffset: new Map(), frames: [], slots: [], pids: [] };
}

function toMapping(procMapping: ProcMapping): Mapping {
  return {
    path: procMapping.path === '' ? '[jit]' : procMapping.path,
    start: procMapping.start,
    end: procMapping.end,
    fileOffset: procMapping.fileOffset,
  };
}

/**
 * The value at `key`, made by `create(key)` if there is none. Callers on hot paths pass a function defined
 * once (newList, toMapping), not an inline closure: unoptimized (bin/ebpf-collector), each closure is an allocation.
 */
function getOrCreate<K, V>(map: Map<K, V>, key: K, create: (key: K) => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create(key);
    map.set(key, value);
  }
  return value;
}
