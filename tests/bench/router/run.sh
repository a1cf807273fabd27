#!/usr/bin/env bash
# Benchmark of the routing core (issue target: <= 50 us p99 per decision with 10 000
# agents and 100 000 queued tickets, in process) for each matching policy, and the M/M/c
# validation of sb-routesim against Erlang C at occupancy 0.9, and the end-to-end figure
# (issue target: ratio >= 0.5): tickets/s through sb-router on the real stack beside
# sb-passthrough on the same preloaded topic (e2e.py; expects the local stack up).
# Writes JSON to $SB_BENCH_OUT.
#   SB_BENCH_ROUTER_TICKETS (default 30000), SB_BENCH_ROUTER_AGENTS (default 2000)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
bin="${SB_BIN_DIR:-$root/build/bin}"
out="${SB_BENCH_OUT:-$root/bench/results/router-$(date +%Y-%m-%d).json}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for policy in longest_idle least_occupied highest_skill; do
    echo "== decision latency, policy $policy"
    "$bin/sb-routebench" --policy "$policy" | tee "$tmp/$policy.out" | tail -n 4
done
echo "== M/M/c against Erlang C (lambda 0.09/s, AHT 100 s, 10 agents, SL 20 s)"
"$bin/sb-routesim" --arrival-rate 0.09 --aht 100 --agents 10 --duration 20000000 --seed 7 \
    --sl-threshold 20 | tee "$tmp/sim.out" | tail -n 6
echo "== end to end: sb-router beside a pass-through on the real stack"
python3 "$root/tests/bench/router/e2e.py" "$bin" "${SB_BENCH_ROUTER_TICKETS:-30000}" \
    "${SB_BENCH_ROUTER_AGENTS:-2000}" | tee "$tmp/e2e.out"
python3 - "$tmp" "$out" <<'PY'
import json, sys
tmp, out = sys.argv[1:3]
last = lambda f: json.loads(open(tmp + "/" + f).read().strip().splitlines()[-1])
res = {p: last(p + ".out") for p in ("longest_idle", "least_occupied", "highest_skill")}
res["mmc_occupancy_0_9"] = last("sim.out")
res["end_to_end"] = last("e2e.out")
res["targets"] = {"p99_decision_us": 50, "end_to_end_ratio": 0.5}
json.dump(res, open(out, "w"), indent=2)
print("results: " + out)
PY
