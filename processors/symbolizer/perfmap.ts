/**
 * JIT symbols from perf map files, the format Linux perf reads for code that
 * has no ELF file: /tmp/perf-<pid>.map, one `START SIZE name` line (hex) per
 * compiled function, appended as the runtime compiles (node --perf-basic-prof,
 * python -X perf, Java perf-map agents). The file lives in the process's own
 * /tmp and is named with its pid as the process sees it (its pid namespace).
 *
 * Any process can write that file, so it is read as hostile input:
 * - nothing but a regular file is ever opened for reading: the path is opened
 *   with O_PATH|O_NOFOLLOW (no FIFO blocks, no device is opened, no symlink is
 *   followed, neither the file nor the container's /tmp), checked with fstat,
 *   and only then reopened through /proc/self/fd (the same inode, no race);
 * - it must be owned by the process's user or by root, perf's rule (perf takes
 *   its own user; a collector running as root reads every user's maps);
 * - it is parsed in chunks into compact tables, within a memory budget per
 *   process and one over all processes.
 * What is refused is counted and logged once per process and reason.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, open, readFile, type FileHandle } from 'node:fs/promises';
import type { CreateSettings } from '../../collector/component.js';
import type { SymbolizerConfig } from './config.js';

export type PerfMapRefusal = 'symlink' | 'not_regular' | 'wrong_owner' | 'unreadable' | 'too_large' | 'over_budget' | 'stalled';
type Outcome = 'ok' | 'missing' | PerfMapRefusal;

/** Opens a path for fstat only: Linux's O_PATH, which Node's fs.constants does not export. */
const O_PATH = 0o10000000;
const CHUNK_BYTES = 64 * 1024;
/** Longer lines are skipped: a name is at most a few kilobytes (Java signatures), the rest is noise. */
const MAX_LINE_BYTES = 64 * 1024;
/** Bytes per entry besides its name: start and end (Float64) and where its name ends (Uint32). */
const ENTRY_BYTES = 20;
const MIB = 1024 * 1024;
/** A process found without a usable perf map is looked at again after this long: a JIT agent may attach later. */
const RECHECK_MS = 30_000;
/**
 * How long a lookup waits for its process's perf map to be read. Past it (a hung FUSE or network mount at the
 * process's /tmp), lookups for that process stop waiting until the read ends: a batch is held up once, not each time.
 */
const STALLED_MS = 5_000;

/** Entries sorted by start, with unique starts; names as UTF-8 bytes, decoded on lookup. Immutable. */
class SymbolTable {
  static readonly empty = new SymbolTable(new Float64Array(0), new Float64Array(0), new Uint32Array(0), Buffer.alloc(0));

  constructor(
    private readonly starts: Float64Array,
    private readonly ends: Float64Array,
    /** Name i is names[nameEnds[i - 1] (or 0) .. nameEnds[i]]. */
    private readonly nameEnds: Uint32Array,
    private readonly names: Buffer,
  ) {}

  get count(): number {
    return this.starts.length;
  }

  /** What the table holds in memory, the unit of the budgets. */
  get byteLength(): number {
    return this.count * ENTRY_BYTES + this.names.length;
  }

  lookup(address: number): string | undefined {
    let low = 0;
    let high = this.starts.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (this.starts[middle] <= address) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    if (found < 0 || address >= this.ends[found]) return undefined;
    return this.names.toString('utf8', this.nameStart(found), this.nameEnds[found]);
  }

  /**
   * This table with `added` (lines read after all of this table's), the later line winning for a start seen
   * twice. This table's entries between two added ones are copied as a block: a large map that grows by a few
   * lines costs about a copy of its memory.
   */
  merge(added: TableBuilder): SymbolTable {
    if (added.count === 0) return this;
    const unique = added.sortedUnique();
    // Where each added entry goes among this table's, and which of them it replaces.
    const at = new Uint32Array(unique.length);
    let replaced = 0;
    let nameBytes = this.names.length;
    for (let u = 0, i = 0; u < unique.length; u++) {
      const start = added.starts[unique[u]];
      i = this.lowerBound(start, i);
      at[u] = i;
      if (i < this.count && this.starts[i] === start) {
        replaced++;
        nameBytes -= this.nameEnd(i) - this.nameStart(i);
      }
      nameBytes += added.nameLength(unique[u]);
    }
    const count = this.count - replaced + unique.length;
    const starts = new Float64Array(count);
    const ends = new Float64Array(count);
    const nameEnds = new Uint32Array(count);
    const names = Buffer.allocUnsafeSlow(nameBytes);
    let p = 0;
    let written = 0;
    let i = 0;
    const copyRun = (to: number) => {
      if (to === i) return;
      starts.set(this.starts.subarray(i, to), p);
      ends.set(this.ends.subarray(i, to), p);
      const from = this.nameStart(i);
      names.set(this.names.subarray(from, this.nameEnd(to - 1)), written);
      const shift = written - from;
      for (let k = i; k < to; k++) nameEnds[p++] = this.nameEnds[k] + shift;
      written = nameEnds[p - 1];
      i = to;
    };
    for (let u = 0; u < unique.length; u++) {
      copyRun(at[u]);
      const j = unique[u];
      if (i < this.count && this.starts[i] === added.starts[j]) i++;
      starts[p] = added.starts[j];
      ends[p] = added.ends[j];
      written = added.copyName(j, names, written);
      nameEnds[p++] = written;
    }
    copyRun(this.count);
    return new SymbolTable(starts, ends, nameEnds, names);
  }

  /** The first entry from `from` on whose start is not below `start`. */
  private lowerBound(start: number, from: number): number {
    let low = from;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.starts[middle] < start) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private nameStart(i: number): number {
    return i === 0 ? 0 : this.nameEnds[i - 1];
  }

  private nameEnd(i: number): number {
    return this.nameEnds[i];
  }
}

/** Lines parsed in one refresh, in file order, in growable typed arrays. */
class TableBuilder {
  count = 0;
  starts = new Float64Array(256);
  ends = new Float64Array(256);
  private nameEnds = new Uint32Array(256);
  private names = Buffer.allocUnsafe(16 * 1024);
  private nameBytes = 0;

  /** What these entries will take in a SymbolTable (duplicates not yet removed). */
  get byteLength(): number {
    return this.count * ENTRY_BYTES + this.nameBytes;
  }

  add(start: number, end: number, source: Buffer, nameStart: number, nameEnd: number): void {
    if (this.count === this.starts.length) {
      this.starts = grow(this.starts, new Float64Array(this.count * 2));
      this.ends = grow(this.ends, new Float64Array(this.count * 2));
      this.nameEnds = grow(this.nameEnds, new Uint32Array(this.count * 2));
    }
    const length = nameEnd - nameStart;
    if (this.nameBytes + length > this.names.length) {
      const names = Buffer.allocUnsafe(Math.max(this.names.length * 2, this.nameBytes + length));
      this.names.copy(names, 0, 0, this.nameBytes);
      this.names = names;
    }
    this.nameBytes = copyBytes(source, nameStart, nameEnd, this.names, this.nameBytes);
    this.starts[this.count] = start;
    this.ends[this.count] = end;
    this.nameEnds[this.count++] = this.nameBytes;
  }

  /** Indices of the entries by start, only the last line read for each start. */
  sortedUnique(): Uint32Array {
    const order = new Uint32Array(this.count);
    let ascending = true;
    for (let i = 0; i < order.length; i++) {
      order[i] = i;
      if (i > 0 && this.starts[i] <= this.starts[i - 1]) ascending = false;
    }
    if (ascending) return order;
    order.sort((a, b) => this.starts[a] - this.starts[b] || a - b);
    let kept = 0;
    for (let k = 0; k < order.length; k++) if (k + 1 === order.length || this.starts[order[k + 1]] !== this.starts[order[k]]) order[kept++] = order[k];
    return order.subarray(0, kept);
  }

  nameLength(i: number): number {
    return this.nameEnds[i] - (i === 0 ? 0 : this.nameEnds[i - 1]);
  }

  /** Copies name i to `target` at `at`; returns where it ends there. */
  copyName(i: number, target: Buffer, at: number): number {
    return copyBytes(this.names, i === 0 ? 0 : this.nameEnds[i - 1], this.nameEnds[i], target, at);
  }
}

/** Copies source[from, to) to target at `at`; returns where the copy ends. A loop: Buffer#copy costs more for names this short. */
function copyBytes(source: Buffer, from: number, to: number, target: Buffer, at: number): number {
  if (to - from > 256) {
    target.set(source.subarray(from, to), at);
    return at + to - from;
  }
  for (let i = from; i < to; i++) target[at++] = source[i];
  return at;
}

function grow<T extends Float64Array | Uint32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

const SPACE = 0x20;

/** Adds the line text[from, to) if it is `START SIZE name` (hex, single spaces, trailing whitespace dropped); perf ignores other lines too. */
function parseLine(text: Buffer, from: number, to: number, into: TableBuilder): void {
  let i = from;
  let start = 0;
  let digit: number;
  while (i < to && (digit = hexDigit(text[i])) >= 0) start = start * 16 + digit, i++;
  // More than 16 digits is no 64-bit address.
  if (i === from || i - from > 16 || i === to || text[i] !== SPACE) return;
  const sizeAt = ++i;
  let size = 0;
  while (i < to && (digit = hexDigit(text[i])) >= 0) size = size * 16 + digit, i++;
  if (i === sizeAt || i - sizeAt > 16 || i === to || text[i] !== SPACE) return;
  const nameStart = i + 1;
  let nameEnd = to;
  while (nameEnd > nameStart && (text[nameEnd - 1] === SPACE || text[nameEnd - 1] === 0x09 || text[nameEnd - 1] === 0x0d)) nameEnd--;
  if (nameEnd > nameStart) into.add(start, start + size, text, nameStart, nameEnd);
}

function hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  return -1;
}

/** Bytes held by the tables of all processes, against the total budget. */
class Budget {
  used = 0;
  /** Incremented whenever a whole table is let go: processes refused for the total budget may fit now. */
  generation = 0;

  constructor(readonly totalBytes: number) {}

  reserve(bytes: number): boolean {
    if (this.used + bytes > this.totalBytes) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number, wholeTable: boolean): void {
    this.used -= bytes;
    if (wholeTable && bytes > 0) this.generation++;
  }
}

interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  ctimeMs: number;
}

function identityOf(stats: Stats): FileIdentity {
  return { dev: stats.dev, ino: stats.ino, size: stats.size, ctimeMs: stats.ctimeMs };
}

/** One process's perf map: its table, re-read when the file changes (only the appended part when it grew). */
class PerfMap {
  table = SymbolTable.empty;
  /** Bytes of the budget this map holds. */
  private charged = 0;
  private file?: FileIdentity;
  /** Bytes consumed so far, up to the last complete line. */
  private parsed = 0;
  /** The last bytes consumed were part of a line over MAX_LINE_BYTES, skipped up to its newline. */
  private skipping = false;
  /** When to look at the file again after it was missing or refused; 0: at every lookup. */
  retryAt = 0;
  /** The last refusal, with the file it was about. */
  refused?: { reason: PerfMapRefusal; file?: FileIdentity; generation: number };
  /** Why the last refusal happened, for the log. */
  detail = '';

  constructor(
    readonly pid: number,
    readonly path: string,
    private readonly maxProcessBytes: number,
    private readonly budget: Budget,
  ) {}

  /** Brings the table up to date with the file, or says why it has none. */
  async refresh(): Promise<Outcome> {
    const outcome = await this.update();
    if (outcome === 'ok' || outcome === 'missing') this.refused = undefined;
    if (outcome === 'ok') {
      this.retryAt = 0;
      return outcome;
    }
    this.drop();
    this.retryAt = Date.now() + RECHECK_MS;
    return outcome;
  }

  /** Lets go of the table and its share of the budget. */
  drop(): void {
    this.budget.release(this.charged, true);
    this.charged = 0;
    this.table = SymbolTable.empty;
    this.file = undefined;
    this.parsed = 0;
    this.skipping = false;
  }

  private async update(): Promise<Outcome> {
    const directory = this.path.slice(0, this.path.lastIndexOf('/'));
    let tmp: FileHandle | undefined;
    let file: FileHandle | undefined;
    try {
      try {
        tmp = await open(directory, O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      } catch (error) {
        // A symlinked /tmp would be resolved in the collector's root, not the container's.
        if ((error as NodeJS.ErrnoException).code === 'ENOTDIR' && (await lstat(directory).catch(() => undefined))?.isSymbolicLink())
          return this.refuse('symlink', `${directory} is a symbolic link (not followed)`);
        throw error;
      }
      // /proc/self/fd/N is the directory already opened: the file is looked up in it, not by path again.
      const name = this.path.slice(directory.length + 1);
      file = await open(`/proc/self/fd/${tmp.fd}/${name}`, O_PATH | constants.O_NOFOLLOW);
      const stats = await file.stat();
      if (stats.isSymbolicLink()) return this.refuse('symlink', 'a symbolic link (not followed)');
      if (!stats.isFile()) return this.refuse('not_regular', `not a regular file (${fileType(stats)}), never opened`);
      return await this.readChanges(file, stats);
    } catch (error) {
      // E.g. EACCES reopening another user's 0600 map without CAP_DAC_OVERRIDE: that map is refused, the batch goes on.
      return this.failed(error as NodeJS.ErrnoException);
    } finally {
      await file?.close();
      await tmp?.close();
    }
  }

  private async readChanges(file: FileHandle, stats: Stats): Promise<Outcome> {
    const known = this.file;
    if (known && known.dev === stats.dev && known.ino === stats.ino && known.size === stats.size && known.ctimeMs === stats.ctimeMs) return 'ok';
    const refused = this.refused;
    // A map refused for its size stays refused (without being read again) until replaced; one refused for the
    // total budget until a table is let go.
    if (refused?.reason === 'too_large' && refused.file && refused.file.dev === stats.dev && refused.file.ino === stats.ino && stats.size >= refused.file.size)
      return this.refuse('too_large', this.detail, stats);
    if (refused?.reason === 'over_budget' && refused.generation === this.budget.generation) return this.refuse('over_budget', this.detail, stats);

    const uids = await processUids(this.pid);
    if (!uids) return 'missing';
    if (stats.uid !== 0 && !uids.includes(stats.uid))
      return this.refuse('wrong_owner', `owned by uid ${stats.uid}, not by the process's user (uid ${[...new Set(uids)].join(', ')}) or root`);

    if (!known || known.dev !== stats.dev || known.ino !== stats.ino || stats.size < this.parsed) this.drop();
    this.file = identityOf(stats);
    // The inode opened for fstat, reopened for reading: O_NONBLOCK keeps even a file that became something else from blocking.
    const reader = await open(`/proc/self/fd/${file.fd}`, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      return await this.parse(reader, stats);
    } finally {
      await reader.close();
    }
  }

  /** Parses the bytes appended since the last refresh, chunk by chunk, charging the budget as the table grows. */
  private async parse(reader: FileHandle, stats: Stats): Promise<Outcome> {
    const added = new TableBuilder();
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    let position = this.parsed;
    let consumed = this.parsed;
    let skipping = this.skipping;
    /** The start of a line that continues in the next chunk. */
    let carry: Buffer | undefined;
    while (position < stats.size) {
      const { bytesRead } = await reader.read(chunk, 0, Math.min(CHUNK_BYTES, stats.size - position), position);
      if (bytesRead === 0) break;
      const data = chunk.subarray(0, bytesRead);
      let lineStart = 0;
      for (let newline = data.indexOf(0x0a); newline >= 0; newline = data.indexOf(0x0a, lineStart)) {
        if (skipping) skipping = false;
        else if (carry) {
          if (carry.length + newline <= MAX_LINE_BYTES) {
            const line = Buffer.concat([carry, data.subarray(0, newline)]);
            parseLine(line, 0, line.length, added);
          }
        }
        else parseLine(data, lineStart, newline, added);
        carry = undefined;
        lineStart = newline + 1;
        consumed = position + lineStart;
      }
      position += bytesRead;
      if (!skipping) {
        carry = carry ? Buffer.concat([carry, data.subarray(lineStart)]) : Buffer.from(data.subarray(lineStart));
        if (carry.length > MAX_LINE_BYTES) {
          carry = undefined;
          skipping = true;
        }
      }
      if (skipping) consumed = position;
      const outcome = this.charge(this.table.byteLength + added.byteLength, stats, position);
      if (outcome !== 'ok') return outcome;
    }
    // A line the runtime is still writing (carry) is read again at the next refresh.
    this.table = this.table.merge(added);
    this.budget.release(this.charged - this.table.byteLength, false);
    this.charged = this.table.byteLength;
    this.parsed = consumed;
    this.skipping = skipping;
    return 'ok';
  }

  /** Holds `bytes` of the budgets for this map, or says which budget it would exceed. */
  private charge(bytes: number, stats: Stats, position: number): Outcome {
    if (bytes > this.maxProcessBytes)
      return this.refuse('too_large', `its table would exceed perf_map_max_process_mib (${this.maxProcessBytes / MIB} MiB) at byte ${position} of ${stats.size}`, stats);
    if (bytes > this.charged) {
      if (!this.budget.reserve(bytes - this.charged))
        return this.refuse('over_budget', `the perf maps of all processes would exceed perf_map_max_total_mib (${this.budget.totalBytes / MIB} MiB)`, stats);
      this.charged = bytes;
    }
    return 'ok';
  }

  /** Lets go of the table at once (other maps being read meanwhile may use its room) and says why. */
  private refuse(reason: PerfMapRefusal, detail: string, stats?: Stats): PerfMapRefusal {
    this.drop();
    // Taken after its own table is let go, which makes no room for it.
    this.refused = { reason, file: stats && identityOf(stats), generation: this.budget.generation };
    this.detail = detail;
    return reason;
  }

  private failed(error: NodeJS.ErrnoException): Outcome {
    // ENOENT: no map (the common case), or the process is gone; ELOOP: a symlink in the way.
    if (error.code === 'ENOENT' || error.code === 'ESRCH' || error.code === 'ENOTDIR') return 'missing';
    if (error.code === 'ELOOP') return this.refuse('symlink', error.message);
    return this.refuse('unreadable', error.message);
  }
}

function fileType(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isDirectory()) return 'a directory';
  return 'not a file';
}

interface ProcessStatus {
  /** The innermost pid (the pid inside the process's container). */
  nsPid: number;
  /** Real and effective uid, as the collector's user namespace sees them (as it sees file owners). */
  uids: number[];
}

async function processStatus(pid: number): Promise<ProcessStatus | undefined> {
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string) => /^\S+:\s+(.*)$/.exec(status.split('\n').find((l) => l.startsWith(name)) ?? '')?.[1].split(/\s+/).map(Number) ?? [];
  const nsPids = field('NSpid:');
  const nsPid = nsPids[nsPids.length - 1];
  return { nsPid: Number.isInteger(nsPid) ? nsPid : pid, uids: field('Uid:').slice(0, 2) };
}

async function processUids(pid: number): Promise<number[] | undefined> {
  return (await processStatus(pid))?.uids;
}

/** How the perf map of one process reads; `undefined` when it has none (or it was refused). */
export interface PerfMapTable {
  lookup(address: number): string | undefined;
}

/** Perf maps of the processes seen in profiles, dropped when their process exits. */
export class PerfMaps {
  private readonly byPid = new Map<number, PerfMap>();
  private readonly refreshing = new Map<number, { table: Promise<PerfMapTable | undefined>; since: number }>();
  /** The reasons already logged and counted for each process. */
  private readonly reported = new Map<number, Set<PerfMapRefusal>>();
  private readonly budget: Budget;
  private readonly maxProcessBytes: number;

  constructor(
    private readonly settings: Pick<CreateSettings, 'id' | 'logger' | 'telemetry'>,
    config: Pick<SymbolizerConfig, 'perf_map_max_process_mib' | 'perf_map_max_total_mib'>,
  ) {
    this.maxProcessBytes = config.perf_map_max_process_mib * MIB;
    this.budget = new Budget(config.perf_map_max_total_mib * MIB);
  }

  /**
   * The process's perf map, brought up to date; undefined if it writes none, if it was refused, or if it could
   * not be read within STALLED_MS. One refresh at a time per pid.
   */
  async get(pid: number): Promise<PerfMapTable | undefined> {
    const known = this.byPid.get(pid);
    const retryNow = known?.refused?.reason === 'over_budget' && known.refused.generation !== this.budget.generation;
    if (known && known.retryAt > Date.now() && !retryNow) return undefined;
    let pending = this.refreshing.get(pid);
    if (!pending) {
      const refresh = { table: this.load(pid).finally(() => this.refreshing.delete(pid)), since: Date.now() };
      this.refreshing.set(pid, (pending = refresh));
    }
    const wait = pending.since + STALLED_MS - Date.now();
    if (wait <= 0) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<'stalled'>((resolve) => {
      timer = setTimeout(() => resolve('stalled'), wait);
    });
    try {
      const table = await Promise.race([pending.table, stalled]);
      if (table !== 'stalled') return table;
    } finally {
      clearTimeout(timer);
    }
    this.reportRefusal(pid, this.byPid.get(pid)?.path ?? `/proc/${pid}/root/tmp`, 'stalled', `no answer from its file system within ${STALLED_MS / 1000} s (a hung mount?); not waited for again until it answers`);
    return undefined;
  }

  private async load(pid: number): Promise<PerfMapTable | undefined> {
    let map = this.byPid.get(pid);
    if (!map) {
      const status = await processStatus(pid);
      if (!status) return undefined;
      map = new PerfMap(pid, `/proc/${pid}/root/tmp/perf-${status.nsPid}.map`, this.maxProcessBytes, this.budget);
      this.byPid.set(pid, map);
    }
    const outcome = await map.refresh();
    this.reportBytes();
    if (outcome === 'ok') return map.table;
    if (outcome !== 'missing') this.reportRefusal(pid, map.path, outcome, map.detail);
    return undefined;
  }

  private reportRefusal(pid: number, path: string, reason: PerfMapRefusal, detail: string): void {
    let reasons = this.reported.get(pid);
    if (!reasons) this.reported.set(pid, (reasons = new Set()));
    if (reasons.has(reason)) return;
    reasons.add(reason);
    this.settings.telemetry.count('symbolizer_perf_maps_refused_total', 'Processes whose perf map the symbolizer refused to read, by reason (each process counted once per reason).', 1, { reason });
    this.settings.logger.warn({ component: this.settings.id.id, pid, reason }, `perf map ${path} refused (${reason}): ${detail}; JIT frames of process ${pid} stay unnamed`);
  }

  private reportBytes(): void {
    this.settings.telemetry.gauge('symbolizer_perf_map_bytes', 'Memory held by the symbol tables of perf maps, over all processes (bounded by perf_map_max_total_mib).', this.budget.used);
  }

  /** Forgets the maps of pids for which `alive` says no. */
  prune(alive: (pid: number) => boolean): void {
    for (const [pid, map] of this.byPid) {
      if (alive(pid)) continue;
      map.drop();
      this.byPid.delete(pid);
      this.reported.delete(pid);
    }
    this.reportBytes();
  }

  clear(): void {
    for (const map of this.byPid.values()) map.drop();
    this.byPid.clear();
    this.reported.clear();
  }
}
