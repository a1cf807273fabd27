#!/usr/bin/env bash
# Benchmark of sb-reporter (issue targets: projection ratio >= 0.5 against a raw COPY of
# the same rows, dashboard API p99 <= 50 ms under 50 concurrent readers):
#  1. events/s projected into PostgreSQL: N events of whole ticket lives (contact,
#     triage, SLA clock, queue, assignment, replies, status changes, resolution, CSAT) are
#     produced with kcat to topics of this run first; sb-reporter then starts in a new
#     consumer group on those topics and is timed from its first stored event until all
#     N are in ticket_events;
#  2. the same N rows, read back from ticket_events, COPY'd into a scratch table shaped
#     like ticket_events (same indexes) in the same run: the ratio of the two rates;
#  3. the read API under 50 concurrent keep-alive readers (wrk): the dashboard's mix of
#     GET /api/v1/metrics/summary, /api/v1/queues and /api/v1/tickets?…, then each alone.
# The run's tickets (T-bench-<run>-*) are removed from the projection afterwards
# (SB_BENCH_KEEP=1 keeps them). Writes JSON to $SB_BENCH_OUT (default
# bench/results/reporter-<date>.json). Expects the local stack up and migrated.
#   SB_BENCH_EVENTS (default 50000), SB_BENCH_SECONDS (default 10),
#   SB_BENCH_CONNECTIONS (default 50), SB_BENCH_API=0 (the projection only)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
bin="${SB_BIN_DIR:-$root/build/bin}"
count="${SB_BENCH_EVENTS:-50000}"
secs="${SB_BENCH_SECONDS:-10}"
conns="${SB_BENCH_CONNECTIONS:-50}"
out="${SB_BENCH_OUT:-$root/bench/results/reporter-$(date +%Y-%m-%d).json}"
# shellcheck source=../../../deploy/local/env
source "$root/deploy/local/env"
tmp="$(mktemp -d)"
run="$(date +%s)"
port=18481
admin=19481
pid=""
cleanup() {
    [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    psql -qAt -c "DROP TABLE IF EXISTS bench_copy_$run" >/dev/null 2>&1 || true
    if [[ -z ${SB_BENCH_KEEP:-} ]]; then
        psql -qAt -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<SQL || true
DELETE FROM ticket_events WHERE ticket_id LIKE 'T-bench-$run-%';
DELETE FROM tickets WHERE id LIKE 'T-bench-$run-%';
DELETE FROM agent_presence WHERE agent_id LIKE 'a-bench-$run-%';
SQL
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
cd "$root"

# Whole ticket lives of 10 events each, spread over the last 20 hours (today's figures
# have work to do), with 40 agents; 80 % resolved, 60 % of those rated.
python3 - "$tmp" "$count" "$run" <<'PY'
import json, random, sys, time, uuid
tmp, count, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rnd = random.Random(7)
now = time.time()
def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int(t % 1 * 1000)
def uid(t):
    h = "%012x" % int(t * 1000) + "7" + uuid.uuid4().hex[:3] + "8" + uuid.uuid4().hex[:15]
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])
files = {n: open("%s/%s.txt" % (tmp, n), "w", encoding="utf-8")
         for n in ("contacts", "tickets", "sla", "routing", "activity")}
domains = ["order_payment", "logistics", "account", "product_quality", "refund"]
channels = ["chat", "email", "phone", "wechat"]
n = 0
i = 0
while n < count:
    tid = "T-bench-%s-%d" % (run, i)
    cust = "BENCH-%d" % (i % 3000)
    agent = "a-bench-%s-%d" % (run, i % 40)
    t0 = now - rnd.uniform(600, 72000)
    ch, dom = rnd.choice(channels), rnd.choice(domains)
    band = rnd.choice(["P1", "P2", "P2", "P3", "P3", "P4"])
    q = "aftersale/" + dom
    actor = {"role": "agent", "agent_id": agent}
    life = [
        ("contacts", cust, "contact.received", t0,
         {"contact_id": "c-" + uuid.uuid4().hex, "channel": ch, "external_id": "b-%d" % i,
          "customer": {"customer_no": cust}, "subject": "订单支付失败",
          "body": "我的订单 2024052%05d 付款一直失败，提示错误 E1023，请尽快处理" % i,
          "metadata": {}, "customer_key": cust, "customer_resolution": "crm",
          "new_ticket": True, "received_at": iso(t0)}),
        ("tickets", tid, "ticket.triaged", t0 + 0.2,
         {"contact_id": "c-x", "customer_key": cust, "channel": ch, "domain": dom,
          "nature": "fault", "stage": "in_sale", "urgency": 2, "impact": 2, "tier": 2,
          "score": 6, "band": band, "label": "bench", "customer_tier": "regular",
          "flags": {}}),
        ("sla", tid, "sla.started", t0 + 0.3,
         {"clock_id": tid + ":first_response", "kind": "first_response", "band": band,
          "target_at": iso(t0 + 3600), "target_s": 3600, "business_time": False,
          "policy": "default"}),
        ("routing", tid, "ticket.queued", t0 + 0.4,
         {"queue": q, "band": band, "position": 1, "eta_seconds": 60, "channel": ch,
          "required_skills": [dom]}),
        ("routing", tid, "ticket.assigned", t0 + rnd.uniform(5, 300),
         {"agent_id": agent, "queue": q, "offer_id": "o-%d" % i, "wait_ms": 1000,
          "continuity": False}),
    ]
    t = life[-1][3]
    t += rnd.uniform(10, 600)
    life.append(("activity", tid, "agent.replied", t,
                 {"ticket_id": tid, "actor": actor, "body": "您好，正在为您处理。", "public": True}))
    t += rnd.uniform(10, 300)
    life.append(("activity", tid, "ticket.status_changed", t,
                 {"ticket_id": tid, "actor": actor, "status": "in_progress"}))
    t += rnd.uniform(60, 1800)
    life.append(("activity", tid, "agent.replied", t,
                 {"ticket_id": tid, "actor": actor, "body": "已为您处理完毕。", "public": True}))
    if rnd.random() < 0.8:
        t += rnd.uniform(10, 600)
        life.append(("activity", tid, "ticket.status_changed", t,
                     {"ticket_id": tid, "actor": actor, "status": "resolved"}))
        t += rnd.uniform(60, 3600)
        life.append(("activity", tid, "csat.received", t,
                     {"ticket_id": tid, "actor": actor, "score": rnd.choice([3, 4, 5, 5])})
                    if rnd.random() < 0.6 else
                    ("activity", tid, "ticket.note_added", t,
                     {"ticket_id": tid, "actor": actor, "body": "已回访"}))
    else:
        t += rnd.uniform(10, 600)
        life.append(("activity", tid, "ticket.note_added", t,
                     {"ticket_id": tid, "actor": actor, "body": "等待仓库回复"}))
        life.append(("activity", tid, "ticket.status_changed", t + 1,
                     {"ticket_id": tid, "actor": actor, "status": "pending_internal"}))
    for topic, key, type_, when, payload in life:
        if n == count:
            break
        when = min(when, now - 1)
        ev = {"event_id": uid(when), "type": type_, "occurred_at": iso(when),
              "producer": "bench/0", "schema": 1, "ticket_id": tid,
              "trace_id": uuid.uuid4().hex, "payload": payload}
        files[topic].write(key + "\t" + json.dumps(ev, ensure_ascii=False) + "\n")
        n += 1
    i += 1
for f in files.values():
    f.close()
topics = {"version": 1, "defaults": {"partitions": 12, "replication_factor": 1,
                                     "retention_ms": 3600000, "cleanup_policy": "delete",
                                     "config": {}},
          "topics": [{"name": "sb.bench.%s.%s" % (run, n), "key": "bench", "events": []}
                     for n in files]}
json.dump(topics, open(tmp + "/topics.json", "w"))
print("%d events of %d tickets" % (n, i))
PY

"$bin/sbctl" topics create --file "$tmp/topics.json" >/dev/null
topics=""
for t in contacts tickets sla routing activity; do
    kcat -b "$SB_KAFKA_BROKERS" -P -t "sb.bench.$run.$t" -K $'\t' -z lz4 <"$tmp/$t.txt"
    topics="${topics:+$topics,}sb.bench.$run.$t"
done
echo "== $count events preloaded to sb.bench.$run.*"

echo "== sb-reporter (topics to PostgreSQL)"
SB_HTTP_PORT=$port SB_ADMIN_PORT=$admin SB_KAFKA_GROUP="bench-reporter-$run" \
    SB_TOPICS="$topics" SB_REPORTS_ENABLED=false SB_LOG_LEVEL=warn \
    "$bin/sb-reporter" >"$tmp/reporter.log" 2>&1 &
pid=$!
python3 - "$admin" "$count" <<'PY' | tee "$tmp/project.out"
import re, sys, time, urllib.request
admin, count = int(sys.argv[1]), int(sys.argv[2])
def stored():
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=2).read().decode()
    except OSError:
        return -1
    return sum(float(m) for m in re.findall(r'^sb_reporter_events_total(?:\{[^}]*\})? ([0-9.e+]+)$',
                                            text, re.M))
deadline = time.time() + 900
while stored() <= 0 and time.time() < deadline:
    time.sleep(0.01)
t0, n0 = time.time(), stored()
while stored() < count and time.time() < deadline:
    time.sleep(0.02)
secs = time.time() - t0
n = stored() - n0
# Where the time went: the batches' time in PostgreSQL (sb_project, commit) of the whole.
text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=2).read().decode()
def metric(name):
    m = re.search(r'^%s(?:\{[^}]*\})? ([0-9.e+]+)$' % name, text, re.M)
    return float(m.group(1)) if m else 0.0
batches, in_pg = metric("sb_reporter_batch_seconds_count"), metric("sb_reporter_batch_seconds_sum")
print("   %d batches, %.1f events each, %.1f ms each in PostgreSQL (%.0f %% of the time)"
      % (batches, n / batches if batches else 0, 1000 * in_pg / batches if batches else 0,
         100 * in_pg / secs if secs else 0))
print('{"events":%d,"seconds":%.3f,"per_second":%.1f,"batches":%d,"pg_seconds":%.3f}'
      % (n, secs, n / secs if secs else 0, batches, in_pg))
PY
stored="$(psql -qAt -c "SELECT count(*) FROM ticket_events WHERE ticket_id LIKE 'T-bench-$run-%'")"
echo "   $stored of $count events in ticket_events"
[[ $stored == "$count" ]] || { echo "bench: events missing" >&2; exit 1; }

echo "== raw COPY of the same rows into a scratch table"
psql -qAt -v ON_ERROR_STOP=1 -c "\copy (SELECT * FROM ticket_events WHERE ticket_id LIKE 'T-bench-$run-%' ORDER BY event_id) TO '$tmp/rows.copy'"
psql -qAt -v ON_ERROR_STOP=1 -c "CREATE TABLE bench_copy_$run (LIKE ticket_events INCLUDING ALL)"
python3 - "$tmp" "$run" "$count" <<'PY' | tee "$tmp/copy.out"
import subprocess, sys, time
tmp, run, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.time()
subprocess.run(["psql", "-qAt", "-v", "ON_ERROR_STOP=1", "-c",
                "\\copy bench_copy_%s FROM '%s/rows.copy'" % (run, tmp)], check=True)
secs = time.time() - t0
print('{"rows":%d,"seconds":%.3f,"per_second":%.1f}' % (count, secs, count / secs))
PY

if [[ ${SB_BENCH_API:-1} != 0 ]]; then
echo "== read API, $conns concurrent readers, ${secs} s each"
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/api/v1/queues" -H "Authorization: Bearer $SB_ADMIN_TOKEN" \
        >/dev/null 2>&1 && break
    sleep 0.1
done
cat >"$tmp/mix.lua" <<LUA
local paths = {"/api/v1/metrics/summary", "/api/v1/queues",
               "/api/v1/tickets?status=new,queued,assigned,in_progress&limit=50",
               "/api/v1/tickets?band=P1,P2&limit=50",
               "/api/v1/tickets?queue=aftersale/logistics&limit=50"}
local i = 0
request = function()
    i = i + 1
    return wrk.format("GET", paths[(i % #paths) + 1],
                      {["Authorization"] = "Bearer $SB_ADMIN_TOKEN"})
end
LUA
api_run() { # name path-or-empty seconds
    if [[ -z $2 ]]; then
        wrk -t2 -c"$conns" -d"$3s" --latency -s "$tmp/mix.lua" "http://127.0.0.1:$port" >"$tmp/$1.wrk"
    else
        wrk -t2 -c"$conns" -d"$3s" --latency -H "Authorization: Bearer $SB_ADMIN_TOKEN" \
            "http://127.0.0.1:$port$2" >"$tmp/$1.wrk"
    fi
}
api_run warmup "" 2
api_run mix "" "$secs"
api_run summary /api/v1/metrics/summary "$secs"
api_run queues /api/v1/queues "$secs"
api_run tickets "/api/v1/tickets?status=new,queued,assigned,in_progress&limit=50" "$secs"
fi
kill -TERM "$pid"
wait "$pid" || true
pid=""

python3 - "$tmp" "$out" "$count" "$conns" "$secs" <<'PY'
import json, re, sys, time
tmp, out, count, conns, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
last = lambda f: json.loads(open(tmp + "/" + f).read().strip().splitlines()[-1])
def wrk(name):
    text = open("%s/%s.wrk" % (tmp, name)).read()
    def ms(label):
        m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)" % label, text, re.M)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    total = int(re.search(r"(\d+) requests in", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "requests": total, "non_2xx": int(bad.group(1)) if bad else 0,
            "p50_ms": ms("50"), "p90_ms": ms("90"), "p99_ms": ms("99"),
            "socket_errors": errors.group(1) if errors else None}
proj, copy = last("project.out"), last("copy.out")
ratio = proj["per_second"] / copy["per_second"] if copy["per_second"] else 0
import os
api = {n: wrk(n) for n in ("mix", "summary", "queues", "tickets")
       if os.path.exists("%s/%s.wrk" % (tmp, n))}
res = {"benchmark": "reporter", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "events": count, "projection": proj, "copy": copy, "ratio": round(ratio, 3),
       "api": {"connections": conns, "seconds": secs, **api},
       "targets": {"ratio": 0.5, "api_p99_ms": 50}}
json.dump(res, open(out, "w"), indent=2)
print("\n%-40s %12s" % ("", "events/s"))
print("%-40s %12.0f" % ("raw COPY into a scratch table (baseline)", copy["per_second"]))
print("%-40s %12.0f" % ("sb-reporter, Kafka to PostgreSQL", proj["per_second"]))
print("%-40s %12.3f   (target >= 0.5)" % ("ratio", ratio))
print("\nread API, %d readers  %10s %8s %8s %8s %8s" % (conns, "req/s", "p50 ms", "p90 ms", "p99 ms", "non-2xx"))
for n, label in (("mix", "dashboard mix"), ("summary", "/metrics/summary"), ("queues", "/queues"),
                 ("tickets", "/tickets?status=…")):
    if n not in api:
        continue
    a = api[n]
    print("  %-20s %10.0f %8.2f %8.2f %8.2f %8d" % (label, a["requests_per_s"], a["p50_ms"],
                                                    a["p90_ms"], a["p99_ms"], a["non_2xx"]))
print("  (target: p99 <= 50 ms)")
print("results: " + out)
PY
