#!/usr/bin/env python3
"""sb-loadgen against a real sb-ingest and Kafka: every contact it counts as accepted is in
sb.contacts.v1 exactly once with the channel it reports; the channel mix and texts follow
the seed (the same seed gives the same mix); an incident burst sends N near-identical
contacts; bad options and a non-loopback target are refused."""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ingest_api"))
import harness  # noqa: E402

LOADGEN = os.path.join(harness.BIN, "sb-loadgen")


def loadgen(ingest, *args):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        p = subprocess.run([LOADGEN, "--ingest", ingest.url(""), "--quiet", "--summary", f.name]
                           + list(args), capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError("sb-loadgen exited %d: %s" % (p.returncode, p.stderr))
        with open(f.name, encoding="utf-8") as g:
            summary = json.load(g)
    # The summary on stdout is the same document.
    assert json.loads(p.stdout) == summary, p.stdout
    return summary


def contacts_of(run, expected, timeout=60):
    prefix = "lg-%s-" % run
    deadline, mine = time.time() + timeout, []
    while time.time() < deadline:
        mine = [e for e in harness.consume("sb.contacts.v1")
                if e["payload"].get("external_id", "").startswith(prefix)]
        if len(mine) >= expected:
            break
        time.sleep(0.5)
    return mine


class LoadgenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ingest = harness.Ingest(SB_RATELIMIT_RATE=1e6, SB_RATELIMIT_BURST=1e6)

    @classmethod
    def tearDownClass(cls):
        cls.ingest.stop()

    def test_every_accepted_contact_arrives_once_with_its_channel(self):
        s = loadgen(self.ingest, "--rate", "150", "--count", "300", "--duration", "60",
                    "--seed", "11", "--incident", "0.5,12")
        c = s["contacts"]
        self.assertEqual(c["sent"], 300)
        self.assertEqual(c["accepted"], 300)
        self.assertEqual(c["refused"] + c["failed"], 0)
        self.assertEqual(sum(c["by_channel"].values()), 300)
        self.assertGreater(c["accept_ms"]["p99"], 0)
        events = contacts_of(s["run"], 300)
        ids = [e["payload"]["external_id"] for e in events]
        self.assertEqual(len(ids), 300)
        self.assertEqual(len(set(ids)), 300)
        by_channel = {}
        for e in events:
            by_channel[e["payload"]["channel"]] = by_channel.get(e["payload"]["channel"], 0) + 1
        self.assertEqual(by_channel, {k: v for k, v in c["by_channel"].items() if v})
        burst = [e for e in events if "E5001" in e["payload"]["body"]]
        self.assertEqual(len(burst), 12)

    def test_same_seed_same_mix(self):
        # One connection at a high rate makes arrivals wait for a free connection: the
        # contacts drawn must not depend on that.
        a = loadgen(self.ingest, "--rate", "2000", "--count", "80", "--seed", "5")
        b = loadgen(self.ingest, "--rate", "2000", "--count", "80", "--seed", "5",
                    "--connections", "1")
        c = loadgen(self.ingest, "--rate", "200", "--count", "80", "--seed", "6",
                    "--mix", "0,0,0,0,1")
        self.assertNotEqual(a["run"], b["run"])
        self.assertEqual(a["contacts"]["by_channel"], b["contacts"]["by_channel"])
        self.assertEqual(c["contacts"]["by_channel"]["web"], 80)

    def test_refuses_bad_options_and_remote_targets(self):
        for args in (["--rate", "0"], ["--mix", "1,2"], ["--bogus", "1"],
                     ["--ingest", "http://10.1.2.3:8080"]):
            p = subprocess.run([LOADGEN, "--quiet"] + args, capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("sb-loadgen:", p.stderr)
        p = subprocess.run([LOADGEN, "--quiet", "--ingest", self.ingest.url(""), "--day",
                            "990101", "--data", "/nonexistent"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("call-center log", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
