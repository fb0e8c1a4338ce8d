// SPDX-License-Identifier: GPL-2.0
/*
 * A test program on a kprobe of a function that no kernel has, so that its
 * attach fails the same way on every kernel (with kprobes or without): the
 * failure must be reported cleanly and the rest of the pipeline keep running.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct comm_key {
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct comm_key);
	__type(value, __u64);
} counts SEC(".maps");

SEC("kprobe/ebpf_collector_no_such_function")
int count_calls(void *ctx)
{
	struct comm_key key = {};
	__u64 zero = 0, *count;

	bpf_get_current_comm(key.comm, sizeof(key.comm));
	bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
