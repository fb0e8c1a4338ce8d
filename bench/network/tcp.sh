#!/usr/bin/env bash
# What the tcp receiver adds to every TCP connect+close, against bpftrace
# keeping a tcpconnlat-like histogram on the same tracepoint: a loopback
# connect loop timed with each attached in turn, several rounds.
#
# usage: bash bench/network/tcp.sh [--reps N] [--connects N]   (as root; SKIP_SETUP=1 to skip scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >/dev/null

OUT=build/bench/network
mkdir -p "$OUT"
make -s -C bpf vmlinux.h ../build/bpf/tcp.bpf.o
cc -O2 -Wall -Werror -o "$OUT/tcp_connect_loop" bench/network/tcp_connect_loop.c
exec node build/dev/bench/network/tcp_bench.js "$@"
