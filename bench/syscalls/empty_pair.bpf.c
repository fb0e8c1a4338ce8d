// SPDX-License-Identifier: GPL-2.0
/* The floor for bench/syscalls: an empty program on each raw syscall tracepoint, so only the cost of running BPF there remains. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("raw_tp/sys_enter")
int empty_enter(void *ctx)
{
	return 0;
}

SEC("raw_tp/sys_exit")
int empty_exit(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
