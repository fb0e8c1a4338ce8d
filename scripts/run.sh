#!/usr/bin/env bash
# Runs the collector (default: the bundled pipeline.yaml). Extra arguments go to the CLI,
# e.g. scripts/run.sh --config my-pipeline.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec bin/ebpf-collector "$@"
