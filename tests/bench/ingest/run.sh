#!/usr/bin/env bash
# Benchmark of sb-ingest (issue target: >= 10 000 accepted contacts/s, p99 <= 25 ms,
# ratio >= 0.5): wrk drives POST /v1/contacts over keep-alive connections with signed
# bodies, then the same server's no-op endpoint (same bodies, no intake work) in the same
# run; prints accepted/s and latency percentiles of both and the ratio, and writes JSON
# to $SB_BENCH_OUT (default bench/results/ingest-<date>.json). Expects the local stack up.
#   SB_BENCH_SECONDS (default 15), SB_BENCH_CONNECTIONS (default 64)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
bin="${SB_BIN_DIR:-$root/build/bin}"
secs="${SB_BENCH_SECONDS:-15}"
conns="${SB_BENCH_CONNECTIONS:-64}"
out="${SB_BENCH_OUT:-$root/bench/results/ingest-$(date +%Y-%m-%d).json}"
tmp="$(mktemp -d)"
port=18480
admin=19480
run="$(date +%s)"

SB_HTTP_PORT=$port SB_ADMIN_PORT=$admin SB_HTTP_NOOP_ENDPOINT=true SB_RATELIMIT_RATE=1e9 \
    SB_RATELIMIT_BURST=1e9 SB_LOG_LEVEL=warn "$bin/sb-ingest" >"$tmp/ingest.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

# 500 customers, each with a pre-signed contact (signatures valid for 300 s).
python3 - "$tmp" "$run" <<'PY'
import hashlib, hmac, json, sys, time
tmp, run = sys.argv[1], sys.argv[2]
t = str(int(time.time()))
items = []
for i in range(500):
    body = json.dumps({"channel": "chat", "external_id": "bench-%s-%d" % (run, i),
                       "customer": {"email": "bench%d@example.cn" % i, "name": "客户%d" % i},
                       "subject": "订单支付失败", "body": "我的订单 2024052%05d 付款一直失败，提示错误 E1023，请尽快处理" % i,
                       "sent_at": "2024-05-20T14:00:00Z", "metadata": {"page": "checkout"}},
                      ensure_ascii=False)
    sig = "t=%s,v1=%s" % (t, hmac.new(b"dev-secret-api", (t + "." + body).encode(), hashlib.sha256).hexdigest())
    items.append("{[==[%s]==],[==[%s]==]}" % (body, sig))
open(tmp + "/bodies.lua", "w").write("{" + ",\n".join(items) + "}")
PY
for path in /v1/contacts /v1/noop; do
    name="${path##*/}"
    python3 - "$root/tests/bench/ingest/contacts.lua.in" "$tmp/bodies.lua" "$path" "$run-$name" \
        >"$tmp/$name.lua" <<'PY'
import sys
tpl, bodies, path, run = sys.argv[1:5]
s = open(tpl).read().replace("@BODIES@", open(bodies).read()).replace("@PATH@", path).replace("@RUN@", run)
sys.stdout.write(s)
PY
done

# Warm-up (connections, Kafka producer id, identity cache).
wrk -t2 -c"$conns" -d3s -s "$tmp/contacts.lua" "http://127.0.0.1:$port" >/dev/null
measure() { # name
    wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$tmp/$1.lua" "http://127.0.0.1:$port" >"$tmp/$1.out"
}
measure contacts
measure noop
python3 - "$tmp" "$out" "$secs" "$conns" <<'PY'
import json, re, sys, time
tmp, out, secs, conns = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def parse(name):
    text = open("%s/%s.out" % (tmp, name)).read()
    def ms(label):
        m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)" % label, text, re.M)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    bad = int(bad.group(1)) if bad else 0
    return {"requests_per_s": rps, "requests": total, "non_2xx": bad,
            "accepted_per_s": rps * (total - bad) / total if total else 0,
            "p50_ms": ms("50"), "p90_ms": ms("90"), "p99_ms": ms("99"),
            "socket_errors": errors.group(1) if errors else None}
c, n = parse("contacts"), parse("noop")
res = {"benchmark": "ingest", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "seconds": secs, "connections": conns, "contacts": c, "noop": n,
       "ratio": c["accepted_per_s"] / n["requests_per_s"] if n["requests_per_s"] else 0,
       "targets": {"accepted_per_s": 10000, "p99_ms": 25, "ratio": 0.5}}
json.dump(res, open(out, "w"), indent=2)
print("ingest benchmark (%d s, %d connections, wrk on the same 2 cores)" % (secs, conns))
print("  %-22s %12s %9s %9s %9s %8s" % ("endpoint", "per second", "p50 ms", "p90 ms", "p99 ms", "non-2xx"))
print("  %-22s %12.0f %9.2f %9.2f %9.2f %8d" % ("POST /v1/contacts", c["accepted_per_s"], c["p50_ms"], c["p90_ms"], c["p99_ms"], c["non_2xx"]))
print("  %-22s %12.0f %9.2f %9.2f %9.2f %8d" % ("POST /v1/noop (base)", n["requests_per_s"], n["p50_ms"], n["p90_ms"], n["p99_ms"], n["non_2xx"]))
print("  ratio contacts/noop: %.2f   (targets: >= 10000/s, p99 <= 25 ms, ratio >= 0.5)" % res["ratio"])
print("  written to %s" % out)
PY
