#!/usr/bin/env bash
# Benchmark of the SLA core of sb-slawatch (issue targets: <= 256 bytes per clock,
# firing lateness p99 <= 1 s under a burst of 100 000 simultaneous deadlines, with
# 1 000 000 active clocks on one instance): sb-slawatch-bench holds the clocks in one
# process and prints a table and one JSON line — memory per clock (RSS growth and
# allocated bytes beside sizeof), starts/s, the burst's lateness on the real clock,
# events/s, pause/resume and re-target rates, and a restart after 24 h down.
# The core alone: no broker or database is needed (Kafka production is not included).
# Writes the JSON to $SB_BENCH_OUT when set.
#   SB_BENCH_CLOCKS (default 1000000), SB_BENCH_BURST (default 100000),
#   SB_BENCH_BATCH (steps per advance call, default 10000)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
bin="${SB_BIN_DIR:-$root/build/bin}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== sb-slawatch core: ${SB_BENCH_CLOCKS:-1000000} clocks, burst of ${SB_BENCH_BURST:-100000}"
"$bin/sb-slawatch-bench" --clocks "${SB_BENCH_CLOCKS:-1000000}" \
    --burst "${SB_BENCH_BURST:-100000}" --batch "${SB_BENCH_BATCH:-10000}" | tee "$tmp/bench.out"

json="$(tail -n 1 "$tmp/bench.out")"
if [[ -n ${SB_BENCH_OUT:-} ]]; then
    mkdir -p "$(dirname "$SB_BENCH_OUT")"
    python3 -c 'import json, sys; json.dump(json.loads(sys.argv[1]), open(sys.argv[2], "w"), indent=2)' \
        "$json" "$SB_BENCH_OUT"
    echo "results: $SB_BENCH_OUT"
fi
