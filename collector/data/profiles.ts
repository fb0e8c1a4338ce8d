/**
 * The profiles signal: stack samples aggregated over an interval. A receiver
 * fills what the kernel gives (addresses, pid, comm); the symbolization
 * processor fills mappings, function names, files and lines, and where it
 * cannot name a frame it still fills the mapping, build id and file offset so
 * that a backend can symbolize it later.
 */
export interface Mapping {
  /** The mapped file as the process sees it (e.g. /usr/lib/x86_64-linux-gnu/libc.so.6), or [vdso], [jit]. */
  path: string;
  buildId?: string;
  /** Virtual address range of the mapping in the process. */
  start: bigint;
  end: bigint;
  /** File offset of `start`. */
  fileOffset: bigint;
}

export interface Frame {
  /** Where the kernel found the frame: in the kernel stack or the user stack. */
  kind: 'kernel' | 'user';
  /** The sampled instruction address (absolute, in the process's or kernel's address space). */
  address: bigint;
  mapping?: Mapping;
  functionName?: string;
  fileName?: string;
  line?: number;
}

export interface ProfileSample {
  pid: number;
  comm: string;
  containerId?: string;
  podUid?: string;
  /** Leaf first: frames[0] is where the CPU was. Kernel frames come before user frames. */
  frames: Frame[];
  count: number;
}

export interface ProfileBatch {
  startTimeMs: number;
  endTimeMs: number;
  /** Sampling period in nanoseconds (1e9 / frequency): each sample stands for this much CPU time. */
  periodNs: number;
  samples: ProfileSample[];
}

export function profileSampleCount(batch: ProfileBatch): number {
  let n = 0;
  // Indexed: unoptimized (bin/ebpf-collector), for-of allocates an iterator result per element.
  for (let i = 0; i < batch.samples.length; i++) n += batch.samples[i].count;
  return n;
}

/** How a frame is shown when it has no name: `libfoo.so+0x1234` (file offset), else the bare address. */
export function unsymbolizedName(frame: Frame): string {
  if (!frame.mapping) return `0x${frame.address.toString(16)}`;
  const base = frame.mapping.path.slice(frame.mapping.path.lastIndexOf('/') + 1);
  return `${base}+0x${(frame.address - frame.mapping.start + frame.mapping.fileOffset).toString(16)}`;
}
