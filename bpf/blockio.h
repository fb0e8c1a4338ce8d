/* Structs the blockio receiver shares between blockio.bpf.c and user space (receivers/blockio/layout.ts). */
#ifndef EBPF_COLLECTOR_BLOCKIO_H
#define EBPF_COLLECTOR_BLOCKIO_H

#define BLOCKIO_COMM_LEN 16
#define BLOCKIO_DISK_NAME_LEN 32

/*
 * Slots for requests between submit and completion, all devices together: a
 * request may take either of the two slots its pointer hashes to (2^bits).
 */
#define IN_FLIGHT_BITS 14
#define IN_FLIGHT_SLOTS (1 << IN_FLIGHT_BITS)
/* Distinct (device, operation, submitter labels) series per interval, and (series, status) pairs. */
#define MAX_SERIES 4096
#define MAX_ERROR_SERIES 1024
/* Disks whose names are kept (dev_t -> disk_name). */
#define MAX_DEVICES 1024

/* receiver_settings[0], written by user space before the programs attach. */
struct blockio_config {
	__u32 aggregate; /* AGGREGATE_* bits (task_labels.h): the submitter fields of series_key that are filled in */
	__u32 padding;
};

/* The task that submitted a request, as far as it is aggregated by; all 0 when unknown. */
struct submitter {
	__u64 cgroup_id;
	__u32 pid; /* tgid */
	__u32 padding;
	char comm[BLOCKIO_COMM_LEN];
};

/* in_flight: one request from submit to completion. */
struct request_start {
	__u64 request;   /* the struct request pointer that holds the slot; 0: free */
	__u64 insert_ns; /* block_rq_insert, 0 if it was issued without being queued */
	__u64 issue_ns;  /* block_rq_issue, 0 until issued */
	struct submitter submitter;
};

/* series: one device, operation and submitter. */
struct series_key {
	struct submitter submitter;
	__u32 dev;       /* the disk's dev_t, MKDEV(major, first_minor) as the kernel encodes it: major << 20 | minor */
	__u32 operation; /* cmd_flags & REQ_OP_MASK: enum req_op */
};

struct series_value {
	struct latency_histogram duration; /* issue -> complete: its count is the operations */
	struct latency_histogram queue;    /* insert -> issue, for requests that were inserted */
	__u64 bytes;                       /* bytes completed (partial completions too) */
};

/* errors: failed requests of one series by blk_status_t. */
struct error_key {
	struct series_key series;
	__u32 status; /* blk_status_t, not 0 */
	__u32 padding;
};

struct device_name {
	char name[BLOCKIO_DISK_NAME_LEN];
};

/* Index into the per-CPU `losses` array: what could not be recorded. */
enum blockio_loss {
	LOSS_IN_FLIGHT_FULL = 0,  /* both slots of a request were taken: it was not timed, so not counted */
	LOSS_SERIES_FULL = 1,     /* a completed request was not counted */
	LOSS_ERRORS_FULL = 2,     /* a failed request's error was not counted */
	LOSS_MAX,
};

#endif
