/** Named fixtures for the OTLP exporters' tests: what the cpu receiver and a metrics receiver hand on. */
import type { Mapping, ProfileBatch } from '../../../collector/data/profiles.js';
import type { MetricBatch } from '../../../collector/data/metrics.js';

const LIBC: Mapping = {
  path: '/usr/lib/x86_64-linux-gnu/libc.so.6',
  buildId: '6c1a1d2e5c0b4e0c8d3ab5c3a7a4c0f6f0f3c9aa',
  start: 0x7f3a_1c00_0000n,
  end: 0x7f3a_1c19_5000n,
  fileOffset: 0x28000n,
};
const PYTHON: Mapping = { path: '/usr/bin/python3.11', buildId: '0b3e1f6a9d2c4e5f8a7b6c5d4e3f2a1b0c9d8e7f', start: 0x55d0_0000_0000n, end: 0x55d0_002e_0000n, fileOffset: 0n };
const NODE: Mapping = { path: process.execPath, start: 0x5600_0000_0000n, end: 0x5600_0400_0000n, fileOffset: 0n };

/**
 * One 10 s window at 99 Hz from three processes: a containerized python (two
 * samples of one stack, to be merged, and an unsymbolized frame), this test's
 * own node process (known to the process table), and a kernel thread.
 */
export function fixtureCpuProfile(endTimeMs = Date.now()): ProfileBatch {
  return {
    startTimeMs: endTimeMs - 10_000,
    endTimeMs,
    periodNs: Math.round(1e9 / 99),
    samples: [
      {
        pid: 4_100_001,
        comm: 'python3',
        containerId: 'a3f5c2d1e4b6a7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2',
        frames: [
          { kind: 'kernel', address: 0xffff_ffff_8100_1234n, functionName: 'copy_user_enhanced_fast_string' },
          { kind: 'user', address: 0x7f3a_1c0a_1b2cn, mapping: LIBC, functionName: '__memmove_avx_unaligned_erms' },
          { kind: 'user', address: 0x55d0_0012_3456n, mapping: PYTHON, functionName: '_PyEval_EvalFrameDefault', fileName: 'Python/ceval.c', line: 1234 },
        ],
        count: 7,
      },
      {
        pid: 4_100_001,
        comm: 'python3',
        containerId: 'a3f5c2d1e4b6a7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2',
        frames: [
          { kind: 'kernel', address: 0xffff_ffff_8100_1234n, functionName: 'copy_user_enhanced_fast_string' },
          { kind: 'user', address: 0x7f3a_1c0a_1b2cn, mapping: LIBC, functionName: '__memmove_avx_unaligned_erms' },
          { kind: 'user', address: 0x55d0_0012_3456n, mapping: PYTHON, functionName: '_PyEval_EvalFrameDefault', fileName: 'Python/ceval.c', line: 1234 },
        ],
        count: 2,
      },
      {
        pid: 4_100_001,
        comm: 'python3',
        containerId: 'a3f5c2d1e4b6a7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2',
        frames: [
          { kind: 'user', address: 0x55d0_0020_0010n, mapping: PYTHON },
          { kind: 'user', address: 0x55d0_0012_3456n, mapping: PYTHON, functionName: '_PyEval_EvalFrameDefault', fileName: 'Python/ceval.c', line: 1234 },
        ],
        count: 5,
      },
      {
        pid: process.pid,
        comm: 'node',
        frames: [
          { kind: 'user', address: 0x5600_0100_0000n, mapping: NODE, functionName: 'v8::internal::Heap::CollectGarbage' },
          { kind: 'user', address: 0x5600_0200_0000n, mapping: NODE, functionName: 'node::Start' },
        ],
        count: 11,
      },
      {
        pid: 4_100_002,
        comm: 'kworker/u4:1',
        frames: [{ kind: 'kernel', address: 0xffff_ffff_8110_0000n, functionName: 'worker_thread' }],
        count: 3,
      },
    ],
  };
}

/** The per-function and per-process totals fixtureCpuProfile() holds, worked out by hand. */
export const FIXTURE_CPU_PROFILE_TOTALS = {
  samples: 28,
  byPid: new Map([
    [4_100_001, 14],
    [process.pid, 11],
    [4_100_002, 3],
  ]),
  functionNames: [
    'copy_user_enhanced_fast_string',
    '__memmove_avx_unaligned_erms',
    '_PyEval_EvalFrameDefault',
    'v8::internal::Heap::CollectGarbage',
    'node::Start',
    'worker_thread',
  ],
};

/** A syscalls receiver's read: delta counts of `ebpf_syscall_total` by syscall, plus a gauge. */
export function fixtureSyscallMetrics(startTimeMs: number, endTimeMs: number, reads: number, writes: number): MetricBatch {
  return {
    startTimeMs,
    endTimeMs,
    metrics: [
      {
        type: 'sum',
        name: 'ebpf_syscall_total',
        description: 'System calls by name.',
        monotonic: true,
        temporality: 'delta',
        points: [
          { attributes: { syscall: 'read' }, value: reads },
          { attributes: { syscall: 'write' }, value: writes },
        ],
      },
      { type: 'gauge', name: 'ebpf_processes_live', description: 'Live processes.', points: [{ attributes: {}, value: 42 }] },
    ],
  };
}
