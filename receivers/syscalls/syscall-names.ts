/**
 * Syscall numbers to names, from the running kernel: every syscall trace
 * event carries the syscall's metadata (name and number). A one-shot copy of
 * the receiver's BPF object walks the kernel's list of trace events from the
 * event whose `enable` file we hold open, and writes the names into a map.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../collector/logger.js';
import { bpfObjectPath } from '../../collector/paths.js';
import { objectForKernel } from '../common/kernel-requirements.js';
import { BpfObject } from '../../native/index.js';
import { cString } from '../common/polling.js';
import { NAMES_REQUEST_SIZE, NAMES_STATE, SYSCALL_NAME_LEN } from './layout.js';

const TRACEFS_MOUNTS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** Names do not change while the kernel runs: read once per process. */
let cached: Map<number, string> | undefined;

export type SyscallNames = ReadonlyMap<number, string>;

/** nr → name ("openat"). Empty, with a warning, when the kernel has no syscall trace events. */
export function syscallNames(logger: Logger): SyscallNames {
  if (cached) return cached;
  try {
    cached = readFromKernel();
  } catch (error) {
    // Not fatal: every syscall is still measured, as unknown_NNN.
    logger.warn({ err: error }, `syscall names unavailable, syscalls are labelled by number: ${(error as Error).message}`);
    return new Map();
  }
  return cached;
}

/** "unknown_NNN" for a number the kernel has no name for (not implemented, or not traceable). */
export function syscallName(names: SyscallNames, nr: number): string {
  return names.get(nr) ?? `unknown_${nr}`;
}

function syscallEventEnableFile(): string {
  for (const mount of TRACEFS_MOUNTS) {
    const events = join(mount, 'events', 'syscalls');
    if (!existsSync(events)) continue;
    const entry = readdirSync(events).find((name) => name.startsWith('sys_enter_'));
    if (entry) return join(events, entry, 'enable');
  }
  throw new Error(`no syscall trace events under ${TRACEFS_MOUNTS.map((m) => `${m}/events/syscalls`).join(' or ')} (CONFIG_FTRACE_SYSCALLS, tracefs mounted)`);
}

function readFromKernel(): Map<number, string> {
  const enableFile = syscallEventEnableFile();
  const fd = openSync(enableFile, 'r'); // opening does not enable the event
  const object = BpfObject.open(objectForKernel(bpfObjectPath('syscalls')));
  try {
    object.load();
    const zero = Buffer.alloc(4);
    const request = Buffer.alloc(NAMES_REQUEST_SIZE);
    request.writeUInt32LE(process.pid, 0);
    request.writeUInt32LE(fd, 4);
    request.writeUInt32LE(NAMES_STATE.pending, 8);
    object.update('names_request', zero, request);
    object.attach('read_syscall_names', { kind: 'auto' });
    fstatSync(fd); // any syscall of ours runs the program
    const state = object.lookup('names_request', zero)!.readUInt32LE(8);
    if (state === NAMES_STATE.notASyscallEvent) throw new Error(`${enableFile} does not lead the kernel to a syscall event`);
    if (state !== NAMES_STATE.done) throw new Error(`the name reader did not run (state ${state})`);

    const { count, keys, values } = object.dump('syscall_names');
    const names = new Map<number, string>();
    for (let i = 0; i < count; i++) {
      const name = cString(values, i * SYSCALL_NAME_LEN, SYSCALL_NAME_LEN);
      if (name) names.set(keys.readUInt32LE(i * 4), name.replace(/^sys_/, ''));
    }
    return names;
  } finally {
    object.close();
    closeSync(fd);
  }
}
