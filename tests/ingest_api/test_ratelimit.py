#!/usr/bin/env python3
"""Rate limiting on the real service: a noisy source gets 429 with Retry-After once its
burst is spent; another source (a different loopback address) is unaffected."""
import http.client
import json
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

RUN = uuid.uuid4().hex[:10]


def post_from(source_ip, port, n):
    body = json.dumps({"channel": "web", "external_id": "%s-%s-%d" % (RUN, source_ip, n),
                       "customer": {"email": "rl-%s@example.cn" % RUN}, "body": "hi"}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                      source_address=(source_ip, 0))
    conn.request("POST", "/v1/contacts", body,
                 {"Content-Type": "application/json",
                  "X-SB-Signature": h.sign("dev-secret-api", body)})
    r = conn.getresponse()
    out = (r.status, r.getheader("Retry-After"), json.loads(r.read()))
    conn.close()
    return out


class RateLimit(unittest.TestCase):
    def test_noisy_source_limited_others_not(self):
        ingest = h.Ingest(SB_RATELIMIT_RATE="0.2", SB_RATELIMIT_BURST="3")
        try:
            statuses = [post_from("127.0.0.1", ingest.port, i)[0] for i in range(3)]
            self.assertEqual(statuses, [202, 202, 202])
            st, retry, body = post_from("127.0.0.1", ingest.port, 3)
            self.assertEqual(st, 429, body)
            self.assertEqual(body["error"]["code"], "rate_limited")
            self.assertGreaterEqual(int(retry), 1)
            st, _, body = post_from("127.0.0.2", ingest.port, 4)
            self.assertEqual(st, 202, body)
        finally:
            self.assertEqual(ingest.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
