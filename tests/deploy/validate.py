#!/usr/bin/python3
"""Validation of the deployment files against the real programs.

    validate.py [--root DIR] [--bin DIR] CHECK...

CHECK is one of parse, compose, dockerfile, k8s, prometheus, grafana, systemd, docs, or
all. Each prints one line per finding and a closing "N passed, N failed" line; the exit
status is 1 when anything failed.

What "the real programs" means: every command line, flag, configuration key and
environment variable used by docker-compose.yml, deploy/k8s and deploy/systemd is checked
against the `--help` of the built program ($SB_BIN_DIR, else build/bin of the root); a
program that is not built yet is skipped with a printed line. Ports come from
deploy/local/services.sh (the DESIGN.md admin ports). Metric names come from the
inventory deploy/prometheus/metrics.yml, whose available metrics are looked up in the C
sources that register them.

Standard library, PyYAML and jsonschema only. promtool (Debian package prometheus) and
systemd-analyze (package systemd) are used when installed; otherwise a structural check
runs instead and says so.
"""
import argparse
import fnmatch
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = ["sb-ingest", "sb-triage", "sb-router", "sb-slawatch", "sb-reporter"]
HTTP_PORTS = {"sb-ingest": 8080, "sb-reporter": 8081}  # DESIGN.md "Local stack"
DEV_SECRET = re.compile(r"dev-secret-[a-z]+|dev-wechat-token|dev-admin-token")
SECRET_ENV = {"SB_SECRET_API", "SB_SECRET_EMAIL", "SB_SECRET_CHAT", "SB_SECRET_SOCIAL",
              "SB_SECRET_PHONE", "SB_WECHAT_TOKEN", "SB_ADMIN_TOKEN", "SB_PG_DSN",
              "POSTGRES_PASSWORD", "GF_SECURITY_ADMIN_PASSWORD"}
# Environment variables the programs read outside their option tables.
EXTRA_ENV = {"SB_REPO_ROOT", "SB_SQL_DIR"}
# DESIGN.md secrets that the deployments carry although no program of this version reads
# them (reported as a note, not a failure).
DESIGN_ONLY_ENV = {"SB_ADMIN_TOKEN"}
INFRA_COMPOSE = {"kafka-1", "kafka-2", "kafka-3", "postgres", "redis", "init", "gateway",
                 "prometheus", "blackbox", "kafka-exporter", "grafana"}
HARDENING = ["NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
             "CapabilityBoundingSet", "RestrictAddressFamilies", "SystemCallFilter",
             "ProtectKernelTunables", "ProtectControlGroups"]


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, what):
        self.passed += 1
        print("ok:   " + what)

    def fail(self, what):
        self.failed += 1
        print("FAIL: " + what)

    def check(self, cond, what, why=""):
        if cond:
            self.ok(what)
        else:
            self.fail(what + (": " + why if why else ""))
        return cond

    def skip(self, what):
        print("skip: " + what)

    def errors(self, what, errs):
        """One result for a list of problems (empty: passed)."""
        if errs:
            for e in errs:
                self.fail("%s: %s" % (what, e))
        else:
            self.ok(what)


# ------------------------------------------------------------------ loading
class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (PyYAML keeps the last one silently)."""


def _construct_mapping(loader, node, deep=False):
    # Keys written twice in one mapping are refused; a key that overrides one brought in
    # by a merge (<<: *anchor) is the point of the merge and is allowed.
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), key_node.start_mark)
        seen.add(key)
    loader.flatten_mapping(node)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=UniqueKeyLoader) if d is not None]


def load_yaml(path):
    docs = load_yaml_all(path)
    if len(docs) != 1:
        raise ValueError("%s: expected one YAML document, found %d" % (path, len(docs)))
    return docs[0]


def _no_dup_pairs(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key %r" % k)
        d[k] = v
    return d


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=_no_dup_pairs)


# ------------------------------------------------------------------ the programs
class Programs:
    """--help of the built programs: flags, configuration keys, environment names."""

    def __init__(self, root, bindir):
        self.root = root
        self.bindirs = [bindir] if bindir else []
        fallback = os.path.join(root, "build", "bin")
        if fallback not in self.bindirs:
            self.bindirs.append(fallback)
        self.cache = {}

    def path(self, prog):
        for i, d in enumerate(self.bindirs):
            p = os.path.join(d, prog)
            if os.access(p, os.X_OK):
                if i > 0 and prog not in self.cache:
                    self.cache[prog] = p
                    print("note: %s taken from %s (not in %s)" % (prog, d, self.bindirs[0]))
                return p
        return None

    def help(self, prog, *args):
        key = (prog,) + args
        if key not in self.cache:
            p = self.path(prog)
            if p is None:
                self.cache[key] = None
            else:
                r = subprocess.run([p] + list(args) + ["--help"], capture_output=True, text=True,
                                   timeout=20, cwd=self.root)
                self.cache[key] = r.stdout + r.stderr if r.returncode == 0 else None
        return self.cache[key]

    def service_spec(self, prog):
        """(flags, {key: env}) of a service, or None when not built."""
        text = self.help(prog)
        if text is None:
            return None
        usage = text.splitlines()[0]
        flags = set(re.findall(r"--[a-z][a-z-]*", usage))
        keys = {}
        for m in re.finditer(r"^  ([a-z_][a-z0-9_.]*)\s+(string|integer|number|boolean|object)\s+env (SB_[A-Z0-9_]+)",
                             text, re.M):
            keys[m.group(1)] = m.group(3)
        return flags, keys

    def sbctl_spec(self):
        """(commands, global flags, global value flags, env names) from sbctl --help, or
        None. commands: {name: {"subs": set, "flags": set, "value_flags": set}}."""
        text = self.help("sbctl")
        if text is None:
            return None
        commands, gflags, gvalue = {}, set(), set()
        section = None
        for line in text.splitlines():
            if line.startswith("Commands:"):
                section = "c"
                continue
            if line.startswith("Options:"):
                section = "o"
                continue
            if section == "c" and line.startswith("  ") and line.strip():
                left = re.split(r"\s{2,}", line.strip())[0]
                toks = left.split()
                c = commands.setdefault(toks[0], {"subs": set(), "flags": set(), "value_flags": set()})
                for t in toks[1:]:
                    if re.fullmatch(r"[a-z]+(\|[a-z]+)*", t):
                        c["subs"].update(t.split("|"))
                for m in re.finditer(r"(--[a-z][a-z-]*)(?:[ =]([A-Z][A-Z_]*))?", left):
                    c["flags"].add(m.group(1))
                    if m.group(2):
                        c["value_flags"].add(m.group(1))
            if section == "o":
                for m in re.finditer(r"(?<![\w-])(--?[a-z][a-z-]*)(?:[ =]([A-Z][A-Z_]*))?", line.split("  (")[0]):
                    gflags.add(m.group(1))
                    if m.group(2):
                        gvalue.add(m.group(1))
        env = set(re.findall(r"SB_[A-Z_]+", text))
        return commands, gflags, gvalue, env


def check_command(rep, progs, where, argv):
    """Checks one command line (a list, or ["sh", "-c", "a && b"]) against --help."""
    if not argv:
        rep.fail("%s: empty command" % where)
        return
    if argv[0] in ("sh", "bash", "/bin/sh", "/bin/bash") and len(argv) >= 3 and argv[1] in ("-c", "-ec"):
        for part in re.split(r"&&|\|\||;|\n", argv[2]):
            part = part.strip()
            if part:
                check_command(rep, progs, where, shlex.split(part))
        return
    prog = os.path.basename(argv[0])
    if prog == "sbctl":
        spec = progs.sbctl_spec()
        if spec is None:
            rep.skip("%s: sbctl is not built: its command line is not checked" % where)
            return
        commands, gflags, gvalue, _ = spec
        errs, words, k = [], [], 1
        cmd = None
        while k < len(argv):
            a = argv[k]
            flag = a.split("=", 1)[0]
            if a.startswith("-"):
                sub = commands.get(cmd, {}) if cmd else {}
                if flag in gflags or flag in sub.get("flags", set()):
                    if "=" not in a and (flag in gvalue or flag in sub.get("value_flags", set())):
                        k += 1
                else:
                    errs.append("unknown flag %s%s" % (flag, " for sbctl " + cmd if cmd else ""))
            else:
                words.append(a)
                if cmd is None:
                    cmd = a
            k += 1
        if cmd not in commands:
            errs.append("sbctl has no command %r" % cmd)
        elif commands[cmd]["subs"]:
            if len(words) < 2 or words[1] not in commands[cmd]["subs"]:
                errs.append("sbctl %s takes %s, not %r" % (cmd, "|".join(sorted(commands[cmd]["subs"])),
                                                           words[1] if len(words) > 1 else None))
        rep.errors("%s: `%s` matches sbctl --help" % (where, " ".join(argv)), errs)
        return
    if prog in PROGRAMS:
        spec = progs.service_spec(prog)
        if spec is None:
            rep.skip("%s: %s is not built yet: its flags are not checked" % (where, prog))
            return
        flags, _ = spec
        errs = ["unknown flag %s" % a.split("=", 1)[0] for a in argv[1:]
                if a.startswith("-") and a.split("=", 1)[0] not in flags]
        rep.errors("%s: `%s` flags appear in %s --help" % (where, " ".join(argv), prog), errs)
        return
    rep.fail("%s: %s is not a Switchboard program" % (where, argv[0]))


def check_env_names(rep, progs, where, prog, names):
    """Every SB_* variable given to a program is one it reads."""
    names = [n for n in names if n.startswith("SB_")]
    if prog == "sbctl":
        spec = progs.sbctl_spec()
        if spec is None:
            rep.skip("%s: sbctl not built: environment names not checked" % where)
            return
        known = spec[3] | EXTRA_ENV
    else:
        spec = progs.service_spec(prog)
        if spec is None:
            rep.skip("%s: %s is not built yet: environment names not checked" % (where, prog))
            return
        known = set(spec[1].values()) | EXTRA_ENV
    for n in sorted(set(names) & DESIGN_ONLY_ENV - known):
        print("note: %s: %s (DESIGN.md) is read by no option of %s" % (where, n, prog))
    rep.errors("%s: environment names are options of %s" % (where, prog),
               ["%s is not read by %s" % (n, prog) for n in names if n not in known | DESIGN_ONLY_ENV])


def check_config_keys(rep, progs, where, prog, cfg):
    """Every key of a --config JSON file is an option of the program."""
    spec = progs.service_spec(prog)
    if spec is None:
        rep.skip("%s: %s is not built yet: config keys not checked" % (where, prog))
        return
    _, keys = spec
    found = []

    def walk(obj, prefix):
        for k, v in obj.items():
            name = prefix + k
            if name in keys:
                found.append(name)
            elif isinstance(v, dict):
                walk(v, name + ".")
            else:
                found.append("!" + name)
    walk(cfg, "")
    rep.errors("%s: keys are options of %s" % (where, prog),
               ["unknown key %s" % k[1:] for k in found if k.startswith("!")])


def http_port(progs, prog):
    """The DESIGN.md HTTP port of a program that serves a public API: None when the
    built program has no http.port option (or the program has none in DESIGN.md)."""
    spec = progs.service_spec(prog)
    if spec is not None and "http.port" not in spec[1]:
        return None
    return HTTP_PORTS.get(prog)


def design_ports(root):
    """Admin ports of DESIGN.md, as deploy/local/services.sh lists them."""
    text = open(os.path.join(root, "deploy/local/services.sh"), encoding="utf-8").read()
    m = re.search(r"^services=\(([^)]*)\)", text, re.M)
    ports = {}
    for item in m.group(1).split():
        name, port = item.split(":")
        ports["sb-" + name] = int(port)
    return ports


# ------------------------------------------------------------------ parse
def deploy_files(root):
    pats = ["docker-compose.yml", "deploy/docker/**/*", "deploy/k8s/**/*", "deploy/systemd/**/*",
            "deploy/grafana/**/*", "deploy/prometheus/**/*", "tests/deploy/**/*"]
    out = []
    for p in pats:
        out.extend(f for f in glob.glob(os.path.join(root, p), recursive=True) if os.path.isfile(f))
    return sorted(set(out))


def check_parse(rep, root, progs):
    n = 0
    for f in deploy_files(root):
        rel = os.path.relpath(f, root)
        try:
            if f.endswith((".yml", ".yaml")):
                load_yaml_all(f)
            elif f.endswith(".json") or f.endswith(".json.example"):
                load_json(f)
            else:
                continue
            n += 1
        except Exception as e:  # noqa: BLE001 - any parse error is the finding
            rep.fail("%s parses: %s" % (rel, str(e).splitlines()[0] if str(e) else type(e).__name__))
    rep.check(n > 0, "%d YAML/JSON files parse (duplicate keys refused)" % n)


# ------------------------------------------------------------------ env files
def env_file_keys(path):
    keys = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.append(line.split("=", 1)[0])
    return keys


def check_env_example(rep, root, rel):
    """rel is an env file that must not be committed: its .example documents it."""
    ex = os.path.join(root, rel + ".example")
    if not rep.check(os.path.isfile(ex), "%s is documented by %s.example" % (rel, rel)):
        return []
    text = open(ex, encoding="utf-8").read()
    rep.check(not DEV_SECRET.search(text), "%s.example has no development default" % rel)
    d = os.path.dirname(os.path.join(root, rel))
    gi = os.path.join(d, ".gitignore")
    ignored = os.path.isfile(gi) and any(
        fnmatch.fnmatch(os.path.basename(rel), p.strip()) for p in open(gi, encoding="utf-8")
        if p.strip() and not p.startswith("#"))
    rep.check(ignored, "%s is git-ignored (%s)" % (rel, os.path.relpath(gi, root)))
    return env_file_keys(ex)


# ------------------------------------------------------------------ compose
def check_compose(rep, root, progs):
    path = os.path.join(root, "docker-compose.yml")
    text = open(path, encoding="utf-8").read()
    doc = load_yaml(path)
    schema = load_json(os.path.join(HERE, "schemas", "compose-spec.json"))
    errs = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    rep.errors("docker-compose.yml is valid against the Compose Specification schema",
               ["%s: %s" % ("/".join(map(str, e.absolute_path)), e.message[:200]) for e in errs])
    services = doc.get("services", {})
    ports = design_ports(root)

    # The service list: the five programs of DESIGN.md plus the infrastructure.
    by_prog = {}
    for name, s in services.items():
        cmd = s.get("command")
        if isinstance(cmd, list) and cmd and os.path.basename(cmd[0]).startswith("sb-"):
            by_prog.setdefault(os.path.basename(cmd[0]), []).append(name)
    rep.check(sorted(by_prog) == sorted(PROGRAMS) and all(len(v) == 1 for v in by_prog.values()),
              "compose runs exactly the five programs once each: " + ", ".join(sorted(by_prog)),
              "expected %s" % ", ".join(PROGRAMS))
    others = set(services) - {n for v in by_prog.values() for n in v}
    rep.check(others <= INFRA_COMPOSE, "the other compose services are infrastructure",
              "unexpected: %s" % ", ".join(sorted(others - INFRA_COMPOSE)))
    kafka = [n for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka:")]
    rep.check(len(kafka) == 3, "three Kafka brokers (%s)" % ", ".join(kafka))
    for n in kafka:
        img = services[n]["image"]
        rep.check(re.fullmatch(r"apache/kafka:4\.\d+\.\d+", img) is not None,
                  "%s: image %s is a pinned Kafka 4.x" % (n, img))
        env = services[n].get("environment", {})
        rep.check("broker" in env.get("KAFKA_PROCESS_ROLES", "") and "controller" in env.get("KAFKA_PROCESS_ROLES", ""),
                  "%s runs KRaft (broker and controller roles)" % n)
        voters = env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "")
        rep.check("%s@%s:" % (env.get("KAFKA_NODE_ID"), n) in voters,
                  "%s: node id %s is in the quorum voters" % (n, env.get("KAFKA_NODE_ID")))
    for n in ("postgres", "redis"):
        rep.check(n in services, "compose has %s" % n)
    rep.check(str(services.get("postgres", {}).get("image", "")).startswith("postgres:15"), "PostgreSQL 15")
    rep.check(str(services.get("redis", {}).get("image", "")).startswith("redis:7"), "Redis 7")
    for n, s in services.items():
        img = s.get("image", "")
        rep.check(":" in img and not img.endswith(":latest"), "%s: image %s is pinned" % (n, img))

    # The init job: migrations and topics with sbctl, once.
    init = services.get("init", {})
    check_command(rep, progs, "compose init", init.get("command", []))
    cmdtext = " ".join(init.get("command", []))
    rep.check("sbctl migrate" in cmdtext and "sbctl topics create" in cmdtext,
              "init runs sbctl migrate and sbctl topics create")
    rep.check(init.get("restart") == "no", "init is one-shot (restart: \"no\")")

    # Every program: command flags, environment names, healthcheck, scaling, ports.
    published = []
    for n, s in services.items():
        for p in s.get("ports", []):
            host = str(p).rsplit(":", 1)[0] if isinstance(p, (str, int)) else str(p.get("published"))
            published.append((n, host))
    for prog in PROGRAMS:
        for n in by_prog.get(prog, []):
            s = services[n]
            check_command(rep, progs, "compose %s" % n, s["command"])
            env = s.get("environment", {})
            if isinstance(env, list):
                env = dict(e.split("=", 1) for e in env)
            check_env_names(rep, progs, "compose %s" % n, prog, list(env))
            rep.check(str(env.get("SB_ADMIN_PORT")) == str(ports[prog]),
                      "compose %s: admin port %s as in DESIGN.md" % (n, env.get("SB_ADMIN_PORT")))
            hp = http_port(progs, prog)
            if hp:
                rep.check(str(env.get("SB_HTTP_PORT")) == str(hp) and env.get("SB_HTTP_BIND") not in (None, "127.0.0.1"),
                          "compose %s: HTTP on %s:%s as in DESIGN.md" % (n, env.get("SB_HTTP_BIND"), env.get("SB_HTTP_PORT")))
            else:
                rep.check("SB_HTTP_PORT" not in env, "compose %s: no HTTP port for a program without an HTTP API" % n)
            hc = s.get("healthcheck") or {}
            rep.check(bool(hc.get("test")) and not hc.get("disable"), "compose %s has a healthcheck" % n)
            rep.check("container_name" not in s, "compose %s has no container_name (scalable)" % n)
            rep.check(not s.get("ports"), "compose %s publishes no host port (scalable)" % n)
            for cfg in s.get("configs", []):
                src = cfg["source"] if isinstance(cfg, dict) else cfg
                f = doc.get("configs", {}).get(src, {}).get("file")
                if f and f.endswith(".json"):
                    check_config_keys(rep, progs, "compose %s config %s" % (n, f), prog,
                                      load_json(os.path.join(root, f)))
    for n, s in services.items():
        if n == "init":
            continue
        hc = s.get("healthcheck") or {}
        rep.check(bool(hc.get("test")) and not hc.get("disable"), "compose %s has a healthcheck" % n)
    hosts = [h for _, h in published]
    rep.check(len(hosts) == len(set(hosts)), "published host ports do not clash: %s" % ", ".join(hosts))

    # Secrets: only through env files, no development defaults anywhere.
    rep.check(not DEV_SECRET.search(text), "docker-compose.yml has no development default secret")
    inline = []
    for n, s in services.items():
        env = s.get("environment", {}) or {}
        names = list(env) if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        inline += ["%s sets %s inline" % (n, k) for k in names if k in SECRET_ENV]
    rep.errors("secrets come only from env_file", inline)
    needed, per_service = {}, {}
    for n, s in services.items():
        for ef in s.get("env_file", []) or []:
            rel = os.path.normpath(ef["path"] if isinstance(ef, dict) else ef)
            needed[rel] = n
            per_service.setdefault(n, []).append(rel)
    gen = open(os.path.join(root, "deploy/docker/gen-env.sh"), encoding="utf-8").read()
    for rel in sorted(needed):
        keys = check_env_example(rep, root, rel)
        rep.check(os.path.basename(rel) in gen and all(k + "=" in gen for k in keys),
                  "deploy/docker/gen-env.sh writes %s with %s" % (rel, ", ".join(keys)))
    ingest_env = [k for rel in per_service.get(by_prog.get("sb-ingest", [""])[0], [])
                  if os.path.isfile(os.path.join(root, rel + ".example"))
                  for k in env_file_keys(os.path.join(root, rel + ".example"))]
    for k in ("SB_SECRET_API", "SB_SECRET_EMAIL", "SB_SECRET_CHAT", "SB_SECRET_SOCIAL",
              "SB_SECRET_PHONE", "SB_WECHAT_TOKEN", "SB_PG_DSN"):
        rep.check(k in ingest_env, "ingest gets %s from an env file" % k)
    spec = progs.service_spec("sb-ingest")
    if spec:
        secret_envs = {v for k, v in spec[1].items() if k.startswith("secrets.")}
        rep.check(secret_envs <= set(ingest_env), "every secret option of sb-ingest is in its env files",
                  "missing %s" % ", ".join(sorted(secret_envs - set(ingest_env))))

    # Files the compose file mounts or reads exist.
    missing = []
    for c in doc.get("configs", {}).values():
        if c.get("file") and not os.path.exists(os.path.join(root, c["file"])):
            missing.append(c["file"])
    for n, s in services.items():
        for v in s.get("volumes", []):
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith("./") and not os.path.exists(os.path.join(root, src)):
                missing.append(src)
        b = s.get("build")
        if b and not os.path.isfile(os.path.join(root, b.get("context", "."), b.get("dockerfile", "Dockerfile"))):
            missing.append(b.get("dockerfile"))
        for dep in (s.get("depends_on") or {}):
            if dep not in services:
                missing.append("service %s (depends_on of %s)" % (dep, n))
    rep.errors("every file and service the compose file refers to exists", missing)

    # The gateway's nginx configuration, with nginx's own check when nginx is installed.
    gw = [c.get("file") for c in doc.get("configs", {}).values() if str(c.get("file", "")).endswith("nginx.conf")]
    if gw and shutil.which("nginx"):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(os.path.join(root, gw[0]), os.path.join(tmp, "nginx.conf"))
            r = subprocess.run(["nginx", "-t", "-q", "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp + "/"],
                               capture_output=True, text=True, timeout=30)
            rep.check(r.returncode == 0, "nginx -t %s" % gw[0], (r.stdout + r.stderr).strip()[-600:])
    elif gw:
        rep.skip("nginx not installed (Debian package nginx-light): %s not checked by nginx" % gw[0])
    if gw:
        conf = open(os.path.join(root, gw[0]), encoding="utf-8").read()
        rep.check("ingest:%d" % HTTP_PORTS["sb-ingest"] in conf, "the gateway forwards to ingest:%d" % HTTP_PORTS["sb-ingest"])

    # Prometheus of the compose stack scrapes every program on its admin port.
    prom = load_yaml(os.path.join(root, "deploy/prometheus/prometheus.yml"))
    jobs = {j["job_name"]: j for j in prom.get("scrape_configs", [])}
    for prog in PROGRAMS:
        j = jobs.get(prog, {})
        sd = [c for c in j.get("dns_sd_configs", [])]
        svc = by_prog.get(prog, ["?"])[0]
        rep.check(any(svc in c.get("names", []) and c.get("port") == ports[prog] for c in sd),
                  "prometheus.yml scrapes %s (compose service %s) on port %d" % (prog, svc, ports[prog]))


# ------------------------------------------------------------------ Dockerfile
def dockerfile_stages(text):
    text = re.sub(r"\\\n", " ", text)
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            stages.append({"from": m.group(1), "name": m.group(2), "ins": []})
        elif stages:
            stages[-1]["ins"].append((word, rest))
        else:
            stages.append({"from": None, "name": "(args)", "ins": [(word, rest)]})
    return stages


def apt_packages(run):
    m = re.search(r"apt-get install ([^&]*)", run)
    return [w for w in m.group(1).split() if not w.startswith("-")] if m else []


def dockerignore_patterns(root):
    path = os.path.join(root, ".dockerignore")
    if not os.path.isfile(path):
        return []
    return [p.strip() for p in open(path, encoding="utf-8") if p.strip() and not p.startswith("#")]


def ignored(rel, patterns):
    """A subset of Docker's .dockerignore matching: glob per path, ** for any depth,
    a pattern excludes a directory and everything below it, ! re-includes."""
    out = False
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for p in patterns:
        neg = p.startswith("!")
        pat = p[1:] if neg else p
        pat = pat.strip("/")
        rx = "^" + re.escape(pat).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*") \
            .replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$"
        if any(re.match(rx, pre) for pre in prefixes):
            out = not neg
    return out


def elf_needed(path):
    r = subprocess.run(["readelf", "-d", path], capture_output=True, text=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout)


def package_of_soname(binary, soname):
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    m = re.search(r"^\s*" + re.escape(soname) + r" => (\S+)", r.stdout, re.M)
    if not m:
        return None
    real = os.path.realpath(m.group(1))
    for cand in (m.group(1), real, real.replace("/usr/lib/", "/lib/", 1), "/usr" + real if real.startswith("/lib/") else real):
        q = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
        if q.returncode == 0:
            return q.stdout.split(":", 1)[0].strip()
    return None


def depends_of(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", pkg], capture_output=True, text=True)
    return set(re.findall(r"(?:^|, |\| )([a-z0-9][a-z0-9.+-]+)", r.stdout))


def check_dockerfile(rep, root, progs):
    path = os.path.join(root, "deploy/docker/Dockerfile")
    stages = [s for s in dockerfile_stages(open(path, encoding="utf-8").read()) if s["from"]]
    args = {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r"ARG (\w+)=(\S+)", line.strip())
        if m:
            args[m.group(1)] = m.group(2)

    def base(s):
        return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), "?"), s["from"])
    if not rep.check(len(stages) >= 2, "Dockerfile is multi-stage (%d stages)" % len(stages)):
        return
    build, runtime = stages[0], stages[-1]
    rep.check(base(build) == "debian:bookworm", "build stage FROM %s is Debian bookworm" % base(build))
    rep.check(base(runtime) == "debian:bookworm-slim", "runtime stage FROM %s is bookworm-slim" % base(runtime))
    build_pkgs = [p for word, rest in build["ins"] if word == "RUN" for p in apt_packages(rest)]
    setup = open(os.path.join(root, "deploy/setup.sh"), encoding="utf-8").read()
    m = re.search(r"^packages=\((.*?)^\)", setup, re.S | re.M)
    setup_pkgs = [w for line in m.group(1).splitlines() for w in line.split("#")[0].split()]
    want = sorted(p for p in setup_pkgs if p.endswith("-dev"))
    have = sorted(p for p in build_pkgs if p.endswith("-dev"))
    rep.check(want == have, "build stage installs the -dev packages of deploy/setup.sh",
              "missing %s, extra %s" % (sorted(set(want) - set(have)), sorted(set(have) - set(want))))
    rt_pkgs = [p for word, rest in runtime["ins"] if word == "RUN" for p in apt_packages(rest)]
    rep.check(not any(p.endswith("-dev") for p in rt_pkgs) and "build-essential" not in rt_pkgs,
              "runtime stage installs no -dev package or compiler")
    users = [rest for word, rest in runtime["ins"] if word == "USER"]
    rep.check(bool(users) and users[-1].split(":")[0] not in ("root", "0"),
              "runtime stage runs as a non-root user (%s)" % (users[-1] if users else "none"))
    hc = [rest for word, rest in runtime["ins"] if word == "HEALTHCHECK"]
    script = os.path.join(root, "deploy/docker/healthcheck.sh")
    rep.check(bool(hc) and "switchboard-healthcheck" in hc[0], "runtime stage has a HEALTHCHECK")
    stext = open(script, encoding="utf-8").read()
    ports = design_ports(root)
    rep.check("/readyz" in stext and all("%s) echo %d" % (p, n) in stext for p, n in ports.items()),
              "healthcheck.sh asks /readyz on the admin port of each program (9101-9105)")
    rep.check(os.access(script, os.X_OK), "healthcheck.sh is executable")
    # COPY sources exist and are in the build context.
    pats = dockerignore_patterns(root)
    rep.check(bool(pats), ".dockerignore exists")
    for p in (".git", "build", "build-asan", ".sb-local", "deploy/kafka/lib", "deploy/docker/env/ingest.env",
              "deploy/k8s/secrets/switchboard.env"):
        rep.check(ignored(p, pats), ".dockerignore keeps %s out of the build context" % p)
    copies = []
    for s in stages:
        for word, rest in s["ins"]:
            if word == "COPY" and "--from=" not in rest:
                words = [w for w in rest.split() if not w.startswith("--")]
                copies += words[:-1]
    errs = []
    for src in copies:
        rel = src.rstrip("/")
        if rel == ".":
            continue
        if not os.path.exists(os.path.join(root, rel)):
            errs.append("%s does not exist" % src)
        elif ignored(rel, pats):
            errs.append("%s is excluded by .dockerignore" % src)
    rep.errors("every COPY source exists and is in the build context", errs)
    for need in ("deploy/config", "deploy/sql", "proto/topics.json"):
        rep.check(any(c.rstrip("/") == need for c in copies), "the image carries %s" % need)
    for need in ("CMakeLists.txt", "common/src/stage.c", "deploy/config/triage-rules.json",
                 "deploy/config/triage-model.tsv", "tests/CMakeLists.txt"):
        rep.check(not ignored(need, pats), "the build context has %s" % need)
    # Every shared library the built programs need comes from a runtime package.
    if not (shutil.which("readelf") and shutil.which("dpkg")):
        rep.skip("readelf or dpkg missing: runtime libraries not checked")
        return
    allowed = set(rt_pkgs) | {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}
    for p in rt_pkgs:
        allowed |= depends_of(p)
    for prog in PROGRAMS + ["sbctl"]:
        exe = progs.path(prog)
        if exe is None:
            rep.skip("%s is not built: its libraries are not checked" % prog)
            continue
        errs = []
        for so in elf_needed(exe):
            if re.match(r"lib(asan|ubsan|lsan|tsan|hwasan)\.so", so):
                print("note: %s links %s: a sanitizer build; the image builds without" % (prog, so))
                continue
            pkg = package_of_soname(exe, so)
            if pkg is None:
                errs.append("no Debian package found for %s" % so)
            elif pkg.split(":")[0] not in allowed:
                errs.append("%s (%s) is not installed by the runtime stage" % (so, pkg))
        rep.errors("runtime stage provides every library %s needs" % prog, errs)


# ------------------------------------------------------------------ Kubernetes
def k8s_documents(root):
    docs = []
    for f in sorted(glob.glob(os.path.join(root, "deploy/k8s/**/*.yaml"), recursive=True)):
        for i, d in enumerate(load_yaml_all(f)):
            docs.append((os.path.relpath(f, root), i, d))
    return docs


def pod_spec(doc):
    kind = doc.get("kind")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return doc.get("spec", {}).get("template", {}).get("spec", {})
    return None


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s(rep, root, progs):
    docs = k8s_documents(root)
    schema = load_json(os.path.join(HERE, "schemas", "k8s-subset.json"))
    ports = design_ports(root)
    errs = []
    for rel, i, d in docs:
        if rel.endswith("kustomization.yaml"):
            continue
        for k in ("apiVersion", "kind", "metadata"):
            if k not in d:
                errs.append("%s doc %d has no %s" % (rel, i, k))
        if "metadata" in d and not d["metadata"].get("name"):
            errs.append("%s doc %d has no metadata.name" % (rel, i))
    rep.errors("every Kubernetes document has apiVersion, kind and metadata.name", errs)
    kinds = schema["kinds"]
    for rel, i, d in docs:
        if rel.endswith("kustomization.yaml"):
            continue
        key = "%s/%s" % (d.get("apiVersion"), d.get("kind"))
        if key not in kinds:
            rep.fail("%s: %s %s is not a kind the schema knows" % (rel, key, d.get("metadata", {}).get("name")))
            continue
        sub = dict(schema, **{"$ref": "#/definitions/" + kinds[key]})
        sub.pop("kinds", None)
        v = jsonschema.Draft7Validator(sub)
        es = sorted(v.iter_errors(d), key=lambda e: list(e.absolute_path))
        rep.errors("%s: %s %s matches the API schema" % (rel, d.get("kind"), d.get("metadata", {}).get("name", "")),
                   ["/".join(map(str, e.absolute_path)) + ": " + e.message[:200] for e in es])

    objs = [(rel, d) for rel, _, d in docs if not rel.endswith("kustomization.yaml")]
    deployments = [(rel, d) for rel, d in objs if d.get("kind") == "Deployment"]
    pdbs = [d for _, d in objs if d.get("kind") == "PodDisruptionBudget"]
    services = [(rel, d) for rel, d in objs if d.get("kind") == "Service"]
    configmaps = {d["metadata"]["name"]: d for _, d in objs if d.get("kind") == "ConfigMap"}
    kust = load_yaml(os.path.join(root, "deploy/k8s/kustomization.yaml"))
    secrets = {g["name"]: g for g in kust.get("secretGenerator", [])}
    prog_deploys = {}
    for rel, d in deployments:
        name = d["metadata"]["name"]
        spec = d["spec"]
        sel = spec.get("selector", {}).get("matchLabels", {})
        labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
        rep.check(matches(sel, labels), "%s: Deployment %s selector matches its pod labels" % (rel, name))
        pdb = [p for p in pdbs if p["spec"].get("selector", {}).get("matchLabels")
               and matches(p["spec"]["selector"]["matchLabels"], labels)]
        rep.check(len(pdb) == 1, "%s: Deployment %s has one PodDisruptionBudget" % (rel, name),
                  "found %d" % len(pdb))
        for c in pod_spec(d).get("containers", []):
            where = "%s: %s/%s" % (rel, name, c["name"])
            named = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                rep.check(probe in c, "%s has a %s" % (where, probe))
            req = c.get("resources", {}).get("requests", {})
            rep.check("cpu" in req and "memory" in req, "%s requests cpu and memory" % where)
            sc = c.get("securityContext", {})
            rep.check(sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True,
                      "%s: no privilege escalation, read-only root" % where)
            img = c.get("image", "")
            rep.check(":" in img and not img.endswith(":latest"), "%s: image %s is pinned" % (where, img))
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                hg = c.get(probe, {}).get("httpGet") or c.get(probe, {}).get("tcpSocket")
                if hg and isinstance(hg.get("port"), str):
                    rep.check(hg["port"] in named, "%s: %s port %s is a named container port" % (where, probe, hg["port"]))
            cmd = c.get("command", []) + c.get("args", [])
            prog = os.path.basename(cmd[0]) if cmd else ""
            if prog in PROGRAMS:
                prog_deploys[prog] = name
                check_command(rep, progs, where, cmd)
                rp = c.get("readinessProbe", {}).get("httpGet", {})
                lp = c.get("livenessProbe", {}).get("httpGet", {})
                rep.check(rp.get("path") == "/readyz" and lp.get("path") == "/healthz",
                          "%s: readiness on /readyz, liveness on /healthz" % where)
                env = {e["name"]: e.get("value") for e in c.get("env", [])}
                admin = named.get(rp.get("port")) if isinstance(rp.get("port"), str) else rp.get("port")
                rep.check(admin == ports[prog] and str(env.get("SB_ADMIN_PORT")) == str(ports[prog]),
                          "%s: admin port %s as in DESIGN.md" % (where, admin))
                hp = http_port(progs, prog)
                if hp:
                    rep.check(named.get("http") == hp and str(env.get("SB_HTTP_PORT")) == str(hp),
                              "%s: HTTP port %s as in DESIGN.md" % (where, named.get("http")))
                else:
                    rep.check("http" not in named, "%s: no HTTP port for a program without an HTTP API" % where)
                names = list(env)
                for ef in c.get("envFrom", []):
                    if "configMapRef" in ef:
                        cm = configmaps.get(ef["configMapRef"]["name"])
                        rep.check(cm is not None, "%s: ConfigMap %s exists" % (where, ef["configMapRef"]["name"]))
                        names += list((cm or {}).get("data", {}))
                    if "secretRef" in ef:
                        g = secrets.get(ef["secretRef"]["name"])
                        rep.check(g is not None, "%s: Secret %s is generated" % (where, ef["secretRef"]["name"]))
                        for e in (g or {}).get("envs", []):
                            names += env_file_keys(os.path.join(root, "deploy/k8s", e + ".example"))
                check_env_names(rep, progs, where, prog, names)
                if prog == "sb-ingest":
                    spec_i = progs.service_spec("sb-ingest")
                    if spec_i:
                        need = {v for k, v in spec_i[1].items() if k.startswith("secrets.")}
                        rep.check(need <= set(names), "%s: every secret option comes from a Secret" % where,
                                  "missing %s" % ", ".join(sorted(need - set(names))))
    rep.check(sorted(prog_deploys) == sorted(PROGRAMS),
              "a Deployment per program: %s" % ", ".join("%s=%s" % kv for kv in sorted(prog_deploys.items())))
    for rel, s in services:
        sel = s["spec"].get("selector", {})
        target = [d for _, d in deployments if matches(sel, d["spec"]["template"]["metadata"].get("labels", {}))]
        rep.check(len(target) == 1, "%s: Service %s selects one Deployment" % (rel, s["metadata"]["name"]))
        if target:
            named = {p.get("name") for c in pod_spec(target[0])["containers"] for p in c.get("ports", [])}
            bad = [p["targetPort"] for p in s["spec"]["ports"] if isinstance(p.get("targetPort"), str)
                   and p["targetPort"] not in named]
            rep.errors("%s: Service %s targets named container ports" % (rel, s["metadata"]["name"]), bad)
    for rel, d in objs:
        if d.get("kind") == "Job":
            for c in pod_spec(d)["containers"]:
                check_command(rep, progs, "%s: Job %s" % (rel, d["metadata"]["name"]), c.get("command", []) + c.get("args", []))
                names = []
                for ef in c.get("envFrom", []):
                    if "configMapRef" in ef:
                        names += list(configmaps.get(ef["configMapRef"]["name"], {}).get("data", {}))
                rep.check("SB_KAFKA_BROKERS" in names, "%s: Job %s gets SB_KAFKA_BROKERS (sbctl reads no config file)" % (rel, d["metadata"]["name"]))
    jobs = [d for _, d in objs if d.get("kind") == "Job"]
    rep.check(any("sbctl migrate" in " ".join(pod_spec(j)["containers"][0].get("command", [])) and
                  "sbctl topics create" in " ".join(pod_spec(j)["containers"][0].get("command", [])) for j in jobs),
              "a Job runs sbctl migrate and sbctl topics create")
    # Autoscaling targets exist; nothing scales past the partitions.
    topics = load_json(os.path.join(root, "proto/topics.json"))
    maxp = max(t.get("partitions", topics["defaults"]["partitions"]) for t in topics["topics"])
    names = {d["metadata"]["name"] for _, d in deployments}
    for rel, d in objs:
        if d.get("kind") == "HorizontalPodAutoscaler":
            t = d["spec"]["scaleTargetRef"]["name"]
            rep.check(t in names, "%s: HPA %s targets an existing Deployment" % (rel, t))
            rep.check(d["spec"]["maxReplicas"] <= maxp, "%s: HPA %s stops at %d replicas (partitions)" % (rel, t, maxp))
            for m in d["spec"].get("metrics", []):
                if m["type"] == "External":
                    grp = m["external"]["metric"].get("selector", {}).get("matchLabels", {}).get("consumergroup")
                    rep.check(grp == t, "%s: HPA %s scales on the lag of its own group" % (rel, t))
        if d.get("kind") == "ScaledObject":
            t = d["spec"]["scaleTargetRef"]["name"]
            rep.check(t in names, "%s: ScaledObject %s targets an existing Deployment" % (rel, t))
            rep.check(d["spec"]["maxReplicaCount"] <= maxp, "%s: ScaledObject %s stops at %d replicas" % (rel, t, maxp))
    # kustomization: resources exist, every top-level manifest is listed, env files documented.
    listed = kust.get("resources", [])
    rep.errors("kustomization.yaml resources exist",
               [r for r in listed if not os.path.exists(os.path.join(root, "deploy/k8s", r))])
    top = sorted(os.path.basename(f) for f in glob.glob(os.path.join(root, "deploy/k8s/*.yaml"))
                 if not f.endswith("kustomization.yaml"))
    rep.check(sorted(listed) == top, "kustomization.yaml lists every manifest of deploy/k8s",
              "listed %s, present %s" % (sorted(listed), top))
    for g in kust.get("secretGenerator", []):
        for e in g.get("envs", []):
            check_env_example(rep, root, os.path.join("deploy/k8s", e))
    text = "".join(open(f, encoding="utf-8").read() for f in glob.glob(os.path.join(root, "deploy/k8s/**/*"), recursive=True)
                   if os.path.isfile(f))
    rep.check(not DEV_SECRET.search(text), "deploy/k8s has no development default secret")
    inline = [e["name"] for _, d in objs if pod_spec(d) for c in pod_spec(d)["containers"]
              for e in c.get("env", []) if e["name"] in SECRET_ENV]
    inline += [k for cm in configmaps.values() for k in cm.get("data", {}) if k in SECRET_ENV]
    rep.errors("no secret in a ConfigMap or an inline env value", inline)
    for prog in PROGRAMS + ["sbctl"]:
        common = set()
        for cm in configmaps.values():
            if cm["metadata"]["name"] == "switchboard-env":
                common = set(cm.get("data", {}))
        if prog == "sbctl":
            continue
        spec = progs.service_spec(prog)
        if spec:
            rep.check(common <= set(spec[1].values()), "ConfigMap switchboard-env holds only options of %s" % prog,
                      ", ".join(sorted(common - set(spec[1].values()))))


# ------------------------------------------------------------------ Prometheus
def inventory(root):
    inv = load_yaml(os.path.join(root, "deploy/prometheus/metrics.yml"))["metrics"]
    return {m["name"]: m for m in inv}


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
                "and", "or", "unless", "inf", "nan", "atan2"}


def promql_metrics(expr):
    """Metric names in a PromQL expression: identifiers that are not functions,
    aggregations, keywords, label names, durations or strings."""
    e = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        word = m.group(0)
        after = e[m.end():].lstrip()
        before = e[:m.start()]
        if after.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        if re.search(r"[0-9.]$", before):  # 1e-9, 5m
            continue
        names.add(word)
    return names


def resolve_metric(name, inv, recorded):
    if name in inv or name in recorded:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)] if name.endswith(suffix) else None
        if base and inv.get(base, {}).get("type") == "histogram":
            return True
    return False


def check_inventory(rep, root):
    inv = inventory(root)
    for name, m in inv.items():
        if m["status"] == "available":
            src = os.path.join(root, m["source"])
            text = open(src, encoding="utf-8").read() if os.path.isfile(src) else ""
            rep.check('"%s"' % name in text, "%s is registered in %s" % (name, m["source"]))
        elif m["status"] == "planned":
            rep.check(m.get("service") in PROGRAMS, "%s is planned for a program (%s)" % (name, m.get("service")))
        else:
            rep.check(m["status"] == "external" and bool(m.get("source")), "%s comes from %s" % (name, m.get("source")))
    # Metrics registered in the code but missing from the inventory.
    code = ""
    for f in glob.glob(os.path.join(root, "common/src/*.c")) + glob.glob(os.path.join(root, "services/*/*.c")):
        code += open(f, encoding="utf-8", errors="replace").read()
    found = set(re.findall(r'sb_metrics_(?:counter|gauge|histogram)\([^"]*"(sb_[a-z0-9_]+)"', code, re.S))
    found |= set(re.findall(r'"(sb_[a-z0-9_]+_(?:total|seconds))"', code))
    rep.errors("every metric the code registers is in the inventory",
               ["%s is not in deploy/prometheus/metrics.yml" % n for n in sorted(found - set(inv))])
    for n in sorted(found):
        if inv.get(n, {}).get("status") == "planned":
            print("note: %s is registered by the code now: mark it available in metrics.yml" % n)
    return inv


def rule_docs(root):
    docs = []
    for f in sorted(glob.glob(os.path.join(root, "deploy/prometheus/rules/*.yml"))):
        docs.append((os.path.relpath(f, root), load_yaml(f)))
    return docs


def check_prometheus(rep, root, progs):
    inv = check_inventory(rep, root)
    promtool = shutil.which("promtool")
    rules = rule_docs(root)
    rep.check(bool(rules), "alert rules exist in deploy/prometheus/rules")
    recorded = {r["record"] for _, d in rules for g in d["groups"] for r in g["rules"] if "record" in r}
    for rel, d in rules:
        if promtool:
            r = subprocess.run([promtool, "check", "rules", os.path.join(root, rel)], capture_output=True, text=True)
            rep.check(r.returncode == 0, "promtool check rules %s" % rel, (r.stdout + r.stderr).strip()[-600:])
        else:
            rep.skip("promtool not installed (Debian package prometheus): structural rule check only")
        errs = []
        if not isinstance(d.get("groups"), list):
            errs.append("no groups")
        for g in d.get("groups", []):
            for r in g.get("rules", []):
                if ("alert" in r) == ("record" in r) or "expr" not in r:
                    errs.append("rule needs exactly one of alert/record, and expr: %s" % r)
                if r.get("expr", "").count("(") != r.get("expr", "").count(")"):
                    errs.append("unbalanced parentheses in %s" % r.get("alert") or r.get("record"))
        rep.errors("%s: rule structure" % rel, errs)
    alerts = [r for _, d in rules for g in d["groups"] for r in g["rules"] if "alert" in r]
    ops_path = os.path.join(root, "docs/operations.md")
    ops = open(ops_path, encoding="utf-8").read() if os.path.isfile(ops_path) else ""
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.*)$", ops, re.M)}
    for r in alerts:
        a = r["alert"]
        unknown = [m for m in promql_metrics(r["expr"]) if not resolve_metric(m, inv, recorded)]
        rep.errors("alert %s uses only inventoried metrics" % a, unknown)
        ann = r.get("annotations", {})
        rep.check(r.get("labels", {}).get("severity") in ("info", "warning", "critical"), "alert %s has a severity" % a)
        rep.check(all(k in ann for k in ("summary", "description", "runbook")), "alert %s has summary, description, runbook" % a)
        anchor = ann.get("runbook", "").split("#", 1)[-1]
        rep.check(ann.get("runbook", "").startswith("docs/operations.md#") and anchor in anchors,
                  "alert %s: runbook %s is a section of docs/operations.md" % (a, ann.get("runbook")))
    for r in (r for _, d in rules for g in d["groups"] for r in g["rules"] if "record" in r):
        unknown = [m for m in promql_metrics(r["expr"]) if not resolve_metric(m, inv, recorded)]
        rep.errors("recording rule %s uses only inventoried metrics" % r["record"], unknown)
    required = {"lag growing": ["kafka_consumergroup_lag_sum"], "SLA breaches": ["sb_slawatch_breaches_total"],
                "DLQ rate": ["sb_stage_dlq_total"], "a stage down": ["up"], "readiness": ["probe_success"]}
    used = set()
    for r in alerts:
        used |= promql_metrics(r["expr"])
    for what, ms in required.items():
        rep.check(all(m in used for m in ms), "an alert covers %s (%s)" % (what, ", ".join(ms)))
    test = os.path.join(root, "tests/deploy/rules_test.yml")
    if promtool and os.path.isfile(test):
        # Unit tests of the alerts: synthetic series in, expected alerts and annotations out.
        r = subprocess.run([promtool, "test", "rules", test], capture_output=True, text=True)
        rep.check(r.returncode == 0, "promtool test rules tests/deploy/rules_test.yml (alerts fire as expected)",
                  (r.stdout + r.stderr).strip()[-1500:])
    elif not promtool:
        rep.skip("promtool not installed: the alert unit tests (rules_test.yml) are not run")
    # Scrape configurations.
    for rel in ("deploy/prometheus/prometheus.yml", "deploy/prometheus/prometheus-k8s.yml"):
        cfg = load_yaml(os.path.join(root, rel))
        jobs = [j["job_name"] for j in cfg.get("scrape_configs", [])]
        rep.check(len(jobs) == len(set(jobs)), "%s: job names are unique" % rel)
        if not promtool:
            rep.skip("promtool not installed: %s checked structurally" % rel)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            # Rule files are mounted elsewhere in the containers: point at the repository's.
            text = open(os.path.join(root, rel), encoding="utf-8").read()
            text = text.replace("/etc/prometheus/rules/", os.path.join(root, "deploy/prometheus/rules") + "/")
            p = os.path.join(tmp, os.path.basename(rel))
            open(p, "w", encoding="utf-8").write(text)
            r = subprocess.run([promtool, "check", "config", p], capture_output=True, text=True)
            out = (r.stdout + r.stderr)
            if r.returncode != 0 and "kubernetes_sd_configs not found" in out and \
                    not re.search(r"field (?!kubernetes_sd_configs)\w+ not found", out):
                rep.skip("%s: this promtool is built without Kubernetes service discovery "
                         "(Debian's); checked structurally" % rel)
                errs = []
                for j in cfg["scrape_configs"]:
                    if not j.get("kubernetes_sd_configs") and not j.get("static_configs"):
                        errs.append("%s has no service discovery" % j["job_name"])
                    for rc in j.get("relabel_configs", []):
                        try:
                            re.compile(rc.get("regex", "(.*)"))
                        except re.error as e:
                            errs.append("%s: regex %s: %s" % (j["job_name"], rc.get("regex"), e))
                rep.errors("%s: scrape jobs and relabel regexes" % rel, errs)
            else:
                rep.check(r.returncode == 0, "promtool check config %s (with its rule files)" % rel, out.strip()[-600:])
    bb = load_yaml(os.path.join(root, "deploy/prometheus/blackbox.yml"))
    mod = bb.get("modules", {}).get("http_readyz", {})
    rep.check(mod.get("prober") == "http" and 200 in mod.get("http", {}).get("valid_status_codes", []),
              "blackbox module http_readyz expects 200")


# ------------------------------------------------------------------ Grafana
def check_grafana(rep, root, progs):
    inv = inventory(root)
    recorded = {r["record"] for _, d in rule_docs(root) for g in d["groups"] for r in g["rules"] if "record" in r}
    files = sorted(glob.glob(os.path.join(root, "deploy/grafana/dashboards/*.json")))
    rep.check(bool(files), "a dashboard JSON exists")
    for f in files:
        rel = os.path.relpath(f, root)
        d = load_json(f)
        errs = []
        for k, t in (("title", str), ("uid", str), ("schemaVersion", int), ("panels", list), ("templating", dict)):
            if not isinstance(d.get(k), t):
                errs.append("%s missing or not a %s" % (k, t.__name__))
        variables = {v["name"] for v in d.get("templating", {}).get("list", [])}
        ids = [p.get("id") for p in d.get("panels", [])]
        if len(ids) != len(set(ids)) or None in ids:
            errs.append("panel ids are not unique")
        cells = set()
        exprs = []
        for p in d.get("panels", []):
            g = p.get("gridPos", {})
            if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")) or g["x"] + g["w"] > 24:
                errs.append("panel %s: gridPos %s" % (p.get("title"), g))
                continue
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    if (x, y) in cells:
                        errs.append("panel %s overlaps another" % p.get("title"))
                        break
                    cells.add((x, y))
                else:
                    continue
                break
            if p.get("type") == "row":
                continue
            if not p.get("title") or not p.get("targets"):
                errs.append("panel %s has no title or no targets" % p.get("id"))
            ds = p.get("datasource", {})
            uid = ds.get("uid", "") if isinstance(ds, dict) else ""
            if uid.startswith("$") and uid.strip("${}") not in variables:
                errs.append("panel %s uses undefined variable %s" % (p.get("title"), uid))
            refs = [t.get("refId") for t in p.get("targets", [])]
            if len(refs) != len(set(refs)):
                errs.append("panel %s: duplicate refId" % p.get("title"))
            for t in p.get("targets", []):
                if not t.get("expr"):
                    errs.append("panel %s: a target without expr" % p.get("title"))
                else:
                    exprs.append((p.get("title"), t["expr"]))
        rep.errors("%s: dashboard structure" % rel, errs)
        unknown = sorted({"%s (panel %s)" % (m, title) for title, e in exprs for m in promql_metrics(e)
                          if not resolve_metric(m, inv, recorded)})
        rep.errors("%s: every PromQL metric is in the inventory" % rel, unknown)
        used = {m for _, e in exprs for m in promql_metrics(e)}
        for what, m in (("throughput per stage", "sb_stage_messages_total"), ("lag per stage", "kafka_consumergroup_lag_sum"),
                        ("queue lengths", "sb_router_queue_length"), ("SLA at risk", "sb_slawatch_at_risk"),
                        ("SLA breaches", "sb_slawatch_breaches_total"), ("DLQ rate", "sb_stage_dlq_total"),
                        ("latencies", "sb_stage_flush_seconds_bucket"), ("intake latency", "sb_ingest_produce_seconds_bucket")):
            rep.check(m in used, "%s shows %s (%s)" % (rel, what, m))
        if shutil.which("promtool"):
            # Each query must parse: promtool checks a throw-away rule file of them.
            with tempfile.TemporaryDirectory() as tmp:
                rules = {"groups": [{"name": "dashboard", "rules": [
                    {"record": "dashboard:q%d" % i, "expr": e.replace("$__rate_interval", "5m")}
                    for i, (_, e) in enumerate(exprs)]}]}
                p = os.path.join(tmp, "q.yml")
                open(p, "w", encoding="utf-8").write(yaml.safe_dump(rules))
                r = subprocess.run(["promtool", "check", "rules", p], capture_output=True, text=True)
                rep.check(r.returncode == 0, "%s: every query parses (promtool)" % rel, (r.stdout + r.stderr).strip()[-600:])
    ds = load_yaml(os.path.join(root, "deploy/grafana/provisioning/datasources/prometheus.yml"))
    rep.check(any(x.get("type") == "prometheus" and x.get("url") for x in ds.get("datasources", [])),
              "the Prometheus data source is provisioned")
    prov = load_yaml(os.path.join(root, "deploy/grafana/provisioning/dashboards/switchboard.yml"))
    path = prov["providers"][0]["options"]["path"]
    compose = load_yaml(os.path.join(root, "docker-compose.yml"))
    mounts = [v for v in compose["services"]["grafana"].get("volumes", []) if isinstance(v, str)]
    rep.check(any(v.split(":")[0].rstrip("/") == "./deploy/grafana/dashboards" and v.split(":")[1] == path for v in mounts),
              "compose mounts deploy/grafana/dashboards where the provider reads (%s)" % path)
    rep.check(any(v.split(":")[0].rstrip("/") == "./deploy/grafana/provisioning" and v.split(":")[1] == "/etc/grafana/provisioning"
                  for v in mounts), "compose mounts the provisioning files")


# ------------------------------------------------------------------ systemd
def unit_sections(path):
    sections, cur = {}, None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        m = re.match(r"\[(\w+)\]$", line.strip())
        if m:
            cur = sections.setdefault(m.group(1), [])
            continue
        if cur is not None and "=" in line:
            k, v = line.split("=", 1)
            cur.append((k.strip(), v.strip()))
    return sections


def check_systemd(rep, root, progs):
    d = os.path.join(root, "deploy/systemd")
    ports = design_ports(root)
    units = sorted(glob.glob(os.path.join(d, "*.service")) + glob.glob(os.path.join(d, "*.target")))
    for prog in PROGRAMS:
        path = os.path.join(d, prog + "@.service")
        if not rep.check(os.path.isfile(path), "a unit for %s (%s@.service)" % (prog, prog)):
            continue
        s = unit_sections(path)
        svc = dict(s.get("Service", []))
        allv = s.get("Service", [])
        where = "deploy/systemd/%s@.service" % prog
        rep.check(any(k == "EnvironmentFile" for k, _ in allv), "%s has EnvironmentFile" % where)
        rep.check(svc.get("Restart") == "on-failure", "%s: Restart=on-failure" % where)
        rep.check(svc.get("KillSignal") == "SIGTERM", "%s: KillSignal=SIGTERM" % where)
        rep.check(bool(re.fullmatch(r"\d+s?", svc.get("TimeoutStopSec", ""))), "%s: TimeoutStopSec" % where)
        rep.errors("%s: hardening options" % where, ["%s missing" % h for h in HARDENING if h not in svc])
        rep.check(svc.get("NoNewPrivileges") == "yes" and svc.get("ProtectSystem") == "strict",
                  "%s: NoNewPrivileges=yes, ProtectSystem=strict" % where)
        env = dict(v.split("=", 1) for k, v in allv if k == "Environment")
        rep.check(env.get("SB_ADMIN_PORT") == str(ports[prog]), "%s: admin port %s as in DESIGN.md" % (where, env.get("SB_ADMIN_PORT")))
        hp = http_port(progs, prog)
        if hp:
            rep.check(env.get("SB_HTTP_PORT") == str(hp), "%s: HTTP port as in DESIGN.md" % where)
        check_env_names(rep, progs, where, prog, list(env))
        ex = shlex.split(svc.get("ExecStart", ""))
        rep.check(bool(ex) and ex[0] == "/opt/switchboard/bin/" + prog, "%s runs /opt/switchboard/bin/%s" % (where, prog))
        check_command(rep, progs, where, ex)
        if "--config" in ex:
            cfg = ex[ex.index("--config") + 1]
            local = os.path.join(d, os.path.basename(cfg))
            if rep.check(os.path.isfile(local), "%s: its config %s is shipped as deploy/systemd/%s" % (where, cfg, os.path.basename(cfg))):
                check_config_keys(rep, progs, "deploy/systemd/%s" % os.path.basename(cfg), prog, load_json(local))
        rep.check(dict(s.get("Install", [])).get("WantedBy") == "switchboard.target", "%s: WantedBy=switchboard.target" % where)
    mig = os.path.join(d, "sb-migrate.service")
    if rep.check(os.path.isfile(mig), "a unit for the migrations (sb-migrate.service)"):
        s = unit_sections(mig)
        cmds = [shlex.split(v) for k, v in s.get("Service", []) if k == "ExecStart"]
        for c in cmds:
            check_command(rep, progs, "deploy/systemd/sb-migrate.service", [os.path.basename(c[0])] + c[1:])
        rep.check([" ".join(c[1:]) for c in cmds] == ["migrate", "topics create"],
                  "sb-migrate.service runs sbctl migrate, then sbctl topics create")
    for ex in ("switchboard.env.example", "ingest.env.example"):
        p = os.path.join(d, ex)
        if rep.check(os.path.isfile(p), "deploy/systemd/%s documents the environment file" % ex):
            rep.check(not DEV_SECRET.search(open(p, encoding="utf-8").read()), "deploy/systemd/%s has no development default" % ex)
    sa = shutil.which("systemd-analyze")
    if not sa:
        rep.skip("systemd-analyze not installed (Debian package systemd): structural checks only")
        return
    # systemd-analyze verify on an instance of every template, with the executables
    # pointing at the built programs (a stub for those not built yet).
    with tempfile.TemporaryDirectory() as tmp:
        bindir = os.path.join(tmp, "bin")
        os.mkdir(bindir)
        for prog in PROGRAMS + ["sbctl"]:
            exe = progs.path(prog)
            if exe:
                os.symlink(exe, os.path.join(bindir, prog))
            else:
                rep.skip("%s is not built: its unit is verified with a stub executable" % prog)
                with open(os.path.join(bindir, prog), "w") as f:
                    f.write("#!/bin/sh\nexit 0\n")
                os.chmod(os.path.join(bindir, prog), 0o755)
        names = []
        for u in units:
            base = os.path.basename(u)
            name = base.replace("@.service", "@1.service")
            text = open(u, encoding="utf-8").read().replace("/opt/switchboard/bin", bindir)
            open(os.path.join(tmp, name), "w", encoding="utf-8").write(text)
            names.append(name)
        r = subprocess.run([sa, "verify", "--man=no"] + ["./" + n for n in names], cwd=tmp,
                           capture_output=True, text=True, timeout=60)
        out = (r.stdout + r.stderr).strip()
        rep.check(r.returncode == 0 and not out, "systemd-analyze verify %s" % " ".join(names), out[-1500:])


# ------------------------------------------------------------------ docs
def check_docs(rep, root, progs):
    path = os.path.join(root, "docs/operations.md")
    if not rep.check(os.path.isfile(path), "docs/operations.md exists"):
        return
    text = open(path, encoding="utf-8").read()
    heads = [h.lower() for h in re.findall(r"^#+ (.*)$", text, re.M)]
    for topic in ("sizing", "scaling one stage", "replay", "backup", "upgrade", "rotating secrets", "alerts"):
        rep.check(any(topic in h for h in heads), "docs/operations.md has a section on %s" % topic)
    inv = inventory(root)
    ours = [n for n in inv if n.startswith("sb_")]
    rep.errors("docs/operations.md lists every metric of the services",
               ["%s missing" % n for n in ours if "`%s`" % n not in text])


CHECKS = {"parse": check_parse, "compose": check_compose, "dockerfile": check_dockerfile, "k8s": check_k8s,
          "prometheus": check_prometheus, "grafana": check_grafana, "systemd": check_systemd, "docs": check_docs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.environ.get("SB_REPO_ROOT") or os.path.abspath(os.path.join(HERE, "..", "..")))
    ap.add_argument("--bin", default=os.environ.get("SB_BIN_DIR"))
    ap.add_argument("checks", nargs="+", choices=sorted(CHECKS) + ["all"])
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    progs = Programs(root, a.bin)
    rep = Report()
    for name in (sorted(CHECKS) if "all" in a.checks else a.checks):
        print("== %s" % name)
        try:
            CHECKS[name](rep, root, progs)
        except Exception as e:  # noqa: BLE001 - a crash of a check is a failure, with its cause
            import traceback
            traceback.print_exc()
            rep.fail("%s check crashed: %s: %s" % (name, type(e).__name__, e))
    print("%d passed, %d failed" % (rep.passed, rep.failed))
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
