# Shell pieces bench/cpu/run.sh and bench/network/load.sh share. Source it from the project root once WORK
# (the run's scratch directory) exists: on exit it stops pids_to_stop, restores kernel.bpf_stats_enabled and removes WORK.

pids_to_stop=()
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  for pid in "${pids_to_stop[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled="$stats_before"
  rm -rf "$WORK"
}
trap cleanup EXIT

TICKS=$(getconf CLK_TCK)

# utime+stime of a process in seconds (fields 14 and 15 of /proc/PID/stat, counted after the ")" of comm).
cpu_seconds() {
  awk -v ticks="$TICKS" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / ticks }' "/proc/$1/stat"
}

# Summed run_time_ns of the given BPF program ids, in seconds (needs kernel.bpf_stats_enabled=1).
bpf_seconds() {
  bpftool prog show -j | python3 -c '
import json, sys
ids = {int(i) for i in sys.argv[1:]}
print("%.3f" % (sum(p.get("run_time_ns", 0) for p in json.load(sys.stdin) if p["id"] in ids) / 1e9))' "$@"
}

# New ids in $2 that were not in $1.
new_ids() { comm -13 <(tr ' ' '\n' <<<"$1" | sort) <(tr ' ' '\n' <<<"$2" | sort) | xargs; }
