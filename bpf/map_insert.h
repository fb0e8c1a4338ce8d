/* Inserting series that do not exist yet, shared by tcp, dns, tls and blockio. */
/* Include after vmlinux.h and bpf_helpers.h. */
#ifndef EBPF_COLLECTOR_MAP_INSERT_H
#define EBPF_COLLECTOR_MAP_INSERT_H

/*
 * Inserts `initial` at `key` of `map` unless an entry is there, and returns
 * the entry; 0 when the map is full. BPF_NOEXIST: an insert racing on another
 * CPU wins and the caller adds to its entry.
 */
static __always_inline void *insert_value(void *map, const void *key, const void *initial)
{
	bpf_map_update_elem(map, key, initial, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

/* insert_value() of the all-zero value in `zeroes`, a one-entry array: such values are too large for the BPF stack. */
static __always_inline void *insert_zeroed(void *map, const void *key, void *zeroes)
{
	__u32 zero = 0;
	void *value = bpf_map_lookup_elem(zeroes, &zero);

	return value ? insert_value(map, key, value) : 0;
}

/*
 * Adds one to the u64 count at `key` of `map`, inserting it; false when the
 * map is full. `shared`: the map is not per-CPU, so the add is atomic.
 */
static __always_inline bool increment_count(void *map, const void *key, bool shared)
{
	__u64 one = 1, *count = bpf_map_lookup_elem(map, key);

	if (!count) {
		if (bpf_map_update_elem(map, key, &one, BPF_NOEXIST) == 0)
			return true;
		count = bpf_map_lookup_elem(map, key); /* another CPU inserted it meanwhile */
		if (!count)
			return false;
	}
	if (shared)
		__sync_fetch_and_add(count, 1);
	else
		(*count)++;
	return true;
}

#endif
