#!/usr/bin/env bash
# Integration test of sbctl against the local stack: idempotent migrations and topic
# creation, loading reference data twice, refusing a bad file with its line number and
# writing nothing, token hashing, help and exit codes.
set -uo pipefail
root="${SB_REPO_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
bin="${SB_BIN_DIR:-$root/build/bin}"
sbctl="$bin/sbctl"
export PGPASSWORD=switchboard
psql_q() { psql -h 127.0.0.1 -p 15432 -U switchboard -d switchboard -tAc "$1"; }
failures=0
passes=0
check() { # description command…
    local desc="$1"
    shift
    if "$@"; then
        passes=$((passes + 1))
    else
        echo "FAIL: $desc" >&2
        failures=$((failures + 1))
    fi
}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Migrations: applying twice changes nothing.
"$sbctl" migrate >"$tmp/m1" 2>&1
check "first migrate succeeds" grep -q "schema at version" "$tmp/m1"
v1="$(psql_q 'select max(version) from schema_migrations')"
n1="$(psql_q 'select count(*) from schema_migrations')"
"$sbctl" migrate >"$tmp/m2" 2>&1
check "second migrate applies nothing" grep -q "(applied 0)" "$tmp/m2"
check "version unchanged" test "$v1" = "$(psql_q 'select max(version) from schema_migrations')"
check "migration rows unchanged" test "$n1" = "$(psql_q 'select count(*) from schema_migrations')"

# Topics: idempotent, all seven with their partition counts.
check "topics create" "$sbctl" topics create >/dev/null
check "topics create again" "$sbctl" topics create >"$tmp/t2"
check "second run reports existing topics" test "$(grep -c ': exists' "$tmp/t2")" = 7
kcat -b 127.0.0.1:19092 -L >"$tmp/md"
for t in sb.contacts.v1:12 sb.tickets.v1:12 sb.routing.v1:12 sb.activity.v1:12 \
    sb.presence.v1:6 sb.sla.v1:12 sb.dlq.v1:6; do
    check "topic ${t%%:*} has ${t#*:} partitions" \
        grep -q "topic \"${t%%:*}\" with ${t#*:} partitions" "$tmp/md"
done

# Reference data: loading twice gives the same counts.
for k in agents:agents.sample.json customers:customers.sample.csv policies:policies.json; do
    check "load ${k%%:*}" "$sbctl" load "${k%%:*}" "$root/deploy/config/${k#*:}"
done
counts1="$(psql_q 'select (select count(*) from agents), (select count(*) from customers), (select count(*) from customer_identities), (select count(*) from sla_policies), (select count(*) from agent_skills)')"
for k in agents:agents.sample.json customers:customers.sample.csv policies:policies.json; do
    "$sbctl" load "${k%%:*}" "$root/deploy/config/${k#*:}" >/dev/null
done
counts2="$(psql_q 'select (select count(*) from agents), (select count(*) from customers), (select count(*) from customer_identities), (select count(*) from sla_policies), (select count(*) from agent_skills)')"
check "second load changes no counts ($counts1)" test "$counts1" = "$counts2"

# A bad field on line 3: refused with the line number, nothing written.
printf 'customer_no,name,annual_spend\nZ1,Good,10\nZ2,Bad,lots\n' >"$tmp/bad.csv"
"$sbctl" load customers "$tmp/bad.csv" 2>"$tmp/bad.err"
check "bad file exits 1" test $? -eq 1
check "error names line 3 and the field" grep -q 'bad.csv:3: field "annual_spend"' "$tmp/bad.err"
check "nothing written" test "$(psql_q "select count(*) from customers where customer_no in ('Z1','Z2')")" = 0

# Tokens: only the hash is stored.
token="$("$sbctl" token create --role agent --agent a-presale-2)"
check "token printed" grep -Eq '^sbt_[0-9a-f]{64}$' <<<"$token"
hash="$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
check "hash stored" test "$(psql_q "select count(*) from api_tokens where token_sha256 = '$hash'")" = 1
check "clear token not stored" test "$(psql_q "select count(*) from api_tokens where token_sha256 = '$token'")" = 0

# Help and exit codes.
for c in "" migrate "topics" "load" "token" "inspect"; do
    # shellcheck disable=SC2086
    check "sbctl $c --help exits 0" "$sbctl" $c --help >/dev/null
done
"$sbctl" frobnicate >/dev/null 2>&1
check "unknown command exits 2" test $? -eq 2
"$sbctl" --pg-dsn "postgresql://x@127.0.0.1:1/x" migrate >/dev/null 2>"$tmp/unreach"
check "unreachable database exits 1" test $? -eq 1
check "with one line" test "$(wc -l <"$tmp/unreach")" = 1

echo "$passes passed, $failures failed"
test "$failures" = 0
