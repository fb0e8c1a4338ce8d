/* The cgroup filter the cpu and syscalls receivers share. Include after vmlinux.h and bpf_helpers.h. */
#ifndef EBPF_COLLECTOR_CGROUP_FILTER_H
#define EBPF_COLLECTOR_CGROUP_FILTER_H

/* How many ancestors of the current cgroup are checked against a filter. */
#define MAX_CGROUP_DEPTH 16

/*
 * The current cgroup or one of its ancestors is a key of `filter` (a hash map
 * of cgroup ids), so that a filter on a slice covers its services.
 */
static __always_inline bool cgroup_selected(void *filter)
{
	for (int level = 0; level < MAX_CGROUP_DEPTH; level++) {
		__u64 id = bpf_get_current_ancestor_cgroup_id(level);

		if (id == 0)
			return false; /* deeper than the current cgroup */
		if (bpf_map_lookup_elem(filter, &id))
			return true;
	}
	return false;
}

#endif
