/* Loss counters shared by process, tcp, dns, tls and blockio (read by receivers/common/losses.ts). */
/* Include after vmlinux.h and bpf_helpers.h, once LOSS_MAX (the number of reasons) is defined. */
#ifndef EBPF_COLLECTOR_LOSS_COUNTER_H
#define EBPF_COLLECTOR_LOSS_COUNTER_H

#include "counter_bank.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOSS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} COUNTER_BANKS(losses);

/* Counted in bank group 0's current bank: losses are rare, so they read it themselves. */
static __always_inline void count_loss(__u32 reason)
{
	__u64 *n = bank_lookup(losses, current_bank(0), &reason);

	/* Atomic: uprobe programs can be preempted by another on their CPU; losses are rare, so it costs nothing. */
	if (n)
		__sync_fetch_and_add(n, 1);
}

#endif
