"""The fault suite's pipeline: the five services on free ports against the local stack,
each stage in consumer groups of this run (sb-<stage>-chaos-<run>, moved to the end of
the topics before the first start, so what older runs left there is not read), a Redis
database of their own, sb-loadgen driving a bounded stream with simulated agents, and
the checker that reads what happened from PostgreSQL.

SB_CHAOS_SCALE (default 1) multiplies the number of contacts and agents (make bench
runs the suite bigger); SB_TEST_KEEP_LOGS=1 keeps the services' logs."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ingest_api"))
import harness  # noqa: E402

ROOT, BIN = harness.ROOT, harness.BIN
STACK = os.path.join(ROOT, "deploy", "local", "stack.sh")
SCALE = max(0.1, float(os.environ.get("SB_CHAOS_SCALE", "1")))
SLOW = 2.0 if os.environ.get("SB_SANITIZE") or "asan" in BIN else 1.0
# A database of the run's services only: flushing it is the "Redis lost" of scenario 4
# without emptying what other programs keep in database 0.
REDIS_DB = 12
REDIS_URL = "redis://127.0.0.1:16379/%d" % REDIS_DB
STAGES = ("sb-triage", "sb-router", "sb-slawatch", "sb-reporter")
# Which stage reads which topic (a poison message there must reach the DLQ from each).
READERS = {
    "sb.contacts.v1": ("sb-triage", "sb-reporter"),
    "sb.tickets.v1": ("sb-router", "sb-slawatch", "sb-reporter"),
    "sb.activity.v1": ("sb-triage", "sb-router", "sb-slawatch", "sb-reporter"),
    "sb.presence.v1": ("sb-router", "sb-reporter"),
    "sb.sla.v1": ("sb-router", "sb-reporter"),
    "sb.routing.v1": ("sb-slawatch", "sb-reporter"),
}
# SLA targets of seconds, so that clocks are met and breached within a run. An untouched
# breach escalates again after 3 s (lead, then supervisor).
POLICIES = [
    {"kind": "band", "band": "P1", "first_response_s": 7, "resolution_s": 41,
     "warn_fractions": [0.5, 0.8]},
    {"kind": "band", "band": "P2", "first_response_s": 9, "resolution_s": 43,
     "warn_fractions": [0.5, 0.8]},
    {"kind": "band", "band": "P3", "first_response_s": 11, "resolution_s": 47,
     "warn_fractions": [0.5, 0.8]},
    {"kind": "band", "band": "P4", "first_response_s": 13, "resolution_s": 53,
     "warn_fractions": [0.5, 0.8]},
]
# The targets above (seconds) are unusual on purpose: an sla.started with another target
# comes from an SLA watcher outside this run (another group reading the same topics on a
# shared stack); the SLA checks leave such tickets out and say how many.
OUR_TARGETS = {"first_response": {7, 9, 11, 13}, "resolution": {41, 43, 47, 53}}
# Capacity of a simulated agent per intake channel (sb-loadgen's presence: phone 1,
# chat 3, email 10, social 5; web/api go to the form channel, which it leaves unset).
CAPACITY = {"phone": 1, "chat": 3, "wechat": 3, "email": 10, "social": 5}
# Kafka sessions short enough that a member killed with SIGKILL leaves its group soon.
RDKAFKA = "session.timeout.ms=6000,heartbeat.interval.ms=1000"


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def psql_rows(sql):
    """Rows of a query returning one JSON value per row."""
    out = harness.psql(sql)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def redis_cli(*args):
    return subprocess.run(["redis-cli", "-p", "16379", "-n", str(REDIS_DB)] + list(args),
                          capture_output=True, text=True, timeout=30, check=False).stdout.strip()


def stack(verb, component):
    """stack.sh start|stop COMPONENT; start waits until the component answers."""
    p = subprocess.run([STACK, verb, component], capture_output=True, text=True, timeout=300,
                       check=False)
    if p.returncode != 0:
        raise RuntimeError("stack.sh %s %s: %s%s" % (verb, component, p.stdout, p.stderr))


def http_ok(url, timeout=2):
    try:
        return urllib.request.urlopen(url, timeout=timeout).status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


class Service:
    """One instance of a service in the run's consumer group (stages) on free ports."""

    def __init__(self, program, pipeline, index=0):
        self.program, self.pipeline, self.index = program, pipeline, index
        self.name = "%s#%d" % (program, index)
        self.proc = None
        self.admin = harness.free_port()
        self.http = harness.free_port() if program in ("sb-ingest", "sb-reporter") else None
        self.log = tempfile.NamedTemporaryFile(prefix=program + "-chaos-", suffix=".log",
                                               delete=False)
        self.restarts = 0

    def env(self):
        p = self.pipeline
        e = dict(os.environ, SB_ADMIN_PORT=str(self.admin), SB_LOG_LEVEL="info",
                 SB_REDIS_URL=REDIS_URL, SB_RDKAFKA=RDKAFKA)
        if self.http:
            e["SB_HTTP_PORT"] = str(self.http)
        if self.program != "sb-ingest":
            e["SB_KAFKA_GROUP"] = p.group(self.program)
        if self.program == "sb-ingest":
            e.update(SB_RATELIMIT_RATE="1000000", SB_RATELIMIT_BURST="1000000")
        elif self.program == "sb-router":
            e.update(SB_ROUTER_AGENT_PREFIX="lg-a-", SB_ROUTER_AGENTS_REFRESH_MS="200",
                     SB_ROUTER_OFFER_TIMEOUT_CHAT_S="10", SB_ROUTER_OFFER_TIMEOUT_VOICE_S="10",
                     SB_ROUTER_OFFER_TIMEOUT_EMAIL_S="15", SB_ROUTER_OFFER_TIMEOUT_SOCIAL_S="15",
                     SB_ROUTER_OFFER_TIMEOUT_FORM_S="15", SB_ROUTER_ROSTER_REFRESH_S="5")
        elif self.program == "sb-slawatch":
            e.update(SB_SLAWATCH_POLICIES_FILE=p.policies, SB_SLAWATCH_REESCALATE_MAX_S="3",
                     SB_SLAWATCH_CSAT_DELAY_S="4", SB_SLAWATCH_CALLBACK_DELAY_S="5",
                     SB_SLAWATCH_TICK_MS="100")
        elif self.program == "sb-reporter":
            e.update(SB_REPORTS_ENABLED="false")
        e.update(p.extra_env.get(self.program, {}))
        return e

    def start(self, wait=True):
        self.log.write(("---- start %s\n" % time.strftime("%H:%M:%S")).encode())
        self.log.flush()
        self.proc = subprocess.Popen([os.path.join(BIN, self.program)], env=self.env(),
                                     stdout=self.log, stderr=self.log, cwd=ROOT)
        if wait:
            self.wait_ready()

    def ready(self):
        if self.program == "sb-ingest":
            return http_ok("http://127.0.0.1:%d/readyz" % self.admin)
        return self.metric("sb_stage_assigned_partitions") >= 0 and \
            http_ok("http://127.0.0.1:%d/healthz" % self.admin)

    def wait_ready(self, timeout=60 * SLOW):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited %s: %s" % (self.name, self.proc.returncode,
                                                          self.logs()[-3000:]))
            if self.ready():
                return
            time.sleep(0.2)
        raise RuntimeError("%s not ready: %s" % (self.name, self.logs()[-3000:]))

    def metric(self, name):
        try:
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin,
                                          timeout=2).read().decode()
        except OSError:
            return -1
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name + "{") or line.startswith(name + " "))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.write(("---- SIGKILL %s\n" % time.strftime("%H:%M:%S")).encode())
        self.log.flush()

    def restart(self, alone=True):
        """Starts again; alone: waits until it holds partitions again (the group has
        noticed that the killed member left)."""
        self.restarts += 1
        t0 = time.time()
        self.start()
        if alone and self.program != "sb-ingest":
            deadline = time.time() + 60 * SLOW
            while self.metric("sb_stage_assigned_partitions") <= 0:
                if time.time() > deadline or not self.alive():
                    raise RuntimeError("%s has no partitions after restart: %s"
                                       % (self.name, self.logs()[-3000:]))
                time.sleep(0.2)
        return time.time() - t0

    def stop(self):
        """SIGTERM; the exit status (-9 after a forced kill)."""
        if not self.alive():
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return -9

    def logs(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def cleanup(self):
        if os.environ.get("SB_TEST_KEEP_LOGS"):
            print("%s log: %s" % (self.name, self.log.name))
        else:
            os.unlink(self.log.name)


class Pipeline:
    """sb-ingest and the four stages (instances of each stage given by instances)."""

    def __init__(self, instances=1, extra_env=None):
        self.run = uuid.uuid4().hex[:8]
        self.extra_env = extra_env or {}
        self.tmp = tempfile.mkdtemp(prefix="sb-chaos-")
        self.policies = os.path.join(self.tmp, "policies.json")
        with open(self.policies, "w", encoding="utf-8") as f:
            json.dump(POLICIES, f)
        self.started_at = time.time()
        # What an earlier run of the suite left in the services' Redis database (open
        # tickets of its customers, reservations) is not this run's business.
        redis_cli("FLUSHDB")
        for prog in STAGES:
            harness.sbctl("offsets", self.group(prog), "--to", "end")
        self.ingest = Service("sb-ingest", self)
        self.stages = {prog: [Service(prog, self, i) for i in range(instances)]
                       for prog in STAGES}
        self.loadgen_proc = None
        self.summary_path = os.path.join(self.tmp, "summary.json")
        self.loadgen_err = os.path.join(self.tmp, "loadgen.err")

    def group(self, program):
        return "%s-chaos-%s" % (program, self.run)

    def services(self):
        return [self.ingest] + [s for prog in STAGES for s in self.stages[prog]]

    def start(self):
        t0 = time.time()
        for s in self.services():
            s.start(wait=False)
        for s in self.services():
            s.wait_ready()
        # Every stage instance has its partitions (a group's first join takes a while).
        deadline = time.time() + 60 * SLOW
        while time.time() < deadline:
            if all(sum(max(0, i.metric("sb_stage_assigned_partitions")) for i in inst) > 0
                   for inst in self.stages.values()):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("stages without partitions")
        log("pipeline %s up in %.1fs" % (self.run, time.time() - t0))

    def stop(self):
        """Stops everything; the services that did not exit 0 on SIGTERM."""
        bad = {}
        if self.loadgen_proc and self.loadgen_proc.poll() is None:
            self.loadgen_proc.kill()
            self.loadgen_proc.wait()
        for s in self.services():
            rc = s.stop()
            if rc != 0:
                bad[s.name] = rc
        return bad

    def cleanup(self):
        for s in self.services():
            s.cleanup()
        redis_cli("FLUSHDB")

    # ---------------------------------------------------------------- load
    def loadgen(self, count=None, rate=12, agents=None, **kw):
        """Starts sb-loadgen in the background; wait with loadgen_wait()."""
        count = count or int(240 * SCALE)
        agents = agents or max(8, int(12 * SCALE))
        args = [os.path.join(BIN, "sb-loadgen"), "--ingest", "http://127.0.0.1:%d" % self.ingest.http,
                "--quiet", "--summary", self.summary_path, "--count", str(count), "--rate",
                str(rate), "--duration", str(int(count / rate * 3 + 60)), "--agents", str(agents),
                "--accept-s", "1", "--handle-s", "4", "--pending", "0.1", "--decline", "0.05",
                "--drain", str(int(kw.get("drain", 30 * SLOW))), "--known", "0.3",
                "--connections", "16", "--seed", str(int(self.run, 16) % 100000)]
        self.loadgen_count, self.loadgen_rate = count, rate
        self.loadgen_started = time.time()
        with open(self.loadgen_err, "w", encoding="utf-8") as err:
            self.loadgen_proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        log("sb-loadgen: %d contacts at %s/s, %d agents" % (count, rate, agents))

    def stream_at(self, fraction):
        """Sleeps until about fraction of the stream has been sent."""
        due = self.loadgen_started + 2 + fraction * self.loadgen_count / self.loadgen_rate
        if due > time.time():
            time.sleep(due - time.time())

    def loadgen_wait(self, timeout=None):
        timeout = timeout or (self.loadgen_count / self.loadgen_rate * 3 + 200) * SLOW
        self.loadgen_proc.wait(timeout)
        with open(self.loadgen_err, encoding="utf-8", errors="replace") as f:
            err = f.read()
        if self.loadgen_proc.returncode != 0:
            raise AssertionError("sb-loadgen exited %d: %s" % (self.loadgen_proc.returncode, err))
        with open(self.summary_path, encoding="utf-8") as f:
            self.summary = json.load(f)
        log("sb-loadgen summary: %s" % json.dumps(self.summary))
        return self.summary

    # ---------------------------------------------------------------- what happened
    def prefix(self):
        return "lg-%s-" % self.summary["run"]

    def contacts(self):
        """contact.received rows of this run: {external_id: [(event_id, ticket_id)]}."""
        rows = psql_rows(
            "SELECT json_build_array(payload->>'external_id', event_id, ticket_id) "
            "FROM ticket_events WHERE type = 'contact.received' AND "
            "payload->>'external_id' LIKE '%s%%'" % self.prefix())
        out = {}
        for ext, eid, tid in rows:
            out.setdefault(ext, []).append((eid, tid))
        return out

    def events(self, tickets):
        """Every stored event of the tickets, in order of occurrence."""
        if not tickets:
            return []
        ids = ",".join("'%s'" % t.replace("'", "") for t in sorted(tickets))
        return psql_rows(
            "SELECT json_build_object('event_id', event_id, 'type', type, 'ticket_id', ticket_id, "
            "'at', extract(epoch FROM occurred_at), 'producer', producer, 'payload', payload) "
            "FROM ticket_events WHERE ticket_id IN (%s) ORDER BY occurred_at, event_id" % ids)

    def snapshot(self):
        contacts = self.contacts()
        tickets = {tid for v in contacts.values() for _, tid in v}
        return contacts, tickets, self.events(tickets)

    def wait_settled(self, timeout=None):
        """Waits until every accepted contact is stored and triaged, every triaged ticket
        seen by the router and its first-response clock started, and every first-response
        breach due by now stored; then a little longer for late duplicates."""
        timeout = timeout or 150 * SLOW
        deadline = time.time() + timeout
        missing = ["nothing checked yet"]
        while time.time() < deadline:
            contacts, tickets, evs = self.snapshot()
            missing = progress_gaps(self.summary, contacts, tickets, evs)
            if not missing:
                break
            time.sleep(2)
        log("settled (%s) after %.0fs" % ("; ".join(missing[:3]) or "complete",
                                          time.time() - self.loadgen_started))
        time.sleep(3 * SLOW)
        return self.snapshot()


# -------------------------------------------------------------------- the checker
def by_type(evs, type_):
    return [e for e in evs if e["type"] == type_]


def per_ticket(evs):
    out = {}
    for e in evs:
        out.setdefault(e["ticket_id"], []).append(e)
    return out


def first_response_due(tevs, now):
    """For one ticket's events: (target, expected breach?) of its first-response clock, or
    None when the outcome is not clear-cut (re-targeted, paused, a reply near the target,
    or the target not far enough behind us)."""
    started = [e for e in by_type(tevs, "sla.started")
               if e["payload"].get("kind") == "first_response"]
    if [e for e in started if e["payload"].get("target_s") not in OUR_TARGETS["first_response"]]:
        return None
    if len(started) != 1 or by_type(tevs, "ticket.rescored") or by_type(tevs, "ticket.merged") \
            or by_type(tevs, "sla.paused"):
        return None
    target = parse_ts(started[0]["payload"]["target_at"])
    replies = [e["at"] for e in by_type(tevs, "agent.replied") if e["payload"].get("public", True)]
    reply = min(replies) if replies else None
    margin = 3.0 * SLOW
    if reply is not None and abs(reply - target) < margin:
        return None
    if reply is None or reply > target:
        if target + margin > now:
            return None
        return target, True
    return target, False


def parse_ts(s):
    import calendar
    base = calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))
    frac = s[19:].rstrip("Z")
    if "+" in frac:
        frac = frac.split("+")[0]
    return base + (float(frac) if frac.startswith(".") else 0.0)


def progress_gaps(summary, contacts, tickets, evs):
    """What is still on its way (empty when the pipeline has caught up)."""
    gaps = []
    if len(contacts) < summary["contacts"]["accepted"]:
        gaps.append("%d of %d contacts stored" % (len(contacts), summary["contacts"]["accepted"]))
    byt = per_ticket(evs)
    now = time.time()
    untriaged = [t for t in tickets if not by_type(byt.get(t, []), "ticket.triaged")]
    if untriaged:
        gaps.append("%d tickets not triaged (e.g. %s)" % (len(untriaged), sorted(untriaged)[:3]))
    unrouted = [t for t in tickets if not any(e["producer"].startswith("sb-router")
                                              for e in byt.get(t, []))]
    if unrouted:
        gaps.append("%d tickets not routed (e.g. %s)" % (len(unrouted), sorted(unrouted)[:3]))
    nosla = [t for t in tickets if not [e for e in by_type(byt.get(t, []), "sla.started")
                                        if e["payload"].get("kind") == "first_response"]]
    if nosla:
        gaps.append("%d tickets without a first-response clock (e.g. %s)"
                    % (len(nosla), sorted(nosla)[:3]))
    owed = 0
    for t in tickets:
        due = first_response_due(byt.get(t, []), now)
        if due and due[1] and not [e for e in by_type(byt[t], "sla.breached")
                                   if e["payload"].get("kind") == "first_response"]:
            owed += 1
    if owed:
        gaps.append("%d first-response breaches due" % owed)
    return gaps


def foreign_sla(evs):
    """Tickets with an sla.started whose target is not one of this run's policies."""
    out = set()
    for e in by_type(evs, "sla.started"):
        p = e["payload"]
        if p.get("kind") in OUR_TARGETS and p.get("target_s") not in OUR_TARGETS[p["kind"]]:
            out.add(e["ticket_id"])
    return out


def sla_step(e):
    """What an SLA event is a step of (the same step under two event ids is a duplicate).
    A re-target to another band is a step of its own even when the deadline is the same."""
    p = e["payload"]
    return (e["ticket_id"], e["type"], p.get("kind"), p.get("state"), p.get("fraction"),
            p.get("level"), p.get("target_at"), p.get("due_at"),
            p.get("band") if e["type"] == "sla.started" else None)


ROUTING = ("ticket.queued", "ticket.offered", "ticket.assigned", "ticket.requeued",
           "ticket.overflowed")


def ours(e):
    """False for a routing event of a router outside this run: the run's router offers only
    to the simulated agents (SB_ROUTER_AGENT_PREFIX=lg-a-); on a shared stack another
    test's router may route the same tickets to its own agents."""
    if e["type"] not in ROUTING:
        return True
    agent = e["payload"].get("agent_id") or e["payload"].get("previous_agent_id")
    return agent is None or agent.startswith("lg-a-")


def check(summary, contacts, tickets, evs):
    """Every violation of the delivery rules found in the stored events (empty: clean)."""
    bad = []
    foreign = [e for e in evs if not ours(e)]
    if foreign:
        log("routing checks leave out %d routing events of routers outside this run (agents "
            "%s)" % (len(foreign), sorted({e["payload"].get("agent_id") or
                                           e["payload"].get("previous_agent_id")
                                           for e in foreign})[:5]))
        evs = [e for e in evs if ours(e)]
    c = summary["contacts"]
    # 1. Every accepted contact present exactly once (an answer lost on the way may still
    #    have been kept: those are the "failed" ones, at most).
    dup = {k: v for k, v in contacts.items() if len({eid for eid, _ in v}) > 1}
    if dup:
        bad.append("contacts stored more than once: %s" % sorted(dup)[:5])
    if not c["accepted"] <= len(contacts) <= c["accepted"] + c["failed"]:
        bad.append("%d contacts stored, %d accepted (+%d without an answer)"
                   % (len(contacts), c["accepted"], c["failed"]))
    byt = per_ticket(evs)
    for gap in progress_gaps(summary, contacts, tickets, evs):
        bad.append("lost: " + gap)
    # Triage: one ticket.triaged per contact that opened a ticket.
    for t in tickets:
        tr = by_type(byt.get(t, []), "ticket.triaged")
        if len({e["payload"].get("contact_id") for e in tr}) != len(tr):
            bad.append("ticket %s triaged %d times for one contact" % (t, len(tr)))
    # 2. No ticket assigned twice, no overlapping offers.
    for t in tickets:
        tevs = byt.get(t, [])
        assigned = by_type(tevs, "ticket.assigned")
        if len(assigned) > 1:
            bad.append("ticket %s assigned %d times: %s" % (
                t, len(assigned), [(e["payload"].get("agent_id"), e["payload"].get("offer_id"))
                                   for e in assigned]))
        offers = by_type(tevs, "ticket.offered")
        if len({e["payload"].get("offer_id") for e in offers}) != len(offers):
            bad.append("ticket %s: one offer stored under two event ids" % t)
        open_offer = None
        for e in sorted(tevs, key=order_key):
            p = e["payload"]
            if e["type"] == "ticket.offered":
                if open_offer is not None:
                    bad.append("ticket %s offered to %s while offer %s to %s was open"
                               % (t, p.get("agent_id"), open_offer[0], open_offer[1]))
                open_offer = (p.get("offer_id"), p.get("agent_id"))
            elif e["type"] in ("ticket.assigned", "ticket.requeued", "ticket.declined"):
                open_offer = None
    # 3. No agent above capacity: reservations (offered or assigned) held per agent and
    #    channel, released by requeue, decline or resolve.
    channel = {}
    for t in tickets:
        for e in byt.get(t, []):
            if e["type"] == "contact.received" and t not in channel:
                channel[t] = e["payload"].get("channel")
    held, peak = {}, {}
    for e in sorted(evs, key=order_key):
        t, p = e["ticket_id"], e["payload"]
        ch = channel.get(t)
        if e["type"] == "ticket.offered" or (e["type"] == "ticket.assigned" and t not in held):
            held[t] = (p.get("agent_id"), ch)
        elif e["type"] in ("ticket.requeued", "ticket.declined") or (
                e["type"] == "ticket.status_changed" and p.get("status") in
                ("resolved", "closed", "archived")):
            held.pop(t, None)
        else:
            continue
        load = {}
        for agent, c2 in held.values():
            load[(agent, c2)] = load.get((agent, c2), 0) + 1
        for (agent, c2), n in load.items():
            cap = CAPACITY.get(c2)
            if cap is not None and n > cap:
                peak[(agent, c2)] = max(peak.get((agent, c2), 0), n)
    for (agent, c2), n in sorted(peak.items()):
        bad.append("agent %s held %d %s tickets (capacity %d)" % (agent, n, c2, CAPACITY[c2]))
    # 4. Every SLA step at most once; every due first-response breach present once.
    steps = {}
    # An escalation names no deadline: it belongs to its clock's run, the last sla.started
    # of that clock before it (a reopen starts the clock again, and its breach escalates
    # again).
    starts = {}
    for e in evs:
        if e["type"] == "sla.started":
            starts.setdefault((e["ticket_id"], e["payload"].get("kind")), []).append(
                (e["at"], e["payload"].get("target_at") or ""))
    for e in evs:
        if e["type"].startswith("sla.") or e["type"] == "followup.due":
            step = sla_step(e)
            if e["type"] == "sla.escalated":
                runs = [s for s in starts.get((e["ticket_id"], e["payload"].get("kind")), [])
                        if s[0] <= e["at"]]
                step += (max(runs)[1] if runs else None,)
            steps.setdefault(step, set()).add(e["event_id"])
    foreign = foreign_sla(evs)
    if foreign:
        log("SLA checks leave out %d of %d tickets: an SLA watcher outside this run also "
            "timed them" % (len(foreign), len(tickets)))
    dups = [k for k, v in steps.items() if len(v) > 1 and k[0] not in foreign]
    if dups:
        bad.append("%d SLA steps stored more than once, e.g. %s" % (len(dups), dups[:3]))
    now = time.time()
    for t in tickets - foreign:
        tevs = byt.get(t, [])
        due = first_response_due(tevs, now)
        if not due:
            continue
        n = len([e for e in by_type(tevs, "sla.breached")
                 if e["payload"].get("kind") == "first_response"])
        if n != (1 if due[1] else 0):
            bad.append("ticket %s: %d first-response breaches, expected %d"
                       % (t, n, 1 if due[1] else 0))
    return bad


def describe(evs, ticket):
    """One ticket's stored events, one line each (for failure messages)."""
    lines = []
    for e in evs:
        if e["ticket_id"] != ticket:
            continue
        p = e["payload"]
        extra = {k: p[k] for k in ("kind", "level", "fraction", "target_at", "target_s",
                                   "agent_id", "offer_id", "status", "reason") if k in p}
        lines.append("  %s %-22s %s %s %s" % (time.strftime("%H:%M:%S", time.gmtime(e["at"])) +
                                               ".%03d" % (int(e["at"] * 1000) % 1000), e["type"],
                                               e["producer"].split("/")[0], e["event_id"][:18],
                                               json.dumps(extra, ensure_ascii=False)))
    return "%s:\n%s" % (ticket, "\n".join(lines))


def order_key(e):
    # Releases before reservations at the same instant.
    release = e["type"] in ("ticket.requeued", "ticket.declined", "ticket.status_changed")
    return (e["at"], 0 if release else 1)


def stats(contacts, tickets, evs):
    byt = per_ticket(evs)
    return {"contacts": len(contacts), "tickets": len(tickets),
            "assigned": len({e["ticket_id"] for e in by_type(evs, "ticket.assigned")}),
            "breaches": len(by_type(evs, "sla.breached")),
            "sla_events": len([e for e in evs if e["type"].startswith("sla.")]),
            "with_reply": len([t for t in tickets if by_type(byt.get(t, []), "agent.replied")])}


def assert_clean(test, pipeline, contacts, tickets, evs):
    """Fails test with the violations found and the events of a few offending tickets."""
    bad = check(pipeline.summary, contacts, tickets, evs)
    if bad:
        shown = []
        for line in bad:
            for word in line.replace(",", " ").replace("'", " ").split():
                if word.startswith("T-") and word in tickets and word not in shown:
                    shown.append(word)
        detail = "\n".join(describe(evs, t) for t in shown[:4])
        test.fail("run %s: %d violations:\n%s\n%s" % (pipeline.run, len(bad), "\n".join(bad[:30]),
                                                      detail))
