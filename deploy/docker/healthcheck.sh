#!/bin/bash
# Container health check of every Switchboard service: exit 0 when GET /readyz on the
# service's admin port answers 200, 1 otherwise (503 "not ready", no answer, timeout).
# Needs only bash (its /dev/tcp), so the runtime image carries no HTTP client.
#
# The port is, in this order: SB_HEALTH_PORT, SB_ADMIN_PORT, else the default admin port
# of the program found running (sb-ingest 9101, sb-triage 9102, sb-router 9103,
# sb-slawatch 9104, sb-reporter 9105). The host is SB_HEALTH_HOST (default 127.0.0.1,
# which answers when admin.bind is 0.0.0.0 or 127.0.0.1). SB_HEALTH_PATH=/healthz checks
# liveness instead. A container running sbctl (one-shot jobs) has no admin port: healthy.
set -u

default_port() {
    case "$1" in
    sb-ingest) echo 9101 ;;
    sb-triage) echo 9102 ;;
    sb-router) echo 9103 ;;
    sb-slawatch) echo 9104 ;;
    sb-reporter) echo 9105 ;;
    *) return 1 ;;
    esac
}

# The first Switchboard program among the container's processes (PID 1 first).
program() {
    local f exe
    for f in /proc/1/cmdline /proc/[0-9]*/cmdline; do
        [[ -r "$f" ]] || continue
        IFS= read -r -d '' exe <"$f" 2>/dev/null || true
        exe="${exe##*/}"
        case "$exe" in
        sb-ingest | sb-triage | sb-router | sb-slawatch | sb-reporter | sbctl)
            echo "$exe"
            return 0
            ;;
        esac
    done
    return 1
}

host="${SB_HEALTH_HOST:-127.0.0.1}"
path="${SB_HEALTH_PATH:-/readyz}"
port="${SB_HEALTH_PORT:-${SB_ADMIN_PORT:-}}"
if [[ -z "$port" ]]; then
    prog="$(program)" || {
        echo "healthcheck: no Switchboard program is running" >&2
        exit 1
    }
    [[ "$prog" == sbctl ]] && exit 0
    port="$(default_port "$prog")"
fi

# One HTTP/1.0 request; the status line decides. Bounded by the caller's timeout and
# by read -t.
if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
    echo "healthcheck: nothing listens on $host:$port" >&2
    exit 1
fi
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" >&3
status=""
IFS= read -r -t "${SB_HEALTH_TIMEOUT_S:-4}" status <&3 || true
exec 3<&-
status="${status%$'\r'}"
case "$status" in
"HTTP/1."?" 200"*) exit 0 ;;
esac
echo "healthcheck: $path on $host:$port answered: ${status:-nothing}" >&2
exit 1
