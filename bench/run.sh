#!/usr/bin/env bash
# make bench: builds (Release), starts the local stack, runs every benchmark and writes
# one JSON file per run to bench/results/<date>.json with each benchmark's figures.
# Figures are measured against a baseline in the same run (ratios), never asserted.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j "$(nproc)" >/dev/null
bash deploy/local/stack.sh up
# shellcheck source=/dev/null
source deploy/local/env
build-release/bin/sbctl migrate >/dev/null
build-release/bin/sbctl topics create >/dev/null
mkdir -p bench/results
day="$(date +%Y-%m-%d)"
parts=()
for b in tests/bench/*/run.sh; do
    name="$(basename "$(dirname "$b")")"
    echo "== benchmark: $name"
    SB_BIN_DIR="$root/build-release/bin" SB_BENCH_OUT="$root/bench/results/$name-$day.json" bash "$b"
    parts+=("bench/results/$name-$day.json")
done
python3 - "bench/results/$day.json" "${parts[@]}" <<'PY'
import json, sys
out, parts = sys.argv[1], sys.argv[2:]
json.dump({p.split("/")[-1].rsplit("-", 3)[0]: json.load(open(p)) for p in parts}, open(out, "w"), indent=2)
print("results: " + out)
PY
