#!/usr/bin/env python3
"""Occupancy, handle time and the staffing recommendation on a scripted day whose figures
are computed by hand here: one agent logged in 09:00-13:00, three tickets (one paused on
the customer for 20 minutes), through the real sb-reporter into PostgreSQL, read back
from schema bi as the read-only BI role. The Erlang C figures are recomputed here from
the textbook formula."""
import datetime
import math
import os
import sys
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_bi import TOPICS, bi, private_topics  # noqa: E402
from test_projection import Service, example, wait_for  # noqa: E402
from test_triage_stack import contact, produce, uuid7  # noqa: E402
import harness  # noqa: E402

RUN = uuid.uuid4().hex[:8]
AGENT = "a-st-%s" % RUN
# The reporter's staffing.* of this test, not the defaults (80 % in 20 s, 10-15 %): the
# view must size with what the configuration says.
STAFFING = {"SB_STAFFING_SERVICE_LEVEL": "0.9", "SB_STAFFING_ANSWER_WITHIN_S": "30",
            "SB_STAFFING_RESERVE_LOW": "0.2", "SB_STAFFING_RESERVE_HIGH": "0.3"}


def free_day():
    """A day far in the past on which no ticket was opened (the hourly view counts them
    all)."""
    n = int(RUN, 16)
    for i in range(100):
        day = datetime.date(1980, 1, 1) + datetime.timedelta(days=(n + 7919 * i) % 7000)
        if harness.psql("SELECT count(*) FROM tickets WHERE created_at >= '%sT00:00:00Z' "
                        "AND created_at < '%sT00:00:00Z'::timestamptz + interval '1 day'"
                        % (day, day)) == "0":
            return day
    raise RuntimeError("no free day")


DAY = free_day()
def at(hms):
    return "%sT%s.000Z" % (DAY.isoformat(), hms)


def ev(type_, tid, when, **payload):
    e = example(type_, tid, **payload)
    e["occurred_at"] = at(when)
    e["event_id"] = uuid7()
    return e


def erlang_c(a, c):
    # P(wait) = (a^c/c! · c/(c−a)) / (Σ_{k<c} a^k/k! + a^c/c! · c/(c−a))
    top = a ** c / math.factorial(c) * c / (c - a)
    return top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)


def agents_for(arrivals, aht, target=0.8, answer=20):
    lam = arrivals / 3600.0
    a = lam * aht
    c = int(a) + 1
    while 1 - erlang_c(a, c) * math.exp(-(c - a) * answer / aht) < target:
        c += 1
    return c


class StaffingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.reporter = Service("sb-reporter", SB_TOPICS=private_topics(), **STAFFING)
        t = {i: "T-st-%s-%d" % (RUN, i) for i in range(1, 4)}
        cls.t = t
        cust = "ST%s" % RUN
        msgs = []

        def c(tid, when):
            m = contact(tid, cust, "question")
            m["occurred_at"] = at(when)
            m["payload"]["received_at"] = at(when)
            msgs.append(("sb.contacts.v1", cust, m))

        def a(e):
            msgs.append(("sb.activity.v1", e["ticket_id"], e))

        def status(tid, when, s):
            a(ev("ticket.status_changed", tid, when, status=s,
                 actor={"role": "agent", "agent_id": AGENT}))

        def presence(when, s):
            e = ev("agent.presence", None, when, agent_id=AGENT, status=s, set_by=AGENT)
            e.pop("ticket_id", None)
            msgs.append(("sb.presence.v1", AGENT, e))

        presence("09:00:00", "available")
        presence("11:00:00", "away")  # still logged in
        presence("13:00:00", "offline")
        # T1: 09:00, assigned 09:05, resolved 09:35: 1 800 s.
        c(t[1], "09:00:00")
        msgs.append(("sb.routing.v1", t[1], ev("ticket.assigned", t[1], "09:05:00",
                                                agent_id=AGENT)))
        status(t[1], "09:35:00", "resolved")
        # T2: 09:10, assigned 09:20, pending on the customer 09:30-09:50, resolved 10:20:
        # 3 600 − 1 200 = 2 400 s.
        c(t[2], "09:10:00")
        msgs.append(("sb.routing.v1", t[2], ev("ticket.assigned", t[2], "09:20:00",
                                                agent_id=AGENT)))
        status(t[2], "09:30:00", "pending_customer")
        status(t[2], "09:50:00", "in_progress")
        status(t[2], "10:20:00", "resolved")
        # T3: 10:00, assigned 10:00, resolved 10:30: 1 800 s.
        c(t[3], "10:00:00")
        msgs.append(("sb.routing.v1", t[3], ev("ticket.assigned", t[3], "10:00:00",
                                                agent_id=AGENT)))
        status(t[3], "10:30:00", "resolved")
        for topic, key, e in msgs:
            produce(TOPICS[topic], [(key, e)])
        ids = ",".join("'%s'" % e["event_id"] for _, _, e in msgs)
        n = str(len(msgs))
        got = wait_for("SELECT count(*) FROM ticket_events WHERE event_id IN (%s)" % ids, n, 60)
        assert got == n, "only %s of %s events projected" % (got, n)

    @classmethod
    def tearDownClass(cls):
        assert cls.reporter.stop() == 0

    def test_handle_time(self):
        self.assertEqual(bi("SELECT ticket_id, handle_s::int FROM bi.ticket_handle "
                            "WHERE agent_id = '%s' ORDER BY ticket_id" % AGENT),
                         "%s|1800\n%s|2400\n%s|1800" % (self.t[1], self.t[2], self.t[3]))

    def test_occupancy_and_handle_time_per_day(self):
        # Logged in 09:00-13:00 (away counts): 14 400 s. Busy: T1 09:05-09:35, T2
        # 09:20-09:30 and 09:50-10:20, T3 10:00-10:30 → 09:05-09:35 and 09:50-10:30 =
        # 4 200 s. Handled 3 for 6 000 s, mean 2 000 s.
        row = bi("SELECT staffed_s::int, busy_s::int, round(occupancy, 4), handled, "
                 "handle_s::int, round(aht_s) FROM bi.agent_occupancy_daily "
                 "WHERE agent_id = '%s' AND day = '%s'" % (AGENT, DAY))
        self.assertEqual(row, "14400|4200|%.4f|3|6000|2000" % (4200 / 14400))

    def test_staffing_per_hour(self):
        # 09:00: T1 and T2, AHT (1800 + 2400) / 2 = 2100 s; 10:00: T3, AHT 1800 s.
        self.assertEqual(bi("SELECT service_level, answer_within_s, reserve_low, reserve_high "
                            "FROM bi.staffing_settings"), "0.9|30|0.2|0.3")
        rows = bi("SELECT to_char(hour AT TIME ZONE 'UTC', 'HH24'), arrivals, round(aht_s), "
                  "round(traffic_erlang::numeric, 4), agents_erlang, agents_reserve_low, "
                  "agents_recommended, round(service_level::numeric, 4), "
                  "service_level_target, answer_within_s "
                  "FROM bi.staffing_hourly WHERE hour >= '%sT00:00:00Z' "
                  "AND hour < '%sT00:00:00Z'::timestamptz + interval '1 day' ORDER BY hour"
                  % (DAY, DAY)).splitlines()
        expected = []
        for hour, arrivals, aht in (("09", 2, 2100), ("10", 1, 1800)):
            c = agents_for(arrivals, aht, 0.9, 30)
            a = arrivals * aht / 3600
            sl = 1 - erlang_c(a, c) * math.exp(-(c - a) * 30 / aht)
            expected.append("%s|%d|%d|%.4f|%d|%d|%d|%.4f|0.9|30" % (
                hour, arrivals, aht, a, c, math.ceil(c * 1.2 - 1e-9),
                math.ceil(c * 1.3 - 1e-9), sl))
        # By hand, 90 % within 30 s: 09:00 a = 1.1667 E, 3 agents answer 87 %, 4 agents
        # 97 %; 10:00 a = 0.5 E, 1 agent 50 %, 2 agents 90.2 %; with 20 % and 30 % more,
        # 5 and 6, 3 and 3. (The defaults, 80 % in 20 s, would give 3 and 2.)
        self.assertEqual([e.split("|")[4:7] for e in expected], [["4", "5", "6"], ["2", "3", "3"]])
        self.assertEqual(rows, expected)

    def test_erlang_c_matches_the_formula(self):
        for a, c in ((1.1667, 2), (0.5, 1), (9.5, 12), (45.0, 50)):
            self.assertAlmostEqual(float(bi("SELECT bi.erlang_c(%r, %d)" % (a, c))),
                                   erlang_c(a, c), places=9)
        self.assertEqual(bi("SELECT bi.erlang_c(5, 5), bi.erlang_agents(0, 100, 0.8, 20)"),
                         "1|0")


if __name__ == "__main__":
    unittest.main(verbosity=2)
