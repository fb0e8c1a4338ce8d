/**
 * For the symbolizer's tests: compiles the programs in testdata/, runs them,
 * and finds the absolute addresses of their functions the way a user would
 * check by hand (nm, readelf, /proc/PID/maps), independently of the symbolizer.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Frame, ProfileBatch } from '../../../collector/data/profiles.js';
import { projectPath } from '../../../collector/paths.js';

export const testdata = (name: string): string => projectPath('processors', 'symbolizer', 'testdata', name);

export function temporaryDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'symbolizer-test-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** gcc/g++ -O0 -g with frame pointers, as a PIE. */
export function compile(source: string, output: string): string {
  const compiler = source.endsWith('.cc') ? 'g++' : 'gcc';
  execFileSync(compiler, ['-O0', '-g', '-fno-omit-frame-pointer', '-fPIE', '-pie', source, '-o', output]);
  return output;
}

export function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8' });
}

export interface RunningProgram {
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a program and waits until its executable is `executable` (as the process sees it). */
export async function startProgram(command: string, args: string[], executable: string): Promise<RunningProgram> {
  const child = spawn(command, args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    child.kill('SIGKILL');
    await exited;
  };
  const pid = child.pid!;
  for (let i = 0; i < 200; i++) {
    try {
      if (readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '') === executable) return { pid, child, stop };
    } catch {
      // not there yet
    }
    await sleep(10);
  }
  await stop();
  throw new Error(`${command} did not exec ${executable}`);
}

/** A symbol's ELF virtual address from nm (`dynamic` for .dynsym, e.g. libc). */
export function symbolAddress(file: string, symbol: string, dynamic = false): bigint {
  const line = run('nm', [...(dynamic ? ['-D'] : []), file])
    .split('\n')
    .find((l) => l.split(' ')[2]?.replace(/@.*$/, '') === symbol);
  if (!line) throw new Error(`nm finds no ${symbol} in ${file}`);
  return BigInt(`0x${line.split(' ')[0]}`);
}

/** Where ELF virtual address `vaddr` lies in the file, from readelf's program headers. */
export function fileOffsetOf(elfFile: string, vaddr: bigint): bigint {
  const segment = run('readelf', ['-lW', elfFile])
    .split('\n')
    .filter((l) => l.trim().startsWith('LOAD'))
    .map((l) => l.trim().split(/\s+/))
    .map((f) => ({ offset: BigInt(f[1]), vaddr: BigInt(f[2]), fileSize: BigInt(f[4]) }))
    .find((s) => vaddr >= s.vaddr && vaddr < s.vaddr + s.fileSize);
  if (!segment) throw new Error(`no PT_LOAD of ${elfFile} holds 0x${vaddr.toString(16)}`);
  return vaddr - segment.vaddr + segment.offset;
}

/** The absolute address in `pid` of ELF virtual address `vaddr` of `elfFile`, mapped as `mappedPath`. */
export function absoluteAddress(pid: number, mappedPath: string, elfFile: string, vaddr: bigint): bigint {
  const fileOffset = fileOffsetOf(elfFile, vaddr);
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const match = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(.*)$/.exec(line);
    if (!match || match[4].replace(/ \(deleted\)$/, '') !== mappedPath) continue;
    const [start, end, offset] = [BigInt(`0x${match[1]}`), BigInt(`0x${match[2]}`), BigInt(`0x${match[3]}`)];
    if (fileOffset >= offset && fileOffset < offset + (end - start)) return start + fileOffset - offset;
  }
  throw new Error(`${mappedPath} offset 0x${fileOffset.toString(16)} is not mapped in ${pid}`);
}

/** The mapped file of `pid` that ends with `suffix`, e.g. the process's libc. */
export function mappedFile(pid: number, suffix: string): string {
  const path = readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .map((l) => l.split(/\s+/).slice(5).join(' '))
    .find((p) => p.endsWith(suffix));
  if (!path) throw new Error(`${pid} maps no file ending with ${suffix}`);
  return path;
}

export function buildIdOf(file: string): string {
  const match = /Build ID: ([0-9a-f]+)/.exec(run('readelf', ['-n', file]));
  if (!match) throw new Error(`${file} has no build id`);
  return match[1];
}

/** binutils' answer for an ELF virtual address: the reference the symbolizer is checked against. */
export function addr2line(file: string, vaddr: bigint): { functionName: string; fileName: string; line: number } {
  const [functionName, location] = run('addr2line', ['-f', '-C', '-e', file, `0x${vaddr.toString(16)}`]).trim().split('\n');
  const colon = location.lastIndexOf(':');
  return { functionName, fileName: location.slice(0, colon), line: Number.parseInt(location.slice(colon + 1), 10) };
}

/** A fixture batch: one sample per stack, user frames given leaf first. */
export function fixtureBatch(samples: { pid: number; comm?: string; frames: Pick<Frame, 'kind' | 'address'>[] }[]): ProfileBatch {
  return {
    startTimeMs: Date.now() - 1000,
    endTimeMs: Date.now(),
    periodNs: 10_000_000,
    samples: samples.map(({ pid, comm, frames }) => ({ pid, comm: comm ?? 'fixture', frames: frames.map((f) => ({ ...f })), count: 1 })),
  };
}
