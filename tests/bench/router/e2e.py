#!/usr/bin/env python3
"""End-to-end throughput of sb-router on the real stack beside a pass-through.

Both read the same preloaded ticket.triaged events from one topic of this run
(12 partitions, like sb.tickets.v1): sb-passthrough copies them to another topic with a
stage's delivery rules and no processing; sb-router, on topics of this run and a Redis
prefix of its own, queues every ticket and offers it to one of AGENTS agents (logged in
by agent.presence events preloaded on the run's presence topic; a chat capacity of 3
and an email capacity of 10 each, so that part of the load waits in the queues).
The figure of each is tickets handled per second, timed from its first message to its
last one made durable (sb_stage_messages_total for the router). Prints a table and one
JSON line as its last line.

usage: e2e.py BIN_DIR TICKETS AGENTS
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

BROKERS = os.environ.get("SB_KAFKA_BROKERS", "127.0.0.1:19092")
ADMIN = 19483


def uuid7():
    ms = int(time.time() * 1000)
    h = "%012x" % ms + "7" + uuid.uuid4().hex[:3] + "8" + uuid.uuid4().hex[:15]
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])


def envelope(type_, payload, ticket=None):
    ev = {"event_id": uuid7(), "type": type_,
          "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
          "producer": "bench/0", "schema": 1, "trace_id": uuid.uuid4().hex, "payload": payload}
    if ticket:
        ev["ticket_id"] = ticket
    return json.dumps(ev, ensure_ascii=False)


def produce(topic, lines):
    data = "".join(k + "\t" + v + "\n" for k, v in lines).encode()
    subprocess.run(["kcat", "-b", BROKERS, "-P", "-t", topic, "-K", "\t", "-z", "lz4"],
                   input=data, check=True, timeout=600)


def metric(name):
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % ADMIN,
                                      timeout=2).read().decode()
    except OSError:
        return -1.0
    total = 0.0
    for m in re.finditer(r"^%s(?:\{[^}]*\})? ([0-9.e+]+)$" % re.escape(name), text, re.M):
        total += float(m.group(1))
    return total


def main():
    bin_dir, count, agents = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    run = "%d" % time.time()
    names = {n: "sb.bench.%s.rt.%s" % (run, n)
             for n in ("tickets", "presence", "activity", "sla", "routing", "pass")}
    tmp = tempfile.mkdtemp()
    spec = {"version": 1, "defaults": {"partitions": 12, "replication_factor": 1,
                                       "retention_ms": 3600000, "cleanup_policy": "delete",
                                       "config": {}},
            "topics": [{"name": t, "key": "bench", "events": []} for t in names.values()]}
    with open(tmp + "/topics.json", "w") as f:
        json.dump(spec, f)
    subprocess.run([bin_dir + "/sbctl", "topics", "create", "--file", tmp + "/topics.json"],
                   check=True, stdout=subprocess.DEVNULL)

    product = "rtbench%s" % run
    presence = []
    for n in range(agents):
        a = "a-rtb%s-%d" % (run, n)
        presence.append((a, envelope("agent.presence", {
            "agent_id": a, "status": "available", "capacities": {"chat": 3, "email": 10},
            "skills": {"domain:order_payment": 3 + n % 3, "lang:zh": 5,
                       "product:" + product: 4}, "set_by": a})))
    produce(names["presence"], presence)
    tickets = []
    for n in range(count):
        t = "T-rtb%s-%d" % (run, n)
        band = ("P1", "P2", "P3", "P3", "P4")[n % 5]
        tickets.append((t, envelope("ticket.triaged", {
            "contact_id": "c-" + uuid.uuid4().hex, "customer_key": "C-rtb%s-%d" % (run, n),
            "channel": "chat" if n % 3 else "email", "domain": "order_payment",
            "nature": "fault", "stage": "in_sale", "urgency": 2, "impact": 2, "tier": 2,
            "score": 4, "band": band, "label": "in-sale / order & payment / normal",
            "customer_tier": "regular", "product_line": product, "language": "zh-CN",
            "fivew1h": {}, "rules_fired": [], "masked_body": "付款失败",
            "flags": {"legal_pr": False, "public_negative": False, "self_service": False},
            "incident_id": None, "sla_policy": band, "sla_clocks": ["first_response"]}, t)))
    produce(names["tickets"], tickets)
    print("== %d tickets and %d agents preloaded" % (count, agents), flush=True)

    out = subprocess.run([bin_dir + "/sb-passthrough", "--in", names["tickets"], "--out",
                          names["pass"], "--count", str(count), "--group", "bench-rtpass-" + run],
                         check=True, capture_output=True, text=True, timeout=900).stdout
    passthrough = json.loads(out.strip().splitlines()[-1])

    env = dict(os.environ, SB_ADMIN_PORT=str(ADMIN), SB_KAFKA_GROUP="bench-router-" + run,
               SB_TOPICS_TICKETS=names["tickets"], SB_TOPICS_PRESENCE=names["presence"],
               SB_TOPICS_ACTIVITY=names["activity"], SB_TOPICS_SLA=names["sla"],
               SB_TOPICS_ROUTING=names["routing"], SB_ROUTER_REDIS_PREFIX="sb:rtb%s:" % run,
               SB_ROUTER_ETA_PREFIX="sb:rtb%s:eta:" % run,
               SB_ROUTER_AGENT_PREFIX="a-rtb%s-" % run, SB_ROUTER_TICKET_PREFIX="T-rtb%s-" % run,
               SB_LOG_LEVEL="warn")
    log = open(tmp + "/router.log", "w")
    proc = subprocess.Popen([bin_dir + "/sb-router"], env=env, stdout=log, stderr=log)
    try:
        total = count + agents
        deadline = time.time() + 900
        while metric("sb_stage_messages_total") <= 0 and time.time() < deadline:
            if proc.poll() is not None:
                sys.exit("sb-router exited: see " + tmp + "/router.log")
            time.sleep(0.02)
        t0, n0 = time.time(), metric("sb_stage_messages_total")
        while metric("sb_stage_messages_total") < total and time.time() < deadline:
            time.sleep(0.05)
        secs = time.time() - t0
        handled = metric("sb_stage_messages_total") - n0
        offers = metric("sb_router_offers_total")
        decision_sum = metric("sb_router_decision_seconds_sum")
        decision_n = metric("sb_router_decision_seconds_count")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    router = {"messages": int(handled), "seconds": round(secs, 3),
              "per_second": round(handled / secs, 1) if secs else 0, "offers": int(offers),
              "agents": agents, "capacity": agents * 13,
              "mean_decision_us": round(decision_sum / decision_n * 1e6, 1) if decision_n > 0
              else None}
    ratio = router["per_second"] / passthrough["per_second"] if passthrough["per_second"] else 0
    print("\n%-34s %12s" % ("", "tickets/s"))
    print("%-34s %12.0f" % ("pass-through (baseline)", passthrough["per_second"]))
    print("%-34s %12.0f   (%d offers)" % ("sb-router", router["per_second"], router["offers"]))
    print("%-34s %12.3f   (target >= 0.5)" % ("ratio", ratio))
    print(json.dumps({"passthrough": passthrough, "router": router, "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
