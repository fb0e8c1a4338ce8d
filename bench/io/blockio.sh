#!/usr/bin/env bash
# What the blockio receiver adds to every block request, beside a bpftrace
# biolatency-style one-liner: synchronous O_DIRECT 4 KiB writes to a loop
# device over a tmpfs file, timed bare, with the receiver and with bpftrace,
# several rounds. See bench/io/blockio_bench.ts.
#
# usage: bash bench/io/blockio.sh [--reps N] [--requests N]   (as root; SKIP_SETUP=1 to skip scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >/dev/null

OUT=build/bench/io
mkdir -p "$OUT"
make -s -C bpf vmlinux.h ../build/bpf/blockio.bpf.o
cc -O2 -Wall -Werror -o "$OUT/blockio_write" bench/io/blockio_write.c
cc -O2 -Wall -Werror -o "$OUT/blockio_stats" bench/io/blockio_stats.c

BACKING=$(mktemp -d /tmp/blockio-bench-XXXXXX)
LOOP=
cleanup() {
  [[ -z $LOOP ]] || losetup -d "$LOOP"
  umount "$BACKING" 2>/dev/null || true
  rmdir "$BACKING"
}
trap cleanup EXIT
mount -t tmpfs -o size=32m tmpfs "$BACKING"
truncate -s 16M "$BACKING/image"
LOOP=$(losetup -f --show "$BACKING/image")
node build/dev/bench/io/blockio_bench.js --device "$LOOP" "$@"
