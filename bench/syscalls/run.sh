#!/usr/bin/env bash
# What the syscalls receiver adds to every syscall, against the floor (an empty
# raw-tracepoint pair) and a bpftrace latency histogram: a tight getppid loop
# timed with each attached in turn, several rounds. See bench/README.md.
#
# usage: bash bench/syscalls/run.sh [--reps N] [--calls N]   (as root; SKIP_SETUP=1 to skip scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >/dev/null

OUT=build/bench/syscalls
mkdir -p "$OUT"
make -s -C bpf vmlinux.h ../build/bpf/syscalls.bpf.o
cc -O2 -Wall -Werror -o "$OUT/getppid_loop" bench/syscalls/getppid_loop.c
ARCH=$(uname -m | sed -e s/x86_64/x86/ -e s/aarch64/arm64/)
clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_"$ARCH" -I bpf -c bench/syscalls/empty_pair.bpf.c -o "$OUT/empty_pair.bpf.o"
exec node build/dev/bench/syscalls/bench.js "$@"
