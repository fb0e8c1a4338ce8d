/*
 * The pid/comm/cgroup filters of tcp, syscalls and fileio (written by
 * receivers/common/process-filter.ts). Include after vmlinux.h, bpf_helpers.h
 * and cgroup_filter.h.
 */
#ifndef EBPF_COLLECTOR_PROCESS_FILTER_H
#define EBPF_COLLECTOR_PROCESS_FILTER_H

#define PROCESS_FILTER_COMM_LEN 16
#define MAX_FILTER_PIDS 1024
#define MAX_FILTER_COMMS 256
#define MAX_FILTER_CGROUPS 256

/* Bits of a receiver's `filters` setting: every filter that is on must match. */
enum process_filter {
	FILTER_PIDS = 1,
	FILTER_COMMS = 2,
	FILTER_CGROUPS = 4,
};

/* Declares <prefix>filter_pids, <prefix>filter_comms and <prefix>filter_cgroups: present keys are the pids (tgids), comms and cgroup ids to record. */
#define PROCESS_FILTER_MAPS(prefix)                                  \
	struct {                                                     \
		__uint(type, BPF_MAP_TYPE_HASH);                     \
		__uint(max_entries, MAX_FILTER_PIDS);                \
		__type(key, __u32);                                  \
		__type(value, __u8);                                 \
	} prefix##filter_pids SEC(".maps");                          \
	struct {                                                     \
		__uint(type, BPF_MAP_TYPE_HASH);                     \
		__uint(max_entries, MAX_FILTER_COMMS);               \
		__type(key, char[PROCESS_FILTER_COMM_LEN]);          \
		__type(value, __u8);                                 \
	} prefix##filter_comms SEC(".maps");                         \
	struct {                                                     \
		__uint(type, BPF_MAP_TYPE_HASH);                     \
		__uint(max_entries, MAX_FILTER_CGROUPS);             \
		__type(key, __u64);                                  \
		__type(value, __u8);                                 \
	} prefix##filter_cgroups SEC(".maps")

/* The current thread passes every filter that is on in `filters`, with the maps PROCESS_FILTER_MAPS declared. */
static __always_inline bool process_selected(__u32 filters, void *pids, void *comms, void *cgroups)
{
	if (filters & FILTER_PIDS) {
		__u32 pid = bpf_get_current_pid_tgid() >> 32;

		if (!bpf_map_lookup_elem(pids, &pid))
			return false;
	}
	if (filters & FILTER_COMMS) {
		char comm[PROCESS_FILTER_COMM_LEN] = {};

		bpf_get_current_comm(comm, sizeof(comm));
		if (!bpf_map_lookup_elem(comms, comm))
			return false;
	}
	if ((filters & FILTER_CGROUPS) && !cgroup_selected(cgroups))
		return false;
	return true;
}

#endif
