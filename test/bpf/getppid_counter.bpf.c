// SPDX-License-Identifier: GPL-2.0
/* A test program for the ebpf receiver: getppid calls counted by comm and pid on a tracepoint. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct call_key {
	char comm[16];
	__u32 pid;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct call_key);
	__type(value, __u64);
} calls SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	struct call_key key = { .pid = bpf_get_current_pid_tgid() >> 32 };
	__u64 zero = 0, *count;

	bpf_get_current_comm(key.comm, sizeof(key.comm));
	bpf_map_update_elem(&calls, &key, &zero, BPF_NOEXIST);
	count = bpf_map_lookup_elem(&calls, &key);
	if (count)
		(*count)++; /* per-CPU value: no other CPU writes it */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
