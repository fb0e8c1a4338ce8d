// SPDX-License-Identifier: GPL-2.0
/* The floor of the fileio receiver alone: an empty program on a per-syscall tracepoint pair (bench/io/fileio_bench.ts attaches it to pread64's). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tracepoint")
int empty_tracepoint_enter(void *ctx)
{
	return 0;
}

SEC("tracepoint")
int empty_tracepoint_exit(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
