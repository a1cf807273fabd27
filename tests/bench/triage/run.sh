#!/usr/bin/env bash
# Benchmark of sb-triage (issue targets: topic-to-topic ratio >= 0.7 against a
# pass-through, classify + extract <= 20 us per 1 KB message with 2 000 rules):
#  1. per-message CPU cost (sb-triage-bench) on ~1 KB texts — real complaint narratives
#     of ../shared/data/cfpb_complaints_sample when present, else templates — with the
#     rule book grown to 2 000 rules;
#  2. contacts/s through sb-triage from one topic to another, beside sb-passthrough
#     (consume → produce, same delivery rules, no processing) on topics of the same
#     layout, with the same N messages, in the same run;
#  3. classification quality (tests/eval/triage_eval) on both labelled test sets.
# Writes JSON to $SB_BENCH_OUT. Expects the local stack up.
#   SB_BENCH_MESSAGES (default 50000)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
bin="${SB_BIN_DIR:-$root/build/bin}"
count="${SB_BENCH_MESSAGES:-50000}"
out="${SB_BENCH_OUT:-$root/bench/results/triage-$(date +%Y-%m-%d).json}"
data="$root/../shared/data"
tmp="$(mktemp -d)"
run="$(date +%s)"
pid=""
cleanup() {
    [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
cd "$root"

python3 - "$tmp" "$data" "$count" "$run" <<'PY'
import csv, json, os, random, sys, time, uuid
tmp, data, count, run = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
csv.field_size_limit(1 << 24)
rnd = random.Random(7)
texts = []
path = os.path.join(data, "cfpb_complaints_sample", "complaints_sample.csv")
if os.path.exists(path):
    for row in csv.DictReader(open(path, encoding="utf-8")):
        t = " ".join(row["Consumer complaint narrative"].split())
        if len(t) >= 900:
            texts.append(t[:1024].rsplit(" ", 1)[0])
    print("texts: %d real complaint narratives cut to ~1 KB" % len(texts))
zh = ["昨天下午2点开始付款一直失败，提示错误 E1023，订单号 2024052012%02d，金额 1299 元。",
      "快递三天了还没收到货，物流也不更新，手机 1381234%04d，请尽快处理。",
      "App 一打开就闪退，iOS 17.2，iPhone 15，报错“网络异常”，用不了。",
      "我要投诉你们的客服态度恶劣，要求道歉并赔偿 200 元。"]
while len(texts) < 400:
    s = ""
    while len(s.encode()) < 1000:
        t = rnd.choice(zh)
        s += t % rnd.randrange(100) if "%" in t else t
    texts.append(s)
with open(tmp + "/texts.txt", "w", encoding="utf-8") as f:
    f.write("\n".join(texts) + "\n")
now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
with open(tmp + "/contacts.txt", "w", encoding="utf-8") as f:
    for i in range(count):
        cust = "BENCH-%d" % (i % 5000)
        ms = int(time.time() * 1000)
        h = "%012x" % ms + "7" + uuid.uuid4().hex[:3] + "8" + uuid.uuid4().hex[:15]
        eid = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])
        ev = {"event_id": eid, "type": "contact.received", "occurred_at": now,
              "producer": "bench/0", "schema": 1, "ticket_id": "T-bench-%s-%d" % (run, i),
              "trace_id": uuid.uuid4().hex,
              "payload": {"contact_id": "c-" + uuid.uuid4().hex, "channel": "chat",
                          "external_id": "b-%d" % i, "customer": {"customer_no": cust},
                          "body": texts[i % len(texts)], "metadata": {},
                          "customer_key": cust, "customer_resolution": "crm",
                          "new_ticket": True, "received_at": now}}
        f.write(cust + "\t" + json.dumps(ev, ensure_ascii=False) + "\n")
topics = {"version": 1, "defaults": {"partitions": 12, "replication_factor": 1,
                                     "retention_ms": 3600000, "cleanup_policy": "delete",
                                     "config": {}},
          "topics": [{"name": "sb.bench.%s.%s" % (run, n), "key": "bench", "events": []}
                     for n in ("in", "pass", "tickets", "activity")]}
json.dump(topics, open(tmp + "/topics.json", "w"))
PY

echo "== per-message cost (2 000 rules, ~1 KB texts)"
"$bin/sb-triage-bench" --texts "$tmp/texts.txt" --rules 2000 | tee "$tmp/micro.out"

"$bin/sbctl" topics create --file "$tmp/topics.json" >/dev/null
in="sb.bench.$run.in"
kcat -b "${SB_KAFKA_BROKERS:-127.0.0.1:19092}" -P -t "$in" -K $'\t' -z lz4 <"$tmp/contacts.txt"
echo "== $count contacts preloaded to $in"

echo "== pass-through (consume -> produce, no processing)"
"$bin/sb-passthrough" --in "$in" --out "sb.bench.$run.pass" --count "$count" \
    --group "bench-pass-$run" | tee "$tmp/pass.out"

echo "== sb-triage (topic to topic)"
admin=19482
SB_ADMIN_PORT=$admin SB_KAFKA_GROUP="bench-triage-$run" SB_TOPICS_CONTACTS="$in" \
    SB_TOPICS_TICKETS="sb.bench.$run.tickets" SB_TOPICS_ACTIVITY="sb.bench.$run.activity" \
    SB_LOG_LEVEL=warn "$bin/sb-triage" >"$tmp/triage.log" 2>&1 &
pid=$!
python3 - "$admin" "$count" <<'PY' | tee "$tmp/triage.out"
import re, sys, time, urllib.request
admin, count = int(sys.argv[1]), int(sys.argv[2])
def handled():
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=2).read().decode()
    except OSError:
        return -1
    m = re.search(r'^sb_stage_messages_total\{[^}]*\} ([0-9.e+]+)$', text, re.M)
    return float(m.group(1)) if m else 0
deadline = time.time() + 600
while handled() <= 0 and time.time() < deadline:
    time.sleep(0.02)
t0, n0 = time.time(), handled()
while handled() < count and time.time() < deadline:
    time.sleep(0.05)
secs = time.time() - t0
n = handled() - n0
print('{"messages":%d,"seconds":%.3f,"per_second":%.1f}' % (n, secs, n / secs if secs else 0))
PY
kill -TERM "$pid"; wait "$pid" || true; pid=""

eval_json() {
    if [[ -f $data/$1/test.csv ]]; then
        tests/eval/triage_eval --data "$data/$1/test.csv" --label-column "$2" \
            --map "$data/$1/domain-map.json" | tail -1
    else
        echo null
    fi
}
b77="$(eval_json banking77 category)"
btx="$(eval_json bitext_customer_support intent)"

python3 - "$tmp" "$out" "$b77" "$btx" <<'PY'
import json, sys
tmp, out, b77, btx = sys.argv[1:5]
last = lambda f: json.loads(open(tmp + "/" + f).read().strip().splitlines()[-1])
micro, pas, tri = last("micro.out"), last("pass.out"), last("triage.out")
ratio = tri["per_second"] / pas["per_second"] if pas["per_second"] else 0
res = {"per_message": micro, "passthrough": pas, "triage": tri, "ratio": round(ratio, 3),
       "targets": {"ratio": 0.7, "classify_extract_us": 20},
       "quality": {"banking77": json.loads(b77), "bitext": json.loads(btx)}}
json.dump(res, open(out, "w"), indent=2)
print("\n%-34s %12s" % ("", "contacts/s"))
print("%-34s %12.0f" % ("pass-through (baseline)", pas["per_second"]))
print("%-34s %12.0f" % ("sb-triage", tri["per_second"]))
print("%-34s %12.3f   (target >= 0.7)" % ("ratio", ratio))
print("%-34s %12.2f   (target <= 20 us)" % ("classify+extract+mask us/message", micro["mean_us"]))
print("results: " + out)
PY
