#!/usr/bin/env bash
# What the tls receiver adds to every TLS handshake, against bpftrace's
# ssllatency.bt: a loopback loop of full handshakes, alternating between the
# probed libssl.so.3 and an unprobed copy, with each tracer attached in turn.
#
# usage: bash bench/network/tls.sh [--pairs N] [--handshakes N]   (as root; SKIP_SETUP=1 to skip scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >/dev/null

OUT=build/bench/network
mkdir -p "$OUT"
make -s -C bpf vmlinux.h ../build/bpf/tls.bpf.o
cc -O2 -Wall -Werror -o "$OUT/tls_handshake_loop" bench/network/tls_handshake_loop.c -lssl -lcrypto
exec node build/dev/bench/network/tls_bench.js "$@"
