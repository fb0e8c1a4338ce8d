/**
 * JIT symbols from perf map files, the format Linux perf reads for code that
 * has no ELF file: /tmp/perf-<pid>.map, one `START SIZE name` line (hex) per
 * compiled function, appended as the runtime compiles (node --perf-basic-prof,
 * python -X perf, Java perf-map agents). The file lives in the process's own
 * /tmp and is named with its pid as the process sees it (its pid namespace).
 */
import { statSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';

/** Addresses as numbers: user-space addresses (< 2^47) are exact as doubles. */
interface Entry {
  start: number;
  end: number;
  name: string;
}

const LINE = /^([0-9a-fA-F]+) ([0-9a-fA-F]+) (.+)$/;
/** The file is the profiled process's to write: past this size it is not read (memory stays bounded). */
const MAX_PERF_MAP_BYTES = 256 * 1024 * 1024;

function byStart(a: Entry, b: Entry): number {
  return a.start - b.start;
}

/** One process's perf map, re-read when the file changes (only the appended part when it grew). */
class PerfMap {
  /** Sorted by start; for code regions reused by the JIT, the later line wins. */
  private entries: Entry[] = [];
  private inode = -1;
  private size = 0;
  private mtimeMs = 0;
  /** Bytes parsed so far, up to the last complete line. */
  private parsed = 0;

  constructor(readonly path: string) {}

  /** Brings the table up to date; false if the file does not exist (or cannot be read). */
  async refresh(): Promise<boolean> {
    // Most processes write no perf map: a missing file is the common answer, not worth an Error's stack trace.
    const status = statSync(this.path, { throwIfNoEntry: false });
    if (!status) {
      this.entries = [];
      this.inode = -1;
      return false;
    }
    if (status.ino === this.inode && status.size === this.size && status.mtimeMs === this.mtimeMs) return true;
    if (status.size > MAX_PERF_MAP_BYTES) return this.entries.length > 0;
    if (status.ino !== this.inode || status.size < this.parsed) {
      this.entries = [];
      this.parsed = 0;
    }
    this.inode = status.ino;
    this.size = status.size;
    this.mtimeMs = status.mtimeMs;
    const appended = await this.readFrom(this.parsed, status.size);
    // A line the runtime is still writing is left for the next refresh.
    const complete = appended.lastIndexOf(0x0a) + 1;
    this.parsed += complete;
    this.merge(parseLines(appended.toString('utf8', 0, complete)));
    return true;
  }

  private async readFrom(offset: number, size: number): Promise<Buffer> {
    if (offset === 0) return readFile(this.path);
    const file = await open(this.path, 'r');
    try {
      const buffer = Buffer.alloc(Math.max(0, size - offset));
      const { bytesRead } = await file.read(buffer, 0, buffer.length, offset);
      return buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  }

  private merge(added: Entry[]): void {
    if (added.length === 0) return;
    // A stable sort keeps file order among equal starts; the last one (newest) is kept.
    const all = [...this.entries, ...added].sort(byStart);
    const merged: Entry[] = [];
    for (const entry of all) {
      if (merged.length > 0 && merged[merged.length - 1].start === entry.start) merged[merged.length - 1] = entry;
      else merged.push(entry);
    }
    this.entries = merged;
  }

  lookup(address: number): string | undefined {
    let low = 0;
    let high = this.entries.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (this.entries[middle].start <= address) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    if (found < 0) return undefined;
    const entry = this.entries[found];
    return address < entry.end ? entry.name : undefined;
  }
}

function parseLines(text: string): Entry[] {
  const entries: Entry[] = [];
  for (const line of text.split('\n')) {
    const match = LINE.exec(line);
    if (!match) continue;
    const start = Number.parseInt(match[1], 16);
    entries.push({ start, end: start + Number.parseInt(match[2], 16), name: match[3].trimEnd() });
  }
  return entries;
}

/** The innermost pid of a process (its pid inside its container), from /proc/PID/status. */
async function namespacePid(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const line = status.split('\n').find((l) => l.startsWith('NSpid:'));
    const pids = line?.slice('NSpid:'.length).trim().split(/\s+/);
    const inner = pids ? Number(pids[pids.length - 1]) : NaN;
    return Number.isInteger(inner) ? inner : pid;
  } catch {
    return pid;
  }
}

/** A process found without a perf map is looked at again after this long: a JIT agent may attach later. */
const MISSING_RECHECK_MS = 30_000;

/** Perf maps of the processes seen in profiles, dropped when their process exits. */
export class PerfMaps {
  private readonly byPid = new Map<number, PerfMap>();
  private readonly refreshing = new Map<number, Promise<PerfMap | undefined>>();
  /** When each process was last found without a perf map. */
  private readonly missingSince = new Map<number, number>();

  /** The process's perf map, brought up to date; undefined if it writes none. One refresh at a time per pid. */
  async get(pid: number): Promise<PerfMap | undefined> {
    const missing = this.missingSince.get(pid);
    if (missing !== undefined && Date.now() - missing < MISSING_RECHECK_MS) return undefined;
    let pending = this.refreshing.get(pid);
    if (!pending) {
      pending = this.load(pid).finally(() => this.refreshing.delete(pid));
      this.refreshing.set(pid, pending);
    }
    return pending;
  }

  private async load(pid: number): Promise<PerfMap | undefined> {
    let map = this.byPid.get(pid);
    if (!map) {
      map = new PerfMap(`/proc/${pid}/root/tmp/perf-${await namespacePid(pid)}.map`);
      this.byPid.set(pid, map);
    }
    if (await map.refresh()) {
      this.missingSince.delete(pid);
      return map;
    }
    this.byPid.delete(pid);
    this.missingSince.set(pid, Date.now());
    return undefined;
  }

  /** Forgets the maps of pids for which `alive` says no. */
  prune(alive: (pid: number) => boolean): void {
    for (const pid of this.byPid.keys()) if (!alive(pid)) this.byPid.delete(pid);
    for (const pid of this.missingSince.keys()) if (!alive(pid)) this.missingSince.delete(pid);
  }

  clear(): void {
    this.byPid.clear();
    this.missingSince.clear();
  }
}
