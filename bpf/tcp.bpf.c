// SPDX-License-Identifier: GPL-2.0
/*
 * TCP connect latency, failed connects by errno, retransmits and resets
 * received, by destination, from tracepoints only.
 *
 * inet_sock_set_state CLOSE -> SYN_SENT runs inside connect() in the
 * connecting thread: its cgroup, pid and comm go into the socket's storage
 * with the start time, so that SYN_SENT -> ESTABLISHED (in softirq) and
 * SYN_SENT -> CLOSE (sk_err says why) are attributed to the connecting
 * process, not to whatever the softirq interrupted. Socket storage is freed
 * with the socket, so connects that never finish cannot pile up.
 *
 * A connect() that fails before any SYN (no route, no local port) never
 * reaches SYN_SENT: sys_exit_connect counts the returned errno for the
 * destination the caller passed, unless the call only reports a failure the
 * state machine already counted (a blocking connect's ECONNREFUSED, or a
 * non-blocking client calling connect() again). Only failed calls do more
 * than compare the return value, and no other syscall runs a program.
 *
 * Retransmits and resets happen in softirq: they are attributed through the
 * socket's storage when we saw it connect, else to the socket's cgroup.
 * Everything is aggregated in per-CPU maps that user space drains.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latency_histogram.h"
#include "tcp.h"
#include "cgroup_filter.h"
#include "loss_counter.h"
#include "map_insert.h"
#include "process_filter.h"
#include "task_labels.h"

/* Only connects by these processes, when their filter is on (tcp_config.filters). */
PROCESS_FILTER_MAPS();

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* errnos of connect() that are no failure, or say nothing of the destination (include/uapi/asm-generic/errno*.h). */
#define EINTR 4
#define EBADF 9
#define EAGAIN 11
#define ENOTSOCK 88
#define EALREADY 114
#define EINPROGRESS 115
#define EISCONN 106
/* 512 and up are the kernel's internal restart codes: the call is interrupted, not failed. */
#define ERESTARTSYS 512

/* The connecting process, kept in the socket's storage. */
struct connection {
	__u64 start_ns; /* at SYN_SENT; 0 once the connect finished */
	__u64 cgroup_id;
	__u32 pid;
	char comm[TCP_COMM_LEN];
};

/* The syscalls:sys_exit_connect record (its format file). */
struct connect_exit {
	__u64 common;
	__s32 nr;
	__u32 padding;
	__s64 ret;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcp_config);
} receiver_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct connection);
} connections SEC(".maps");

/*
 * Sockets whose failure the state machine counted, with their sk_disconnects
 * then: connect() reporting that failure (a blocking connect, or a
 * non-blocking client calling connect() again) must not count it again.
 * Sockets often never call connect() again, so the oldest are forgotten.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_COUNTED_FAILURES);
	__type(key, __u64);
	__type(value, __s32);
} counted_failures SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_DURATION_SERIES);
	__type(key, struct tcp_series_key);
	__type(value, struct latency_histogram);
} COUNTER_BANKS(durations);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_COUNT_SERIES);
	__type(key, struct tcp_count_key);
	__type(value, __u64);
} COUNTER_BANKS(counts);

/* An all-zero histogram to insert new series from: it is too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct latency_histogram);
} empty_histogram SEC(".maps");

static __always_inline struct tcp_config *settings(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&receiver_settings, &zero);
}

/* The series of `owner` (the fields aggregated by) to the socket's destination. */
static __always_inline void series_key(struct tcp_series_key *key, const struct connection *owner, __u32 aggregate)
{
	if (aggregate & AGGREGATE_CGROUP)
		key->cgroup_id = owner->cgroup_id;
	if (aggregate & AGGREGATE_PID)
		key->pid = owner->pid;
	if (aggregate & AGGREGATE_COMM)
		__builtin_memcpy(key->comm, owner->comm, sizeof(key->comm));
}

/* Direct reads: the socket comes from a tp_btf argument. */
static __always_inline void set_destination(struct tcp_series_key *key, const struct sock *sk)
{
	__u32 *daddr = (__u32 *)key->daddr;

	key->family = sk->__sk_common.skc_family;
	if (key->family == AF_INET) {
		daddr[0] = sk->__sk_common.skc_daddr;
		return;
	}
	daddr[0] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0];
	daddr[1] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1];
	daddr[2] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2];
	daddr[3] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
}

static __always_inline void add_count(struct tcp_count_key *key)
{
	if (!increment_count(BANK_MAP(counts, current_bank(0)), key, false))
		count_loss(LOSS_COUNTS_FULL);
}

static __always_inline void add_duration(const struct tcp_series_key *key, __u64 ns)
{
	void *bank_durations = BANK_MAP(durations, current_bank(0));
	struct latency_histogram *histogram = bpf_map_lookup_elem(bank_durations, key);

	if (!histogram)
		histogram = insert_zeroed(bank_durations, key, &empty_histogram);
	if (!histogram) {
		count_loss(LOSS_DURATIONS_FULL);
		return;
	}
	/* This CPU's value, in a tracepoint: nothing else adds to it meanwhile. */
	histogram_record(histogram, ns);
}

/* In connect(), in the connecting thread: who connects, and since when. */
static __always_inline void connect_started(const struct sock *sk, struct tcp_config *config)
{
	struct connection *connection;

	if (config->filters && !process_selected(config->filters, &filter_pids, &filter_comms, &filter_cgroups))
		return;
	connection = bpf_sk_storage_get(&connections, (void *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!connection) {
		count_loss(LOSS_NO_SOCKET_STORAGE);
		return;
	}
	current_task_labels(config->aggregate, &connection->cgroup_id, &connection->pid, connection->comm);
	connection->start_ns = bpf_ktime_get_ns();
}

static __always_inline void connect_finished(const struct sock *sk, struct connection *connection, struct tcp_config *config)
{
	struct tcp_series_key key = {};
	__u64 ns = bpf_ktime_get_ns() - connection->start_ns;

	connection->start_ns = 0;
	series_key(&key, connection, config->aggregate);
	set_destination(&key, sk);
	add_duration(&key, ns);
}

static __always_inline void connect_failed(const struct sock *sk, struct connection *connection, struct tcp_config *config)
{
	struct tcp_count_key key = { .kind = COUNT_CONNECT_FAILURE };
	__u64 socket = (__u64)sk;
	__s32 disconnects;

	connection->start_ns = 0;
	key.error = sk->sk_err;
	/*
	 * No error on the socket: connect() gave up after SYN_SENT (e.g. no free
	 * local port) and connect_exit counts its return value, or the socket was
	 * closed while connecting, which is no failure of the destination.
	 */
	if (!key.error)
		return;
	series_key(&key.series, connection, config->aggregate);
	set_destination(&key.series, sk);
	add_count(&key);
	disconnects = sk->sk_disconnects;
	bpf_map_update_elem(&counted_failures, &socket, &disconnects, BPF_ANY);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_state_change, const struct sock *sk, int oldstate, int newstate)
{
	struct connection *connection;
	struct tcp_config *config;

	/* Most changes are of connections long made (or accepted): they return first. */
	if (oldstate != TCP_SYN_SENT && (oldstate != TCP_CLOSE || newstate != TCP_SYN_SENT))
		return 0;
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	config = settings();
	if (!config)
		return 0;
	if (newstate == TCP_SYN_SENT) {
		connect_started(sk, config);
		return 0;
	}
	connection = bpf_sk_storage_get(&connections, (void *)sk, 0, 0);
	if (!connection || !connection->start_ns)
		return 0; /* filtered out, or connecting since before we attached */
	if (newstate == TCP_ESTABLISHED)
		connect_finished(sk, connection, config);
	else if (newstate == TCP_CLOSE)
		connect_failed(sk, connection, config);
	return 0;
}

/* Counts a softirq event of the socket: for the process that connected it, or else for the socket's cgroup. */
static __always_inline void count_socket_event(const struct sock *sk, __u32 kind)
{
	struct tcp_count_key key = { .kind = kind };
	struct connection *connection;
	struct tcp_config *config = settings();

	if (!config)
		return;
	connection = bpf_sk_storage_get(&connections, (void *)sk, 0, 0);
	if (connection)
		series_key(&key.series, connection, config->aggregate);
	else if (config->filters)
		return; /* not connected by a selected process */
	else if (config->aggregate & AGGREGATE_CGROUP)
		key.series.cgroup_id = sk->sk_cgrp_data.cgroup->kn->id;
	set_destination(&key.series, sk);
	add_count(&key);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	/*
	 * Kernels whose event has an `err` field (newer than 6.1) also fire it for a
	 * retransmit that failed (nothing was sent again), with the error as a
	 * third argument; older ones (6.1) fire only for sent ones and refuse a
	 * program that reads a third argument, which this branch never reaches there.
	 */
	if (bpf_core_field_exists(struct trace_event_raw_tcp_retransmit_skb, err) && ctx[2] != 0)
		return 0;
	count_socket_event(sk, COUNT_RETRANSMIT);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_reset_received, struct sock *sk)
{
	count_socket_event(sk, COUNT_RESET_RECEIVED);
	return 0;
}

/* The TCP socket at `fd` of the current process, or 0 (connect() may have failed before it knew it was a socket). */
static __always_inline struct sock *tcp_socket_at(__u32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file **fds, *file;
	struct socket *socket;
	struct sock *sk;

	if (fd >= BPF_CORE_READ(task, files, fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	socket = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(socket, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP || BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return 0;
	return sk;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int connect_exit(struct connect_exit *ctx)
{
	struct tcp_count_key key = { .kind = COUNT_CONNECT_FAILURE };
	struct sockaddr_in6 address = {};
	struct connection owner = {};
	struct tcp_config *config;
	long error = -ctx->ret;
	struct pt_regs *regs;
	__s32 *disconnects;
	void *address_in;
	__u32 length;
	struct sock *sk;
	__u64 socket;

	if (error <= 0 || error >= ERESTARTSYS)
		return 0;
	switch (error) {
	case EINPROGRESS:
	case EALREADY:
	case EAGAIN:
	case EISCONN:
	case EINTR:
	case EBADF:
	case ENOTSOCK:
		return 0;
	}
	config = settings();
	if (!config || (config->filters && !process_selected(config->filters, &filter_pids, &filter_comms, &filter_cgroups)))
		return 0;
	/* Only failures get here: the call's arguments are still in the caller's saved registers. */
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	sk = tcp_socket_at(PT_REGS_PARM1_CORE_SYSCALL(regs));
	if (!sk)
		return 0;
	/* Reporting a failure after SYN_SENT -> CLOSE disconnects the socket once (sock_error in __inet_stream_connect). */
	socket = (__u64)sk;
	disconnects = bpf_map_lookup_elem(&counted_failures, &socket);
	if (disconnects && BPF_CORE_READ(sk, sk_disconnects) == *disconnects + 1) {
		bpf_map_delete_elem(&counted_failures, &socket);
		return 0;
	}
	/* A sockaddr_in6 if the caller passed that much, else a sockaddr_in: reading past its buffer could fail. */
	length = PT_REGS_PARM3_CORE_SYSCALL(regs);
	address_in = (void *)PT_REGS_PARM2_CORE_SYSCALL(regs);
	if (length >= sizeof(address)) {
		if (bpf_probe_read_user(&address, sizeof(address), address_in))
			return 0;
	} else if (length < sizeof(struct sockaddr_in) || bpf_probe_read_user(&address, sizeof(struct sockaddr_in), address_in)) {
		return 0;
	}
	if (address.sin6_family == AF_INET)
		__builtin_memcpy(key.series.daddr, &((struct sockaddr_in *)&address)->sin_addr, 4);
	else if (address.sin6_family == AF_INET6)
		__builtin_memcpy(key.series.daddr, &address.sin6_addr, sizeof(key.series.daddr));
	else
		return 0; /* AF_UNSPEC disconnects, and other families fail elsewhere */
	key.series.family = address.sin6_family;
	key.error = error;
	current_task_labels(config->aggregate, &owner.cgroup_id, &owner.pid, owner.comm);
	series_key(&key.series, &owner, config->aggregate);
	add_count(&key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
