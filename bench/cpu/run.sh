#!/usr/bin/env bash
# CPU profiling overhead: the collector (cpu receiver → symbolizer → pprof
# files, and parca_cpu_samples_total on its Prometheus endpoint) against
# `perf record -a -g` and a bpftrace profile one-liner, all at the same
# frequency, all running at once for the same window while every CPU spins.
# See bench/cpu/README.md.
#
# usage: bash bench/cpu/run.sh            (as root; INTERVAL=20 FREQUENCY=97 ROUNDS=1 SKIP_SETUP=1 to override)
set -euo pipefail
cd "$(dirname "$0")/../.."

# Several rounds: each is a whole run; the medians (and ranges) of their figures are checked.
if (( ${ROUNDS:-1} > 1 )); then
  [[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >/dev/null
  results=$(mktemp) round_output=$(mktemp)
  trap 'rm -f "$results" "$round_output"' EXIT
  for round in $(seq "$ROUNDS"); do
    echo "== round $round of $ROUNDS"
    # Not tee /dev/stderr: reopening stderr truncates it when it is a file, which lost the rounds' tables.
    ROUNDS=1 SKIP_SETUP=1 bash "$0" >"$round_output" 2>&1 || true
    cat "$round_output"
    sed -n 's/^summary: //p' "$round_output" >>"$results"
  done
  python3 - "$results" <<'EOF'
import json, statistics, sys
rounds = [json.loads(line) for line in open(sys.argv[1])]
if not rounds:
    sys.exit("no round finished")
def spread(key, unit, scale=1):
    values = [r[key] * scale for r in rounds]
    return f"median {statistics.median(values):.3f}{unit} (range {min(values):.3f}-{max(values):.3f})"
print(f"\n{len(rounds)} rounds of {rounds[0]['interval']:.0f} s at {rounds[0]['frequency']} Hz:")
print(f"  collector CPU (process + BPF):  {spread('collector_s', ' s')}, {spread('collector_share', '%', 100)} of the machine")
print(f"  perf record -g CPU:             {spread('perf_s', ' s')}")
print(f"  collector / perf record:        {spread('vs_perf', 'x')}")
print(f"  collector / perf record+script: {spread('vs_perf_script', 'x')}")
print(f"  bpftrace CPU (process + BPF):   {spread('bpftrace_s', ' s')}")
print(f"  collector peak RSS:             {spread('rss_mb', ' MB')}")
median = lambda key: statistics.median(r[key] for r in rounds)
checks = [
    ("median total overhead <= 1% of the machine", median("collector_share") <= 0.01),
    ("median no more than perf record's", median("vs_perf") <= 1),
    ("median peak RSS <= 100 MB", median("rss_mb") <= 100),
]
for what, ok in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {what}")
sys.exit(0 if all(ok for _, ok in checks) else 1)
EOF
  exit
fi

INTERVAL=${INTERVAL:-20}
FREQUENCY=${FREQUENCY:-97}
CPUS=$(nproc)
WORK=$(mktemp -d /tmp/ebpf-cpu-bench.XXXXXX)

[[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >"$WORK/setup.log" 2>&1 || { cat "$WORK/setup.log"; exit 1; }

source bench/common.sh

# Ids of the perf_event programs named $1 loaded now.
perf_event_progs() {
  bpftool prog show -j | python3 -c '
import json, sys
print(" ".join(str(p["id"]) for p in json.load(sys.stdin) if p["type"] == "perf_event" and p.get("name") == sys.argv[1]))' "$1"
}

# Waits for a line matching $2 in the file $1 written by process $3, or fails showing what it said.
await_line() {
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  echo "no \"$2\" from process $3:" >&2
  cat "$1" "${4:-/dev/null}" >&2
  exit 1
}

sysctl -qw kernel.bpf_stats_enabled=1

for _ in $(seq "$CPUS"); do
  sh -c 'while :; do :; done' &
  pids_to_stop+=($!)
done

# Programs are told apart by name, and from other users' by appearing as each profiler starts.
before=$(perf_event_progs sample)
cat >"$WORK/pipeline.yaml" <<YAML
receivers:
  cpu: { frequency_hz: $FREQUENCY, collection_interval: 10s }
processors:
  symbolizer: {}
connectors:
  profilemetrics: {}
exporters:
  pprof: { directory: $WORK/profiles }
  prometheus: { endpoint: "127.0.0.1:0" }
service:
  http: { endpoint: "127.0.0.1:0" }
  pipelines:
    profiles: { receivers: [cpu], processors: [symbolizer], exporters: [pprof, profilemetrics] }
    metrics: { receivers: [profilemetrics], exporters: [prometheus] }
YAML
receiver_launched=$(date +%s.%N)
bin/ebpf-collector run --config "$WORK/pipeline.yaml" >"$WORK/receiver.out" 2>"$WORK/receiver.err" &
receiver=$!
pids_to_stop+=("$receiver")
await_line "$WORK/receiver.err" '"collector running"' "$receiver"
# The first window pays one-off costs (reading kallsyms, opening binaries); the window measures the steady state after it.
started_at=$(date +%s.%N)
cpu_at_start=$(cpu_seconds "$receiver")
for _ in $(seq 300); do compgen -G "$WORK/profiles/*.pb.gz" >/dev/null && break; sleep 0.1; done
compgen -G "$WORK/profiles/*.pb.gz" >/dev/null || { echo "the collector wrote no profile" >&2; cat "$WORK/receiver.err" >&2; exit 1; }
first_window_cpu=$(awk "BEGIN { print $(cpu_seconds "$receiver") - $cpu_at_start }")
ours_progs=$(new_ids "$before" "$(perf_event_progs sample)")
[[ -n $ours_progs ]] || { echo "the receiver's BPF program is not loaded" >&2; exit 1; }

# bpftrace names a profile program after the last part of its probe.
before=$(perf_event_progs "$FREQUENCY")
bpftrace -e "profile:hz:$FREQUENCY { @[kstack, ustack] = count(); }" >"$WORK/bpftrace.out" 2>&1 &
bpftrace=$!
pids_to_stop+=("$bpftrace")
await_line "$WORK/bpftrace.out" '^Attaching' "$bpftrace"
bpftrace_progs=
for _ in $(seq 50); do
  bpftrace_progs=$(new_ids "$before" "$(perf_event_progs "$FREQUENCY")")
  [[ -n $bpftrace_progs ]] && break
  sleep 0.1
done
[[ -n $bpftrace_progs ]] || { echo "bpftrace's BPF program is not loaded" >&2; exit 1; }

# The window: everyone is sampling; perf record lives exactly this long (plus its own start and exit, which count).
receiver_cpu0=$(cpu_seconds "$receiver")
receiver_bpf0=$(bpf_seconds $ours_progs)
bpftrace_cpu0=$(cpu_seconds "$bpftrace")
bpftrace_bpf0=$(bpf_seconds $bpftrace_progs)
/usr/bin/time -f '%U %S' -o "$WORK/perf.time" perf record -q -F "$FREQUENCY" -a -g -o "$WORK/perf.data" -- sleep "$INTERVAL" 2>"$WORK/perf.err"
receiver_cpu=$(awk "BEGIN { print $(cpu_seconds "$receiver") - $receiver_cpu0 }")
receiver_bpf=$(awk "BEGIN { print $(bpf_seconds $ours_progs) - $receiver_bpf0 }")
bpftrace_cpu=$(awk "BEGIN { print $(cpu_seconds "$bpftrace") - $bpftrace_cpu0 }")
bpftrace_bpf=$(awk "BEGIN { print $(bpf_seconds $bpftrace_progs) - $bpftrace_bpf0 }")
receiver_rss_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$receiver/status")
# Resident memory now, split: anonymous (heap, native caches) and file-backed (mapped binaries, shared page cache).
receiver_rss_split=$(awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { printf "%.1f MB anonymous + %.1f MB file-backed", a / 1024, f / 1024 }' "/proc/$receiver/status")
perf_cpu=$(awk '{ print $1 + $2 }' "$WORK/perf.time")

kill -TERM "$receiver"
wait "$receiver" || true
receiver_seconds=$(awk "BEGIN { print $(date +%s.%N) - $receiver_launched }")
# bpftrace 0.17 now and then misses its SIGINT and waits forever; its figures are already taken.
kill -INT "$bpftrace"
for _ in $(seq 50); do kill -0 "$bpftrace" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$bpftrace" 2>/dev/null || true
wait "$bpftrace" || true
# perf record leaves raw addresses; perf script symbolizes its stacks, the part of the collector's job that perf defers.
/usr/bin/time -f '%U %S' -o "$WORK/perf-script.time" perf script -i "$WORK/perf.data" >/dev/null 2>"$WORK/perf-script.err"
perf_script_cpu=$(awk '{ print $1 + $2 }' "$WORK/perf-script.time")
# Samples and windows the collector wrote over its whole life (first window included), read back from its pprof files.
summary=$(python3 - "$WORK/profiles" <<'PY'
import gzip, json, os, sys
files = sorted(os.listdir(sys.argv[1]))
print(json.dumps({"batches": len(files), "bytes": sum(os.path.getsize(os.path.join(sys.argv[1], f)) for f in files)}))
PY
)
samples=$(for f in "$WORK"/profiles/*.pb.gz; do HOME=$WORK GOCACHE=$WORK/gocache go tool pprof -raw "$f" 2>/dev/null; done |
  awk '/^Samples:/ { on = 1; getline; next } /^Locations/ { on = 0 } on && /^ *[0-9]+ +[0-9]+:/ { n += $1 } END { print n + 0 }')

python3 - "$INTERVAL" "$CPUS" "$FREQUENCY" "$receiver_cpu" "$receiver_bpf" "$perf_cpu" "$bpftrace_cpu" "$bpftrace_bpf" "$receiver_rss_kb" "$summary" "$receiver_seconds" "$samples" "$first_window_cpu" "$receiver_rss_split" "$perf_script_cpu" <<'EOF'
import json, sys
interval, cpus, frequency = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
receiver_cpu, receiver_bpf, perf_cpu, bpftrace_cpu, bpftrace_bpf = map(float, sys.argv[4:9])
rss_mb = int(sys.argv[9]) / 1024
summary = json.loads(sys.argv[10])
receiver_seconds = float(sys.argv[11])
summary["samples"] = int(sys.argv[12])
first_window_cpu = float(sys.argv[13])
rss_split = sys.argv[14]
perf_and_script_cpu = perf_cpu + float(sys.argv[15])
available = interval * cpus
rows = [
    ("ebpf-collector", receiver_cpu, receiver_bpf),
    ("perf record -g", perf_cpu, None),
    ("perf record+script", perf_and_script_cpu, None),
    ("bpftrace profile", bpftrace_cpu, bpftrace_bpf),
]
perf_total = perf_cpu
print(f"{interval:.0f} s at {frequency} Hz on {cpus} busy CPUs: {available:.0f} CPU seconds available\n")
print(f"{'':18} {'process s':>10} {'BPF s':>8} {'total s':>8} {'share':>8} {'vs perf':>8}")
for name, process, bpf in rows:
    total = process + (bpf or 0)
    bpf_text = f"{bpf:8.3f}" if bpf is not None else f"{'n/a':>8}"
    print(f"{name:18} {process:10.3f} {bpf_text} {total:8.3f} {100 * total / available:7.3f}% {total / perf_total:7.2f}x")
ours = receiver_cpu + receiver_bpf
print(f"\ncollector CPU until its first window was written (one-off: kallsyms, opening binaries): {first_window_cpu:.2f} s")
print(f"collector peak RSS (VmHWM): {rss_mb:.1f} MB; resident at the end: {rss_split}")
print(f"collector samples in its pprof files: {summary['samples']} in {summary['batches']} windows over its {receiver_seconds:.1f} s "
      f"(at most {frequency * receiver_seconds * cpus:.0f}: every CPU busy at {frequency} Hz)")
checks = [
    ("total overhead <= 1% of the machine", ours <= 0.01 * available),
    ("no more than perf record's", ours <= perf_total),
    ("peak RSS <= 100 MB", rss_mb <= 100),
]
for what, ok in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {what}")
print("summary: " + json.dumps({
    "interval": interval, "frequency": frequency, "collector_s": ours, "collector_share": ours / available,
    "perf_s": perf_total, "vs_perf": ours / perf_total, "vs_perf_script": ours / perf_and_script_cpu, "bpftrace_s": bpftrace_cpu + bpftrace_bpf, "rss_mb": rss_mb,
}))
sys.exit(0 if all(ok for _, ok in checks) else 1)
EOF
