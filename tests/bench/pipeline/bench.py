#!/usr/bin/env python3
"""The whole pipeline's benchmark (issue 9), against a baseline chain in the same run.

Pipeline: sb-loadgen posts contacts to sb-ingest (HTTP, durable in Kafka), sb-triage
scores them, sb-router offers them to simulated agents who accept at once (sb-loadgen's
agent simulator, through sb-ingest's agent API), sb-router assigns, sb-reporter projects
the assignment into PostgreSQL. A ticket's latency is from the contact's acceptance by
sb-ingest (payload.received_at) to the moment its ticket.assigned row is in PostgreSQL
(ticket_events.received_at); both clocks are this machine's.

 1. capacity: N contacts as fast as sb-loadgen sends them; sustained contacts/s = tickets
    assigned / (last assignment visible - first contact accepted);
 2. latency at 50 % and 90 % of that rate for a fixed time: p50/p99;
 3. baseline: the same number of contact events through the same Kafka hops (produced
    with kcat, copied topic to topic twice by sb-passthrough, the hops of triage and
    router) and the same PostgreSQL insert (sb-reporter) with no processing;
 4. scale-out: the capacity run again with two instances (one consumer group) of the
    two stages that spent the most time flushing in run 1.
Prints a table and writes JSON to argv[1]. Expects the local stack up and no other
services running on it."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.environ.get("SB_BIN_DIR") or os.path.join(ROOT, "build", "bin")
BROKERS = os.environ.get("SB_KAFKA_BROKERS", "127.0.0.1:19092")
N = int(os.environ.get("SB_BENCH_CONTACTS", "3000"))
SECONDS = int(os.environ.get("SB_BENCH_SECONDS", "20"))
AGENTS = int(os.environ.get("SB_BENCH_AGENTS", "600"))
RUN = uuid.uuid4().hex[:8]
procs = []
admins = {}  # program -> admin port
seeds = iter(range(int(time.time()) % 100000, 10 ** 9))  # each load its own customers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql):
    return subprocess.run(["psql", "-X", "-tAq", "-F", "|", "-c", sql], capture_output=True,
                          text=True, check=True).stdout.strip()


def sbctl(*args):
    return subprocess.run([os.path.join(BIN, "sbctl")] + list(args), capture_output=True,
                          text=True, check=True).stdout


def start(program, instance=1, **env):
    """A service in a consumer group of this run, started at the end of the topics; a
    second instance joins the first one's group (they share the partitions)."""
    group = "bench-%s-%s" % (RUN, program)
    if instance == 1:
        sbctl("offsets", group, "--to", "end")
    admin = free_port()
    e = dict(os.environ, SB_ADMIN_PORT=str(admin), SB_KAFKA_GROUP=group, SB_LOG_LEVEL="warn")
    e.update({k: str(v) for k, v in env.items()})
    name = program if instance == 1 else "%s#%d" % (program, instance)
    log = open(os.path.join(tempfile.gettempdir(), "bench-%s-%s.log" % (RUN, name)), "w")
    p = subprocess.Popen([os.path.join(BIN, program)], env=e, stdout=log, stderr=log)
    procs.append(p)
    admins[name] = admin
    deadline = time.time() + 60
    while time.time() < deadline:
        if p.poll() is not None:
            raise RuntimeError("%s exited; see %s" % (program, log.name))
        try:
            import urllib.request
            if urllib.request.urlopen("http://127.0.0.1:%d/readyz" % admin, timeout=2).status == 200:
                return p
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("%s not ready; see %s" % (program, log.name))


def stop_all():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
    procs.clear()
    admins.clear()


def start_pipeline(port, rport, scaled=(), instances=1):
    """The five services; the programs named in scaled run `instances` instances."""
    start("sb-ingest", SB_HTTP_PORT=port, SB_RATELIMIT_RATE=1e9, SB_RATELIMIT_BURST=1e9)
    for svc in ("sb-triage", "sb-router", "sb-slawatch"):
        for i in range(1, (instances if svc in scaled else 1) + 1):
            start(svc, i)
    for i in range(1, (instances if "sb-reporter" in scaled else 1) + 1):
        start("sb-reporter", i, SB_HTTP_PORT=rport if i == 1 else free_port())


def loadgen(ingest, rate, count, duration, drain):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([os.path.join(BIN, "sb-loadgen"), "--ingest", ingest, "--quiet",
                        "--rate", str(rate), "--count", str(count), "--duration", str(duration),
                        "--mix", "0,1,0,0,0", "--known", "0", "--agents", str(AGENTS),
                        "--accept-s", "0.01", "--handle-s", "20", "--decline", "0",
                        "--drain", str(drain), "--connections", "64", "--seed", str(next(seeds)),
                        "--summary", f.name],
                       check=True, capture_output=True, timeout=duration + drain + 300)
        return json.load(open(f.name, encoding="utf-8"))


def stage_figures():
    """Per stage service: messages consumed, batches flushed and the mean flush time —
    where the time of the pipeline goes."""
    import urllib.request
    out = {}
    for program, port in admins.items():
        try:
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                          timeout=5).read().decode()
        except OSError:
            continue
        vals = {}
        for line in text.splitlines():
            for name in ("sb_stage_messages_total", "sb_stage_flush_seconds_sum",
                         "sb_stage_flush_seconds_count"):
                if line.startswith(name + "{") or line.startswith(name + " "):
                    vals[name] = vals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        if vals:
            n = vals.get("sb_stage_flush_seconds_count", 0)
            out[program] = {"messages": int(vals.get("sb_stage_messages_total", 0)),
                            "flushes": int(n),
                            "flush_ms_mean": round(1e3 * vals.get("sb_stage_flush_seconds_sum", 0)
                                                   / n, 2) if n else None}
    return out


def run_figures(run, wait_s=120):
    """(contacts, assigned, first accept, last assignment visible, p50 s, p99 s) of a run."""
    contacts = ("SELECT ticket_id, (payload ->> 'received_at')::timestamptz AS at FROM "
                "ticket_events WHERE type = 'contact.received' AND payload ->> 'external_id' "
                "LIKE 'lg-%s-%%'" % run)
    q = ("WITH c AS (%s), a AS (SELECT e.ticket_id, min(e.received_at) AS at FROM ticket_events e "
         "JOIN c USING (ticket_id) WHERE e.type = 'ticket.assigned' GROUP BY 1), "
         "l AS (SELECT extract(epoch FROM a.at - min(c.at)) AS s FROM a JOIN c USING (ticket_id) "
         "GROUP BY a.ticket_id, a.at) "
         "SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM a), "
         "extract(epoch FROM (SELECT min(at) FROM c)), extract(epoch FROM (SELECT max(at) FROM a)), "
         "(SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) FROM l), "
         "(SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY s) FROM l)" % contacts)
    deadline, prev, row = time.time() + wait_s, None, None
    while time.time() < deadline:
        row = psql(q).split("|")
        if row[0] != "0" and row[0] == row[1]:
            break
        if row == prev and row[1] != "0":
            time.sleep(5)  # stalled: one more look, then take what is there
            row = psql(q).split("|")
            if row == prev:
                break
        prev = row
        time.sleep(2)
    c, a = int(row[0]), int(row[1])
    f = [float(x) if x else 0.0 for x in row[2:]]
    return c, a, f[0], f[1], f[2], f[3]


def baseline(contacts_run, n):
    """The same contact events, given fresh ids, through kcat → passthrough → passthrough →
    sb-reporter; events/s from the first produce to the last row in PostgreSQL."""
    topics = ["sb.bench.%s.%s" % (RUN, h) for h in ("contacts", "tickets", "routing")]
    spec = {"version": 1, "defaults": {"partitions": 12, "replication_factor": 1,
                                       "retention_ms": 3600000, "cleanup_policy": "delete",
                                       "config": {}},
            "topics": [{"name": t, "key": "bench", "events": []} for t in topics]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    sbctl("topics", "create", "--file", f.name)
    os.unlink(f.name)
    out = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", "sb.contacts.v1", "-o",
                          "s@%d" % int((time.time() - 3600) * 1000), "-e", "-q", "-f",
                          "%k\t%s\n"], capture_output=True, timeout=300).stdout.decode()
    lines = []
    for line in out.splitlines():
        if "lg-%s-" % contacts_run not in line:
            continue
        key, value = line.split("\t", 1)
        ev = json.loads(value)
        ev["event_id"] = ev["event_id"][:24] + uuid.uuid4().hex[:12]
        ev["ticket_id"] = "B" + ev["ticket_id"]
        lines.append("%s\t%s" % (key, json.dumps(ev, ensure_ascii=False)))
        if len(lines) == n:
            break
    data = ("\n".join(lines) + "\n").encode()
    for attempt in range(30):  # the new topics need their leaders
        try:
            sbctl("offsets", "bench-%s-base-rep" % RUN, "--to", "end")
            break
        except subprocess.CalledProcessError:
            time.sleep(1)
    rep = start("sb-reporter", SB_KAFKA_GROUP="bench-%s-base-rep" % RUN, SB_TOPICS=topics[2],
                SB_HTTP_PORT=free_port())
    hops = [subprocess.Popen([os.path.join(BIN, "sb-passthrough"), "--in", a, "--out", b,
                              "--count", str(len(lines)), "--group", "bench-%s-%d" % (RUN, i)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i, (a, b) in enumerate(zip(topics, topics[1:]))]
    time.sleep(3)  # the pass-through consumers join
    t0 = time.time()
    subprocess.run(["kcat", "-b", BROKERS, "-P", "-t", topics[0], "-K", "\t", "-z", "none"],
                   input=data, check=True, timeout=300)
    q = ("SELECT count(*), extract(epoch FROM max(received_at)) FROM ticket_events WHERE "
         "topic = '%s'" % topics[2])
    deadline, row = time.time() + 600, ["0", ""]
    while time.time() < deadline:
        row = psql(q).split("|")
        if int(row[0]) >= len(lines):
            break
        time.sleep(1)
    for h in hops:
        h.wait(60)
    rep.send_signal(signal.SIGTERM)
    rep.wait(30)
    procs.remove(rep)
    done = int(row[0])
    secs = float(row[1]) - t0 if row[1] else 0
    return {"messages": done, "seconds": round(secs, 2),
            "per_second": round(done / secs, 1) if secs > 0 else 0}


def main():
    out_path = sys.argv[1]
    port, rport = free_port(), free_port()
    ingest = "http://127.0.0.1:%d" % port
    try:
        start_pipeline(port, rport)
        print("pipeline: five services up (run %s), %d agents" % (RUN, AGENTS))

        cap = loadgen(ingest, 100000, N, 600, 120)
        c, a, first, last, p50, p99 = run_figures(cap["run"])
        rate = a / (last - first) if last > first else 0
        print("capacity: %d contacts, %d assigned in %.1f s → %.1f contacts/s (p50 %.2f s, "
              "p99 %.2f s under the burst)" % (c, a, last - first, rate, p50, p99))
        res = {"run": RUN, "contacts": N, "agents": AGENTS,
               "capacity": {"contacts": c, "assigned": a, "seconds": round(last - first, 2),
                            "per_second": round(rate, 1), "p50_s": p50, "p99_s": p99},
               "stages_after_capacity_run": stage_figures()}
        for program, f in res["stages_after_capacity_run"].items():
            print("  %-12s %8d messages, %6d flushes, mean flush %s ms" %
                  (program, f["messages"], f["flushes"], f["flush_ms_mean"]))
        for share in (0.5, 0.9):
            r = max(1.0, rate * share)
            lg = loadgen(ingest, "%.2f" % r, int(r * SECONDS) + 1, SECONDS, 60)
            c2, a2, f2, l2, q50, q99 = run_figures(lg["run"])
            print("at %d %% (%.1f/s for %d s): %d contacts, %d assigned, latency p50 %.3f s, "
                  "p99 %.3f s" % (share * 100, r, SECONDS, c2, a2, q50, q99))
            res["at_%d" % int(share * 100)] = {"rate": round(r, 1), "contacts": c2,
                                               "assigned": a2, "p50_s": q50, "p99_s": q99}
        stop_all()
        base = baseline(cap["run"], c)
        res["baseline"] = base
        res["ratio"] = round(rate / base["per_second"], 3) if base["per_second"] else None
        print("\n%-36s %12s %12s" % ("", "contacts/s", "messages"))
        print("%-36s %12.1f %12d" % ("pipeline (HTTP → assigned in PG)", rate, a))
        print("%-36s %12.1f %12d" % ("baseline (same hops, no processing)", base["per_second"],
                                     base["messages"]))
        print("%-36s %12s" % ("ratio pipeline / baseline", res["ratio"]))

        # Scale-out: the two slowest stages (by their total flush time in the capacity
        # run) with two instances each, in their groups, and the same capacity run again.
        stages = res["stages_after_capacity_run"]
        slow = sorted((p for p in stages if p != "sb-ingest"),
                      key=lambda p: -(stages[p]["flush_ms_mean"] or 0) * stages[p]["flushes"])[:2]
        start_pipeline(port, rport, scaled=slow, instances=2)
        time.sleep(5)  # the groups settle their partitions between the two instances
        cap2 = loadgen(ingest, 100000, N, 600, 120)
        c3, a3, f3, l3, s50, s99 = run_figures(cap2["run"])
        rate2 = a3 / (l3 - f3) if l3 > f3 else 0
        res["scale_out"] = {"two_instances_of": slow, "contacts": c3, "assigned": a3,
                            "per_second": round(rate2, 1), "p50_s": s50, "p99_s": s99,
                            "speedup": round(rate2 / rate, 3) if rate else None,
                            "stages": stage_figures()}
        stop_all()
        print("%-36s %12.1f %12d" % ("pipeline, 1 instance per stage", rate, a))
        print("%-36s %12.1f %12d" % ("pipeline, 2 of " + " and ".join(slow), rate2, a3))
        print("%-36s %12s" % ("speed-up", res["scale_out"]["speedup"]))
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2)
        print("results: " + out_path)
    finally:
        stop_all()


if __name__ == "__main__":
    main()
