// SPDX-License-Identifier: GPL-2.0
/*
 * syscalls.bpf.c for kernels without the bpf_rdonly_cast kfunc (before Linux
 * 6.2: Debian 12's 6.1): fields behind untyped kernel pointers are probe-read
 * rather than loaded directly. User space loads this object when the kernel
 * lacks the kfunc (receivers/common/kernel-requirements.ts).
 */
#define NO_BPF_RDONLY_CAST
#include "syscalls.bpf.c"
