/**
 * The table of live processes that receivers use for labels (comm, executable,
 * container). The process receiver keeps it in step with the kernel; for a pid
 * it has not seen, a lookup reads /proc once and caches the answer.
 */
import { readFileSync, readlinkSync, readdirSync } from 'node:fs';

export interface ProcessInfo {
  pid: number;
  comm: string;
  executable?: string;
  /** cgroup v2 path, e.g. /system.slice/docker-<id>.scope */
  cgroup?: string;
  containerId?: string;
  /** Kubernetes pod UID, when the cgroup path carries one. */
  podUid?: string;
}

const CONTAINER_ID = /(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?:\/|$)/;
const POD_UID = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/;

/** Container id and pod UID from a cgroup path (docker, containerd, CRI-O, systemd and cgroupfs layouts). */
export function parseCgroupPath(path: string): { containerId?: string; podUid?: string } {
  const container = CONTAINER_ID.exec(path);
  const pod = POD_UID.exec(path);
  return {
    ...(container ? { containerId: container[1] } : {}),
    ...(pod ? { podUid: pod[1].replaceAll('_', '-') } : {}),
  };
}

function readProc(pid: number, comm?: string): ProcessInfo | undefined {
  let name = comm;
  try {
    name ??= readFileSync(`/proc/${pid}/comm`, 'utf8').trimEnd();
  } catch {
    return undefined;
  }
  const info: ProcessInfo = { pid, comm: name };
  try {
    info.executable = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // kernel threads have no executable; a process may also be gone already
  }
  try {
    const unified = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((line) => line.startsWith('0::'));
    if (unified) {
      info.cgroup = unified.slice(3);
      Object.assign(info, parseCgroupPath(info.cgroup));
    }
  } catch {
    // gone
  }
  return info;
}

/** Bounds what lookups cache when no process receiver keeps the table in step with the kernel. */
const MAX_PROCESSES = 65_536;

export class ProcessTable {
  private readonly byPid = new Map<number, ProcessInfo>();

  get size(): number {
    return this.byPid.size;
  }

  get(pid: number): ProcessInfo | undefined {
    let info = this.byPid.get(pid);
    if (!info) {
      info = readProc(pid);
      if (info) this.remember(info);
    }
    return info;
  }

  /** Map order is insertion order, so the first key is the oldest entry. */
  private remember(info: ProcessInfo): void {
    this.byPid.set(info.pid, info);
    if (this.byPid.size > MAX_PROCESSES) this.byPid.delete(this.byPid.keys().next().value!);
  }

  list(): ProcessInfo[] {
    return [...this.byPid.values()];
  }

  /** Pids of every process in /proc now. */
  static scanProc(): number[] {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  }

  /**
   * Makes the table hold exactly `live` (pid → comm as the kernel saw it at
   * exec). Known pids whose comm is unchanged keep their cached details; new
   * ones are read from /proc.
   */
  sync(live: Map<number, string>): void {
    for (const pid of this.byPid.keys()) if (!live.has(pid)) this.byPid.delete(pid);
    for (const [pid, comm] of live) {
      const known = this.byPid.get(pid);
      if (known && known.comm === comm) continue;
      this.byPid.set(pid, readProc(pid, comm) ?? { pid, comm });
    }
  }
}
