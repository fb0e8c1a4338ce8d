/* Structs the process receiver shares between process.bpf.c and user space. */
#ifndef EBPF_COLLECTOR_PROCESS_H
#define EBPF_COLLECTOR_PROCESS_H

#define TASK_COMM_LEN 16
#define MAX_COMMS 4096
#define MAX_LIVE_PROCESSES 65536

/* exec_counts_0/1 (counter_bank.h): comm -> number of execs since the bank was last read */
struct comm_key {
	char comm[TASK_COMM_LEN];
};

/* live: pid (tgid) -> what we know of it, kept from exec to exit */
struct live_process {
	char comm[TASK_COMM_LEN];
	__u64 cgroup_id;
	__u64 exec_ns; /* bpf_ktime_get_ns() at exec, 0 for processes seeded from /proc */
};

/* Index into the per-CPU `losses_0/1` arrays: what the kernel side could not record. */
enum process_loss {
	LOSS_EXEC_COMMS_FULL = 0,
	LOSS_LIVE_TABLE_FULL = 1,
	LOSS_MAX,
};

#endif
