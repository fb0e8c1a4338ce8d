// Typed ESM entry point of the ebpf_native addon (native/src/*.cc over libbpf,
// and over elfutils for symbols).
//
// Failures surface as plain Errors whose message names the operation and
// ends with "; libbpf: <log>" when libbpf explained itself; errors from
// syscalls also carry the positive errno value as `errno`.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { projectPath } from '../collector/paths.js';

export interface MapInfo {
  name: string;
  type: number;
  /** libbpf_bpf_map_type_str(), e.g. "percpu_hash". */
  typeName: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** PERCPU_HASH / PERCPU_ARRAY / LRU_PERCPU_HASH (and PERCPU_CGROUP_STORAGE). */
  perCpu: boolean;
}

export type AttachSpec =
  /** bpf_program__attach: the target comes from the program's SEC() name. */
  | { kind: 'auto' }
  /** CPU-clock sampling at frequencyHz, one perf event per CPU (default: all online CPUs). */
  | { kind: 'perf_event'; frequencyHz: number; cpus?: number[] }
  | { kind: 'tracepoint'; category: string; name: string }
  | { kind: 'raw_tracepoint'; name: string }
  /**
   * With functionName, offset is relative to the function; pid defaults to -1 (all). A uprobe-multi link (see
   * useUprobeMulti) opens binaryPath as given: only the perf_event fallback searches PATH for a bare name, as libbpf does.
   */
  | { kind: 'uprobe'; binaryPath: string; functionName?: string; offset?: number; retprobe?: boolean; pid?: number };

/**
 * Packed map entries: `keys` holds count*keySize bytes and `values` holds
 * count*valueStride bytes, where valueStride is valueSize for normal maps and
 * roundUp(valueSize, 8) * numPossibleCpus() for per-CPU maps.
 */
export interface MapEntries {
  count: number;
  keys: Buffer;
  values: Buffer;
}

// Type of the native class; the value is bound to the addon's export below.
declare class NativeBpfObject {
  private constructor();
  /** bpf_object__open_file. */
  static open(path: string): NativeBpfObject;
  readonly path: string;
  programNames(): string[];
  mapNames(): string[];
  /** bpf_object__load; a failure's message ends with libbpf's log tail (verifier output). */
  load(): void;
  /** May be called several times per program; every link is kept until close(). */
  attach(program: string, spec: AttachSpec): void;
  mapInfo(map: string): MapInfo;
  /** value.length must equal the map's value stride (see MapEntries). */
  update(map: string, key: Buffer, value: Buffer): void;
  lookup(map: string, key: Buffer): Buffer | null;
  delete(map: string, key: Buffer): boolean;
  /** All entries, left in place. */
  dump(map: string): MapEntries;
  /**
   * All entries, removed; array maps cannot delete, so their values are zeroed. Exact only for a map
   * no program writes to meanwhile, such as a counter map's old bank after swapBanks().
   * `expectedKeys` (packed keys, duplicates allowed) are taken by key first: for maps
   * without batch ops (stack maps) that is one syscall per entry instead of three.
   */
  drain(map: string, expectedKeys?: Buffer): MapEntries;
  /**
   * Points the programs of counter bank `group` (default 0) at the other bank of their counter maps
   * (bpf/counter_bank.h) and resolves, off the JS thread, once no program that could still add to the
   * old bank is running (a map-in-map update: the kernel waits an RCU grace period). Resolves with the
   * old bank: drain(`${map}_${bank}`) then reads every count exactly.
   */
  swapBanks(group?: number): Promise<number>;
  /** Kernel ids of this object's loaded programs. */
  progIds(): number[];
  linkCount(): number;
  /** Destroys all links and the object; idempotent. Any other method throws afterwards. */
  close(): void;
}

export interface ElfSymbolizerOptions {
  /** Open ELF handles kept (LRU); files with the same build id share one. */
  maxBinaries: number;
  /** Symbol results kept (LRU), over all binaries. */
  maxSymbols: number;
  /** Absolute directories searched for separate debug files, by build id (.build-id/xx/rest.debug) and by .gnu_debuglink. */
  debugDirs: string[];
  /**
   * Where debug files with compressed DWARF are kept uncompressed, so that elfutils maps them instead of
   * inflating every section into memory. Created 0700 if missing; the constructor throws, naming it, if it is
   * a symlink, not a directory, owned by another uid, or writable by group or others.
   */
  debugCacheDir: string;
  /** The bound on all files in debugCacheDir; the least recently used go first. 0: no copies, no directory. */
  debugCacheMaxBytes: number;
}

/**
 * A file as a process maps it, from one line of /proc/PID/maps. The addon opens `path` inside /proc/PID/root
 * (openat2 RESOLVE_IN_ROOT: symlinks cannot lead out of it), or a deleted file through
 * /proc/PID/map_files/<mapFiles>, and reads it only if it is a regular file with the mapping's device and inode.
 */
export interface SymbolizeRequest {
  pid: number;
  /** The path as the process sees it. */
  path: string;
  /** "start-end" in hex, for a deleted file. */
  mapFiles?: string;
  /** Device ("fd:01") and inode as /proc/PID/maps shows them. */
  device: string;
  inode: bigint;
  /** Offsets in the file, as /proc/PID/maps gives them: address - start + offset. */
  fileOffsets: BigUint64Array;
}

/**
 * One batch's answer. `function`, `file` and `line` are parallel to the
 * requests' fileOffsets concatenated in request order; `function` and `file`
 * index `strings` (-1: unknown) and `line` is 0 when unknown.
 */
export interface SymbolizeResult {
  binaries: { buildId?: string; error?: string }[];
  /** Files not read in this batch, by reason: replaced, not_regular, unsafe_path, openat2_unavailable, debuglink_name, debuglink_too_large. */
  refusals: Record<string, number>;
  strings: string[];
  function: Int32Array;
  file: Int32Array;
  line: Uint32Array;
}

// Type of the native class; the value is bound to the addon's export below.
declare class NativeElfSymbolizer {
  constructor(options: ElfSymbolizerOptions);
  /** Symbols (.symtab/.dynsym, demangled), source files and lines (DWARF) for a whole batch, on a worker thread. */
  symbolize(requests: SymbolizeRequest[]): Promise<SymbolizeResult>;
  /** Cached binaries (including files that could not be read) and symbol results. */
  stats(): { binaries: number; symbols: number };
  /** Drops the caches (a running symbolize() finishes first); symbolize() throws afterwards. */
  close(): void;
}

/** One batch's answer: `symbol` indexes `names` and `range` indexes ranges(), both parallel to the addresses; -1 when unknown. */
export interface KernelLookupResult {
  symbol: Int32Array;
  range: Int32Array;
  names: string[];
}

export interface KernelRange {
  /** The module, e.g. `nf_tables` or `bpf` (JIT-compiled programs); "" for the core kernel. */
  module: string;
  start: bigint;
  end: bigint;
}

// Type of the native class; the value is bound to the addon's export below.
declare class NativeKernelSymbols {
  constructor();
  /** Parses a kallsyms file on a worker thread and replaces the table; rejects if it cannot be read or hides addresses. */
  read(path: string): Promise<void>;
  /** The text symbol holding each address: no neighbour's name past the kernel text or the last symbol. */
  lookup(addresses: BigUint64Array): KernelLookupResult;
  /** The core kernel's text (_stext to _etext) first, then each module's span. */
  ranges(): KernelRange[];
}

// Type of the native class; the value is bound to the addon's export below.
declare class NativeKernelSymbolEvents {
  /** Opens a ksymbol perf event on every online CPU (CAP_PERFMON); throws if the kernel refuses. */
  constructor();
  /** True if a kernel symbol (a BPF program's, a trampoline's) came or went since the last call. */
  changed(): boolean;
}

interface NativeAddon {
  BpfObject: typeof NativeBpfObject;
  ElfSymbolizer: typeof NativeElfSymbolizer;
  KernelSymbols: typeof NativeKernelSymbols;
  KernelSymbolEvents: typeof NativeKernelSymbolEvents;
  numPossibleCpus(): number;
  onlineCpus(): number[];
  libbpfVersion(): string;
  bpfProgramIds(): Uint32Array;
  kernelBtf(): boolean;
  kernelBtfHas(kind: 'func' | 'typedef' | 'struct', name: string): boolean;
  exitImmediately(code: number): never;
  tracingRefusal(): string;
  probeProgramType(type: string): boolean;
  probeMapType(type: string): boolean;
  probeHelper(programType: string, helper: string): boolean;
  probeUprobeMulti(): boolean;
  useUprobeMulti(enabled: boolean): void;
}

function loadAddon(): NativeAddon {
  const addonPath = projectPath('native', 'build', 'Release', 'ebpf_native.node');
  if (!existsSync(addonPath)) {
    throw new Error(`the ebpf_native addon is not built (${addonPath} is missing); run \`bash scripts/setup.sh\``);
  }
  return createRequire(import.meta.url)(addonPath) as NativeAddon;
}

const addon = loadAddon();

export type BpfObject = NativeBpfObject;
export const BpfObject: typeof NativeBpfObject = addon.BpfObject;

/** Names addresses in ELF files with elfutils (libdwfl), caching per binary by build id. */
export type ElfSymbolizer = NativeElfSymbolizer;
export const ElfSymbolizer: typeof NativeElfSymbolizer = addon.ElfSymbolizer;

/** Kernel symbols from kallsyms, held natively in a compact sorted table. */
export type NativeKernelSymbolTable = NativeKernelSymbols;
export const NativeKernelSymbolTable: typeof NativeKernelSymbols = addon.KernelSymbols;

/** Tells when kallsyms changes beyond the core kernel and modules, without the CAP_SYS_ADMIN that listing BPF programs needs. */
export type KernelSymbolEvents = NativeKernelSymbolEvents;
export const KernelSymbolEvents: typeof NativeKernelSymbolEvents = addon.KernelSymbolEvents;

/** libbpf_num_possible_cpus(): the number of slots in a per-CPU map value. */
export function numPossibleCpus(): number {
  return addon.numPossibleCpus();
}

/** CPUs listed in /sys/devices/system/cpu/online. */
export function onlineCpus(): number[] {
  return addon.onlineCpus();
}

/** Version of the libbpf the addon runs against, e.g. "1.1". */
export function libbpfVersion(): string {
  return addon.libbpfVersion();
}

/** Ids of every BPF program loaded in the kernel, ascending (needs CAP_SYS_ADMIN). */
export function bpfProgramIds(): Uint32Array {
  return addon.bpfProgramIds();
}

/**
 * What the running kernel's BPF supports, asked of the kernel (native/src/kernel_features.cc).
 * Types use libbpf's names (`raw_tracepoint`, `tracing` for tp_btf, `task_storage`), helpers
 * their names without `bpf_` (`loop`); an unknown name throws, a kernel that refuses answers false.
 */
/**
 * Ends the process now with `code` (_exit), without Node's exit, which waits
 * for its thread pool and hangs for ever on a thread stuck in a system call.
 */
export function exitImmediately(code: number): never {
  return addon.exitImmediately(code);
}

export const kernelProbes = {
  /** The kernel's own BTF (/sys/kernel/btf/vmlinux) loads. */
  btf: (): boolean => addon.kernelBtf(),
  /** The kernel's BTF has a type of this kind and name: a kfunc (`func`), a tp_btf hook (`typedef` btf_trace_<event>). */
  btfHas: (kind: 'func' | 'typedef' | 'struct', name: string): boolean => addon.kernelBtfHas(kind, name),
  /** Why this process may not load tracing programs (e.g. "Operation not permitted"), or '' when it may. */
  tracingRefusal: (): string => addon.tracingRefusal(),
  programType: (type: string): boolean => addon.probeProgramType(type),
  mapType: (type: string): boolean => addon.probeMapType(type),
  /** Programs of `programType` may call the helper. */
  helper: (programType: string, helper: string): boolean => addon.probeHelper(programType, helper),
  /** uprobe-multi links (Linux 6.6+, with process PID filtering): uprobes that need no CAP_SYS_ADMIN on Linux 6.16+. */
  uprobeMulti: (): boolean => addon.probeUprobeMulti(),
};

/**
 * Whether objects loaded from now on load their SEC("uprobe")/SEC("uretprobe") programs for uprobe-multi
 * links where the kernel has them (the default), or for perf_event uprobes.
 */
export function useUprobeMulti(enabled: boolean): void {
  addon.useUprobeMulti(enabled);
}
