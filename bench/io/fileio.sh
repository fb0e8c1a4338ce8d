#!/usr/bin/env bash
# What the fileio receiver adds to a 4 KiB pread from the page cache and to a
# syscall it ignores (getppid): bare, fileio alone, syscalls alone, both (one
# shared program pair), the empty raw-tracepoint pair (the floor) and an empty
# pair on pread64's own tracepoints (the floor of per-syscall tracepoints), several
# rounds. See bench/io/fileio_bench.ts.
#
# usage: bash bench/io/fileio.sh [--reps N] [--preads N] [--getppids N]   (as root; SKIP_SETUP=1 to skip scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >/dev/null

OUT=build/bench/io
mkdir -p "$OUT"
make -s -C bpf vmlinux.h ../build/bpf/syscalls.bpf.o
cc -O2 -Wall -Werror -o "$OUT/fileio_loop" bench/io/fileio_loop.c
cc -O2 -Wall -Werror -o "$OUT/blockio_stats" bench/io/blockio_stats.c
ARCH=$(uname -m | sed -e s/x86_64/x86/ -e s/aarch64/arm64/)
for floor in bench/syscalls/empty_pair.bpf.c bench/io/fileio_empty_tracepoints.bpf.c; do
  clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_"$ARCH" -I bpf -c "$floor" -o "$OUT/$(basename "$floor" .c).o"
done

# The file read: on the root filesystem (ext4 here), in the page cache after the loop's warm-up.
FILE=$(mktemp /var/tmp/fileio-bench-XXXXXX)
trap 'rm -f "$FILE"' EXIT
head -c 65536 /dev/urandom > "$FILE"
node build/dev/bench/io/fileio_bench.js --file "$FILE" "$@"
