#!/usr/bin/env python3
"""Demo traffic for the local stack: signed contacts on every channel through sb-ingest,
an idempotent replay, a refused forgery, then the contact.received events read back from
Kafka and summarised. Texts come from ../shared/data when it is there (real customer
queries), else from a few built-in examples."""
import collections
import csv
import hashlib
import hmac
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INGEST = os.environ.get("SB_INGEST_URL", "http://127.0.0.1:8080")
BROKERS = os.environ.get("KCAT_BROKERS", "127.0.0.1:19092")
BIN = os.environ.get("SB_BIN_DIR") or os.path.join(ROOT, "build", "bin")
SECRETS = {c: "dev-secret-" + c for c in ("api", "chat", "social", "phone", "email")}
BUILTIN = ["我的订单 202405201234 付款失败，提示错误 E1023", "How do I reset my password?",
           "快递三天没有更新物流信息了", "I was charged twice for the same order",
           "账号被锁定无法登录", "The app crashes when I open the cart page"]


def texts(n):
    path = os.path.join(ROOT, "..", "shared", "data", "banking77", "test.csv")
    if not os.path.exists(path):
        print("demo: ../shared/data not found; using built-in example texts")
        return [random.choice(BUILTIN) for _ in range(n)]
    with open(path, encoding="utf-8") as f:
        rows = [r["text"] for r in csv.DictReader(f)]
    random.shuffle(rows)
    return rows[:n]


def post(path, body, channel, content_type="application/json", headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    t = str(int(time.time()))
    sig = hmac.new(SECRETS[channel].encode(), t.encode() + b"." + raw, hashlib.sha256).hexdigest()
    h = {"Content-Type": content_type, "X-SB-Signature": "t=%s,v1=%s" % (t, sig)}
    h.update(headers or {})
    req = urllib.request.Request(INGEST + path, data=raw, headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


START_MS = int(time.time() * 1000) - 5000


def main():
    random.seed(int(os.environ.get("SB_DEMO_SEED", "7")))
    run = "%x" % int(time.time())
    sent = collections.Counter()
    latencies = []
    # Customers of this run (phones and social ids drawn from the run's clock), so that
    # their contacts open new tickets; chat visitors are CRM customers (tiers).
    base = int(time.time()) % 100000
    phones = ["139%03d%05d" % (i, base) for i in range(1, 40)]
    for i, text in enumerate(texts(60)):
        kind = i % 4
        t0 = time.monotonic()
        if kind == 0:
            st, body = post("/v1/contacts", {"channel": "web", "external_id": "%s-w%d" % (run, i),
                                             "customer": {"phone": random.choice(phones)},
                                             "subject": text[:40], "body": text}, "api")
            ch = "web"
        elif kind == 1:
            st, body = post("/v1/channels/chat", {"session_id": "s-%s-%d" % (run, i % 7),
                                                  "message_id": "%s-c%d" % (run, i),
                                                  "visitor": {"customer_no": "C%d" % (1000 + i % 30)},
                                                  "text": text}, "chat")
            ch = "chat"
        elif kind == 2:
            st, body = post("/v1/channels/social", {"platform": "weibo", "post_id": "%s-p%d" % (run, i),
                                                    "author": {"social_id": "wb%d-%s" % (i % 11, run), "name": "fan"},
                                                    "text": text, "public": True,
                                                    "sentiment": random.choice(["negative", "neutral"])},
                            "social")
            ch = "social"
        else:
            st, body = post("/v1/channels/phone", {"call_id": "%s-call%d" % (run, i),
                                                   "event": random.choice(["offered", "abandoned"]),
                                                   "caller": random.choice(phones), "wait_seconds": 42},
                            "phone")
            ch = "phone"
        latencies.append((time.monotonic() - t0) * 1000)
        sent[(ch, st)] += 1
    email = ("From: =?UTF-8?B?5byg5LiJ?= <Zhang.San@Example.cn>\r\nTo: service@shop.cn\r\n"
             "Subject: =?UTF-8?B?6YCA5qy+6L+b5bqm?=\r\nMessage-ID: <%s@mail.example.cn>\r\n"
             "Date: Mon, 20 May 2024 14:00:00 +0800\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
             "请问我的退款什么时候到账？\r\n\r\n在 2024年5月19日 10:00，客服 写道：\r\n> 您好\r\n" % run).encode()
    st, body = post("/v1/channels/email", email, "email", "message/rfc822")
    sent[("email", st)] += 1
    first = {"channel": "chat", "external_id": run + "-dup", "customer": {"email": "dup@example.cn"}, "body": "hello"}
    st1, b1 = post("/v1/contacts", first, "api")
    st2, b2 = post("/v1/contacts", first, "api")
    forged_status, forged = post("/v1/contacts", first, "chat")  # wrong secret
    print("\n== intake")
    for (ch, st), n in sorted(sent.items()):
        print("  %-7s HTTP %s x %d" % (ch, st, n))
    latencies.sort()
    print("  latency from request to durable 202: p50 %.1f ms, p99 %.1f ms" %
          (latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]))
    print("  replay of the same message id: HTTP %s then %s, same ticket: %s" %
          (st1, st2, b1.get("ticket_id") == b2.get("ticket_id")))
    print("  forged signature: HTTP %s %s" % (forged_status, forged["error"]["message"]))

    out = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", "sb.contacts.v1", "-o",
                          "s@%d" % START_MS, "-e", "-q"], capture_output=True, text=True,
                         timeout=60).stdout
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    mine = [e for e in events if run in e["payload"]["external_id"]]
    by_channel = collections.Counter(e["payload"]["channel"] for e in mine)
    tickets = {e["ticket_id"] for e in mine}
    print("\n== sb.contacts.v1 (read back from Kafka)")
    print("  %d contact.received events of this run, %d tickets" % (len(mine), len(tickets)))
    for ch, n in sorted(by_channel.items()):
        print("  %-7s %d" % (ch, n))
    joined = sum(1 for e in mine if not e["payload"]["new_ticket"])
    print("  contacts that joined the customer's open ticket: %d" % joined)
    flagged = sum(1 for e in mine if e["payload"]["metadata"].get("public_negative"))
    print("  public negative posts flagged for the 2-hour rule: %d" % flagged)
    callbacks = sum(1 for e in mine if e["payload"]["metadata"].get("callback_requested"))
    print("  abandoned calls turned into callback contacts: %d" % callbacks)
    if mine:
        print("\n  one event:\n  " + json.dumps(mine[-1], ensure_ascii=False)[:400] + "…")
    ok = all(st == 202 for (ch, st) in sent) and len(mine) >= sum(sent.values()) + 1
    opened = {e["ticket_id"] for e in mine if e["payload"]["new_ticket"]}
    rc = (0 if ok else 1) | triage_summary(opened)
    return rc | reporter_summary(tickets)


def reporter_summary(tickets):
    """The same tickets as sb-reporter projected them into PostgreSQL, when it runs."""
    if not os.path.exists(os.path.join(BIN, "sb-reporter")) or not tickets:
        return 0
    ids = ",".join("'%s'" % t.replace("'", "") for t in tickets)
    sql = ("SELECT count(*), count(band), coalesce(sum(contacts), 0), count(incident_id) "
           "FROM tickets WHERE id IN (%s)" % ids)
    deadline, row = time.time() + 20, ["0", "0", "0", "0"]
    while time.time() < deadline:
        out = subprocess.run(["psql", "-tAc", sql], capture_output=True, text=True,
                             check=False).stdout.strip()
        row = out.split("|") if out else row
        if row[0] == str(len(tickets)) and row[1] == row[0]:
            break
        time.sleep(0.5)
    print("\n== PostgreSQL (sb-reporter projection, what BI tools read)")
    print("  tickets: %s of %d, scored: %s, contacts: %s, in an incident: %s" %
          (row[0], len(tickets), row[1], row[2], row[3]))
    return 0 if row[0] != "0" else 1


def triage_summary(tickets):
    """What sb-triage made of this run's tickets (sb.tickets.v1), when it runs."""
    if not os.path.exists(os.path.join(BIN, "sb-triage")):
        return 0
    deadline, triaged, others = time.time() + 30, {}, []
    while time.time() < deadline:
        out = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", "sb.tickets.v1", "-o",
                              "s@%d" % START_MS, "-e", "-q"], capture_output=True, text=True,
                             timeout=60).stdout
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        triaged = {e["ticket_id"]: e for e in events
                   if e["type"] == "ticket.triaged" and e["ticket_id"] in tickets}
        others = [e for e in events if e["type"] != "ticket.triaged"
                  and e.get("ticket_id") in tickets]
        # A contact that joined an open ticket (of an earlier run) re-scores that ticket.
        scored = set(triaged) | {e["ticket_id"] for e in others if e["type"] == "ticket.rescored"}
        if len(scored) >= len(tickets):
            break
        time.sleep(0.5)
    print("\n== sb.tickets.v1 (sb-triage)")
    print("  %d of %d tickets scored: %d new, %d open tickets of earlier contacts re-scored"
          % (len(scored), len(tickets), len(triaged), len(scored - set(triaged))))
    bands = collections.Counter(e["payload"]["band"] for e in triaged.values())
    domains = collections.Counter(e["payload"]["domain"] for e in triaged.values())
    print("  by band:   " + ", ".join("%s %d" % kv for kv in sorted(bands.items())))
    print("  by domain: " + ", ".join("%s %d" % kv for kv in domains.most_common()))
    flags = collections.Counter(k for e in triaged.values()
                                for k, v in e["payload"]["flags"].items() if v)
    print("  flags:     " + (", ".join("%s %d" % kv for kv in sorted(flags.items())) or "none"))
    rescored = collections.Counter(e["payload"].get("reason") for e in others
                                   if e["type"] == "ticket.rescored")
    print("  re-scored: " + (", ".join("%s %d" % kv for kv in rescored.items()) or "none"))
    if triaged:
        p = max(triaged.values(), key=lambda e: e["payload"]["score"])["payload"]
        print("  highest:   %s score %d (%s) — %s" % (p["band"], p["score"], p["label"],
                                                    p["fivew1h"].get("what", "")[:60]))
        print("             masked: " + p["masked_body"][:100])
    if len(scored) < len(tickets):
        print("  (the rest are still queued behind older contacts on sb.contacts.v1)")
    return 0 if scored or not tickets else 1


if __name__ == "__main__":
    sys.exit(main())
