#!/usr/bin/env bash
# The soak (issue 19): the default pipeline plus OTLP export for an hour beside 200 execs/s of
# short-lived processes and a CPU-bound workload, the OTLP endpoint down for 10 of the 60 minutes.
# Prints a per-minute table and PASS/FAIL lines; writes samples.json, summary.json, table.md and
# soak.png (matplotlib) into OUT. See bench/README.md.
#
# usage: bash bench/soak/run.sh   (as root; MINUTES=60 OUTAGE_START=20 OUTAGE_MINUTES=10 EXEC_RATE=200 WARMUP_MINUTES=5
#                                  OUT=bench/soak/results SKIP_SETUP=1 to override)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench/soak/results}
[[ ${SKIP_SETUP:-0} == 1 ]] || bash scripts/setup.sh >/dev/null
# Debian's python, where apt's matplotlib lands (another python3 may come first on PATH).
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-matplotlib >/dev/null
mkdir -p build/soak "$OUT"
cc -O2 -Wall -Werror -o build/soak/exec_churn bench/soak/exec_churn.c
# Built with frame pointers, like the CPU benchmark's workload, so its stacks are whole.
cc -O2 -fno-omit-frame-pointer -Wall -Werror -o build/soak/fixed_work bench/cpu/fixed_work.c
status=0
node build/dev/bench/soak/soak.js --out "$OUT" --minutes "${MINUTES:-60}" --outage-start "${OUTAGE_START:-20}" \
  --outage-minutes "${OUTAGE_MINUTES:-10}" --exec-rate "${EXEC_RATE:-200}" --warmup-minutes "${WARMUP_MINUTES:-5}" || status=$?
/usr/bin/python3 bench/soak/plot.py "$OUT"
exit "$status"
