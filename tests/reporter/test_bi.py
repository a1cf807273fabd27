#!/usr/bin/env python3
"""The BI views on a scripted day whose every figure is computed by hand here: five
tickets with known times (a quick resolution, one paused on the customer, one resolved
without a reply, one with two contacts, one with only an internal note), their CSAT, two
SLA clocks (one met, one breached) — and, on the next day, complaint callbacks and
negative feedback (the follow-up rate and the attitude share) — through the real
sb-reporter into PostgreSQL, read back from schema bi as the read-only BI role and from the
read API's day summary."""
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
DAY2 = DAY + datetime.timedelta(days=1)  # the callbacks' and the negative feedback's day
AGENT = "a-bi-%s" % RUN


# Topics of this run only: on the shared topics the running stack's services (triage,
# router, simulated agents) would act on the scripted tickets and change their figures.
TOPICS = {t: "sb.test.%s.%s" % (RUN, t.split(".")[1])
          for t in ("sb.contacts.v1", "sb.tickets.v1", "sb.routing.v1", "sb.activity.v1",
                    "sb.presence.v1", "sb.sla.v1")}


def private_topics():
    """Creates this run's topics; returns the SB_TOPICS value of a reporter reading them."""
    harness.create_topics(TOPICS.values(), "sb-reporter-test-%s" % test_projection.RUN)
    return ",".join(TOPICS.values())


def at(hms, day=None):
    return "%sT%s.000Z" % ((day or DAY).isoformat(), hms)


def ev(type_, tid, when, day=None, **payload):
    e = example(type_, tid, **payload)
    e["occurred_at"] = at(when, day)
    e["event_id"] = uuid7()
    return e


def actor(agent=AGENT):
    return {"role": "agent", "agent_id": agent}


def bi(sql, tz=None):
    """What the BI role reads; tz: the TimeZone its session asks for (PGTZ)."""
    env = dict(os.environ, PGPASSWORD="bi_reader")
    if tz:
        env["PGTZ"] = tz
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", "15432", "-U", "bi_reader", "-d",
                           "switchboard", "-tAq", "-v", "ON_ERROR_STOP=1", "-c", sql], env=env,
                          capture_output=True, text=True, check=True).stdout.strip()


def followups_and_feedback(msgs, cust):
    """DAY2: complaint callbacks and negative feedback, every figure by hand (see the tests).
    F1 complaint about attitude (triage's complaint.attitude.zh), resolved 10:00, callback
    due 11:00 (its followup.due twice, as after a watcher restart), a note at 10:30 before
    it and one at 11:30 completing it; F2 complaint, resolved, callback due 12:00, then only
    a CSAT of 1 (not an agent's action): not completed; F3 no complaint, CSAT 2, filed under
    the category "attitude"; F4 no complaint, CSAT 5 (not negative); F5 an abandoned
    call's callback (not a complaint's): left out; F6 complaint, callback due 15:00, a reply
    at 15:05 completing it."""
    d = DAY2
    f = {i: "T-bf-%s-%d" % (RUN, i) for i in range(1, 7)}

    def put(topic, e):
        msgs.append((topic, e["ticket_id"], e))

    def e(type_, tid, when, **payload):
        return ev(type_, tid, when, day=d, **payload)

    def opened(tid, when, complaint, rules):
        m = contact(tid, cust, "question")
        m["occurred_at"] = m["payload"]["received_at"] = at(when, d)
        msgs.append(("sb.contacts.v1", cust, m))
        put("sb.tickets.v1", e("ticket.triaged", tid, when, customer_key=cust,
                               domain="service_complaint" if complaint else "logistics",
                               stage="complaint" if complaint else "after_sale",
                               rules_fired=[{"rule": r, "weight": 2, "field": "body"}
                                            for r in rules]))

    def act(type_, tid, when, **payload):
        put("sb.activity.v1", e(type_, tid, when, actor=actor(), **payload))

    def callback(tid, due, reason="complaint_resolved"):
        put("sb.sla.v1", e("followup.due", tid, due, kind="callback", due_at=at(due, d),
                           customer_key=cust, reason=reason))

    opened(f[1], "09:00:00", True, ["complaint.zh", "complaint.attitude.zh"])
    act("ticket.status_changed", f[1], "10:00:00", status="resolved")
    act("ticket.note_added", f[1], "10:30:00", text="closing summary")
    callback(f[1], "11:00:00")
    callback(f[1], "11:00:00")
    act("ticket.note_added", f[1], "11:30:00", text="called back: satisfied")
    opened(f[2], "09:10:00", True, ["complaint.zh"])
    act("ticket.status_changed", f[2], "10:10:00", status="resolved")
    callback(f[2], "12:00:00")
    put("sb.activity.v1", e("csat.received", f[2], "12:30:00", score=1))
    opened(f[3], "09:20:00", False, ["logistics.late.zh"])
    act("ticket.card_updated", f[3], "09:40:00", category="attitude")
    put("sb.activity.v1", e("csat.received", f[3], "10:00:00", score=2))
    opened(f[4], "09:30:00", False, [])
    put("sb.activity.v1", e("csat.received", f[4], "10:00:00", score=5))
    opened(f[5], "09:40:00", False, [])
    callback(f[5], "10:40:00", reason="abandoned_call")
    opened(f[6], "09:50:00", True, ["complaint.en"])
    act("ticket.status_changed", f[6], "14:00:00", status="resolved")
    callback(f[6], "15:00:00")
    act("agent.replied", f[6], "15:05:00", public=True)
    return f


class BiViewsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = int(harness.free_port())
        cls.reporter = Service("sb-reporter", SB_TOPICS=private_topics(), SB_HTTP_PORT=cls.port,
                               SB_API_CACHE_MS=0)
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
        cls.f = followups_and_feedback(msgs, cust)
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

    def test_days_are_utc_whatever_the_session_time_zone(self):
        # The day's tickets arrive 09:00-14:00 UTC: 22:00-03:00 in Pago Pago (UTC-11),
        # 23:00-04:00 in Kiritimati (UTC+14), so a grouping in the session's zone splits
        # them over two days there. A BI tool's driver often sets its own TimeZone.
        queries = [
            "SELECT arrivals, responded, resolved FROM bi.daily_service WHERE day = '%s'" % DAY,
            "SELECT kind, due, met FROM bi.sla_attainment WHERE day = '%s'" % DAY,
            "SELECT replies, resolved FROM bi.agent_daily WHERE day = '%s' AND agent_id = '%s'"
            % (DAY, AGENT),
            "SELECT answers FROM bi.csat_daily WHERE day = '%s'" % DAY,
            "SELECT to_char(hour AT TIME ZONE 'UTC', 'HH24'), sum(arrivals) FROM "
            "bi.arrivals_hourly WHERE hour >= '%sT09:00:00Z' AND "
            "hour < '%sT15:00:00Z' GROUP BY 1 ORDER BY 1" % (DAY, DAY),
        ]
        utc = [bi(q) for q in queries]
        self.assertEqual(utc[0], "5|3|4")
        for tz in ("Pacific/Pago_Pago", "Pacific/Kiritimati"):
            self.assertEqual([bi(q, tz) for q in queries], utc, tz)

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

    def test_reports_and_qa_days_are_utc_whatever_the_session_time_zone(self):
        # `sbctl report` or a reporter whose session is in another zone covers the same
        # UTC day: the day's content and its conversations (T1, T2, T4: all three with a
        # share of 1, drawn in a transaction rolled back).
        content = "SELECT sb_report_content('daily', '%s', '%s')::text" % (DAY, DAY)
        draw = ["BEGIN", "DELETE FROM qa_samples WHERE sample_day = '%s'" % DAY,
                "SELECT sb_qa_sample('%s', 1.0, 1)" % DAY, "ROLLBACK"]
        utc = harness.psql(content, "UTC")
        self.assertEqual(json.loads(utc)["summary"]["arrivals"], 5)
        self.assertEqual(harness.psql(draw, "UTC"), "3")
        for tz in ("Pacific/Pago_Pago", "Pacific/Kiritimati"):
            self.assertEqual(harness.psql(content, tz), utc, tz)
            self.assertEqual(harness.psql(draw, tz), "3", tz)

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

    def test_followup_rate(self):
        # Callbacks of resolved complaints due on DAY2: F1 (once, though announced twice),
        # F2, F6 — F5's abandoned call is not a complaint's. Completed: F1 by the 11:30
        # note (1800 s after), F6 by the 15:05 reply (300 s); F2's CSAT is no callback.
        self.assertEqual(bi("SELECT callbacks_due, completed, round(followup_rate, 4), "
                            "round(completed_after_avg_s) FROM bi.followup_daily "
                            "WHERE day = '%s'" % DAY2), "3|2|0.6667|1050")
        self.assertEqual(bi("SELECT ticket_id, completed, completed_with, "
                            "to_char(completed_at AT TIME ZONE 'UTC', 'HH24:MI') "
                            "FROM bi.followups WHERE day = '%s' ORDER BY ticket_id" % DAY2),
                         "%s|t|ticket.note_added|11:30\n%s|f||\n%s|t|agent.replied|15:05"
                         % (self.f[1], self.f[2], self.f[6]))

    def test_attitude_share(self):
        # Negative feedback of DAY2's arrivals: F1, F2, F6 (complaints), F3 (CSAT 2); F2
        # also has CSAT 1; F4 (CSAT 5) and F5 are not. About attitude: F1 (triage's rule)
        # and F3 (its category): 2 of 4. DAY: T2's CSAT 3 is not negative: no row.
        self.assertEqual(bi("SELECT negative, low_csat, complaints, attitude, "
                            "round(attitude_share, 4) FROM bi.feedback_daily "
                            "WHERE day = '%s'" % DAY2), "4|2|3|2|0.5000")
        self.assertEqual(bi("SELECT string_agg(ticket_id, ',' ORDER BY ticket_id) FROM "
                            "bi.negative_feedback WHERE day = '%s' AND attitude" % DAY2),
                         "%s,%s" % (self.f[1], self.f[3]))
        self.assertEqual(bi("SELECT count(*) FROM bi.feedback_daily WHERE day = '%s'" % DAY),
                         "0")

    def test_summary_shows_them_against_the_targets(self):
        status, body, _ = harness.request(
            "http://127.0.0.1:%d/api/v1/metrics/summary?date=%s" % (self.port, DAY2),
            headers={"Authorization": "Bearer " + os.environ.get("SB_ADMIN_TOKEN",
                                                                 "dev-admin-token")})
        self.assertEqual(status, 200, body)
        s = body if isinstance(body, dict) else json.loads(body)
        k = s["kpi"]
        self.assertEqual((k["followup_due"], k["followup_rate"]), (3, 0.6667))
        self.assertEqual((k["negative_feedback"], k["attitude_share"]), (4, 0.5))
        self.assertEqual((s["followup"]["completed"], s["feedback"]["attitude"]), (2, 2))
        self.assertEqual((s["targets"]["followup_rate"],
                          s["targets"]["attitude_negative_share_max"]), (0.8, 0.05))

    def test_bi_role_reads_only_bi(self):
        with self.assertRaises(subprocess.CalledProcessError):
            bi("SELECT count(*) FROM tickets")
        with self.assertRaises(subprocess.CalledProcessError):
            bi("DELETE FROM bi.tickets")


if __name__ == "__main__":
    unittest.main(verbosity=2)
