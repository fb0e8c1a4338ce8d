// BPF programs exercised by native/native.test.ts.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_STACK_DEPTH 127

struct sample_key {
	u32 tgid;
	s32 kernel_stack;
	s32 user_stack;
};

// key 0 -> tgid whose syscalls on_sys_enter counts (written by the test).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} target_tgid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u64);
} exec_by_pid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} exec_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} getppid_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, u32);
	__type(value, u64);
} syscalls_by_nr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__uint(key_size, sizeof(u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct sample_key);
	__type(value, u64);
} stack_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u64);
} uprobe_hits SEC(".maps");

static __always_inline void increment(void *map, const void *key)
{
	u64 one = 1, *count = bpf_map_lookup_elem(map, key);

	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
}

static __always_inline u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
	u32 zero = 0, tgid = current_tgid();
	u64 *total = bpf_map_lookup_elem(&exec_total, &zero);

	if (total)
		*total += 1; // per-CPU slot: no atomic needed
	increment(&exec_by_pid, &tgid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	u32 zero = 0;
	u64 *count = bpf_map_lookup_elem(&getppid_calls, &zero);

	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	u32 zero = 0, nr = ctx->args[1];
	u32 *target = bpf_map_lookup_elem(&target_tgid, &zero);

	if (!target || *target != current_tgid())
		return 0;
	increment(&syscalls_by_nr, &nr);
	return 0;
}

SEC("perf_event")
int on_cpu_clock(struct bpf_perf_event_data *ctx)
{
	u32 zero = 0;
	u64 *total = bpf_map_lookup_elem(&samples, &zero);
	struct sample_key key = {
		.tgid = current_tgid(),
		.kernel_stack = bpf_get_stackid(ctx, &stacks, 0),
		.user_stack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK),
	};

	if (total)
		*total += 1;
	increment(&stack_counts, &key);
	return 0;
}

SEC("uprobe")
int on_uprobe(struct pt_regs *ctx)
{
	u32 tgid = current_tgid();

	increment(&uprobe_hits, &tgid);
	return 0;
}

// A kprobe on a function that no kernel has: attaching it fails the same way on every kernel, and must fail cleanly.
SEC("kprobe/ebpf_collector_no_such_function")
int on_missing_function(struct pt_regs *ctx)
{
	return 0;
}
