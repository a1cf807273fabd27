#!/usr/bin/env bash
# A program given bad configuration (unknown key, wrong type, out of range, unreachable
# broker, dev secret beyond loopback) exits non-zero with exactly one clear line naming
# the problem, and never crashes.
set -uo pipefail
bin="${SB_BIN_DIR:?}/sb-ingest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passes=0
failures=0
expect() { # description want-status needle command…
    local desc="$1" want="$2" needle="$3"
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [[ $rc -ne $want || "$(wc -l <"$tmp/err")" -gt 1 && $want -eq 2 ]] || ! grep -q -- "$needle" "$tmp/err"; then
        echo "FAIL: $desc (status $rc, stderr: $(head -c 300 "$tmp/err"))" >&2
        failures=$((failures + 1))
    else
        passes=$((passes + 1))
    fi
}
echo '{"kafka":{"brokerz":"x"}}' >"$tmp/unknown.json"
echo '{"http":{"port":"8080"}}' >"$tmp/type.json"
echo '{"http":{"port":70000}}' >"$tmp/range.json"
echo '{"http":' >"$tmp/broken.json"
expect "unknown key" 2 'unknown config key "kafka.brokerz"' "$bin" --config "$tmp/unknown.json"
expect "wrong type" 2 'config key "http.port": expected integer' "$bin" --config "$tmp/type.json"
expect "out of range" 2 '"http.port": 70000 is outside' "$bin" --config "$tmp/range.json"
expect "invalid JSON" 2 'invalid JSON at line' "$bin" --config "$tmp/broken.json"
expect "missing file" 2 'no-such.json' "$bin" --config "$tmp/no-such.json"
expect "wrong type in env" 2 'SB_HTTP_PORT' env SB_HTTP_PORT=eighty "$bin"
expect "bad rdkafka property" 1 'kafka property "linger.mss"' env SB_RDKAFKA=linger.mss=5 "$bin"
expect "unreachable broker" 1 'unreachable' env SB_KAFKA_BROKERS=127.0.0.1:1 SB_ADMIN_PORT=0 SB_HTTP_PORT=0 "$bin"
expect "dev secret beyond loopback" 2 'development default' env SB_HTTP_BIND=0.0.0.0 "$bin"
expect "unknown argument" 2 'unknown argument' "$bin" --frobnicate
reporter="$SB_BIN_DIR/sb-reporter"
expect "staffing target of 100 %" 2 '"staffing.service_level" must be above 0 and below 1' \
    env SB_STAFFING_SERVICE_LEVEL=1 "$reporter"
expect "staffing reserves out of order" 2 '"staffing.reserve_high" must be at least' \
    env SB_STAFFING_RESERVE_LOW=0.3 SB_STAFFING_RESERVE_HIGH=0.2 "$reporter"
"$bin" --help >"$tmp/help" 2>&1 && grep -q "SB_KAFKA_BROKERS" "$tmp/help" && passes=$((passes + 1)) ||
    { echo "FAIL: --help" >&2; failures=$((failures + 1)); }
"$bin" --version | grep -q "^sb-ingest " && passes=$((passes + 1)) ||
    { echo "FAIL: --version" >&2; failures=$((failures + 1)); }
echo "$passes passed, $failures failed"
test "$failures" = 0
