// SPDX-License-Identifier: GPL-2.0
/*
 * Process lifecycle from the sched tracepoints: execs counted by comm in the
 * kernel, and a table of live processes (pid -> comm, cgroup) that user space
 * reads in batches. Nothing is sent per event.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "process.h"
#include "counter_bank.h"
#include "loss_counter.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_COMMS);
	__type(key, struct comm_key);
	__type(value, __u64);
} COUNTER_BANKS(exec_counts);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_LIVE_PROCESSES);
	__type(key, __u32);
	__type(value, struct live_process);
} live SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct comm_key key = {};
	struct live_process proc = {};
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 zero = 0, *count;
	__u32 bank = current_bank(0);

	/* The comm is already the new program's name here. */
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	count = bank_lookup(exec_counts, bank, &key);
	if (!count) {
		/* Insert 0 then add, so that a racing insert on another CPU is not lost. */
		bpf_map_update_elem(BANK_MAP(exec_counts, bank), &key, &zero, BPF_NOEXIST);
		count = bank_lookup(exec_counts, bank, &key);
	}
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		count_loss(LOSS_EXEC_COMMS_FULL);

	__builtin_memcpy(proc.comm, key.comm, sizeof(proc.comm));
	proc.cgroup_id = bpf_get_current_cgroup_id();
	proc.exec_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&live, &pid, &proc, BPF_ANY))
		count_loss(LOSS_LIVE_TABLE_FULL);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;

	/* Only the thread group leader's exit ends the process. */
	if ((__u32)id != pid)
		return 0;
	bpf_map_delete_elem(&live, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
