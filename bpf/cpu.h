/* Structs the cpu receiver shares between cpu.bpf.c and user space (receivers/cpu/layout.ts). */
#ifndef EBPF_COLLECTOR_CPU_H
#define EBPF_COLLECTOR_CPU_H

#define PROFILE_COMM_LEN 16
/* Frames per stack; the kernel's own limit (kernel.perf_event_max_stack) defaults to the same. */
#define MAX_STACK_DEPTH 127
/*
 * Per bank. A stack map is a hash table without chaining: two stacks in one
 * bucket make the second a collision, so it is sized well above the distinct
 * stacks of one interval (about 17 MB of kernel memory each).
 */
#define MAX_STACKS 16384
#define MAX_SAMPLE_KEYS 16384
#define MAX_FILTER_PIDS 1024
#define MAX_FILTER_CGROUPS 256

/* A stack id for "this sample has no such stack": user mode has no kernel stack, a kernel thread no user stack. */
#define NO_STACK -1

/* sample_counts_0/1 (counter_bank.h): what was sampled -> how many times since the bank was last read */
struct sample_key {
	__u32 pid; /* tgid */
	__s32 user_stack_id;
	__s32 kernel_stack_id;
	char comm[PROFILE_COMM_LEN]; /* the process's (thread group leader's) comm */
};

/* control[0], written by user space: which filters apply (all that are on must match). */
struct control {
	__u8 filter_pids;
	__u8 filter_cgroups;
	/*
	 * Leading bytes of the comm that must equal `comm`, 0 for any comm: a
	 * prefix's length, or a name's length plus its NUL for an exact match.
	 */
	__u8 comm_match_len;
	__u8 padding;
	char comm[PROFILE_COMM_LEN];
};

/* Index into the per-CPU `losses` arrays (loss_counter.h). Each counts samples not recorded. */
enum cpu_loss {
	LOSS_STACK_COLLISION = 0, /* -EEXIST: another stack holds the stack map bucket */
	LOSS_STACK_MAP_FULL = 1, /* -ENOMEM: no free stack map entry */
	LOSS_STACK_WALK_FAILED = 2, /* -EFAULT: no callchain could be taken */
	LOSS_STACK_ERROR = 3, /* any other error of bpf_get_stackid */
	LOSS_COUNTS_FULL = 4, /* the sample_counts map is full */
	LOSS_MAX,
};

#endif
