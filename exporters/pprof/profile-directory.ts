/**
 * The profile files of one directory, `cpu-<window start, UTC>.pb.gz`. Each is
 * written to a temporary file and renamed into place, so a reader never sees
 * half a profile. At most maxFiles are kept, the oldest removed first; files an
 * earlier run left in the directory count too. Calls must not overlap (the
 * exporter writes one batch at a time).
 *
 * The collector runs as root and the directory may be one other users can write
 * to: the temporary file has an unpredictable name and is created with
 * O_EXCL|O_NOFOLLOW, so nothing planted there (a symlink to /etc/shadow) is
 * opened, and rename() replaces whatever sits at the target instead of
 * following it.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Readable by the owner's group (a log shipper), by nobody else. */
export const PROFILE_FILE_MODE = 0o640;
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

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
    await mkdir(this.path, { recursive: true, mode: 0o750 });
    const stamp = fileStamp(windowStartMs);
    const taken = new Set((await this.list()).map((file) => file.name));
    // Windows starting within the same second (sub-second intervals, several receivers) get -1, -2, …
    let name = `cpu-${stamp}.pb.gz`;
    for (let n = 1; taken.has(name); n++) name = `cpu-${stamp}-${n}.pb.gz`;
    const target = join(this.path, name);
    // Random, so that nobody can plant anything at it beforehand; O_EXCL would refuse it anyway.
    const temporary = join(this.path, `.${name}.${randomBytes(8).toString('hex')}.tmp`);
    const handle = await open(temporary, CREATE_NEW, PROFILE_FILE_MODE);
    try {
      try {
        // open()'s mode is narrowed by the umask; the file's should not depend on it.
        await handle.chmod(PROFILE_FILE_MODE);
        await handle.write(contents);
        await handle.sync();
      } finally {
        await handle.close();
      }
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

  /** Our profile files, oldest first. Only regular files: a symlink planted under one of our names is replaced, not counted. */
  private async list(): Promise<ProfileFile[]> {
    const files: ProfileFile[] = [];
    for (const entry of await readdir(this.path, { withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const name = entry.name;
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
