#!/usr/bin/python3
"""The deployment checks can fail: each case breaks one thing in a temporary copy of the
deployment files and expects validate.py to report it (and the unbroken copy to pass).
A case that needs a program (promtool, systemd-analyze, nginx) or a built service is
skipped with a printed line when it is missing."""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("SB_REPO_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))
VALIDATE = os.path.join(HERE, "validate.py")


def bin_dir():
    for d in (os.environ.get("SB_BIN_DIR"), os.path.join(ROOT, "build", "bin")):
        if d and os.access(os.path.join(d, "sb-ingest"), os.X_OK):
            return d
    return os.environ.get("SB_BIN_DIR") or os.path.join(ROOT, "build", "bin")


BIN = bin_dir()

# (name, check, file, old, new, text expected in a FAIL line, needs)
CASES = [
    ("compose: a stage without healthcheck", "compose", "docker-compose.yml",
     """      SB_ADMIN_PORT: "9102"
    expose:""",
     """      SB_ADMIN_PORT: "9102"
    healthcheck:
      disable: true
    expose:""", "compose triage has a healthcheck", None),
    ("compose: a development secret inline", "compose", "docker-compose.yml",
     """      SB_HTTP_PORT: "8080"
""", """      SB_HTTP_PORT: "8080"
      SB_SECRET_API: dev-secret-api
""", "development default", None),
    ("compose: a flag the program does not have", "compose", "docker-compose.yml",
     '["sb-triage", "--config",', '["sb-triage", "--confg",', "unknown flag --confg", "sb-triage"),
    ("compose: an environment variable no option reads", "compose", "docker-compose.yml",
     """      SB_ADMIN_PORT: "9102"
""", """      SB_ADMIN_PORT: "9102"
      SB_TRIAGE_RULES: /x.json
""", "SB_TRIAGE_RULES is not read by sb-triage", "sb-triage"),
    ("compose: a fixed container name", "compose", "docker-compose.yml",
     """    command: ["sb-triage",""", """    container_name: sb-triage
    command: ["sb-triage",""", "has no container_name", None),
    ("compose: a sixth program", "compose", "docker-compose.yml",
     """  # ---------------------------------------------------------------- edge""",
     """  extra:
    image: switchboard:0.1.0
    command: ["sb-extra"]
    healthcheck:
      test: ["CMD", "true"]
  # ---------------------------------------------------------------- edge""",
     "exactly the five programs", None),
    ("compose: a field the Compose schema refuses", "compose", "docker-compose.yml",
     "    stop_grace_period: 60s\n    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready",
     "    stop_grace_period: [60]\n    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready",
     "Compose Specification schema", None),
    ("compose: a wrong admin port", "compose", "docker-compose.yml",
     'SB_ADMIN_PORT: "9104"', 'SB_ADMIN_PORT: "9114"', "admin port 9114", None),
    ("compose: a config key the program does not have", "compose", "deploy/docker/config/switchboard.json",
     '"log": {"level": "info"}', '"log": {"level": "info", "colour": true}', "unknown key log.colour", "sb-ingest"),
    ("compose: a gateway directive nginx does not know", "compose", "deploy/docker/nginx.conf",
     "            proxy_pass http://$ingest;", "            proxy_pas http://$ingest;", "nginx -t", "nginx"),
    ("dockerfile: runs as root", "dockerfile", "deploy/docker/Dockerfile",
     "USER 10001:10001\n", "", "non-root user", None),
    ("dockerfile: a -dev package of setup.sh missing", "dockerfile", "deploy/docker/Dockerfile",
     " libhyperscan-dev ", " ", "-dev packages of deploy/setup.sh", None),
    ("dockerfile: a runtime library missing", "dockerfile", "deploy/docker/Dockerfile",
     " libhyperscan5 ", " ", "is not installed by the runtime stage", "sb-triage"),
    ("k8s: a container without readiness probe", "k8s", "deploy/k8s/triage.yaml",
     "          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: admin\n            periodSeconds: 5\n            timeoutSeconds: 3\n            failureThreshold: 3\n",
     "", "has a readinessProbe", None),
    ("k8s: a selector that does not match the pods", "k8s", "deploy/k8s/router.yaml",
     "  selector:\n    matchLabels:\n      app.kubernetes.io/name: sb-router\n  strategy:",
     "  selector:\n    matchLabels:\n      app.kubernetes.io/name: sb-routr\n  strategy:",
     "selector matches its pod labels", None),
    ("k8s: a Deployment without PodDisruptionBudget", "k8s", "deploy/k8s/slawatch.yaml",
     "---\napiVersion: policy/v1\nkind: PodDisruptionBudget", "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\napiVersion: v1\nkind: Namespace\nx_PodDisruptionBudget:",
     "has one PodDisruptionBudget", None),
    ("k8s: a misspelt field", "k8s", "deploy/k8s/reporter.yaml",
     "          livenessProbe:", "          livenesProbe:", "matches the API schema", None),
    ("k8s: liveness on /readyz", "k8s", "deploy/k8s/ingest.yaml",
     "          livenessProbe:\n            httpGet:\n              path: /healthz",
     "          livenessProbe:\n            httpGet:\n              path: /readyz",
     "liveness on /healthz", None),
    ("k8s: a secret in the ConfigMap", "k8s", "deploy/k8s/config.yaml",
     "  SB_LOG_LEVEL: info\n", "  SB_LOG_LEVEL: info\n  SB_SECRET_CHAT: dev-secret-chat\n",
     "development default", None),
    ("prometheus: an alert on a metric that does not exist", "prometheus", "deploy/prometheus/rules/switchboard.rules.yml",
     "sum by (stage) (increase(sb_stage_dlq_total[15m])) > 0", "sum by (stage) (increase(sb_stage_dlq_totl[15m])) > 0",
     "sb_stage_dlq_totl", None),
    ("prometheus: a PromQL syntax error", "prometheus", "deploy/prometheus/rules/switchboard.rules.yml",
     "expr: sum by (stage) (rate(sb_stage_retries_total[5m])) > 1", "expr: sum by (stage) (rate(sb_stage_retries_total[5m]) > 1",
     "promtool check rules", "promtool"),
    ("prometheus: an alert that no longer fires as tested", "prometheus", "deploy/prometheus/rules/switchboard.rules.yml",
     "expr: probe_success{job=\"sb-readyz\"} == 0", "expr: probe_success{job=\"sb-readyz\"} == 2",
     "promtool test rules", "promtool"),
    ("prometheus: an inventoried metric the code does not register", "prometheus", "deploy/prometheus/metrics.yml",
     "  - name: sb_stage_retries_total\n", "  - name: sb_stage_retried_total\n",
     "sb_stage_retried_total is registered in common/src/stage.c", None),
    ("prometheus: an alert without its runbook section", "prometheus", "docs/operations.md",
     "### SwitchboardFlushSlow\n", "### Flush slow\n", "runbook docs/operations.md#switchboardflushslow", None),
    ("grafana: a panel on a metric that does not exist", "grafana", "deploy/grafana/dashboards/switchboard.json",
     "sum by (stage) (rate(sb_stage_messages_total[$__rate_interval]))",
     "sum by (stage) (rate(sb_stage_message_total[$__rate_interval]))", "sb_stage_message_total", None),
    ("grafana: two panels with one id", "grafana", "deploy/grafana/dashboards/switchboard.json",
     '"id": 3,', '"id": 2,', "panel ids are not unique", None),
    ("systemd: no restart on failure", "systemd", "deploy/systemd/sb-triage@.service",
     "Restart=on-failure\n", "", "Restart=on-failure", None),
    ("systemd: a key systemd does not know", "systemd", "deploy/systemd/sb-ingest@.service",
     "KillSignal=SIGTERM\n", "KillSignal=SIGTERM\nKillSignall=SIGTERM\n", "systemd-analyze verify", "systemd-analyze"),
    ("systemd: a wrong admin port", "systemd", "deploy/systemd/sb-reporter@.service",
     "Environment=SB_ADMIN_PORT=9105", "Environment=SB_ADMIN_PORT=9106", "admin port 9106", None),
    ("parse: a duplicate key", "parse", "deploy/k8s/namespace.yaml",
     "  name: switchboard\n", "  name: switchboard\n  name: other\n", "duplicate key", None),
    ("docs: a metric left out", "docs", "docs/operations.md",
     "| `sb_slawatch_at_risk` | gauge | clock | sb-slawatch | Clocks past their warning threshold and not yet breached |\n",
     "", "sb_slawatch_at_risk missing", None),
]


def copy_tree(dst):
    def ignore(d, names):
        rel = os.path.relpath(d, ROOT)
        out = {n for n in names if n in (".git", ".sb-local", "__pycache__") or n.startswith("build")}
        if rel == ".":
            out |= {"bench"}
        if rel == "tests":
            out |= {n for n in names if n not in ("deploy", "CMakeLists.txt")}
        if rel == "deploy/kafka":
            out |= {"lib", "target"}
        return out
    shutil.copytree(ROOT, dst, ignore=ignore, symlinks=True)


def run(tmp, check):
    r = subprocess.run([sys.executable, os.path.join(tmp, "tests/deploy/validate.py"), "--root", tmp,
                        "--bin", BIN, check], capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def available(need):
    if need is None:
        return True
    if need in ("promtool", "systemd-analyze", "nginx"):
        return shutil.which(need) is not None
    return os.access(os.path.join(BIN, need), os.X_OK)


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="sb-deploy-") as tmp:
        tree = os.path.join(tmp, "repo")
        copy_tree(tree)
        for check in sorted({c[1] for c in CASES}):
            rc, out = run(tree, check)
            if rc == 0:
                passed += 1
                print("ok:   the unbroken copy passes `%s`" % check)
            else:
                failed += 1
                print("FAIL: the unbroken copy fails `%s`:\n%s" % (check, out[-3000:]))
        for name, check, rel, old, new, expect, need in CASES:
            if not available(need):
                print("skip: %s (%s not available)" % (name, need))
                continue
            path = os.path.join(tree, rel)
            original = open(path, encoding="utf-8").read()
            if original.count(old) < 1:
                failed += 1
                print("FAIL: %s: the text to break is not in %s (the case is out of date)" % (name, rel))
                continue
            open(path, "w", encoding="utf-8").write(original.replace(old, new, 1))
            try:
                rc, out = run(tree, check)
            finally:
                open(path, "w", encoding="utf-8").write(original)
            hits = [line for line in out.splitlines() if (line.startswith("FAIL:") or "Traceback" in line) and expect in line]
            if rc != 0 and hits:
                passed += 1
                print("ok:   %s is caught: %s" % (name, hits[0][:160]))
            else:
                failed += 1
                fails = [line for line in out.splitlines() if line.startswith("FAIL:")]
                print("FAIL: %s is not caught (exit %d, expected a failure naming %r); failures: %s"
                      % (name, rc, expect, fails[:5]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
