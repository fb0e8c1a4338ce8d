/**
 * The profiles signal: stack samples aggregated over an interval. Frames are
 * leaf first. A receiver fills addresses; the symbolization processor fills
 * function names, files and lines, and keeps mapping + offset where it cannot.
 */
export interface Mapping {
  path: string;
  buildId?: string;
  start: bigint;
  end: bigint;
  fileOffset: bigint;
}

export interface Frame {
  kind: 'kernel' | 'native' | 'jit';
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
  frames: Frame[];
  count: number;
}

export interface ProfileBatch {
  startTimeMs: number;
  endTimeMs: number;
  /** Sampling period in nanoseconds (1e9 / frequency). */
  periodNs: number;
  samples: ProfileSample[];
}

export function profileSampleCount(batch: ProfileBatch): number {
  let n = 0;
  for (const s of batch.samples) n += s.count;
  return n;
}
