/**
 * What each BPF object needs of the kernel, asked of the running kernel
 * before the object is loaded, so that a receiver on an older kernel either
 * loads a fallback object or fails with a status that names what is missing
 * (e.g. "needs bpf_loop (Linux 5.17+)") instead of the verifier's log.
 *
 * The versions are those of the upstream releases that added each feature;
 * the probes decide, so a distribution kernel with a backport passes.
 * `service::kernel_features::disable` makes features count as missing, so
 * that every fallback and refusal can be run on a kernel that has them all.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { kernelProbes, useUprobeMulti } from '../../native/index.js';

interface KernelFeature {
  /** What it is, as a status message names it. */
  description: string;
  /** The Linux release that added it. */
  since: string;
  probe(): boolean;
}

/** A helper that the objects call from every program type in `programTypes`. */
function helper(name: string, since: string, programTypes: string[]): KernelFeature {
  return { description: `the bpf_${name} helper`, since, probe: () => programTypes.every((type) => kernelProbes.helper(type, name)) };
}

/** A BTF-enabled tracepoint (SEC("tp_btf/<event>")): the kernel's BTF has its btf_trace_<event> typedef. */
function tracepoint(event: string, since: string): KernelFeature {
  return { description: `the ${event} tracepoint`, since, probe: () => kernelProbes.btfHas('typedef', `btf_trace_${event}`) };
}

const FEATURES = {
  btf: { description: 'kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)', since: '5.4', probe: () => kernelProbes.btf() },
  tp_btf: { description: 'BTF-enabled tracepoints (tp_btf)', since: '5.5', probe: () => kernelProbes.programType('tracing') },
  raw_tracepoint: { description: 'raw tracepoints', since: '4.17', probe: () => kernelProbes.programType('raw_tracepoint') },
  tracepoint: { description: 'tracepoint programs', since: '4.7', probe: () => kernelProbes.programType('tracepoint') },
  perf_event: { description: 'perf_event programs', since: '4.9', probe: () => kernelProbes.programType('perf_event') },
  uprobe: {
    description: 'uprobes (CONFIG_UPROBE_EVENTS)',
    since: '4.3',
    probe: () => kernelProbes.programType('kprobe') && existsSync('/sys/bus/event_source/devices/uprobe/type'),
  },
  /** Optional: without it uprobes attach through perf_event, which Linux 6.16+ allows only with CAP_SYS_ADMIN. */
  uprobe_multi: { description: 'uprobe-multi links', since: '6.6', probe: () => kernelProbes.uprobeMulti() },
  bpf_probe_read_kernel: helper('probe_read_kernel', '5.5', ['tracing', 'raw_tracepoint', 'perf_event', 'kprobe']),
  bpf_get_current_ancestor_cgroup_id: helper('get_current_ancestor_cgroup_id', '5.7', ['raw_tracepoint', 'perf_event']),
  bpf_get_current_task_btf: helper('get_current_task_btf', '5.11', ['tracing', 'raw_tracepoint', 'tracepoint', 'kprobe']),
  task_storage: {
    description: 'task storage in tracing programs',
    since: '5.12',
    probe: () => kernelProbes.mapType('task_storage') && ['tracing', 'raw_tracepoint', 'kprobe'].every((type) => kernelProbes.helper(type, 'task_storage_get')),
  },
  sk_storage: {
    description: 'socket storage in tp_btf programs',
    since: '5.11',
    probe: () => kernelProbes.mapType('sk_storage') && kernelProbes.helper('tracing', 'sk_storage_get'),
  },
  bpf_task_pt_regs: helper('task_pt_regs', '5.15', ['tracepoint']),
  bpf_loop: helper('loop', '5.17', ['tracing']),
  bpf_rdonly_cast: { description: 'the bpf_rdonly_cast kfunc', since: '6.2', probe: () => kernelProbes.btfHas('func', 'bpf_rdonly_cast') },
  'tp_btf/block_io_start': tracepoint('block_io_start', '6.5'),
} satisfies Record<string, KernelFeature>;

export type KernelFeatureName = keyof typeof FEATURES;
export const KERNEL_FEATURE_NAMES = Object.keys(FEATURES) as [KernelFeatureName, ...KernelFeatureName[]];

interface ObjectRequirements {
  needs: KernelFeatureName[];
  /** Objects built from the same source for a kernel without one feature: loaded in its place when that is all that is missing. */
  fallbacks?: Partial<Record<KernelFeatureName, string>>;
}

/** By object file (build/bpf/<name>.bpf.o); the helpers, map types and hooks its programs use. */
const OBJECTS: Record<string, ObjectRequirements> = {
  'process.bpf.o': { needs: ['btf', 'tp_btf'] },
  'cpu.bpf.o': { needs: ['btf', 'perf_event', 'bpf_probe_read_kernel', 'bpf_get_current_ancestor_cgroup_id'] },
  'syscalls.bpf.o': {
    needs: ['btf', 'raw_tracepoint', 'tp_btf', 'tracepoint', 'bpf_probe_read_kernel', 'bpf_get_current_ancestor_cgroup_id', 'bpf_get_current_task_btf', 'task_storage', 'bpf_loop', 'bpf_rdonly_cast'],
    fallbacks: { bpf_rdonly_cast: 'syscalls_compat.bpf.o' },
  },
  'tcp.bpf.o': {
    needs: ['btf', 'tp_btf', 'tracepoint', 'bpf_probe_read_kernel', 'bpf_get_current_ancestor_cgroup_id', 'bpf_get_current_task_btf', 'sk_storage', 'bpf_task_pt_regs'],
  },
  'dns.bpf.o': { needs: ['btf', 'tp_btf', 'bpf_probe_read_kernel', 'bpf_loop', 'bpf_rdonly_cast'], fallbacks: { bpf_rdonly_cast: 'dns_compat.bpf.o' } },
  'tls.bpf.o': { needs: ['btf', 'uprobe', 'bpf_get_current_task_btf', 'task_storage'] },
  'blockio.bpf.o': { needs: ['btf', 'tp_btf', 'bpf_probe_read_kernel', 'bpf_get_current_task_btf', 'tp_btf/block_io_start'] },
};

const probed = new Map<KernelFeatureName, boolean>();
let tracingRefusal: string | undefined;
let disabled: ReadonlySet<KernelFeatureName> = new Set();

/** service::kernel_features::disable: these count as missing from now on (replaces any earlier list). */
export function setDisabledKernelFeatures(names: readonly KernelFeatureName[]): void {
  disabled = new Set(names);
  useUprobeMulti(!disabled.has('uprobe_multi'));
}

/** Whether the running kernel has the feature (probed once) and it is not disabled. */
export function kernelHas(feature: KernelFeatureName): boolean {
  if (disabled.has(feature)) return false;
  let has = probed.get(feature);
  if (has === undefined) {
    has = FEATURES[feature].probe();
    probed.set(feature, has);
  }
  return has;
}

function describe(feature: KernelFeatureName): string {
  const { description, since } = FEATURES[feature];
  return `${description} (${description.includes(feature) ? '' : `${feature}, `}Linux ${since}+)`;
}

/**
 * The object to load for `objectPath` on this kernel: the object itself, its
 * fallback when only the fallback's feature is missing, or an Error naming
 * every missing feature. Objects without requirements (the ebpf receiver's) are the user's to vouch for.
 */
export function objectForKernel(objectPath: string): string {
  const requirements = OBJECTS[basename(objectPath)];
  if (!requirements) return objectPath;
  // Without the privilege to load programs every probe fails: that is no missing feature of the kernel.
  tracingRefusal ??= kernelProbes.tracingRefusal();
  if (tracingRefusal)
    throw new Error(`${basename(objectPath)}: this process may not load tracing BPF programs (${tracingRefusal}): it needs CAP_BPF and CAP_PERFMON (README: Privileges)`);
  const missing = requirements.needs.filter((feature) => !kernelHas(feature));
  const fallback = missing.length === 1 ? requirements.fallbacks?.[missing[0]] : undefined;
  if (fallback) return join(dirname(objectPath), fallback);
  if (missing.length === 0) return objectPath;
  const lacking = missing.filter((feature) => !disabled.has(feature));
  const turnedOff = missing.filter((feature) => disabled.has(feature));
  const why = [
    ...(lacking.length > 0 ? [`this kernel lacks ${missing.length === 1 ? 'it' : lacking.join(', ')}`] : []),
    ...(turnedOff.length > 0 ? [`service::kernel_features::disable turns off ${turnedOff.join(', ')}`] : []),
  ];
  throw new Error(`${basename(objectPath)} needs ${missing.map(describe).join(' and ')}: ${why.join('; ')}`);
}
