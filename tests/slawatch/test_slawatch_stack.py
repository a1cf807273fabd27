#!/usr/bin/env python3
"""sb-slawatch on the real stack, with SLA targets of seconds (a policies file):
a triaged ticket gets sla.started; warnings, the breach and both escalations of an
untouched clock arrive in order, on time and once each; a clock paused on
pending_customer does not breach and its resume moves the target by the pause; a reply
and a resolve stop the clocks and schedule the CSAT survey and a complaint's callback;
killed with SIGKILL in the middle of a burst of deadlines and restarted, every due event
comes exactly once (one event id per step, no step with two ids); after a restart the
timers follow the wall clock again once the backlog is read (a deadline coming due later
fires on time, even while other partitions keep the consumer busy); killed after a reply
was applied and its events produced but before the snapshot was written, the restarted
watcher applies the reply from the backlog before judging the deadline that passed while
it was down (no breach); once routing makes the team of a ticket known (its agent through
the roster, its queue), the clocks take the team's target, the escalations name the
team's lead and supervisor, and the team outlives a restart."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ingest_api"))
sys.path.insert(0, os.path.join(HERE, "..", "contract"))
import harness  # noqa: E402
import schemas  # noqa: E402

RUN = uuid.uuid4().hex[:8]
BY_TYPE, STORE = schemas.load(os.path.join(harness.ROOT, "proto", "events"))
# Generous: a loaded CI machine under ASan.
SLOW = 3.0 if os.environ.get("SB_SANITIZE") or "asan" in harness.BIN else 1.0

# P2: first response 6 s (warnings at 50 % and 75 %), resolution 40 s; untouched breaches
# escalate again after min(target, 3 s).
POLICIES = [
    {"kind": "band", "band": "P1", "first_response_s": 6, "resolution_s": 60,
     "notify_at_start": "supervisor", "warn_fractions": [0.5, 0.8]},
    {"kind": "band", "band": "P2", "first_response_s": 6, "resolution_s": 40,
     "warn_fractions": [0.5, 0.75]},
    {"kind": "band", "band": "P3", "first_response_s": 60, "resolution_s": 120,
     "warn_fractions": [0.75, 0.9]},
    {"kind": "band", "band": "P4", "first_response_s": 120, "resolution_s": 240,
     "warn_fractions": [0.75, 0.9]},
    {"kind": "complex_complaint", "resolution_s": 300, "warn_fractions": [0.75, 0.9]},
]
ENV = dict(SB_SLAWATCH_REESCALATE_MAX_S=3, SB_SLAWATCH_CSAT_DELAY_S=2,
           SB_SLAWATCH_CALLBACK_DELAY_S=3, SB_SLAWATCH_TICK_MS=100)


def uuid7():
    ms = int(time.time() * 1000)
    rnd = uuid.uuid4().int & ((1 << 80) - 1)
    v = (ms << 80) | (0x7 << 76) | ((rnd >> 68) & 0xfff) << 64 | (0b10 << 62) | (rnd & ((1 << 62) - 1))
    h = "%032x" % v
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def parse_ms(s):
    base = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    return (int(__import__("calendar").timegm(base)) * 1000) + int(s[20:23])


def envelope(type_, ticket, payload, t=None):
    return {"event_id": uuid7(), "type": type_, "occurred_at": rfc3339(t or time.time()),
            "producer": "test/0", "schema": 1, "ticket_id": ticket,
            "trace_id": uuid.uuid4().hex, "payload": payload}


def triaged(ticket, band="P2", clocks=("first_response", "resolution"), t=None):
    with open(os.path.join(harness.ROOT, "proto", "events", "examples", "ticket.triaged.json"),
              encoding="utf-8") as f:
        p = json.load(f)["payload"]
    p.update(band=band, sla_policy=band, sla_clocks=list(clocks), customer_key="C-" + RUN)
    return envelope("ticket.triaged", ticket, p, t)


def status(ticket, st):
    return envelope("ticket.status_changed", ticket,
                    {"ticket_id": ticket, "actor": {"role": "agent", "agent_id": "a-1"},
                     "status": st})


def replied(ticket):
    return envelope("agent.replied", ticket,
                    {"ticket_id": ticket, "actor": {"role": "agent", "agent_id": "a-1"},
                     "body": "您好，已为您处理。", "public": True})


def produce(topic, events, partition=None):
    """To topic, keyed by ticket (or all to one partition: the state of sb-slawatch is kept
    per partition number, whatever the key)."""
    lines = ["%s\t%s" % (e["ticket_id"], json.dumps(e, ensure_ascii=False)) for e in events]
    where = [] if partition is None else ["-p", str(partition)]
    subprocess.run(["kcat", "-b", harness.BROKERS, "-P", "-t", topic, "-K", "\t", "-z", "none"] +
                   where, input=("\n".join(lines) + "\n").encode(), check=True, timeout=30)


def sla_events(tickets):
    tickets = set(tickets)
    return [e for e in harness.consume("sb.sla.v1", timeout=60) if e.get("ticket_id") in tickets]


def wait_for(pred, tickets, timeout):
    """Polls sb.sla.v1 until pred(events of tickets) holds; returns the events."""
    deadline = time.time() + timeout
    evs = []
    while time.time() < deadline:
        evs = sla_events(tickets)
        if pred(evs):
            return evs
        time.sleep(0.5)
    return evs


def step(e):
    """What an event is a step of: same step twice with two ids would be a duplicate."""
    p = e["payload"]
    return (e["ticket_id"], e["type"], p.get("kind"), p.get("state"), p.get("fraction"),
            p.get("level"), p.get("target_at") if e["type"] == "sla.started" else None,
            p.get("due_at"))


def of(evs, ticket, type_, kind="first_response", **match):
    return [e for e in evs if e["ticket_id"] == ticket and e["type"] == type_ and
            e["payload"].get("kind") == kind and
            all(e["payload"].get(k) == v for k, v in match.items())]


def unique(evs):
    """Events by id (a redelivered copy has the same id)."""
    return list({e["event_id"]: e for e in evs}.values())


class Base(unittest.TestCase):
    def assertValid(self, ev):
        errs = schemas.errors({k: v for k, v in ev.items() if k != "_key"}, BY_TYPE, STORE)
        self.assertEqual(errs, [], json.dumps(ev, ensure_ascii=False))

    def assertNoDuplicateSteps(self, evs):
        ids = {}
        for e in evs:
            ids.setdefault(step(e), set()).add(e["event_id"])
        dup = {k: v for k, v in ids.items() if len(v) > 1}
        self.assertEqual(dup, {}, "steps produced with more than one event id")


class SlawatchStackTest(Base):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sb-slawatch-test-")
        cls.policies = os.path.join(cls.tmp, "policies.json")
        with open(cls.policies, "w", encoding="utf-8") as f:
            json.dump(POLICIES, f)
        cls.svc = harness.StageService("sb-slawatch", RUN, SB_SLAWATCH_POLICIES_FILE=cls.policies,
                                       **ENV)

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        assert rc == 0, "sb-slawatch exited %s on SIGTERM" % rc

    def test_warning_breach_escalation_in_order_on_time_once(self):
        t = "T-slw-%s-esc" % RUN
        t0 = time.time()
        produce("sb.tickets.v1", [triaged(t, t=t0)])

        def done(evs):
            return len(of(evs, t, "sla.escalated", level="supervisor")) >= 1

        evs = wait_for(done, [t], 60 * SLOW)
        self.assertTrue(done(evs), "no second escalation: %s" % self.svc.logs()[-3000:])
        time.sleep(1.5)  # anything extra would have come by now (it is asserted below)
        evs = sla_events([t])
        for e in evs:
            self.assertValid(e)
        self.assertNoDuplicateSteps(evs)
        # In the order produced (one ticket: one partition).
        fr = unique([e for e in evs if e["payload"].get("kind") == "first_response"])
        kinds = [(e["type"], e["payload"].get("fraction") or e["payload"].get("level"))
                 for e in fr]
        self.assertEqual(kinds, [("sla.started", None), ("sla.warning", 0.5),
                                 ("sla.warning", 0.75), ("sla.breached", None),
                                 ("sla.escalated", "lead"), ("sla.escalated", "supervisor")])
        start = fr[0]["payload"]
        target = parse_ms(start["target_at"])
        origin = int(t0 * 1000)
        self.assertEqual(target - origin, 6000)
        self.assertEqual(start["target_s"], 6)
        # On time: never early, late by at most a few seconds even on a slow machine.
        dues = [origin + 3000, origin + 4500, target, target, target + 3000]
        for e, due in zip(fr[1:], dues):
            fired = parse_ms(e["occurred_at"])
            self.assertGreaterEqual(fired, due, e)
            self.assertLess(fired - due, 2500 * SLOW, e)
        self.assertEqual(fr[3]["payload"]["target_at"], start["target_at"])
        self.assertEqual(fr[4]["payload"]["reason"], "breached")
        # The untouched clock stops escalating at the top.
        self.assertEqual(len(of(evs, t, "sla.escalated")), 2)

    def test_pause_on_pending_customer_and_resume(self):
        t, ctl = "T-slw-%s-pause" % RUN, "T-slw-%s-ctl" % RUN
        produce("sb.tickets.v1", [triaged(t), triaged(ctl)])
        evs = wait_for(lambda v: len(of(v, t, "sla.started")) == 1, [t], 30 * SLOW)
        produce("sb.activity.v1", [status(t, "pending_customer")])
        # The control ticket, started together, breaches; the paused one does not.
        evs = wait_for(lambda v: len(of(v, ctl, "sla.breached")) == 1, [t, ctl], 60 * SLOW)
        self.assertEqual(len(of(evs, ctl, "sla.breached")), 1, self.svc.logs()[-3000:])
        time.sleep(1.0)
        evs = sla_events([t])
        paused = of(evs, t, "sla.paused", state="paused")
        self.assertEqual(len(unique(paused)), 1)
        self.assertEqual(paused[0]["payload"]["reason"], "pending_customer")
        self.assertEqual(len(of(evs, t, "sla.paused", kind="resolution", state="paused")), 1)
        self.assertEqual(of(evs, t, "sla.breached"), [])
        time.sleep(1.0)
        r0 = time.time()
        produce("sb.activity.v1", [status(t, "in_progress")])
        evs = wait_for(lambda v: len(of(v, t, "sla.breached")) == 1, [t], 60 * SLOW)
        resumed = unique(of(evs, t, "sla.paused", state="resumed"))
        self.assertEqual(len(resumed), 1)
        started = parse_ms(of(evs, t, "sla.started")[0]["payload"]["target_at"])
        new_target = parse_ms(resumed[0]["payload"]["target_at"])
        pause_ms = resumed[0]["payload"]["paused_ms"]
        self.assertGreater(pause_ms, 2000)
        self.assertEqual(new_target, started + pause_ms)
        breach = unique(of(evs, t, "sla.breached"))
        self.assertEqual(len(breach), 1)
        self.assertEqual(breach[0]["payload"]["target_at"], resumed[0]["payload"]["target_at"])
        self.assertGreaterEqual(parse_ms(breach[0]["occurred_at"]), int(r0 * 1000))
        for e in evs:
            self.assertValid(e)
        self.assertNoDuplicateSteps(evs)

    def test_stalled_watcher_reads_what_came_before_it_judges(self):
        # The watcher stalls (SIGSTOP: a paused VM, a starved process, a flush waiting for
        # a broker that is down) while a reply comes and the deadline passes. Going on, it
        # reads what came meanwhile before it judges: no breach for the replied ticket;
        # the control ticket breaches once.
        t, ctl = "T-slw-%s-stall" % RUN, "T-slw-%s-ctl5" % RUN
        produce("sb.tickets.v1", [triaged(t), triaged(ctl)])  # P2: first response in 6 s
        wait_for(lambda v: all(len(of(v, x, "sla.started")) == 1 for x in (t, ctl)), [t, ctl],
                 30 * SLOW)
        os.kill(self.svc.proc.pid, signal.SIGSTOP)
        try:
            produce("sb.activity.v1", [replied(t)])  # well before the deadline
            time.sleep(8)
        finally:
            os.kill(self.svc.proc.pid, signal.SIGCONT)
        evs = wait_for(lambda v: len(of(v, ctl, "sla.breached")) >= 1, [t, ctl], 30 * SLOW)
        self.assertEqual(len(of(evs, ctl, "sla.breached")), 1, self.svc.logs()[-3000:])
        time.sleep(2.0)
        evs = sla_events([t, ctl])
        self.assertEqual(of(evs, t, "sla.breached"), [], self.svc.logs()[-3000:])
        self.assertEqual(len(unique(of(evs, ctl, "sla.breached"))), 1)
        self.assertNoDuplicateSteps(evs)

    def test_reply_and_resolve_stop_clocks_and_schedule_followups(self):
        t, ctl = "T-slw-%s-res" % RUN, "T-slw-%s-ctl2" % RUN
        produce("sb.tickets.v1", [
            triaged(t, clocks=("first_response", "resolution", "complex_complaint")),
            triaged(ctl)])
        wait_for(lambda v: len(of(v, t, "sla.started", kind="complex_complaint")) == 1, [t],
                 30 * SLOW)
        produce("sb.activity.v1", [replied(t), status(t, "resolved")])
        evs = wait_for(lambda v: len([e for e in v if e["type"] == "followup.due"]) >= 2 and
                       len(of(v, ctl, "sla.breached")) == 1, [t, ctl], 60 * SLOW)
        time.sleep(1.0)
        evs = sla_events([t, ctl])
        fu = unique([e for e in evs if e["type"] == "followup.due" and e["ticket_id"] == t])
        self.assertEqual(sorted(e["payload"]["kind"] for e in fu), ["callback", "csat_survey"],
                         self.svc.logs()[-3000:])
        for e in fu:
            self.assertEqual(e["payload"]["customer_key"], "C-" + RUN)
            self.assertEqual(e["payload"]["channel"], "chat")
        self.assertEqual([e for e in evs if e["ticket_id"] == t and
                          e["type"] in ("sla.breached", "sla.escalated")], [])
        for e in evs:
            self.assertValid(e)
        self.assertNoDuplicateSteps(evs)

    def test_p1_tells_the_supervisor_at_start(self):
        t = "T-slw-%s-p1" % RUN
        produce("sb.tickets.v1", [triaged(t, band="P1")])
        evs = wait_for(lambda v: len(of(v, t, "sla.escalated")) >= 1, [t], 30 * SLOW)
        esc = of(evs, t, "sla.escalated")
        self.assertEqual(esc[0]["payload"]["level"], "supervisor")
        self.assertEqual(esc[0]["payload"]["reason"], "p1_immediate")

    def test_metrics(self):
        self.assertGreaterEqual(self.svc.metric("sb_slawatch_clocks_active"), 0)
        self.assertGreaterEqual(self.svc.metric("sb_slawatch_timer_delay_seconds_count"), 0)


class SlawatchRestartTest(Base):
    """Killed during a burst of deadlines: what fell due while down fires at once after the
    restart, each step once."""

    def test_kill_during_burst_every_due_event_once(self):
        run = RUN + "r"
        tmp = tempfile.mkdtemp(prefix="sb-slawatch-test-")
        policies = os.path.join(tmp, "policies.json")
        with open(policies, "w", encoding="utf-8") as f:
            json.dump(POLICIES, f)
        svc = harness.StageService("sb-slawatch", run, SB_SLAWATCH_POLICIES_FILE=policies, **ENV)
        n = 40
        tickets = ["T-slw-%s-k%02d" % (run, i) for i in range(n)]
        t0 = time.time()
        produce("sb.tickets.v1", [triaged(tk, t=t0 + i * 0.05) for i, tk in enumerate(tickets)])
        # Every clock started and snapshotted (the started events come before the write).
        evs = wait_for(lambda v: len(unique([e for e in v if e["type"] == "sla.started"])) >= 2 * n,
                       tickets, 60 * SLOW)
        self.assertEqual(len(unique([e for e in evs if e["type"] == "sla.started"])), 2 * n)
        # Kill once the burst of warnings has begun.
        wait_for(lambda v: len([e for e in v if e["type"] == "sla.warning"]) >= 5, tickets,
                 60 * SLOW)
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait(30)
        fired_before = len(unique(sla_events(tickets)))
        # Down past every first-response deadline and both escalations.
        while time.time() < t0 + 6 + 3 + 2 + n * 0.05:
            time.sleep(0.5)
        restarted = time.time()
        svc = harness.StageService("sb-slawatch", run, SB_SLAWATCH_POLICIES_FILE=policies, **ENV)
        try:
            def done(v):
                return len(unique([e for e in v if e["type"] == "sla.escalated" and
                                   e["payload"]["level"] == "supervisor"])) >= n

            evs = wait_for(done, tickets, 90 * SLOW)
            self.assertTrue(done(evs), svc.logs()[-3000:])
            time.sleep(2.0)
            evs = sla_events(tickets)
        finally:
            self.assertEqual(svc.stop(), 0)
        self.assertNoDuplicateSteps(evs)
        raw = [e for e in evs if e["payload"].get("kind") == "first_response"]
        fr = unique(raw)
        for tk in tickets:
            mine = [e for e in fr if e["ticket_id"] == tk]
            self.assertEqual(sorted((e["type"], str(e["payload"].get("fraction") or
                                                    e["payload"].get("level") or "")) for e in mine),
                             [("sla.breached", ""), ("sla.escalated", "lead"),
                              ("sla.escalated", "supervisor"), ("sla.started", ""),
                              ("sla.warning", "0.5"), ("sla.warning", "0.75")], tk)
        # What was due while it was down came at once after the restart.
        after = [e for e in fr if e["type"] == "sla.breached" and
                 parse_ms(e["occurred_at"]) >= int(restarted * 1000)]
        self.assertGreater(len(after), 0)
        for e in after:
            self.assertLess(parse_ms(e["occurred_at"]) - int(restarted * 1000), 60000 * SLOW)
            self.assertGreater(e["payload"]["late_ms"], 0)
        copies = len(raw) - len(fr)
        print("restart: %d events before the kill, %d first-response steps in all, %d "
              "redelivered copies (same ids)" % (fired_before, len(fr), copies))
        for e in evs:
            self.assertValid(e)


# Targets long enough to restart within them; Kafka sessions short enough that a member
# killed with SIGKILL leaves its group within seconds.
RECOVERY_POLICIES = [
    {"kind": "band", "band": b, "first_response_s": 16, "resolution_s": 300,
     "warn_fractions": [0.5, 0.75]} for b in ("P1", "P2", "P3", "P4")]
RECOVERY_ENV = dict(ENV, SB_RDKAFKA="session.timeout.ms=6000,heartbeat.interval.ms=1000")
PART, OTHER = 5, 6  # partitions of sb.tickets.v1 / sb.activity.v1 used below


def own(evs):
    """The events of this class's watcher: another SLA watcher reading the same topics on a
    shared stack (another group, other policies) times the same tickets with other
    targets; its events are left out."""
    targets = {(e["ticket_id"], e["payload"]["kind"]): e["payload"]["target_at"]
               for e in evs if e["type"] == "sla.started" and
               e["payload"].get("target_s") in (16, 300)}
    return [e for e in evs if (e["ticket_id"], e["payload"].get("kind")) in targets and
            e["payload"].get("target_at", targets[(e["ticket_id"], e["payload"]["kind"])]) ==
            targets[(e["ticket_id"], e["payload"]["kind"])] and e["type"] != "sla.escalated"]


def clock_state(group, ticket, kind="first_response"):
    """The state field of a clock's snapshot row (1 running, 3 met), None without a row."""
    out = harness.psql("SELECT state FROM sla_clock_snapshots WHERE consumer_group = '%s' AND "
                       "ticket_id = '%s' AND kind = '%s'" % (group, ticket, kind)).strip()
    return int(out.split()[17]) if out else None


def prime(group, run):
    """One message the watcher does not act on, on each topic's partition PART, and waits
    until the group's snapshot holds an offset of each: a restart knows where the backlog
    of every topic begins (docs/slawatch.md, "Storage and restart")."""
    for topic in ("sb.tickets.v1", "sb.routing.v1", "sb.activity.v1"):
        produce(topic, [envelope("ticket.viewed", "T-slw-%s-prime" % run, {})], partition=PART)
    deadline = time.time() + 30 * SLOW
    while harness.psql("SELECT count(*) FROM sla_consumer_offsets WHERE consumer_group = '%s' "
                       "AND part = %d" % (group, PART)).strip() != "3":
        if time.time() > deadline:
            raise AssertionError("offsets of partition %d not written" % PART)
        time.sleep(0.2)


class SlawatchRecoveryTest(Base):
    """Regressions of docs/faults.md, "sb-slawatch after SIGKILL"."""

    def start(self, run):
        tmp = tempfile.mkdtemp(prefix="sb-slawatch-test-")
        policies = os.path.join(tmp, "policies.json")
        with open(policies, "w", encoding="utf-8") as f:
            json.dump(RECOVERY_POLICIES, f)
        return harness.StageService("sb-slawatch", run, SB_SLAWATCH_POLICIES_FILE=policies,
                                    **RECOVERY_ENV)

    def test_restart_then_deadline_fires_on_time(self):
        """Bug 2: the timers stayed on the inputs' time after a restart while the consumer
        was busy with other partitions; a deadline coming due after the restart fired only
        when the inputs stopped."""
        run = RUN + "t"
        svc = self.start(run)
        prime("sb-slawatch-test-" + run, run)
        t1, t2 = "T-slw-%s-late1" % run, "T-slw-%s-late2" % run
        t0 = time.time()
        produce("sb.tickets.v1", [triaged(t1, t=t0)], partition=PART)
        wait_for(lambda v: len(of(v, t1, "sla.started")) == 1, [t1], 30 * SLOW)
        time.sleep(0.5)  # the snapshot is written after the started event was acknowledged
        self.assertEqual(svc.stop(), 0)
        svc = self.start(run)
        stop = []

        def noise():
            # Inputs on other partitions all along: every loop turn has work.
            i = 0
            while not stop:
                produce("sb.activity.v1", [status("T-slw-%s-noise%d" % (run, i), "in_progress")],
                        partition=OTHER)
                i += 1
                time.sleep(0.05)

        import threading
        th = threading.Thread(target=noise, daemon=True)
        th.start()
        try:
            r0 = time.time()
            produce("sb.tickets.v1", [triaged(t2, t=r0)], partition=PART)
            evs = wait_for(lambda v: len(of(own(v), t1, "sla.breached")) >= 1 and
                           len(of(own(v), t2, "sla.breached")) >= 1, [t1, t2], (16 + 20) * SLOW)
        finally:
            stop.append(1)
            th.join(30)
            rc = svc.stop()
        self.assertEqual(rc, 0)
        evs = own(evs)
        for t, origin in ((t1, t0), (t2, r0)):
            fr = unique([e for e in evs if e["ticket_id"] == t and
                         e["payload"].get("kind") == "first_response"])
            got = {(e["type"], e["payload"].get("fraction")): parse_ms(e["occurred_at"])
                   for e in fr}
            due = {("sla.warning", 0.5): 8000, ("sla.warning", 0.75): 12000,
                   ("sla.breached", None): 16000}
            for step_, after in due.items():
                self.assertIn(step_, got, "%s: %s missing: %s" % (t, step_, sorted(got)))
                late = got[step_] - (int(origin * 1000) + after)
                self.assertGreaterEqual(late, 0, (t, step_))
                self.assertLess(late, 2500 * SLOW, "%s: %s late by %d ms" % (t, step_, late))
        self.assertNoDuplicateSteps(evs)

    def test_kill_between_produce_and_snapshot_reply_applied_once(self):
        """Bug 1: killed after a reply was applied and its batch produced but before the
        snapshot was written, down past the deadline: the restarted watcher judged the
        restored clock by the wall clock before reading the reply from the backlog, and
        breached a ticket answered in time."""
        run = RUN + "k"
        group = "sb-slawatch-test-" + run
        svc = self.start(run)
        prime(group, run)
        t, ctl = "T-slw-%s-ans" % run, "T-slw-%s-unans" % run
        t0 = time.time()
        produce("sb.tickets.v1", [triaged(t, t=t0), triaged(ctl, t=t0)], partition=PART)
        deadline = time.time() + 30 * SLOW
        while clock_state(group, t) != 1 or clock_state(group, ctl) != 1:
            self.assertLess(time.time(), deadline, "clocks not snapshotted: " + svc.logs()[-2000:])
            time.sleep(0.2)
        # Hold the ticket's snapshot rows: the flush of the reply's batch produces its events,
        # then waits on the row lock before its snapshot transaction can commit.
        pg = harness.PG
        lock = subprocess.Popen(["psql", "-h", pg["host"], "-p", pg["port"], "-U", pg["user"],
                                 "-d", pg["db"], "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"],
                                env=dict(os.environ, PGPASSWORD=pg["password"]),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        lock.stdin.write("BEGIN;\nSELECT pg_backend_pid();\nSELECT count(*) FROM (SELECT 1 "
                         "FROM sla_clock_snapshots WHERE consumer_group = '%s' AND ticket_id = "
                         "'%s' FOR UPDATE) x;\n" % (group, t))
        lock.stdin.flush()
        pid = int(lock.stdout.readline())
        self.assertEqual(lock.stdout.readline().strip(), "2")  # first response, resolution
        try:
            produce("sb.activity.v1", [replied(t)], partition=PART)
            waited = time.time() + 30 * SLOW
            while harness.psql("SELECT count(*) FROM pg_stat_activity WHERE %d = ANY("
                               "pg_blocking_pids(pid))" % pid).strip() == "0":
                self.assertLess(time.time(), waited, "the reply's flush never came")
                time.sleep(0.1)
            svc.proc.send_signal(signal.SIGKILL)
            svc.proc.wait(30)
        finally:
            lock.stdin.write("ROLLBACK;\n")
            lock.stdin.close()
            lock.wait(30)
            lock.stdout.close()
        self.assertEqual(clock_state(group, t), 1, "the reply's snapshot was written")
        # Down past the deadline of both clocks.
        while time.time() < t0 + 16 + 1:
            time.sleep(0.2)
        svc = self.start(run)
        try:
            evs = own(wait_for(lambda v: len(of(own(v), ctl, "sla.breached")) >= 1, [t, ctl],
                               60 * SLOW))
            self.assertEqual(len(unique(of(evs, ctl, "sla.breached"))), 1, svc.logs()[-3000:])
            time.sleep(2.0)
            evs = own(sla_events([t, ctl]))
            deadline = time.time() + 10 * SLOW
            while clock_state(group, t) != 3 and time.time() < deadline:
                time.sleep(0.2)
            state = clock_state(group, t)
        finally:
            self.assertEqual(svc.stop(), 0)
        self.assertEqual(of(evs, t, "sla.breached"), [], "breach of a clock answered in time")
        self.assertEqual(state, 3, "the reply is not in the snapshot (met)")
        self.assertNoDuplicateSteps(evs)
        for e in evs:
            self.assertValid(e)


class SlawatchTeamTest(Base):
    """Clocks started at triage know no team; the team routing makes known (the agent of
    ticket.assigned through the roster, the team part of a queue) re-targets them with
    the team's policy row, keeping the time counted; the escalations name the team's lead
    and supervisor; the team is kept with the snapshot, so a reopen after a restart still
    gets the team's target."""

    def setUp(self):
        self.run_id = RUN + "m"
        r = self.run_id
        self.team = "tm-%s" % r
        self.lead, self.sup, self.agent = "a-%s-lead" % r, "a-%s-sup" % r, "a-%s-1" % r
        # Inactive: the roster knows them, no router offers them work.
        harness.psql(
            "INSERT INTO teams (id, name) VALUES ('{t}', '{t}'); "
            "INSERT INTO agents (id, name, team_id, role, active) VALUES "
            "('{l}', 'lead', '{t}', 'lead', false), ('{s}', 'sup', '{t}', 'supervisor', false), "
            "('{a}', 'agent', '{t}', 'agent', false); "
            "UPDATE teams SET lead_agent_id = '{l}', supervisor_agent_id = '{s}' "
            "WHERE id = '{t}'".format(t=self.team, l=self.lead, s=self.sup, a=self.agent))
        tmp = tempfile.mkdtemp(prefix="sb-slawatch-test-")
        self.policies = os.path.join(tmp, "policies.json")
        # P3: 60 s to first response for anyone, 8 s in this team.
        rows = [dict(r_) for r_ in POLICIES]
        rows.append({"kind": "band", "band": "P3", "team_id": self.team,
                     "first_response_s": 8, "resolution_s": 40, "warn_fractions": [0.5, 0.75]})
        # P4: 8 s of the team's business time.
        rows.append({"kind": "band", "band": "P4", "team_id": self.team, "business_time": True,
                     "first_response_s": 8, "resolution_s": 40, "warn_fractions": [0.5, 0.75]})
        with open(self.policies, "w", encoding="utf-8") as f:
            json.dump(rows, f)

    def tearDown(self):
        harness.psql("UPDATE teams SET lead_agent_id = NULL, supervisor_agent_id = NULL WHERE "
                     "id = '{t}'; DELETE FROM agents WHERE team_id = '{t}'; DELETE FROM teams "
                     "WHERE id = '{t}'; DELETE FROM calendars WHERE id = 'cal-{r}'"
                     .format(t=self.team, r=self.run_id))

    def start(self):
        return harness.StageService("sb-slawatch", self.run_id,
                                    SB_SLAWATCH_POLICIES_FILE=self.policies,
                                    SB_SLAWATCH_ROSTER_REFRESH_S=1, **ENV)

    @staticmethod
    def mine(evs):
        """Events of this watcher: another watcher on a shared stack gives other targets."""
        return [e for e in evs if e["type"] != "sla.started" or
                e["payload"].get("target_s") in (8, 40, 60, 120, 240)]

    def test_team_calendar_loaded_with_sbctl(self):
        """sbctl load calendars gives the team a calendar, in a zone of the team's own; a
        business-time target of the team counts on it once the team is known."""
        cal = "cal-%s" % self.run_id
        # Open from the minute three minutes ahead to midnight (UTC), that weekday only: the
        # re-targeted clock waits for the opening, then counts its 7 s left.
        opens = (int(time.time()) // 60 + 3) * 60
        day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[time.gmtime(opens).tm_wday]
        hours = "%s %s-24:00" % (day, time.strftime("%H:%M", time.gmtime(opens)))
        path = os.path.join(os.path.dirname(self.policies), "calendars.json")
        with open(path, "w", encoding="utf-8") as f:
            # Hours in Shanghai for the calendar; the team counts them in UTC.
            json.dump([{"id": cal, "timezone": "Asia/Shanghai", "hours": hours,
                        "holidays": ["2031-01-01"], "teams": [self.team + "@UTC"]}], f)
        harness.sbctl("load", "calendars", path)
        xmin = harness.psql("SELECT string_agg(xmin::text, ',') FROM (SELECT xmin FROM calendars "
                            "WHERE id = '%s' UNION ALL SELECT xmin FROM calendar_hours WHERE "
                            "calendar_id = '%s' UNION ALL SELECT xmin FROM teams WHERE id = "
                            "'%s') x" % (cal, cal, self.team))
        harness.sbctl("load", "calendars", path)  # again: nothing changes
        self.assertEqual(harness.psql(
            "SELECT string_agg(xmin::text, ',') FROM (SELECT xmin FROM calendars WHERE id = '%s' "
            "UNION ALL SELECT xmin FROM calendar_hours WHERE calendar_id = '%s' UNION ALL SELECT "
            "xmin FROM teams WHERE id = '%s') x" % (cal, cal, self.team)), xmin)
        self.assertEqual(harness.psql("SELECT calendar_id || ' ' || timezone FROM teams WHERE "
                                      "id = '%s'" % self.team), cal + " UTC")
        bad = os.path.join(os.path.dirname(self.policies), "bad.json")
        with open(bad, "w", encoding="utf-8") as f:
            json.dump([{"id": cal, "timezone": "Asia/Shanghai", "hours": "mon 18:00-09:00"}], f)
        out = subprocess.run([os.path.join(harness.BIN, "sbctl"), "load", "calendars", bad],
                             capture_output=True, text=True, check=False)
        self.assertEqual(out.returncode, 1)
        self.assertIn('bad.json:1: field "hours"', out.stderr)

        t = "T-slw-%s-cal" % self.run_id
        svc = self.start()
        try:
            t0 = int(time.time()) + 0.5
            produce("sb.tickets.v1", [triaged(t, band="P4", t=t0)])
            wait_for(lambda v: len(of(v, t, "sla.started")) >= 1, [t], 30 * SLOW)
            produce("sb.routing.v1", [envelope("ticket.assigned", t, {
                "agent_id": self.agent, "queue": "any/order_payment", "wait_ms": 10}, t0 + 1.0)])
            evs = wait_for(lambda v: len(of(self.mine(v), t, "sla.started")) >= 2, [t], 30 * SLOW)
            logs = svc.logs()
        finally:
            self.assertEqual(svc.stop(), 0)
        fr = unique(of(self.mine(evs), t, "sla.started"))
        self.assertEqual(len(fr), 2, logs[-2000:])
        self.assertEqual(fr[0]["payload"]["target_s"], 120)
        p = fr[1]["payload"]
        self.assertEqual((p["target_s"], p["business_time"], p.get("calendar")),
                         (8, True, cal + "@UTC"))
        # 1 s counted before the team was known; 7 s of business time from the opening.
        self.assertEqual(parse_ms(p["target_at"]), opens * 1000 + 7000)
        for e in evs:
            self.assertValid(e)

    def test_team_target_breach_names_lead_and_supervisor(self):
        t, q, ctl = ("T-slw-%s-%s" % (self.run_id, x) for x in ("asg", "que", "ctl"))
        svc = self.start()
        try:
            # A new supervisor while the watcher runs: the roster is read again every second.
            sup2 = "a-%s-sup2" % self.run_id
            harness.psql("INSERT INTO agents (id, name, team_id, role, active) VALUES ('%s', "
                         "'sup2', '%s', 'supervisor', false); UPDATE teams SET "
                         "supervisor_agent_id = '%s' WHERE id = '%s'" %
                         (sup2, self.team, sup2, self.team))
            t0 = int(time.time()) + 0.5  # exact in binary: t0 + 1.0 is 1000 ms later
            produce("sb.tickets.v1", [triaged(x, band="P3", t=t0) for x in (t, q, ctl)])
            wait_for(lambda v: len(of(v, ctl, "sla.started")) >= 1, [t, q, ctl], 30 * SLOW)
            # One second in: assigned to an agent of the team (the queue names no team),
            # the other queued in the team's queue.
            produce("sb.routing.v1", [
                envelope("ticket.assigned", t, {"agent_id": self.agent,
                                                "queue": "any/order_payment", "wait_ms": 900},
                         t0 + 1.0),
                envelope("ticket.queued", q, {"queue": self.team + "/order_payment",
                                              "band": "P3", "position": 1, "eta_seconds": None,
                                              "required_skills": ["order_payment"]},
                         t0 + 1.0)])

            def done(v):
                return all(len(of(self.mine(v), x, "sla.escalated", level="supervisor")) >= 1
                           for x in (t, q))

            evs = wait_for(done, [t, q, ctl], 60 * SLOW)
            self.assertTrue(done(evs), svc.logs()[-3000:])
            time.sleep(1.0)
            evs = self.mine(sla_events([t, q, ctl]))
        finally:
            self.assertEqual(svc.stop(), 0)
        origin = int(t0 * 1000)
        for x in (t, q):
            fr = unique(of(evs, x, "sla.started"))
            self.assertEqual([e["payload"]["target_s"] for e in fr], [60, 8], fr)
            self.assertEqual(parse_ms(fr[0]["payload"]["target_at"]) - origin, 60000)
            # Re-targeted at the assignment, counted from the first contact: due at 8 s.
            self.assertEqual(parse_ms(fr[1]["payload"]["target_at"]) - origin, 8000)
            self.assertEqual(parse_ms(fr[1]["occurred_at"]) - origin, 1000)
            self.assertTrue(fr[1]["payload"]["policy"].startswith("sla_policies/"))
            breach = unique(of(evs, x, "sla.breached"))
            self.assertEqual(len(breach), 1)
            self.assertEqual(parse_ms(breach[0]["payload"]["target_at"]) - origin, 8000)
            fired = parse_ms(breach[0]["occurred_at"])
            self.assertGreaterEqual(fired, origin + 8000)
            self.assertLess(fired - origin - 8000, 2500 * SLOW)
            esc = unique(of(evs, x, "sla.escalated"))
            self.assertEqual([(e["payload"]["level"], e["payload"].get("to_agent_id"))
                              for e in esc], [("lead", self.lead), ("supervisor", sup2)])
        # The resolution clock too (40 s in the team instead of 120 s).
        self.assertEqual(unique(of(evs, t, "sla.started", kind="resolution"))[-1]["payload"]
                         ["target_s"], 40)
        # The control ticket has no team: its 60 s target is still running.
        self.assertEqual(of(evs, ctl, "sla.breached"), [])
        self.assertEqual(of(evs, ctl, "sla.started")[0]["payload"]["target_s"], 60)
        for e in evs:
            self.assertValid(e)
        self.assertNoDuplicateSteps(evs)

    def test_assignment_read_before_the_triage_waits_for_it(self):
        # The watcher reads its three topics side by side: an assignment read before its
        # ticket's triage (routing ahead of triage on a busy stack) waits for the triage
        # and is applied after it, in the order they occurred.
        t, ctl = ("T-slw-%s-%s" % (self.run_id, x) for x in ("ahd", "ctl2"))
        svc = self.start()
        try:
            t0 = int(time.time()) + 0.5
            produce("sb.tickets.v1", [triaged(ctl, band="P3", t=t0)])
            wait_for(lambda v: len(of(v, ctl, "sla.started")) >= 1, [ctl], 30 * SLOW)
            produce("sb.routing.v1", [envelope("ticket.assigned", t, {
                "agent_id": self.agent, "queue": "any/order_payment", "wait_ms": 900},
                t0 + 1.0)])
            time.sleep(1.0)  # read by the watcher before the triage exists
            produce("sb.tickets.v1", [triaged(t, band="P3", t=t0)])
            evs = wait_for(lambda v: len(of(self.mine(v), t, "sla.breached")) >= 1, [t],
                           30 * SLOW)
            logs = svc.logs()
        finally:
            self.assertEqual(svc.stop(), 0)
        origin = int(t0 * 1000)
        fr = unique(of(self.mine(evs), t, "sla.started"))
        self.assertEqual([e["payload"]["target_s"] for e in fr], [60, 8], logs[-2000:])
        self.assertEqual(parse_ms(fr[1]["occurred_at"]) - origin, 1000)
        self.assertEqual(parse_ms(unique(of(evs, t, "sla.breached"))[0]["payload"]["target_at"])
                         - origin, 8000)

    def test_team_kept_across_restart(self):
        t = "T-slw-%s-rst" % self.run_id
        group = "sb-slawatch-test-" + self.run_id
        svc = self.start()
        try:
            produce("sb.tickets.v1", [triaged(t, band="P3")])
            wait_for(lambda v: len(of(v, t, "sla.started")) >= 1, [t], 30 * SLOW)
            produce("sb.routing.v1", [envelope("ticket.assigned", t, {
                "agent_id": self.agent, "queue": "any/order_payment", "wait_ms": 10})])
            wait_for(lambda v: len(of(self.mine(v), t, "sla.started")) >= 2, [t], 30 * SLOW)
            produce("sb.activity.v1", [replied(t), status(t, "resolved")])
            deadline = time.time() + 30 * SLOW
            while clock_state(group, t) != 3:
                self.assertLess(time.time(), deadline, "reply not snapshotted: " +
                                svc.logs()[-2000:])
                time.sleep(0.2)
        finally:
            self.assertEqual(svc.stop(), 0)
        self.assertEqual(harness.psql("SELECT team_id FROM sla_ticket_facts WHERE "
                                      "consumer_group = '%s' AND ticket_id = '%s'" % (group, t)),
                         self.team)
        svc = self.start()
        try:
            produce("sb.activity.v1", [status(t, "reopened")])
            evs = wait_for(lambda v: len([e for e in of(self.mine(v), t, "sla.started")
                                          if e["payload"].get("restart")]) >= 1, [t], 30 * SLOW)
            logs = svc.logs()
        finally:
            self.assertEqual(svc.stop(), 0)
        restarted = [e for e in of(self.mine(evs), t, "sla.started") if e["payload"].get("restart")]
        self.assertEqual(len(restarted), 1, logs[-2000:])
        self.assertEqual(restarted[0]["payload"]["target_s"], 8, restarted)


if __name__ == "__main__":
    if not harness.kcat_available():
        print("kcat not installed: skipped")
        sys.exit(0)
    unittest.main(verbosity=2)
