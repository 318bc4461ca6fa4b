#!/usr/bin/env bash
# `make bench`: every benchmark, written to docs/benchmarks.md (bench.py rewrites it, then
# policies.py, kube.py, stream.py, peers.py, tls.py, coldstart.py and instructions.py add their
# sections). `--smoke` runs a tiny, unmeasured pass of all of them so `make test` keeps the
# harness from rotting.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 bench/bench.py "$@"
if [[ " $* " == *" --smoke "* ]]; then
    python3 bench/policies.py --smoke
    python3 bench/kube.py --smoke
    python3 bench/stream.py --smoke
    python3 bench/peers.py --smoke       # HAProxy and Caddy beside static nginx and the edges
    python3 bench/tls.py --smoke         # HTTPS and HTTP/2 vs static nginx
    python3 bench/coldstart.py --smoke   # cold start of many routes, the prober at scale
    python3 bench/many_edges.py --smoke  # many edges on one Redis (docs/scaling.md)
    exec python3 bench/instructions.py --smoke
fi
if [[ " $* " == *" --out "* || " $* " == *" --render "* ]]; then
    exit 0   # a private run or a re-render: the published sections stay as they are
fi
python3 bench/policies.py --out docs/benchmarks-policies.json --md docs/benchmarks.md
python3 bench/kube.py --out docs/benchmarks-kube.json --md docs/benchmarks.md
python3 bench/stream.py --json docs/benchmarks-stream.json --md docs/benchmarks.md
python3 bench/peers.py --json docs/benchmarks-peers.json --md docs/benchmarks.md
python3 bench/tls.py --json docs/benchmarks-tls.json --md docs/benchmarks.md
python3 bench/coldstart.py --json docs/benchmarks-coldstart.json --md docs/benchmarks.md
exec python3 bench/instructions.py --out docs/benchmarks-instructions.json --md docs/benchmarks.md
