/*
 * What the syscalls and fileio receivers share in the kernel. Both are parts
 * of one object (syscalls.bpf.c), so that when both run a syscall passes
 * through one program pair: the entry stamps the per-CPU slot once, with a
 * bit per part that wants the call, and the exit serves each part whose bit
 * is set. Include after vmlinux.h, bpf_helpers.h and cgroup_filter.h.
 */
#ifndef EBPF_COLLECTOR_SYSCALL_PROBE_H
#define EBPF_COLLECTOR_SYSCALL_PROBE_H

#define SYSCALL_PROBE_COMM_LEN 16

/* Bits of syscall_start.parts: the receivers that time this call. */
enum syscall_probe_part {
	PART_SYSCALLS = 1,
	PART_FILEIO = 2,
};

/* Bits of a part's `filters` setting: every filter that is on must match. */
enum syscall_probe_filter {
	FILTER_PIDS = 1,
	FILTER_COMMS = 2,
	FILTER_CGROUPS = 4,
};

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

/* The current process passes a part's filters (pids, comms, cgroups: hash maps whose keys are the values to record). */
static __always_inline bool process_selected(__u32 filters, void *pids, void *comms, void *cgroups)
{
	if (filters & FILTER_PIDS) {
		__u32 pid = bpf_get_current_pid_tgid() >> 32;

		if (!bpf_map_lookup_elem(pids, &pid))
			return false;
	}
	if (filters & FILTER_COMMS) {
		char comm[SYSCALL_PROBE_COMM_LEN] = {};

		bpf_get_current_comm(comm, sizeof(comm));
		if (!bpf_map_lookup_elem(comms, comm))
			return false;
	}
	if ((filters & FILTER_CGROUPS) && !cgroup_selected(cgroups))
		return false;
	return true;
}

#endif
