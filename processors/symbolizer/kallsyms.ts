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

interface Row {
  address: bigint;
  text: boolean;
  name: string;
  module: string;
}

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

  private constructor(rows: Row[]) {
    this.floor = rows[0].address;
    this.offsets = Float64Array.from(rows, (row) => Number(row.address - this.floor));
    this.names = rows.map((row) => row.name);
    this.modules = rows.map((row) => row.module);
    this.text = Uint8Array.from(rows, (row) => (row.text ? 1 : 0));
    rows.forEach((row, i) => {
      if (row.module === CORE) return;
      // A module spans from its first symbol to the symbol that follows its last.
      const end = i + 1 < rows.length ? rows[i + 1].address : row.address + BigInt(LAST_SYMBOL_SPAN);
      const range = this.ranges.get(row.module);
      if (!range) this.ranges.set(row.module, { start: row.address, end });
      else range.end = end;
    });
    const stext = rows.find((r) => r.name === '_stext')?.address ?? this.floor;
    const etext = rows.find((r) => r.name === '_etext')?.address ?? rows[rows.length - 1].address;
    this.ranges.set(CORE, { start: stext, end: etext });
    this.coreEnd = Number(etext - this.floor);
  }

  /** Reads and indexes kallsyms; throws if it cannot be read or hides addresses (kptr_restrict). */
  static async load(path = '/proc/kallsyms'): Promise<KernelSymbols> {
    const content = await readFile(path, 'utf8');
    const rows: Row[] = [];
    for (const line of content.split('\n')) {
      // "ffffffff816d61a0 T ksys_read" or "ffffffffc0a01000 t fn\t[module]"
      const firstSpace = line.indexOf(' ');
      if (firstSpace <= 0 || line.length < firstSpace + 4) continue;
      const address = BigInt(`0x${line.slice(0, firstSpace)}`);
      if (address === 0n) continue;
      const rest = line.slice(firstSpace + 3);
      const tab = rest.indexOf('\t');
      rows.push({
        address,
        text: TEXT_TYPES.has(line[firstSpace + 1]),
        name: tab < 0 ? rest : rest.slice(0, tab),
        module: tab < 0 ? CORE : rest.slice(tab + 1).trim().replace(/^\[(.*)\]$/, '$1'),
      });
    }
    let floor: bigint | undefined;
    for (const row of rows) if (row.text && (floor === undefined || row.address < floor)) floor = row.address;
    if (floor === undefined) throw new Error(`${path} lists no addresses (kernel.kptr_restrict hides them without CAP_SYSLOG)`);
    // Below the lowest text symbol are only per-CPU and absolute data symbols.
    const kept = rows.filter((row) => row.address >= floor!);
    kept.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    return new KernelSymbols(kept);
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
