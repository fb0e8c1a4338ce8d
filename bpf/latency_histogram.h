/*
 * The latency histogram every receiver shares (syscalls, tcp, dns, tls), and
 * its slot function; user space reads it with receivers/common/latency-histogram.ts.
 * Include after vmlinux.h.
 *
 * Slot 0 holds durations up to 2^10 ns (about 1 µs); then every power of two up
 * to 2^34 ns (about 17 s) is split into SUB_BUCKETS equal slots, so a quantile
 * is off by at most a quarter of its octave; the last slot holds longer
 * durations (+Inf).
 */
#ifndef EBPF_COLLECTOR_LATENCY_HISTOGRAM_H
#define EBPF_COLLECTOR_LATENCY_HISTOGRAM_H

#define HISTOGRAM_MIN_SHIFT 10
#define HISTOGRAM_MAX_SHIFT 34
#define SUB_BUCKET_BITS 2
#define SUB_BUCKETS (1 << SUB_BUCKET_BITS)
#define HISTOGRAM_SLOTS (2 + (HISTOGRAM_MAX_SHIFT - HISTOGRAM_MIN_SHIFT) * SUB_BUCKETS)

struct latency_histogram {
	__u64 slots[HISTOGRAM_SLOTS];
	__u64 sum_ns;
};

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

/* The histogram slot whose upper bound (inclusive, as Prometheus' `le`) is the first >= ns. */
static __always_inline __u32 histogram_slot(__u64 ns)
{
	__u64 below;
	__u32 octave, sub;

	if (ns <= (1ULL << HISTOGRAM_MIN_SHIFT))
		return 0;
	below = ns - 1; /* bounds are inclusive: 2^k + j * 2^(k-2) belongs to the slot it ends */
	if (below >= (1ULL << HISTOGRAM_MAX_SHIFT))
		return HISTOGRAM_SLOTS - 1;
	octave = log2_u64(below);
	sub = (below >> (octave - SUB_BUCKET_BITS)) & (SUB_BUCKETS - 1);
	return 1 + (octave - HISTOGRAM_MIN_SHIFT) * SUB_BUCKETS + sub;
}

/*
 * Adds one duration. Plain adds: callers hold a per-CPU value, or accept the
 * rare lost increment of a shared one on paths that are not per-CPU.
 */
static __always_inline void histogram_record(struct latency_histogram *histogram, __u64 ns)
{
	__u32 index = histogram_slot(ns);

	barrier_var(index); /* check the register that indexes, not a copy the compiler derived */
	if (index >= HISTOGRAM_SLOTS)
		return; /* cannot happen; tells the verifier the index is in bounds */
	histogram->slots[index]++;
	histogram->sum_ns += ns;
}

/*
 * Adds one duration to a value that other programs may add to meanwhile on
 * the same CPU: uprobe programs run with migration disabled but preemptible
 * (seen on Debian's 6.1 kernels, PREEMPT_RT and preempt=full), so a plain add
 * there can lose another task's increment.
 */
static __always_inline void histogram_record_atomic(struct latency_histogram *histogram, __u64 ns)
{
	__u32 index = histogram_slot(ns);

	barrier_var(index);
	if (index >= HISTOGRAM_SLOTS)
		return;
	__sync_fetch_and_add(&histogram->slots[index], 1);
	__sync_fetch_and_add(&histogram->sum_ns, ns);
}

#endif
