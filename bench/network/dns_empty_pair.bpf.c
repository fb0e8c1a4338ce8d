// SPDX-License-Identifier: GPL-2.0
/* The floor for bench/network/dns.sh: an empty program on each tracepoint the dns receiver uses per packet. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("tp_btf/net_dev_queue")
int BPF_PROG(empty_sent, struct sk_buff *skb)
{
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(empty_received, struct sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
