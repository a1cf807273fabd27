"""Helpers for the sb-ingest integration tests: start the service on test ports against
the local stack, sign and send requests, read what it produced from Kafka."""
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.environ.get("SB_REPO_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SB_BIN_DIR") or os.path.join(ROOT, "build", "bin")
BROKERS = os.environ.get("SB_KAFKA_BROKERS", "127.0.0.1:19092")
PG = dict(host="127.0.0.1", port="15432", user="switchboard", password="switchboard",
          db="switchboard")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ingest:
    """A running sb-ingest on free ports (stopped with SIGTERM)."""

    def __init__(self, **env):
        self.port, self.admin = free_port(), free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="sb-ingest-", suffix=".log", delete=False)
        e = dict(os.environ, SB_HTTP_PORT=str(self.port), SB_ADMIN_PORT=str(self.admin),
                 SB_LOG_LEVEL="info")
        e.update({k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen([os.path.join(BIN, "sb-ingest")], env=e,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sb-ingest exited %s: %s" % (self.proc.returncode, self.logs()))
            try:
                if urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.admin,
                                          timeout=2).status == 200:
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError("sb-ingest not ready: " + self.logs())

    def logs(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = -9
        os.unlink(self.log.name)
        return rc

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)


def sign(secret, body, t=None):
    t = str(int(time.time()) if t is None else t)
    mac = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return "t=%s,v1=%s" % (t, mac)


def request(url, body=None, headers=None, method=None, timeout=30):
    """Returns (status, parsed JSON or text, headers)."""
    req = urllib.request.Request(url, data=body, headers=headers or {},
                                 method=method or ("POST" if body is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status, hdrs = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, dict(e.headers)
    try:
        return status, json.loads(raw), hdrs
    except ValueError:
        return status, raw.decode("utf-8", "replace"), hdrs


def post_signed(ingest, path, obj_or_bytes, secret, content_type="application/json",
                headers=None, t=None):
    body = obj_or_bytes if isinstance(obj_or_bytes, bytes) else \
        json.dumps(obj_or_bytes, ensure_ascii=False).encode()
    h = {"Content-Type": content_type, "X-SB-Signature": sign(secret, body, t)}
    h.update(headers or {})
    return request(ingest.url(path), body, h)


# Events older than the test run are never read (the topics outlive test runs).
START_MS = int(time.time() * 1000) - 60000


def consume(topic, timeout=20):
    """Every event produced to topic since this test run started, parsed."""
    out = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", topic, "-o", "s@%d" % START_MS, "-e",
                          "-q", "-f", "%k\\t%s\\n"],
                         capture_output=True, timeout=timeout, check=False).stdout
    events = []
    for line in out.decode("utf-8", "replace").splitlines():
        if "\t" not in line:
            continue
        key, value = line.split("\t", 1)
        try:
            ev = json.loads(value)
        except ValueError:
            continue
        ev["_key"] = key
        events.append(ev)
    return events


def wait_events(topic, pred, count=1, timeout=20):
    deadline = time.time() + timeout
    found = []
    while time.time() < deadline:
        found = [e for e in consume(topic) if pred(e)]
        if len(found) >= count:
            return found
        time.sleep(0.3)
    return found


def psql(sql, tz=None):
    """sql: one statement, or a list of them run in turn; tz: the session's TimeZone."""
    env = dict(os.environ, PGPASSWORD=PG["password"])
    if tz:
        env["PGTZ"] = tz
    cmds = []
    for s in ([sql] if isinstance(sql, str) else sql):
        cmds += ["-c", s]
    return subprocess.run(["psql", "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], "-d",
                           PG["db"], "-tAq", "-v", "ON_ERROR_STOP=1"] + cmds, env=env,
                          capture_output=True, text=True, check=True).stdout.strip()


def sbctl(*args):
    return subprocess.run([os.path.join(BIN, "sbctl")] + list(args), capture_output=True,
                          text=True, check=True).stdout.strip()


def kcat_available():
    return shutil.which("kcat") is not None


def request_oversize(url, body, headers):
    """Sends a body the server refuses before reading it (413): the server may close
    while the body is still being written, so the response is read after a failed send."""
    import http.client
    import urllib.parse
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.putrequest("POST", u.path)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    try:
        conn.send(body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        r = conn.getresponse()
        status, raw = r.status, r.read()
    except (ConnectionResetError, http.client.RemoteDisconnected):
        return None, None
    finally:
        conn.close()
    return status, json.loads(raw)


class StageService:
    """A stage service of build/bin (sb-triage, sb-reporter…) in a consumer group of its
    own. The group's first start begins at the end of the topics (what older runs left
    there is not the test's business): its offsets are committed at the end before the
    service starts, so nothing the test produces afterwards can be skipped; a restart
    in the same group resumes where it stopped. Ready once partitions are assigned. env
    overrides SB_* settings. SB_TEST_KEEP_LOGS=1 keeps its log file."""

    started_groups = set()

    def __init__(self, program, run_id, **env):
        self.program = program
        self.admin = free_port()
        group = "%s-test-%s" % (program, run_id)
        if group not in StageService.started_groups:
            sbctl("offsets", group, "--to", "end")
            StageService.started_groups.add(group)
        self.log = tempfile.NamedTemporaryFile(prefix=program + "-", suffix=".log", delete=False)
        # A free port for a stage that also serves HTTP (the reporter's read API).
        e = dict(os.environ, SB_ADMIN_PORT=str(self.admin), SB_LOG_LEVEL="info",
                 SB_KAFKA_GROUP=group, SB_HTTP_PORT=str(free_port()))
        e.update({k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen([os.path.join(BIN, program)], env=e, stdout=self.log,
                                     stderr=self.log, cwd=ROOT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(program + " exited: " + self.logs())
            if self.metric("sb_stage_assigned_partitions") > 0:
                return
            time.sleep(0.2)
        raise RuntimeError(program + " not ready: " + self.logs())

    def metric(self, name):
        """The value of a metric (summed over its series), -1 when unreachable."""
        try:
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin,
                                          timeout=2).read().decode()
        except OSError:
            return -1
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name + "{") or line.startswith(name + " "))

    def logs(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        """SIGTERM; returns the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        if os.environ.get("SB_TEST_KEEP_LOGS"):
            print("%s log: %s" % (self.program, self.log.name))
        else:
            os.unlink(self.log.name)
        return rc


def create_topics(names, group):
    """Creates topics for one test run only (3 partitions, an hour's retention) and commits
    the offsets of the consumer group that will read them at their end, so that its first
    start (StageService) misses nothing produced afterwards. On the shared topics the
    services of a running stack would act on a test's scripted tickets."""
    spec = {"version": 1, "defaults": {"partitions": 3, "replication_factor": 1,
                                       "retention_ms": 3600000, "cleanup_policy": "delete",
                                       "config": {}},
            "topics": [{"name": n, "key": "test", "events": []} for n in names]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        sbctl("topics", "create", "--file", f.name)
    finally:
        os.unlink(f.name)
    deadline = time.time() + 60
    while group not in StageService.started_groups:
        try:  # the new topics need their leaders first
            sbctl("offsets", group, "--to", "end")
            StageService.started_groups.add(group)
        except subprocess.CalledProcessError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
