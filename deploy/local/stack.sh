#!/usr/bin/env bash
# The local stack of the demo, the tests and the benchmark (DESIGN.md "Local stack"):
# PostgreSQL on 127.0.0.1:15432, Redis on 127.0.0.1:16379 and a single-node KRaft Kafka
# on 127.0.0.1:19092 (controller 127.0.0.1:19093), data and logs under .sb-local/ at the
# repository root. Works from any directory; as root, PostgreSQL runs as an unprivileged
# user (postgres, or sbstack when there is none).
#   stack.sh up      start what is not running, wait until each answers (idempotent)
#   stack.sh down    stop exactly what up started (pid files); no process is left behind
#   stack.sh status  one line per component; exit 0 only when all three are up
#   stack.sh stop COMPONENT    stop one of postgresql, redis, kafka (fault drills, tests)
#   stack.sh start COMPONENT   start it again and wait until it answers (as up does)
# Logs: .sb-local/pg/postgresql.log, .sb-local/redis/redis.log, .sb-local/kafka/kafka.log
# (JVM output in .sb-local/kafka/kafka.out). Kafka's cluster id: .sb-local/kafka/cluster.id.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state="$root/.sb-local"
PG_PORT=15432
REDIS_PORT=16379
KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093

pg_dir="$state/pg" # may be moved out of the tree, see pg_prepare_dir
redis_dir="$state/redis"
kafka_dir="$state/kafka"
kafka_lib="$root/deploy/kafka/lib"

log() { echo "stack: $*"; }
die() {
    echo "stack: $*" >&2
    exit 1
}

pg_bin() {
    local d
    for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        if [[ -x "$d/pg_ctl" ]]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

is_root() { [[ "$(id -u)" == 0 ]]; }

# pid_alive PIDFILE PATTERN: the pid in the file's first line runs a command matching
# PATTERN (so a recycled pid is not mistaken for ours).
pid_alive() {
    local pid
    [[ -r "$1" ]] || return 1
    pid="$(head -n 1 "$1" 2>/dev/null | tr -dc 0-9)"
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until NAME SECONDS LOGFILE COMMAND...: poll COMMAND until it succeeds; on timeout
# print the end of LOGFILE and fail.
wait_until() {
    local name="$1" secs="$2" logf="$3"
    shift 3
    local deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    echo "stack: $name did not answer within ${secs}s; last lines of $logf:" >&2
    tail -n 40 "$logf" >&2 2>/dev/null || true
    return 1
}

# ---------------------------------------------------------------- PostgreSQL
pg_user=""
pg_pick_user() {
    if ! is_root; then
        pg_user="$(id -un)"
    elif id -u postgres >/dev/null 2>&1; then
        pg_user=postgres
    else
        if ! id -u sbstack >/dev/null 2>&1; then
            useradd --system --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin sbstack
        fi
        pg_user=sbstack
    fi
}

as_pg() {
    if is_root; then
        # From /, which that user can always enter (the caller's directory may be closed).
        (cd / && runuser -u "$pg_user" -- "$@")
    else
        "$@"
    fi
}

# PostgreSQL refuses to run as root and its user must reach the data directory. When the
# checkout sits below a directory that user cannot enter (e.g. /root), the data lives in
# /var/tmp/switchboard-<hash>/pg instead and .sb-local/pg is a symlink to it.
pg_prepare_dir() {
    if [[ -L "$state/pg" ]]; then
        pg_dir="$(readlink "$state/pg")"
        mkdir -p "$pg_dir"
    elif is_root && [[ ! -d "$state/pg" ]] && ! runuser -u "$pg_user" -- test -x "$state"; then
        pg_dir="/var/tmp/switchboard-$(printf '%s' "$root" | sha256sum | cut -c1-12)/pg"
        mkdir -p "$pg_dir"
        chmod 755 "$(dirname "$pg_dir")"
        ln -sfn "$pg_dir" "$state/pg"
        log "postgresql data in $pg_dir ($pg_user cannot enter $state)"
    fi
    mkdir -p "$pg_dir/data" "$pg_dir/run"
    if is_root; then
        find "$pg_dir" ! -user "$pg_user" -exec chown "$pg_user" {} +
    fi
    chmod 700 "$pg_dir/data"
}

pg_running() { pid_alive "$pg_dir/data/postmaster.pid" postgres; }

# After a crash (kill -9) the old postmaster may linger a moment as a zombie and its
# children until they notice; a new one would refuse to start meanwhile.
pg_wait_old_server() {
    local pid deadline=$((SECONDS + 15)) st
    pid="$(head -n 1 "$pg_dir/data/postmaster.pid" 2>/dev/null | tr -dc 0-9)" || true
    [[ -n "$pid" ]] || return 0
    while ((SECONDS < deadline)); do
        st="$(ps -o stat=,comm= -p "$pid" 2>/dev/null)" || return 0
        [[ "$st" == Z* || "$st" == *postgres* ]] || return 0
        sleep 0.5
    done
}
pg_ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }

pg_up() {
    if pg_running && pg_ready; then
        log "postgresql already running (pid $(head -n 1 "$pg_dir/data/postmaster.pid"))"
        return 0
    fi
    if ! pg_running && port_open "$PG_PORT"; then
        die "port $PG_PORT is taken by a process this stack did not start"
    fi
    local logf="$pg_dir/postgresql.log"
    if [[ ! -f "$pg_dir/data/PG_VERSION" ]]; then
        log "initialising postgresql in $pg_dir/data"
        as_pg "$PGBIN/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
            >"$pg_dir/initdb.log" 2>&1 || {
            tail -n 20 "$pg_dir/initdb.log" >&2
            die "initdb failed (log: $pg_dir/initdb.log)"
        }
        as_pg tee -a "$pg_dir/data/postgresql.conf" >/dev/null <<CONF

# Switchboard local stack
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$pg_dir/run'
max_connections = 200
shared_buffers = 256MB
log_min_messages = warning
log_timezone = 'UTC'
timezone = 'UTC'
CONF
        # Local socket and the postgres superuser on loopback: no password (dev only).
        # Everyone else on loopback: password (scram-sha-256).
        as_pg tee "$pg_dir/data/pg_hba.conf" >/dev/null <<'HBA'
local   all   all                    trust
host    all   postgres  127.0.0.1/32 trust
host    all   all       127.0.0.1/32 scram-sha-256
HBA
    fi
    if ! pg_running; then
        pg_wait_old_server
        log "starting postgresql"
        # Detached with setsid: a Ctrl-C in the calling terminal must not stop the server.
        local try
        for try in 1 2 3; do
            if as_pg setsid -w "$PGBIN/pg_ctl" -D "$pg_dir/data" -l "$logf" -w -t 60 -s start 9>&-; then
                break
            fi
            if ((try == 3)); then
                tail -n 40 "$logf" >&2 2>/dev/null || true
                die "postgresql did not start (log: $logf)"
            fi
            log "postgresql did not start; trying again in 3s"
            sleep 3
        done
    fi
    wait_until postgresql 60 "$logf" pg_ready || die "postgresql is not ready (log: $logf)"
    # The application role (CREATEDB: the tests migrate scratch databases) and database,
    # and the read-only BI roles (idempotent): sb_bi
    # (granted SELECT on schema bi by migration 0005) and bi_reader, a login in it.
    as_pg "$PGBIN/psql" -q -X -h "$pg_dir/run" -p "$PG_PORT" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || die "could not create role/database switchboard"
SELECT 'CREATE ROLE switchboard LOGIN CREATEDB PASSWORD ''switchboard'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'switchboard') \gexec
ALTER ROLE switchboard CREATEDB;
SELECT 'CREATE DATABASE switchboard OWNER switchboard'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'switchboard') \gexec
SELECT 'CREATE ROLE sb_bi NOLOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sb_bi') \gexec
SELECT 'CREATE ROLE bi_reader LOGIN PASSWORD ''bi_reader'' IN ROLE sb_bi'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bi_reader') \gexec
SQL
    log "postgresql up on 127.0.0.1:$PG_PORT (log: $logf)"
}

pg_down() {
    local pidf="$pg_dir/data/postmaster.pid" pid
    if ! pg_running; then
        log "postgresql not running"
        return 0
    fi
    pid="$(head -n 1 "$pidf")"
    if ! as_pg "$PGBIN/pg_ctl" -D "$pg_dir/data" -m fast -w -t 60 -s stop; then
        log "postgresql did not stop in 60s: immediate shutdown"
        as_pg "$PGBIN/pg_ctl" -D "$pg_dir/data" -m immediate -w -t 30 -s stop ||
            kill -KILL "$pid" 2>/dev/null || true
    fi
    wait_gone "$pid" 10 || die "postgresql (pid $pid) is still running"
    log "postgresql stopped"
}

# ---------------------------------------------------------------- Redis
redis_running() { pid_alive "$redis_dir/redis.pid" redis-server; }
redis_ready() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

redis_up() {
    if redis_running && redis_ready; then
        log "redis already running (pid $(head -n 1 "$redis_dir/redis.pid"))"
        return 0
    fi
    if ! redis_running && port_open "$REDIS_PORT"; then
        die "port $REDIS_PORT is taken by a process this stack did not start"
    fi
    mkdir -p "$redis_dir"
    local logf="$redis_dir/redis.log"
    if ! redis_running; then
        cat >"$redis_dir/redis.conf" <<CONF
# Generated by deploy/local/stack.sh: the local stack's Redis (AOF, no RDB snapshots).
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile $redis_dir/redis.pid
logfile $logf
dir $redis_dir
appendonly yes
appendfsync everysec
save ""
databases 16
CONF
        log "starting redis"
        rm -f "$redis_dir/redis.pid"
        redis-server "$redis_dir/redis.conf" 9>&- || {
            tail -n 40 "$logf" >&2 2>/dev/null || true
            die "redis did not start (log: $logf)"
        }
    fi
    wait_until redis 30 "$logf" redis_ready || die "redis is not ready (log: $logf)"
    wait_until redis 10 "$logf" redis_running || die "redis wrote no pid file (log: $logf)"
    log "redis up on 127.0.0.1:$REDIS_PORT (log: $logf)"
}

redis_down() {
    if ! redis_running; then
        log "redis not running"
        rm -f "$redis_dir/redis.pid"
        return 0
    fi
    stop_pid redis "$redis_dir/redis.pid" 30
}

# ---------------------------------------------------------------- Kafka
kafka_running() { pid_alive "$kafka_dir/kafka.pid" kafka.Kafka; }
kafka_ready() {
    local md
    md="$(kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 5 2>/dev/null)" || return 1
    [[ "$md" == *"broker 1 at 127.0.0.1:$KAFKA_PORT"* ]]
}

kafka_java_opts() {
    printf '%s\n' -Xms512m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        "-Dkafka.logs.dir=$kafka_dir" \
        "-Dlog4j2.configurationFile=$root/deploy/kafka/log4j2.yaml"
}

kafka_up() {
    if kafka_running && kafka_ready; then
        log "kafka already running (pid $(head -n 1 "$kafka_dir/kafka.pid"))"
        return 0
    fi
    if ! kafka_running && { port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT"; }; then
        die "port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT is taken by a process this stack did not start"
    fi
    [[ -f "$kafka_lib/.stamp" ]] || die "no Kafka jars in $kafka_lib: run deploy/setup.sh"
    command -v java >/dev/null || die "java not found: run deploy/setup.sh"
    mkdir -p "$kafka_dir/data"
    local logf="$kafka_dir/kafka.log" opts from
    mapfile -t opts < <(kafka_java_opts)
    from="$(stat -c %s "$logf" 2>/dev/null || echo 0)" # show only this start's log lines
    if ! kafka_running; then
        sed "s#@DATA@#$kafka_dir/data#g" "$root/deploy/kafka/server.properties.in" \
            >"$kafka_dir/server.properties"
        if [[ ! -f "$kafka_dir/data/meta.properties" ]]; then
            # The cluster id is made once and kept: formatting again after the data
            # directory was removed gives the same cluster.
            if [[ ! -s "$kafka_dir/cluster.id" ]]; then
                local id
                id="$(java "${opts[@]}" -cp "$kafka_lib/*" kafka.tools.StorageTool random-uuid \
                    2>"$kafka_dir/format.log")" || true
                id="$(tail -n 1 <<<"$id")"
                [[ "$id" =~ ^[A-Za-z0-9_-]{22}$ ]] ||
                    die "could not generate a cluster id (log: $kafka_dir/format.log)"
                echo "$id" >"$kafka_dir/cluster.id"
            fi
            log "formatting kafka storage (cluster id $(cat "$kafka_dir/cluster.id"))"
            java "${opts[@]}" -cp "$kafka_lib/*" kafka.tools.StorageTool format \
                -t "$(cat "$kafka_dir/cluster.id")" -c "$kafka_dir/server.properties" \
                >>"$kafka_dir/format.log" 2>&1 || {
                tail -n 20 "$kafka_dir/format.log" >&2
                die "kafka storage format failed (log: $kafka_dir/format.log)"
            }
        fi
        log "starting kafka"
        # Detached with setsid (a Ctrl-C in the calling terminal must not stop it); the shell writes
        # its pid, then becomes the JVM.
        # shellcheck disable=SC2016
        setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka "$kafka_dir/kafka.pid" \
            java "${opts[@]}" -cp "$kafka_lib/*" kafka.Kafka "$kafka_dir/server.properties" \
            >"$kafka_dir/kafka.out" 2>&1 </dev/null 9>&- &
        sleep 0.5
    fi
    # Startup takes 10-20 s on two cores; give up early if the JVM exits.
    local deadline=$((SECONDS + 90))
    until kafka_ready; do
        if ! kafka_running || ((SECONDS >= deadline)); then
            echo "stack: kafka did not answer on 127.0.0.1:$KAFKA_PORT; last lines of $logf and kafka.out:" >&2
            tail -c "+$((from + 1))" "$logf" 2>/dev/null | tail -n 40 >&2 || true
            tail -n 20 "$kafka_dir/kafka.out" >&2 2>/dev/null || true
            die "kafka is not ready (log: $logf)"
        fi
        sleep 0.5
    done
    log "kafka up on 127.0.0.1:$KAFKA_PORT (log: $logf)"
}

kafka_down() {
    if ! kafka_running; then
        log "kafka not running"
        rm -f "$kafka_dir/kafka.pid"
        return 0
    fi
    stop_pid kafka "$kafka_dir/kafka.pid" 60
}

# ---------------------------------------------------------------- common
wait_gone() { # pid seconds
    local deadline=$((SECONDS + $2))
    while kill -0 "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

stop_pid() { # name pidfile seconds: SIGTERM, wait, SIGKILL
    local name="$1" pidf="$2" secs="$3" pid
    pid="$(head -n 1 "$pidf" | tr -dc 0-9)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$secs"; then
        log "$name (pid $pid) did not stop within ${secs}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || die "$name (pid $pid) is still running"
    fi
    rm -f "$pidf"
    log "$name stopped"
}

lock() {
    mkdir -p "$state"
    chmod a+x "$state" # the PostgreSQL user must be able to enter it
    exec 9>"$state/.lock"
    flock -w 300 9 || die "another stack.sh holds $state/.lock"
}

cmd_up() {
    lock
    pg_pick_user
    pg_prepare_dir
    pg_up
    redis_up
    kafka_up
}

cmd_down() {
    lock
    [[ -L "$state/pg" ]] && pg_dir="$(readlink "$state/pg")"
    pg_pick_user
    kafka_down
    redis_down
    pg_down
}

cmd_status() {
    local ok=0
    [[ -L "$state/pg" ]] && pg_dir="$(readlink "$state/pg")"
    if pg_running && pg_ready; then
        echo "postgresql up   127.0.0.1:$PG_PORT (pid $(head -n 1 "$pg_dir/data/postmaster.pid"))"
    else
        echo "postgresql down"
        ok=1
    fi
    if redis_running && redis_ready; then
        echo "redis      up   127.0.0.1:$REDIS_PORT (pid $(head -n 1 "$redis_dir/redis.pid"))"
    else
        echo "redis      down"
        ok=1
    fi
    if kafka_running && kafka_ready; then
        echo "kafka      up   127.0.0.1:$KAFKA_PORT (pid $(head -n 1 "$kafka_dir/kafka.pid"))"
    else
        echo "kafka      down"
        ok=1
    fi
    return "$ok"
}

# One component (postgresql|redis|kafka): the fault tests stop one and start it again.
cmd_one() {
    local verb="$1" comp="${2:-}"
    case "$comp" in
    postgresql | redis | kafka) ;;
    *) die "usage: $0 $verb postgresql|redis|kafka" ;;
    esac
    lock
    pg_pick_user
    if [[ "$verb" == start ]]; then
        pg_prepare_dir
    elif [[ -L "$state/pg" ]]; then
        pg_dir="$(readlink "$state/pg")"
    fi
    case "$comp" in
    postgresql) comp=pg ;;
    esac
    "${comp}_$([[ "$verb" == start ]] && echo up || echo down)"
}

PGBIN="$(pg_bin)" || die "PostgreSQL server binaries not found: run deploy/setup.sh"

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
start | stop) cmd_one "$1" "${2:-}" ;;
*)
    echo "usage: $0 up|down|status|start COMPONENT|stop COMPONENT" >&2
    exit 2
    ;;
esac
