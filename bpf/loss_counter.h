/* Loss counters shared by process, tcp, dns, tls and blockio (read by receivers/common/losses.ts). */
/* Include after vmlinux.h and bpf_helpers.h, once LOSS_MAX (the number of reasons) is defined. */
#ifndef EBPF_COLLECTOR_LOSS_COUNTER_H
#define EBPF_COLLECTOR_LOSS_COUNTER_H

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOSS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} losses SEC(".maps");

static __always_inline void count_loss(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&losses, &reason);

	if (n)
		(*n)++;
}

#endif
