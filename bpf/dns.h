/* Structs the dns receiver shares between dns.bpf.c and user space (receivers/dns/layout.ts). */
#ifndef EBPF_COLLECTOR_DNS_H
#define EBPF_COLLECTOR_DNS_H

#define DNS_COMM_LEN 16
/* A name on the wire is at most 255 bytes, its final zero-length label included (RFC 1035 3.1). */
#define DNS_NAME_LEN 256
#define DNS_HEADER_LEN 12
/* Bytes of a DNS payload copied for parsing: the header, a maximal name, qtype and qclass fit. */
#define DNS_PAYLOAD_MAX 512

/* Queries sent and not yet answered (user space expires them after `timeout`). */
#define MAX_IN_FLIGHT 16384
/* Series per collection interval: (domain, cgroup [, pid, comm]) and those by failure reason. */
#define MAX_SERIES 8192
#define MAX_FAILURE_SERIES 8192
/* Threads inside getaddrinfo at once. */
#define MAX_RESOLVER_CALLS 4096

/* receiver_settings[0], written by user space before the programs attach. */
struct dns_config {
	__u16 port;      /* the DNS server port, network byte order */
	__u16 padding;
	__u32 aggregate; /* AGGREGATE_* bits (task_labels.h): the fields of dns_series that are filled in */
};

/* histograms: one series; fields not aggregated by are 0 */
struct dns_series {
	__u64 cgroup_id;
	__u32 pid; /* tgid */
	__u32 padding;
	char comm[DNS_COMM_LEN];
	__u8 name[DNS_NAME_LEN]; /* the question's name in wire format (length-prefixed labels), lower-cased, zero-padded */
};

/*
 * failures: answered queries with an error rcode and getaddrinfo errors
 * (timeouts of wire queries are counted by user space when it expires them).
 */
struct dns_failure_key {
	struct dns_series series;
	__u32 reason; /* an rcode (1-15), REASON_TIMEOUT, or REASON_EAI | -ret of getaddrinfo */
	__u32 padding;
};

#define REASON_TIMEOUT 0x10000
#define REASON_EAI 0x20000

/* in_flight key: one query on the wire, as its response identifies it. */
struct dns_flow {
	__u8 client[16]; /* IPv6, or IPv4-mapped IPv6 (::ffff:a.b.c.d) */
	__u8 server[16];
	__u32 netns;     /* inode number of the client's network namespace */
	__u16 client_port; /* network byte order */
	__u16 id;        /* the DNS transaction id, as on the wire */
};

/* in_flight value */
struct dns_query {
	struct dns_series series;
	__u64 start_ns;    /* bpf_ktime_get_ns() when the query was first sent */
	__u32 resolver_tid; /* the thread whose getaddrinfo call sent it (that call counts it), else 0 */
	__u32 padding;
};

/* resolver_calls (by thread id): a getaddrinfo call in progress and what it sent on the wire. */
struct resolver_call {
	__u64 start_ns;
	__u32 sent;     /* distinct wire queries */
	__u32 answered; /* of them, answered */
	__u32 rcode;    /* the first error rcode of an answer, 0 if none */
	__u32 padding;
	__u8 name[DNS_NAME_LEN]; /* the first wire query's name */
};

enum dns_loss {
	LOSS_MALFORMED_PACKET,
	LOSS_NOT_LINEAR,
	LOSS_IN_FLIGHT_MAP_FULL,
	LOSS_HISTOGRAM_MAP_FULL,
	LOSS_FAILURE_MAP_FULL,
	LOSS_RESOLVER_CALL_MAP_FULL,
	LOSS_MAX,
};

#endif
