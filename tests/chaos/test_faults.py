#!/usr/bin/env python3
"""Fault scenarios 2-6 on the whole pipeline under sb-loadgen (docs/faults.md), one test
class each so that ctest runs them one by one (python3 test_faults.py CLASS):
  KafkaOutageTest     the broker stopped and started again mid-stream
  PostgresRestartTest PostgreSQL stopped and started again mid-stream
  RedisLossTest       the services' Redis database emptied and Redis restarted
  PoisonTest          a message that is not JSON on every topic a stage reads
  ScaleOutTest        two instances of every stage, one of each killed mid-stream
Each ends with the checker (chaos.check) on what PostgreSQL holds. A stopped component
of the shared stack is always started again (finally) before the test ends."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos  # noqa: E402
import harness  # noqa: E402


def wait_until(pred, timeout, step=0.2):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return time.time() - t0
        time.sleep(step)
    return None


def ingest_ready(p):
    return chaos.http_ok("http://127.0.0.1:%d/readyz" % p.ingest.admin)


class Base(unittest.TestCase):
    def finish(self, p, figures=None):
        p.loadgen_wait()
        contacts, tickets, evs = p.wait_settled()
        chaos.log("%s; %s" % (json.dumps(figures or {}), chaos.stats(contacts, tickets, evs)))
        chaos.assert_clean(self, p, contacts, tickets, evs)
        return contacts, tickets, evs

    def stop_pipeline(self, p, killed=()):
        """Stops the run; every service but those killed with SIGKILL exits 0."""
        rcs = {k: v for k, v in p.stop().items() if k not in killed}
        p.cleanup()
        self.assertEqual(rcs, {}, "services that did not exit 0 on SIGTERM")


class KafkaOutageTest(Base):
    def test_broker_stopped_and_started_mid_stream(self):
        p = chaos.Pipeline()
        figures = {}
        try:
            p.start()
            p.loadgen()
            p.stream_at(0.3)
            t0 = time.time()
            try:
                chaos.stack("stop", "kafka")
                figures["stop_s"] = round(time.time() - t0, 1)
                # ingest says it cannot take contacts (readyz 503; requests answer 503).
                figures["ingest_unready_after_s"] = wait_until(lambda: not ingest_ready(p), 30)
                time.sleep(5)
            finally:
                t1 = time.time()
                chaos.stack("start", "kafka")
                figures["start_s"] = round(time.time() - t1, 1)
            figures["ingest_ready_after_start_s"] = wait_until(lambda: ingest_ready(p), 120)
            figures["outage_s"] = round(time.time() - t0, 1)
            chaos.log("kafka outage: %s" % figures)
            self.assertIsNotNone(figures["ingest_unready_after_s"], "ingest stayed ready")
            self.assertIsNotNone(figures["ingest_ready_after_start_s"], "ingest did not recover")
            for prog in chaos.STAGES:
                self.assertTrue(p.stages[prog][0].alive(), prog + " exited")
            _, tickets, evs = self.finish(p, figures)
            self.assertGreater(p.summary["contacts"]["refused"] + p.summary["contacts"]["failed"],
                               0, "no contact refused while the broker was down")
            # No deadline fires while the broker does not answer (an input it holds may not
            # have been read): the watcher's steps of that time come after it is back.
            down = (t0 + figures["stop_s"] + 2.0, t1)
            fired = [e for e in evs if e["ticket_id"] in tickets - chaos.foreign_sla(evs) and
                     e["type"] in ("sla.warning", "sla.breached", "sla.escalated",
                                   "followup.due") and down[0] <= e["at"] <= down[1]]
            self.assertEqual([chaos.describe(evs, e["ticket_id"]) for e in fired[:3]], [],
                             "%d SLA steps fired while the broker was down" % len(fired))
        finally:
            self.stop_pipeline(p)


class PostgresRestartTest(Base):
    def test_postgres_restarted_mid_stream(self):
        p = chaos.Pipeline()
        figures = {}
        try:
            p.start()
            p.loadgen()
            p.stream_at(0.4)
            t0 = time.time()
            try:
                chaos.stack("stop", "postgresql")
                figures["stop_s"] = round(time.time() - t0, 1)
                time.sleep(2)
            finally:
                chaos.stack("start", "postgresql")
            figures["outage_s"] = round(time.time() - t0, 1)
            chaos.log("postgresql restart: %s" % figures)
            for s in p.services():
                self.assertTrue(s.alive(), s.name + " exited")
            self.finish(p, figures)
        finally:
            self.stop_pipeline(p)


class RedisLossTest(Base):
    def test_redis_emptied_and_restarted_mid_stream(self):
        p = chaos.Pipeline()
        figures = {}
        try:
            p.start()
            p.loadgen()
            p.stream_at(0.4)
            t0 = time.time()
            try:
                # Everything the run's services keep in Redis is gone, then Redis restarts.
                chaos.redis_cli("FLUSHDB")
                chaos.stack("stop", "redis")
                time.sleep(1)
            finally:
                chaos.stack("start", "redis")
            figures["outage_s"] = round(time.time() - t0, 1)
            # The running router writes its state back by itself (docs/router.md "Redis
            # lost"): nothing is restarted nor rewound.
            router = p.stages["sb-router"][0]
            self.assertIsNotNone(
                wait_until(lambda: router.metric("sb_router_state_restores_total") >= 1,
                           30 * chaos.SLOW), "sb-router did not write its state back")
            figures["router_restored_s"] = round(time.time() - t0, 1)
            chaos.log("redis loss: %s" % figures)
            for s in p.services():
                self.assertTrue(s.alive(), s.name + " exited")
            self.finish(p, figures)
        finally:
            self.stop_pipeline(p)


class PoisonTest(Base):
    def test_poison_on_every_topic_goes_to_the_dlq_once(self):
        p = chaos.Pipeline()
        try:
            p.start()
            p.loadgen()
            p.stream_at(0.4)
            marker = "poison-%s" % p.run
            for topic in chaos.READERS:
                subprocess.run(["kcat", "-b", harness.BROKERS, "-P", "-t", topic, "-K", "\t"],
                               input=("%s\t{not json %s %s\n" % (marker, marker, topic)).encode(),
                               check=True, timeout=30)
            self.finish(p)
            # Where each poison message landed, read back from its topic.
            origins = {}
            for topic in chaos.READERS:
                out = subprocess.run(
                    ["kcat", "-b", harness.BROKERS, "-C", "-t", topic, "-o",
                     "s@%d" % int((p.started_at - 5) * 1000), "-e", "-q", "-f", "%p %o %s\n"],
                    capture_output=True, timeout=60, check=True).stdout.decode("utf-8", "replace")
                hits = [line.split(" ", 2)[:2] for line in out.splitlines() if marker in line]
                self.assertEqual(len(hits), 1, "%s: poison found %d times" % (topic, len(hits)))
                origins[topic] = (int(hits[0][0]), int(hits[0][1]))
            deadline = time.time() + 60 * chaos.SLOW
            while True:
                missing, dup = [], []
                for topic, (part, off) in origins.items():
                    rows = harness.psql(
                        "SELECT stage || ' ' || count(*) FROM dlq_entries WHERE origin_topic = '%s' "
                        "AND origin_partition = %d AND origin_offset = %d GROUP BY stage"
                        % (topic, part, off)).split("\n")
                    got = dict(r.split(" ") for r in rows if r)
                    for stage in chaos.READERS[topic]:
                        n = int(got.get(stage, 0))
                        if n == 0:
                            missing.append((topic, stage))
                        elif n > 1:
                            dup.append((topic, stage, n))
                if not missing or time.time() > deadline:
                    break
                time.sleep(1)
            self.assertEqual(missing, [], "poison messages without a DLQ entry from that stage")
            self.assertEqual(dup, [], "poison messages dead-lettered more than once")
            for prog in chaos.STAGES:
                self.assertTrue(p.stages[prog][0].alive(), prog + " exited")
        finally:
            self.stop_pipeline(p)


class ScaleOutTest(Base):
    def test_two_instances_per_stage_one_killed(self):
        p = chaos.Pipeline(instances=2)
        killed = [p.stages[prog][1].name for prog in chaos.STAGES]
        try:
            p.start()
            p.loadgen()
            for i, prog in enumerate(chaos.STAGES):
                p.stream_at(0.2 + 0.6 * i / len(chaos.STAGES))
                p.stages[prog][1].kill9()
                chaos.log("%s#1 killed; #0 takes its partitions over" % prog)
            self.finish(p)
            for prog in chaos.STAGES:
                self.assertTrue(p.stages[prog][0].alive(), prog + "#0 exited")
        finally:
            self.stop_pipeline(p, killed)


if __name__ == "__main__":
    unittest.main(verbosity=2)
