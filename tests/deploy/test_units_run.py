#!/usr/bin/python3
"""The systemd units of deploy/systemd start the services on the local stack.

There is no systemd manager to hand the units to here, so this test does what the
manager would do with each unit, from the unit file itself: the environment of
Environment= and EnvironmentFile= (in that order, later files winning, `-` files
optional), WorkingDirectory=, ExecStart= (every ExecStart= line of a oneshot, in order),
then KillSignal= and TimeoutStopSec= at the end. Install paths are mapped onto the
checkout: /opt/switchboard/bin -> the built programs, /opt/switchboard -> the repository
root, /etc/switchboard -> a temporary directory holding the configuration of
deploy/systemd and environment files written by deploy/docker/gen-env.sh (random
secrets) plus the local stack's addresses.

Checked per built program: it starts, GET /readyz answers 200 through the container
health check script (deploy/docker/healthcheck.sh), /healthz and /metrics answer, and the
unit's KillSignal makes it exit 0 within TimeoutStopSec. sb-migrate.service applies the
migrations to a scratch database and creates the topics. sb-ingest with the unit's public
bind and development secrets refuses to start. Each consumer runs in a consumer group of
its own starting at the end of the topics, so other users of the stack are not
disturbed. Programs not built yet are skipped with a printed line.
"""
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("SB_REPO_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))
UNITS = os.path.join(ROOT, "deploy", "systemd")
RUN = secrets.token_hex(4)
BROKERS = os.environ.get("SB_KAFKA_BROKERS", "127.0.0.1:19092")
PG_DSN = os.environ.get("SB_PG_DSN", "postgresql://switchboard:switchboard@127.0.0.1:15432/switchboard")
REDIS = os.environ.get("SB_REDIS_URL", "redis://127.0.0.1:16379/0")
PROGRAMS = ["sb-ingest", "sb-triage", "sb-router", "sb-slawatch", "sb-reporter"]
CONSUMERS = {"sb-triage", "sb-router", "sb-slawatch", "sb-reporter"}


def bin_dir():
    for d in (os.environ.get("SB_BIN_DIR"), os.path.join(ROOT, "build", "bin")):
        if d and os.access(os.path.join(d, "sbctl"), os.X_OK):
            return d
    return os.environ.get("SB_BIN_DIR") or os.path.join(ROOT, "build", "bin")


BIN = bin_dir()


class Result:
    passed = 0
    failed = 0

    @classmethod
    def check(cls, cond, what, detail=""):
        if cond:
            cls.passed += 1
            print("ok:   " + what)
        else:
            cls.failed += 1
            print("FAIL: " + what + (("\n" + detail) if detail else ""))
        return cond


def free_port():
    while True:
        port = random.randint(20000, 45000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
                return port
            except OSError:
                continue


def reachable(hostport):
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def parse_unit(path):
    out = {}
    section = None
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            section = m.group(1)
            continue
        k, _, v = line.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def seconds(v, default):
    m = re.fullmatch(r"(\d+)(s|min)?", v or "")
    if not m:
        return default
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def read_env_file(path):
    env = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


class Host:
    """The mapped install: /etc/switchboard in a temporary directory."""

    def __init__(self, tmp):
        self.etc = os.path.join(tmp, "etc")
        os.makedirs(self.etc)
        shutil.copy(os.path.join(UNITS, "switchboard.json"), self.etc)
        # The secret files, as an operator makes them; then the local stack's addresses.
        r = subprocess.run(["bash", os.path.join(ROOT, "deploy/docker/gen-env.sh"), "--dir", self.etc],
                           capture_output=True, text=True, timeout=60)
        Result.check(r.returncode == 0, "deploy/docker/gen-env.sh writes the environment files", r.stderr)
        common = read_env_file(os.path.join(self.etc, "switchboard.env"))
        Result.check(all(common.get(k) for k in ("SB_PG_DSN", "SB_ADMIN_TOKEN")),
                     "switchboard.env has SB_PG_DSN and SB_ADMIN_TOKEN")
        common.update(SB_PG_DSN=PG_DSN, SB_KAFKA_BROKERS=BROKERS, SB_REDIS_URL=REDIS)
        self.write("switchboard.env", common)

    def write(self, name, env):
        with open(os.path.join(self.etc, name), "w", encoding="utf-8") as f:
            for k, v in env.items():
                f.write("%s=%s\n" % (k, v))

    def map(self, s):
        s = s.replace("/opt/switchboard/bin", BIN)
        s = s.replace("/etc/switchboard", self.etc)
        return s.replace("/opt/switchboard", ROOT)


def unit_environment(unit, host, instance):
    """What systemd would pass: a clean environment, Environment=, EnvironmentFile=."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    # A sanitizer build of the programs keeps the options the test suite runs them with.
    env.update({k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")})
    for item in unit.get(("Service", "Environment"), []):
        for word in shlex.split(item):
            k, _, v = word.partition("=")
            env[k] = host.map(v)
    for item in unit.get(("Service", "EnvironmentFile"), []):
        optional = item.startswith("-")
        path = host.map(item.lstrip("-").replace("%i", instance))
        if not os.path.exists(path):
            if not Result.check(optional, "required environment file %s exists" % item):
                return None
            continue
        env.update(read_env_file(path))
    return env


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=3) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError as e:
        return None, str(e)


def run_service(prog, host, tmp):
    unit_path = os.path.join(UNITS, prog + "@.service")
    unit = parse_unit(unit_path)
    instance = "1"
    admin = free_port()
    inst = {"SB_ADMIN_PORT": str(admin)}
    if prog in ("sb-ingest", "sb-reporter"):
        inst["SB_HTTP_PORT"] = str(free_port())
    if prog in CONSUMERS:
        inst["SB_KAFKA_GROUP"] = "%s-deploytest-%s" % (prog, RUN)
        inst["SB_RDKAFKA"] = "auto.offset.reset=latest"
    # The unit's optional per-instance file (EnvironmentFile=-/etc/switchboard/<prog>@%i.env).
    host.write("%s@%s.env" % (prog, instance), inst)
    env = unit_environment(unit, host, instance)
    if env is None:
        return
    Result.check(env.get("SB_ADMIN_PORT") == str(admin), "%s@1: the per-instance file overrides the unit's admin port" % prog)
    cwd = host.map(unit[("Service", "WorkingDirectory")][0])
    argv = [host.map(a) for a in shlex.split(unit[("Service", "ExecStart")][0].replace("%i", instance))]
    kill = getattr(signal, unit.get(("Service", "KillSignal"), ["SIGTERM"])[0])
    stop_s = seconds(unit.get(("Service", "TimeoutStopSec"), [""])[0], 90)
    start_s = seconds(unit.get(("Service", "TimeoutStartSec"), [""])[0], 90)
    log = open(os.path.join(tmp, prog + ".log"), "w+", encoding="utf-8")
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=log, process_group=0)
    try:
        deadline = time.time() + start_s
        ready = False
        hc_env = dict(env, SB_HEALTH_TIMEOUT_S="2")
        while time.time() < deadline and proc.poll() is None:
            r = subprocess.run(["bash", os.path.join(ROOT, "deploy/docker/healthcheck.sh")], env=hc_env,
                               capture_output=True, text=True, timeout=10)
            if r.returncode == 0:
                ready = True
                break
            time.sleep(0.3)
        log.flush()
        log.seek(0)
        Result.check(ready, "%s@1 (%s) starts and /readyz answers 200 (healthcheck.sh)" % (prog, " ".join(argv)),
                     log.read()[-3000:])
        if ready:
            st, _ = get(admin, "/healthz")
            Result.check(st == 200, "%s@1: /healthz answers 200" % prog)
            st, body = get(admin, "/metrics")
            Result.check(st == 200 and "sb_" in body, "%s@1: /metrics answers with sb_ metrics" % prog)
            if prog in CONSUMERS:
                Result.check("sb_stage_messages_total" in body, "%s@1: the stage metrics are exported" % prog)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, kill)
            try:
                rc = proc.wait(stop_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait(10)
                rc = "killed after %ds" % stop_s
        else:
            rc = "exited early with %s" % proc.returncode
        log.flush()
        log.seek(0)
        Result.check(rc == 0, "%s@1 stops on %s with exit 0 within TimeoutStopSec=%ds (got %s)" % (prog, kill.name, stop_s, rc),
                     log.read()[-2000:])
        log.close()


def ingest_refuses_dev_secrets(host, tmp):
    unit = parse_unit(os.path.join(UNITS, "sb-ingest@.service"))
    host.write("sb-ingest@9.env", {"SB_ADMIN_PORT": str(free_port()), "SB_HTTP_PORT": str(free_port()),
                                  "SB_SECRET_CHAT": "dev-secret-chat"})
    env = unit_environment(unit, host, "9")
    argv = [host.map(a) for a in shlex.split(unit[("Service", "ExecStart")][0])]
    r = subprocess.run(argv, env=env, cwd=host.map(unit[("Service", "WorkingDirectory")][0]),
                       capture_output=True, text=True, timeout=30)
    Result.check(r.returncode == 2 and "secrets.chat" in r.stderr,
                 "sb-ingest with the unit's public bind refuses a development secret (exit %s: %s)"
                 % (r.returncode, r.stderr.strip()[-200:]))
    restart_prevent = unit.get(("Service", "RestartPreventExitStatus"), [""])[0].split()
    Result.check(str(r.returncode) in restart_prevent,
                 "the unit does not restart on that configuration error (RestartPreventExitStatus=%s)" % " ".join(restart_prevent))


def psql(dsn, sql):
    return subprocess.run(["psql", dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tAc", sql],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))


def run_migrate(host):
    unit = parse_unit(os.path.join(UNITS, "sb-migrate.service"))
    db = "sb_deploy_%s" % RUN
    u = urllib.parse.urlsplit(PG_DSN)
    scratch = urllib.parse.urlunsplit(u._replace(path="/" + db))
    admin_dsns = [PG_DSN, urllib.parse.urlunsplit(u._replace(netloc="postgres@%s" % u.netloc.split("@")[-1]))]
    made = None
    for dsn in admin_dsns:
        if psql(dsn, "CREATE DATABASE %s OWNER switchboard" % db).returncode == 0 or \
                psql(dsn, "CREATE DATABASE %s" % db).returncode == 0:
            made = dsn
            break
    if not Result.check(made is not None, "a scratch database for sb-migrate.service"):
        return
    try:
        env = unit_environment(unit, host, "")
        env["SB_PG_DSN"] = scratch
        cwd = host.map(unit[("Service", "WorkingDirectory")][0])
        timeout = seconds(unit.get(("Service", "TimeoutStartSec"), [""])[0], 600)
        for line in unit[("Service", "ExecStart")]:
            argv = [host.map(a) for a in shlex.split(line)]
            r = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
            Result.check(r.returncode == 0, "sb-migrate.service: %s" % " ".join(shlex.split(line)),
                         (r.stdout + r.stderr)[-2000:])
            print("      " + (r.stdout.strip().splitlines() or [""])[-1])
        r = psql(scratch, "SELECT count(*) FROM schema_migrations")
        files = len([f for f in os.listdir(os.path.join(ROOT, "deploy/sql")) if re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", f)])
        Result.check(r.returncode == 0 and r.stdout.strip() == str(files),
                     "the scratch database has every migration (%s of %d)" % (r.stdout.strip(), files))
    finally:
        psql(made, "DROP DATABASE IF EXISTS %s" % db)


def main():
    for what, ok in (("Kafka %s" % BROKERS, reachable(BROKERS.split(",")[0])),
                     ("PostgreSQL 127.0.0.1:15432", reachable("127.0.0.1:15432")),
                     ("Redis 127.0.0.1:16379", reachable("127.0.0.1:16379"))):
        if not ok:
            print("FAIL: %s is not reachable: start the local stack (deploy/local/stack.sh up)" % what)
            print("0 passed, 1 failed")
            return 1
    with tempfile.TemporaryDirectory(prefix="sb-units-") as tmp:
        host = Host(tmp)
        if os.access(os.path.join(BIN, "sbctl"), os.X_OK):
            run_migrate(host)
        else:
            print("skip: sbctl is not built: sb-migrate.service not run")
        for prog in PROGRAMS:
            if not os.access(os.path.join(BIN, prog), os.X_OK):
                print("skip: %s is not built yet: its unit is not started" % prog)
                continue
            run_service(prog, host, tmp)
        if os.access(os.path.join(BIN, "sb-ingest"), os.X_OK):
            ingest_refuses_dev_secrets(host, tmp)
    print("%d passed, %d failed" % (Result.passed, Result.failed))
    return 1 if Result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
