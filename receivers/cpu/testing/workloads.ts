/** Test workloads for the cpu receiver: C programs from testdata/ compiled with gcc, started on cue. */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectPath } from '../../../collector/paths.js';

const directories: string[] = [];

function temporaryDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'ebpf-cpu-test-'));
  directories.push(directory);
  return directory;
}

/** Removes every binary made here. */
export function removeWorkloads(): void {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
}

/** Compiles receivers/cpu/testdata/<name>.c with frame pointers into a fresh temp dir; returns the binary. */
export function compileWorkload(name: string): string {
  const binary = join(temporaryDirectory(), name);
  execFileSync('gcc', ['-O0', '-fno-omit-frame-pointer', '-g', '-o', binary, projectPath('receivers', 'cpu', 'testdata', `${name}.c`)]);
  return binary;
}

/** A copy of `binary` under another name, hence another comm. */
export function copyAs(binary: string, name: string): string {
  const copy = join(temporaryDirectory(), name);
  copyFileSync(binary, copy);
  chmodSync(copy, 0o755);
  return copy;
}

export interface Workload {
  pid: number;
  /** Lets it begin its work; unless it was started to hold, also ends its stdin. */
  go(): void;
  /** Its first line of output (hotspots: the CPU seconds it used), while it may still be running. */
  firstLine: Promise<string>;
  /** Ends its stdin: a hotspots started with "hold" exits. */
  release(): void;
  /** What it printed, once it has exited successfully. */
  finished: Promise<string>;
}

/** Starts a program that waits for a line on stdin before working (testdata/hotspots.c; "hold" as its second argument keeps it until release()). */
export function startWorkload(binary: string, args: string[]): Workload {
  const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let output = '';
  let gotLine: (line: string) => void;
  const firstLine = new Promise<string>((resolve) => (gotLine = resolve));
  child.stdout.on('data', (chunk) => {
    output += chunk;
    if (output.includes('\n')) gotLine(output.slice(0, output.indexOf('\n')));
  });
  const finished = new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${binary} exited with ${code}`))));
  });
  const holds = args[1] === 'hold';
  return {
    pid: child.pid!,
    go: () => (holds ? child.stdin.write('go\n') : child.stdin.end('go\n')),
    firstLine: Promise.race([firstLine, finished.then((all) => all.split('\n')[0])]),
    release: () => child.stdin.end(),
    finished,
  };
}

export interface AddressRange {
  start: bigint;
  end: bigint;
}

/**
 * Where functions of a running PIE binary are: their offsets and sizes from
 * `nm`, moved by the load bias of its executable mapping in /proc/PID/maps.
 */
export function functionRanges(binary: string, pid: number, names: string[]): Map<string, AddressRange> {
  const symbols = new Map<string, AddressRange>();
  for (const line of execFileSync('nm', ['-S', '--defined-only', binary], { encoding: 'utf8' }).split('\n')) {
    const [value, size, , name] = line.split(' ');
    if (names.includes(name)) symbols.set(name, { start: BigInt(`0x${value}`), end: BigInt(`0x${value}`) + BigInt(`0x${size}`) });
  }
  const text = readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .map((line) => line.split(/\s+/))
    .find((fields) => fields[1]?.includes('x') && fields[5] === binary);
  if (!text) throw new Error(`no executable mapping of ${binary} in /proc/${pid}/maps`);
  // For a segment mapped from file offset `offset` at `start`, address = bias + symbol value (p_vaddr == p_offset in gcc's layout).
  const bias = BigInt(`0x${text[0].split('-')[0]}`) - BigInt(`0x${text[2]}`);
  const ranges = new Map<string, AddressRange>();
  for (const name of names) {
    const symbol = symbols.get(name);
    if (!symbol) throw new Error(`no symbol ${name} in ${binary}`);
    ranges.set(name, { start: bias + symbol.start, end: bias + symbol.end });
  }
  return ranges;
}

/** The kernel's text section, from /proc/kallsyms (root sees real addresses). */
export function kernelTextRange(): AddressRange {
  const symbols = new Map<string, bigint>();
  for (const line of readFileSync('/proc/kallsyms', 'utf8').split('\n')) {
    const [address, , name] = line.split(' ');
    if (name === '_stext' || name === '_etext') symbols.set(name, BigInt(`0x${address}`));
  }
  const start = symbols.get('_stext');
  const end = symbols.get('_etext');
  if (!start || !end) throw new Error('/proc/kallsyms has no _stext/_etext');
  return { start, end };
}
