#!/usr/bin/env python3
"""The demo's closing summary, for a contact-center manager: what happened to the tickets
of one sb-loadgen run, read from PostgreSQL as sb-reporter projected it (the tables BI
tools read). Usage: demo_summary.py LOADGEN_SUMMARY.json"""
import json
import os
import subprocess
import sys
import time


def psql(sql):
    out = subprocess.run(["psql", "-X", "-tA", "-F", "\t", "-c", sql], capture_output=True,
                         text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def one(sql):
    rows = psql(sql)
    return rows[0] if rows else []


def pct(n, d):
    return "%.0f %%" % (100.0 * n / d) if d else "—"


def minutes(s):
    if s in (None, ""):
        return "—"
    s = float(s)
    return "%.0f s" % s if s < 120 else "%.1f min" % (s / 60)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        lg = json.load(f)
    run = lg["run"]
    accepted = lg["contacts"]["accepted"]
    # The run's tickets: those whose contacts carry the run's external ids.
    mine = ("SELECT DISTINCT ticket_id FROM ticket_events WHERE type = 'contact.received' "
            "AND payload ->> 'external_id' LIKE 'lg-%s-%%'" % run)
    deadline, got = time.time() + 60, 0
    while time.time() < deadline:  # the projection catches up with the last contacts
        got = int(one("SELECT count(*) FROM ticket_events WHERE type = 'contact.received' "
                      "AND payload ->> 'external_id' LIKE 'lg-%s-%%'" % run)[0])
        if got >= accepted:
            break
        time.sleep(1)
    # Tickets the run opened (a contact of a CRM customer may join a ticket older than
    # the run, whose waits are not the run's).
    start = one("SELECT min((payload ->> 'received_at')::timestamptz) FROM ticket_events WHERE "
                "type = 'contact.received' AND payload ->> 'external_id' LIKE 'lg-%s-%%'" % run)
    t = ("(SELECT * FROM bi.tickets WHERE ticket_id IN (%s) AND created_at >= '%s')"
         % (mine, start[0] if start and start[0] else "-infinity"))
    total = int(one("SELECT count(*) FROM %s x" % t)[0])

    print("\n== The demo in numbers (PostgreSQL, as BI tools see it)")
    print("  contacts: %d sent, %d accepted (HTTP 202 p50 %.1f ms, p99 %.1f ms), %d in the "
          "event log" % (lg["contacts"]["sent"], accepted, lg["contacts"]["accept_ms"]["p50"],
                         lg["contacts"]["accept_ms"]["p99"], got))
    print("  tickets:  %d opened by the run (follow-up contacts join the customer's open "
          "ticket)" % total)

    print("\n  tickets by band and channel")
    rows = psql("SELECT coalesce(band, '(untriaged)'), channel, count(*) FROM %s x "
                "GROUP BY 1, 2 ORDER BY 1, 2" % t)
    channels = sorted({r[1] for r in rows})
    bands = sorted({r[0] for r in rows})
    cells = {(r[0], r[1]): r[2] for r in rows}
    print("    %-12s" % "band" + "".join("%9s" % c for c in channels))
    for b in bands:
        print("    %-12s" % b + "".join("%9s" % cells.get((b, c), "·") for c in channels))

    print("\n  waiting and handling")
    w = one("SELECT count(assigned_at), percentile_cont(0.5) WITHIN GROUP (ORDER BY "
            "extract(epoch FROM assigned_at - created_at)), percentile_cont(0.9) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM assigned_at - created_at)), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_s), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY first_resolution_s), "
            "count(first_resolved_at) FROM %s x" % t)
    print("    assigned to an agent: %s of %d; wait for an agent p50 %s, p90 %s" %
          (w[0], total, minutes(w[1]), minutes(w[2])))
    print("    first response p50 %s; resolved %s (%s), time to resolve p50 %s" %
          (minutes(w[3]), w[5], pct(int(w[5]), total), minutes(w[4])))
    print("    agents simulated: %d (offers %d, declined %d, resolved %d)" %
          (lg["agents"]["count"], lg["agents"]["offered"], lg["agents"]["declined"],
           lg["agents"]["resolved"]))

    print("\n  service quality")
    fcr = one("SELECT count(*) FILTER (WHERE first_contact_resolved), "
              "count(first_contact_resolved) FROM %s x" % t)
    print("    first-contact resolution: %s (%s of %s resolved tickets with a reply)" %
          (pct(int(fcr[0]), int(fcr[1])), fcr[0], fcr[1]))
    c = one("SELECT round(avg(csat), 2), count(csat), count(*) FILTER (WHERE csat >= 4) "
            "FROM %s x" % t)
    dist = psql("SELECT csat, count(*) FROM %s x WHERE csat IS NOT NULL GROUP BY 1 ORDER BY 1"
                % t)
    print("    CSAT: mean %s of %s answers, satisfied (4-5) %s; %s" %
          (c[0] or "—", c[1], pct(int(c[2]), int(c[1])),
           " ".join("%s★ %s" % (r[0], r[1]) for r in dist) or "no answers yet"))
    s = one("SELECT count(*) FILTER (WHERE type = 'sla.started'), "
            "count(*) FILTER (WHERE type = 'sla.warning'), "
            "count(*) FILTER (WHERE type = 'sla.breached'), "
            "count(*) FILTER (WHERE type = 'sla.escalated') FROM ticket_events "
            "WHERE ticket_id IN (%s)" % mine)
    print("    SLA clocks started %s; warnings %s, breaches %s, escalations %s so far "
          "(targets: P1 10 min … P4 24 h to first response)" % tuple(s))
    inc = psql("SELECT i.id, i.domain, i.member_count FROM incidents i WHERE i.id IN (SELECT "
               "DISTINCT incident_id FROM %s x WHERE incident_id IS NOT NULL)" % t)
    print("    incidents detected: %d%s" % (len(inc), "".join(
        "\n      %s: %s, %s similar contacts" % (r[0], r[1], r[2]) for r in inc)))
    dlq = one("SELECT count(*) FROM dlq_entries WHERE occurred_at > now() - interval '10 minutes'")
    print("    dead letters in the last 10 minutes: %s" % dlq[0])
    return 0 if got >= accepted and total > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
