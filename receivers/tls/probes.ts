/**
 * Which files get the TLS uprobes: libssl.so.3 and libcrypto.so.3 in the
 * system's library directories, `binaries` from the config, and every
 * executable and library live processes map that exports OpenSSL's symbols
 * (node embeds OpenSSL). A file is known by its device and inode, so a
 * library replaced on disk (a new inode at the same path) is inspected and
 * attached again, while the old one stays probed for the processes that
 * still map it. A uprobe on a file (pid -1) covers every process that maps
 * it, including those started later.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BpfObject } from '../../native/index.js';
import { HANDSHAKE_CALLS, READ_CALLS, inspectOpenssl, RefusedBinary, type OpensslBinary, type OpensslLayout } from './openssl-layout.js';

/** Where distributions put libssl.so.3 (Debian/Ubuntu multiarch, Fedora/RHEL, Alpine/Arch). */
const LIBRARY_DIRS = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib64', '/lib64', '/usr/lib', '/lib'];
const LIBRARY_NAMES = ['libssl.so.3', 'libcrypto.so.3'];

/** Programs in bpf/tls.bpf.c by the function they probe: [entry program, return program]. */
const PROGRAMS: [readonly string[], string | undefined, string | undefined][] = [
  [HANDSHAKE_CALLS, 'handshake_call_enter', 'handshake_call_exit'],
  [READ_CALLS, 'handshake_call_enter', 'read_call_exit'],
  [['SSL_free'], 'ssl_free', undefined],
  [['SSL_ctrl'], 'ssl_ctrl', undefined],
  [['SSL_get_servername'], 'servername_enter', 'servername_exit'],
];

interface Candidate {
  /** Device and inode, as /proc/PID/maps writes them ("08:01 1234"). */
  identity: string;
  /** A path the collector can open (through /proc/PID/root for other mount namespaces). */
  path: string;
  /** The path as its process sees it, for messages. */
  name: string;
  /** Listed in `binaries`: must be OpenSSL, or it is refused. */
  configured?: boolean;
}

export interface ProbeEvents {
  /** The first accepted layout: written to the kernel before anything is attached. */
  layout(layout: OpensslLayout): void;
  /** `unknownLayout`: OpenSSL whose version or code this receiver does not know (its handshakes go uncounted). */
  refused(name: string, why: string, unknownLayout: boolean): void;
  attached(name: string, version: string): void;
}

export class OpensslProbes {
  /** Files already looked at, by identity: they are not read again. */
  private readonly seen = new Set<string>();
  private layout?: { value: OpensslLayout; from: string };
  /** Refused files by name, with why: the receiver's status. */
  readonly refusals = new Map<string, string>();
  attachedFiles = 0;

  constructor(
    private readonly binaries: readonly string[],
    private readonly discoverProcesses: boolean,
    private readonly events: ProbeEvents,
  ) {}

  /** Inspects and attaches files not seen before. Cheap when nothing is new: one read of each process's maps. */
  scan(object: BpfObject): void {
    for (const candidate of this.candidates()) {
      if (this.seen.has(candidate.identity)) continue;
      this.seen.add(candidate.identity);
      this.consider(object, candidate);
    }
  }

  private *candidates(): Generator<Candidate> {
    for (const dir of LIBRARY_DIRS)
      for (const name of LIBRARY_NAMES) {
        const candidate = fileCandidate(join(dir, name));
        if (candidate) yield candidate;
      }
    for (const path of this.binaries) {
      const candidate = fileCandidate(path);
      if (candidate) yield { ...candidate, configured: true };
      else if (!this.refusals.has(path)) this.refuse(path, 'not found');
    }
    if (this.discoverProcesses) yield* mappedFiles();
  }

  private consider(object: BpfObject, candidate: Candidate): void {
    let binary: OpensslBinary | undefined;
    try {
      binary = inspectOpenssl(candidate.path);
    } catch (error) {
      // Mapped files that cannot be read or are not ELF are not OpenSSL; OpenSSL we do not know is refused.
      if (error instanceof RefusedBinary) this.refuse(candidate.name, error.message, true);
      else if (candidate.configured) this.refuse(candidate.name, (error as Error).message);
      return;
    }
    if (!binary) {
      if (candidate.configured) this.refuse(candidate.name, "exports neither libssl's SSL_read and SSL_write nor libcrypto's OpenSSL_version_num and ERR_set_error");
      return;
    }
    const { layout, functions, version } = binary;
    if (!layout) return; // libcrypto alone: its version tells libssl's, and libssl's own calls show the SSL errors
    if (!this.layout) {
      this.layout = { value: layout, from: candidate.name };
      this.events.layout(layout);
    } else if (!sameLayout(layout, this.layout.value)) {
      this.refuse(candidate.name, `OpenSSL ${version}'s SSL struct offsets ${describe(layout)} differ from ${describe(this.layout.value)} of ${this.layout.from}`, true);
      return;
    }
    try {
      for (const [names, entry, exit] of PROGRAMS) for (const name of names) attach(object, candidate.path, functions.get(name)?.fileOffset, entry, exit);
      for (const probe of binary.errorProbes) attach(object, candidate.path, probe.fileOffset, 'error_raised', undefined);
    } catch (error) {
      this.refuse(candidate.name, `attach failed: ${(error as Error).message}`);
      return;
    }
    this.attachedFiles++;
    this.events.attached(candidate.name, version);
  }

  private refuse(name: string, why: string, unknownLayout = false): void {
    this.refusals.set(name, why);
    this.events.refused(name, why, unknownLayout);
  }
}

/** Return probe first: an entry without its return would leave its note behind. */
function attach(object: BpfObject, binaryPath: string, offset: number | undefined, entry?: string, exit?: string): void {
  if (offset === undefined) return;
  if (exit) object.attach(exit, { kind: 'uprobe', binaryPath, offset, retprobe: true });
  if (entry) object.attach(entry, { kind: 'uprobe', binaryPath, offset });
}

function sameLayout(a: OpensslLayout, b: OpensslLayout): boolean {
  return a.handState === b.handState && a.inInit === b.inInit && a.flowState === b.flowState && a.server === b.server && a.verifyResult === b.verifyResult;
}

function describe(layout: OpensslLayout): string {
  return `(hand_state ${layout.handState}, in_init ${layout.inInit}, state ${layout.flowState}, server ${layout.server}, verify_result ${layout.verifyResult})`;
}

/** A file by path, identified as /proc/PID/maps identifies mapped files. */
function fileCandidate(path: string): Candidate | undefined {
  if (!existsSync(path)) return undefined;
  const stat = statSync(path);
  if (!stat.isFile()) return undefined;
  const major = (stat.dev >> 8) & 0xfff;
  const minor = (stat.dev & 0xff) | ((stat.dev >> 12) & 0xfff00);
  return { identity: `${hex(major)}:${hex(minor)} ${stat.ino}`, path, name: path };
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Executable file mappings of every live process. */
function* mappedFiles(): Generator<Candidate> {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let maps: string;
    try {
      maps = readFileSync(`/proc/${entry}/maps`, 'utf8');
    } catch {
      continue; // exited meanwhile, or a kernel thread
    }
    for (const line of maps.split('\n')) {
      // address perms offset dev inode path
      const match = /^\S+ ..x. \S+ (\S+) (\d+) +(\/.*)$/.exec(line);
      if (!match || match[2] === '0' || match[3].endsWith(' (deleted)')) continue;
      yield { identity: `${match[1]} ${match[2]}`, path: `/proc/${entry}/root${match[3]}`, name: match[3] };
    }
  }
}
