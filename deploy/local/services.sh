#!/usr/bin/env bash
# Runs the built services against the local stack with deploy/config/local.json
# (DESIGN.md "Local stack"): ingest HTTP on 127.0.0.1:8080, reporter on 127.0.0.1:8081,
# admin endpoints on 9101-9105. Services not built yet are skipped.
#   services.sh up|down|status
#   SB_SERVICES_GROUP=SUFFIX  up: each stage in consumer group sb-<stage>-SUFFIX, moved to
#                             the end of the topics before it starts (a fresh start that
#                             leaves older traffic on the topics alone; make demo uses it)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${SB_BIN_DIR:-$root/build/bin}"
run="$root/.sb-local/services"
config="$root/deploy/config/local.json"
# name:admin port
services=(ingest:9101 triage:9102 router:9103 slawatch:9104 reporter:9105)

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
    mkdir -p "$run"
    for s in "${services[@]}"; do
        local name="${s%%:*}" port="${s#*:}" exe="$bin/sb-${s%%:*}"
        [[ -x "$exe" ]] || continue
        if alive "$run/$name.pid"; then
            echo "services: $name already running"
            continue
        fi
        local group_env=()
        if [[ -n "${SB_SERVICES_GROUP:-}" && "$name" != ingest ]]; then
            group_env=("SB_KAFKA_GROUP=sb-$name-$SB_SERVICES_GROUP")
            "$bin/sbctl" offsets "sb-$name-$SB_SERVICES_GROUP" --to end >/dev/null
        fi
        env "${group_env[@]}" SB_ADMIN_PORT="$port" nohup "$exe" --config "$config" \
            >>"$run/$name.log" 2>&1 </dev/null &
        echo $! >"$run/$name.pid"
        local i
        for ((i = 0; i < 100; i++)); do
            if curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
                break
            fi
            if ! alive "$run/$name.pid"; then
                echo "services: $name exited; last log lines:" >&2
                tail -n 20 "$run/$name.log" >&2
                return 1
            fi
            sleep 0.1
        done
        echo "services: $name up (admin 127.0.0.1:$port)"
    done
}

down() {
    for s in "${services[@]}"; do
        local name="${s%%:*}" pidfile="$run/${s%%:*}.pid" i
        alive "$pidfile" || { rm -f "$pidfile"; continue; }
        kill -TERM "$(cat "$pidfile")"
        for ((i = 0; i < 150; i++)); do
            alive "$pidfile" || break
            sleep 0.1
        done
        alive "$pidfile" && kill -KILL "$(cat "$pidfile")"
        rm -f "$pidfile"
        echo "services: $name stopped"
    done
}

status() {
    local rc=0
    for s in "${services[@]}"; do
        local name="${s%%:*}"
        [[ -x "$bin/sb-$name" ]] || { echo "services: $name not built"; continue; }
        if alive "$run/$name.pid"; then echo "services: $name up"; else echo "services: $name down"; rc=1; fi
    done
    return $rc
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
