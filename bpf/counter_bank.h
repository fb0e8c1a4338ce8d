/*
 * Counters that user space reads exactly, while programs keep counting.
 *
 * Every counter map has two banks, NAME_0 and NAME_1. Programs add to the bank
 * that counter_bank[group] names, read once per event so that one event's
 * counts land in one bank. User space (BpfObject.swapBanks, native/src/
 * bpf_object.cc) flips counter_bank[group], waits until no program that may
 * have read the old index is still running, then reads and resets the old
 * bank: nothing writes to it any more, so no increment falls between the read
 * and the reset, and no increment lands in a hash element being deleted.
 *
 * The wait is a kernel guarantee, not a sleep: every program here is
 * non-sleepable and runs inside an RCU read-side critical section, and
 * updating an ARRAY_OF_MAPS element from user space calls synchronize_rcu()
 * before the syscall returns (see native/src/map_io.cc, WaitForRunningPrograms).
 *
 * A receiver whose object serves several receivers (syscalls.bpf.c: the
 * syscalls and fileio parts) gives each its own group, defining
 * COUNTER_BANK_GROUPS before including this. Include after vmlinux.h and
 * bpf_helpers.h.
 */
#ifndef EBPF_COLLECTOR_COUNTER_BANK_H
#define EBPF_COLLECTOR_COUNTER_BANK_H

#ifndef COUNTER_BANK_GROUPS
#define COUNTER_BANK_GROUPS 1
#endif

/* counter_bank[group]: the bank (0 or 1) the group's programs add to; written by user space only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, COUNTER_BANK_GROUPS);
	__type(key, __u32);
	__type(value, __u32);
} counter_bank SEC(".maps");

/* Declares both banks of a counter map: `struct { ...map definition... } COUNTER_BANKS(name);` */
#define COUNTER_BANKS(name) name##_0 SEC(".maps"), name##_1 SEC(".maps")

/* The bank `group`'s programs add to now. */
static __always_inline __u32 current_bank(__u32 group)
{
	__u32 *bank = bpf_map_lookup_elem(&counter_bank, &group);

	return bank ? *(volatile __u32 *)bank & 1 : 0;
}

/* Bank `bank` of the counter map `name`, for helpers that take a map (bpf_get_stackid, insert_value...). */
#define BANK_MAP(name, bank) ((bank) ? (void *)&name##_1 : (void *)&name##_0)

/*
 * bpf_map_lookup_elem in bank `bank` of `name`. A lookup is inlined only where
 * its call site sees one map (otherwise it goes through the map's ops, an
 * indirect call): the barrier keeps clang from merging the two calls into one
 * with a chosen map.
 */
#define bank_lookup(name, bank, key)                                   \
	({                                                             \
		void *bank_value__;                                    \
		if (bank) {                                            \
			bank_value__ = bpf_map_lookup_elem(&name##_1, key); \
			barrier();                                     \
		} else {                                               \
			bank_value__ = bpf_map_lookup_elem(&name##_0, key); \
		}                                                      \
		bank_value__;                                          \
	})

#endif
