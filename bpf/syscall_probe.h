/*
 * What the syscalls and fileio receivers share in the kernel. Both are parts
 * of one object (syscalls.bpf.c), so that when both run a syscall passes
 * through one program pair: the entry stamps the per-CPU slot once, with a
 * bit per part that wants the call, and the exit serves each part whose bit
 * is set. Include after vmlinux.h, bpf_helpers.h, cgroup_filter.h and
 * process_filter.h.
 */
#ifndef EBPF_COLLECTOR_SYSCALL_PROBE_H
#define EBPF_COLLECTOR_SYSCALL_PROBE_H

/* Bits of syscall_start.parts: the receivers that time this call. */
enum syscall_probe_part {
	PART_SYSCALLS = 1,
	PART_FILEIO = 2,
};

/* Each part's counters are banked apart (counter_bank.h): each part drains on its own interval. */
enum syscall_probe_bank_group {
	BANK_GROUP_SYSCALLS = 0,
	BANK_GROUP_FILEIO = 1,
};
#define COUNTER_BANK_GROUPS 2

/* Set in syscall_start.owner beside a thread's pt_regs (8-byte aligned) when its current syscall is not timed. */
#define OWNER_NOT_TIMED 1

/* in_syscall (per CPU) and switched_out (task storage): the syscall a thread is in, ns 0 when none is timed. */
struct syscall_start {
	__u64 ns;      /* bpf_ktime_get_ns() at entry */
	__u64 owner;   /* whose call: its syscall pt_regs (raw tracepoints; | OWNER_NOT_TIMED) or its task (per-syscall tracepoints) */
	__u64 fs_type; /* fileio: the file's struct file_system_type, 0 until known */
	__u32 nr;
	__u32 parts;   /* PART_* bits */
	__s32 fd;      /* fileio: the fd the call works on */
	__u32 mnt_id;  /* fileio: the file's mount, when aggregated by mountpoint */
	__u32 operation; /* fileio: enum file_operation */
	__u32 padding;
};

#endif
