/**
 * Named fixture batches for the pprof exporter's unit tests: windows of a
 * 97 Hz CPU profile as the symbolizer hands them on, with named frames,
 * frames it could not name (mapping and build id known, or nothing known),
 * kernel frames, containers and plain host processes.
 */
import type { Frame, Mapping, ProfileBatch } from '../../../collector/data/profiles.js';

export const FIXTURE_PERIOD_NS = 1e9 / 97;
export const FIXTURE_WINDOW_START_MS = Date.UTC(2026, 10, 22, 4, 15, 0);

export const FIXTURE_API_BINARY: Mapping = {
  path: '/usr/local/bin/api',
  buildId: '3f1c2a9d8e7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d',
  start: 0x5555_5555_4000n,
  end: 0x5555_5560_0000n,
  fileOffset: 0n,
};
export const FIXTURE_LIBC: Mapping = {
  path: '/usr/lib/x86_64-linux-gnu/libc.so.6',
  buildId: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
  start: 0x7f12_3400_0000n,
  end: 0x7f12_3418_0000n,
  fileOffset: 0x28000n,
};
/** A library without symbols: its frames stay unnamed. */
export const FIXTURE_STRIPPED_LIBRARY: Mapping = {
  path: '/opt/store/lib/libstore.so',
  buildId: 'deadbeefcafef00d0123456789abcdef01234567',
  start: 0x7f55_0000_0000n,
  end: 0x7f55_0004_0000n,
  fileOffset: 0x1000n,
};

const main: Frame = { kind: 'user', address: 0x5555_5555_5230n, mapping: FIXTURE_API_BINARY, functionName: 'main', fileName: 'cmd/api/main.c', line: 41 };
const compute: Frame = { kind: 'user', address: 0x5555_5555_6010n, mapping: FIXTURE_API_BINARY, functionName: 'compute_prices', fileName: 'cmd/api/prices.c', line: 88 };
const libcRead: Frame = { kind: 'user', address: 0x7f12_3401_1c4an, mapping: FIXTURE_LIBC, functionName: '__libc_read', fileName: 'read.c', line: 26 };
const ksysRead: Frame = { kind: 'kernel', address: 0xffff_ffff_8133_4455n, functionName: 'ksys_read' };
/** In the stripped library: shown as libstore.so+0x2340 (address - start + file offset). */
export const FIXTURE_UNNAMED_LIBRARY_FRAME: Frame = { kind: 'user', address: 0x7f55_0000_1340n, mapping: FIXTURE_STRIPPED_LIBRARY };
/** A kernel frame without a name: shown as its address. */
export const FIXTURE_UNNAMED_KERNEL_FRAME: Frame = { kind: 'kernel', address: 0xffff_ffff_8100_2a10n };
/** A user frame of a process gone before its maps were read: no mapping, shown as its address. */
export const FIXTURE_UNMAPPED_FRAME: Frame = { kind: 'user', address: 0x4_01a0n };

/** One 10 s window: an API server in a container reading and computing, a database on the host. */
export const FIXTURE_SYMBOLIZED_WINDOW: ProfileBatch = {
  startTimeMs: FIXTURE_WINDOW_START_MS,
  endTimeMs: FIXTURE_WINDOW_START_MS + 10_000,
  periodNs: FIXTURE_PERIOD_NS,
  samples: [
    { pid: 4242, comm: 'api', containerId: 'c0ffee00c0ffee00', podUid: '7d3c1a52-0b9e-4a51-9a8e-2f1f0d6a6c11', count: 60, frames: [ksysRead, libcRead, main] },
    { pid: 4242, comm: 'api', containerId: 'c0ffee00c0ffee00', podUid: '7d3c1a52-0b9e-4a51-9a8e-2f1f0d6a6c11', count: 25, frames: [compute, main] },
    { pid: 4242, comm: 'api', containerId: 'c0ffee00c0ffee00', podUid: '7d3c1a52-0b9e-4a51-9a8e-2f1f0d6a6c11', count: 15, frames: [FIXTURE_UNNAMED_LIBRARY_FRAME, main] },
    { pid: 77, comm: 'postgres', count: 7, frames: [FIXTURE_UNNAMED_KERNEL_FRAME] },
    { pid: 77, comm: 'postgres', count: 3, frames: [FIXTURE_UNMAPPED_FRAME] },
  ],
};

/** The window after it: the API computes again (the same stack) and a host worker spins. */
export const FIXTURE_NEXT_WINDOW: ProfileBatch = {
  startTimeMs: FIXTURE_WINDOW_START_MS + 10_000,
  endTimeMs: FIXTURE_WINDOW_START_MS + 20_000,
  periodNs: FIXTURE_PERIOD_NS,
  samples: [
    { pid: 4242, comm: 'api', containerId: 'c0ffee00c0ffee00', podUid: '7d3c1a52-0b9e-4a51-9a8e-2f1f0d6a6c11', count: 40, frames: [compute, main] },
    {
      pid: 9001,
      comm: 'worker',
      count: 5,
      frames: [{ kind: 'user', address: 0x40_1130n, mapping: { path: '/usr/bin/worker', start: 0x40_0000n, end: 0x40_2000n, fileOffset: 0n }, functionName: 'spin' }],
    },
  ],
};

/** A window of `span` ms starting at `startMs` with the samples of `batch`: for tests that need current times. */
export function fixtureAt(batch: ProfileBatch, startMs: number, spanMs: number): ProfileBatch {
  return { ...batch, startTimeMs: startMs, endTimeMs: startMs + spanMs };
}
