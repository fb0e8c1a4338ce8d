/**
 * The syscall probe (bpf/syscalls.bpf.c) that the syscalls and fileio
 * receivers of one collector share: one loaded object, so that when both run
 * a syscall passes through one sys_enter/sys_exit program pair that serves
 * both (the entry marks which parts time the call). Each receiver holds its
 * part of a probe from start to shutdown; the first loads the object, the
 * last closes it, which detaches everything. A second receiver of the same
 * type (e.g. `syscalls/2`) gets a probe of its own.
 *
 * The fileio part alone runs on the per-syscall tracepoints of the file
 * syscalls, so other syscalls run no BPF; whenever the raw pair is attached
 * (the syscalls part runs, or is about to) it rides on that pair instead.
 */
import type { CreateSettings } from '../../collector/component.js';
import { bpfObjectPath } from '../../collector/paths.js';
import { objectForKernel } from '../common/kernel-requirements.js';
import { BpfObject, type AttachSpec } from '../../native/index.js';
import { PollingReceiver } from '../common/polling.js';

export type ProbePart = 'syscalls' | 'fileio';

/** enum fileio_route (bpf/fileio.h). */
export const FILEIO_ROUTE = { raw: 0, tracepoints: 1 } as const;
export type FileioRoute = keyof typeof FILEIO_ROUTE;

/** The raw pair and the switch program, in the order that strands no entry: switches followed and exits counted before entries are made. */
const RAW_PROGRAMS = ['syscall_switch', 'syscall_exit', 'syscall_enter'];

export class SyscallProbe {
  readonly parts = new Set<ProbePart>();
  private readonly attached = new Set<string>();
  /** How the fileio part's file syscalls are timed; it writes this into its settings. */
  fileioRoute: FileioRoute = 'tracepoints';
  /** Called when fileioRoute changes while the fileio part runs. */
  onFileioRouteChange?: () => void;

  constructor(readonly object: BpfObject) {}

  /** Attaches a program once per target, however many parts ask for it. */
  attach(program: string, spec: AttachSpec): void {
    const key = `${program} ${JSON.stringify(spec)}`;
    if (this.attached.has(key)) return;
    this.object.attach(program, spec);
    this.attached.add(key);
  }

  /** The raw sys_enter/sys_exit pair (and the switch program); from then on the fileio part rides on it. */
  attachRawPair(): void {
    for (const program of RAW_PROGRAMS) this.attach(program, { kind: 'auto' });
    if (this.fileioRoute !== 'raw') {
      this.fileioRoute = 'raw';
      if (this.parts.has('fileio')) this.onFileioRouteChange?.();
    }
  }

  /** The fileio part alone: the switch program and per-syscall tracepoints, each entry program on the syscalls (names without sys_) it serves. */
  attachFileTracepoints(entries: { program: string; syscall: string }[]): void {
    this.attach('syscall_switch', { kind: 'auto' });
    for (const { syscall } of entries) this.attach('fileio_syscall_exit', { kind: 'tracepoint', category: 'syscalls', name: `sys_exit_${syscall}` });
    for (const { program, syscall } of entries) this.attach(program, { kind: 'tracepoint', category: 'syscalls', name: `sys_enter_${syscall}` });
  }

  get rawPairAttached(): boolean {
    return this.attached.has(`syscall_enter ${JSON.stringify({ kind: 'auto' })}`);
  }
}

const probes: SyscallProbe[] = [];
/** Receivers created and not shut down, by part: a syscalls receiver that exists will start, so fileio rides on the raw pair from the start. */
const created: Record<ProbePart, number> = { syscalls: 0, fileio: 0 };

/** A receiver of `part` exists; call once at creation and give it back with forget(). */
export function announce(part: ProbePart): void {
  created[part]++;
}

export function forget(part: ProbePart): void {
  created[part]--;
}

/** Syscalls receivers created that do not run on a probe yet. */
export function syscallsReceiversPending(): number {
  return created.syscalls - probes.filter((probe) => probe.parts.has('syscalls')).length;
}

/** A probe whose `part` is free, loading a new one if none is; release() gives the part back. */
export function acquire(part: ProbePart): SyscallProbe {
  let probe = probes.find((candidate) => !candidate.parts.has(part));
  if (!probe) {
    const object = BpfObject.open(objectForKernel(bpfObjectPath('syscalls')));
    try {
      object.load();
    } catch (error) {
      object.close();
      throw error;
    }
    probe = new SyscallProbe(object);
    probes.push(probe);
  }
  probe.parts.add(part);
  return probe;
}

/** Gives `part` back; the last part out closes the object, detaching every program. */
export function release(probe: SyscallProbe, part: ProbePart): void {
  probe.parts.delete(part);
  if (part === 'fileio') probe.onFileioRouteChange = undefined;
  if (probe.parts.size > 0) return;
  probes.splice(probes.indexOf(probe), 1);
  probe.object.close();
}

/** A polling receiver that holds one part of a shared probe from start to shutdown. */
export abstract class ProbePartReceiver extends PollingReceiver {
  private probe?: SyscallProbe;
  private announced = true;

  protected constructor(
    settings: CreateSettings,
    private readonly part: ProbePart,
    intervalMs: number,
  ) {
    super(settings, intervalMs);
    announce(part);
  }

  /** Writes the part's settings and attaches what it needs; the part is not recording until this returns. */
  protected abstract enable(probe: SyscallProbe): void | Promise<void>;

  /** Stops the part's recording before the probe is released (others may keep it running). */
  protected abstract disable(probe: SyscallProbe): void;

  protected override async open(): Promise<BpfObject> {
    const probe = acquire(this.part);
    this.probe = probe;
    try {
      await this.enable(probe);
    } catch (error) {
      this.close();
      throw error;
    }
    return probe.object;
  }

  protected override close(): void {
    if (this.announced) {
      this.announced = false;
      forget(this.part);
    }
    const probe = this.probe;
    if (!probe) return;
    this.probe = undefined;
    this.disable(probe);
    release(probe, this.part);
  }
}
