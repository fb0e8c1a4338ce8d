/**
 * Cgroup v2 paths and the ids that bpf_get_current_cgroup_id() returns, for
 * the receivers' cgroup filters and pod labels: a cgroup's id is the inode
 * number of its directory in the cgroup2 file system.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems. */
export function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (type === 'cgroup2') return mountPoint.replace(/\\040/g, ' ');
  }
  return undefined;
}

/** The id of a cgroup given by its path ("/system.slice/nginx.service"), with a clear error if there is none. */
export function cgroupId(path: string): bigint {
  const mount = cgroup2Mount();
  if (!mount) throw new Error('no cgroup v2 hierarchy is mounted, so the cgroups filter cannot be applied');
  const directory = join(mount, path);
  let stat;
  try {
    stat = statSync(directory, { bigint: true });
  } catch (error) {
    throw new Error(`cgroup "${path}" not found (${directory}): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (!stat.isDirectory()) throw new Error(`cgroup "${path}" is not a cgroup (${directory} is not a directory)`);
  return stat.ino;
}

/** Bound on ids remembered as unresolvable, so that a busy host's short-lived cgroups cannot grow it forever. */
const MAX_UNRESOLVABLE = 65536;

/**
 * Cgroup ids back to paths, from a scan of the cgroup2 tree. The scan is
 * cached and redone only when an id is new; an id the scan does not find
 * (its cgroup is gone) is remembered, since ids are never reused.
 */
export class CgroupPaths {
  private readonly mount = cgroup2Mount();
  private paths = new Map<bigint, string>();
  private readonly unresolvable = new Set<bigint>();

  /** Paths ("/kubepods.slice/…") of the ids that still exist. */
  resolve(ids: Iterable<bigint>): Map<bigint, string> {
    const wanted = [...new Set(ids)];
    if (this.mount && wanted.some((id) => !this.paths.has(id) && !this.unresolvable.has(id))) {
      this.paths = scan(this.mount);
      if (this.unresolvable.size > MAX_UNRESOLVABLE) this.unresolvable.clear();
      for (const id of wanted) if (!this.paths.has(id)) this.unresolvable.add(id);
    }
    const found = new Map<bigint, string>();
    for (const id of wanted) {
      const path = this.paths.get(id);
      if (path !== undefined) found.set(id, path);
    }
    return found;
  }
}

function scan(mount: string): Map<bigint, string> {
  const paths = new Map<bigint, string>();
  const visit = (relative: string) => {
    const directory = join(mount, relative);
    try {
      paths.set(statSync(directory, { bigint: true }).ino, relative);
      for (const entry of readdirSync(directory, { withFileTypes: true }))
        if (entry.isDirectory()) visit(relative === '/' ? `/${entry.name}` : `${relative}/${entry.name}`);
    } catch {
      // removed while we walked: it has no processes left to label
    }
  };
  visit('/');
  return paths;
}
