/* Structs the syscalls receiver shares between syscalls.bpf.c and user space (receivers/syscalls/layout.ts). */
#ifndef EBPF_COLLECTOR_SYSCALLS_H
#define EBPF_COLLECTOR_SYSCALLS_H

/* Durations go into struct latency_histogram (latency_histogram.h). */

/* Distinct (syscall, aggregate labels) series per interval, and (series, errno) pairs. */
#define MAX_HISTOGRAMS 16384
#define MAX_ERROR_SERIES 16384

/* Syscall numbers with a recent series per CPU (x86-64 has about 470); higher ones always go to the hash. */
#define RECENT_SYSCALL_NR 512

/* Syscall numbers whose names the kernel's syscall trace events are searched for. */
#define MAX_SYSCALL_NR 1024
#define SYSCALL_NAME_LEN 64
/* Upper bound on the trace events walked when reading syscall names (a system has a few thousand). */
#define MAX_TRACE_EVENTS 65536

/* receiver_settings[0], written by user space before the programs attach. */
struct syscalls_config {
	__u32 filters;   /* FILTER_* bits (syscall_probe.h): every filter that is on must match */
	__u32 aggregate; /* AGGREGATE_* bits: the fields of syscall_key that are filled in */
	__u32 enabled;   /* the syscalls receiver runs: entries are timed for it (the fileio part may use the programs alone) */
};

enum syscalls_aggregate {
	AGGREGATE_CGROUP = 1,
	AGGREGATE_PID = 2,
	AGGREGATE_TID = 4,
	AGGREGATE_UID = 8,
};

/* histograms: one series; fields not aggregated by are 0 */
struct syscall_key {
	__u64 cgroup_id;
	__u32 pid; /* tgid */
	__u32 tid;
	__u32 uid;
	__u32 nr;
};

/*
 * recent_series (per CPU, by syscall nr): the first series a syscall
 * exits with on this CPU since its bank was drained, so that the common
 * case adds to it without a hash lookup; other series go to `histograms`.
 */
struct recent_series {
	struct syscall_key key;
	__u64 used; /* 0: empty, key not set */
	struct latency_histogram histogram;
};

/* errors: failed calls of one series by errno */
struct error_key {
	struct syscall_key call;
	__u32 error; /* positive errno */
	__u32 padding;
};

/* Index into the per-CPU `losses` arrays (loss_counter.h): syscalls (or errors) that could not be recorded. */
enum syscalls_loss {
	LOSS_HISTOGRAMS_FULL = 0,
	LOSS_ERRORS_FULL = 1,
	LOSS_NO_TASK_STORAGE = 2,
	LOSS_MAX,
};

/*
 * names_request[0]: user space asks read_syscall_names to walk the kernel's
 * trace events, starting from the syscall event whose `enable` file is open
 * at `fd` in process `tgid`, and to write each syscall's name into
 * syscall_names[nr].
 */
struct names_request {
	__u32 tgid;
	__u32 fd;
	__u32 state; /* NAMES_* */
	__u32 found; /* names written */
};

enum names_state {
	NAMES_IDLE = 0,
	NAMES_PENDING = 1,
	NAMES_DONE = 2,
	NAMES_NOT_A_SYSCALL_EVENT = 3,
};

struct syscall_name {
	char name[SYSCALL_NAME_LEN]; /* as in the kernel's syscall metadata: "sys_openat" */
};

#endif
