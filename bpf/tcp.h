/* Structs the tcp receiver shares between tcp.bpf.c and user space (receivers/tcp/layout.ts). */
#ifndef EBPF_COLLECTOR_TCP_H
#define EBPF_COLLECTOR_TCP_H

#define TCP_COMM_LEN 16

/* Distinct series per interval: connect durations, and failure/retransmit/reset counts. */
#define MAX_DURATION_SERIES 4096
#define MAX_COUNT_SERIES 16384
/* Sockets remembered after a failure the state machine counted (LRU). */
#define MAX_COUNTED_FAILURES 4096

/* receiver_settings[0], written by user space before the programs attach. */
struct tcp_config {
	__u32 filters;   /* FILTER_* bits (process_filter.h): every filter that is on must match */
	__u32 aggregate; /* AGGREGATE_* bits (task_labels.h): the fields of tcp_series_key that are filled in */
};

/* One series: a destination and who connected to it; fields not aggregated by are 0. */
struct tcp_series_key {
	__u8 daddr[16];  /* IPv4: the first 4 bytes; IPv6 as is (v4-mapped ones are shown as IPv4 by user space) */
	__u64 cgroup_id;
	__u32 pid;       /* tgid */
	__u16 family;    /* AF_INET or AF_INET6 */
	__u16 padding;
	char comm[TCP_COMM_LEN];
};

enum tcp_count_kind {
	COUNT_CONNECT_FAILURE = 0,
	COUNT_RETRANSMIT = 1,
	COUNT_RESET_RECEIVED = 2,
};

/* counts: events of one series by kind; error is the positive errno of a failure, else 0. */
struct tcp_count_key {
	struct tcp_series_key series;
	__u32 kind; /* COUNT_* */
	__u32 error;
};

/* Index into the per-CPU `losses` array: events that could not be recorded. */
enum tcp_loss {
	LOSS_DURATIONS_FULL = 0,
	LOSS_COUNTS_FULL = 1,
	LOSS_NO_SOCKET_STORAGE = 2,
	LOSS_MAX,
};

#endif
