#!/usr/bin/env python3
"""Fault test: the Kafka broker stops while sb-ingest runs. Contacts get 503 with
Retry-After (never 2xx for what was not kept), other requests are still answered at
once, /readyz says why, and when the broker is back intake recovers by itself, without
a restart; nothing refused during the outage appears in the topic."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

RUN = uuid.uuid4().hex[:10]
API = "dev-secret-api"
KAFKA_PID = os.path.join(h.ROOT, ".sb-local", "kafka", "kafka.pid")


def contact(name):
    return {"channel": "web", "external_id": "%s-%s" % (RUN, name),
            "customer": {"email": "outage-%s@example.cn" % RUN}, "body": "网站打不开"}


def kafka_pid():
    with open(KAFKA_PID) as f:
        return int(f.read().strip())


class KafkaOutage(unittest.TestCase):
    def test_outage_and_recovery(self):
        ingest = h.Ingest(SB_KAFKA_PRODUCE_TIMEOUT_MS=3000)
        try:
            st, b, _ = h.post_signed(ingest, "/v1/contacts", contact("before"), API)
            self.assertEqual(st, 202, b)
            pid = kafka_pid()
            os.kill(pid, signal.SIGKILL)  # the broker dies without warning
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    os.kill(pid, 0)
                    time.sleep(0.1)
                except ProcessLookupError:
                    break
            results = {}

            def slow(i):
                results[i] = h.post_signed(ingest, "/v1/contacts", contact("during-%d" % i), API)

            threads = [threading.Thread(target=slow, args=(i,)) for i in range(3)]
            for t in threads:
                t.start()
            time.sleep(0.3)
            t0 = time.monotonic()
            st, b, _ = h.request(ingest.url("/v1/contacts"), b"{", {"Content-Type": "application/json",
                                                                     "X-SB-Signature": h.sign(API, b"{")})
            self.assertEqual(st, 400)
            self.assertLess(time.monotonic() - t0, 1.0, "other requests must not wait on Kafka")
            for t in threads:
                t.join(30)
            for i, (st, b, hdrs) in results.items():
                self.assertEqual(st, 503, b)
                self.assertEqual(b["error"]["code"], "unavailable")
                self.assertIn("Retry-After", hdrs)
            st, b, _ = h.request("http://127.0.0.1:%d/readyz" % ingest.admin)
            self.assertEqual(st, 503, b)

            subprocess.run(["bash", os.path.join(h.ROOT, "deploy", "local", "stack.sh"), "up"],
                           check=True, capture_output=True, timeout=180)
            deadline = time.time() + 90
            st = None
            while time.time() < deadline:
                st, b, _ = h.post_signed(ingest, "/v1/contacts", contact("after"), API)
                if st == 202:
                    break
                time.sleep(1)
            self.assertEqual(st, 202, "intake did not recover without a restart")
            # The broker just came back: read until both kept contacts are visible.
            wanted = {"%s-before" % RUN, "%s-after" % RUN}
            events = h.wait_events("sb.contacts.v1",
                                   lambda e: e["payload"]["external_id"] in wanted, count=2,
                                   timeout=90)
            ids = {e["payload"]["external_id"] for e in h.consume("sb.contacts.v1")}
            self.assertEqual({e["payload"]["external_id"] for e in events}, wanted)
            for i in range(3):
                self.assertNotIn("%s-during-%d" % (RUN, i), ids, "a refused contact was produced")
        finally:
            self.assertEqual(ingest.stop(), 0)
            subprocess.run(["bash", os.path.join(h.ROOT, "deploy", "local", "stack.sh"), "up"],
                           capture_output=True, timeout=180)


if __name__ == "__main__":
    unittest.main(verbosity=2)
