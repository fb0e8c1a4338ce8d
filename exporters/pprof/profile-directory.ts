/**
 * The profile files of one directory, `cpu-<window start, UTC>.pb.gz`. Each is
 * written to a temporary file and renamed into place, so a reader never sees
 * half a profile. At most maxFiles are kept, the oldest removed first; files an
 * earlier run left in the directory count too. Calls must not overlap (the
 * exporter writes one batch at a time).
 */
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const PROFILE_FILE = /^cpu-(\d{8}T\d{6}Z)(?:-(\d+))?\.pb\.gz$/;

interface ProfileFile {
  name: string;
  stamp: string;
  /** 0 for the first file of a second, n for `-n`. */
  sequence: number;
}

export class ProfileDirectory {
  constructor(readonly path: string, private readonly maxFiles: number) {}

  /** Writes one profile named after the start of its window; returns the file's path. */
  async write(windowStartMs: number, contents: Uint8Array): Promise<string> {
    await mkdir(this.path, { recursive: true });
    const stamp = fileStamp(windowStartMs);
    const taken = new Set((await this.list()).map((file) => file.name));
    // Windows starting within the same second (sub-second intervals, several receivers) get -1, -2, …
    let name = `cpu-${stamp}.pb.gz`;
    for (let n = 1; taken.has(name); n++) name = `cpu-${stamp}-${n}.pb.gz`;
    const target = join(this.path, name);
    const temporary = join(this.path, `.${name}.${process.pid}.tmp`);
    try {
      await writeFile(temporary, contents);
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    return target;
  }

  /** Removes the oldest profiles beyond maxFiles; returns how many. */
  async prune(): Promise<number> {
    const files = await this.list();
    const excess = files.slice(0, Math.max(0, files.length - this.maxFiles));
    for (const file of excess) await rm(join(this.path, file.name), { force: true });
    return excess.length;
  }

  /** Our profile files, oldest first. */
  private async list(): Promise<ProfileFile[]> {
    const files: ProfileFile[] = [];
    for (const name of await readdir(this.path)) {
      const match = PROFILE_FILE.exec(name);
      if (match) files.push({ name, stamp: match[1], sequence: Number(match[2] ?? 0) });
    }
    return files.sort((a, b) => (a.stamp === b.stamp ? a.sequence - b.sequence : a.stamp < b.stamp ? -1 : 1));
  }
}

/** 2026-11-22T04:15:00.123Z → 20261122T041500Z */
function fileStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}
