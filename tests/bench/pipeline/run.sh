#!/usr/bin/env bash
# Benchmark of the whole pipeline (issue 9): sustained contacts/s from HTTP accept to the
# assignment visible in PostgreSQL, latency p50/p99 at 50 % and 90 % of that rate, and a
# baseline chain (same Kafka hops and PostgreSQL insert, no processing) in the same run;
# the ratio pipeline/baseline is the headline figure (tests/bench/pipeline/bench.py);
# then the scale-out figure: the same capacity run with two instances of the two busiest
# stages.
# Writes JSON to $SB_BENCH_OUT. Expects the local stack up and no services running.
#   SB_BENCH_CONTACTS (3000), SB_BENCH_SECONDS (20 per latency run), SB_BENCH_AGENTS (600)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
out="${SB_BENCH_OUT:-$root/bench/results/pipeline-$(date +%Y-%m-%d).json}"
cd "$root"
# shellcheck source=/dev/null
source deploy/local/env
python3 tests/bench/pipeline/bench.py "$out"
