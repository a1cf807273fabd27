#!/usr/bin/env bash
# sbctl end to end against the local stack (deploy/local/stack.sh up):
#  - migrate twice: the second run applies nothing, version and rows unchanged; two
#    concurrent runs on an empty database apply every file exactly once;
#  - topics create twice: idempotent, and kcat lists every topic of proto/topics.json
#    with its partition count;
#  - the sample agents, customers and policies loaded twice: same counts, no row
#    rewritten the second time;
#  - a CSV with a bad field on line 3 is refused with the line and the field named,
#    and nothing is written;
#  - token create stores a 64-hex SHA-256 and never the token;
#  - --help everywhere exits 0; unknown commands exit 2; an unreachable database or
#    broker exits 1 with one line.
# Run from the repository root (ctest does); binaries from $SB_BIN_DIR.
set -uo pipefail
root="${SB_REPO_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
cd "$root" || exit 1
sbctl="${SB_BIN_DIR:-$root/build/bin}/sbctl"
export SB_PG_DSN="${SB_PG_DSN:-postgresql://switchboard:switchboard@127.0.0.1:15432/switchboard}"
export SB_KAFKA_BROKERS="${SB_KAFKA_BROKERS:-127.0.0.1:19092}"
tmp="$(mktemp -d)"
db="sbctl_it_$$"
trap 'q "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; rm -rf "$tmp"' EXIT

passes=0
failures=0
ok() { passes=$((passes + 1)); }
bad() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
check() { # description, then a command that must succeed
    local desc="$1"
    shift
    if "$@"; then ok; else bad "$desc"; fi
}
expect_eq() { # description, expected, actual
    if [[ "$2" == "$3" ]]; then ok; else bad "$1: expected [$2], got [$3]"; fi
}
q() {
    PGOPTIONS="-c client_min_messages=warning" psql "$SB_PG_DSN" -X -q -v ON_ERROR_STOP=1 -tAc "$1"
}
# The DSN of another database on the same server (migrations also create objects
# outside their schema — schema bi, grants — so an empty database is the faithful start).
dsn_of_db() {
    python3 - "$SB_PG_DSN" "$1" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit(u._replace(path="/" + sys.argv[2])))
PY
}
# The reference rows sbctl load writes (customers and identities of the sample only:
# intake may add provisional customers meanwhile).
ref_rows="SELECT xmin FROM agents UNION ALL SELECT xmin FROM agent_skills
    UNION ALL SELECT xmin FROM teams UNION ALL SELECT xmin FROM sla_policies
    UNION ALL SELECT xmin FROM customers WHERE customer_no BETWEEN 'C1000' AND 'C1029'
    UNION ALL SELECT xmin FROM customer_identities WHERE customer_no BETWEEN 'C1000' AND 'C1029'"
# Row count and sum of row versions: both unchanged when nothing was rewritten.
ref_state() {
    q "SELECT count(*) || ' ' || coalesce(sum(xmin::text::bigint), 0) FROM ($ref_rows) x"
}

[[ -x "$sbctl" ]] || {
    echo "sbctl not built: $sbctl" >&2
    exit 1
}

# --- migrate -------------------------------------------------------------------------
migrations=(deploy/sql/[0-9][0-9][0-9][0-9]_*.sql)
files="${#migrations[@]}"
latest="${migrations[files - 1]##*/}"
latest=$((10#${latest:0:4}))
"$sbctl" migrate >"$tmp/m1" 2>&1
expect_eq "first migrate exits 0 ($(tr '\n' ' ' <"$tmp/m1"))" 0 $?
check "first migrate prints the version" \
    grep -q "^schema at version $latest (applied [0-9]*)$" "$tmp/m1"
v1="$(q 'SELECT max(version) FROM schema_migrations')"
n1="$(q 'SELECT count(*) FROM schema_migrations')"
expect_eq "schema version is the newest file" "$latest" "$v1"
expect_eq "one schema_migrations row per file" "$files" "$n1"
"$sbctl" migrate >"$tmp/m2" 2>&1
expect_eq "second migrate exits 0" 0 $?
check "second migrate applies nothing" grep -q "^schema at version $latest (applied 0)$" "$tmp/m2"
expect_eq "version unchanged" "$v1" "$(q 'SELECT max(version) FROM schema_migrations')"
expect_eq "schema_migrations rows unchanged" "$n1" "$(q 'SELECT count(*) FROM schema_migrations')"

# Two runs at once on an empty database: the advisory lock serialises them.
q "CREATE DATABASE $db" >/dev/null
"$sbctl" --pg-dsn "$(dsn_of_db "$db")" migrate >"$tmp/c1" 2>&1 &
pid=$!
"$sbctl" --pg-dsn "$(dsn_of_db "$db")" migrate >"$tmp/c2" 2>&1
rc2=$?
wait "$pid"
rc1=$?
expect_eq "concurrent migrations both exit 0" "0 0" "$rc1 $rc2"
expect_eq "each file applied once in total" "$files" \
    "$(cat "$tmp/c1" "$tmp/c2" | grep -c '^applied ')"
expect_eq "concurrent database complete" "$files $latest" \
    "$(PGOPTIONS="-c client_min_messages=warning" psql "$(dsn_of_db "$db")" -X -q -tAc \
        "SELECT count(*) || ' ' || max(version) FROM schema_migrations")"
q "DROP DATABASE $db" >/dev/null

# --- topics --------------------------------------------------------------------------
ntopics="$(python3 -c 'import json; print(len(json.load(open("proto/topics.json"))["topics"]))')"
"$sbctl" topics create >"$tmp/t1" 2>&1
expect_eq "topics create exits 0 ($(tr '\n' ' ' <"$tmp/t1"))" 0 $?
expect_eq "one line per topic" "$ntopics" "$(grep -Ec ': (created|exists)' "$tmp/t1")"
"$sbctl" topics create >"$tmp/t2" 2>&1
expect_eq "topics create again exits 0" 0 $?
expect_eq "second run: every topic exists" "$ntopics" "$(grep -c ': exists' "$tmp/t2")"
kcat -b "$SB_KAFKA_BROKERS" -L -m 10 >"$tmp/md" 2>&1
python3 -c 'import json
for t in json.load(open("proto/topics.json"))["topics"]:
    print(t["name"], t["partitions"])' >"$tmp/want"
while read -r name parts; do
    check "kcat lists $name with $parts partitions" \
        grep -q "topic \"$name\" with $parts partitions" "$tmp/md"
done <"$tmp/want"
expect_eq "seven topics in proto/topics.json" 7 "$ntopics"

# --- load ----------------------------------------------------------------------------
samples="agents:deploy/config/agents.sample.json customers:deploy/config/customers.sample.csv
         policies:deploy/config/policies.json"
for s in $samples; do
    "$sbctl" load "${s%%:*}" "${s#*:}" >"$tmp/l1" 2>&1
    expect_eq "load ${s%%:*} exits 0 ($(tr '\n' ' ' <"$tmp/l1"))" 0 $?
done
state1="$(ref_state)"
for s in $samples; do
    "$sbctl" load "${s%%:*}" "${s#*:}" >/dev/null 2>&1
    expect_eq "load ${s%%:*} again exits 0" 0 $?
done
expect_eq "second load: same rows, none rewritten (count, xmin sum)" "$state1" "$(ref_state)"
ids="$(python3 -c 'import json
agents = json.load(open("deploy/config/agents.sample.json"))
print(",".join("'"'"'%s'"'"'" % a["id"] for a in agents))')"
expect_eq "sample agents present" 20 "$(q "SELECT count(*) FROM agents WHERE id IN ($ids)")"
expect_eq "sample customers present, tiers computed" "30 3" \
    "$(q "SELECT count(*) || ' ' || max(tier) FROM customers
          WHERE customer_no BETWEEN 'C1000' AND 'C1029'")"
expect_eq "phone stored normalized (+86 removed)" "C1000" \
    "$(q "SELECT customer_no FROM customer_identities
          WHERE kind = 'phone' AND value = '13800135678'")"
expect_eq "P1 policy" "600 supervisor" \
    "$(q "SELECT first_response_s || ' ' || notify_at_start FROM sla_policies
          WHERE kind = 'band' AND band = 'P1' AND channel IS NULL AND team_id IS NULL
            AND period_kind IS NULL")"

# A bad field on line 3: refused, named, nothing written.
tag="ZT$$"
printf 'customer_no,name,annual_spend\n%sa,Good,10\n%sb,Bad,lots\n' "$tag" "$tag" >"$tmp/bad.csv"
"$sbctl" load customers "$tmp/bad.csv" >"$tmp/bad.out" 2>"$tmp/bad.err"
expect_eq "bad customers file exits 1" 1 $?
check "error names bad.csv, line 3 and the field ($(head -n 1 "$tmp/bad.err"))" \
    grep -q 'bad.csv:3: field "annual_spend": ' "$tmp/bad.err"
expect_eq "nothing written for the bad file" 0 \
    "$(q "SELECT count(*) FROM customers WHERE customer_no LIKE '$tag%'")"
cols="id,name,team,role,languages,skills,capacity_call,capacity_chat,capacity_email"
{
    echo "$cols,capacity_social"
    echo "${tag}-1,Good,${tag}team,agent,zh,order_payment:3,1,3,10,5"
    echo "${tag}-2,Bad,${tag}team,agent,zh,order_payment:3,1,three,10,5"
} >"$tmp/agents.csv"
"$sbctl" load agents "$tmp/agents.csv" >/dev/null 2>"$tmp/agents.err"
expect_eq "bad agents file exits 1" 1 $?
check "agents error: line 3, capacity_chat, not an integer" \
    grep -q 'agents.csv:3: field "capacity_chat": not an integer' "$tmp/agents.err"
expect_eq "nothing written for the bad agents file" "0 0" \
    "$(q "SELECT (SELECT count(*) FROM agents WHERE id LIKE '$tag%') || ' ' ||
                 (SELECT count(*) FROM teams WHERE id LIKE '$tag%')")"

# --- token ---------------------------------------------------------------------------
token="$("$sbctl" token create --role agent --agent a-presale-2)"
expect_eq "token create exits 0" 0 $?
check "token printed as sbt_ and 64 hex digits" grep -Eq '^sbt_[0-9a-f]{64}$' <<<"$token"
hash="$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
expect_eq "its SHA-256 is stored once, 64 hex" "1" \
    "$(q "SELECT count(*) FROM api_tokens WHERE token_sha256 = '$hash'
          AND token_sha256 ~ '^[0-9a-f]{64}\$' AND role = 'agent' AND agent_id = 'a-presale-2'")"
expect_eq "the token itself is stored nowhere" 0 \
    "$(q "SELECT count(*) FROM api_tokens t WHERE t::text LIKE '%${token#sbt_}%'")"
"$sbctl" token create --role agent >/dev/null 2>&1
expect_eq "agent token without --agent is a usage error" 2 $?

# --- help, version, exit codes ---------------------------------------------------------
for c in "" migrate topics load token inspect; do
    # shellcheck disable=SC2086
    "$sbctl" $c --help >"$tmp/help" 2>&1
    expect_eq "sbctl $c --help exits 0" 0 $?
    check "sbctl $c --help prints usage" grep -q '^Usage: sbctl' "$tmp/help"
done
"$sbctl" --version >"$tmp/version"
expect_eq "--version exits 0" 0 $?
expect_eq "--version output" "sbctl 0.1.0|schema version $latest" "$(paste -sd'|' "$tmp/version")"
"$sbctl" frobnicate >/dev/null 2>&1
expect_eq "unknown command exits 2" 2 $?
"$sbctl" topics frobnicate >/dev/null 2>&1
expect_eq "unknown topics subcommand exits 2" 2 $?
"$sbctl" load gadgets x.csv >/dev/null 2>&1
expect_eq "unknown load kind exits 2" 2 $?
"$sbctl" --pg-dsn >/dev/null 2>&1
expect_eq "option without value exits 2" 2 $?
"$sbctl" inspect ticket "no-such-ticket-$$" >/dev/null 2>&1
expect_eq "inspect of an unknown ticket exits 1" 1 $?
for c in "migrate" "load policies deploy/config/policies.json" "token create --role admin" \
    "inspect ticket T-1"; do
    # shellcheck disable=SC2086
    "$sbctl" --pg-dsn "postgresql://nobody@127.0.0.1:1/none" $c >"$tmp/u.out" 2>"$tmp/u.err"
    expect_eq "unreachable database: sbctl $c exits 1" 1 $?
    expect_eq "unreachable database: sbctl $c says so in one line" 1 "$(wc -l <"$tmp/u.err")"
done
"$sbctl" --brokers 127.0.0.1:1 topics list >/dev/null 2>"$tmp/k.err"
expect_eq "unreachable broker exits 1" 1 $?
expect_eq "unreachable broker: one line" 1 "$(wc -l <"$tmp/k.err")"

echo "sbctl_test: $passes passed, $failures failed"
[[ "$failures" == 0 ]]
