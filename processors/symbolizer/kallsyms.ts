/**
 * Kernel symbols from /proc/kallsyms, parsed and held by the native addon
 * (about 40 bytes a symbol, where JS strings took tens of megabytes). A symbol
 * spans up to the next symbol's address; only text symbols name frames.
 * Symbols of modules and of JIT-compiled BPF programs carry their module ([bpf]).
 */
import { readFile } from 'node:fs/promises';
import { KernelSymbolEvents, NativeKernelSymbolTable, type KernelRange } from '../../native/index.js';

export interface KernelSymbol {
  name: string;
  /** The module, e.g. `nf_tables` or `bpf`; undefined for the core kernel. */
  module?: string;
  /** The kernel image's text range, or the module's symbol range: the frame's mapping. */
  rangeStart: bigint;
  rangeEnd: bigint;
}

export class KernelSymbols {
  /** One native table, replaced in place by read(): the previous one is freed at once, not when V8 collects it. */
  private readonly table = new NativeKernelSymbolTable();
  /** ranges[0] is the core kernel's text; empty until read. */
  private ranges: KernelRange[] = [];

  /**
   * Reads and indexes kallsyms off the main thread, replacing the table read before; throws if it cannot be
   * read or hides addresses (kptr_restrict), and then keeps the previous table.
   */
  async read(path = '/proc/kallsyms'): Promise<void> {
    await this.table.read(path);
    this.ranges = this.table.ranges();
  }

  /** True if `address` is in the core kernel's text, whose symbols never change after boot. */
  inCoreText(address: bigint): boolean {
    const core = this.ranges[0];
    return address >= core.start && address < core.end;
  }

  /** The text symbol that contains each address, if any. */
  lookup(addresses: BigUint64Array): (KernelSymbol | undefined)[] {
    const { symbol, range, names } = this.table.lookup(addresses);
    return Array.from(symbol, (nameIndex, i) => {
      if (nameIndex < 0) return undefined;
      const { module, start, end } = this.ranges[range[i]];
      return { name: names[nameIndex], ...(module !== '' ? { module } : {}), rangeStart: start, rangeEnd: end };
    });
  }
}

/** Watches kernel symbols from the first kallsymsVersion() on; null when perf_event_open refused it. */
let symbolEvents: KernelSymbolEvents | null | undefined;
/** Counts the changes symbolEvents has seen. */
let symbolGeneration = 0;

/**
 * What kallsyms lists beyond the core kernel: BPF programs (and trampolines)
 * and modules. A table read under another version may name a new program
 * after its neighbour, since kallsyms gives no sizes. BPF symbols are watched
 * through the kernel's ksymbol perf events (CAP_PERFMON); listing programs
 * would need CAP_SYS_ADMIN, which the collector does not ask for.
 */
export async function kallsymsVersion(): Promise<string> {
  if (symbolEvents === undefined) {
    try {
      symbolEvents = new KernelSymbolEvents();
    } catch {
      symbolEvents = null;
    }
  }
  // Unwatched, every call is a new version: kallsyms is read again rather than trusted stale.
  if (symbolEvents === null || symbolEvents.changed()) symbolGeneration++;
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
  return `${symbolGeneration}|${modules}`;
}
