#!/usr/bin/env bash
# The local stack of the demo, the tests and the benchmark (DESIGN.md "Local stack"):
# PostgreSQL on 127.0.0.1:15432, Redis on 127.0.0.1:16379 and a single-node KRaft Kafka
# on 127.0.0.1:19092, data under .sb-local/ at the repository root.
#   stack.sh up      start what is not running and wait until each answers
#   stack.sh down    stop exactly what up started (pid files), leave no process behind
#   stack.sh status  one line per component; exit 0 only when all are up
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
state="$root/.sb-local"
pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
pg_user=postgres # PostgreSQL refuses to run as root
pg_data="$state/pg/data"
pg_run="$state/pg/run"
redis_dir="$state/redis"
kafka_dir="$state/kafka"
kafka_lib="$root/deploy/kafka/lib"
PG_PORT=15432
REDIS_PORT=16379
KAFKA_PORT=19092

log() { echo "stack: $*"; }
die() {
    echo "stack: $*" >&2
    exit 1
}

as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u "$pg_user" -- "$@"
    else
        "$@"
    fi
}

alive() { # pidfile
    [[ -f "$1" ]] && kill -0 "$(head -1 "$1")" 2>/dev/null
}

wait_for() { # name seconds logfile command…
    local name="$1" secs="$2" logf="$3"
    shift 3
    local i
    for ((i = 0; i < secs * 5; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "stack: $name did not become ready in ${secs}s; last log lines:" >&2
    tail -n 30 "$logf" >&2 || true
    return 1
}

pg_ready() { "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
redis_ready() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }
kafka_ready() { kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 3 2>/dev/null | grep -q "1 brokers"; }

pg_up() {
    if alive "$pg_data/postmaster.pid" && pg_ready; then
        log "postgresql already running"
        return
    fi
    mkdir -p "$pg_data" "$pg_run"
    if [[ "$(id -u)" == 0 ]]; then
        chown -R "$pg_user" "$state/pg"
        chmod 700 "$pg_data"
    fi
    if [[ ! -f "$pg_data/PG_VERSION" ]]; then
        log "initialising postgresql in $pg_data"
        as_pg "$pgbin/initdb" -D "$pg_data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
            >"$state/pg/initdb.log" 2>&1 || die "initdb failed: see $state/pg/initdb.log"
        cat >>"$pg_data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$pg_run'
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
log_min_messages = warning
CONF
        cat >"$pg_data/pg_hba.conf" <<HBA
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
HBA
    fi
    as_pg "$pgbin/pg_ctl" -D "$pg_data" -l "$state/pg/postgresql.log" -w -t 60 start >/dev/null ||
        { tail -n 30 "$state/pg/postgresql.log" >&2; die "postgresql did not start"; }
    wait_for postgresql 60 "$state/pg/postgresql.log" pg_ready
    # The application database and role (idempotent).
    as_pg "$pgbin/psql" -q -h "$pg_run" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
SELECT 'CREATE ROLE switchboard LOGIN PASSWORD ''switchboard'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'switchboard') \gexec
SELECT 'CREATE DATABASE switchboard OWNER switchboard'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'switchboard') \gexec
SQL
    log "postgresql up on 127.0.0.1:$PG_PORT"
}

redis_up() {
    if alive "$redis_dir/redis.pid" && redis_ready; then
        log "redis already running"
        return
    fi
    mkdir -p "$redis_dir"
    cat >"$redis_dir/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
daemonize yes
pidfile $redis_dir/redis.pid
logfile $redis_dir/redis.log
dir $redis_dir
appendonly yes
appendfsync everysec
save ""
CONF
    redis-server "$redis_dir/redis.conf" || die "redis did not start"
    wait_for redis 30 "$redis_dir/redis.log" redis_ready
    log "redis up on 127.0.0.1:$REDIS_PORT"
}

kafka_up() {
    if alive "$kafka_dir/kafka.pid" && kafka_ready; then
        log "kafka already running"
        return
    fi
    [[ -f "$kafka_lib/.version" ]] || die "kafka jars missing: run deploy/setup.sh"
    mkdir -p "$kafka_dir/data"
    sed "s#@DATA@#$kafka_dir/data#" "$root/deploy/kafka/server.properties.in" \
        >"$kafka_dir/server.properties"
    local java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true
        -Dkafka.logs.dir="$kafka_dir" -Dlog4j2.configurationFile="$root/deploy/kafka/log4j2.yaml")
    if [[ ! -f "$kafka_dir/data/meta.properties" ]]; then
        local id
        id="$(java -cp "$kafka_lib/*" "${java_opts[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
        echo "$id" >"$kafka_dir/cluster.id"
        java -cp "$kafka_lib/*" "${java_opts[@]}" kafka.tools.StorageTool format -t "$id" \
            -c "$kafka_dir/server.properties" >"$kafka_dir/format.log" 2>&1 ||
            die "kafka storage format failed: see $kafka_dir/format.log"
    fi
    nohup java -cp "$kafka_lib/*" "${java_opts[@]}" kafka.Kafka "$kafka_dir/server.properties" \
        >"$kafka_dir/stdout.log" 2>&1 </dev/null &
    echo $! >"$kafka_dir/kafka.pid"
    if ! wait_for kafka 120 "$kafka_dir/kafka.log" kafka_ready; then
        tail -n 20 "$kafka_dir/stdout.log" >&2 || true
        die "kafka did not start"
    fi
    log "kafka up on 127.0.0.1:$KAFKA_PORT"
}

stop_pid() { # name pidfile seconds
    local name="$1" pidfile="$2" secs="$3" pid i
    if ! alive "$pidfile"; then
        rm -f "$pidfile"
        return
    fi
    pid="$(head -1 "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop in ${secs}s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$pidfile"
    log "$name stopped"
}

down() {
    stop_pid kafka "$kafka_dir/kafka.pid" 30
    if alive "$redis_dir/redis.pid"; then
        stop_pid redis "$redis_dir/redis.pid" 15
    fi
    if alive "$pg_data/postmaster.pid"; then
        as_pg "$pgbin/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null ||
            stop_pid postgresql "$pg_data/postmaster.pid" 10
        log "postgresql stopped"
    fi
}

status() {
    local ok=0
    if alive "$pg_data/postmaster.pid" && pg_ready; then log "postgresql up (127.0.0.1:$PG_PORT)"; else log "postgresql down"; ok=1; fi
    if alive "$redis_dir/redis.pid" && redis_ready; then log "redis up (127.0.0.1:$REDIS_PORT)"; else log "redis down"; ok=1; fi
    if alive "$kafka_dir/kafka.pid" && kafka_ready; then log "kafka up (127.0.0.1:$KAFKA_PORT)"; else log "kafka down"; ok=1; fi
    return $ok
}

case "${1:-}" in
up)
    mkdir -p "$state"
    pg_up
    redis_up
    kafka_up
    ;;
down) down ;;
status) status ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
