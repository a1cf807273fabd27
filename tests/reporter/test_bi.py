#!/usr/bin/env python3
"""The BI views on a scripted day whose every figure is computed by hand here: five
tickets with known times (a quick resolution, one paused on the customer, one resolved
without a reply, one with two contacts, one with only an internal note), their CSAT, two
SLA clocks (one met, one breached) — through the real sb-reporter into PostgreSQL, read
back from schema bi as the read-only BI role."""
import datetime
import json
import os
import subprocess
import sys
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_projection import Service, example, wait_for  # noqa: E402
from test_triage_stack import contact, produce, uuid7  # noqa: E402
import harness  # noqa: E402
import test_projection  # noqa: E402

RUN = uuid.uuid4().hex[:8]
# A day of its own, far in the past, so that no other test's tickets fall on it.
DAY = datetime.date(2001, 1, 1) + datetime.timedelta(days=int(RUN, 16) % 5000)
AGENT = "a-bi-%s" % RUN


# Topics of this run only: on the shared topics the running stack's services (triage,
# router, simulated agents) would act on the scripted tickets and change their figures.
TOPICS = {t: "sb.test.%s.%s" % (RUN, t.split(".")[1])
          for t in ("sb.contacts.v1", "sb.routing.v1", "sb.activity.v1", "sb.presence.v1",
                    "sb.sla.v1")}


def private_topics():
    """Creates this run's topics; returns the SB_TOPICS value of a reporter reading them."""
    harness.create_topics(TOPICS.values(), "sb-reporter-test-%s" % test_projection.RUN)
    return ",".join(TOPICS.values())


def at(hms):
    return "%sT%s.000Z" % (DAY.isoformat(), hms)


def ev(type_, tid, when, **payload):
    e = example(type_, tid, **payload)
    e["occurred_at"] = at(when)
    e["event_id"] = uuid7()
    return e


def actor(agent=AGENT):
    return {"role": "agent", "agent_id": agent}


def bi(sql):
    env = dict(os.environ, PGPASSWORD="bi_reader")
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", "15432", "-U", "bi_reader", "-d",
                           "switchboard", "-tAq", "-v", "ON_ERROR_STOP=1", "-c", sql], env=env,
                          capture_output=True, text=True, check=True).stdout.strip()


class BiViewsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.reporter = Service("sb-reporter", SB_TOPICS=private_topics())
        t = {i: "T-bi-%s-%d" % (RUN, i) for i in range(1, 6)}
        cls.t = t
        cust = "BI%s" % RUN
        msgs = []

        def c(tid, when, new=True):
            m = contact(tid, cust, "question", new_ticket=new)
            m["occurred_at"] = at(when)
            m["payload"]["received_at"] = at(when)
            msgs.append(("sb.contacts.v1", cust, m))

        def a(e):
            msgs.append(("sb.activity.v1", e["ticket_id"], e))

        def routed(tid, when):
            e = ev("ticket.assigned", tid, when, agent_id=AGENT)
            msgs.append(("sb.routing.v1", tid, e))

        def status(tid, when, s):
            a(ev("ticket.status_changed", tid, when, status=s, actor=actor()))

        def reply(tid, when, public=True):
            a(ev("agent.replied", tid, when, actor=actor(), public=public))

        # T1: reply after 30 s, resolved after 10 min, CSAT 5: first-contact resolution.
        c(t[1], "09:00:00"); routed(t[1], "09:00:05"); reply(t[1], "09:00:30")
        status(t[1], "09:10:00", "resolved"); a(ev("csat.received", t[1], "09:15:00", score=5))
        # T2: reply after 2 min, 10 min pending on the customer, second reply, resolved
        # after 1 h, CSAT 3.
        c(t[2], "10:00:00"); routed(t[2], "10:00:10"); reply(t[2], "10:02:00")
        status(t[2], "10:03:00", "pending_customer"); status(t[2], "10:13:00", "in_progress")
        reply(t[2], "10:20:00"); status(t[2], "11:00:00", "resolved")
        a(ev("csat.received", t[2], "11:05:00", score=3))
        # T3: resolved after 30 min without any reply.
        c(t[3], "12:00:00"); routed(t[3], "12:00:10"); status(t[3], "12:30:00", "resolved")
        # T4: two contacts, a reply after 10 min, resolved after 20 min.
        c(t[4], "13:00:00"); routed(t[4], "13:00:10"); c(t[4], "13:05:00", new=False)
        reply(t[4], "13:10:00"); status(t[4], "13:20:00", "resolved")
        # T5: open, only an internal note.
        c(t[5], "14:00:00"); reply(t[5], "14:01:00", public=False)
        # SLA: T1's first-response clock met, T2's breached.
        for tid, start, target in ((t[1], "09:00:00", "09:01:00"), (t[2], "10:00:00", "10:01:00")):
            e = ev("sla.started", tid, start, clock_id=tid + ":first_response",
                   kind="first_response", band="P2", target_at=at(target), target_s=60)
            msgs.append(("sb.sla.v1", tid, e))
        msgs.append(("sb.sla.v1", t[2], ev("sla.breached", t[2], "10:01:00",
                                            clock_id=t[2] + ":first_response",
                                            kind="first_response", band="P2",
                                            target_at=at("10:01:00"), late_ms=1)))
        cls.events = msgs
        for topic, key, e in msgs:
            produce(TOPICS[topic], [(key, e)])
        ids = ",".join("'%s'" % e["event_id"] for _, _, e in msgs)
        n = str(len(msgs))
        got = wait_for("SELECT count(*) FROM ticket_events WHERE event_id IN (%s)" % ids, n, 60)
        assert got == n, "only %s of %s events projected" % (got, n)

    @classmethod
    def tearDownClass(cls):
        assert cls.reporter.stop() == 0

    def test_daily_service(self):
        row = bi("SELECT arrivals, responded, round(first_response_avg_s), "
                 "first_response_p50_s, resolved, round(first_resolution_avg_s), "
                 "round(paused_avg_s), round(response_rate, 4), round(resolution_rate, 4), "
                 "round(fcr_rate, 4), resolved_without_reply, round(csat_avg, 2), "
                 "round(csat_top2_share, 2), csat_answers "
                 "FROM bi.daily_service WHERE day = '%s'" % DAY)
        # 5 arrivals; first responses 30, 120, 600 s (T5's note is not public); four
        # resolutions 600, 3600, 1800, 1200 s; 600 s paused over 4 resolved; FCR: T1 yes,
        # T2 (two replies) and T4 (two contacts) no, T3 excluded (no reply); CSAT 5 and 3.
        self.assertEqual(row, "5|3|250|120|4|1800|150|0.6000|0.8000|0.3333|1|4.00|0.50|2")

    def test_tickets(self):
        row = bi("SELECT agent_replies, first_response_s::int, full_resolution_s::int, "
                 "paused_s::int, "
                 "first_contact_resolved FROM bi.tickets WHERE ticket_id = '%s'" % self.t[2])
        self.assertEqual(row, "2|120|3600|600|f")
        self.assertEqual(bi("SELECT first_contact_resolved IS NULL, contacts FROM bi.tickets "
                            "WHERE ticket_id = '%s'" % self.t[3]), "t|1")
        self.assertEqual(bi("SELECT contacts, first_contact_resolved FROM bi.tickets "
                            "WHERE ticket_id = '%s'" % self.t[4]), "2|f")
        self.assertEqual(bi("SELECT first_response_s IS NULL, status FROM bi.tickets "
                            "WHERE ticket_id = '%s'" % self.t[5]), "t|new")

    def test_sla_attainment(self):
        self.assertEqual(bi("SELECT kind, band, due, met, round(attainment, 4) FROM "
                            "bi.sla_attainment WHERE day = '%s'" % DAY),
                         "first_response|P2|2|1|0.5000")

    def test_agent_daily(self):
        # Replies: T1 1, T2 2, T4 1, T5's note 1; resolved as owner: T1-T4; CSAT 5 and 3.
        self.assertEqual(bi("SELECT replies, tickets_replied, resolved, csat_avg, csat_answers "
                            "FROM bi.agent_daily WHERE day = '%s' AND agent_id = '%s'"
                            % (DAY, AGENT)), "5|4|4|4.0000000000000000|2")

    def test_reports_regenerate_the_same(self):
        gen = harness.sbctl("report", "generate", "daily", "--date", str(DAY))
        self.assertIn("daily %s to %s" % (DAY, DAY), gen)
        first = bi("SELECT content::text FROM bi.reports WHERE kind = 'daily' AND "
                   "period_start = '%s'" % DAY)
        harness.sbctl("report", "generate", "daily", "--date", str(DAY))
        self.assertEqual(bi("SELECT content::text FROM bi.reports WHERE kind = 'daily' AND "
                            "period_start = '%s'" % DAY), first)
        summary = json.loads(first)["summary"]
        self.assertEqual((summary["arrivals"], summary["responded"], summary["resolved"]),
                         (5, 3, 4))
        csv = harness.sbctl("report", "show", "daily", "--date", str(DAY), "--format", "csv")
        self.assertIn("summary,arrivals,5", csv.splitlines())
        html = harness.sbctl("report", "show", "daily", "--date", str(DAY), "--format", "html")
        self.assertIn("<td>5</td>", html)
        week = harness.sbctl("report", "generate", "weekly", "--date", str(DAY))
        start = DAY - datetime.timedelta(days=(DAY.isoweekday() + 2) % 7)
        self.assertIn("weekly %s to %s" % (start, start + datetime.timedelta(days=6)), week)

    def test_qa_sample_is_reproducible(self):
        # Conversations that day (a public reply): T1, T2, T4; 20 % of 3 rounds up to 1,
        # and the agent is then covered for the week.
        out = harness.sbctl("report", "qa", "--date", str(DAY))
        self.assertEqual(out, "1 conversations sampled for QA")
        picked = bi("SELECT ticket_id, agent_id FROM bi.qa_samples WHERE sample_day = '%s'"
                    % DAY)
        self.assertIn(picked.split("|")[0], (self.t[1], self.t[2], self.t[4]))
        self.assertEqual(picked.split("|")[1], AGENT)
        self.assertEqual(harness.sbctl("report", "qa", "--date", str(DAY)),
                         "0 conversations sampled for QA")
        self.assertEqual(bi("SELECT ticket_id, agent_id FROM bi.qa_samples WHERE "
                            "sample_day = '%s'" % DAY), picked)

    def test_bi_role_reads_only_bi(self):
        with self.assertRaises(subprocess.CalledProcessError):
            bi("SELECT count(*) FROM tickets")
        with self.assertRaises(subprocess.CalledProcessError):
            bi("DELETE FROM bi.tickets")


if __name__ == "__main__":
    unittest.main(verbosity=2)
