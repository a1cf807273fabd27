#!/usr/bin/env python3
"""sb-reporter's read API and dashboard on the real stack. Two teams, three agents and their
tokens (sbctl token create), and a scripted day of tickets (its own day, far in the past,
so no other test's tickets fall on it) projected into PostgreSQL through sb_project() —
the reporter's own projection function — then read back over HTTP: a ticket's timeline in
order, search filters and keyset pages, role scope (agent: own tickets, lead: team,
supervisor: all), 400 naming the bad parameter, 401, 403, 404, the live queue and agent
views, reports as CSV and HTML, the day's metric summary, and the dashboard page with
every API call its script makes."""
import datetime
import json
import os
import re
import sys
import time
import unittest
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_projection import Service, example  # noqa: E402
from test_triage_stack import uuid7  # noqa: E402
import harness  # noqa: E402

RUN = uuid.uuid4().hex[:8]
# A day of its own (1980-1993; test_bi uses 2001-2014).
DAY = datetime.date(1980, 1, 1) + datetime.timedelta(days=int(RUN, 16) % 5000)
TEAM_A, TEAM_B = "tapi-a-%s" % RUN, "tapi-b-%s" % RUN
A1, A2, B1 = "a-api-%s-1" % RUN, "a-api-%s-2" % RUN, "a-api-%s-3" % RUN
QUEUE = "q-api-%s" % RUN
ADMIN = "test-admin-token-%s" % RUN


def at(hms):
    return "%sT%s.000Z" % (DAY.isoformat(), hms)


def ev(type_, tid, when, **payload):
    e = example(type_, tid, **payload)
    e["occurred_at"] = at(when)
    e["event_id"] = uuid7()
    return e


def actor(agent):
    return {"role": "agent", "agent_id": agent}


def project(events):
    """Projects events (topic, event) through sb_project() in one transaction."""
    batch = [{"topic": topic, "partition": 0, "offset": i, "event": e}
             for i, (topic, e) in enumerate(events)]
    text = json.dumps(batch, ensure_ascii=False)
    assert "$sbj$" not in text
    return harness.psql("SELECT sb_project($sbj$%s$sbj$::jsonb)" % text)


def ticket_events(tid, when, agent=None, band="P2", status=None, csat=None, queue=QUEUE):
    """A ticket's events from its contact at `when` (HH:MM:SS) on: triaged, queued, and when
    agent is given assigned and replied; then status and CSAT when given."""
    h, m, s = (int(x) for x in when.split(":"))
    t0 = datetime.datetime(2000, 1, 1, h, m, s)

    def plus(sec):
        return (t0 + datetime.timedelta(seconds=sec)).strftime("%H:%M:%S")

    c = ev("contact.received", tid, when, customer_key="C-%s" % RUN, received_at=at(when),
           channel="chat")
    out = [("sb.contacts.v1", c),
           ("sb.tickets.v1", ev("ticket.triaged", tid, plus(2), band=band, incident_id=None)),
           ("sb.routing.v1", ev("ticket.queued", tid, plus(3), queue=queue, band=band))]
    if agent:
        out.append(("sb.routing.v1", ev("ticket.assigned", tid, plus(60), agent_id=agent,
                                         queue=queue)))
        out.append(("sb.activity.v1", ev("agent.replied", tid, plus(120), actor=actor(agent),
                                          public=True)))
    if status:
        out.append(("sb.activity.v1", ev("ticket.status_changed", tid, plus(600),
                                          actor=actor(agent or A1), status=status)))
    if csat:
        out.append(("sb.activity.v1", ev("csat.received", tid, plus(700), score=csat)))
    return out


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.psql("INSERT INTO teams (id, name) VALUES ('%s', 'API test A'), "
                     "('%s', 'API test B')" % (TEAM_A, TEAM_B))
        harness.psql("INSERT INTO agents (id, name, team_id, role) VALUES "
                     "('%s', 'Agent A1', '%s', 'agent'), ('%s', 'Agent A2', '%s', 'lead'), "
                     "('%s', 'Agent B1', '%s', 'agent')" % (A1, TEAM_A, A2, TEAM_A, B1, TEAM_B))
        cls.tok = {
            "agent_a1": harness.sbctl("token", "create", "--role", "agent", "--agent", A1),
            "lead_a": harness.sbctl("token", "create", "--role", "lead", "--agent", A2),
            "agent_b1": harness.sbctl("token", "create", "--role", "agent", "--agent", B1),
            "supervisor": harness.sbctl("token", "create", "--role", "supervisor"),
            "admin": ADMIN,
        }
        cls.t = {i: "T-api-%s-%d" % (RUN, i) for i in range(1, 7)}
        t = cls.t
        events = []
        events += ticket_events(t[1], "09:00:00", A1, "P1", "resolved", 5)
        events += ticket_events(t[2], "09:10:00", A1, "P2")
        events += ticket_events(t[3], "09:20:00", B1, "P2", "resolved", 3)
        events += ticket_events(t[4], "10:00:00", None, "P3")
        events += ticket_events(t[5], "11:00:00", None, "P4")
        events += ticket_events(t[6], "12:00:00", B1, "P3", "pending_customer")
        # Out of order on purpose: the timeline is ordered by occurrence, not arrival.
        events.reverse()
        cls.nevents = {tid: sum(1 for _, e in events if e.get("ticket_id") == tid)
                       for tid in t.values()}
        project(events)
        # The waiting tickets in QUEUE belong to a day long past: today's live view still
        # shows them, oldest first.
        cls.port = harness.free_port()
        # At risk: due within 30 minutes (the default is 15).
        cls.reporter = Service("sb-reporter", SB_HTTP_PORT=cls.port, SB_ADMIN_TOKEN=ADMIN,
                               SB_REPORTS_ENABLED="false", SB_HTTP_THREADS="4",
                               SB_API_SLA_DUE_SOON_S="1800")

    @classmethod
    def tearDownClass(cls):
        assert cls.reporter.stop() == 0
        harness.psql("UPDATE api_tokens SET revoked_at = now() WHERE agent_id IN ('%s', '%s', "
                     "'%s')" % (A1, A2, B1))

    def get(self, path, who="admin"):
        headers = {"Authorization": "Bearer " + self.tok[who]} if who else {}
        return harness.request("http://127.0.0.1:%d%s" % (self.port, path), headers=headers,
                               timeout=60)

    def ok(self, path, who="admin"):
        status, body, _ = self.get(path, who)
        self.assertEqual(status, 200, "%s: %s" % (path, body))
        return body

    def day_search(self, who="admin", **params):
        q = {"from": DAY.isoformat(), "to": DAY.isoformat()}
        q.update(params)
        return self.ok("/api/v1/tickets?" + urllib.parse.urlencode(q), who)

    # ------------------------------------------------------------------ tickets
    def test_ticket_with_timeline_in_order(self):
        body = self.ok("/api/v1/tickets/" + self.t[1])
        self.assertEqual(body["ticket_id"], self.t[1])
        self.assertEqual((body["status"], body["band"], body["owner_agent_id"], body["csat"],
                          body["queue"]), ("resolved", "P1", A1, 5, QUEUE))
        types = [e["type"] for e in body["timeline"]]
        self.assertEqual(types, ["contact.received", "ticket.triaged", "ticket.queued",
                                 "ticket.assigned", "agent.replied", "ticket.status_changed",
                                 "csat.received"])
        times = [e["occurred_at"] for e in body["timeline"]]
        self.assertEqual(times, sorted(times))
        self.assertEqual(len(body["timeline"]), self.nevents[self.t[1]])
        # The /v1 prefix of proto/openapi.yaml is the same resource.
        self.assertEqual(self.ok("/v1/tickets/" + self.t[1])["ticket_id"], self.t[1])

    def test_search_filters(self):
        ids = [i["ticket_id"] for i in self.day_search(limit=50)["items"]]
        self.assertEqual(ids, [self.t[i] for i in (6, 5, 4, 3, 2, 1)], "newest first")
        self.assertEqual({i["ticket_id"] for i in self.day_search(status="resolved")["items"]},
                         {self.t[1], self.t[3]})
        self.assertEqual({i["ticket_id"] for i in self.day_search(band="P3,P4")["items"]},
                         {self.t[4], self.t[5], self.t[6]})
        self.assertEqual({i["ticket_id"] for i in self.day_search(agent=B1)["items"]},
                         {self.t[3], self.t[6]})
        self.assertEqual(len(self.day_search(queue=QUEUE)["items"]), 6)
        self.assertEqual({i["ticket_id"] for i in self.day_search(
            **{"from": at("09:30:00"), "to": at("11:30:00").replace(".000Z", "+00:00")}
        )["items"]}, {self.t[4], self.t[5]})

    def test_keyset_pages(self):
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            body = self.day_search(**params)
            pages += 1
            self.assertLessEqual(len(body["items"]), 2)
            seen += [i["ticket_id"] for i in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
            self.assertLess(pages, 10)
        self.assertEqual(seen, [self.t[i] for i in (6, 5, 4, 3, 2, 1)])
        self.assertEqual(pages, 3)

    # ------------------------------------------------------------------ roles
    def test_agent_sees_only_own_tickets(self):
        self.assertEqual(self.ok("/api/v1/tickets/" + self.t[1], "agent_a1")["ticket_id"],
                         self.t[1])
        status, body, _ = self.get("/api/v1/tickets/" + self.t[3], "agent_a1")
        self.assertEqual(status, 403, body)
        self.assertEqual(body["error"]["code"], "forbidden")
        status, body, _ = self.get("/api/v1/tickets/" + self.t[4], "agent_a1")  # nobody's
        self.assertEqual(status, 403, body)
        self.assertEqual({i["ticket_id"] for i in self.day_search("agent_a1")["items"]},
                         {self.t[1], self.t[2]})
        status, body, _ = self.get("/api/v1/tickets?agent=" + B1, "agent_a1")
        self.assertEqual((status, body["error"]["field"]), (403, "agent"))
        status, body, _ = self.get("/api/v1/reports", "agent_a1")
        self.assertEqual(status, 403, body)

    def test_lead_sees_team_supervisor_all(self):
        self.assertEqual({i["ticket_id"] for i in self.day_search("lead_a")["items"]},
                         {self.t[1], self.t[2]})
        status, _, _ = self.get("/api/v1/tickets/" + self.t[6], "lead_a")
        self.assertEqual(status, 403)
        self.assertEqual(len(self.day_search("supervisor")["items"]), 6)
        self.ok("/api/v1/tickets/" + self.t[6], "supervisor")
        agents = {a["agent_id"] for a in self.ok("/api/v1/agents", "lead_a")["agents"]}
        self.assertIn(A1, agents)
        self.assertNotIn(B1, agents)
        self.assertEqual([a["agent_id"] for a in self.ok("/api/v1/agents", "agent_b1")["agents"]],
                         [B1])

    def test_credentials(self):
        status, body, hdrs = self.get("/api/v1/queues", None)
        self.assertEqual((status, body["error"]["code"], body["error"]["field"]),
                         (401, "unauthorized", "Authorization"))
        self.tok["bogus"] = "sbt_" + "0" * 64
        status, body, _ = self.get("/api/v1/queues", "bogus")
        self.assertEqual(status, 401)

    # ------------------------------------------------------------------ errors
    def test_bad_parameters_are_named(self):
        cases = [("limit=0", "limit"), ("limit=abc", "limit"), ("limit=501", "limit"),
                 ("from=2024-02-30", "from"), ("to=yesterday", "to"),
                 ("from=2024-01-01T10:00:00", "from"), ("band=P7", "band"),
                 ("status=Resolved!", "status"), ("cursor=junk", "cursor"),
                 ("agent=a%20b", "agent")]
        for query, field in cases:
            with self.subTest(query=query):
                status, body, _ = self.get("/api/v1/tickets?" + query)
                self.assertEqual(status, 400, body)
                self.assertEqual(body["error"]["code"], "invalid")
                self.assertEqual(body["error"]["field"], field)
        for path, field in [("/api/v1/metrics/summary?date=2024-13-01", "date"),
                            ("/api/v1/reports?kind=yearly", "kind"),
                            ("/api/v1/reports/daily/01-02-2024.csv", "date"),
                            ("/api/v1/agents?date=x", "date")]:
            with self.subTest(path=path):
                status, body, _ = self.get(path)
                self.assertEqual((status, body["error"]["field"]), (400, field), body)

    def test_not_found(self):
        status, body, _ = self.get("/api/v1/tickets/T-no-such-%s" % RUN)
        self.assertEqual((status, body["error"]["code"]), (404, "not_found"))
        status, body, _ = self.get("/api/v1/nothing")
        self.assertEqual(status, 404)
        status, body, _ = self.get("/api/v1/reports/daily/1970-01-01.csv")
        self.assertEqual(status, 404)
        status, body, _ = harness.request("http://127.0.0.1:%d/api/v1/queues" % self.port,
                                          body=b"{}", headers={"Content-Type":
                                                               "application/json"})
        self.assertEqual(status, 405)

    # ------------------------------------------------------------------ live views
    def test_queue_view(self):
        body = self.ok("/api/v1/queues", "agent_a1")
        mine = [q for q in body["queues"] if q["queue"] == QUEUE]
        self.assertEqual(sorted((q["band"], q["waiting"]) for q in mine), [("P3", 1), ("P4", 1)])
        for q in mine:
            self.assertGreater(q["oldest_wait_s"], 86400)
        self.assertGreaterEqual(body["waiting"], 2)
        chat = [c for c in body["channels"] if c["channel"] == "chat"]
        self.assertEqual(len(chat), 1)
        self.assertIn("router_estimate", chat[0])

    def test_agent_view(self):
        agents = {a["agent_id"]: a for a in self.ok("/api/v1/agents")["agents"]}
        self.assertEqual(agents[A1]["open_tickets"], 1)   # t2 (t1 resolved)
        self.assertEqual(agents[B1]["open_tickets"], 1)   # t6 pending_customer
        self.assertEqual(agents[A1]["team_id"], TEAM_A)
        day = self.ok("/api/v1/agents?date=" + DAY.isoformat())
        a1 = {a["agent_id"]: a for a in day["agents"]}[A1]
        self.assertEqual((a1["resolved_today"], a1["replies_today"]), (1, 2))

    def test_sla_risks_with_overdue_slips(self):
        # t2 (A1's, open): its resolution clock breached 5 minutes ago; and its slips to
        # team B: one 10 minutes past due, one due in 5 minutes, one in 20 minutes (at
        # risk with this reporter's 30-minute horizon), one due in an hour (not yet at
        # risk), one past due but answered (done).
        t2 = self.t[2]
        now = datetime.datetime.now(datetime.timezone.utc)

        def iso(d):
            return d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

        clock = "%s:resolution" % t2
        sla = []
        for type_, ago, extra in (("sla.started", 3600, {"target_s": 3300}),
                                  ("sla.breached", 240, {"late_ms": 60000, "agent_id": A1})):
            e = example(type_, t2, clock_id=clock, kind="resolution", band="P2",
                        target_at=iso(now - datetime.timedelta(seconds=300)), **extra)
            e["occurred_at"] = iso(now - datetime.timedelta(seconds=ago))
            e["event_id"] = uuid7()
            sla.append(("sb.sla.v1", e))
        project(sla)
        slips = {k: "S-%s-%s" % (k, RUN) for k in ("late", "soon", "mid", "later", "answered")}
        harness.psql(
            "INSERT INTO ticket_slips (id, ticket_id, kind, department, question, sent_by, "
            "sent_at, due_at) VALUES "
            "('{late}', '{t}', 'consultation', '{d}', 'q', '{a}', now() - interval '2 hours', "
            "now() - interval '10 minutes'), "
            "('{soon}', '{t}', 'complaint', '{d}', 'q', '{a}', now(), "
            "now() + interval '5 minutes'), "
            "('{mid}', '{t}', 'consultation', '{d}', 'q', '{a}', now(), "
            "now() + interval '20 minutes'), "
            "('{later}', '{t}', 'complaint', '{d}', 'q', '{a}', now(), "
            "now() + interval '1 hour'); "
            "INSERT INTO ticket_slips (id, ticket_id, kind, department, question, sent_by, "
            "sent_at, due_at, state, answer, answered_by, answered_at) VALUES "
            "('{answered}', '{t}', 'consultation', '{d}', 'q', '{a}', now() - interval "
            "'2 hours', now() - interval '1 hour', 'answered', 'a', '{b}', now())"
            .format(t=t2, d=TEAM_B, a=A1, b=B1, **slips))
        try:
            body = self.ok("/api/v1/sla/risks?limit=500", "agent_a1")
            got = {x["clock_id"]: (x["kind"], x["state"], x["band"], x["owner_agent_id"])
                   for x in body["items"]}
            self.assertEqual(got, {
                clock: ("resolution", "breached", "P2", A1),
                "slip:" + slips["late"]: ("consultation_slip", "breached", "P2", A1),
                "slip:" + slips["soon"]: ("complaint_slip", "due_soon", "P2", A1),
                "slip:" + slips["mid"]: ("consultation_slip", "due_soon", "P2", A1)})
            self.assertEqual((body["breached"], body["at_risk"]), (2, 2))
            late = [x for x in body["items"] if x["clock_id"] == "slip:" + slips["late"]][0]
            self.assertLessEqual(late["remaining_s"], -600)
            # Another team's agent sees none of them.
            other = self.ok("/api/v1/sla/risks?limit=500", "agent_b1")["items"]
            self.assertEqual([x for x in other if x["ticket_id"] == t2], [])
        finally:
            harness.psql("DELETE FROM ticket_slips WHERE id IN (%s)"
                         % ",".join("'%s'" % v for v in slips.values()))

    # ------------------------------------------------------------------ reports, summary
    def test_reports_csv_and_html(self):
        rid = harness.psql("SELECT sb_report_generate('daily', '%s')" % DAY)
        listed = self.ok("/api/v1/reports?kind=daily&date=%s" % DAY, "lead_a")["reports"]
        self.assertEqual([(r["id"], r["period_start"]) for r in listed], [(rid, DAY.isoformat())])
        status, csv, hdrs = self.get(listed[0]["csv_url"], "supervisor")
        self.assertEqual(status, 200)
        self.assertTrue(hdrs["Content-Type"].startswith("text/csv"))
        self.assertIn("attachment", hdrs.get("Content-Disposition", ""))
        self.assertEqual(csv, harness.psql("SELECT csv FROM reports WHERE id = %s" % rid))
        lines = csv.splitlines()
        self.assertEqual(lines[0], "section,name,value")
        self.assertIn("summary,arrivals,6", lines)
        self.assertIn("summary,resolved,2", lines)
        status, html, hdrs = self.get("/api/v1/reports/%s.html" % rid, "supervisor")
        self.assertEqual(status, 200)
        self.assertTrue(hdrs["Content-Type"].startswith("text/html"))
        self.assertIn("<h1>Daily report, %s" % DAY, html)

    def test_metric_summary(self):
        s = self.ok("/api/v1/metrics/summary?date=" + DAY.isoformat(), "agent_a1")
        k = s["kpi"]
        self.assertEqual(s["date"], DAY.isoformat())
        self.assertEqual(k["arrivals"], 6)
        # Responded: t1, t2, t3, t6 at 120 s after the contact.
        self.assertEqual(float(k["first_response_avg_s"]), 120.0)
        self.assertAlmostEqual(float(k["resolution_rate"]), 2 / 6, places=3)
        self.assertEqual(float(k["csat_avg"]), 4.0)
        self.assertEqual(k["csat_answers"], 2)
        hours = {h["hour"][11:13]: h["arrivals"] for h in s["arrivals_hourly"]}
        self.assertEqual(hours, {"09": 3, "10": 1, "11": 1, "12": 1})
        self.assertEqual(s["trend"][-1]["day"], DAY.isoformat())
        self.assertEqual(s["targets"]["first_contact_resolution"], 0.85)

    # ------------------------------------------------------------------ shared answers
    def test_search_answers_are_shared_per_scope_and_refreshed(self):
        # The same search by two roles: each gets its own scope's page from the cache.
        q = {"band": "P1,P2,P3,P4", "limit": "50"}
        for _ in range(2):
            mine = {i["ticket_id"] for i in self.day_search("agent_a1", **q)["items"]}
            every = {i["ticket_id"] for i in self.day_search("supervisor", **q)["items"]}
        self.assertEqual(mine, {self.t[1], self.t[2]})
        self.assertEqual(every, set(self.t.values()))
        # A ticket projected after the answer was shared shows once the refresher has
        # recomputed it: the first read past api.cache_ms (1000) gets the stale answer and
        # asks for a refresh. Without the refresher it would take 5 periods.
        late = "T-api-%s-late" % RUN
        project(ticket_events(late, "13:00:00", A1, "P2"))
        deadline, seen = time.time() + 3.5, set()
        while time.time() < deadline and late not in seen:
            seen = {i["ticket_id"] for i in self.day_search("agent_a1", **q)["items"]}
            time.sleep(0.2)
        self.assertIn(late, seen)
        self.assertNotIn(late, every)
        status, text, _ = harness.request("http://127.0.0.1:%d/metrics" % self.reporter.admin)
        self.assertEqual(status, 200)
        self.assertRegex(text, r'sb_reporter_api_cache_total\{result="hit"\} [1-9]')
        harness.psql("DELETE FROM ticket_events WHERE ticket_id = '%s'; "
                     "DELETE FROM tickets WHERE id = '%s'" % (late, late))

    # ------------------------------------------------------------------ dashboard
    def test_dashboard_page_and_its_api_calls(self):
        for path in ("/", "/dashboard"):
            status, page, hdrs = self.get(path, None)
            self.assertEqual(status, 200)
            self.assertTrue(hdrs["Content-Type"].startswith("text/html"))
            self.assertIn('src="/dashboard/app.js"', page)
        status, css, hdrs = self.get("/dashboard/style.css", None)
        self.assertEqual((status, hdrs["Content-Type"].split(";")[0]), (200, "text/css"))
        status, js, hdrs = self.get("/dashboard/app.js", None)
        self.assertEqual(status, 200)
        self.assertIn("javascript", hdrs["Content-Type"])
        base = re.search(r'const API = "([^"]+)"', js).group(1)
        calls = re.findall(r'^\s+\w+: "(/[^"]+)",$', js, re.M)
        self.assertEqual(len(calls), 5, calls)
        for call in calls:
            with self.subTest(call=call):
                body = self.ok(base + call, "supervisor")
                self.assertIsInstance(body, dict)
        # Every KPI tile the page shows is a key of the summary's kpi object.
        s = self.ok(base + "/metrics/summary", "supervisor")
        for name in re.findall(r'id="kpi-([a-z_0-9]+)"', page):
            self.assertIn(name, s["kpi"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
