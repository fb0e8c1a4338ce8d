/* Structs the tls receiver shares between tls.bpf.c and user space (receivers/tls/layout.ts). */
#ifndef EBPF_COLLECTOR_TLS_H
#define EBPF_COLLECTOR_TLS_H

#define TLS_COMM_LEN 16
/* An SNI host name is at most 255 bytes (RFC 6066); with its NUL. */
#define TLS_SERVER_NAME_LEN 256

/* SSL objects followed at once (handshakes in flight or finished but not yet judged, and named clients). */
#define MAX_HANDSHAKES 8192
/* Distinct series per interval; durations and failures by reason. */
#define MAX_DURATION_SERIES 4096
#define MAX_FAILURE_SERIES 4096

/*
 * tls_settings[0], written by user space before any probe is attached: what
 * to aggregate by, and where OpenSSL 3.0 keeps the handshake state in its SSL
 * struct, as read from the probed binaries' own accessor functions
 * (receivers/tls/openssl-layout.ts). Every attached binary has this layout.
 */
struct tls_config {
	__u32 aggregate;        /* AGGREGATE_* bits (task_labels.h): the series_key fields that are filled in */
	__u32 hand_state_offset; /* s->statem.hand_state (SSL_get_state) */
	__u32 in_init_offset;    /* s->statem.in_init (SSL_in_init) */
	__u32 flow_state_offset; /* s->statem.state (SSL_in_before) */
	__u32 server_offset;     /* s->server (SSL_is_server) */
	__u32 verify_result_offset; /* s->verify_result, a long (SSL_get_verify_result) */
};

/* OpenSSL 3.0's OSSL_HANDSHAKE_STATE and MSG_FLOW_STATE values this receiver reads. */
#define TLS_ST_BEFORE 0
#define TLS_ST_OK 1
#define MSG_FLOW_ERROR 1

/* SSL_ctrl commands and arguments (ssl.h, tls1.h). */
#define SSL_CTRL_SET_TLSEXT_HOSTNAME 55
#define TLSEXT_NAMETYPE_host_name 0
/* ERR_LIB_SSL (err.h): only the SSL library's reasons name a handshake failure. */
#define ERR_LIB_SSL 20

enum tls_side {
	SIDE_CLIENT = 0,
	SIDE_SERVER = 1,
};

/* durations: one series; fields not aggregated by are 0 */
struct series_key {
	__u64 cgroup_id;
	__u32 pid; /* tgid */
	__u32 side; /* enum tls_side */
	char comm[TLS_COMM_LEN];
	char server_name[TLS_SERVER_NAME_LEN]; /* "" without SNI */
};

/*
 * A failure reason: the class in the top byte, the code below it. SSL
 * reasons are OpenSSL's ERR_GET_REASON() values (sslerr.h), X509 ones the
 * verify result (x509_vfy.h).
 */
#define REASON_CLASS_SHIFT 24
enum tls_reason_class {
	REASON_SSL = 0,        /* the last ERR_LIB_SSL error raised in the failing call */
	REASON_X509 = 1,       /* finished with a failed verify result, and freed before any data came */
	REASON_INCOMPLETE = 2, /* freed before the handshake finished */
	REASON_UNKNOWN = 3,    /* the state machine failed without an SSL error code */
};

/* failures: failed handshakes of one series by reason */
struct failure_key {
	struct series_key series;
	__u32 reason;
	__u32 padding;
};

/* handshakes: by SSL object of a process */
struct ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 padding;
};

enum handshake_phase {
	PHASE_NAMED = 0,       /* SNI set, no handshake call yet */
	PHASE_HANDSHAKING = 1, /* started, not finished */
	PHASE_COMPLETED = 2,   /* finished, not yet judged: see tls.bpf.c */
};

struct handshake {
	struct series_key series; /* side is read when judged */
	__u64 start_ns;
	__u64 duration_ns; /* set when finished */
	__s64 verify_result; /* s->verify_result when it finished: X509_V_OK (0) or the X509_V_ERR_* */
	__u32 phase;
	__u32 padding;
};

/* thread_notes (task storage): what a thread is doing with a followed SSL object, for the call's return. */
struct thread_notes {
	__u64 call_ssl;       /* in a handshake or read call on this object; 0 when not */
	__u64 servername_ssl; /* in SSL_get_servername (inside a handshake call) on this object */
	__u32 reason;         /* the last ERR_LIB_SSL reason raised during the call, 0 for none */
	__u32 padding;
};

/* Index into the per-CPU `losses` array. */
enum tls_loss {
	LOSS_HANDSHAKES_FULL = 0,
	LOSS_DURATIONS_FULL = 1,
	LOSS_FAILURES_FULL = 2,
	LOSS_MAX,
};

#endif
