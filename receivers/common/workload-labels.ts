/**
 * The `pod`, `namespace` and `container` labels of kernel series keyed by
 * cgroup id, as every receiver that attributes to workloads sets them.
 */
import { CgroupPaths } from '../../collector/cgroups.js';
import type { Attributes } from '../../collector/data/metrics.js';
import { parseCgroupPath } from '../../collector/processes.js';

export class WorkloadLabels {
  private readonly cgroupPaths = new CgroupPaths();
  private paths = new Map<bigint, string>();

  /** Resolves the ids of one read at once: a new id costs one scan of the cgroup tree. */
  resolve(cgroupIds: Iterable<bigint>): void {
    this.paths = this.cgroupPaths.resolve(cgroupIds);
  }

  /**
   * `pod` is the pod UID and `container` the container id when the cgroup
   * path carries them; `namespace` stays empty, since cgroup paths do not
   * carry it (a Kubernetes metadata processor can fill it in).
   */
  of(cgroupId: bigint): Attributes {
    const path = this.paths.get(cgroupId);
    const parsed = path ? parseCgroupPath(path) : {};
    return { pod: parsed.podUid ?? '', namespace: '', container: parsed.containerId ?? '' };
  }
}
