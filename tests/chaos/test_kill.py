#!/usr/bin/env python3
"""Fault scenario 1: services killed with SIGKILL in the middle of a stream of contacts,
then restarted; the checker finds every accepted contact once, no ticket assigned twice,
no agent above capacity, every due SLA event once.

One stream kills sb-ingest, sb-triage and sb-reporter in turn; sb-router and sb-slawatch
each have their own stream."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos  # noqa: E402


def kill_and_restart(test, programs):
    p = chaos.Pipeline()
    try:
        p.start()
        p.loadgen()
        services = [p.ingest if prog == "sb-ingest" else p.stages[prog][0] for prog in programs]
        recovery = {}
        for i, svc in enumerate(services):
            p.stream_at(0.15 + 0.7 * i / len(services))
            svc.kill9()
            time.sleep(1)
            recovery[svc.program] = round(svc.restart(), 1)
            chaos.log("%s killed and back in %.1fs" % (svc.program, recovery[svc.program]))
        p.loadgen_wait()
        contacts, tickets, evs = p.wait_settled()
        chaos.log("restart to ready (s): %s; %s" % (recovery, chaos.stats(contacts, tickets, evs)))
        chaos.assert_clean(test, p, contacts, tickets, evs)
        test.assertGreater(p.summary["contacts"]["accepted"], 0.8 * p.loadgen_count)
    finally:
        rcs = p.stop()
        p.cleanup()
    test.assertEqual(rcs, {}, "services that did not exit 0 on SIGTERM")


class KillTest(unittest.TestCase):
    def test_kill_ingest_triage_reporter_mid_stream(self):
        kill_and_restart(self, ["sb-ingest", "sb-triage", "sb-reporter"])

    def test_kill_router_mid_stream(self):
        kill_and_restart(self, ["sb-router"])

    def test_kill_slawatch_mid_stream(self):
        kill_and_restart(self, ["sb-slawatch"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
