// SPDX-License-Identifier: GPL-2.0
/*
 * dns.bpf.c for kernels without the bpf_rdonly_cast kfunc (before Linux 6.2:
 * Debian 12's 6.1): packet headers are copied with a probe read rather than
 * loaded in place. User space loads this object when the kernel lacks the
 * kfunc (receivers/common/kernel-requirements.ts).
 */
#define NO_BPF_RDONLY_CAST
#include "dns.bpf.c"
