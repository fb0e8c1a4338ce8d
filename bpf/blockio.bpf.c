// SPDX-License-Identifier: GPL-2.0
/*
 * Block-layer requests by disk and operation: issue -> complete latency,
 * insert -> issue queue time, operations, bytes and errors, attributed to the
 * task that submitted each request.
 *
 * Completion runs in an interrupt or a kworker, so the submitter is taken at
 * block_io_start: the kernel fires it from blk_mq_bio_to_request() when a bio
 * becomes a new request, in the task that called submit_bio(): the writer
 * itself for O_DIRECT and synchronous I/O, the flusher kworker for buffered
 * writeback (that is whom the kernel knows as the submitter), the loop
 * device's worker for the I/O a loop device makes on its backing file.
 * block_bio_queue and block_getrq fire in the same context but see a bio,
 * not the request the later events are keyed by. Requests made inside the
 * block layer (the flush sequence's flush request) have no submitter.
 *
 * A request in flight holds one of two array slots its struct request
 * pointer hashes to (a 2-way set-associative table): array lookups are
 * inlined and take no lock, where a hash map's update and delete cost
 * several hundred ns per request. Every completion adds to a per-CPU series
 * that user space drains each interval. Nothing is sent per request.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latency_histogram.h"
#include "blockio.h"
#include "loss_counter.h"
#include "map_insert.h"
#include "task_labels.h"

/* include/linux/blk_types.h: the low bits of cmd_flags are the operation. */
#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1 << REQ_OP_BITS) - 1)
/* include/linux/kdev_t.h */
#define MINORBITS 20

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct blockio_config);
} receiver_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IN_FLIGHT_SLOTS);
	__type(key, __u32);
	__type(value, struct request_start);
} in_flight SEC(".maps");

/* Entries are allocated as series appear: preallocating would pin ~1.7 KB per CPU per slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_SERIES);
	__type(key, struct series_key);
	__type(value, struct series_value);
} COUNTER_BANKS(series);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_ERROR_SERIES);
	__type(key, struct error_key);
	__type(value, __u64);
} COUNTER_BANKS(errors);

/*
 * Disk names by dev_t, written whenever a series is created, before it is: a
 * drained series always finds its name, even once its disk is gone.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_DEVICES);
	__type(key, __u32);
	__type(value, struct device_name);
} device_names SEC(".maps");

/* An all-zero series value to insert new series from: it is too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct series_value);
} empty_series SEC(".maps");

/* One word per CPU to turn a request pointer into a number the verifier lets us hash. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pointer_scratch SEC(".maps");

/*
 * The address of a request as a plain number: the verifier allows no
 * arithmetic on a BTF pointer, but a word stored to a map reads back as one.
 */
static __always_inline __u64 address_of(struct request *rq)
{
	__u32 zero = 0;
	volatile __u64 *scratch = bpf_map_lookup_elem(&pointer_scratch, &zero);

	if (!scratch)
		return 0;
	*scratch = (__u64)rq;
	return *scratch;
}

/* The first of the two slots a request may hold: its pointer, hashed (Fibonacci hashing) to IN_FLIGHT_BITS. */
static __always_inline __u32 first_slot(__u64 request)
{
	return (request * 0x9E3779B97F4A7C15ULL) >> (64 - IN_FLIGHT_BITS);
}

/* The slot `request` holds, or 0. */
static __always_inline struct request_start *slot_of(__u64 request)
{
	__u32 index = first_slot(request);
	struct request_start *slot = bpf_map_lookup_elem(&in_flight, &index);

	if (!request)
		return 0; /* 0 marks a free slot */
	if (slot && slot->request == request)
		return slot;
	index ^= 1;
	slot = bpf_map_lookup_elem(&in_flight, &index);
	if (slot && slot->request == request)
		return slot;
	return 0;
}

/*
 * The slot `request` holds, or else a free one of its two, taken with a
 * compare-and-swap (another CPU may be taking it) and cleared. A request
 * freed without completing (an error path) leaves its slot taken until its
 * struct request is used again, which finds the slot its own.
 */
static __always_inline struct request_start *claim(__u64 request)
{
	__u32 first = first_slot(request), second = first ^ 1;
	struct request_start *a = bpf_map_lookup_elem(&in_flight, &first);
	struct request_start *b = bpf_map_lookup_elem(&in_flight, &second);
	struct request_start *slot;

	if (!a || !b || !request)
		return 0;
	if (a->request == request)
		return a;
	if (b->request == request)
		return b;
	if (a->request == 0 && __sync_val_compare_and_swap(&a->request, 0, request) == 0)
		slot = a;
	else if (b->request == 0 && __sync_val_compare_and_swap(&b->request, 0, request) == 0)
		slot = b;
	else {
		count_loss(LOSS_IN_FLIGHT_FULL);
		return 0;
	}
	slot->insert_ns = 0;
	slot->issue_ns = 0;
	__builtin_memset(&slot->submitter, 0, sizeof(slot->submitter));
	return slot;
}

SEC("tp_btf/block_io_start")
int BPF_PROG(block_io_start, struct request *rq)
{
	struct blockio_config *settings;
	struct request_start *slot;
	__u32 zero = 0;

	settings = bpf_map_lookup_elem(&receiver_settings, &zero);
	slot = claim(address_of(rq));
	if (!settings || !slot)
		return 0;
	/* A slot the request already held is left from an earlier life of the same struct request. */
	slot->insert_ns = 0;
	slot->issue_ns = 0;
	current_task_labels(settings->aggregate, &slot->submitter.cgroup_id, &slot->submitter.pid, slot->submitter.comm);
	return 0;
}

/* A request seen first past submit (the flush request, one submitted before we attached) takes its slot here. */
SEC("tp_btf/block_rq_insert")
int BPF_PROG(block_rq_insert, struct request *rq)
{
	struct request_start *slot = claim(address_of(rq));

	if (slot)
		slot->insert_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue, struct request *rq)
{
	struct request_start *slot = claim(address_of(rq));

	if (slot)
		slot->issue_ns = bpf_ktime_get_ns();
	return 0;
}

/* A request merged into another is freed without completing. */
SEC("tp_btf/block_rq_merge")
int BPF_PROG(block_rq_merge, struct request *rq)
{
	struct request_start *slot = slot_of(address_of(rq));

	if (slot)
		slot->request = 0;
	return 0;
}

static __always_inline struct series_value *series_of(__u32 bank, const struct series_key *key, struct gendisk *disk)
{
	struct series_value *value = bank_lookup(series, bank, key);
	struct device_name name;

	if (value)
		return value;
	bpf_probe_read_kernel_str(name.name, sizeof(name.name), disk->disk_name);
	bpf_map_update_elem(&device_names, &key->dev, &name, BPF_ANY);
	return insert_zeroed(BANK_MAP(series, bank), key, &empty_series);
}

/*
 * Only requests that were issued to the device count: a zero-length write
 * with REQ_PREFLUSH (fsync's cache flush) is completed by the flush machinery
 * without being issued, and the flush request it makes instead counts, as
 * a `flush` without a submitter since it may serve several. Requests issued
 * before we attached are not counted either.
 */
SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, blk_status_t status, unsigned int nr_bytes)
{
	struct gendisk *disk = rq->q->disk;
	struct series_key key = {};
	struct series_value *value;
	__u64 request = address_of(rq), insert_ns, issue_ns;
	struct request_start *slot;
	__u32 bank;
	bool done;

	slot = slot_of(request);
	if (!slot)
		return 0;
	/* Drivers may complete a request in parts; it is done when this part covers what is left. */
	done = nr_bytes >= rq->__data_len;
	insert_ns = slot->insert_ns;
	issue_ns = slot->issue_ns;
	key.submitter = slot->submitter;
	/* Released once read: another request may take the slot at once. */
	if (done)
		__sync_val_compare_and_swap(&slot->request, request, 0);
	if (!issue_ns || !disk)
		return 0; /* no disk: a request of a queue without one (a SCSI device's own commands) */
	key.dev = (disk->major << MINORBITS) | disk->first_minor;
	key.operation = rq->cmd_flags & REQ_OP_MASK;
	bank = current_bank(0);
	value = series_of(bank, &key, disk);
	if (!value) {
		count_loss(LOSS_SERIES_FULL);
		return 0;
	}
	value->bytes += nr_bytes;
	if (!done)
		return 0;
	histogram_record(&value->duration, bpf_ktime_get_ns() - issue_ns);
	if (insert_ns && insert_ns <= issue_ns)
		histogram_record(&value->queue, issue_ns - insert_ns);
	if (status) {
		struct error_key error = { .series = key, .status = status };

		if (!increment_count(BANK_MAP(errors, bank), &error, false))
			count_loss(LOSS_ERRORS_FULL);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
