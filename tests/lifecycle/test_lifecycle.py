#!/usr/bin/env python3
"""The ticket life cycle end to end on the real stack, through the public HTTP API only:
contacts and agent actions into sb-ingest, the ticket and its timeline read back from
sb-reporter's read API (both started here, the reporter in a consumer group of its own).
Replays the two example rows of the tracking sheet (a company customer's login fault, a
billing complaint) and checks every field of the final ticket and its timeline; plus a P1
escalated to the supervisor within its first-response target after a priority dispute
answered by a supervisor, a decline with a suggested colleague, a send-back from review,
an archive refused for missing CSAT, a reopen (and one refused outside its window),
illegal transitions answered 409 with the allowed moves, and two concurrent resolutions
of which exactly one passes. Collaboration: cross-department requests approved (assist,
hand-over) and rejected by a supervisor, refused to an agent and a lead and when decided
twice; a consultation slip sent, answered by its department and replied to the customer;
a complaint slip shown overdue, then answered late. Customer follow-ups: a reply on a
ticket pending on the customer resumes it and its SLA clocks (an sb-slawatch of the test's
own), a follow-up reopens a resolved ticket within the window and starts a new
ticket after it (docs/lifecycle.md)."""
import datetime
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
sys.path.insert(0, os.path.join(HERE, "..", "contract"))
import harness as h  # noqa: E402
import schemas  # noqa: E402

RUN = uuid.uuid4().hex[:8]
TEAM, TECH, FIN = "lc-%s" % RUN, "lc-tech-%s" % RUN, "lc-fin-%s" % RUN
AG1, AG2 = "agent-01-%s" % RUN, "agent-02-%s" % RUN
TECH1, FIN1 = "tech-01-%s" % RUN, "fin-01-%s" % RUN
LEAD, SUP = "lead-%s" % RUN, "sup-%s" % RUN
HANDOVER = "hand-over in the test"
API_SECRET = os.environ.get("SB_SECRET_API", "dev-secret-api")
ADMIN = "lc-admin-%s" % RUN
BY_TYPE, STORE = schemas.load(os.path.join(h.ROOT, "proto", "events"))


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")


def iso_ms(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def uuid7():
    ms = int(time.time() * 1000)
    rnd = uuid.uuid4().int & ((1 << 74) - 1)
    v = (ms << 80) | (0x7 << 76) | ((rnd >> 62) << 64) | (0b10 << 62) | (rnd & ((1 << 62) - 1))
    return uuid.UUID(int=v)


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class LifecycleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.psql("INSERT INTO teams (id, name) VALUES ('%s', 'Service'), ('%s', 'Tech'), "
               "('%s', 'Finance')" % (TEAM, TECH, FIN))
        h.psql("INSERT INTO agents (id, name, team_id, role) VALUES "
               "('%s', 'Agent 01', '%s', 'agent'), ('%s', 'Agent 02', '%s', 'agent'), "
               "('%s', 'Tech 01', '%s', 'agent'), ('%s', 'Finance 01', '%s', 'agent'), "
               "('%s', 'Lead', '%s', 'lead'), ('%s', 'Supervisor', '%s', 'supervisor')"
               % (AG1, TEAM, AG2, TEAM, TECH1, TECH, FIN1, FIN, LEAD, TEAM, SUP, TEAM))
        cls.tok = {}
        for who, role in ((AG1, "agent"), (AG2, "agent"), (TECH1, "agent"), (FIN1, "agent"),
                          (LEAD, "lead"), (SUP, "supervisor")):
            cls.tok[who] = h.sbctl("token", "create", "--role", role, "--agent", who)
        cls.p1_target = int(h.psql("SELECT first_response_s FROM sla_policies WHERE kind = "
                                   "'band' AND band = 'P1' ORDER BY id LIMIT 1") or "600")
        cls.reporter_port = h.free_port()
        cls.reporter = h.StageService("sb-reporter", RUN, SB_HTTP_PORT=cls.reporter_port,
                                      SB_ADMIN_TOKEN=ADMIN, SB_REPORTS_ENABLED="false",
                                      SB_HTTP_THREADS="2")
        cls.ingest = h.Ingest()

    @classmethod
    def tearDownClass(cls):
        rc_i = cls.ingest.stop()
        rc_r = cls.reporter.stop()
        h.psql("UPDATE api_tokens SET revoked_at = now() WHERE agent_id LIKE '%%-%s'" % RUN)
        assert rc_i == 0 and rc_r == 0, (rc_i, rc_r)

    # --- helpers -----------------------------------------------------------------

    def new_ticket(self, customer, words, name):
        body = {"channel": "chat", "external_id": "lc-%s-%s" % (RUN, name),
                "customer": {"customer_no": "%s-%s" % (customer, RUN)}, "body": words,
                "sent_at": iso(time.time())}
        st, b, _ = h.post_signed(self.ingest, "/v1/contacts", body, API_SECRET)
        self.assertEqual(st, 202, b)
        tid = b["ticket_id"]
        self.wait_ticket(tid, lambda t: True)
        return tid

    def act(self, who, tid, action, body=None, ingest=None):
        hdrs = {"Authorization": "Bearer " + self.tok[who], "Content-Type": "application/json"}
        raw = json.dumps(body if body is not None else {}, ensure_ascii=False).encode()
        return h.request((ingest or self.ingest).url("/v1/tickets/%s/%s" % (tid, action)), raw,
                         hdrs)[:2]

    def ok(self, who, tid, action, body=None):
        st, b = self.act(who, tid, action, body)
        self.assertEqual(st, 202, "%s %s: %s" % (action, body, b))
        return b["event_id"]

    def refused(self, who, tid, action, body, code, state):
        st, b = self.act(who, tid, action, body)
        self.assertEqual(st, 409, b)
        self.assertEqual(b["error"]["code"], code, b)
        # new and offered are both unclaimed (a router of the shared stack may offer).
        self.assertIn(b["error"]["state"], ("new", "offered") if state == "new" else (state,), b)
        self.assertIsInstance(b["error"]["allowed"], list)
        return b["error"]

    def contact(self, customer, words, name, ingest=None):
        """A customer's contact (chat); returns the 202 body."""
        body = {"channel": "chat", "external_id": "lc-%s-%s" % (RUN, name),
                "customer": {"customer_no": "%s-%s" % (customer, RUN)}, "body": words,
                "sent_at": iso(time.time())}
        st, b, _ = h.post_signed(ingest or self.ingest, "/v1/contacts", body, API_SECRET)
        self.assertEqual(st, 202, b)
        return b

    def collaboration(self, who, tid, ingest=None):
        st, b, _ = h.request((ingest or self.ingest).url("/v1/tickets/%s/collaboration" % tid),
                             headers={"Authorization": "Bearer " + self.tok[who]})
        self.assertEqual(st, 200, b)
        return b

    def kinds(self, ticket, types=("ticket.note_added",)):
        """(type, kind, stage) of the collaboration events on the timeline."""
        out = []
        for e in ticket["timeline"]:
            p = e["payload"]
            if e["type"] not in types or not p.get("kind", "").endswith(("request", "slip")):
                continue
            step = p.get("request") or p.get("slip")
            out.append((p["kind"], step["stage"], p["actor"]["agent_id"]))
        return out

    def take(self, owner, tid):
        """owner claims tid. On a shared stack an agent simulator may have claimed the
        ticket first (403): then the supervisor hands it over and owner claims it."""
        st, b = self.act(owner, tid, "claim")
        if st == 403:
            self.ok(SUP, tid, "transfer", {"to_agent": owner, "reason": HANDOVER,
                                           "customer_message": "a colleague takes over"})
            st, b = self.act(owner, tid, "claim")
        self.assertEqual(st, 202, b)

    def get(self, tid):
        return h.request("http://127.0.0.1:%d/api/v1/tickets/%s" % (self.reporter_port, tid),
                         headers={"Authorization": "Bearer " + ADMIN}, timeout=30)[:2]

    def wait_ticket(self, tid, pred, timeout=30):
        deadline, body = time.time() + timeout, None
        while time.time() < deadline:
            st, body = self.get(tid)
            if st == 200 and pred(body):
                return body
            time.sleep(0.2)
        self.fail("ticket %s never matched: %s" % (tid, json.dumps(body, ensure_ascii=False)))

    def ours(self, ticket):
        """The timeline events sb-ingest produced (other stages of the shared stack may
        add theirs: triage, routing, SLA clocks)."""
        mine = set(self.tok)

        def kept(e):
            actor = e["payload"].get("actor")
            if not e["producer"].startswith("sb-ingest"):
                return False
            if actor is None:
                return e["type"] == "contact.received"
            return actor.get("agent_id") in mine and e["payload"].get("reason") != HANDOVER
        return [e for e in ticket["timeline"] if kept(e)]

    def settled(self, tid, n):
        return self.wait_ticket(tid, lambda t: len(self.ours(t)) >= n)

    def assert_valid_events(self, tid):
        for e in h.consume("sb.activity.v1"):
            if e.get("ticket_id") == tid:
                ev = {k: v for k, v in e.items() if k != "_key"}
                self.assertEqual(schemas.errors(ev, BY_TYPE, STORE), [], ev)

    # --- the tracking sheet --------------------------------------------------------

    def test_sheet_row_1_login_fault(self):
        words = ("cannot log in, 'account abnormal', password reset did not help, today's "
                 "orders blocked")
        tid = self.new_ticket("A5678", words, "a5678")
        due = time.time() + 3 * 3600
        self.take(AG1, tid)
        self.ok(AG1, tid, "card", {"customer_words": words, "tried": "password reset",
                                   "urgency": "urgent", "category": "fault", "due_at": iso(due),
                                   "contact": "company account admin", "department_copies": [TECH]})
        self.ok(AG1, tid, "status", {"status": "in_progress"})
        self.ok(AG1, tid, "notes", {"text": "@%s please check the login service" % TECH1})
        self.ok(AG1, tid, "notes", {"text": "cache problem found", "kind": "progress",
                                    "percent": 50, "milestone": "cache problem found",
                                    "attachments": [{"name": "login-trace.txt",
                                                     "content_type": "text/plain",
                                                     "size": 2048}]})
        self.ok(AG1, tid, "notes", {"text": "cache cleared, login restored", "kind": "progress",
                                    "percent": 100, "milestone": "cache cleared, login restored"})
        self.ok(AG1, tid, "status", {"status": "resolved"})
        self.ok(AG1, tid, "csat", {"score": 5})
        self.ok(AG1, tid, "status", {"status": "in_review"})
        self.ok(SUP, tid, "review", {"outcome": "approved"})
        self.ok(AG1, tid, "status", {"status": "archived", "handling_minutes": 150,
                                     "note": "orders submitted normally"})
        t = self.settled(tid, 12)
        self.assertEqual(t["status"], "archived")
        self.assertEqual(t["owner_agent_id"], AG1)
        self.assertEqual(t["assistants"], [TECH1])
        self.assertEqual(t["customer_no"], "A5678-%s" % RUN)
        self.assertEqual(t["card"], {"customer_words": words, "tried": "password reset",
                                     "urgency": "urgent", "contact": "company account admin"})
        self.assertEqual(t["category"], "fault")
        self.assertEqual(t["department_copies"], [TECH])
        self.assertEqual(ts(t["due_at"]), float(int(due)))
        self.assertEqual(t["progress_percent"], 100)
        self.assertEqual(t["milestone"], "cache cleared, login restored")
        self.assertEqual([(p["percent"], p["milestone"], p["by"]) for p in t["progress"]],
                         [(50, "cache problem found", AG1),
                          (100, "cache cleared, login restored", AG1)])
        self.assertEqual(t["attachments"], [{"name": "login-trace.txt",
                                             "content_type": "text/plain", "size": 2048}])
        self.assertEqual(t["csat"], 5)
        self.assertEqual(t["review_outcome"], "approved")
        self.assertEqual(t["reviewed_by"], SUP)
        self.assertEqual(t["handling_minutes"], 150)
        self.assertEqual(t["closing_note"], "orders submitted normally")
        self.assertEqual(t["sent_back_count"], 0)
        self.assertIsNotNone(t["claimed_at"])
        self.assertLess(ts(t["resolved_at"]), due)  # done before due
        self.assertLessEqual(ts(t["resolved_at"]), ts(t["archived_at"]))
        self.assertEqual(t["key_decisions"], [])
        tl = self.ours(t)
        self.assertEqual([(e["type"], e["payload"].get("status") or e["payload"].get("kind")
                           or e["payload"].get("outcome")) for e in tl],
                         [("contact.received", None), ("ticket.claimed", None),
                          ("ticket.card_updated", None),
                          ("ticket.status_changed", "in_progress"),
                          ("ticket.note_added", None), ("ticket.note_added", "progress"),
                          ("ticket.note_added", "progress"),
                          ("ticket.status_changed", "resolved"), ("csat.received", None),
                          ("ticket.status_changed", "in_review"), ("ticket.reviewed", "approved"),
                          ("ticket.status_changed", "archived")])
        self.assertEqual(tl[4]["payload"]["mentions"], [TECH1])
        self.assertEqual([e["payload"].get("from") for e in tl if e["type"] ==
                          "ticket.status_changed"],
                         ["claimed", "in_progress", "resolved", "awaiting_archive"])
        self.assertEqual(tl[-1]["payload"]["category"], "fault")
        times = [ts(e["occurred_at"]) for e in tl]
        self.assertEqual(times, sorted(times))
        self.assert_valid_events(tid)

    def test_sheet_row_2_billing_complaint(self):
        words = "charged 200 too much last month, wants an explanation and a refund"
        tid = self.new_ticket("B139", words, "b139")
        self.take(AG2, tid)
        self.ok(AG2, tid, "card", {"customer_words": words, "urgency": "medium",
                                   "category": "complaint", "department_copies": [FIN]})
        self.ok(AG2, tid, "status", {"status": "in_progress"})
        self.ok(AG2, tid, "notes", {"text": "@%s fee breakdown please" % FIN1, "kind": "progress",
                                    "percent": 30, "milestone": "fee breakdown"})
        self.ok(AG2, tid, "notes", {"text": "records checked with the customer",
                                    "kind": "progress", "percent": 70,
                                    "milestone": "records checked with customer"})
        self.ok(AG2, tid, "notes", {"text": "add automatic plan reminder",
                                    "kind": "key_decision"})
        self.ok(AG2, tid, "notes", {"text": "refund submitted", "kind": "progress",
                                    "percent": 100, "milestone": "refund submitted"})
        self.ok(AG2, tid, "status", {"status": "resolved"})
        self.ok(AG2, tid, "csat", {"score": 4, "comment": "add automatic plan reminder"})
        self.ok(AG2, tid, "status", {"status": "in_review"})
        self.ok(LEAD, tid, "review", {"outcome": "approved"})
        self.ok(AG2, tid, "status", {"status": "archived", "handling_minutes": 95})
        t = self.settled(tid, 13)
        self.assertEqual(t["status"], "archived")
        self.assertEqual(t["owner_agent_id"], AG2)
        self.assertEqual(t["assistants"], [FIN1])
        self.assertEqual(t["card"], {"customer_words": words, "urgency": "medium"})
        self.assertEqual(t["category"], "complaint")
        self.assertEqual(t["department_copies"], [FIN])
        self.assertEqual([(p["percent"], p["milestone"]) for p in t["progress"]],
                         [(30, "fee breakdown"), (70, "records checked with customer"),
                          (100, "refund submitted")])
        self.assertEqual(t["progress_percent"], 100)
        self.assertEqual([d["text"] for d in t["key_decisions"]], ["add automatic plan reminder"])
        self.assertEqual(t["key_decisions"][0]["by"], AG2)
        self.assertEqual(t["csat"], 4)
        self.assertEqual(t["csat_comment"], "add automatic plan reminder")
        self.assertEqual(t["review_outcome"], "approved")
        self.assertEqual(t["reviewed_by"], LEAD)
        self.assertEqual(t["handling_minutes"], 95)
        self.assertIsNone(t["closing_note"])
        self.assertEqual([e["type"] for e in self.ours(t)],
                         ["contact.received", "ticket.claimed", "ticket.card_updated",
                          "ticket.status_changed"] + ["ticket.note_added"] * 4 +
                         ["ticket.status_changed", "csat.received", "ticket.status_changed",
                          "ticket.reviewed", "ticket.status_changed"])
        self.assert_valid_events(tid)

    # --- the rest of the life cycle ------------------------------------------------

    def test_p1_dispute_and_escalation_to_supervisor_within_target(self):
        tid = self.new_ticket("P1C", "whole company cannot pay, every order fails", "p1")
        self.take(AG1, tid)
        self.ok(AG1, tid, "dispute", {"band": "P1", "reason": "all of the company's orders"})
        self.ok(SUP, tid, "priority", {"band": "P1", "reason": "company-wide outage"})
        st, b = self.act(AG1, tid, "escalate", {"level": "supervisor", "reason": "x"})
        self.assertEqual(st, 403, b)  # the lead escalates to the supervisor
        self.refused(LEAD, tid, "escalate", {"level": "supervisor", "reason": "x"},
                     "escalation_order", "claimed")  # never skipping the lead
        self.ok(AG1, tid, "escalate", {"level": "lead", "reason": "customer asks for a manager"})
        self.ok(LEAD, tid, "escalate", {"level": "supervisor", "reason": "company-wide impact"})
        self.refused(LEAD, tid, "escalate", {"level": "supervisor", "reason": "again"},
                     "escalation_order", "claimed")
        t = self.settled(tid, 6)
        self.assertEqual(t["band"], "P1")
        self.assertEqual(t["escalation_level"], "supervisor")
        self.assertEqual([(e["from"], e["to"], e["by"]) for e in t["escalations"]],
                         [("agent", "lead", AG1), ("lead", "supervisor", LEAD)])
        self.assertEqual(t["priority_dispute"]["by"], AG1)
        ov = t["priority_override"]
        self.assertEqual((ov["by"], ov["band"], ov["reason"], ov["within_review"]),
                         (SUP, "P1", "company-wide outage", True))
        self.assertLessEqual(ov["review_s"], 120)
        sup_at = ts(t["escalations"][1]["at"])
        self.assertLess(sup_at - ts(t["created_at"]), self.p1_target)
        self.assert_valid_events(tid)

    def test_decline_with_suggested_colleague(self):
        tid = self.new_ticket("DC", "invoice title is wrong", "decline")
        body = {"reason": "not my product line", "suggested_agent": AG2}
        if self.act(AG1, tid, "decline", body)[0] == 403:  # claimed by a simulator first
            self.ok(SUP, tid, "transfer", {"to_team": TEAM, "reason": HANDOVER,
                                           "customer_message": "a colleague takes over"})
            self.ok(AG1, tid, "decline", body)
        self.take(AG2, tid)
        st, b = self.act(AG1, tid, "claim")
        self.assertEqual(st, 403, b)  # the colleague owns it now
        t = self.settled(tid, 3)
        # A simulator of the shared stack may decline its own offers of the ticket too.
        self.assertGreaterEqual(t["declines"], 1)
        [d] = [e["payload"] for e in self.ours(t) if e["type"] == "ticket.declined"]
        self.assertEqual((d["actor"]["agent_id"], d["reason"], d["suggested_agent"]),
                         (AG1, "not my product line", AG2))
        self.assertEqual(t["owner_agent_id"], AG2)
        self.assertEqual(t["status"], "claimed")

    def test_send_back_then_archive_refused_without_csat(self):
        tid = self.new_ticket("SB", "delivery address must change", "sendback")
        self.take(AG1, tid)
        self.ok(AG1, tid, "status", {"status": "resolved"})
        self.ok(AG1, tid, "status", {"status": "in_review"})
        st, b = self.act(LEAD, tid, "review", {"outcome": "sent_back"})
        self.assertEqual((st, b["error"]["field"]), (400, "reason"))
        self.ok(LEAD, tid, "review", {"outcome": "sent_back", "reason": "address not confirmed"})
        err = self.refused(AG1, tid, "status", {"status": "archived", "category": "logistics",
                                                "handling_minutes": 20},
                           "illegal_transition", "sent_back")
        self.assertEqual(err["allowed"], ["status:in_progress", "status:resolved", "replies",
                                          "notes", "card", "priority", "dispute", "escalate",
                                          "transfer", "request", "decision", "slip",
                                          "slip_answer", "slip_reply"])
        self.ok(AG1, tid, "status", {"status": "in_progress"})
        self.ok(AG1, tid, "status", {"status": "resolved"})
        self.ok(AG1, tid, "status", {"status": "in_review"})
        self.ok(LEAD, tid, "review", {"outcome": "approved"})
        err = self.refused(AG1, tid, "status", {"status": "archived"}, "archive_incomplete",
                           "awaiting_archive")
        self.assertEqual(err["missing"], ["csat", "category", "handling_minutes"])
        self.assertEqual(err["field"], "csat")
        err = self.refused(AG1, tid, "status", {"status": "archived", "category": "logistics",
                                                "handling_minutes": 20},
                           "archive_incomplete", "awaiting_archive")
        self.assertEqual(err["missing"], ["csat"])
        self.ok(AG1, tid, "csat", {"score": 3})
        self.ok(AG1, tid, "status", {"status": "archived", "category": "logistics",
                                     "handling_minutes": 20})
        t = self.settled(tid, 11)
        self.assertEqual((t["status"], t["sent_back_count"], t["sent_back_reason"], t["csat"],
                          t["category"], t["handling_minutes"]),
                         ("archived", 1, "address not confirmed", 3, "logistics", 20))

    def test_reopen_within_window_and_not_after(self):
        tid = self.new_ticket("RO", "refund not received", "reopen")
        self.take(AG2, tid)
        self.ok(AG2, tid, "status", {"status": "resolved"})
        self.ok(AG2, tid, "status", {"status": "reopened", "reason": "customer wrote again"})
        self.ok(AG2, tid, "status", {"status": "in_progress"})
        self.ok(AG2, tid, "status", {"status": "resolved"})
        t = self.settled(tid, 6)
        self.assertEqual((t["status"], t["reopened_count"]), ("resolved", 1))
        strict = h.Ingest(SB_REOPEN_WINDOW_S=0)
        try:
            time.sleep(1.2)
            st, b = self.act(AG2, tid, "status", {"status": "reopened"}, ingest=strict)
        finally:
            strict.stop()
        self.assertEqual(st, 409, b)
        self.assertEqual((b["error"]["code"], b["error"]["field"]),
                         ("reopen_window_closed", "status"))

    def test_illegal_transitions_list_the_allowed_moves(self):
        tid = self.new_ticket("IL", "where is my parcel", "illegal")
        err = self.refused(SUP, tid, "status", {"status": "resolved"}, "illegal_transition", "new")
        self.assertEqual(err["field"], "status")
        self.assertEqual(err["allowed"][:3], ["claim", "decline", "status:in_progress"])
        self.assertNotIn("status:resolved", err["allowed"])
        self.refused(SUP, tid, "review", {"outcome": "approved"}, "illegal_transition", "new")
        self.refused(SUP, tid, "csat", {"score": 5}, "illegal_transition", "new")
        self.take(AG1, tid)
        self.refused(AG1, tid, "status", {"status": "archived", "category": "x",
                                          "handling_minutes": 1}, "illegal_transition", "claimed")
        st, b = self.act(AG1, tid, "status", {"status": "resolved", "category": "x"})
        self.assertEqual((st, b["error"]["field"]), (400, "category"))

    def test_concurrent_resolutions_only_one_passes(self):
        tid = self.new_ticket("CC", "double charge", "concurrent")
        self.take(AG1, tid)
        results = []

        def resolve():
            results.append(self.act(AG1, tid, "status", {"status": "resolved"})[0])

        threads = [threading.Thread(target=resolve) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(sorted(results), [202, 409, 409, 409])

    def test_transfer_records_the_reason_said_to_the_customer(self):
        tid = self.new_ticket("TR", "need a tax invoice for the company", "transfer")
        self.take(AG1, tid)
        self.ok(AG1, tid, "transfer", {"to_agent": FIN1, "reason": "invoices are finance's",
                                       "customer_message": "I am handing you to our finance "
                                                           "colleague who issues invoices"})
        st, b = self.act(AG1, tid, "notes", {"text": "x"})
        self.assertEqual(st, 403, b)  # no longer the owner
        self.take(FIN1, tid)
        t = self.settled(tid, 4)
        [tr] = [x for x in t["transfers"] if x["reason"] != HANDOVER]
        self.assertEqual((tr["by"], tr["to_agent"], tr["reason"]),
                         (AG1, FIN1, "invoices are finance's"))
        self.assertTrue(tr["customer_message"].startswith("I am handing you"))
        self.assertEqual(t["owner_agent_id"], FIN1)
        self.assert_valid_events(tid)

    # --- collaboration across departments -------------------------------------------

    def test_cross_department_requests_decided_by_a_supervisor(self):
        tid = self.new_ticket("XD", "the refund was approved but never arrived", "xdept")
        self.take(AG1, tid)
        st, b = self.act(AG1, tid, "requests", {"kind": "assist", "department": TECH,
                                                "reason": "gateway logs needed",
                                                "needed": "the refund's gateway trace"})
        self.assertEqual(st, 202, b)
        assist = b["request_id"]
        st, b = self.act(AG1, tid, "requests", {"kind": "handover", "department": FIN,
                                                "reason": "refunds are finance's",
                                                "needed": "finance takes the refund over",
                                                "customer_message": "finance takes over"})
        self.assertEqual(st, 202, b)
        handover = b["request_id"]
        # a hand-over states what the customer is told; the department must exist
        st, b = self.act(AG1, tid, "requests", {"kind": "handover", "department": FIN,
                                                "reason": "r", "needed": "n"})
        self.assertEqual((st, b["error"]["field"]), (400, "customer_message"))
        st, b = self.act(AG1, tid, "requests", {"kind": "assist", "department": "no-such-team",
                                                "reason": "r", "needed": "n"})
        self.assertEqual((st, b["error"]["field"]), (400, "department"))
        # only a supervisor decides
        for who in (AG1, LEAD):
            st, b = self.act(who, tid, "requests/%s/decision" % assist, {"outcome": "approved"})
            self.assertEqual(st, 403, b)
            self.assertEqual(b["error"]["code"], "forbidden")
        st, b = self.act(SUP, tid, "requests/%s/decision" % handover, {"outcome": "rejected"})
        self.assertEqual((st, b["error"]["field"]), (400, "reason"))
        st, b = self.act(SUP, tid, "requests/R-nope/decision", {"outcome": "approved"})
        self.assertEqual((st, b["error"]["field"]), (404, "request_id"))
        self.ok(SUP, tid, "requests/%s/decision" % assist, {"outcome": "approved"})
        self.ok(SUP, tid, "requests/%s/decision" % handover,
                {"outcome": "rejected", "reason": "the owner finishes it with tech's help"})
        err = self.refused(SUP, tid, "requests/%s/decision" % assist, {"outcome": "rejected",
                                                                       "reason": "again"},
                           "request_decided", "claimed")
        self.assertEqual((err["request_id"], err["request_state"], err["decided_by"]),
                         (assist, "approved", SUP))
        self.assertIn("decision", err["allowed"])
        c = self.collaboration(AG1, tid)
        self.assertEqual([(r["id"], r["kind"], r["department"], r["state"], r["decided_by"])
                          for r in c["requests"]],
                         [(assist, "assist", TECH, "approved", SUP),
                          (handover, "handover", FIN, "rejected", SUP)])
        self.assertEqual(c["requests"][1]["decision_reason"],
                         "the owner finishes it with tech's help")
        self.assertEqual(c["requests"][0]["requested_by"], AG1)
        # approved assistance: the department in copy, the owner keeps the ticket
        t = self.wait_ticket(tid, lambda t: len(self.kinds(t)) >= 4 and t["department_copies"])
        self.assertEqual(t["department_copies"], [TECH])
        self.assertEqual(t["owner_agent_id"], AG1)
        self.assertEqual(t["status"], "claimed")
        self.assertEqual(self.kinds(t), [("department_request", "requested", AG1),
                                         ("department_request", "requested", AG1),
                                         ("department_request", "approved", SUP),
                                         ("department_request", "rejected", SUP)])
        self.assert_valid_events(tid)

    def test_cross_department_handover_approved(self):
        tid = self.new_ticket("XH", "the invoice must be reissued to the company", "xhand")
        self.take(AG2, tid)
        rid = self.act(AG2, tid, "requests", {"kind": "handover", "department": FIN,
                                              "reason": "invoices are finance's",
                                              "needed": "reissue the invoice",
                                              "customer_message": "our finance team takes "
                                                                  "over your invoice"})[1]
        self.ok(AG2, tid, "notes", {"text": "still mine until approved"})
        self.ok(SUP, tid, "requests/%s/decision" % rid["request_id"], {"outcome": "approved"})
        st, b = self.act(AG2, tid, "notes", {"text": "x"})
        self.assertEqual(st, 403, b)  # the department's queue has it now
        t = self.wait_ticket(tid, lambda t: any(x["reason"] == "invoices are finance's"
                                                for x in t["transfers"]))
        [tr] = [x for x in t["transfers"] if x["reason"] == "invoices are finance's"]
        self.assertEqual((tr["by"], tr["to_team"], tr["customer_message"]),
                         (SUP, FIN, "our finance team takes over your invoice"))
        self.assertEqual(t["team_id"], FIN)
        self.take(FIN1, tid)  # the department claims it from its queue
        self.assert_valid_events(tid)

    def test_a_step_produced_in_part_and_retried_is_recorded_once(self):
        # An ingest whose producer refuses messages over 2 000 bytes: a hand-over's note
        # goes out, its transfer (with a long customer message) does not, as when Kafka
        # fails between the two events. The step is answered 503 and left undone.
        tid = self.new_ticket("XR", "the invoice needs the company's new address", "xretry")
        self.take(AG2, tid)
        rid = self.act(AG2, tid, "requests", {"kind": "handover", "department": FIN,
                                              "reason": "address changes are finance's",
                                              "needed": "reissue the invoice",
                                              "customer_message": "m" * 3000})[1]["request_id"]
        small = h.Ingest(SB_RDKAFKA="message.max.bytes=2000")
        try:
            for _ in range(2):
                st, b = self.act(SUP, tid, "requests/%s/decision" % rid,
                                 {"outcome": "approved"}, ingest=small)
                self.assertEqual(st, 503, b)
        finally:
            self.assertEqual(small.stop(), 0)
        self.assertEqual(self.collaboration(SUP, tid)["requests"][0]["state"], "pending")
        # Retried where Kafka takes it: the same note (the same id), then the transfer.
        self.ok(SUP, tid, "requests/%s/decision" % rid, {"outcome": "approved"})
        t = self.wait_ticket(tid, lambda t: any(x["reason"] == "address changes are finance's"
                                                for x in t["transfers"]))
        self.assertEqual(self.kinds(t), [("department_request", "requested", AG2),
                                         ("department_request", "approved", SUP)])

    def test_consultation_slip_sent_answered_replied(self):
        tid = self.new_ticket("CS", "is the extended warranty valid abroad", "consult")
        self.take(AG1, tid)
        sent = time.time()
        st, b = self.act(AG1, tid, "slips", {"kind": "consultation", "department": TECH,
                                             "question": "does the warranty cover repairs "
                                                         "abroad?"})
        self.assertEqual(st, 202, b)
        sid = b["slip_id"]
        other = self.act(AG1, tid, "slips", {"kind": "consultation", "department": FIN,
                                             "question": "refund currency?"})[1]["slip_id"]
        [s, _] = self.collaboration(AG1, tid)["slips"]
        # due after lifecycle.consultation_due_s (default one day)
        self.assertAlmostEqual(ts(s["due_at"]) - sent, 86400, delta=30)
        self.assertEqual((s["state"], s["overdue"], s["sent_by"]), ("open", False, AG1))
        self.refused(AG1, tid, "slips/%s/reply" % sid, {"body": "too early"}, "slip_unanswered",
                     "claimed")
        st, b = self.act(AG1, tid, "slips/%s/answer" % sid, {"answer": "x"})
        self.assertEqual(st, 403, b)  # the owner is not in the department
        st, b = self.act(FIN1, tid, "slips/%s/answer" % sid, {"answer": "x"})
        self.assertEqual(st, 403, b)  # another department
        self.ok(TECH1, tid, "slips/%s/answer" % sid, {"answer": "yes, in every EU country"})
        self.refused(TECH1, tid, "slips/%s/answer" % sid, {"answer": "again"}, "slip_answered",
                     "claimed")
        st, b = self.act(TECH1, tid, "slips/%s/answer" % other, {"answer": "x"})
        self.assertEqual(st, 403, b)
        self.ok(AG1, tid, "slips/%s/reply" % sid,
                {"body": "Good news: your warranty covers repairs in every EU country."})
        self.refused(AG1, tid, "slips/%s/reply" % sid, {"body": "twice"}, "slip_replied",
                     "claimed")
        st, _, _ = h.request(self.ingest.url("/v1/tickets/%s/collaboration" % tid))
        self.assertEqual(st, 401)
        st, b, _ = h.request(self.ingest.url("/v1/tickets/T-no-such-%s/collaboration" % RUN),
                             headers={"Authorization": "Bearer " + self.tok[AG1]})
        self.assertEqual((st, b["error"]["code"]), (404, "not_found"))
        c = self.collaboration(TECH1, tid)
        s = c["slips"][0]
        self.assertEqual((s["id"], s["kind"], s["department"], s["state"], s["answer"],
                          s["answered_by"], s["replied_by"], s["overdue"], s["late"]),
                         (sid, "consultation", TECH, "replied", "yes, in every EU country",
                          TECH1, AG1, False, False))
        t = self.wait_ticket(tid, lambda t: len(self.kinds(t)) >= 4
                             and t["first_response_at"] is not None)
        self.assertEqual(self.kinds(t), [("consultation_slip", "sent", AG1),
                                         ("consultation_slip", "sent", AG1),
                                         ("consultation_slip", "answered", TECH1),
                                         ("consultation_slip", "replied", AG1)])
        [reply] = [e for e in t["timeline"] if e["type"] == "agent.replied"]
        # the projection keeps the size of a reply, not its text
        self.assertEqual(reply["payload"]["body_bytes"],
                         len("Good news: your warranty covers repairs in every EU country."))
        self.assertTrue(reply["payload"]["public"])
        self.assertEqual(reply["payload"]["actor"]["agent_id"], AG1)
        self.assert_valid_events(tid)

    def test_complaint_slip_overdue_then_answered_late(self):
        tid = self.new_ticket("CO", "the courier was rude and threw the parcel", "complaint")
        self.take(AG2, tid)
        st, b = self.act(AG2, tid, "slips", {"kind": "complaint", "department": FIN,
                                             "question": "compensation for the damage?",
                                             "due_at": iso(time.time() - 5)})
        self.assertEqual((st, b["error"]["field"]), (400, "due_at"))
        sid = self.act(AG2, tid, "slips", {"kind": "complaint", "department": FIN,
                                           "question": "compensation for the damage?",
                                           "due_at": iso(int(time.time()) + 2)})[1]["slip_id"]
        self.assertFalse(self.collaboration(AG2, tid)["slips"][0]["overdue"])
        time.sleep(3.5)
        s = self.collaboration(FIN1, tid)["slips"][0]
        self.assertEqual((s["id"], s["state"], s["overdue"]), (sid, "open", True))
        self.assertGreaterEqual(s["overdue_s"], 1)
        self.ok(FIN1, tid, "slips/%s/answer" % sid, {"answer": "a 50 voucher"})
        s = self.collaboration(AG2, tid)["slips"][0]
        self.assertEqual((s["state"], s["overdue"], s["late"]), ("answered", False, True))
        self.assertNotIn("overdue_s", s)
        t = self.wait_ticket(tid, lambda t: len(self.kinds(t)) >= 2)
        [answer] = [e["payload"]["slip"] for e in t["timeline"]
                    if e["type"] == "ticket.note_added" and
                    e["payload"].get("slip", {}).get("stage") == "answered"]
        self.assertTrue(answer["late"])
        self.assertGreaterEqual(answer["late_s"], 1)
        # the default due time of a complaint slip comes from the configuration
        short = h.Ingest(SB_COMPLAINT_DUE_S=600)
        try:
            sent = time.time()
            st, b = self.act(AG2, tid, "slips", {"kind": "complaint", "department": FIN,
                                                 "question": "and the courier?"}, ingest=short)
            self.assertEqual(st, 202, b)
            s = self.collaboration(AG2, tid, ingest=short)["slips"][1]
        finally:
            rc = short.stop()
        self.assertEqual(rc, 0)
        self.assertAlmostEqual(ts(s["due_at"]) - sent, 600, delta=30)
        self.assert_valid_events(tid)

    # --- customer follow-ups -------------------------------------------------------

    def triage(self, tid, customer):
        """ticket.triaged for tid on sb.tickets.v1 (what sb-triage would produce: this test
        runs no triage of its own), so that an SLA watcher starts its clocks."""
        with open(os.path.join(h.ROOT, "proto", "events", "examples", "ticket.triaged.json"),
                  encoding="utf-8") as f:
            ev = json.load(f)
        ev.update(event_id=str(uuid7()), occurred_at=iso_ms(time.time()), ticket_id=tid,
                  trace_id=uuid.uuid4().hex, producer="test/0")
        ev["payload"].update(band="P3", sla_policy="P3", customer_key="%s-%s" % (customer, RUN),
                             sla_clocks=["first_response", "resolution"])
        subprocess.run(["kcat", "-b", h.BROKERS, "-P", "-t", "sb.tickets.v1", "-K", "\t",
                        "-z", "none"], input=("%s\t%s\n" % (tid, json.dumps(ev))).encode(),
                       check=True, timeout=30)

    def sla(self, tid, state, timeout=60):
        """The sla.paused events of tid in state (paused, resumed), once there is one."""
        deadline, evs = time.time() + timeout, []
        while time.time() < deadline:
            evs = [e for e in h.consume("sb.sla.v1") if e.get("ticket_id") == tid and
                   e["type"] == "sla.paused" and e["payload"].get("state") == state]
            if evs:
                return evs
            time.sleep(0.5)
        self.fail("no sla.paused %s for %s" % (state, tid))

    def test_customer_reply_resumes_a_pending_ticket(self):
        # An SLA watcher of this test's own, to see the clocks pause and resume.
        watcher = h.StageService("sb-slawatch", RUN + "-fu")
        try:
            tid = self.new_ticket("PC", "my parcel shows delivered but it is not here",
                                  "pending")
            self.triage(tid, "PC")
            self.take(AG1, tid)
            self.ok(AG1, tid, "status", {"status": "in_progress"})
            self.ok(AG1, tid, "status", {"status": "pending_customer",
                                         "reason": "asked for a photo of the mailbox"})
            paused = self.sla(tid, "paused")
            b = self.contact("PC", "here is the photo, nothing in the mailbox", "pending-2")
            self.assertEqual(b["ticket_id"], tid)
            resumed = self.sla(tid, "resumed")
        finally:
            rc = watcher.stop()
        self.assertEqual(rc, 0)
        self.assertEqual({e["payload"]["reason"] for e in paused}, {"pending_customer"})
        self.assertEqual({e["payload"]["reason"] for e in resumed}, {"customer_replied"})
        # the move is produced before the contact: the projection may show it first
        t = self.wait_ticket(tid, lambda t: t["status"] == "in_progress" and t["contacts"] == 2)
        [moved] = [e for e in t["timeline"] if e["type"] == "ticket.status_changed"
                   and e["payload"]["actor"]["role"] == "customer"]
        self.assertEqual((moved["payload"]["from"], moved["payload"]["status"],
                          moved["payload"]["contact_id"], moved["payload"]["actor"]["agent_id"]),
                         ("pending_customer", "in_progress", b["contact_id"], ""))
        for e in resumed:
            self.assertGreaterEqual(ts(e["occurred_at"]), ts(moved["occurred_at"]) - 0.001)
        # the agent carries on from in_progress: the record moved too
        self.ok(AG1, tid, "status", {"status": "resolved"})
        # a contact on a ticket being worked on moves nothing
        tid2 = self.new_ticket("PW", "wrong size delivered", "working")
        self.take(AG1, tid2)
        self.ok(AG1, tid2, "status", {"status": "in_progress"})
        self.assertEqual(self.contact("PW", "any news?", "working-2")["ticket_id"], tid2)
        t2 = self.wait_ticket(tid2, lambda t: t["contacts"] == 2)
        self.assertEqual(t2["status"], "in_progress")
        self.assertEqual([e for e in t2["timeline"] if e["type"] == "ticket.status_changed"
                          and e["payload"]["actor"]["role"] == "customer"], [])
        self.assert_valid_events(tid)

    def test_followup_reopens_a_resolved_ticket_within_the_window(self):
        tid = self.new_ticket("FR", "the replacement charger does not work either", "followup")
        self.take(AG2, tid)
        self.ok(AG2, tid, "status", {"status": "resolved"})
        self.wait_ticket(tid, lambda t: t["status"] == "resolved")
        b = self.contact("FR", "still broken after the replacement", "followup-2")
        self.assertEqual(b["ticket_id"], tid)
        t = self.wait_ticket(tid, lambda t: t["status"] == "reopened")
        self.assertEqual(t["reopened_count"], 1)
        [moved] = [e["payload"] for e in t["timeline"] if e["type"] == "ticket.status_changed"
                   and e["payload"]["actor"]["role"] == "customer"]
        self.assertEqual((moved["from"], moved["status"], moved["contact_id"]),
                         ("resolved", "reopened", b["contact_id"]))
        self.ok(AG2, tid, "status", {"status": "in_progress"})
        self.ok(AG2, tid, "status", {"status": "resolved"})
        self.wait_ticket(tid, lambda t: t["status"] == "resolved")
        # past the window the follow-up starts a new ticket; the old one stays resolved
        strict = h.Ingest(SB_REOPEN_WINDOW_S=0)
        try:
            time.sleep(1.2)
            late = self.contact("FR", "and now the cable is broken", "followup-3",
                                ingest=strict)
        finally:
            rc = strict.stop()
        self.assertEqual(rc, 0)
        self.assertNotEqual(late["ticket_id"], tid)
        new = self.wait_ticket(late["ticket_id"], lambda t: True)
        self.assertEqual(new["customer_no"], "FR-%s" % RUN)
        # the customer's next contact joins the new ticket
        self.assertEqual(self.contact("FR", "photo attached", "followup-4")["ticket_id"],
                         late["ticket_id"])
        t = self.wait_ticket(tid, lambda t: t["status"] == "resolved")
        self.assertEqual((t["reopened_count"], t["contacts"]), (1, 2))
        self.assert_valid_events(tid)


if __name__ == "__main__":
    unittest.main(verbosity=2)
