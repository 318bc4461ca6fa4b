#!/usr/bin/env bash
# `make bench`: every benchmark, written to docs/benchmarks.md. `--smoke` runs a tiny,
# unmeasured pass so `make test` keeps the harness from rotting.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/bench.py "$@"
