#!/usr/bin/env python3
"""sb-reporter on the real stack: events of every topic land once in ticket_events and
in the current-state tables (tickets, incidents, agent_presence, dlq_entries) with no
clear personal data in the event log; a replay of the same events changes nothing; an
event PostgreSQL cannot store (U+0000) goes to the DLQ; PostgreSQL connections killed in the
middle of a stream lose nothing; and a contact through sb-triage and sb-reporter
arrives in PostgreSQL classified and scored."""
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ingest_api"))
sys.path.insert(0, os.path.join(HERE, "..", "triage"))
import harness  # noqa: E402
from test_triage_stack import contact, now_rfc3339, produce, uuid7  # noqa: E402

RUN = uuid.uuid4().hex[:8]
EXAMPLES = os.path.join(harness.ROOT, "proto", "events", "examples")


def example(type_, ticket, **payload):
    with open(os.path.join(EXAMPLES, type_ + ".json"), encoding="utf-8") as f:
        ev = json.load(f)
    ev["event_id"] = uuid7()
    ev["occurred_at"] = now_rfc3339()
    if "ticket_id" in ev or ticket:
        ev["ticket_id"] = ticket
    ev["payload"].update(payload)
    if "ticket_id" in ev["payload"] and ticket:
        ev["payload"]["ticket_id"] = ticket
    return ev


def Service(program, **env):  # noqa: N802 (reads as the class it makes)
    # sb-reporter also serves its read API: on a free port, never the local stack's 8081.
    if program == "sb-reporter":
        env.setdefault("SB_HTTP_PORT", harness.free_port())
    return harness.StageService(program, RUN, **env)


def wait_for(sql, expected, timeout=30):
    deadline, got = time.time() + timeout, None
    while time.time() < deadline:
        got = harness.psql(sql)
        if got == expected:
            return got
        time.sleep(0.3)
    return got


class ProjectionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.reporter = Service("sb-reporter")

    @classmethod
    def tearDownClass(cls):
        assert cls.reporter.stop() == 0

    def test_refused_value_kept_aside_and_the_rest_of_the_batch_applied(self):
        # One batch through sb_project(): a contact, a CSAT of 9 (the tickets table refuses
        # it), a reply. The set-based path fails on the CSAT as a whole, and the batch is
        # taken again event by event: the CSAT kept in projection_errors, the others in.
        tid = "T-rep-%s-refused" % RUN
        c = example("contact.received", tid)
        bad = example("csat.received", tid, score=9)
        reply = example("agent.replied", tid, public=True)
        batch = [{"topic": "sb.test", "partition": 0, "offset": i, "event": e}
                 for i, e in enumerate((c, bad, reply))]
        text = json.dumps(batch, ensure_ascii=False)
        self.assertEqual(harness.psql("SELECT sb_project($b$%s$b$::jsonb)" % text), "2")
        self.assertEqual(harness.psql(
            "SELECT contacts, csat IS NULL, first_response_at IS NOT NULL FROM tickets "
            "WHERE id = '%s'" % tid), "1|t|t")
        self.assertIn("tickets_csat_check", harness.psql(
            "SELECT error FROM projection_errors WHERE event_id = '%s'" % bad["event_id"]))
        self.assertEqual(harness.psql("SELECT count(*) FROM ticket_events WHERE ticket_id = "
                                      "'%s'" % tid), "2")
        # Again: nothing new, nothing changed.
        self.assertEqual(harness.psql("SELECT sb_project($b$%s$b$::jsonb)" % text), "0")

    def test_every_topic_projected_once_and_replays_change_nothing(self):
        tid, cust = "T-rep-%s-1" % RUN, "RP%s" % RUN
        c = contact(tid, cust, "我的手机 13812345678，付款失败", subject="支付失败",
                    customer_obj={"customer_no": cust, "phone": "13812345678",
                                  "name": "王先生"})
        inc = "INC-test-%s" % RUN
        events = [
            ("sb.contacts.v1", cust, c),
            ("sb.tickets.v1", tid, example("ticket.triaged", tid, customer_key=cust,
                                           incident_id=None)),
            ("sb.tickets.v1", inc, example("incident.detected", tid, incident_id=inc,
                                           member_count=12)),
            ("sb.routing.v1", tid, example("ticket.assigned", tid, agent_id="a-rep-%s" % RUN)),
            ("sb.activity.v1", tid, example("agent.replied", tid)),
            ("sb.activity.v1", tid, example("ticket.status_changed", tid, status="resolved")),
            ("sb.activity.v1", tid, example("csat.received", tid, score=4)),
            ("sb.presence.v1", "a-rep-%s" % RUN, example("agent.presence", None,
                                                         agent_id="a-rep-%s" % RUN,
                                                         status="available")),
            ("sb.sla.v1", tid, example("sla.breached", tid)),
        ]
        for topic, key, ev in events:
            produce(topic, [(key, ev)])
        n = str(len(events))
        ids = ",".join("'%s'" % ev["event_id"] for _, _, ev in events)
        self.assertEqual(wait_for("SELECT count(*) FROM ticket_events WHERE event_id IN (%s)"
                                  % ids, n), n)
        row = harness.psql("SELECT customer_no, channel, band, score, domain, owner_agent_id, "
                           "status, csat, contacts, sla_breaches, first_response_at IS NOT "
                           "NULL, resolved_at IS NOT NULL FROM tickets WHERE id = '%s'" % tid)
        self.assertEqual(row, "%s|chat|P2|7|order_payment|a-rep-%s|resolved|4|1|1|t|t"
                         % (cust, RUN))
        stored = harness.psql("SELECT payload::text FROM ticket_events WHERE event_id = '%s'"
                              % c["event_id"])
        self.assertNotIn("13812345678", stored)
        self.assertNotIn("付款失败", stored)
        self.assertEqual(json.loads(stored)["customer_no"], cust)
        self.assertEqual(harness.psql("SELECT member_count FROM incidents WHERE id = '%s'" % inc),
                         "12")
        self.assertEqual(harness.psql("SELECT status FROM agent_presence WHERE agent_id = "
                                      "'a-rep-%s'" % RUN), "available")
        # The same events again (a redelivery): nothing changes.
        before = self.reporter.metric("sb_reporter_events_skipped_total")
        for topic, key, ev in events:
            produce(topic, [(key, ev)])
        deadline = time.time() + 30
        while (self.reporter.metric("sb_reporter_events_skipped_total") < before + len(events)
               and time.time() < deadline):
            time.sleep(0.3)
        self.assertGreaterEqual(self.reporter.metric("sb_reporter_events_skipped_total"),
                                before + len(events))
        self.assertEqual(harness.psql("SELECT count(*) FROM ticket_events WHERE event_id IN (%s)"
                                      % ids), n)
        self.assertEqual(harness.psql("SELECT contacts, sla_breaches FROM tickets WHERE id = '%s'"
                                      % tid), "1|1")

    def test_unstorable_event_goes_to_the_dlq(self):
        tid = "T-rep-%s-nul" % RUN
        ev = example("ticket.note_added", tid)
        ev["payload"]["body"] = "a\u0000b"
        good = example("csat.received", tid, score=5)
        produce("sb.activity.v1", [(tid, json.dumps(ev)), (tid, good)])
        self.assertEqual(wait_for("SELECT count(*) FROM ticket_events WHERE event_id = '%s'"
                                  % good["event_id"], "1"), "1")
        dlq = harness.wait_events("sb.dlq.v1", lambda e: e["payload"].get("stage") ==
                                  "sb-reporter" and ev["event_id"] in e["payload"].get(
                                      "raw_text", ""), 1, 30)
        # Every sb-reporter consuming the topic meanwhile (another test's, in its own group)
        # sends the message to the DLQ as well: at least one entry, all of them alike.
        self.assertGreaterEqual(len(dlq), 1)
        for d in dlq:
            self.assertEqual(d["payload"]["reason"], "not_json")
            self.assertIn("u0000", d["payload"]["detail"])

    def test_connections_killed_mid_stream_lose_nothing(self):
        tid = "T-rep-%s-kill" % RUN
        evs = [example("ticket.note_added", tid) for _ in range(3000)]
        stop = threading.Event()
        kills = []

        def killer():
            # A few restarts' worth of dropped connections, each in the middle of a
            # projection transaction when one is running.
            while not stop.is_set() and len(kills) < 5:
                out = subprocess.run(
                    ["psql", "-h", "127.0.0.1", "-p", "15432", "-U", "switchboard", "-d",
                     "switchboard", "-tAqc",
                     "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                     "query LIKE '%sb_project%' AND state = 'active' AND pid <> "
                     "pg_backend_pid()"],
                    env=dict(os.environ, PGPASSWORD="switchboard"), capture_output=True,
                    text=True, check=False).stdout.split()
                kills.extend(x for x in out if x == "t")
                time.sleep(0.02 if not out else 0.5)

        t = threading.Thread(target=killer)
        t.start()
        try:
            for i in range(0, len(evs), 500):
                produce("sb.activity.v1", [(tid, e) for e in evs[i:i + 500]])
            got = wait_for("SELECT count(*) FROM ticket_events WHERE ticket_id = '%s'" % tid,
                           "3000", 180)
        finally:
            stop.set()
            t.join()
        if got != "3000":
            print("projection errors: " + harness.psql(
                "SELECT count(*), min(error) FROM projection_errors WHERE event ->> "
                "'ticket_id' = '%s'" % tid))
            print("reporter log tail:\n" + "\n".join(self.reporter.logs().splitlines()[-30:]))
        self.assertGreater(len(kills), 0, "no projection transaction was caught running")
        self.assertEqual(got, "3000")

    def test_contact_through_triage_into_postgresql(self):
        # Its own Redis database: a second triage consumer of the same contacts next to
        # another test's must not share ticket state with it.
        triage = Service("sb-triage", SB_REDIS_URL="redis://127.0.0.1:16379/1")
        try:
            tid, cust = "T-rep-%s-e2e" % RUN, "RPE%s" % RUN
            produce("sb.contacts.v1", [(cust, contact(
                tid, cust, "快递丢了，包裹一直没送到，要求退款 300 元"))])
            got = wait_for("SELECT domain, band IS NOT NULL, contacts, triaged_at IS NOT NULL "
                           "FROM tickets WHERE id = '%s'" % tid,
                           "logistics_delivery|t|1|t", 40)
            self.assertEqual(got, "logistics_delivery|t|1|t")
        finally:
            self.assertEqual(triage.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
