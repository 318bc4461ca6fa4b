#!/usr/bin/env bash
# `make bench`: every benchmark, written to docs/benchmarks.md (bench.py rewrites it, then
# policies.py adds its section). `--smoke` runs a tiny, unmeasured pass of both so
# `make test` keeps the harness from rotting.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 bench/bench.py "$@"
if [[ " $* " == *" --smoke "* ]]; then
    exec python3 bench/policies.py --smoke
fi
if [[ " $* " == *" --out "* || " $* " == *" --render "* ]]; then
    exit 0   # a private run or a re-render: the published policies section stays as it is
fi
exec python3 bench/policies.py --out docs/benchmarks-policies.json --md docs/benchmarks.md
