/* The task's cgroup/pid/comm labels, shared by tcp, dns, tls and blockio (named by receivers/common/task-labels.ts). */
/* Include after vmlinux.h and bpf_helpers.h. */
#ifndef EBPF_COLLECTOR_TASK_LABELS_H
#define EBPF_COLLECTOR_TASK_LABELS_H

#define TASK_LABELS_COMM_LEN 16

/* Bits of a receiver's `aggregate` setting: the labels its series keys fill in. */
enum task_aggregate {
	AGGREGATE_CGROUP = 1,
	AGGREGATE_PID = 2,
	AGGREGATE_COMM = 4,
};

/* The current task's cgroup id, pid (tgid) and comm where `aggregate` asks for them, else 0 and "". */
static __always_inline void current_task_labels(__u32 aggregate, __u64 *cgroup_id, __u32 *pid, char comm[TASK_LABELS_COMM_LEN])
{
	struct task_struct *task = bpf_get_current_task_btf();

	/* Read through the task rather than with a helper per field: each helper call costs a call and a return. */
	*cgroup_id = aggregate & AGGREGATE_CGROUP ? task->cgroups->dfl_cgrp->kn->id : 0;
	*pid = aggregate & AGGREGATE_PID ? task->tgid : 0;
	if (aggregate & AGGREGATE_COMM)
		bpf_get_current_comm(comm, TASK_LABELS_COMM_LEN);
	else
		__builtin_memset(comm, 0, TASK_LABELS_COMM_LEN);
}

#endif
