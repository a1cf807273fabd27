#!/usr/bin/env python3
"""Contract tests of proto/: every schema is a valid JSON Schema, every example validates
against its schema (and matches its example file), topics.json lists every topic and
event of DESIGN.md, invalid events are refused, and openapi.yaml has the contract paths."""
import copy
import glob
import json
import os
import sys
import unittest

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import schemas  # noqa: E402

ROOT = os.environ.get("SB_REPO_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
EVENTS = os.path.join(ROOT, "proto", "events")
DESIGN_TOPICS = {
    "sb.contacts.v1": ["contact.received"],
    "sb.tickets.v1": ["ticket.triaged", "ticket.rescored", "ticket.merged"],
    "sb.routing.v1": ["ticket.queued", "ticket.offered", "ticket.assigned", "ticket.requeued",
                      "ticket.overflowed"],
    "sb.activity.v1": ["agent.replied", "ticket.status_changed", "ticket.transferred",
                       "ticket.note_added", "csat.received", "ticket.claimed", "ticket.reviewed"],
    "sb.presence.v1": ["agent.presence"],
    "sb.sla.v1": ["sla.started", "sla.paused", "sla.warning", "sla.breached", "sla.escalated",
                  "followup.due"],
    "sb.dlq.v1": ["dlq.entry"],
}


class Contracts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.by_type, cls.store = schemas.load(EVENTS)
        with open(os.path.join(ROOT, "proto", "topics.json"), encoding="utf-8") as f:
            cls.topics = json.load(f)

    def test_every_schema_is_valid(self):
        for sid, schema in self.store.items():
            with self.subTest(schema=sid):
                jsonschema.Draft202012Validator.check_schema(schema)

    def test_every_example_validates_and_matches_its_file(self):
        self.assertGreaterEqual(len(self.by_type), 24)
        for t, schema in self.by_type.items():
            with self.subTest(type=t):
                self.assertEqual(len(schema.get("examples", [])), 1, "one example per schema")
                example = schema["examples"][0]
                self.assertEqual(schemas.errors(example, self.by_type, self.store), [])
                with open(os.path.join(EVENTS, "examples", t + ".json"), encoding="utf-8") as f:
                    self.assertEqual(json.load(f), example)

    def test_topics_cover_design(self):
        listed = {t["name"]: t for t in self.topics["topics"]}
        for name, events in DESIGN_TOPICS.items():
            with self.subTest(topic=name):
                self.assertIn(name, listed)
                t = listed[name]
                for field in ("partitions", "replication_factor", "retention_ms", "key", "events"):
                    self.assertIn(field, t)
                self.assertGreaterEqual(t["partitions"], 1)
                for e in events:
                    self.assertIn(e, t["events"])

    def test_topic_events_and_schemas_agree(self):
        listed = {e for t in self.topics["topics"] for e in t["events"]}
        self.assertEqual(listed, set(self.by_type))

    def _bad(self, t, mutate):
        event = copy.deepcopy(self.by_type[t]["examples"][0])
        mutate(event)
        self.assertNotEqual(schemas.errors(event, self.by_type, self.store), [],
                            "accepted an invalid %s" % t)

    def test_invalid_events_are_refused(self):
        self._bad("contact.received", lambda e: e.pop("event_id"))
        self._bad("contact.received", lambda e: e.update(event_id="018fc0de-0001-4001-8001-000000001eef"))
        self._bad("contact.received", lambda e: e.update(occurred_at="2024-05-20 14:00"))
        self._bad("contact.received", lambda e: e.update(occurred_at="2024-05-20T14:00:00Z"))
        self._bad("contact.received", lambda e: e.update(type="ticket.triaged"))
        self._bad("contact.received", lambda e: e.update(extra=1))
        self._bad("contact.received", lambda e: e.update(trace_id="0" * 32))
        self._bad("contact.received", lambda e: e["payload"].update(customer={"name": "x"}))
        self._bad("contact.received", lambda e: e["payload"].update(channel="fax"))
        self._bad("ticket.triaged", lambda e: e["payload"].update(band="P5"))
        self._bad("ticket.triaged", lambda e: e["payload"].update(urgency=4))
        self._bad("csat.received", lambda e: e["payload"].update(score=6))
        self._bad("sla.escalated", lambda e: e["payload"].update(level="ceo"))
        self._bad("ticket.claimed", lambda e: e.pop("ticket_id"))

    def test_openapi_has_contract_paths(self):
        with open(os.path.join(ROOT, "proto", "openapi.yaml"), encoding="utf-8") as f:
            api = yaml.safe_load(f)
        self.assertTrue(str(api["openapi"]).startswith("3."))
        paths = api["paths"]
        for p in ["/v1/contacts", "/v1/channels/email", "/v1/channels/wechat",
                  "/v1/channels/phone", "/v1/channels/chat", "/v1/channels/social",
                  "/v1/tickets/{id}/replies", "/v1/tickets/{id}/priority",
                  "/v1/agents/{id}/presence", "/healthz", "/readyz", "/metrics"]:
            self.assertIn(p, paths)
        self.assertIn("Error", api["components"]["schemas"])


if __name__ == "__main__":
    unittest.main(verbosity=1)
