#!/usr/bin/env bash
# Makes this clone ready to run and test: system packages, tracefs, npm modules,
# the BPF objects, the native addon and the TypeScript build. Idempotent: a
# second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: eBPF needs root (CAP_BPF, CAP_PERFMON); run as root" >&2
  exit 1
fi

# Build tools and libraries for the addon and BPF objects, then what tests and
# benchmarks run beside us: bpftool, perf and bpftrace as peers, Prometheus and
# promtool, go tool pprof, protoc, /usr/bin/time, rustc (a Rust binary to symbolize); for the network receivers'
# tests, a DNS server and clients (dnsmasq, dig), TLS peers and headers (openssl, curl, libssl-dev),
# network namespaces and a firewall to drop SYNs in them (iproute2, nftables), a FUSE file system
# that never answers, for the symbolizer's stalled-read test (libfuse3-dev), and QEMU with a static
# busybox to boot Debian's own kernels with the BPF objects (test/kernels: qemu-system-x86, busybox-static).
APT_PACKAGES=(clang llvm make gcc g++ python3 libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev pkg-config
  linux-perf bpftrace prometheus golang-go protobuf-compiler time rustc
  dnsmasq-base bind9-dnsutils openssl libssl-dev curl iproute2 nftables libfuse3-dev
  qemu-system-x86 busybox-static)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# Tracepoint attachment by category/name reads event ids from tracefs.
if [ ! -e /sys/kernel/tracing/events ]; then
  log "mounting tracefs"
  mount -t tracefs tracefs /sys/kernel/tracing
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm modules"
  npm ci --no-audit --no-fund >&2
fi

log "building BPF objects"
make -s -C bpf >&2

log "building test workloads"
make -s -C test/workloads >&2

# node-gyp fixes its source list when it configures: configure again when the gyp file or the sources change.
native_inputs="$(cat native/binding.gyp; ls native/src/*.cc)"
if [ ! -f native/build/Makefile ] || [ "$native_inputs" != "$(cat native/build/configured-inputs 2>/dev/null)" ]; then
  (cd native && npx --no-install node-gyp configure >&2)
  printf '%s' "$native_inputs" > native/build/configured-inputs
fi
log "building the native addon"
(cd native && npx --no-install node-gyp build >&2)

log "compiling TypeScript: the collector into dist/, its tests and benchmarks into build/dev/"
npx --no-install tsc -p tsconfig.json
npx --no-install tsc -p tsconfig.test.json
