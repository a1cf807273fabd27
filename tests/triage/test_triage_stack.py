#!/usr/bin/env python3
"""sb-triage on the real stack: contacts produced to sb.contacts.v1 come out of
sb.tickets.v1 classified, extracted, masked and scored, valid against the schemas;
a burst of similar contacts becomes one incident linking every member; a VIP, an
enterprise VIP, a follow-up that re-scores, a supervisor override, a knowledge-base
suggestion, a legal threat, poison messages to the DLQ with the next good one passing,
a tier change after `sbctl load customers`, and SIGHUP reloads (a good and a broken
rule book)."""
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
CODE = "E%05d" % (int(RUN, 16) % 100000)  # an error code of this run only
BY_TYPE, STORE = schemas.load(os.path.join(harness.ROOT, "proto", "events"))


def uuid7():
    ms = int(time.time() * 1000)
    rnd = uuid.uuid4().int & ((1 << 80) - 1)
    v = (ms << 80) | (0x7 << 76) | ((rnd >> 68) & 0xfff) << 64 | (0b10 << 62) | (rnd & ((1 << 62) - 1))
    h = "%032x" % v
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def now_rfc3339():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def contact(ticket, customer, body, new_ticket=True, subject=None, customer_obj=None, **extra):
    payload = {
        "contact_id": "c-" + uuid.uuid4().hex,
        "channel": extra.pop("channel", "chat"),
        "external_id": "m-" + uuid.uuid4().hex[:12],
        "customer": customer_obj or {"customer_no": customer},
        "body": body,
        "metadata": extra.pop("metadata", {}),
        "customer_key": customer,
        "customer_resolution": "crm",
        "new_ticket": new_ticket,
        "received_at": now_rfc3339(),
    }
    if subject:
        payload["subject"] = subject
    return {"event_id": uuid7(), "type": "contact.received", "occurred_at": now_rfc3339(),
            "producer": "test/0", "schema": 1, "ticket_id": ticket,
            "trace_id": uuid.uuid4().hex, "payload": payload}


def produce(topic, messages):
    """messages: (key, value bytes or dict) pairs, produced in order with kcat."""
    lines = []
    for key, value in messages:
        if isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False)
        lines.append("%s\t%s" % (key, value))
    subprocess.run(["kcat", "-b", harness.BROKERS, "-P", "-t", topic, "-K", "\t", "-z", "none"],
                   input=("\n".join(lines) + "\n").encode(), check=True, timeout=30)


def ticket(n):
    return "T-tri-%s-%s" % (RUN, n)


def tickets_of(pred, count=1, timeout=40):
    return harness.wait_events("sb.tickets.v1", pred, count, timeout)


def for_ticket(tid, type_=None):
    return lambda e: e.get("ticket_id") == tid and (type_ is None or e["type"] == type_)


class TriageStackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sb-triage-test-")
        cls.customers = os.path.join(cls.tmp, "customers.csv")
        cls.write_customers(tier_change_spend=500)
        harness.sbctl("load", "customers", cls.customers)
        with open(os.path.join(harness.ROOT, "deploy", "config", "triage-rules.json"),
                  encoding="utf-8") as f:
            cls.rules = json.load(f)
        cls.rules_file = os.path.join(cls.tmp, "rules.json")
        with open(cls.rules_file, "w", encoding="utf-8") as f:
            json.dump(cls.rules, f, ensure_ascii=False)
        cls.triage = harness.StageService("sb-triage", RUN, SB_TRIAGE_RULES_FILE=cls.rules_file)

    @classmethod
    def tearDownClass(cls):
        rc = cls.triage.stop()
        assert rc == 0, "sb-triage exited %s on SIGTERM" % rc

    @classmethod
    def write_customers(cls, tier_change_spend):
        with open(cls.customers, "w", encoding="utf-8") as f:
            f.write("customer_no,name,phone,email,wechat_openid,social_id,annual_spend,"
                    "is_partner,is_enterprise\n")
            f.write("TR%s-REG,张三,,,,,5000,false,false\n" % RUN)
            f.write("TR%s-VIP,李四,,,,,25000,false,false\n" % RUN)
            f.write("TR%s-ENT,王五,,,,,80000,false,true\n" % RUN)
            f.write("TR%s-CHG,赵六,,,,,%d,false,false\n" % (RUN, tier_change_spend))

    def assertValid(self, ev):
        errs = schemas.errors({k: v for k, v in ev.items() if k != "_key"}, BY_TYPE, STORE)
        self.assertEqual(errs, [], json.dumps(ev, ensure_ascii=False))

    def test_new_ticket_classified_extracted_masked_scored(self):
        tid = ticket("pay")
        body = ("昨天下午2点开始付款一直失败，提示错误 " + CODE + "，订单号 202405201234，"
                "金额 1299 元。我的手机 13812345678，邮箱 zhang.san@example.com，请尽快回电。")
        produce("sb.contacts.v1", [("TR%s-REG" % RUN, contact(
            tid, "TR%s-REG" % RUN, body, subject="支付失败",
            customer_obj={"customer_no": "TR%s-REG" % RUN, "name": "张三",
                          "phone": "13812345678"}))])
        ev = tickets_of(for_ticket(tid, "ticket.triaged"))[0]
        self.assertValid(ev)
        p = ev["payload"]
        self.assertEqual(ev["_key"], tid)
        self.assertEqual(p["domain"], "order_payment")
        self.assertEqual(p["urgency"], 3)
        self.assertEqual(p["impact"], 2)  # one customer, amount >= 1000
        self.assertEqual(p["tier"], 2)  # annual spend 5000: regular
        self.assertEqual(p["customer_tier"], "regular")
        self.assertEqual((p["score"], p["band"]), (7, "P2"))
        self.assertEqual(p["label"], "in-sale / order & payment / urgent")
        self.assertIn("payment.fail.zh", [r["rule"] for r in p["rules_fired"]])
        self.assertNotIn("13812345678", json.dumps(p, ensure_ascii=False))
        self.assertNotIn("zhang.san@", json.dumps(p, ensure_ascii=False))
        self.assertIn("138****5678", p["masked_body"])
        self.assertIn("138****5678", p["fivew1h"]["who"])
        self.assertTrue(p["fivew1h"]["who"].endswith("(regular)"))
        f = p["fivew1h"]
        self.assertEqual(f["order_no"], "202405201234")
        self.assertEqual((f["amount"], f["currency"]), (1299, "CNY"))
        self.assertEqual(f["what"], "支付失败")
        self.assertIn("when", f)
        self.assertIsNone(p["incident_id"])
        self.assertEqual(p["sla_policy"], "P2")

    def test_vip_and_enterprise_vip(self):
        vip, ent = ticket("vip"), ticket("ent")
        text = "How do I change the language of the app?"
        produce("sb.contacts.v1", [("TR%s-VIP" % RUN, contact(vip, "TR%s-VIP" % RUN, text)),
                                   ("TR%s-ENT" % RUN, contact(ent, "TR%s-ENT" % RUN, text))])
        v = tickets_of(for_ticket(vip, "ticket.triaged"))[0]["payload"]
        e = tickets_of(for_ticket(ent, "ticket.triaged"))[0]["payload"]
        self.assertEqual((v["tier"], v["customer_tier"], v["impact"]), (3, "vip", 1))
        self.assertEqual((e["tier"], e["customer_tier"], e["impact"]), (3, "vip", 3))
        self.assertEqual(e["score"], e["urgency"] + 3 + 3)

    def test_follow_up_rescores(self):
        tid, cust = ticket("follow"), "TR%s-REG" % RUN
        produce("sb.contacts.v1", [(cust, contact(tid, cust, "请问你们的营业时间是几点？"))])
        first = tickets_of(for_ticket(tid, "ticket.triaged"))[0]["payload"]
        self.assertEqual(first["urgency"], 1)
        produce("sb.contacts.v1", [(cust, contact(
            tid, cust, "现在完全无法登录了，报错 " + CODE + "，今天的订单都提交不了，紧急！",
            new_ticket=False))])
        ev = tickets_of(for_ticket(tid, "ticket.rescored"))[0]
        self.assertValid(ev)
        p = ev["payload"]
        self.assertEqual(p["reason"], "follow_up_contact")
        self.assertEqual((p["previous_score"], p["previous_band"]),
                         (first["score"], first["band"]))
        self.assertEqual(p["urgency"], 3)
        self.assertEqual(p["score"], first["score"] + 2)

    def test_burst_of_similar_contacts_is_one_incident(self):
        code = "E%06d" % (int(RUN, 16) % 1000000)
        ids = [ticket("inc%02d" % i) for i in range(12)]
        msgs = []
        for i, tid in enumerate(ids):
            cust = "TRINC%s-%02d" % (RUN, i)
            msgs.append((cust, contact(tid, cust, "App 一打开就闪退，报错 %s，用不了" % code)))
        produce("sb.contacts.v1", msgs)
        incidents = harness.wait_events(
            "sb.tickets.v1", lambda e: e["type"] == "incident.detected"
            and code.lower() in e["payload"]["signature"], 1, 40)
        self.assertEqual(len(incidents), 1, incidents)
        inc = incidents[0]
        self.assertValid(inc)
        iid = inc["payload"]["incident_id"]
        self.assertGreaterEqual(inc["payload"]["member_count"], 10)
        self.assertEqual(inc["payload"]["domain"], "product_function")
        time.sleep(2)
        events = harness.consume("sb.tickets.v1")
        for tid in ids:
            mine = [e for e in events if e.get("ticket_id") == tid
                    and e["type"] in ("ticket.triaged", "ticket.rescored")]
            for e in mine:
                self.assertValid(e)
            linked = [e for e in mine if e["payload"].get("incident_id") == iid]
            self.assertTrue(linked, "%s not linked to %s: %s" % (tid, iid, mine))
            self.assertEqual(linked[-1]["payload"]["impact"], 3)

    def test_supervisor_override(self):
        tid, cust = ticket("ovr"), "TR%s-REG" % RUN
        produce("sb.contacts.v1", [(cust, contact(tid, cust, "想了解一下会员积分规则"))])
        first = tickets_of(for_ticket(tid, "ticket.triaged"))[0]["payload"]
        override = {"event_id": uuid7(), "type": "ticket.priority_overridden",
                    "occurred_at": now_rfc3339(), "producer": "sb-ingest/test", "schema": 1,
                    "ticket_id": tid, "trace_id": uuid.uuid4().hex,
                    "payload": {"ticket_id": tid, "band": "P1",
                                "actor": {"role": "supervisor", "agent_id": "a-sup-1"},
                                "reason": "customer is a journalist"}}
        produce("sb.activity.v1", [(tid, override)])
        ev = tickets_of(for_ticket(tid, "ticket.rescored"))[0]
        self.assertValid(ev)
        p = ev["payload"]
        self.assertEqual(p["reason"], "supervisor_override")
        self.assertEqual(p["band"], "P1")
        self.assertEqual(p["previous_band"], first["band"])
        self.assertEqual(p["overridden_by"], {"role": "supervisor", "agent_id": "a-sup-1"})
        self.assertEqual(p["detail"], "customer is a journalist")

    def test_knowledge_base_and_legal_flags(self):
        kb, legal = ticket("kb"), ticket("legal")
        cust = "TR%s-REG" % RUN
        produce("sb.contacts.v1", [
            (cust, contact(kb, cust, "你好，请问退货政策是怎样的？")),
            (cust, contact(legal, cust, "你们再不处理我就去消协投诉，还要找媒体曝光！"))])
        k = tickets_of(for_ticket(kb, "ticket.triaged"))[0]
        self.assertValid(k)
        self.assertTrue(k["payload"]["flags"]["self_service"])
        self.assertEqual(k["payload"]["suggestion"]["article_id"], "return-policy-zh")
        pub = ticket("public")
        produce("sb.contacts.v1", [(cust, contact(pub, cust, "rubbish service, never again",
                                                   channel="social",
                                                   metadata={"public_negative": True}))])
        pn = tickets_of(for_ticket(pub, "ticket.triaged"))[0]["payload"]
        self.assertTrue(pn["flags"]["public_negative"])
        self.assertIn("public_negative", pn["sla_clocks"])
        lg = tickets_of(for_ticket(legal, "ticket.triaged"))[0]
        self.assertValid(lg)
        self.assertTrue(lg["payload"]["flags"]["legal_pr"])
        self.assertEqual(lg["payload"]["domain"], "service_complaint")
        self.assertEqual(lg["payload"]["stage"], "complaint")

    def test_poison_goes_to_dlq_and_next_passes(self):
        good = ticket("after-poison")
        bad = contact(ticket("nobody"), "TR%s-REG" % RUN, "x")
        del bad["payload"]["body"]
        marker = "not json %s" % RUN
        produce("sb.contacts.v1", [("k-" + RUN, marker), ("k-" + RUN, bad),
                                   ("TR%s-REG" % RUN, contact(good, "TR%s-REG" % RUN,
                                                              "物流一直没更新，包裹到哪了"))])
        ev = tickets_of(for_ticket(good, "ticket.triaged"))[0]
        self.assertEqual(ev["payload"]["domain"], "logistics_delivery")
        dlq = harness.wait_events(
            "sb.dlq.v1", lambda e: e["payload"].get("stage") == "sb-triage" and (
                marker in e["payload"].get("raw_text", "")
                or bad["event_id"] in e["payload"].get("raw_text", "")), 2, 30)
        reasons = sorted(e["payload"]["reason"] for e in dlq)
        self.assertEqual(reasons, ["invalid_payload", "not_json"], dlq)
        detail = [e["payload"]["detail"] for e in dlq if e["payload"]["reason"] == "invalid_payload"]
        self.assertIn("body", detail[0])
        self.assertIsNone(self.triage.proc.poll())

    def test_tier_follows_sbctl_load_customers(self):
        cust = "TR%s-CHG" % RUN
        a, b = ticket("chg-a"), ticket("chg-b")
        produce("sb.contacts.v1", [(cust, contact(a, cust, "想咨询一下会员权益"))])
        self.assertEqual(tickets_of(for_ticket(a, "ticket.triaged"))[0]["payload"]["tier"], 1)
        self.write_customers(tier_change_spend=30000)
        harness.sbctl("load", "customers", self.customers)
        produce("sb.contacts.v1", [(cust, contact(b, cust, "想咨询一下会员权益"))])
        self.assertEqual(tickets_of(for_ticket(b, "ticket.triaged"))[0]["payload"]["tier"], 3)

    def test_sighup_reload(self):
        word = "zq%sxk" % RUN
        rules = json.loads(json.dumps(self.rules))
        rules["rules"].append({"id": "test.reload", "terms": [word],
                               "domain": "logistics_delivery", "weight": 5})
        with open(self.rules_file, "w", encoding="utf-8") as f:
            json.dump(rules, f, ensure_ascii=False)
        self.triage.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 20
        while "rules reloaded" not in self.triage.logs() and time.time() < deadline:
            time.sleep(0.2)
        a = ticket("reload-a")
        produce("sb.contacts.v1", [("TR%s-REG" % RUN, contact(a, "TR%s-REG" % RUN,
                                                               "my order says " + word))])
        p = tickets_of(for_ticket(a, "ticket.triaged"))[0]["payload"]
        self.assertIn("test.reload", [r["rule"] for r in p["rules_fired"]])
        self.assertEqual(p["domain"], "logistics_delivery")
        # A broken rule book is refused; the previous one stays in force.
        with open(self.rules_file, "w", encoding="utf-8") as f:
            f.write('{"version": 1, "rules": [{"id": "bad", "regex": ["(unclosed"]}]}')
        self.triage.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 20
        while "reload refused" not in self.triage.logs() and time.time() < deadline:
            time.sleep(0.2)
        self.assertIn("reload refused", self.triage.logs())
        b = ticket("reload-b")
        produce("sb.contacts.v1", [("TR%s-REG" % RUN, contact(b, "TR%s-REG" % RUN,
                                                               "again " + word))])
        p = tickets_of(for_ticket(b, "ticket.triaged"))[0]["payload"]
        self.assertIn("test.reload", [r["rule"] for r in p["rules_fired"]])
        with open(self.rules_file, "w", encoding="utf-8") as f:
            json.dump(self.rules, f, ensure_ascii=False)


if __name__ == "__main__":
    if not harness.kcat_available():
        print("kcat is not installed (deploy/setup.sh installs it)")
        sys.exit(1)
    unittest.main(verbosity=2)
