#!/usr/bin/env python3
"""Integration tests of sb-ingest against the real local stack (Kafka, PostgreSQL,
Redis): every channel's accepted contact as read back from sb.contacts.v1 (schema-valid,
identities normalized, trace id carried), every refusal with its exact status and nothing
produced, idempotent replays, and agent actions with their authorization rules."""
import json
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "contract"))
import harness as h  # noqa: E402
import schemas  # noqa: E402

RUN = uuid.uuid4().hex[:10]
API, CHAT, SOCIAL, PHONE, EMAIL = ("dev-secret-" + c for c in ("api", "chat", "social", "phone",
                                                               "email"))


def ext(name):
    return "%s-%s" % (RUN, name)


class IngestApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.by_type, cls.store = schemas.load(os.path.join(h.ROOT, "proto", "events"))
        # The roster the authorization rules are checked against.
        h.sbctl("load", "agents", os.path.join(h.ROOT, "deploy", "config", "agents.sample.json"))
        cls.ingest = h.Ingest()

    @classmethod
    def tearDownClass(cls):
        logs = cls.ingest.logs()
        rc = cls.ingest.stop()
        assert rc == 0, "sb-ingest exited %s on SIGTERM" % rc
        # PII canary: the phones, emails and names sent by these tests never reach a log.
        for canary in ("13812345678", "wang.fang@example.cn", "Wang.Fang", "王芳", "zhang.san",
                       "13900001111"):
            assert canary not in logs, "personal data %r in the service log" % canary

    def contact(self, name, **kw):
        c = {"channel": "chat", "external_id": ext(name),
             "customer": {"customer_no": "C1001", "phone": "+86 138-1234-5678",
                          "email": "Wang.Fang@Example.CN", "wechat_openid": None, "name": "王芳"},
             "subject": "支付失败", "body": "我昨天下午2点付款失败，订单号 202405201234",
             "sent_at": "2024-05-20T14:00:00+08:00", "metadata": {"page": "checkout"}}
        c.update(kw)
        return c

    def events_for(self, topic, external_id, count=1, timeout=20):
        return h.wait_events(topic, lambda e: e.get("payload", {}).get("external_id") == external_id,
                             count, timeout)

    def assert_valid(self, event):
        event = {k: v for k, v in event.items() if k != "_key"}
        self.assertEqual(schemas.errors(event, self.by_type, self.store), [], event)

    def assert_refused(self, status, body, want_status, field=None):
        self.assertEqual(status, want_status, body)
        self.assertIn("error", body)
        self.assertTrue(body["error"]["code"] and body["error"]["message"])
        if field is not None:
            self.assertEqual(body["error"].get("field"), field, body)

    # --- accepted contacts -------------------------------------------------------

    def test_generic_contact_round_trip(self):
        trace = uuid.uuid4().hex
        st, body, _ = h.post_signed(self.ingest, "/v1/contacts", self.contact("generic"), API,
                                    headers={"traceparent": "00-%s-00f067aa0ba902b7-01" % trace})
        self.assertEqual(st, 202, body)
        self.assertTrue(body["ticket_id"].startswith("T-"))
        self.assertTrue(body["contact_id"].startswith("c-"))
        self.assertIn("queue", body)
        [ev] = self.events_for("sb.contacts.v1", ext("generic"))
        self.assert_valid(ev)
        p = ev["payload"]
        self.assertEqual(ev["type"], "contact.received")
        self.assertEqual(ev["ticket_id"], body["ticket_id"])
        self.assertEqual(ev["trace_id"], trace)
        self.assertEqual(p["contact_id"], body["contact_id"])
        self.assertEqual(p["customer"]["phone"], "13812345678")
        self.assertEqual(p["customer"]["email"], "wang.fang@example.cn")
        self.assertEqual(p["customer"]["customer_no"], "C1001")
        self.assertEqual(p["sent_at"], "2024-05-20T06:00:00.000Z")
        self.assertEqual(p["body"], "我昨天下午2点付款失败，订单号 202405201234")
        self.assertEqual(ev["_key"], "C1001")  # keyed by customer: per-customer order

    def test_same_customer_joins_open_ticket(self):
        st1, b1, _ = h.post_signed(self.ingest, "/v1/contacts",
                                   self.contact("join1", customer={"email": "join-%s@x.cn" % RUN}),
                                   API)
        st2, b2, _ = h.post_signed(self.ingest, "/v1/channels/chat",
                                   {"session_id": "s1", "message_id": ext("join2"),
                                    "visitor": {"email": "JOIN-%s@x.cn" % RUN}, "text": "还在吗"},
                                   CHAT)
        self.assertEqual((st1, st2), (202, 202), (b1, b2))
        self.assertEqual(b1["ticket_id"], b2["ticket_id"])
        [ev] = self.events_for("sb.contacts.v1", ext("join2"))
        self.assertFalse(ev["payload"]["new_ticket"])

    def test_crm_load_invalidates_identity_cache(self):
        phone = "139%08d" % (int(RUN[:6], 16) % 100000000)
        st, b, _ = h.post_signed(self.ingest, "/v1/contacts",
                                 self.contact("crm1", customer={"phone": phone}), API)
        self.assertEqual(st, 202, b)
        [ev] = self.events_for("sb.contacts.v1", ext("crm1"))
        self.assertTrue(ev["payload"]["customer_key"].startswith("P-"))  # provisional, cached
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            f.write("customer_no,name,phone\nCRM-%s,Known Customer,%s\n" % (RUN, phone))
        try:
            h.sbctl("load", "customers", f.name)
        finally:
            os.unlink(f.name)
        st, b, _ = h.post_signed(self.ingest, "/v1/contacts",
                                 self.contact("crm2", customer={"phone": phone}), API)
        self.assertEqual(st, 202, b)
        [ev] = self.events_for("sb.contacts.v1", ext("crm2"))
        self.assertEqual(ev["payload"]["customer_key"], "CRM-" + RUN)
        self.assertEqual(ev["payload"]["customer_resolution"], "crm")

    def test_idempotent_replay(self):
        c = self.contact("replay")
        st1, b1, _ = h.post_signed(self.ingest, "/v1/contacts", c, API)
        st2, b2, _ = h.post_signed(self.ingest, "/v1/contacts", c, API)
        self.assertEqual((st1, st2), (202, 202))
        self.assertEqual(b1, b2)
        time.sleep(1.0)
        self.assertEqual(len(self.events_for("sb.contacts.v1", ext("replay"), count=2, timeout=3)), 1)

    def test_idempotency_key_header(self):
        k = "key-" + RUN
        st1, b1, _ = h.post_signed(self.ingest, "/v1/contacts", self.contact("idem-a"), API,
                                   headers={"Idempotency-Key": k})
        st2, b2, _ = h.post_signed(self.ingest, "/v1/contacts", self.contact("idem-b"), API,
                                   headers={"Idempotency-Key": k})
        self.assertEqual((st1, st2), (202, 202))
        self.assertEqual(b1, b2)
        time.sleep(1.0)
        self.assertEqual(self.events_for("sb.contacts.v1", ext("idem-b"), timeout=2), [])

    def test_chat_social_phone(self):
        st, b, _ = h.post_signed(self.ingest, "/v1/channels/social",
                                 {"platform": "weibo", "post_id": ext("post"), "comment_id": "c9",
                                  "author": {"social_id": "wb-" + RUN, "name": "小李"},
                                  "text": "客服太差了，三天没人回复", "public": True,
                                  "sentiment": "negative"}, SOCIAL)
        self.assertEqual(st, 202, b)
        st, b, _ = h.post_signed(self.ingest, "/v1/channels/phone",
                                 {"call_id": ext("call"), "event": "abandoned",
                                  "caller": "13900001111", "wait_seconds": 95}, PHONE)
        self.assertEqual(st, 202, b)
        st, b, _ = h.post_signed(self.ingest, "/v1/channels/phone",
                                 {"call_id": ext("vm"), "event": "voicemail",
                                  "caller": "13900002222", "transcript": "请回电，退款的事"}, PHONE)
        self.assertEqual(st, 202, b)
        [social] = self.events_for("sb.contacts.v1", "weibo:%s:c9" % ext("post"))
        self.assert_valid(social)
        self.assertTrue(social["payload"]["metadata"]["public_negative"])
        self.assertEqual(social["payload"]["customer"]["social_id"], "wb-" + RUN)
        [call] = self.events_for("sb.contacts.v1", ext("call") + ":abandoned")
        self.assert_valid(call)
        self.assertTrue(call["payload"]["metadata"]["callback_requested"])
        self.assertEqual(call["payload"]["channel"], "phone")
        [vm] = self.events_for("sb.contacts.v1", ext("vm") + ":voicemail")
        self.assertEqual(vm["payload"]["body"], "请回电，退款的事")

    def test_email_channel(self):
        raw = ("From: =?UTF-8?B?5byg5LiJ?= <Zhang.San@Example.cn>\r\nTo: kf@shop.cn\r\n"
               "Subject: =?GB2312?B?zcu/7szhvbs=?=\r\nMessage-ID: <%s@mail.example.cn>\r\n"
               "In-Reply-To: <prev-%s@shop.cn>\r\nDate: Mon, 20 May 2024 14:00:00 +0800\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=GBK\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n" % (RUN, RUN)).encode() + \
            "请问退款什么时候到账？\r\n\r\n在 2024年5月19日 10:00，客服 写道：\r\n> 您好\r\n".encode("gbk")
        st, b, _ = h.post_signed(self.ingest, "/v1/channels/email", raw, EMAIL, "message/rfc822")
        self.assertEqual(st, 202, b)
        [ev] = self.events_for("sb.contacts.v1", "%s@mail.example.cn" % RUN)
        self.assert_valid(ev)
        p = ev["payload"]
        self.assertEqual(p["subject"], "退款提交")
        self.assertEqual(p["body"], "请问退款什么时候到账？")
        self.assertEqual(p["customer"]["email"], "zhang.san@example.cn")
        self.assertEqual(p["customer"]["name"], "张三")
        self.assertEqual(p["in_reply_to"], "prev-%s@shop.cn" % RUN)
        st, b, _ = h.post_signed(self.ingest, "/v1/channels/email", raw, EMAIL, "text/plain")
        self.assert_refused(st, b, 415, "Content-Type")

    def test_email_attachment_only_is_kept(self):
        raw = ("From: att-%s@example.cn\r\nTo: kf@shop.cn\r\nSubject: receipt\r\n"
               "Message-ID: <att-%s@example.cn>\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
               "Content-Type: image/png\r\nContent-Disposition: attachment; filename=r.png\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--XX--\r\n"
               % (RUN, RUN)).encode()
        st, b, _ = h.post_signed(self.ingest, "/v1/channels/email", raw, EMAIL, "message/rfc822")
        self.assertEqual(st, 202, b)
        [ev] = self.events_for("sb.contacts.v1", "att-%s@example.cn" % RUN)
        self.assert_valid(ev)
        self.assertEqual(ev["payload"]["body"], "[1 attachment]")
        self.assertEqual(ev["payload"]["attachments"][0]["name"], "r.png")

    def test_email_reply_joins_thread(self):
        first = ("From: a-%s@example.cn\r\nTo: kf@shop.cn\r\nSubject: q\r\n"
                 "Message-ID: <t1-%s@example.cn>\r\n\r\nfirst question\r\n" % (RUN, RUN)).encode()
        # The reply comes from another address: only References can thread it.
        reply = ("From: b-%s@example.cn\r\nTo: kf@shop.cn\r\nSubject: Re: q\r\n"
                 "Message-ID: <t2-%s@example.cn>\r\nReferences: <t1-%s@example.cn>\r\n\r\n"
                 "more details\r\n" % (RUN, RUN, RUN)).encode()
        st1, b1, _ = h.post_signed(self.ingest, "/v1/channels/email", first, EMAIL, "message/rfc822")
        st2, b2, _ = h.post_signed(self.ingest, "/v1/channels/email", reply, EMAIL, "message/rfc822")
        self.assertEqual((st1, st2), (202, 202), (b1, b2))
        self.assertEqual(b1["ticket_id"], b2["ticket_id"])

    def test_wechat(self):
        import hashlib
        token, ts, nonce = "dev-wechat-token", str(int(time.time())), "n" + RUN
        sig = hashlib.sha1("".join(sorted([token, ts, nonce])).encode()).hexdigest()
        q = "/v1/channels/wechat?signature=%s&timestamp=%s&nonce=%s" % (sig, ts, nonce)
        st, body, _ = h.request(self.ingest.url(q + "&echostr=hello123"))
        self.assertEqual((st, body), (200, "hello123"))
        xml = ("<xml><ToUserName><![CDATA[gh_shop]]></ToUserName><FromUserName><![CDATA[o-%s]]>"
               "</FromUserName><CreateTime>1716184800</CreateTime><MsgType><![CDATA[text]]>"
               "</MsgType><Content><![CDATA[我的快递到哪了]]></Content><MsgId>%s</MsgId></xml>"
               % (RUN, "77" + str(int(time.time())))).encode()
        st, body, _ = h.request(self.ingest.url(q), xml, {"Content-Type": "text/xml"})
        self.assertEqual((st, body), (200, "success"))  # what WeChat expects
        st, body, _ = h.request(self.ingest.url(q), xml, {"Content-Type": "text/xml"})
        self.assertEqual((st, body), (200, "success"))  # WeChat's retry: same answer, no event
        [ev] = h.wait_events("sb.contacts.v1",
                             lambda e: e["payload"]["customer"].get("wechat_openid") == "o-" + RUN,
                             count=2, timeout=4)
        self.assert_valid(ev)
        self.assertEqual(ev["payload"]["body"], "我的快递到哪了")
        st, body, _ = h.request(self.ingest.url(q.replace(sig, "0" * 40)), xml,
                                {"Content-Type": "text/xml"})
        self.assert_refused(st, body, 401)

    # --- refusals: exact status, nothing produced ----------------------------------

    def test_bad_inputs(self):
        good = json.dumps(self.contact("bad-good")).encode()
        cases = [
            ("malformed", b'{"channel": "chat",', "application/json", 400, "body"),
            ("truncated", good[: len(good) // 2], "application/json", 400, "body"),
            ("content-type", good, "text/plain", 415, "Content-Type"),
            ("deep", b"[" * 10000 + b"]" * 10000, "application/json", 400, "body"),
            ("utf8", json.dumps(self.contact("bad-utf8"), ensure_ascii=False).encode().replace(
                "王芳".encode(), b"\xff\xfe"), "application/json", 400, "body"),
            ("missing-body", json.dumps({k: v for k, v in self.contact("bad-missing").items()
                                         if k != "body"}).encode(), "application/json", 400, "body"),
            ("no-identity", json.dumps(self.contact("bad-noid", customer={"name": "x"})).encode(),
             "application/json", 400, "customer"),
            ("bad-channel", json.dumps(self.contact("bad-ch", channel="fax")).encode(),
             "application/json", 400, "channel"),
            ("unknown-field", json.dumps(self.contact("bad-unk", colour="red")).encode(),
             "application/json", 400, "colour"),
        ]
        for name, body, ctype, status, field in cases:
            with self.subTest(case=name):
                st, b, _ = h.request(self.ingest.url("/v1/contacts"), body,
                                     {"Content-Type": ctype,
                                      "X-SB-Signature": h.sign(API, body)})
                self.assert_refused(st, b, status, field)
        big = json.dumps(self.contact("bad-big", body="x" * (2 * 1024 * 1024))).encode()
        st, b = h.request_oversize(self.ingest.url("/v1/contacts"), big,
                                   {"Content-Type": "application/json",
                                    "X-SB-Signature": h.sign(API, big)})
        self.assert_refused(st, b, 413)
        c = self.contact("bad-sig")
        raw = json.dumps(c).encode()
        for name, sig, status in [("missing", None, 401), ("wrong", h.sign("other", raw), 401),
                                  ("stale", h.sign(API, raw, int(time.time()) - 3600), 401),
                                  ("malformed", "v1=abc", 401)]:
            with self.subTest(signature=name):
                hdrs = {"Content-Type": "application/json"}
                if sig:
                    hdrs["X-SB-Signature"] = sig
                st, b, _ = h.request(self.ingest.url("/v1/contacts"), raw, hdrs)
                self.assert_refused(st, b, status, "X-SB-Signature")
        time.sleep(1.0)
        leaked = [e for e in h.consume("sb.contacts.v1")
                  if e["payload"]["external_id"].startswith(RUN + "-bad")]
        self.assertEqual(leaked, [])

    # --- agent actions -----------------------------------------------------------

    def test_agent_actions_authorization(self):
        tid = "T-test-" + RUN
        h.psql("INSERT INTO tickets (id, status, owner_agent_id, team_id) VALUES "
               "('%s', 'in_progress', 'a-aftersale-2', 'aftersale')" % tid)
        owner = h.sbctl("token", "create", "--role", "agent", "--agent", "a-aftersale-2")
        other = h.sbctl("token", "create", "--role", "agent", "--agent", "a-presale-2")
        lead = h.sbctl("token", "create", "--role", "lead", "--agent", "a-aftersale-1")
        foreign_lead = h.sbctl("token", "create", "--role", "lead", "--agent", "a-presale-1")
        sup = h.sbctl("token", "create", "--role", "supervisor", "--agent", "a-aftersale-sup")

        def act(token, action, body, path=None):
            raw = json.dumps(body, ensure_ascii=False).encode()
            hdrs = {"Content-Type": "application/json"}
            if token:
                hdrs["Authorization"] = "Bearer " + token
            return h.request(self.ingest.url(path or "/v1/tickets/%s/%s" % (tid, action)), raw, hdrs)

        st, b, _ = act(owner, "replies", {"body": "您好，已为您处理", "public": True})
        self.assertEqual(st, 202, b)
        [ev] = h.wait_events("sb.activity.v1", lambda e: e.get("event_id") == b["event_id"])
        self.assert_valid(ev)
        self.assertEqual(ev["type"], "agent.replied")
        self.assertEqual(ev["ticket_id"], tid)
        self.assertEqual(ev["_key"], tid)
        self.assertEqual(ev["payload"]["actor"], {"role": "agent", "agent_id": "a-aftersale-2"})
        self.assert_refused(*act(other, "replies", {"body": "x"})[:2], 403)
        self.assert_refused(*act(None, "replies", {"body": "x"})[:2], 401, "Authorization")
        self.assert_refused(*act("sbt_" + "0" * 64, "replies", {"body": "x"})[:2], 401)
        self.assert_refused(*act(owner, "review", {"outcome": "approved"})[:2], 403)
        # Review is of a ticket in review only (docs/lifecycle.md): this one is in progress.
        st, b, _ = act(lead, "review", {"outcome": "sent_back", "reason": "金额未确认"})
        self.assertEqual(st, 409, b)
        self.assertIn("status:resolved", b["error"]["allowed"])
        self.assert_refused(*act(foreign_lead, "review", {"outcome": "approved"})[:2], 403)
        self.assert_refused(*act(lead, "review", {"outcome": "sent_back"})[:2], 400, "reason")
        self.assert_refused(*act(owner, "priority", {"band": "P1", "reason": "x"})[:2], 403)
        st, b, _ = act(sup, "priority", {"band": "P1", "reason": "媒体曝光威胁"})
        self.assertEqual(st, 202, b)
        [ev] = h.wait_events("sb.activity.v1", lambda e: e.get("event_id") == b["event_id"])
        self.assert_valid(ev)
        self.assertEqual(ev["payload"]["actor"]["agent_id"], "a-aftersale-sup")
        self.assert_refused(*act(owner, "transfer", {"to_team": "presale", "reason": "x"})[:2],
                            400, "customer_message")
        self.assertEqual(act(owner, "notes", {"text": "银行已确认", "kind": "progress",
                                              "percent": 60})[0], 202)
        self.assert_refused(*act(owner, "csat", {"score": 6})[:2], 400, "score")
        self.assert_refused(*act(owner, "replies", {"body": "x", "colour": "red"})[:2], 400,
                            "colour")
        st, b, _ = h.request(self.ingest.url("/v1/tickets/%s/claim" % tid), b"",
                             {"Authorization": "Bearer " + owner})
        # Claim needs no body; a ticket in progress is claimed already.
        self.assertEqual(st, 409, b)
        self.assertEqual(b["error"]["state"], "in_progress")
        self.assert_refused(*act(owner, "replies", {"body": "x"},
                                 "/v1/tickets/T-none-%s/replies" % RUN)[:2], 404)
        st, b, _ = act(owner, None, {"status": "available", "capacities": {"chat": 3}},
                       "/v1/agents/a-aftersale-2/presence")
        self.assertEqual(st, 202, b)
        [ev] = h.wait_events("sb.presence.v1", lambda e: e.get("event_id") == b["event_id"])
        self.assert_valid(ev)
        self.assertEqual(ev["_key"], "a-aftersale-2")
        self.assert_refused(*act(owner, None, {"status": "available"},
                                 "/v1/agents/a-presale-2/presence")[:2], 403)
        self.assert_refused(*act(owner, None, {"status": "available", "capacities": {"fax": 1}},
                                 "/v1/agents/a-aftersale-2/presence")[:2], 400, "capacities")

    def test_admin_endpoints(self):
        st, _, _ = h.post_signed(self.ingest, "/v1/contacts", self.contact("metrics"), API)
        self.assertEqual(st, 202)
        h.post_signed(self.ingest, "/v1/contacts", self.contact("metrics"), "wrong-secret")
        st, body, _ = h.request("http://127.0.0.1:%d/healthz" % self.ingest.admin)
        self.assertEqual(st, 200)
        st, text, hdrs = h.request("http://127.0.0.1:%d/metrics" % self.ingest.admin)
        self.assertEqual(st, 200)
        self.assertIn("sb_ingest_accepted_total", text)
        self.assertIn('sb_ingest_rejected_total{channel="api",reason="unauthorized"}', text)
        self.assertIn("sb_ingest_produce_seconds_bucket", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
