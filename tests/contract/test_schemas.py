#!/usr/bin/env python3
"""Contract tests of proto/.

  python3 tests/contract/test_schemas.py [--repo ROOT] [unittest options]

Checks that every JSON Schema of proto/events is valid (draft 2020-12), that every event
schema has exactly one example which validates (with $refs resolved locally, by $id) and
equals proto/events/examples/<type>.json, that topics.json lists every topic of DESIGN.md
with its fields and that its event types and the schemas match one to one, that invalid
events are refused, that openapi.yaml parses, has the contract paths and consistent
examples, and that validate_event.py reports bad events. Runs on Debian's
python3-jsonschema 4.10 (RefResolver) and on newer releases. Exits non-zero on failure."""
import argparse
import copy
import glob
import json
import os
import subprocess
import sys
import unittest

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import schemas  # noqa: E402

ROOT = None  # set in main()
BASE = "https://switchboard.local/proto/events/"

# DESIGN.md, "Topics": topic -> event types it must carry.
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
TOPIC_FIELDS = {"name": str, "partitions": int, "replication_factor": int, "retention_ms": int,
                "cleanup_policy": str, "key": str, "events": list, "config": dict}
ADMIN_PATHS = ["/healthz", "/readyz", "/metrics"]
CONTRACT_PATHS = [
    "/v1/contacts", "/v1/channels/email", "/v1/channels/wechat", "/v1/channels/phone",
    "/v1/channels/chat", "/v1/channels/social",
    "/v1/tickets/{id}/replies", "/v1/tickets/{id}/status", "/v1/tickets/{id}/transfer",
    "/v1/tickets/{id}/notes", "/v1/tickets/{id}/claim", "/v1/tickets/{id}/decline",
    "/v1/tickets/{id}/review", "/v1/tickets/{id}/csat", "/v1/tickets/{id}/priority",
    "/v1/agents/{id}/presence",
    "/v1/tickets/{id}", "/v1/metrics/summary", "/v1/reports", "/v1/reports/{id}.csv",
    "/v1/reports/{id}.html", "/"] + ADMIN_PATHS
ERROR_STATUSES = {"400", "401", "403", "404", "405", "409", "413", "415", "429", "503"}


def events_dir():
    return os.path.join(ROOT, "proto", "events")


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def uuid7_ms(event_id):
    return int(event_id.replace("-", "")[:12], 16)


def rfc3339_ms(ts):
    """Milliseconds since the epoch of a time_ms string (Z or offset)."""
    from datetime import datetime, timezone
    s = ts.replace("Z", "+00:00")
    return int(datetime.fromisoformat(s).astimezone(timezone.utc).timestamp() * 1000 + 0.5)


class Schemas(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.by_type, cls.store = schemas.load(events_dir())
        cls.files = sorted(glob.glob(os.path.join(events_dir(), "*.schema.json")))
        cls.topics = load_json(os.path.join(ROOT, "proto", "topics.json"))

    def errors(self, t, event):
        """Validation messages of event against the schema of type t (not event["type"])."""
        v = schemas.validator(self.by_type[t], self.store)
        return [e.message for e in v.iter_errors(event)]

    def example(self, t):
        return copy.deepcopy(self.by_type[t]["examples"][0])

    def test_every_schema_is_valid_2020_12(self):
        self.assertGreaterEqual(len(self.files), 26)
        for path in self.files:
            name = os.path.basename(path)
            with self.subTest(schema=name):
                schema = load_json(path)
                self.assertEqual(schema.get("$schema"),
                                 "https://json-schema.org/draft/2020-12/schema")
                self.assertEqual(schema.get("$id"), BASE + name, "$id follows the file name")
                jsonschema.Draft202012Validator.check_schema(schema)

    def test_event_schemas_extend_the_envelope(self):
        topic_of = {e: t["name"] for t in self.topics["topics"] for e in t["events"]}
        for t, schema in self.by_type.items():
            with self.subTest(type=t):
                self.assertRegex(t, r"^[a-z]+(\.[a-z_]+)+$")
                self.assertEqual(schema["allOf"][0], {"$ref": "envelope.schema.json"})
                part = schema["allOf"][1]
                self.assertEqual(part["properties"]["type"], {"const": t})
                self.assertEqual(part["properties"]["payload"].get("type"), "object")
                self.assertIs(part["properties"]["payload"].get("additionalProperties"), False,
                              "payloads are closed: a typo in a producer is caught")
                self.assertEqual(schema.get("x-topic"), topic_of.get(t))

    def test_every_example_validates_and_matches_its_file(self):
        seen_ids = set()
        for t, schema in self.by_type.items():
            with self.subTest(type=t):
                self.assertEqual(len(schema.get("examples", [])), 1, "exactly one example")
                example = schema["examples"][0]
                self.assertEqual(example["type"], t)
                self.assertEqual(schemas.errors(example, self.by_type, self.store), [])
                path = os.path.join(events_dir(), "examples", t + ".json")
                self.assertTrue(os.path.exists(path), "missing " + path)
                self.assertEqual(load_json(path), example)
                self.assertEqual(uuid7_ms(example["event_id"]),
                                 rfc3339_ms(example["occurred_at"]),
                                 "the example's UUIDv7 carries occurred_at")
                self.assertNotIn(example["event_id"], seen_ids)
                seen_ids.add(example["event_id"])
        for path in glob.glob(os.path.join(events_dir(), "examples", "*.json")):
            t = os.path.basename(path)[: -len(".json")]
            self.assertIn(t, self.by_type, "example file without a schema: " + path)

    def test_envelope_rules_hold_for_every_type(self):
        for t in self.by_type:
            with self.subTest(type=t):
                bad = {
                    "missing event_id": lambda e: e.pop("event_id"),
                    "event_id v4": lambda e: e.update(
                        event_id="018fc0de-0001-4001-8001-000000001eef"),
                    "event_id bad variant": lambda e: e.update(
                        event_id=e["event_id"][:19] + "c" + e["event_id"][20:]),
                    "event_id uppercase": lambda e: e.update(event_id=e["event_id"].upper()),
                    "occurred_at without ms": lambda e: e.update(
                        occurred_at="2024-05-20T14:00:00Z"),
                    "occurred_at with a space": lambda e: e.update(
                        occurred_at="2024-05-20 14:00:00.000Z"),
                    "occurred_at without zone": lambda e: e.update(
                        occurred_at="2024-05-20T14:00:00.000"),
                    "occurred_at month 13": lambda e: e.update(
                        occurred_at="2024-13-20T14:00:00.000Z"),
                    "wrong type": lambda e: e.update(
                        type="ticket.triaged" if t != "ticket.triaged" else "ticket.queued"),
                    "extra envelope property": lambda e: e.update(extra=1),
                    "trace_id all zero": lambda e: e.update(trace_id="0" * 32),
                    "trace_id uppercase": lambda e: e.update(trace_id=e["trace_id"].upper()),
                    "schema 0": lambda e: e.update(schema=0),
                    "schema string": lambda e: e.update(schema="1"),
                    "producer without version": lambda e: e.update(producer="sb-ingest"),
                    "payload not an object": lambda e: e.update(payload=[]),
                    "unknown payload field": lambda e: e["payload"].update(unknown_field=1),
                }
                for what, mutate in bad.items():
                    event = self.example(t)
                    mutate(event)
                    self.assertNotEqual(self.errors(t, event), [], "accepted: " + what)
                # Offsets are allowed, as RFC 3339 says.
                event = self.example(t)
                event["occurred_at"] = "2024-05-20T22:00:00.123+08:00"
                self.assertEqual(self.errors(t, event), [])

    def _bad(self, t, mutate, what):
        event = self.example(t)
        mutate(event)
        self.assertNotEqual(self.errors(t, event), [], "accepted an invalid %s: %s" % (t, what))

    def _good(self, t, mutate, what):
        event = self.example(t)
        mutate(event)
        self.assertEqual(self.errors(t, event), [], "refused a valid %s: %s" % (t, what))

    def test_invalid_payloads_are_refused(self):
        c = "contact.received"
        self._bad(c, lambda e: e["payload"].update(customer={"name": "王先生"}), "no identity")
        self._bad(c, lambda e: e["payload"].update(customer={}), "empty customer")
        self._bad(c, lambda e: e["payload"].update(channel="fax"), "channel")
        self._bad(c, lambda e: e["payload"].update(body=""), "empty body")
        self._bad(c, lambda e: e["payload"].pop("external_id"), "no external_id")
        self._bad(c, lambda e: e["payload"]["customer"].update(phone="138-1234-5678"), "phone")
        self._bad(c, lambda e: e["payload"]["customer"].update(email="no-at"), "email")
        self._bad(c, lambda e: e["payload"].update(attachments=[{"size": 1}]), "attachment")
        self._bad(c, lambda e: e.pop("ticket_id"), "no ticket_id")
        self._good(c, lambda e: e["payload"].update(customer={"wechat_openid": "oUpF8uMu"}),
                   "wechat identity only")
        t = "ticket.triaged"
        self._bad(t, lambda e: e["payload"].update(band="P5"), "band")
        self._bad(t, lambda e: e["payload"].update(urgency=4), "urgency")
        self._bad(t, lambda e: e["payload"].update(domain="billing"), "domain")
        self._bad(t, lambda e: e["payload"].update(stage="after-sale"), "stage")
        self._bad(t, lambda e: e["payload"].update(nature="question"), "nature")
        self._bad(t, lambda e: e["payload"].update(band="P1"), "band P1 with score 7")
        self._bad(t, lambda e: e["payload"]["fivew1h"].update(whom="x"), "5W1H field")
        self._good(t, lambda e: e["payload"].update(incident_id="INC-1"), "incident id")
        self._good(t, lambda e: e["payload"].update(fivew1h={}), "empty 5W1H")
        self._bad("ticket.rescored", lambda e: e["payload"].pop("overridden_by"),
                  "override without who")
        self._bad("csat.received", lambda e: e["payload"].update(score=6), "score 6")
        self._bad("csat.received", lambda e: e["payload"].update(score=0), "score 0")
        self._bad("sla.escalated", lambda e: e["payload"].update(level="ceo"), "level")
        self._bad("sla.started", lambda e: e["payload"].update(kind="lunch"), "clock kind")
        self._bad("ticket.claimed", lambda e: e.pop("ticket_id"), "no ticket_id")
        self._bad("ticket.reviewed", lambda e: e["payload"].pop("reason"),
                  "sent back without a reason")
        self._bad("ticket.transferred", lambda e: e["payload"].pop("to_team"), "no target")
        self._bad("ticket.transferred", lambda e: e["payload"].pop("customer_message"),
                  "customer not told")
        self._bad("agent.presence", lambda e: e.update(ticket_id="T-1"), "presence with ticket")
        self._bad("agent.presence", lambda e: e["payload"]["capacities"].update(fax=1),
                  "capacity of an unknown channel")
        self._bad("agent.replied", lambda e: e["payload"]["actor"].update(role="ceo"), "role")
        d = "dlq.entry"
        self._bad(d, lambda e: e["payload"].update(raw_base64="AAAA"), "raw text and base64")
        self._bad(d, lambda e: e["payload"].pop("raw_text"), "no raw value")
        self._bad(d, lambda e: e["payload"].update(key_sha256="C1002"), "clear key")
        self._bad(d, lambda e: e["payload"]["origin"].pop("offset"), "origin without offset")
        self._good(d, lambda e: (e["payload"].pop("raw_text"),
                                 e["payload"].update(raw_base64="q83vEjRWeJA=")), "base64 raw")


class Topics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = load_json(os.path.join(ROOT, "proto", "topics.json"))
        cls.by_type, _ = schemas.load(events_dir())

    def test_shape(self):
        self.assertEqual(self.doc.get("version"), 1)
        self.assertIsInstance(self.doc.get("defaults"), dict)
        self.assertIsInstance(self.doc["defaults"].get("config", {}), dict)
        names = [t.get("name") for t in self.doc["topics"]]
        self.assertEqual(len(names), len(set(names)), "duplicate topic")
        for t in self.doc["topics"]:
            with self.subTest(topic=t.get("name")):
                for field, kind in TOPIC_FIELDS.items():
                    self.assertIn(field, t)
                    self.assertIsInstance(t[field], kind, field)
                    self.assertNotIsInstance(t[field], bool, field)
                self.assertRegex(t["name"], r"^sb\.[a-z]+\.v[0-9]+$")
                self.assertGreaterEqual(t["partitions"], 1)
                self.assertGreaterEqual(t["replication_factor"], 1)
                self.assertTrue(t["retention_ms"] == -1 or t["retention_ms"] > 0)
                self.assertIn(t["cleanup_policy"], ("delete", "compact", "compact,delete"))
                self.assertTrue(t["key"].strip())
                self.assertTrue(t["events"])
                for conf in (self.doc["defaults"].get("config", {}), t["config"]):
                    for k, v in conf.items():
                        self.assertRegex(k, r"^[a-z]+(\.[a-z]+)+$")
                        self.assertIsInstance(v, str, "config values are strings: " + k)

    def test_every_design_topic_and_event(self):
        listed = {t["name"]: t for t in self.doc["topics"]}
        self.assertEqual(set(listed), set(DESIGN_TOPICS))
        for name, events in DESIGN_TOPICS.items():
            with self.subTest(topic=name):
                for e in events:
                    self.assertIn(e, listed[name]["events"])
        self.assertEqual(listed["sb.contacts.v1"]["partitions"], 12)
        self.assertEqual(listed["sb.presence.v1"]["partitions"], 6)
        self.assertEqual(listed["sb.dlq.v1"]["partitions"], 6)

    def test_topic_events_and_schemas_agree(self):
        listed = [e for t in self.doc["topics"] for e in t["events"]]
        self.assertEqual(len(listed), len(set(listed)), "an event type on two topics")
        self.assertEqual(set(listed) - set(self.by_type), set(), "events without a schema")
        self.assertEqual(set(self.by_type) - set(listed), set(), "schemas on no topic")


class OpenApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(ROOT, "proto", "openapi.yaml"), encoding="utf-8") as f:
            cls.api = yaml.safe_load(f)
        cls.by_type, cls.store = schemas.load(events_dir())

    def operations(self):
        for path, item in self.api["paths"].items():
            for method in ("get", "post", "put", "patch", "delete"):
                if method in item:
                    yield path, method, item[method]

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            cur = self.api
            for part in node["$ref"].lstrip("#/").split("/"):
                cur = cur[part]
            node = cur
        return node

    def test_version_and_paths(self):
        self.assertTrue(str(self.api["openapi"]).startswith("3.1"))
        for p in CONTRACT_PATHS:
            self.assertIn(p, self.api["paths"])
        self.assertIn("get", self.api["paths"]["/v1/channels/wechat"])
        self.assertIn("post", self.api["paths"]["/v1/channels/wechat"])

    def test_valid_openapi_document(self):
        try:
            from openapi_spec_validator import validate
        except ImportError:
            self.skipTest("openapi-spec-validator is not installed")
        validate(copy.deepcopy(self.api))

    def test_error_schema(self):
        err = self.api["components"]["schemas"]["Error"]
        self.assertEqual(err["required"], ["error"])
        inner = err["properties"]["error"]
        self.assertEqual(set(inner["properties"]), {"code", "message", "field"})
        self.assertEqual(set(inner["required"]), {"code", "message"})

    def test_operations(self):
        ids = set()
        for path, method, op in self.operations():
            with self.subTest(op=method.upper() + " " + path):
                self.assertNotIn("$ref", op, "operations cannot be $ref in OpenAPI 3.1")
                self.assertNotIn(op["operationId"], ids)
                ids.add(op["operationId"])
                self.assertIn(op.get("x-status", "planned"), ("planned",))
                if path in ADMIN_PATHS:
                    self.assertNotIn("x-status", op, "the admin endpoints are served")
                for status, resp in op["responses"].items():
                    resp = self.resolve(resp)
                    if status in ERROR_STATUSES and not (path == "/readyz" and status == "503"):
                        schema = resp["content"]["application/json"]["schema"]
                        # A 409 may add the ticket's life-cycle state and allowed moves
                        # (docs/lifecycle.md) to the error object.
                        allowed = [{"$ref": "#/components/schemas/Error"}]
                        if status == "409":
                            allowed.append({"$ref": "#/components/schemas/LifecycleConflict"})
                        self.assertIn(schema, allowed)
                    self.assertTrue(status in ERROR_STATUSES or status.startswith("2"), status)
                    if status in ("429", "503"):
                        self.assertIn("Retry-After", resp.get("headers", {}))
                if path.startswith("/v1/tickets/{id}/") or path.startswith("/v1/agents/"):
                    self.assertEqual(op.get("security"), [{"bearer": []}])
                    if method != "get":  # a read produces nothing
                        self.assertIn(op.get("x-event"), self.by_type)
                    for s in ("401", "403", "404", "503"):
                        self.assertIn(s, op["responses"])
                if path.startswith("/v1/channels/") and method == "post" or path == "/v1/contacts":
                    self.assertEqual(op.get("x-event"), "contact.received")

    def test_examples_follow_their_schemas(self):
        resolver = jsonschema.RefResolver(base_uri="", referrer=self.api)
        n = 0
        for path, method, op in self.operations():
            media = op.get("requestBody", {}).get("content", {}).get("application/json")
            if not media or "example" not in media:
                continue
            with self.subTest(op=method.upper() + " " + path):
                v = jsonschema.Draft202012Validator(media["schema"], resolver=resolver)
                self.assertEqual([e.message for e in v.iter_errors(media["example"])], [])
                n += 1
                # The action's event: request body + ticket_id + actor.
                t = op.get("x-event")
                if t and t != "contact.received":
                    event = copy.deepcopy(self.by_type[t]["examples"][0])
                    payload = copy.deepcopy(media["example"])
                    if t == "agent.presence":
                        payload["agent_id"] = event["payload"]["agent_id"]
                    else:
                        payload["ticket_id"] = event["ticket_id"]
                        payload["actor"] = event["payload"]["actor"]
                    event["payload"] = payload
                    self.assertEqual(schemas.errors(event, self.by_type, self.store), [],
                                     "the request example does not make a valid " + t)
        self.assertGreaterEqual(n, 13)
        for name in ("Error", "ContactAccepted"):
            schema = self.api["components"]["schemas"][name]
            v = jsonschema.Draft202012Validator(schema, resolver=resolver)
            self.assertEqual([e.message for e in v.iter_errors(schema["example"])], [], name)

    def test_contact_body_rules(self):
        resolver = jsonschema.RefResolver(base_uri="", referrer=self.api)
        v = jsonschema.Draft202012Validator(self.api["components"]["schemas"]["Contact"],
                                            resolver=resolver)
        ok = {"channel": "chat", "external_id": "m-1", "customer": {"phone": "13812345678"},
              "body": "你好"}
        self.assertEqual(list(v.iter_errors(ok)), [])
        for bad in ({**ok, "customer": {"customer_no": None, "name": "x"}},
                    {**ok, "channel": "fax"}, {**ok, "body": ""}, {**ok, "extra": 1},
                    {k: ok[k] for k in ("channel", "customer", "body")}):
            self.assertNotEqual(list(v.iter_errors(bad)), [], bad)


class ValidateEventCli(unittest.TestCase):
    def run_cli(self, text):
        return subprocess.run(
            [sys.executable, os.path.join(HERE, "validate_event.py"), events_dir(), "-"],
            input=text, capture_output=True, text=True, timeout=60)

    def test_examples_pass_and_bad_lines_fail(self):
        examples = [load_json(p) for p in
                    sorted(glob.glob(os.path.join(events_dir(), "examples", "*.json")))]
        lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
        r = self.run_cli(lines)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        bad = dict(examples[0])
        bad.pop("event_id")
        unknown = dict(examples[0], type="ticket.exploded")
        r = self.run_cli(lines + json.dumps(bad) + "\n" + "{not json\n" + "[1]\n" +
                         json.dumps(unknown) + "\n\n")
        self.assertEqual(r.returncode, 1)
        out = r.stdout.splitlines()
        self.assertEqual(len(out), 4, r.stdout)
        self.assertIn("event_id", out[0])
        self.assertTrue(out[0].startswith("line %d" % (len(examples) + 1)), out[0])
        self.assertIn("not JSON", out[1])
        self.assertIn("unknown event type", out[3])


def main():
    global ROOT
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", help="repository root (default: $SB_REPO_ROOT or ../.. of this file)")
    args, rest = ap.parse_known_args()
    ROOT = os.path.abspath(args.repo or os.environ.get("SB_REPO_ROOT") or
                           os.path.join(HERE, "..", ".."))
    prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=1)
    r = prog.result
    by_type, _ = schemas.load(events_dir())
    print("contract: %d schemas, %d event types, %d tests run, %d failures, %d errors, %d skipped"
          % (len(glob.glob(os.path.join(events_dir(), "*.schema.json"))), len(by_type),
             r.testsRun, len(r.failures), len(r.errors), len(r.skipped)))
    return 0 if r.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
