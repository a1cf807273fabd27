#!/usr/bin/env bash
# Checks that the local stack (deploy/local/stack.sh up) answers as the services expect:
# stack.sh status, PostgreSQL as the application role, Redis, Kafka metadata, and on a
# throw-away topic an idempotent keyed produce and a consumer-group consume that resumes
# from its committed offsets. Uses SB_KAFKA_BROKERS, SB_PG_DSN and SB_REDIS_URL when set,
# otherwise deploy/local/env. Prints each check; exits non-zero when any fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -z "${SB_KAFKA_BROKERS:-}" || -z "${SB_PG_DSN:-}" || -z "${SB_REDIS_URL:-}" ]]; then
    # shellcheck source=/dev/null
    source "$root/deploy/local/env"
fi
kafka_lib="$root/deploy/kafka/lib"
topic="sb.stacktest.$$.$RANDOM"
group="sb-stacktest-$$-$RANDOM"
tmp="$(mktemp -d)"
failures=0

pass() { echo "ok   - $*"; }
fail() {
    echo "FAIL - $*" >&2
    failures=$((failures + 1))
}
topic_cmd() {
    timeout 60 java -Xmx256m -cp "$kafka_lib/*" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$SB_KAFKA_BROKERS" "$@"
}
cleanup() {
    if [[ -f "$tmp/topic-created" ]]; then
        topic_cmd --delete --topic "$topic" >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# 1. stack.sh status: three components, all up.
if status="$(bash "$root/deploy/local/stack.sh" status 2>&1)"; then
    if [[ "$(grep -c ' up ' <<<"$status")" == 3 ]]; then
        pass "stack.sh status: all three up"
    else
        fail "stack.sh status exited 0 but did not list three components up: $status"
    fi
else
    fail "stack.sh status: $(tr '\n' ';' <<<"$status")"
fi

# 2. PostgreSQL as the application role, over TCP with its password.
if out="$(psql "$SB_PG_DSN" -X -q -t -A -v ON_ERROR_STOP=1 \
    -c 'SELECT 1' -c "SELECT current_user || ' ' || current_database()" 2>&1)" &&
    [[ "$out" == $'1\nswitchboard switchboard' ]]; then
    pass "psql: SELECT 1 as switchboard on database switchboard"
else
    fail "psql $SB_PG_DSN: $out"
fi

# 3. Redis: PING, and a key written, read back and removed.
key="sb:stacktest:$$"
if [[ "$(redis-cli -u "$SB_REDIS_URL" ping 2>&1)" == PONG ]] &&
    [[ "$(redis-cli -u "$SB_REDIS_URL" set "$key" v EX 60 2>&1)" == OK ]] &&
    [[ "$(redis-cli -u "$SB_REDIS_URL" get "$key" 2>&1)" == v ]] &&
    [[ "$(redis-cli -u "$SB_REDIS_URL" del "$key" 2>&1)" == 1 ]]; then
    pass "redis-cli: PING, SET, GET, DEL"
else
    fail "redis-cli -u $SB_REDIS_URL: PING/SET/GET/DEL"
fi

# 4. Kafka metadata: one broker, at the address the clients were given.
if md="$(kcat -b "$SB_KAFKA_BROKERS" -L -m 10 2>&1)" &&
    grep -q "^ 1 brokers:" <<<"$md" && grep -q "broker 1 at $SB_KAFKA_BROKERS" <<<"$md"; then
    pass "kcat -L: broker 1 at $SB_KAFKA_BROKERS"
else
    fail "kcat -b $SB_KAFKA_BROKERS -L: $md"
fi

# 5. A topic made with Kafka's own admin command (auto-creation is off).
if topic_cmd --create --topic "$topic" --partitions 3 --replication-factor 1 \
    >"$tmp/create.log" 2>&1; then
    touch "$tmp/topic-created"
    pass "TopicCommand: created $topic (3 partitions)"
else
    fail "TopicCommand --create $topic: $(tail -n 5 "$tmp/create.log")"
fi

# 6. Idempotent keyed produce (acks=all), as the services produce.
n=120
for i in $(seq 1 "$n"); do echo "k$((i % 8)):$i"; done >"$tmp/in"
if [[ -f "$tmp/topic-created" ]] &&
    timeout 30 kcat -b "$SB_KAFKA_BROKERS" -P -t "$topic" -K: \
        -X enable.idempotence=true -X acks=all -X linger.ms=5 <"$tmp/in" 2>"$tmp/produce.err"; then
    pass "kcat -P (enable.idempotence=true, acks=all): $n keyed messages"
else
    fail "idempotent produce: $(tail -n 5 "$tmp/produce.err" 2>/dev/null)"
fi

# consume GROUP COUNT: consume COUNT messages in consumer group GROUP ("key value" lines).
consume() {
    timeout 45 kcat -b "$SB_KAFKA_BROKERS" -G "$1" -X auto.offset.reset=earliest \
        -X session.timeout.ms=6000 -c "$2" -q -f '%p %k %s\n' "$topic" 2>>"$tmp/consume.err"
}

# 7. Consumer-group consume: every message once, each key in one partition, in order.
if [[ -f "$tmp/topic-created" ]] && consume "$group" "$n" >"$tmp/out"; then
    if [[ "$(wc -l <"$tmp/out")" == "$n" ]] &&
        [[ "$(cut -d' ' -f3 "$tmp/out" | sort -n | uniq | wc -l)" == "$n" ]] &&
        [[ "$(cut -d' ' -f1,2 "$tmp/out" | sort -u | wc -l)" == 8 ]] &&
        awk '{ if (($2 in last) && $3 <= last[$2]) bad = 1; last[$2] = $3 } END { exit bad }' "$tmp/out"; then
        pass "kcat -G: $n messages once each, per-key order kept"
    else
        fail "kcat -G: wrong messages received ($(wc -l <"$tmp/out") lines)"
    fi
else
    fail "kcat -G $group: $(tail -n 5 "$tmp/consume.err" 2>/dev/null)"
fi

# 8. The group resumes from its committed offsets: only new messages come back.
if [[ -f "$tmp/topic-created" ]] &&
    printf 'k1:%s\n' 1001 1002 1003 |
    timeout 30 kcat -b "$SB_KAFKA_BROKERS" -P -t "$topic" -K: -X enable.idempotence=true \
        2>>"$tmp/produce.err" &&
    consume "$group" 3 >"$tmp/out2" &&
    [[ "$(cut -d' ' -f3 "$tmp/out2" | tr '\n' ' ')" == "1001 1002 1003 " ]]; then
    pass "kcat -G again: resumed after the committed offsets"
else
    fail "consumer group resume: got $(tr '\n' ' ' <"$tmp/out2" 2>/dev/null)"
fi

if ((failures > 0)); then
    echo "stack_test: $failures check(s) failed" >&2
    exit 1
fi
echo "stack_test: all checks passed"
