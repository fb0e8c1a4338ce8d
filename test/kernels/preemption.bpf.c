// SPDX-License-Identifier: GPL-2.0
/*
 * For test/kernels/run.sh: whether programs on each kind of hook the
 * receivers use run with preemption disabled. PREEMPT_RT runs some BPF
 * programs with only migration disabled, and the per-CPU designs
 * (syscalls' slot, per-CPU counters) assume no other task runs a program on
 * the CPU meanwhile. Counts runs per hook, preemptible or not, from the CPU's
 * preempt count (x86).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* x86's per-CPU preempt count; bit 31 is the inverted need-resched flag. */
extern const int __preempt_count __ksym;

enum hook { HOOK_RAW_TP, HOOK_TP_BTF_SWITCH, HOOK_TP_BTF_NET, HOOK_TRACEPOINT, HOOK_UPROBE, HOOK_PERF_EVENT, HOOKS };

/* preemption[hook * 2 + 1]: runs that could have been preempted; [hook * 2]: runs that could not. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HOOKS * 2);
	__type(key, __u32);
	__type(value, __u64);
} preemption SEC(".maps");

static __always_inline void note(__u32 hook)
{
	const int *count = bpf_this_cpu_ptr(&__preempt_count);
	__u32 key = hook * 2 + ((*count & 0x7fffffff) == 0);
	__u64 *runs = bpf_map_lookup_elem(&preemption, &key);

	if (runs)
		__sync_fetch_and_add(runs, 1);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(preemption_raw_tp) { note(HOOK_RAW_TP); return 0; }

SEC("tp_btf/sched_switch")
int BPF_PROG(preemption_tp_btf_switch) { note(HOOK_TP_BTF_SWITCH); return 0; }

SEC("tp_btf/net_dev_queue")
int BPF_PROG(preemption_tp_btf_net) { note(HOOK_TP_BTF_NET); return 0; }

SEC("tracepoint/syscalls/sys_exit_connect")
int preemption_tracepoint(void *ctx) { note(HOOK_TRACEPOINT); return 0; }

SEC("uprobe")
int preemption_uprobe(void *ctx) { note(HOOK_UPROBE); return 0; }

SEC("perf_event")
int preemption_perf_event(void *ctx) { note(HOOK_PERF_EVENT); return 0; }

char LICENSE[] SEC("license") = "GPL";
