#!/usr/bin/env bash
# What one perf sample costs the CPU it interrupts, a cost that `perf record`'s
# own process time leaves out (see bench/README.md): a fixed amount of work
# pinned to one CPU runs bare, under `perf record -F FREQUENCY` and under
# `perf record -F FREQUENCY -g`; the slowdown divided by the samples taken is
# the cost per sample, and the difference between the two perf modes is the
# callchain walk. perf itself runs on another CPU.
#
# usage: bash bench/cpu/sampling-cost.sh   (as root; ROUNDS=15 FREQUENCY=10000 WORK_ROUNDS=3000 SKIP_SETUP=1 to override)
set -euo pipefail
cd "$(dirname "$0")/../.."

# scripts/setup.sh installs perf (linux-perf) on a fresh machine.
[[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >/dev/null

ROUNDS=${ROUNDS:-15}
FREQUENCY=${FREQUENCY:-10000}
WORK_ROUNDS=${WORK_ROUNDS:-3000}
(( $(nproc) >= 2 )) || { echo "needs 2 CPUs: one for the work, one for perf" >&2; exit 1; }
WORK_CPU=$(( $(nproc) - 1 ))
WORK=$(mktemp -d /tmp/ebpf-sampling-cost.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cc -O2 -Wall -Werror -fno-omit-frame-pointer -o "$WORK/fixed_work" bench/cpu/fixed_work.c
work_command=(taskset -c "$WORK_CPU" "$WORK/fixed_work" "$WORK_ROUNDS")

# Prints "seconds samples" for the work under perf record with the given extra flags.
run_under_perf() {
  local seconds samples
  seconds=$(taskset -c 0 perf record -q -F "$FREQUENCY" "$@" -o "$WORK/perf.data" -- "${work_command[@]}" 2>/dev/null)
  samples=$(perf report -i "$WORK/perf.data" --stats 2>/dev/null | awk '/SAMPLE events:/ { print $3; exit }')
  echo "$seconds $samples"
}

results=$WORK/results
for round in $(seq "$ROUNDS"); do
  bare=$("${work_command[@]}")
  read -r plain plain_samples < <(run_under_perf)
  read -r callchain callchain_samples < <(run_under_perf -g)
  echo "round $round: bare ${bare} s; perf record ${plain} s, ${plain_samples} samples; perf record -g ${callchain} s, ${callchain_samples} samples"
  echo "$bare $plain $plain_samples $callchain $callchain_samples" >>"$results"
done

python3 - "$results" "$FREQUENCY" <<'PY'
import statistics, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
per_sample = [(plain - bare) / n_plain * 1e6 for bare, plain, n_plain, _, _ in rows]
per_sample_g = [(chain - bare) / n_chain * 1e6 for bare, _, _, chain, n_chain in rows]
walk = [g - p for p, g in zip(per_sample, per_sample_g)]
def spread(values):
    return f"median {statistics.median(values):.1f} µs (range {min(values):.1f}-{max(values):.1f})"
print(f"\n{len(rows)} rounds at {sys.argv[2]} Hz, cost per sample to the interrupted CPU:")
print(f"  perf record (interrupt, sample, ring buffer): {spread(per_sample)}")
print(f"  perf record -g:                               {spread(per_sample_g)}")
print(f"  of which the callchain walk:                  {spread(walk)}")
PY
