// SPDX-License-Identifier: GPL-2.0
/*
 * Per-syscall latency, calls and errors from the raw sys_enter/sys_exit
 * tracepoints; and the fileio receiver's file operations (fileio_probe.h),
 * from the same program pair when both run, so that a syscall pays for one
 * entry and one exit however many receivers time it (syscall_probe.h). The syscall in progress waits in a per-CPU slot: a thread
 * stays on its CPU from entry to exit unless it is switched out, and only
 * then (sched_switch) does its entry move to the thread's task storage and
 * back into the slot of the CPU it resumes on. So the common syscall costs a
 * clock read and an inlined array lookup on each side, no task storage or
 * global hash keyed by tid. Each exit adds to a per-CPU histogram (and error
 * count) that user space drains every interval: the syscall's recent series
 * (an inlined array lookup) when its labels match, else a per-CPU hash entry.
 * Nothing is sent per syscall.
 *
 * Every helper call counts here (with return-stack mitigations each call
 * and return costs several ns, bpf_ktime_get_ns about 60), so fields are
 * read through the task pointer and raw_tp is used rather than tp_btf,
 * whose dispatch costs a little more.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latency_histogram.h"
#include "syscalls.h"
#include "cgroup_filter.h"
#include "process_filter.h"
#include "syscall_probe.h"
#include "counter_bank.h"
#include "loss_counter.h"
#include "fileio.h"
#include "fileio_probe.h"

/* The largest errno; a return value in [-MAX_ERRNO, -1] is a failure (include/linux/err.h). */
#define MAX_ERRNO 4095
/* task_struct.flags: the thread is exiting (include/linux/sched.h). */
#define PF_EXITING 0x00000004

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syscalls_config);
} receiver_settings SEC(".maps");

/* The syscalls part's filters. */
PROCESS_FILTER_MAPS();

/* The syscall the thread running on this CPU is in, if it is being timed. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syscall_start);
} in_syscall SEC(".maps");

/* The syscall a switched-out thread is in, until it runs again. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct syscall_start);
} switched_out SEC(".maps");

/* Entries are allocated as series appear: preallocating would pin ~800 bytes per CPU per slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_HISTOGRAMS);
	__type(key, struct syscall_key);
	__type(value, struct latency_histogram);
} COUNTER_BANKS(histograms);

/* Each bank pins RECENT_SYSCALL_NR * 824 bytes (about 420 KB) per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RECENT_SYSCALL_NR);
	__type(key, __u32);
	__type(value, struct recent_series);
} COUNTER_BANKS(recent_series);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_ERROR_SERIES);
	__type(key, struct error_key);
	__type(value, __u64);
} COUNTER_BANKS(errors);

/* An all-zero histogram to insert new series from: it is too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct latency_histogram);
} empty_histogram SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct names_request);
} names_request SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SYSCALL_NR);
	__type(key, __u32);
	__type(value, struct syscall_name);
} syscall_names SEC(".maps");

/* Syscall arguments in the raw tracepoints' pt_regs. */
#if defined(__TARGET_ARCH_x86)
#define SYSCALL_ARG(regs, n) ((n) == 0 ? (regs)->di : (n) == 1 ? (regs)->si : (n) == 2 ? (regs)->dx : (regs)->r10)
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_ARG(regs, n) ((n) == 0 ? (regs)->regs[0] : (n) == 1 ? (regs)->regs[1] : (n) == 2 ? (regs)->regs[2] : (regs)->regs[3])
#endif

SEC("raw_tp/sys_enter")
int BPF_PROG(syscall_enter, struct pt_regs *regs, long id)
{
	struct syscalls_config *settings;
	struct fileio_config *fileio;
	const struct file_syscall *call;
	struct syscall_start *slot;
	struct pt_regs *args;
	__u32 zero = 0, parts = 0, nr = id;

	slot = bpf_map_lookup_elem(&in_syscall, &zero);
	settings = bpf_map_lookup_elem(&receiver_settings, &zero);
	fileio = bpf_map_lookup_elem(&fileio_settings, &zero);
	if (!slot || !settings || !fileio)
		return 0;
	/*
	 * Programs on syscall tracepoints run with preemption off, and every
	 * switch moves the slot's entry out: the slot is the running thread's.
	 * id < 0: a tracer or seccomp cancelled the syscall.
	 */
	if (id >= 0 && settings->enabled &&
	    (!settings->filters || process_selected(settings->filters, &filter_pids, &filter_comms, &filter_cgroups)))
		parts = PART_SYSCALLS;
	if (id >= 0 && fileio->enabled && fileio->route == FILEIO_ROUTE_RAW) {
		call = bpf_map_lookup_elem(&file_syscalls, &nr);
		if (call && call->operation) {
#ifndef NO_BPF_RDONLY_CAST
			args = kernel_cast(regs, struct pt_regs);
#else
			struct pt_regs copy;

			bpf_probe_read_kernel(&copy, sizeof(copy), regs);
			args = &copy;
#endif
			if (fileio_enter(fileio, slot, call, bpf_get_current_task_btf(), SYSCALL_ARG(args, 0), SYSCALL_ARG(args, 1),
					 SYSCALL_ARG(args, call->flags_arg)))
				parts |= PART_FILEIO;
		}
	}
	/*
	 * A thread's syscall registers sit at a fixed place on its kernel stack:
	 * they tell its exit from another thread's. The low bit (free: they are
	 * aligned) tells the exit this call is not timed, with no lookup.
	 */
	if (!parts) {
		slot->owner = (__u64)regs | OWNER_NOT_TIMED;
		slot->ns = 0;
		return 0;
	}
	slot->owner = (__u64)regs;
	slot->nr = id;
	slot->parts = parts;
	slot->ns = bpf_ktime_get_ns();
	return 0;
}

/*
 * A thread in a timed syscall leaves the CPU: its entry moves to its task
 * storage, and the entry of the thread coming in (if it is in a timed
 * syscall) moves into the slot, so that its exit finds it.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(syscall_switch, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	struct syscall_start *slot, *saved;
	__u32 zero = 0;

	slot = bpf_map_lookup_elem(&in_syscall, &zero);
	if (!slot)
		return 0;
	/* A thread that is exiting never returns from its exit syscall. */
	if (slot->ns && !(prev->flags & PF_EXITING)) {
		saved = bpf_task_storage_get(&switched_out, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (saved)
			*saved = *slot;
		else
			count_loss(LOSS_NO_TASK_STORAGE);
	}
	slot->ns = 0;
	saved = bpf_task_storage_get(&switched_out, next, 0, 0);
	if (saved && saved->ns) {
		*slot = *saved;
		saved->ns = 0;
	}
	return 0;
}

static __always_inline struct latency_histogram *histogram_of(__u32 bank, const struct syscall_key *key)
{
	void *bank_histograms = BANK_MAP(histograms, bank);
	struct latency_histogram *histogram = bpf_map_lookup_elem(bank_histograms, key);
	__u32 zero = 0;

	if (histogram)
		return histogram;
	histogram = bpf_map_lookup_elem(&empty_histogram, &zero);
	if (!histogram)
		return 0;
	/* BPF_NOEXIST: an insert racing on another CPU wins and we add to its entry. */
	bpf_map_update_elem(bank_histograms, key, histogram, BPF_NOEXIST);
	return bpf_map_lookup_elem(bank_histograms, key);
}

/* The histogram of `key` in this CPU's recent series, or 0 when another series holds its syscall's slot. */
static __always_inline struct latency_histogram *recent_histogram(__u32 bank, const struct syscall_key *key)
{
	struct recent_series *recent;
	__u32 nr = key->nr;

	if (nr >= RECENT_SYSCALL_NR)
		return 0;
	recent = bank_lookup(recent_series, bank, &nr);
	if (!recent)
		return 0;
	if (!recent->used) {
		recent->key = *key;
		recent->used = 1;
		return &recent->histogram;
	}
	if (recent->key.cgroup_id == key->cgroup_id && recent->key.pid == key->pid &&
	    recent->key.tid == key->tid && recent->key.uid == key->uid)
		return &recent->histogram;
	return 0;
}

static __always_inline void count_error(__u32 bank, const struct syscall_key *call, long ret)
{
	struct error_key key = { .call = *call, .error = -ret };
	void *bank_errors = BANK_MAP(errors, bank);
	__u64 one = 1, *count;

	count = bpf_map_lookup_elem(bank_errors, &key);
	if (count) {
		(*count)++;
		return;
	}
	if (bpf_map_update_elem(bank_errors, &key, &one, BPF_NOEXIST) == 0)
		return;
	count = bpf_map_lookup_elem(bank_errors, &key);
	if (count)
		(*count)++;
	else
		count_loss(LOSS_ERRORS_FULL);
}

/* The syscalls part's record of one call. */
static __always_inline void syscalls_exit(struct syscalls_config *settings, __u32 nr, struct task_struct *task, __u64 ns, long ret)
{
	struct latency_histogram *histogram;
	struct syscall_key key = { .nr = nr };
	/* Read once: the call's histogram and its error land in one bank. */
	__u32 bank = current_bank(BANK_GROUP_SYSCALLS);

	/* Read through the task rather than with a helper per field: each helper call costs a call and a return. */
	if (settings->aggregate & AGGREGATE_CGROUP)
		key.cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	if (settings->aggregate & AGGREGATE_PID)
		key.pid = task->tgid;
	if (settings->aggregate & AGGREGATE_TID)
		key.tid = task->pid;
	if (settings->aggregate & AGGREGATE_UID)
		key.uid = (__u32)bpf_get_current_uid_gid();

	histogram = recent_histogram(bank, &key);
	if (!histogram)
		histogram = histogram_of(bank, &key);
	if (!histogram) {
		count_loss(LOSS_HISTOGRAMS_FULL);
		return;
	}
	/* This CPU's value, and with preemption off no other thread runs this meanwhile. */
	histogram_record(histogram, ns);

	if (ret < 0 && ret >= -MAX_ERRNO)
		count_error(bank, &key, ret);
}

SEC("raw_tp/sys_exit")
int BPF_PROG(syscall_exit, struct pt_regs *regs, long ret)
{
	struct syscalls_config *settings;
	struct fileio_config *fileio;
	struct syscall_start *slot, *saved;
	struct task_struct *task;
	__u64 now = bpf_ktime_get_ns(), ns;
	__u32 zero = 0, parts;

	slot = bpf_map_lookup_elem(&in_syscall, &zero);
	if (!slot)
		return 0;
	if (slot->owner == ((__u64)regs | OWNER_NOT_TIMED))
		return 0; /* filtered out */
	task = bpf_get_current_task_btf();
	if (slot->owner != (__u64)regs || !slot->ns) {
		/*
		 * The switch that brought this thread back did not restore its entry:
		 * task storage is refused while a task preempted on this CPU holds its
		 * lock (an exiting task frees its storage preemptibly, and every task
		 * switched out in a syscall has some). The entry is still in the
		 * storage. None there: it entered before we attached, or untimed.
		 */
		saved = bpf_task_storage_get(&switched_out, task, 0, 0);
		if (!saved || !saved->ns || saved->owner != (__u64)regs)
			return 0;
		*slot = *saved;
		saved->ns = 0;
	}
	ns = now - slot->ns;
	slot->ns = 0;
	parts = slot->parts;
	if (parts & PART_SYSCALLS) {
		settings = bpf_map_lookup_elem(&receiver_settings, &zero);
		if (settings)
			syscalls_exit(settings, slot->nr, task, ns, ret);
	}
	if (parts & PART_FILEIO) {
		fileio = bpf_map_lookup_elem(&fileio_settings, &zero);
		if (fileio && fileio->enabled)
			fileio_exit(fileio, slot, task, ns, ret);
	}
	return 0;
}

/*
 * The fileio part alone: programs on the per-syscall tracepoints of the file
 * syscalls (user space attaches them to sys_enter_read, sys_exit_read, ...),
 * so that every other syscall runs no BPF at all, only the kernel's check of
 * its bitmap of traced syscalls. They stand aside (route) whenever the raw
 * pair is attached, which then times file syscalls too.
 */
struct syscall_enter_record {
	__u64 common;
	__s32 nr;
	__u32 padding;
	unsigned long args[6];
};

struct syscall_exit_record {
	__u64 common;
	__s32 nr;
	__u32 padding;
	long ret;
};

/*
 * The kernel refuses a program that reads past the record of a tracepoint it
 * is attached to, and a record holds only its syscall's arguments: one entry
 * program per kind of file syscall, each reading only what all of its kind have.
 */
static __always_inline int fileio_tracepoint_enter(__u32 nr, long fd, unsigned long path, unsigned long flags)
{
	const struct file_syscall *call;
	struct task_struct *task;
	struct fileio_config *fileio;
	struct syscall_start *slot;
	__u32 zero = 0;

	fileio = bpf_map_lookup_elem(&fileio_settings, &zero);
	if (!fileio || fileio->route != FILEIO_ROUTE_TRACEPOINTS)
		return 0;
	slot = bpf_map_lookup_elem(&in_syscall, &zero);
	call = bpf_map_lookup_elem(&file_syscalls, &nr);
	if (!slot || !call)
		return 0;
	task = bpf_get_current_task_btf();
	if (!fileio->enabled || !call->operation || !fileio_enter(fileio, slot, call, task, fd, path, flags)) {
		slot->ns = 0;
		return 0;
	}
	slot->owner = (__u64)task;
	slot->nr = nr;
	slot->parts = PART_FILEIO;
	slot->ns = bpf_ktime_get_ns();
	return 0;
}

/* Calls on the fd in their first argument (read, write, fsync, close, fstat...): every one has at least that argument. */
SEC("tracepoint")
int fileio_fd_enter(struct syscall_enter_record *record)
{
	return fileio_tracepoint_enter(record->nr, record->args[0], 0, 0);
}

/* Opens: their file is the fd they return. */
SEC("tracepoint")
int fileio_open_enter(struct syscall_enter_record *record)
{
	return fileio_tracepoint_enter(record->nr, -1, 0, 0);
}

/* newfstatat (flags in the fourth argument) and statx (in the third). */
SEC("tracepoint")
int fileio_stat_at_enter(struct syscall_enter_record *record)
{
	/* Both loads at fixed offsets: the verifier takes no computed offset into the context. */
	unsigned long flags = record->args[3];
	const struct file_syscall *call;
	__u32 nr = record->nr;

	barrier_var(flags);
	call = bpf_map_lookup_elem(&file_syscalls, &nr);
	if (call && call->flags_arg == 2)
		flags = record->args[2];
	return fileio_tracepoint_enter(nr, record->args[0], record->args[1], flags);
}

SEC("tracepoint")
int fileio_syscall_exit(struct syscall_exit_record *record)
{
	struct fileio_config *fileio;
	struct syscall_start *slot;
	struct task_struct *task;
	__u64 now = bpf_ktime_get_ns(), ns;
	__u32 zero = 0;

	fileio = bpf_map_lookup_elem(&fileio_settings, &zero);
	slot = bpf_map_lookup_elem(&in_syscall, &zero);
	if (!fileio || !slot || fileio->route != FILEIO_ROUTE_TRACEPOINTS || !slot->ns)
		return 0;
	task = bpf_get_current_task_btf();
	if (slot->owner != (__u64)task)
		return 0;
	ns = now - slot->ns;
	slot->ns = 0;
	if (fileio->enabled)
		fileio_exit(fileio, slot, task, ns, record->ret);
	return 0;
}

/*
 * Syscall names from the running kernel, once at start: each syscall trace
 * event's data is the syscall's metadata (name, number). The events form one
 * list; we enter it at the event whose `enable` file user space holds open.
 */
struct names_walk {
	struct list_head *start;
	struct list_head *node;
	__u32 found;
};

static long visit_trace_event(__u32 index, struct names_walk *walk)
{
	struct list_head *node = walk->node;
	struct trace_event_call *call = (void *)node - bpf_core_field_offset(struct trace_event_call, list);
	struct syscall_metadata *meta = BPF_CORE_READ(call, data);
	struct syscall_name *slot;
	__u32 nr;

	/*
	 * The list head is no event, and other events' data is no metadata;
	 * only a syscall event's metadata points back at the event.
	 */
	if (meta && (BPF_CORE_READ(meta, enter_event) == call || BPF_CORE_READ(meta, exit_event) == call)) {
		nr = BPF_CORE_READ(meta, syscall_nr); /* -1: not in this architecture's table */
		slot = bpf_map_lookup_elem(&syscall_names, &nr);
		if (slot && !slot->name[0] && bpf_probe_read_kernel_str(slot->name, sizeof(slot->name), BPF_CORE_READ(meta, name)) > 0)
			walk->found++;
	}
	walk->node = BPF_CORE_READ(node, next);
	return walk->node == walk->start || !walk->node;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(read_syscall_names, struct pt_regs *regs, long id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct names_walk walk = {};
	struct names_request *request;
	struct trace_event_file *event_file;
	struct trace_event_call *call;
	struct syscall_metadata *meta;
	struct file **fds, *file;
	__u32 zero = 0;

	request = bpf_map_lookup_elem(&names_request, &zero);
	if (!request || request->state != NAMES_PENDING || request->tgid != bpf_get_current_pid_tgid() >> 32)
		return 0;
	if (request->fd >= BPF_CORE_READ(task, files, fdt, max_fds))
		goto not_a_syscall_event;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[request->fd]) || !file)
		goto not_a_syscall_event;
	/* An event's `enable` file keeps its trace_event_file in the inode. */
	event_file = BPF_CORE_READ(file, f_inode, i_private);
	call = BPF_CORE_READ(event_file, event_call);
	meta = BPF_CORE_READ(call, data);
	if (!call || !meta || BPF_CORE_READ(meta, enter_event) != call)
		goto not_a_syscall_event;

	walk.start = &call->list;
	walk.node = walk.start;
	bpf_loop(MAX_TRACE_EVENTS, visit_trace_event, &walk, 0);
	request->found = walk.found;
	request->state = NAMES_DONE;
	return 0;

not_a_syscall_event:
	request->state = NAMES_NOT_A_SYSCALL_EVENT;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
