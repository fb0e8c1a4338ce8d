#!/usr/bin/env bash
# The collector's CPU per 10 s window while the machine makes 1,000 TCP
# connects/s and 200 DNS queries/s on loopback, with the tcp, dns and tls
# receivers running: process time (user + system) plus the run time of its
# BPF programs (kernel.bpf_stats_enabled), over DURATION seconds after the
# first window. See bench/README.md.
#
# usage: bash bench/network/load.sh   (as root; SKIP_SETUP=1 to skip scripts/setup.sh; DURATION=60)
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-60}
CONNECTS_PER_SECOND=1000
QUERIES_PER_SECOND=200
WORK=$(mktemp -d /tmp/ebpf-network-load.XXXXXX)

[[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >"$WORK/setup.log" 2>&1 || { cat "$WORK/setup.log"; exit 1; }

source bench/common.sh
sysctl -qw kernel.bpf_stats_enabled=1

prog_ids() { bpftool prog show -j | python3 -c 'import json, sys; print(" ".join(str(p["id"]) for p in json.load(sys.stdin)))'; }

dns_port=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
/usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --conf-file=/dev/null --user=root --pid-file \
  --listen-address=127.0.0.1 --bind-interfaces --port="$dns_port" --address=/load.bench.test/10.1.2.3 2>"$WORK/dnsmasq.err" &
pids_to_stop+=($!)

before=$(prog_ids)
cat >"$WORK/pipeline.yaml" <<YAML
receivers:
  tcp: { collection_interval: 10s }
  dns: { collection_interval: 10s, port: $dns_port }
  tls: { collection_interval: 10s }
exporters:
  prometheus: { endpoint: "127.0.0.1:0" }
service:
  http: { endpoint: "127.0.0.1:0" }
  pipelines:
    metrics: { receivers: [tcp, dns, tls], exporters: [prometheus] }
YAML
bin/ebpf-collector run --config "$WORK/pipeline.yaml" >/dev/null 2>"$WORK/collector.err" &
collector=$!
pids_to_stop+=("$collector")
for _ in $(seq 300); do grep -q '"collector running"' "$WORK/collector.err" && break; kill -0 "$collector" || { cat "$WORK/collector.err"; exit 1; }; sleep 0.1; done
ours=$(new_ids "$before" "$(prog_ids)")

# Paced loops: each thread sleeps until its next slot, so the rates hold whatever one operation costs.
python3 - "$dns_port" "$CONNECTS_PER_SECOND" "$QUERIES_PER_SECOND" >"$WORK/load.out" 2>&1 <<'PY' &
import socket, struct, sys, threading, time
dns_port, connects, queries = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
listener = socket.socket()
listener.bind(('127.0.0.1', 0))
listener.listen(4096)
done = {'connects': 0, 'queries': 0}
def accept():
    while True:
        listener.accept()[0].close()
def paced(rate, step):
    period, next_at = 1.0 / rate, time.monotonic()
    while True:
        step()
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
def connect():
    socket.create_connection(listener.getsockname()).close()
    done['connects'] += 1
question = b'\x04load\x05bench\x04test\x00' + struct.pack('>HH', 1, 1)
resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
resolver.settimeout(1)
def query():
    resolver.sendto(struct.pack('>HHHHHH', done['queries'] & 0xffff, 0x0100, 1, 0, 0, 0) + question, ('127.0.0.1', dns_port))
    resolver.recvfrom(512)
    done['queries'] += 1
threading.Thread(target=accept, daemon=True).start()
threading.Thread(target=paced, args=(connects, connect), daemon=True).start()
threading.Thread(target=paced, args=(queries, query), daemon=True).start()
while True:
    time.sleep(10)
    print(done['connects'], done['queries'], flush=True)
PY
pids_to_stop+=($!)

# The first window pays one-off costs (loading, probing binaries); measure the steady state after it.
sleep 10
cpu0=$(cpu_seconds "$collector"); bpf0=$(bpf_seconds $ours); start=$(date +%s.%N)
sleep "$DURATION"
cpu1=$(cpu_seconds "$collector"); bpf1=$(bpf_seconds $ours); end=$(date +%s.%N)

python3 - "$cpu0" "$cpu1" "$bpf0" "$bpf1" "$start" "$end" "$(tail -1 "$WORK/load.out")" <<'PY'
import sys
cpu0, cpu1, bpf0, bpf1, start, end = map(float, sys.argv[1:7])
windows = (end - start) / 10
connects, queries = (int(n) for n in sys.argv[7].split())
print(f"load so far: {connects} connects, {queries} queries (target 1000/s and 200/s)")
print(f"| per 10 s window | process | BPF programs | total | share of one CPU |")
print(f"|---|---|---|---|---|")
process, bpf = (cpu1 - cpu0) / windows, (bpf1 - bpf0) / windows
print(f"| collector (tcp, dns, tls) | {process * 1000:.1f} ms | {bpf * 1000:.1f} ms | {(process + bpf) * 1000:.1f} ms | {(process + bpf) / 10 * 100:.2f}% |")
PY
