#!/usr/bin/env python3
"""Fault test: Redis hangs (SIGSTOP) while sb-ingest runs. Intake fails open — contacts
are still accepted (202, durable in Kafka) within bounded time, counted as accepted
without deduplication — and when Redis resumes, deduplication works again by itself."""
import os
import signal
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

RUN = uuid.uuid4().hex[:10]
API = "dev-secret-api"
REDIS_PID = os.path.join(h.ROOT, ".sb-local", "redis", "redis.pid")


def contact(name):
    return {"channel": "web", "external_id": "%s-%s" % (RUN, name),
            "customer": {"email": "redis-outage-%s@example.cn" % RUN}, "body": "退款进度？"}


class RedisOutage(unittest.TestCase):
    def test_hung_redis_fails_open(self):
        ingest = h.Ingest()
        with open(REDIS_PID) as f:
            pid = int(f.read().strip())
        try:
            st, b, _ = h.post_signed(ingest, "/v1/contacts", contact("before"), API)
            self.assertEqual(st, 202, b)
            os.kill(pid, signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                st, b, _ = h.post_signed(ingest, "/v1/contacts", contact("during"), API)
                took = time.monotonic() - t0
                self.assertEqual(st, 202, b)
                self.assertLess(took, 5.0, "a hung Redis must cost bounded time")
                st, text, _ = h.request("http://127.0.0.1:%d/metrics" % ingest.admin)
                self.assertRegex(text, r"sb_ingest_redis_unavailable_total [1-9]")
            finally:
                os.kill(pid, signal.SIGCONT)
            # Redis is back: the same message id is deduplicated again.
            deadline = time.time() + 30
            replay = None
            while time.time() < deadline:
                st1, b1, _ = h.post_signed(ingest, "/v1/contacts", contact("after"), API)
                st2, b2, _ = h.post_signed(ingest, "/v1/contacts", contact("after"), API)
                if st1 == st2 == 202 and b1 == b2:
                    replay = b2
                    break
                time.sleep(1)
            self.assertIsNotNone(replay, "deduplication did not come back after Redis resumed")
            events = h.wait_events("sb.contacts.v1",
                                   lambda e: e["payload"]["external_id"].startswith(RUN), count=3)
            ids = sorted(e["payload"]["external_id"] for e in events)
            self.assertIn("%s-during" % RUN, ids)
        finally:
            self.assertEqual(ingest.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
