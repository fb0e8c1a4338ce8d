// SPDX-License-Identifier: GPL-2.0
/*
 * Whole-system CPU profiling: a cpu-clock perf event on every CPU runs
 * sample() at a fixed frequency. It filters (pids, cgroups, comm) before
 * any other work, then counts the sample under {pid, user stack, kernel
 * stack, comm} in a kernel hash map. User space reads the counts and the
 * stacks every interval in batches; nothing is sent per sample.
 *
 * Why two banks (counter_bank.h): a stack id in the counts map is only
 * meaningful while its stack map entry exists. If user space drained counts
 * and then cleared one stack map that programs keep writing to, samples
 * recorded in between would point at stacks already gone (or ids reused for
 * other stacks). So counts, stacks and losses are banked: programs write to
 * the bank counter_bank names; user space flips it, waits for programs
 * already running to finish, and then reads and clears the idle bank.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "cpu.h"
#include "cgroup_filter.h"
#include "counter_bank.h"
#include "loss_counter.h"

/* errno values (include/uapi/asm-generic/errno-base.h); vmlinux.h has no macros. */
#define ENOMEM 12
#define EFAULT 14
#define EEXIST 17
/* include/linux/sched.h */
#define PF_KTHREAD 0x00200000

struct control_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct control);
};

struct counts_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SAMPLE_KEYS);
	__type(key, struct sample_key);
	__type(value, __u64);
};

struct stacks_map {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, MAX_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
};

struct control_map control SEC(".maps");
struct counts_map COUNTER_BANKS(sample_counts);
struct stacks_map COUNTER_BANKS(stacks);

/* Filters: present keys are the pids (tgids) and cgroup ids to profile. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FILTER_PIDS);
	__type(key, __u32);
	__type(value, __u8);
} filter_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FILTER_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} filter_cgroups SEC(".maps");

static __always_inline __u32 stack_loss_reason(long err)
{
	switch (err) {
	case -EEXIST:
		return LOSS_STACK_COLLISION;
	case -ENOMEM:
		return LOSS_STACK_MAP_FULL;
	case -EFAULT:
		return LOSS_STACK_WALK_FAILED;
	default:
		return LOSS_STACK_ERROR;
	}
}

static __always_inline bool comm_selected(const struct control *settings, const char *comm)
{
	for (int i = 0; i < PROFILE_COMM_LEN; i++) {
		if (i >= settings->comm_match_len)
			return true;
		if (comm[i] != settings->comm[i])
			return false;
	}
	return true;
}

/* The interrupted context was in the kernel: only then is there a kernel stack to walk. */
static __always_inline bool in_kernel_mode(struct bpf_perf_event_data *ctx)
{
#if defined(__TARGET_ARCH_x86)
	/* The context allows only 8-byte reads of regs; cs (privilege level in its low 2 bits) starts its word. */
	__u64 cs = *(__u64 *)((char *)&ctx->regs + __builtin_offsetof(struct pt_regs, cs));

	return (cs & 3) == 0;
#elif defined(__TARGET_ARCH_arm64)
	return (ctx->regs.pstate & 0xf) != 0; /* not PSR_MODE_EL0t */
#else
#error "in_kernel_mode() needs a definition for this architecture"
#endif
}

/*
 * Takes one stack into `stacks` and sets *id; on failure counts the sample as
 * lost, since a sample missing a stack it had would be attributed wrongly.
 */
static __always_inline bool take_stack(struct bpf_perf_event_data *ctx, void *stacks, __u64 flags, __s32 *id)
{
	long ret = bpf_get_stackid(ctx, stacks, flags);

	if (ret < 0) {
		count_loss(stack_loss_reason(ret));
		return false;
	}
	*id = ret;
	return true;
}

static __always_inline void record(struct bpf_perf_event_data *ctx, void *counts, void *stacks,
				   struct sample_key *key, bool has_user_stack)
{
	__u64 one = 1, *count;
	long err;

	key->kernel_stack_id = NO_STACK;
	key->user_stack_id = NO_STACK;
	if (in_kernel_mode(ctx) && !take_stack(ctx, stacks, 0, &key->kernel_stack_id))
		return;
	if (has_user_stack && !take_stack(ctx, stacks, BPF_F_USER_STACK, &key->user_stack_id))
		return;

	count = bpf_map_lookup_elem(counts, key);
	if (count) {
		__sync_fetch_and_add(count, 1);
		return;
	}
	err = bpf_map_update_elem(counts, key, &one, BPF_NOEXIST);
	if (err == -EEXIST) {
		/* Another CPU inserted the same key first. */
		count = bpf_map_lookup_elem(counts, key);
		if (count) {
			__sync_fetch_and_add(count, 1);
			return;
		}
	}
	if (err)
		count_loss(LOSS_COUNTS_FULL);
}

SEC("perf_event")
int sample(struct bpf_perf_event_data *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 zero = 0;
	struct control *settings;
	struct task_struct *task;
	struct sample_key key = {};
	bool has_user_stack;
	__u32 bank;

	if (pid == 0)
		return 0; /* the idle task: a CPU with nothing to run */
	settings = bpf_map_lookup_elem(&control, &zero);
	if (!settings)
		return 0;
	if (settings->filter_pids && !bpf_map_lookup_elem(&filter_pids, &pid))
		return 0;
	if (settings->filter_cgroups && !cgroup_selected(&filter_cgroups))
		return 0;

	task = (struct task_struct *)bpf_get_current_task();
	BPF_CORE_READ_STR_INTO(&key.comm, task, group_leader, comm);
	if (!comm_selected(settings, key.comm))
		return 0;
	key.pid = pid;
	/* Kernel threads, and processes that have already released their memory on exit, have no user stack. */
	has_user_stack = !(BPF_CORE_READ(task, flags) & PF_KTHREAD) && BPF_CORE_READ(task, mm);

	/* Read once: user space may flip it while this runs, and the sample must go to one bank whole. */
	bank = current_bank(0);
	if (bank)
		record(ctx, &sample_counts_1, &stacks_1, &key, has_user_stack);
	else
		record(ctx, &sample_counts_0, &stacks_0, &key, has_user_stack);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
