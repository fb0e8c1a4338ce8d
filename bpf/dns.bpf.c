// SPDX-License-Identifier: GPL-2.0
/*
 * DNS query latency and failures, from the wire for every client (dig, Go,
 * c-ares, glibc's resolver) and from glibc's getaddrinfo for the calls that
 * send those queries.
 *
 * Queries are taken where a socket hands them to a device (tp_btf
 * net_dev_queue: the sender's context, so cgroup, pid and comm are the
 * client's), responses where a device receives them (tp_btf
 * netif_receive_skb). Each packet is seen once in each direction, also on lo.
 * Both programs run for every packet on the machine, so the way to "not DNS"
 * is a few loads and compares: packet headers are read through
 * bpf_rdonly_cast (the verifier turns it into a move, and the loads into
 * fault-tolerant plain loads), no helper call. Only packets to or from the
 * DNS port are copied and parsed.
 *
 * A query waits in `in_flight` until its response (same client address and
 * port, server, transaction id, network namespace) arrives: the duration goes
 * into a histogram per (domain, cgroup [, pid, comm]) and an error rcode into
 * `failures`. User space expires unanswered queries (timeouts).
 *
 * getaddrinfo sends its A and AAAA queries from the calling thread while
 * inside the call: a uprobe marks the thread, its wire queries belong to the
 * call and are not counted on their own, and the uretprobe counts the call
 * once, with the call's duration and the first error among its answers.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latency_histogram.h"
#include "dns.h"
#include "loss_counter.h"
#include "map_insert.h"
#include "task_labels.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_UDP_NUMBER 17
#define EEXIST 17
#define UDP_HEADER_LEN 8
#define IP_FRAGMENT_OFFSET 0x1fff
#define IPV6_HEADER_LEN 40
/* DNS header flags (RFC 1035 4.1.1). */
#define DNS_FLAG_QR 0x8000
#define DNS_OPCODE_MASK 0x7800
#define DNS_OPCODE_SHIFT 11
#define DNS_OPCODE_QUERY 0
#define DNS_OPCODE_UNASSIGNED 3
#define DNS_OPCODE_LAST 6 /* DSO (RFC 8490); 7-15 are unassigned */
#define DNS_RCODE_MASK 0x000f
/* The two top bits of a length byte: 11 is a compression pointer, 01 and 10 are reserved. */
#define DNS_LABEL_TYPE_MASK 0xc0

#ifndef NO_BPF_RDONLY_CAST
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
/* Declares `name`, a view of the packet header of `type` at `address`: loads from the packet itself. */
#define PACKET_HEADER(type, name, address) type *name = bpf_rdonly_cast((void *)(address), bpf_core_type_id_kernel(type))
#else
/* Kernels without the bpf_rdonly_cast kfunc (before 6.2; dns_compat.bpf.c): a copy of the header, one probe read. */
#define PACKET_HEADER(type, name, address) \
	type name##_copy, *name = &name##_copy; \
	bpf_probe_read_kernel(name, sizeof(type), (void *)(address))
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_config);
} receiver_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IN_FLIGHT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dns_flow);
	__type(value, struct dns_query);
} in_flight SEC(".maps");

/* Shared, not per CPU: a series is updated with atomic adds, a few times per query. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dns_series);
	__type(value, struct latency_histogram);
} COUNTER_BANKS(histograms);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FAILURE_SERIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dns_failure_key);
	__type(value, __u64);
} COUNTER_BANKS(failures);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_RESOLVER_CALLS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct resolver_call);
} resolver_calls SEC(".maps");

/* Too large for the stack: one per CPU, for the packet programs (tracepoints: never preempted, one run at a time). */
struct dns_scratch {
	__u8 packet[DNS_PAYLOAD_MAX];
	struct dns_query query;
	struct dns_failure_key failure;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} scratch_space SEC(".maps");

/* What a new series starts from. */
static const struct latency_histogram empty_histogram;

/* A UDP packet: where its IP and UDP headers are. */
struct udp_packet {
	__u64 network; /* address of the IP header */
	__u64 udp;     /* address of the UDP header */
	__u16 ip_version;
};

/*
 * Finds the UDP header of an IPv4 or IPv6 packet (no IPv6 extension headers)
 * whose network header is at `network`, or returns 0. Loads only.
 */
static __always_inline __u64 udp_header(__u64 network, __be16 protocol, __u16 *ip_version)
{
	if (protocol == bpf_htons(ETH_P_IP)) {
		PACKET_HEADER(struct iphdr, ip, network);

		/* Later fragments of a datagram carry no UDP header. */
		if (ip->protocol != IPPROTO_UDP_NUMBER || ip->version != 4 || (ip->frag_off & bpf_htons(IP_FRAGMENT_OFFSET)))
			return 0;
		*ip_version = 4;
		return network + ip->ihl * 4;
	}
	if (protocol == bpf_htons(ETH_P_IPV6)) {
		PACKET_HEADER(struct ipv6hdr, ip, network);

		if (ip->nexthdr != IPPROTO_UDP_NUMBER)
			return 0;
		*ip_version = 6;
		return network + IPV6_HEADER_LEN;
	}
	return 0;
}

static __always_inline void copy_address(__u8 *to, const void *from, __u16 ip_version)
{
	if (ip_version == 4) {
		__builtin_memset(to, 0, 10);
		to[10] = 0xff;
		to[11] = 0xff;
		bpf_probe_read_kernel(to + 12, 4, from);
	} else {
		bpf_probe_read_kernel(to, 16, from);
	}
}

/*
 * The flow of a query as its client sent it (`to_server`) or of a response as
 * the client receives it.
 */
static __always_inline void fill_flow(struct dns_flow *flow, struct sk_buff *skb, struct udp_packet *packet, bool to_server)
{
	PACKET_HEADER(struct udphdr, udp, packet->udp);

	if (packet->ip_version == 4) {
		PACKET_HEADER(struct iphdr, ip, packet->network);

		copy_address(flow->client, to_server ? (void *)&ip->saddr : (void *)&ip->daddr, 4);
		copy_address(flow->server, to_server ? (void *)&ip->daddr : (void *)&ip->saddr, 4);
	} else {
		PACKET_HEADER(struct ipv6hdr, ip, packet->network);

		copy_address(flow->client, to_server ? (void *)&ip->saddr : (void *)&ip->daddr, 6);
		copy_address(flow->server, to_server ? (void *)&ip->daddr : (void *)&ip->saddr, 6);
	}
	flow->client_port = to_server ? udp->source : udp->dest;
	flow->netns = skb->dev->nd_net.net->ns.inum;
}

/*
 * Copies up to `wanted` bytes of the UDP payload into scratch->packet;
 * returns how many, or 0 (loss counted) when less than a DNS header was sent
 * or those bytes are not in the skb's linear data.
 */
static __always_inline __u32 copy_payload(struct sk_buff *skb, struct udp_packet *packet, struct dns_scratch *scratch, __u32 wanted)
{
	PACKET_HEADER(struct udphdr, udp, packet->udp);
	__u64 payload = packet->udp + UDP_HEADER_LEN;
	__u64 linear_end = (__u64)skb->head + skb->tail;
	__u32 length = bpf_ntohs(udp->len);

	if (length < UDP_HEADER_LEN + DNS_HEADER_LEN) {
		count_loss(LOSS_MALFORMED_PACKET);
		return 0;
	}
	length -= UDP_HEADER_LEN;
	if (length > wanted)
		length = wanted;
	if (payload + length > linear_end) {
		count_loss(LOSS_NOT_LINEAR);
		return 0;
	}
	barrier_var(length);
	if (length > DNS_PAYLOAD_MAX)
		return 0; /* cannot happen; tells the verifier the copy fits */
	if (bpf_probe_read_kernel(scratch->packet, length, (void *)payload))
		return 0;
	return length;
}

static __always_inline __u16 header_word(struct dns_scratch *scratch, __u32 offset)
{
	return ((__u16)scratch->packet[offset] << 8) | scratch->packet[offset + 1];
}

/* The walk over a question's name, one byte per bpf_loop step. */
struct name_walk {
	struct dns_scratch *scratch;
	__u32 length;     /* payload bytes in scratch->packet */
	__u32 next_label; /* offset in the name of the next length byte */
	__u32 name_length; /* set, with the final zero byte, when the name ends */
	__u32 malformed;
};

static long walk_name_byte(__u64 index, void *context)
{
	struct name_walk *walk = context;
	__u32 at = DNS_HEADER_LEN + (__u32)index;
	__u8 byte;

	if (at >= walk->length) {
		walk->malformed = 1; /* a label runs past the packet */
		return 1;
	}
	byte = walk->scratch->packet[at & (DNS_PAYLOAD_MAX - 1)];
	if (index == walk->next_label) {
		if (byte & DNS_LABEL_TYPE_MASK) {
			walk->malformed = 1; /* no compression pointers in a question */
			return 1;
		}
		walk->next_label = index + 1 + byte;
		if (byte == 0) {
			walk->name_length = index + 1;
			return 1;
		}
	} else if (byte >= 'A' && byte <= 'Z') {
		byte += 'a' - 'A'; /* length bytes are below 64, never letters */
	}
	walk->scratch->query.series.name[index & (DNS_NAME_LEN - 1)] = byte;
	return 0;
}

/* Parses a query's question name into scratch->query.series.name; false (loss counted) if malformed. */
static __always_inline bool parse_question(struct dns_scratch *scratch, __u32 length)
{
	struct name_walk walk = { .scratch = scratch, .length = length };

	__builtin_memset(scratch->query.series.name, 0, DNS_NAME_LEN);
	bpf_loop(DNS_NAME_LEN - 1, walk_name_byte, &walk, 0);
	/* no end within 255 bytes, or no room for qtype and qclass after it */
	if (walk.malformed || walk.name_length == 0 || DNS_HEADER_LEN + walk.name_length + 4 > length) {
		count_loss(LOSS_MALFORMED_PACKET);
		return false;
	}
	return true;
}

static __always_inline void record_duration(struct dns_series *series, __u64 ns)
{
	void *bank_histograms = BANK_MAP(histograms, current_bank(0));
	struct latency_histogram *histogram = bpf_map_lookup_elem(bank_histograms, series);
	__u32 index;

	if (!histogram) {
		histogram = insert_value(bank_histograms, series, &empty_histogram);
		if (!histogram) {
			count_loss(LOSS_HISTOGRAM_MAP_FULL);
			return;
		}
	}
	index = histogram_slot(ns);
	barrier_var(index);
	if (index >= HISTOGRAM_SLOTS)
		return; /* cannot happen; tells the verifier the index is in bounds */
	__sync_fetch_and_add(&histogram->slots[index], 1);
	__sync_fetch_and_add(&histogram->sum_ns, ns);
}

/* Counts a failure of failure->series with `reason`. */
static __always_inline void record_failure(struct dns_failure_key *failure, __u32 reason)
{
	failure->reason = reason;
	failure->padding = 0;
	if (!increment_count(BANK_MAP(failures, current_bank(0)), failure, true))
		count_loss(LOSS_FAILURE_MAP_FULL);
}

/* The labels of the current thread's series, as configured; the name is left as it is. */
static __always_inline void fill_series_labels(struct dns_series *series, __u32 aggregate)
{
	current_task_labels(aggregate, &series->cgroup_id, &series->pid, series->comm);
	series->padding = 0;
}

static __always_inline struct dns_scratch *scratch_area(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch_space, &zero);
}

/* A query leaving a socket: starts its wait in in_flight, owned by a getaddrinfo call of this thread if there is one. */
static __always_inline void handle_query(struct sk_buff *skb, struct udp_packet *packet, const struct dns_config *config)
{
	struct dns_scratch *scratch = scratch_area();
	struct resolver_call *call;
	struct dns_flow flow;
	__u32 length, tid;
	__u16 flags, opcode;

	if (!scratch)
		return;
	length = copy_payload(skb, packet, scratch, DNS_PAYLOAD_MAX); /* sent by a local socket: linear */
	if (length == 0)
		return;
	flags = header_word(scratch, 2);
	opcode = (flags & DNS_OPCODE_MASK) >> DNS_OPCODE_SHIFT;
	if (!(flags & DNS_FLAG_QR) && opcode != DNS_OPCODE_QUERY && opcode <= DNS_OPCODE_LAST && opcode != DNS_OPCODE_UNASSIGNED)
		return; /* an IQUERY, STATUS, NOTIFY, UPDATE or DSO request: DNS, but not a lookup */
	/*
	 * A response sent to the server port, an opcode nobody assigned, or a
	 * question count (qdcount) other than the one every query has.
	 */
	if ((flags & DNS_FLAG_QR) || opcode != DNS_OPCODE_QUERY || header_word(scratch, 4) != 1) {
		count_loss(LOSS_MALFORMED_PACKET);
		return;
	}
	if (!parse_question(scratch, length))
		return;

	fill_flow(&flow, skb, packet, true);
	flow.id = ((__u16)scratch->packet[1] << 8) | scratch->packet[0];
	fill_series_labels(&scratch->query.series, config->aggregate);
	scratch->query.start_ns = bpf_ktime_get_ns();
	tid = (__u32)bpf_get_current_pid_tgid();
	call = bpf_map_lookup_elem(&resolver_calls, &tid);
	scratch->query.resolver_tid = call ? tid : 0;
	scratch->query.padding = 0;
	/* A retransmission (same flow and id) keeps the first send's start. */
	long error = bpf_map_update_elem(&in_flight, &flow, &scratch->query, BPF_NOEXIST);
	if (error == -EEXIST)
		return;
	if (error) {
		count_loss(LOSS_IN_FLIGHT_MAP_FULL);
		return;
	}
	if (call) {
		/* Only the call's own thread sends its queries: plain updates. */
		if (call->sent == 0)
			__builtin_memcpy(call->name, scratch->query.series.name, DNS_NAME_LEN);
		call->sent++;
	}
}

/* A response arriving: ends the wait of the query it answers. */
static __always_inline void handle_response(struct sk_buff *skb, struct udp_packet *packet)
{
	struct dns_scratch *scratch = scratch_area();
	struct resolver_call *call;
	struct dns_query *query;
	struct dns_flow flow;
	__u32 rcode, resolver_tid;
	__u64 start_ns, now;

	if (!scratch)
		return;
	/* Only the header: a NIC may leave the rest of a large answer in page fragments. */
	if (copy_payload(skb, packet, scratch, DNS_HEADER_LEN) == 0)
		return;
	if (!(header_word(scratch, 2) & DNS_FLAG_QR))
		return; /* a query from the server's port */
	rcode = header_word(scratch, 2) & DNS_RCODE_MASK;
	fill_flow(&flow, skb, packet, false);
	flow.id = ((__u16)scratch->packet[1] << 8) | scratch->packet[0];
	query = bpf_map_lookup_elem(&in_flight, &flow);
	if (!query)
		return; /* not a query we saw leave, or answered already */
	now = bpf_ktime_get_ns();
	start_ns = query->start_ns;
	resolver_tid = query->resolver_tid;
	__builtin_memcpy(&scratch->failure.series, &query->series, sizeof(struct dns_series));
	/* Only the CPU whose delete succeeds counts it: a duplicate response, or user space expiring it, does not. */
	if (bpf_map_delete_elem(&in_flight, &flow))
		return;
	if (resolver_tid) {
		call = bpf_map_lookup_elem(&resolver_calls, &resolver_tid);
		if (!call)
			return; /* the call returned without waiting for it */
		__sync_fetch_and_add(&call->answered, 1);
		if (rcode && !call->rcode)
			call->rcode = rcode;
		return;
	}
	record_duration(&scratch->failure.series, now - start_ns);
	if (rcode)
		record_failure(&scratch->failure, rcode);
}

static __always_inline const struct dns_config *settings(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&receiver_settings, &zero);
}

/*
 * The settings, when the packet whose network header is at `network` is UDP
 * to the DNS port (`to_server`) or from it, with `packet` filled in; else 0.
 */
static __always_inline const struct dns_config *dns_packet(struct sk_buff *skb, __u64 network, struct udp_packet *packet, bool to_server)
{
	const struct dns_config *config;

	packet->network = network;
	packet->udp = udp_header(network, skb->protocol, &packet->ip_version);
	if (!packet->udp)
		return 0;
	config = settings();
	if (!config)
		return 0;
	PACKET_HEADER(struct udphdr, udp, packet->udp);
	return (to_server ? udp->dest : udp->source) == config->port ? config : 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(dns_query_sent, struct sk_buff *skb)
{
	const struct dns_config *config;
	struct udp_packet packet;
	struct sock *sk = skb->sk;

	/* Queries come from a local socket (forwarded packets have none); most sends are TCP. */
	if (!sk || sk->sk_protocol != IPPROTO_UDP_NUMBER)
		return 0;
	config = dns_packet(skb, (__u64)skb->head + skb->network_header, &packet, true);
	if (config)
		handle_query(skb, &packet, config);
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(dns_response_received, struct sk_buff *skb)
{
	struct udp_packet packet;

	/* The network header offset is only reset after this tracepoint; the data starts there already. */
	if (dns_packet(skb, (__u64)skb->data, &packet, false))
		handle_response(skb, &packet);
	return 0;
}

/*
 * The getaddrinfo programs keep their records on the stack, not in the
 * per-CPU scratch: uprobe programs run preemptible (only migration is
 * disabled), and another program on this CPU could overwrite it meanwhile.
 */
SEC("uprobe")
int BPF_KPROBE(resolver_call_enter)
{
	struct resolver_call call = { .start_ns = bpf_ktime_get_ns() };
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (bpf_map_update_elem(&resolver_calls, &tid, &call, BPF_ANY))
		count_loss(LOSS_RESOLVER_CALL_MAP_FULL);
	return 0;
}

/*
 * Counts a getaddrinfo call that went to the wire once: its duration (unless
 * its queries timed out) and, if it failed, why: the first error rcode of an
 * answer, else a timeout when queries went unanswered, else its EAI error.
 */
SEC("uretprobe")
int BPF_KRETPROBE(resolver_call_exit, int ret) /* libbpf 1.1 has no BPF_URETPROBE; the same registers */
{
	const struct dns_config *config = settings();
	struct dns_failure_key failure = {};
	struct resolver_call *call;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 sent, answered, rcode, reason = 0;
	__u64 start_ns;

	if (!config)
		return 0;
	call = bpf_map_lookup_elem(&resolver_calls, &tid);
	if (!call)
		return 0;
	start_ns = call->start_ns;
	sent = call->sent;
	answered = call->answered;
	rcode = call->rcode;
	__builtin_memcpy(failure.series.name, call->name, DNS_NAME_LEN);
	bpf_map_delete_elem(&resolver_calls, &tid);
	if (sent == 0)
		return 0; /* answered from the hosts file or a cache: not a DNS query */
	fill_series_labels(&failure.series, config->aggregate);
	/* A call that returned addresses succeeded, whatever one of its queries got (e.g. REFUSED for AAAA). */
	if (ret != 0 && rcode)
		reason = rcode;
	else if (ret != 0 && answered < sent)
		reason = REASON_TIMEOUT;
	else if (ret != 0)
		reason = REASON_EAI | ((__u32)-ret & 0xffff);
	if (reason != REASON_TIMEOUT)
		record_duration(&failure.series, bpf_ktime_get_ns() - start_ns);
	if (reason)
		record_failure(&failure, reason);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
