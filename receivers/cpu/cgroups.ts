/** Cgroup v2 paths as a user writes them, resolved to the ids that bpf_get_current_cgroup_id() returns. */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems. */
export function cgroup2Mount(): string {
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (type === 'cgroup2') return mountPoint.replace(/\\040/g, ' ');
  }
  throw new Error('no cgroup v2 hierarchy is mounted, so the cgroups filter cannot be applied');
}

/** A cgroup's id is the inode number of its directory in the cgroup2 file system. */
export function cgroupId(path: string): bigint {
  const directory = join(cgroup2Mount(), path);
  let stat;
  try {
    stat = statSync(directory, { bigint: true });
  } catch (error) {
    throw new Error(`cgroup "${path}" not found (${directory}): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (!stat.isDirectory()) throw new Error(`cgroup "${path}" is not a cgroup (${directory} is not a directory)`);
  return stat.ino;
}
