#!/usr/bin/env bash
# The network receivers' benchmark in one run: the added cost per connect
# (tcp), per query, getaddrinfo call and packet (dns), per handshake (tls),
# each beside its bpftrace peer, then the collector's CPU per 10 s window
# under 1,000 connects/s and 200 queries/s. See bench/README.md.
#
# usage: bash bench/network/run.sh   (as root; SKIP_SETUP=1 to skip scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >/dev/null
for part in tcp dns tls load; do
  echo "== bench/network/$part.sh"
  SKIP_SETUP=1 bash "bench/network/$part.sh"
done
