// A program the verifier must reject: the map value pointer is used without
// the mandatory NULL check. native.test.ts expects load() to report why.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} counter SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int unchecked_lookup(void *ctx)
{
	u32 zero = 0;
	u64 *value = bpf_map_lookup_elem(&counter, &zero);

	*value += 1;
	return 0;
}
