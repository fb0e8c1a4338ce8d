/**
 * Kernel symbols from /proc/kallsyms, sorted for binary search. A symbol spans
 * up to the next symbol's address; only text symbols name frames. Symbols of
 * modules and of JIT-compiled BPF programs carry their module ([bpf]).
 */
import { readFile } from 'node:fs/promises';
import { bpfProgramIds } from '../../native/index.js';

export interface KernelSymbol {
  name: string;
  /** The module, e.g. `nf_tables` or `bpf`; undefined for the core kernel. */
  module?: string;
  /** The kernel image's text range, or the module's symbol range: the frame's mapping. */
  rangeStart: bigint;
  rangeEnd: bigint;
}

const CORE = '';
/** kallsyms has no sizes: a symbol ends where the next begins, and the last (often a BPF program) gets this much. */
const LAST_SYMBOL_SPAN = 0x10000;
const TEXT_TYPES = new Set(['t', 'T', 'w', 'W']);

/** Parsed kallsyms, in the order of the file; addresses as 32-bit halves so that no BigInt is made per line. */
interface ParsedTable {
  high: Uint32Array;
  low: Uint32Array;
  text: Uint8Array;
  names: string[];
  modules: string[];
  count: number;
}

const TWO_TO_32 = 4294967296;

export class KernelSymbols {
  /**
   * Kernel text, modules and BPF programs lie within a few GiB at the top of
   * the address space: offsets from the lowest text symbol are exact as
   * doubles, which compare without allocating as bigints do.
   */
  private readonly floor: bigint;
  private readonly offsets: Float64Array;
  private readonly names: string[];
  private readonly modules: string[];
  private readonly text: Uint8Array;
  private readonly ranges = new Map<string, { start: bigint; end: bigint }>();
  /** End of the core kernel's text (_etext), as an offset. */
  private readonly coreEnd: number;

  private constructor(floor: bigint, offsets: Float64Array, names: string[], modules: string[], text: Uint8Array) {
    this.floor = floor;
    this.offsets = offsets;
    this.names = names;
    this.modules = modules;
    this.text = text;
    const spans = new Map<string, { start: number; end: number }>();
    for (let i = 0; i < offsets.length; i++) {
      const module = modules[i];
      if (module === CORE) continue;
      // A module spans from its first symbol to the symbol that follows its last.
      const end = i + 1 < offsets.length ? offsets[i + 1] : offsets[i] + LAST_SYMBOL_SPAN;
      const span = spans.get(module);
      if (!span) spans.set(module, { start: offsets[i], end });
      else span.end = end;
    }
    for (const [module, span] of spans) this.ranges.set(module, { start: floor + BigInt(span.start), end: floor + BigInt(span.end) });
    const offsetOf = (name: string, fallback: number) => {
      const i = names.indexOf(name);
      return i < 0 ? fallback : offsets[i];
    };
    const stext = offsetOf('_stext', 0);
    this.coreEnd = offsetOf('_etext', offsets[offsets.length - 1]);
    this.ranges.set(CORE, { start: floor + BigInt(stext), end: floor + BigInt(this.coreEnd) });
  }

  /** Reads and indexes kallsyms; throws if it cannot be read or hides addresses (kptr_restrict). */
  static async load(path = '/proc/kallsyms'): Promise<KernelSymbols> {
    const table = parseKallsyms(await readFile(path, 'latin1'));
    // The lowest text symbol: below it are only per-CPU and absolute data symbols.
    let floorIndex = -1;
    for (let i = 0; i < table.count; i++) {
      if (!table.text[i]) continue;
      if (floorIndex < 0 || table.high[i] < table.high[floorIndex] || (table.high[i] === table.high[floorIndex] && table.low[i] < table.low[floorIndex]))
        floorIndex = i;
    }
    if (floorIndex < 0) throw new Error(`${path} lists no addresses (kernel.kptr_restrict hides them without CAP_SYSLOG)`);
    const floorHigh = table.high[floorIndex];
    const floorLow = table.low[floorIndex];
    const offsetAt = (i: number) => (table.high[i] - floorHigh) * TWO_TO_32 + (table.low[i] - floorLow);
    const kept: number[] = [];
    for (let i = 0; i < table.count; i++) if (offsetAt(i) >= 0) kept.push(i);
    const keptOffsets = Float64Array.from(kept, offsetAt);
    // kallsyms is sorted but for modules and BPF programs: sort row numbers by offset, stably.
    const order = Uint32Array.from(kept.keys()).sort((a, b) => keptOffsets[a] - keptOffsets[b] || a - b);
    return new KernelSymbols(
      (BigInt(floorHigh) << 32n) | BigInt(floorLow),
      Float64Array.from(order, (k) => keptOffsets[k]),
      Array.from(order, (k) => table.names[kept[k]]),
      Array.from(order, (k) => table.modules[kept[k]]),
      Uint8Array.from(order, (k) => table.text[kept[k]]),
    );
  }

  /** True if `address` is in the core kernel's text, whose symbols never change after boot. */
  inCoreText(address: bigint): boolean {
    const range = this.ranges.get(CORE)!;
    return address >= range.start && address < range.end;
  }

  /** The text symbol that contains `address`, if any. */
  lookup(address: bigint): KernelSymbol | undefined {
    if (address < this.floor) return undefined;
    const offset = Number(address - this.floor);
    let low = 0;
    let high = this.offsets.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (this.offsets[middle] <= offset) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    if (found < 0 || !this.text[found]) return undefined;
    if (found === this.offsets.length - 1 && offset - this.offsets[found] >= LAST_SYMBOL_SPAN) return undefined;
    const module = this.modules[found];
    if (module === CORE && offset >= this.coreEnd) return undefined;
    const range = this.ranges.get(module)!;
    return {
      name: this.names[found],
      ...(module !== CORE ? { module } : {}),
      rangeStart: range.start,
      rangeEnd: range.end,
    };
  }
}

/**
 * What kallsyms lists beyond the core kernel: the loaded BPF programs and
 * modules. A table read under another version may name a new program after
 * its neighbour, since kallsyms gives no sizes.
 */
export async function kallsymsVersion(): Promise<string> {
  let programs = '';
  try {
    programs = bpfProgramIds().join(',');
  } catch {
    // without CAP_SYS_ADMIN only modules are watched
  }
  let modules = '';
  try {
    // name and address only: reference counts change all the time
    modules = (await readFile('/proc/modules', 'utf8'))
      .split('\n')
      .map((line) => line.split(' ').filter((_, i) => i === 0 || i === 5).join(' '))
      .join(',');
  } catch {
    // a kernel without loadable modules
  }
  return `${programs}|${modules}`;
}

/** "ffffffff816d61a0 T ksys_read" or "ffffffffc0a01000 t fn\t[module]"; rows at address 0 are skipped. */
function parseKallsyms(content: string): ParsedTable {
  const capacity = content.length / 20 + 1;
  const table: ParsedTable = {
    high: new Uint32Array(capacity),
    low: new Uint32Array(capacity),
    text: new Uint8Array(capacity),
    names: [],
    modules: [],
    count: 0,
  };
  let lineStart = 0;
  while (lineStart < content.length) {
    let lineEnd = content.indexOf('\n', lineStart);
    if (lineEnd < 0) lineEnd = content.length;
    const space = content.indexOf(' ', lineStart);
    if (space > lineStart && space + 3 < lineEnd) {
      const digits = space - lineStart;
      const high = digits > 8 ? parseInt(content.slice(lineStart, space - 8), 16) : 0;
      const low = parseInt(content.slice(Math.max(lineStart, space - 8), space), 16);
      if (high !== 0 || low !== 0) {
        const rest = content.slice(space + 3, lineEnd);
        const tab = rest.indexOf('\t');
        const i = table.count++;
        table.high[i] = high;
        table.low[i] = low;
        table.text[i] = TEXT_TYPES.has(content[space + 1]) ? 1 : 0;
        table.names.push(tab < 0 ? rest : rest.slice(0, tab));
        table.modules.push(tab < 0 ? CORE : rest.slice(tab + 1).trim().replace(/^\[(.*)\]$/, '$1'));
      }
    }
    lineStart = lineEnd + 1;
  }
  return table;
}
