#!/usr/bin/env bash
# The command-line contract of sb-routesim: the M/M/c run prints, as its last line, one
# JSON object with exactly p_wait, asa_s, sl, occupancy and answered; the same seed gives
# the same output; --help and bad arguments behave; every scenario ends in a JSON line.
# Also a small run of sb-routebench, so the benchmark keeps working.
set -uo pipefail
sim="${SB_BIN_DIR:?}/sb-routesim"
bench="${SB_BIN_DIR:?}/sb-routebench"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# Last line is the contract's JSON object; the checks are in Python (json module).
check_json() { # file python-expression-over-o description
    local file="$1" expr="$2" desc="$3"
    if ! tail -n 1 "$file" | python3 -c "
import json, sys
o = json.loads(sys.stdin.read())
sys.exit(0 if ($expr) else 1)
" 2>"$tmp/py.err"; then
        fail "$desc: last line $(tail -n 1 "$file" | head -c 400) $(head -c 300 "$tmp/py.err")"
    fi
}

args=(--arrival-rate 0.5 --aht 180 --agents 100 --duration 50000 --seed 7 --sl-threshold 20)
"$sim" "${args[@]}" >"$tmp/a.out" 2>"$tmp/a.err" || fail "M/M/c run exited $?: $(head -c 300 "$tmp/a.err")"
check_json "$tmp/a.out" 'list(o) == ["p_wait", "asa_s", "sl", "occupancy", "answered"]' "contract keys"
check_json "$tmp/a.out" '0 <= o["p_wait"] <= 1 and 0 <= o["sl"] <= 1 and 0 < o["occupancy"] <= 1 and o["asa_s"] >= 0 and isinstance(o["answered"], int) and o["answered"] > 20000' "contract values"
check_json "$tmp/a.out" 'abs(o["occupancy"] - 0.9) < 0.03' "occupancy near 0.9"
grep -q "Erlang C" "$tmp/a.out" || fail "no comparison with Erlang C"
grep -q "95% CI" "$tmp/a.out" || fail "no confidence intervals"
"$sim" "${args[@]}" >"$tmp/b.out" 2>/dev/null
[[ "$(tail -n 1 "$tmp/a.out")" == "$(tail -n 1 "$tmp/b.out")" ]] || fail "same seed, different result"
"$sim" --arrival-rate 0.5 --aht 180 --agents 100 --duration 50000 --seed 8 --sl-threshold 20 >"$tmp/c.out" 2>/dev/null
[[ "$(tail -n 1 "$tmp/a.out")" != "$(tail -n 1 "$tmp/c.out")" ]] || fail "another seed, same result"

"$sim" --help >"$tmp/h.out" 2>&1 || fail "--help exited non-zero"
grep -q "Usage: sb-routesim" "$tmp/h.out" || fail "--help prints no usage"
for bad in "--arrival-rate x --aht 1 --agents 1" "--aht 10 --agents 2" "--arrival-rate 1 --aht 1 --agents 0" \
    "--scenario nowhere" "--bogus 1" "--arrival-rate 1 --aht 10 --agents 20 --batches 1"; do
    # shellcheck disable=SC2086
    "$sim" $bad >/dev/null 2>"$tmp/bad.err"
    rc=$?
    [[ $rc -eq 2 ]] || fail "\"$bad\" exited $rc, want 2"
    [[ -s "$tmp/bad.err" ]] || fail "\"$bad\" says nothing on stderr"
done

for s in two-skills vip overflow; do
    "$sim" --scenario "$s" --duration 60000 --seed 3 >"$tmp/s.out" 2>"$tmp/s.err" || fail "scenario $s exited $?: $(head -c 300 "$tmp/s.err")"
    check_json "$tmp/s.out" "o['scenario'] == '$s' and o['answered'] > 0 and 'baseline_all_asa_s' in o" "scenario $s"
done

"$bench" --agents 300 --backlog 3000 --steps 3000 >"$tmp/bench.out" 2>"$tmp/bench.err" || fail "sb-routebench exited $?: $(head -c 300 "$tmp/bench.err")"
check_json "$tmp/bench.out" 'o["agents"] == 300 and o["steps"] == 3000 and o["p99_resolve_us"] > 0' "sb-routebench"

if ((failures > 0)); then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "sb-routesim command line: all checks passed"
