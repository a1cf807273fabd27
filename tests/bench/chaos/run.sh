#!/usr/bin/env bash
# The fault suite at a larger scale (issue 9: bounded counts in make test, larger here):
# every scenario of tests/chaos with SB_CHAOS_SCALE times the contacts and agents (default
# 5: 1 200 contacts, 60 agents, a 100 s stream per scenario), one after the other, on the
# Release binaries. Records per scenario whether the checker passed, its time and the
# counts it checked; a failed scenario is reported, not fatal to make bench. Writes JSON
# to $SB_BENCH_OUT. Expects the local stack up and no services running on it.
#   SB_CHAOS_SCALE (default 5), SB_CHAOS_ONLY (a regular expression: only the scenarios
#   whose name matches)
set -uo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
out="${SB_BENCH_OUT:-$root/bench/results/chaos-$(date +%Y-%m-%d).json}"
scale="${SB_CHAOS_SCALE:-5}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$root"
export SB_REPO_ROOT="$root" SB_CHAOS_SCALE="$scale"
scenarios=(
    "test_kill.py KillTest.test_kill_ingest_triage_reporter_mid_stream"
    "test_kill.py KillTest.test_kill_router_mid_stream"
    "test_kill.py KillTest.test_kill_slawatch_mid_stream"
    "test_faults.py KafkaOutageTest"
    "test_faults.py PostgresRestartTest"
    "test_faults.py RedisLossTest"
    "test_faults.py PoisonTest"
    "test_faults.py ScaleOutTest"
)
for s in "${scenarios[@]}"; do
    read -r file name <<<"$s"
    [[ -z ${SB_CHAOS_ONLY:-} || $name =~ $SB_CHAOS_ONLY ]] || continue
    echo "== fault scenario $name (scale $scale)"
    t0=$(date +%s.%N)
    python3 "tests/chaos/$file" "$name" >"$tmp/$name.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    grep -E "'contacts': [0-9]+" "$tmp/$name.log" | tail -n 1 | tee "$tmp/$name.stats"
    echo "$name $rc $t0 $t1" >>"$tmp/index"
    [[ $rc == 0 ]] || tail -n 30 "$tmp/$name.log"
done
python3 - "$tmp" "$out" "$scale" <<'PY'
import ast, json, re, sys
tmp, out, scale = sys.argv[1], sys.argv[2], int(sys.argv[3])
res = {"scale": scale, "contacts_per_scenario": 240 * scale, "scenarios": {}}
print("\n%-52s %8s %9s  %s" % ("scenario", "result", "seconds", "checked"))
for line in open(tmp + "/index"):
    name, rc, t0, t1 = line.split()
    stats = {}
    text = open("%s/%s.stats" % (tmp, name)).read()
    m = re.search(r"(\{'contacts'.*\})", text)
    if m:
        stats = ast.literal_eval(m.group(1))
    res["scenarios"][name] = {"passed": rc == "0", "seconds": round(float(t1) - float(t0), 1),
                              "checked": stats}
    print("%-52s %8s %9.1f  %s" % (name, "pass" if rc == "0" else "FAIL",
                                   float(t1) - float(t0), stats))
res["passed"] = sum(1 for v in res["scenarios"].values() if v["passed"])
json.dump(res, open(out, "w"), indent=2)
print("%d of %d scenarios passed; results: %s" % (res["passed"], len(res["scenarios"]), out))
PY
