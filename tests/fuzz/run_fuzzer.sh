#!/usr/bin/env bash
# Runs one libFuzzer binary for SB_FUZZ_SECONDS (default 30) on a temporary copy of its
# seed corpus, so that new inputs never land in the repository. Fails on any crash, leak
# or UB report; the crashing input is printed as base64 for a regression file.
set -euo pipefail
fuzzer="$(realpath "$1")"
seeds="$(realpath "$2")"
secs="${SB_FUZZ_SECONDS:-30}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
cp -r "$seeds"/. "$work/corpus/" 2>/dev/null || true
cd "$work"
if ! "$fuzzer" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 corpus >fuzz.log 2>&1; then
    tail -n 60 fuzz.log
    for f in crash-* leak-* timeout-* oom-*; do
        [[ -f "$f" ]] && { echo "input $f (base64):"; base64 -w0 "$f"; echo; }
    done
    exit 1
fi
grep -E "stat::number_of_executed_units|stat::peak_rss_mb" fuzz.log || true
echo "$(basename "$fuzzer"): no crash in ${secs}s"
