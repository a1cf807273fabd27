#!/usr/bin/env python3
"""sbctl replay rebuilds the projection from the topics into a fresh schema, and the result
equals the live projection of sb-reporter: a scripted stream of tickets (every topic,
events out of order across topics, redelivered duplicates, an undecodable message) is
projected live, then replayed; the checksums of the tickets, their events, the incident
and the agent's presence are the same in both."""
import datetime
import os
import sys
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ingest_api"))
sys.path.insert(0, os.path.join(HERE, "..", "triage"))
sys.path.insert(0, os.path.join(HERE, "..", "reporter"))
import harness  # noqa: E402
from test_projection import example, wait_for  # noqa: E402
from test_triage_stack import contact, produce  # noqa: E402

RUN = uuid.uuid4().hex[:8]
SCHEMA = "replay_test_%s" % RUN
# Topics of this run only: on the shared topics other services (a running stack, other
# tests' stages) would act on the scripted tickets while the test compares.
TOPICS = {t: "sb.test.%s.%s" % (RUN, t.split(".")[1])
          for t in ("sb.contacts.v1", "sb.tickets.v1", "sb.routing.v1", "sb.activity.v1",
                    "sb.presence.v1", "sb.sla.v1")}


def private_topics():
    """Creates this run's topics; returns the SB_TOPICS value of a reporter reading them."""
    harness.create_topics(TOPICS.values(), "sb-reporter-test-%s" % RUN)
    return ",".join(TOPICS.values())


# Row checksums: every column but the ones set by the database clock on arrival.
TICKETS = "SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM %s.tickets t WHERE id LIKE '{p}%%'"
EVENTS = ("SELECT md5(string_agg(concat_ws(',', e.event_id, e.ticket_id, e.type, e.occurred_at, "
          "e.producer, e.trace_id, e.payload::text, e.topic, e.partition, e.\"offset\"), '|' "
          "ORDER BY e.event_id)) FROM %s.ticket_events e WHERE ticket_id LIKE '{p}%%'")
INCIDENTS = "SELECT md5(string_agg(i::text, '|' ORDER BY i.id)) FROM %s.incidents i WHERE id = '{inc}'"
PRESENCE = ("SELECT md5(string_agg(concat_ws(',', a.agent_id, a.status, a.since), '|')) "
            "FROM %s.agent_presence a WHERE agent_id = '{agent}'")


class ReplayTest(unittest.TestCase):
    def test_replay_equals_the_live_projection(self):
        since = (datetime.datetime.now(datetime.timezone.utc) -
                 datetime.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        reporter = harness.StageService("sb-reporter", RUN, SB_TOPICS=private_topics())
        prefix, inc, agent = "T-rpl-%s-" % RUN, "INC-rpl-%s" % RUN, "a-rpl-%s" % RUN
        events = []
        try:
            for n in range(12):
                tid, cust = "%s%02d" % (prefix, n), "RPL%s%02d" % (RUN, n)
                # Activity before the contact that opens the ticket: another topic, another
                # order; the projection must not depend on it.
                events += [
                    ("sb.activity.v1", tid, example("agent.replied", tid)),
                    ("sb.contacts.v1", cust, contact(tid, cust, "快递丢了，要求退款 %d 元" % (100 + n))),
                    ("sb.tickets.v1", tid, example("ticket.triaged", tid, customer_key=cust,
                                                   incident_id=inc if n < 10 else None)),
                    ("sb.routing.v1", tid, example("ticket.assigned", tid, agent_id=agent)),
                    ("sb.sla.v1", tid, example("sla.breached", tid)),
                ]
                if n % 3 == 0:
                    events.append(("sb.activity.v1", tid, example("ticket.status_changed", tid,
                                                                  status="resolved")))
                    events.append(("sb.activity.v1", tid, example("csat.received", tid,
                                                                  score=1 + n % 5)))
            events.append(("sb.tickets.v1", inc, example("incident.detected", "%s00" % prefix,
                                                         incident_id=inc, member_count=10)))
            events.append(("sb.presence.v1", agent, example("agent.presence", None,
                                                            agent_id=agent, status="busy")))
            by_topic = {}
            for topic, key, ev in events:
                by_topic.setdefault(topic, []).append((key, ev))
            for topic, msgs in by_topic.items():
                produce(TOPICS[topic], msgs + msgs[:3])  # the first three redelivered
            produce(TOPICS["sb.activity.v1"], [("%s00" % prefix, "not json at all")])
            expected = str(sum(1 for _, _, ev in events
                               if (ev.get("ticket_id") or "").startswith(prefix)))
            self.assertEqual(wait_for("SELECT count(*) FROM ticket_events WHERE ticket_id LIKE "
                                      "'%s%%'" % prefix, expected, 120), expected)
            self.assertEqual(wait_for("SELECT count(*) FROM agent_presence WHERE agent_id = '%s'"
                                      % agent, "1", 60), "1")
        finally:
            self.assertEqual(reporter.stop(), 0)

        topic_args = [a for t in TOPICS.values() for a in ("--topic", t)]
        out = harness.sbctl("replay", "--schema", SCHEMA, "--since", since, *topic_args)
        try:
            self.assertIn("into schema %s" % SCHEMA, out)
            n_replayed = harness.psql("SELECT count(*) FROM %s.ticket_events WHERE ticket_id "
                                      "LIKE '%s%%'" % (SCHEMA, prefix))
            self.assertEqual(n_replayed, expected)
            for name, q in (("tickets", TICKETS), ("events", EVENTS), ("incident", INCIDENTS),
                            ("presence", PRESENCE)):
                q = q.format(p=prefix, inc=inc, agent=agent)
                live, rebuilt = harness.psql(q % "public"), harness.psql(q % SCHEMA)
                self.assertNotEqual(live, "", name)
                if live != rebuilt and name == "tickets":
                    diff = ("SELECT 'live', t.* FROM (SELECT * FROM public.tickets WHERE id LIKE "
                            "'{p}%' EXCEPT SELECT * FROM {s}.tickets) t UNION ALL SELECT "
                            "'rebuilt', t.* FROM (SELECT * FROM {s}.tickets WHERE id LIKE '{p}%' "
                            "EXCEPT SELECT * FROM public.tickets) t").format(p=prefix, s=SCHEMA)
                    print("tickets that differ:\n" + harness.psql(diff))
                self.assertEqual(live, rebuilt, name)
        finally:
            harness.psql("DROP SCHEMA %s CASCADE" % SCHEMA)

    def test_refuses_a_bad_schema_name(self):
        for bad in ("public", "bi", "Robert'); DROP TABLE tickets;--", "pg_x"):
            with self.assertRaises(Exception):
                harness.sbctl("replay", "--schema", bad)


if __name__ == "__main__":
    unittest.main(verbosity=2)
