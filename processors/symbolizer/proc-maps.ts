/**
 * A process's memory mappings from /proc/PID/maps: which file (or JIT region)
 * an address belongs to, its offset in that file, and how the native addon is
 * to find that exact file without trusting the process (see MappedFile).
 */
import { readFile } from 'node:fs/promises';
import type { SymbolizeRequest } from '../../native/index.js';

export interface ProcMapping {
  start: bigint;
  end: bigint;
  /** File offset of `start`. */
  fileOffset: bigint;
  /** start - fileOffset as a number: an address minus this is its file offset. User-space addresses (< 2^47) are exact as doubles. */
  fileBase: number;
  executable: boolean;
  /** Device ("fd:01") and inode as the kernel reports them: the file's identity across processes. */
  device: string;
  inode: bigint;
  /** As the process sees it, without the " (deleted)" mark; '' for anonymous memory, or a pseudo-path like [vdso]. */
  path: string;
  deleted: boolean;
}

/** A mapped file as the addon's symbolize() takes it (without its offsets). */
export type MappedFile = Omit<SymbolizeRequest, 'fileOffsets'>;

const LINE = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$/;
const DELETED = ' (deleted)';

export function parseProcMaps(text: string): ProcMapping[] {
  const mappings: ProcMapping[] = [];
  for (const line of text.split('\n')) {
    const match = LINE.exec(line);
    if (!match) continue;
    const [, start, end, perms, offset, device, inode, rawPath] = match;
    const deleted = rawPath.endsWith(DELETED);
    mappings.push({
      start: BigInt(`0x${start}`),
      end: BigInt(`0x${end}`),
      fileOffset: BigInt(`0x${offset}`),
      fileBase: Number.parseInt(start, 16) - Number.parseInt(offset, 16),
      executable: perms[2] === 'x',
      device,
      inode: BigInt(inode),
      path: deleted ? rawPath.slice(0, -DELETED.length) : rawPath,
      deleted,
    });
  }
  return mappings; // the kernel lists them in address order
}

/** A file-backed mapping; anonymous memory and [vdso]-style pseudo-files are not. */
export function isFileBacked(mapping: ProcMapping): boolean {
  return mapping.inode !== 0n && mapping.path.startsWith('/');
}

/** Anonymous executable memory: where JIT compilers put their code. */
export function isAnonymousExecutable(mapping: ProcMapping): boolean {
  return mapping.executable && mapping.inode === 0n && (mapping.path === '' || mapping.path.startsWith('[anon'));
}

export class ProcessMappings {
  // Bounds as doubles: comparing numbers allocates nothing, unlike bigints.
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;

  /** `mappings` in address order, as parseProcMaps returns them. */
  constructor(
    readonly pid: number,
    private readonly mappings: ProcMapping[],
  ) {
    this.starts = Float64Array.from(mappings, (m) => Number(m.start));
    this.ends = Float64Array.from(mappings, (m) => Number(m.end));
  }

  /** The mapping that contains the user-space `address`, by binary search. */
  find(address: number): ProcMapping | undefined {
    let low = 0;
    let high = this.mappings.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (address < this.starts[middle]) high = middle - 1;
      else if (address >= this.ends[middle]) low = middle + 1;
      else return this.mappings[middle];
    }
    return undefined;
  }

  /**
   * How the addon finds the mapped file: by its path inside the process's root,
   * so that a container's files are found (and nothing outside that root is);
   * through map_files when the file has been deleted since it was mapped. The
   * file is read only if it has the mapping's device and inode.
   */
  mappedFile(mapping: ProcMapping): MappedFile {
    const file: MappedFile = { pid: this.pid, path: mapping.path, device: mapping.device, inode: mapping.inode };
    if (mapping.deleted) file.mapFiles = `${mapping.start.toString(16)}-${mapping.end.toString(16)}`;
    return file;
  }
}

/**
 * Processes' mappings, read fresh from /proc/PID/maps on every call but parsed
 * only when the text changed since the last read: a long-running process's
 * maps rarely change, and parsing them is most of the cost.
 */
export class ProcessMappingsReader {
  private readonly last = new Map<number, { text: string; mappings: ProcessMappings | undefined }>();

  /** The process's mappings now; undefined if it has exited (or is a kernel thread). */
  async read(pid: number): Promise<ProcessMappings | undefined> {
    let text: string;
    try {
      text = await readFile(`/proc/${pid}/maps`, 'utf8');
    } catch {
      this.last.delete(pid);
      return undefined;
    }
    const known = this.last.get(pid);
    if (known?.text === text) return known.mappings;
    const parsed = parseProcMaps(text);
    const mappings = parsed.length > 0 ? new ProcessMappings(pid, parsed) : undefined;
    this.last.set(pid, { text, mappings });
    return mappings;
  }

  /** Forgets the processes `keep` rejects. */
  prune(keep: (pid: number) => boolean): void {
    for (const pid of this.last.keys()) if (!keep(pid)) this.last.delete(pid);
  }

  clear(): void {
    this.last.clear();
  }
}
