// SPDX-License-Identifier: GPL-2.0
/*
 * TLS handshake latency and failures from uprobes on OpenSSL 3.0 (libssl.so.3
 * and binaries that embed it and export its symbols, such as node).
 *
 * Applications drive a handshake through SSL_do_handshake/SSL_connect/
 * SSL_accept or, as node and s_server do, through SSL_read/SSL_write, so the
 * handshake is followed by the SSL object's own state machine. It starts at
 * the first such call that finds the object in TLS_ST_BEFORE. It finished
 * when a call returns with in_init == 0 and hand_state == TLS_ST_OK: a
 * success then, unless the peer's certificate failed verification, in which
 * case it is a success once the application reads data and a failure if the
 * object is freed first (node refuses certificates so, after OpenSSL
 * finished). It failed when a call returns in MSG_FLOW_ERROR (reason: the
 * last SSL-library error raised during that call) or when the object is
 * freed before it finished. Durations of every handshake, and failures by
 * reason, go into per-CPU maps that user space drains each interval. Calls
 * on objects that are not handshaking cost a hash lookup and, for an object
 * not seen before, a read of its state.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latency_histogram.h"
#include "tls.h"
#include "loss_counter.h"
#include "map_insert.h"
#include "task_labels.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_config);
} tls_settings SEC(".maps");

/* LRU: an object a process never freed (it exited, or it was never handshaken) makes room for new ones. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_HANDSHAKES);
	__type(key, struct ssl_key);
	__type(value, struct handshake);
} handshakes SEC(".maps");

/* Per thread, freed with it: cheaper than a hash keyed by thread on every followed call. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_notes);
} thread_notes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_DURATION_SERIES);
	__type(key, struct series_key);
	__type(value, struct latency_histogram);
} COUNTER_BANKS(durations);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_FAILURE_SERIES);
	__type(key, struct failure_key);
	__type(value, __u64);
} COUNTER_BANKS(failures);

/* Zeroed values to insert from, and room to build a failure key: both too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct latency_histogram);
} empty_histogram SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct handshake);
} empty_handshake SEC(".maps");

static __always_inline struct tls_config *settings(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tls_settings, &zero);
}

/* An int field of the SSL object at `offset`; -1 when it cannot be read. */
static __always_inline int ssl_field(void *ssl, __u32 offset)
{
	int value = -1;

	bpf_probe_read_user(&value, sizeof(value), ssl + offset);
	return value;
}

static __always_inline struct handshake *create_handshake(const struct ssl_key *key)
{
	struct handshake *hs = insert_zeroed(&handshakes, key, &empty_handshake);

	if (!hs)
		count_loss(LOSS_HANDSHAKES_FULL);
	return hs;
}

static __always_inline struct latency_histogram *histogram_of(__u32 bank, const struct series_key *key)
{
	void *bank_durations = BANK_MAP(durations, bank);
	struct latency_histogram *histogram = bpf_map_lookup_elem(bank_durations, key);

	return histogram ? histogram : insert_zeroed(bank_durations, key, &empty_histogram);
}

static __always_inline void count_failure(__u32 bank, const struct series_key *series, __u32 reason)
{
	/* On the stack, not in a per-CPU scratch: uprobe programs run preemptible, and another on this CPU could overwrite it. */
	struct failure_key key = { .series = *series, .reason = reason };

	if (!increment_count(BANK_MAP(failures, bank), &key, true))
		count_loss(LOSS_FAILURES_FULL);
}

/*
 * Records a handshake that is over (failed when `failed`, with `reason`) and
 * forgets the object. Its side is read now: the state machine sets s->server
 * when the handshake starts, after the call that started our record.
 */
static __always_inline void judge(const struct tls_config *config, void *ssl, const struct ssl_key *key,
				  struct handshake *hs, bool failed, __u32 reason)
{
	struct latency_histogram *histogram;
	__u32 bank = current_bank(0);
	__u64 ns = hs->phase == PHASE_COMPLETED ? hs->duration_ns : bpf_ktime_get_ns() - hs->start_ns;

	hs->series.side = ssl_field(ssl, config->server_offset) > 0 ? SIDE_SERVER : SIDE_CLIENT;
	histogram = histogram_of(bank, &hs->series);
	if (histogram)
		histogram_record_atomic(histogram, ns); /* this CPU's value, but uprobe programs can be preempted */
	else
		count_loss(LOSS_DURATIONS_FULL);
	if (failed)
		count_failure(bank, &hs->series, reason);
	bpf_map_delete_elem(&handshakes, key);
}

/*
 * Entry of SSL_do_handshake, SSL_connect, SSL_accept, SSL_read(_ex) and
 * SSL_write(_ex): starts following an object found before its first
 * handshake, and notes the followed object for the return.
 */
SEC("uprobe")
int BPF_KPROBE(handshake_call_enter, void *ssl)
{
	struct ssl_key key = { .ssl = (__u64)ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct tls_config *config = settings();
	struct thread_notes *notes;
	struct handshake *hs;

	if (!config)
		return 0;
	hs = bpf_map_lookup_elem(&handshakes, &key);
	if (!hs || hs->phase == PHASE_NAMED) {
		/* Renegotiations and objects caught mid-handshake start elsewhere than TLS_ST_BEFORE. */
		if (ssl_field(ssl, config->hand_state_offset) != TLS_ST_BEFORE ||
		    ssl_field(ssl, config->flow_state_offset) == MSG_FLOW_ERROR)
			return 0;
		if (!hs)
			hs = create_handshake(&key);
		if (!hs)
			return 0;
		current_task_labels(config->aggregate, &hs->series.cgroup_id, &hs->series.pid, hs->series.comm);
		hs->start_ns = bpf_ktime_get_ns();
		hs->phase = PHASE_HANDSHAKING;
	}
	notes = bpf_task_storage_get(&thread_notes, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (notes) {
		notes->call_ssl = key.ssl;
		notes->reason = 0; /* the reason must come from this call */
	}
	return 0;
}

/*
 * Return of a followed call: the handshake finished or failed, or, after
 * it finished with a failed certificate verification, the peer's data came
 * in. A finished handshake whose verification passed (or was not asked for)
 * is a success at once. One that failed verification is a success once the
 * application reads data (it chose to go on, as curl -k does), and a
 * failure when the object is freed before that: node finishes the
 * handshake, even sends its queued request, then refuses the certificate in
 * JavaScript and frees the object.
 */
static __always_inline void call_returned(int ret, bool reads)
{
	struct ssl_key key = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct tls_config *config = settings();
	struct thread_notes *notes;
	struct handshake *hs;
	void *object;

	notes = bpf_task_storage_get(&thread_notes, bpf_get_current_task_btf(), 0, 0);
	if (!notes || !notes->call_ssl || !config)
		return;
	key.ssl = notes->call_ssl;
	object = (void *)key.ssl;
	notes->call_ssl = 0;
	hs = bpf_map_lookup_elem(&handshakes, &key);
	if (!hs)
		return;
	if (hs->phase == PHASE_COMPLETED) {
		if (reads && ret > 0)
			judge(config, object, &key, hs, false, 0);
		return;
	}
	if (ssl_field(object, config->in_init_offset) == 0 && ssl_field(object, config->hand_state_offset) == TLS_ST_OK) {
		hs->duration_ns = bpf_ktime_get_ns() - hs->start_ns;
		hs->phase = PHASE_COMPLETED;
		hs->verify_result = -1;
		bpf_probe_read_user(&hs->verify_result, sizeof(hs->verify_result), object + config->verify_result_offset);
		if (hs->verify_result == 0)
			judge(config, object, &key, hs, false, 0);
	} else if (ssl_field(object, config->flow_state_offset) == MSG_FLOW_ERROR) {
		judge(config, object, &key, hs, true, notes->reason ? notes->reason : REASON_UNKNOWN << REASON_CLASS_SHIFT);
	}
}

SEC("uretprobe")
int BPF_KRETPROBE(handshake_call_exit, long ret)
{
	call_returned(ret, false);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(read_call_exit, long ret)
{
	call_returned(ret, true);
	return 0;
}

/* SSL_free: an object freed before its handshake finished, or after it failed verification and before any data came, failed. */
SEC("uprobe")
int BPF_KPROBE(ssl_free, void *ssl)
{
	struct ssl_key key = { .ssl = (__u64)ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct tls_config *config = settings();
	struct handshake *hs;

	hs = bpf_map_lookup_elem(&handshakes, &key);
	if (!hs || !config)
		return 0;
	if (hs->phase == PHASE_HANDSHAKING)
		judge(config, ssl, &key, hs, true, REASON_INCOMPLETE << REASON_CLASS_SHIFT);
	else if (hs->phase == PHASE_COMPLETED)
		judge(config, ssl, &key, hs, true, (REASON_X509 << REASON_CLASS_SHIFT) | ((__u32)hs->verify_result & 0xffffff));
	else
		bpf_map_delete_elem(&handshakes, &key);
	return 0;
}

/* SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name): a client's SNI. */
SEC("uprobe")
int BPF_KPROBE(ssl_ctrl, void *ssl, int cmd, long larg, const char *name)
{
	struct ssl_key key = { .ssl = (__u64)ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct handshake *hs;

	if (cmd != SSL_CTRL_SET_TLSEXT_HOSTNAME || larg != TLSEXT_NAMETYPE_host_name)
		return 0;
	hs = bpf_map_lookup_elem(&handshakes, &key);
	if (!hs && name)
		hs = create_handshake(&key);
	if (!hs)
		return 0;
	hs->series.server_name[0] = 0;
	if (name)
		bpf_probe_read_user_str(hs->series.server_name, sizeof(hs->series.server_name), name);
	return 0;
}

/* SSL_get_servername: a server learns the client's SNI when its servername callback asks. */
SEC("uprobe")
int BPF_KPROBE(servername_enter, void *ssl)
{
	struct ssl_key key = { .ssl = (__u64)ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct thread_notes *notes;

	if (!bpf_map_lookup_elem(&handshakes, &key))
		return 0;
	notes = bpf_task_storage_get(&thread_notes, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (notes)
		notes->servername_ssl = key.ssl;
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(servername_exit, const char *name)
{
	struct ssl_key key = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct thread_notes *notes;
	struct handshake *hs;

	notes = bpf_task_storage_get(&thread_notes, bpf_get_current_task_btf(), 0, 0);
	if (!notes || !notes->servername_ssl)
		return 0;
	key.ssl = notes->servername_ssl;
	notes->servername_ssl = 0;
	hs = bpf_map_lookup_elem(&handshakes, &key);
	if (hs && name && !hs->series.server_name[0])
		bpf_probe_read_user_str(hs->series.server_name, sizeof(hs->series.server_name), name);
	return 0;
}

/* ERR_set_error / ERR_vset_error(lib, reason, ...) as the SSL code calls them: the reason of a followed call's error. */
SEC("uprobe")
int BPF_KPROBE(error_raised, int lib, int reason)
{
	struct thread_notes *notes;

	if (lib != ERR_LIB_SSL)
		return 0;
	notes = bpf_task_storage_get(&thread_notes, bpf_get_current_task_btf(), 0, 0);
	if (notes && notes->call_ssl)
		notes->reason = reason & 0xffffff;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
