#!/usr/bin/env bash
# Builds everything, then runs every test with node's test runner. Tests load
# real BPF programs and check the kernel's program list, so they run one file
# at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mapfile -t files < <(find build/dev -name "*.test.js" | sort)
exec node --test --test-concurrency=1 --test-reporter=spec "$@" "${files[@]}"
