#!/usr/bin/env bash
# What the dns receiver adds per DNS query, per getaddrinfo call (beside
# bpftrace's gethostlatency.bt) and per non-DNS packet (beside an empty
# tp_btf program pair on the same tracepoints), measured in one run in a
# network namespace of its own with dnsmasq. See bench/network/dns_bench.ts.
#
# usage: bash bench/network/dns.sh [--reps N] [--queries N] [--calls N] [--packets N]   (as root; SKIP_SETUP=1 to skip scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >/dev/null

OUT=build/bench/network
mkdir -p "$OUT"
make -s -C bpf vmlinux.h ../build/bpf/dns.bpf.o
cc -O2 -Wall -Werror -o "$OUT/dns_loops" bench/network/dns_loops.c
ARCH=$(uname -m | sed -e s/x86_64/x86/ -e s/aarch64/arm64/)
clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_"$ARCH" -I bpf -c bench/network/dns_empty_pair.bpf.c -o "$OUT/dns_empty_pair.bpf.o"
exec node build/dev/bench/network/dns_bench.js "$@"
