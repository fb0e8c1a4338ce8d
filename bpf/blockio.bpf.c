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
 * One hash entry per request in flight, keyed by its struct request pointer;
 * every completion adds to a per-CPU series that user space drains each
 * interval. Nothing is sent per request.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latency_histogram.h"
#include "blockio.h"

/* include/linux/blk_types.h: the low bits of cmd_flags are the operation. */
#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1 << REQ_OP_BITS) - 1)
/* include/linux/kdev_t.h */
#define MINORBITS 20
/* include/uapi/asm-generic/errno-base.h: a full hash map refuses new keys with -E2BIG. */
#define E2BIG 7

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct blockio_config);
} receiver_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IN_FLIGHT);
	__type(key, __u64);
	__type(value, struct request_start);
} in_flight SEC(".maps");

/* Entries are allocated as series appear: preallocating would pin ~1.7 KB per CPU per slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_SERIES);
	__type(key, struct series_key);
	__type(value, struct series_value);
} series SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_ERROR_SERIES);
	__type(key, struct error_key);
	__type(value, __u64);
} errors SEC(".maps");

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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOSS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} losses SEC(".maps");

static __always_inline void count_loss(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&losses, &reason);

	if (n)
		(*n)++;
}

SEC("tp_btf/block_io_start")
int BPF_PROG(block_io_start, struct request *rq)
{
	struct request_start start = {};
	struct blockio_config *settings;
	__u64 key = (__u64)rq;
	__u32 zero = 0;

	settings = bpf_map_lookup_elem(&receiver_settings, &zero);
	if (!settings)
		return 0;
	if (settings->aggregate & AGGREGATE_CGROUP)
		start.submitter.cgroup_id = bpf_get_current_cgroup_id();
	if (settings->aggregate & AGGREGATE_PID)
		start.submitter.pid = bpf_get_current_pid_tgid() >> 32;
	if (settings->aggregate & AGGREGATE_COMM)
		bpf_get_current_comm(start.submitter.comm, sizeof(start.submitter.comm));
	/* A request is reused once freed: its old entry (a request merged into another, say) is replaced. */
	if (bpf_map_update_elem(&in_flight, &key, &start, BPF_ANY))
		count_loss(LOSS_IN_FLIGHT_FULL);
	return 0;
}

/* The entry of a request seen first past submit (a flush request, one submitted before we attached) is made here. */
static __always_inline struct request_start *start_of(struct request *rq)
{
	struct request_start *start, fresh = {};
	__u64 key = (__u64)rq;

	start = bpf_map_lookup_elem(&in_flight, &key);
	if (start)
		return start;
	if (bpf_map_update_elem(&in_flight, &key, &fresh, BPF_NOEXIST) == -E2BIG) {
		count_loss(LOSS_IN_FLIGHT_FULL);
		return 0;
	}
	return bpf_map_lookup_elem(&in_flight, &key);
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(block_rq_insert, struct request *rq)
{
	struct request_start *start = start_of(rq);

	if (start)
		start->insert_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue, struct request *rq)
{
	struct request_start *start = start_of(rq);

	if (start)
		start->issue_ns = bpf_ktime_get_ns();
	return 0;
}

/* A request merged into another is freed without completing. */
SEC("tp_btf/block_rq_merge")
int BPF_PROG(block_rq_merge, struct request *rq)
{
	__u64 key = (__u64)rq;

	bpf_map_delete_elem(&in_flight, &key);
	return 0;
}

static __always_inline struct series_value *series_of(const struct series_key *key, struct gendisk *disk)
{
	struct series_value *value = bpf_map_lookup_elem(&series, key);
	struct device_name name;
	__u32 zero = 0;

	if (value)
		return value;
	value = bpf_map_lookup_elem(&empty_series, &zero);
	if (!value)
		return 0;
	bpf_probe_read_kernel_str(name.name, sizeof(name.name), disk->disk_name);
	bpf_map_update_elem(&device_names, &key->dev, &name, BPF_ANY);
	/* BPF_NOEXIST: an insert racing on another CPU wins and we add to its entry. */
	bpf_map_update_elem(&series, key, value, BPF_NOEXIST);
	return bpf_map_lookup_elem(&series, key);
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
	struct request_start *start;
	struct series_value *value;
	__u64 request = (__u64)rq;
	bool done;

	start = bpf_map_lookup_elem(&in_flight, &request);
	if (!start)
		return 0;
	/* Drivers may complete a request in parts; it is done when this part covers what is left. */
	done = nr_bytes >= rq->__data_len;
	if (!start->issue_ns || !disk)
		goto forget; /* no disk: a request of a queue without one (a SCSI device's own commands) */
	key.submitter = start->submitter;
	key.dev = (disk->major << MINORBITS) | disk->first_minor;
	key.operation = rq->cmd_flags & REQ_OP_MASK;
	value = series_of(&key, disk);
	if (!value) {
		count_loss(LOSS_SERIES_FULL);
		goto forget;
	}
	value->bytes += nr_bytes;
	if (!done)
		return 0;
	histogram_record(&value->duration, bpf_ktime_get_ns() - start->issue_ns);
	if (start->insert_ns && start->insert_ns <= start->issue_ns)
		histogram_record(&value->queue, start->issue_ns - start->insert_ns);
	if (status) {
		struct error_key error = { .series = key, .status = status };
		__u64 *failed = bpf_map_lookup_elem(&errors, &error), one = 1;

		if (failed)
			(*failed)++;
		else if (bpf_map_update_elem(&errors, &error, &one, BPF_NOEXIST) == -E2BIG)
			count_loss(LOSS_ERRORS_FULL);
	}
forget:
	if (done)
		bpf_map_delete_elem(&in_flight, &request);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
