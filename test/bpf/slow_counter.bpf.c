// SPDX-License-Identifier: GPL-2.0
/*
 * A test program for counter banks (bpf/counter_bank.h): each getppid of the
 * target process reads the bank, is counted in `entered` (never reset), spins
 * for milliseconds, and only then is counted in that bank. A drain that does
 * not wait for running programs misses calls still spinning; one after
 * swapBanks() must hold every call entered before the swap began.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "counter_bank.h"

/* Iterations of an empty bpf_loop callback: milliseconds on any machine. */
#define SPIN_ITERATIONS (1 << 19)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} entered SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} COUNTER_BANKS(finished);

static long spin(__u32 index, void *context)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_slowly(void *ctx)
{
	__u32 zero = 0, *tgid = bpf_map_lookup_elem(&target, &zero), bank;
	__u64 *count;

	if (!tgid || *tgid != bpf_get_current_pid_tgid() >> 32)
		return 0;
	/* The bank first: a call user space sees entered has read the bank it counts in. */
	bank = current_bank(0);
	count = bpf_map_lookup_elem(&entered, &zero);
	if (count)
		__sync_fetch_and_add(count, 1);
	bpf_loop(SPIN_ITERATIONS, spin, 0, 0);
	count = bank_lookup(finished, bank, &zero);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
