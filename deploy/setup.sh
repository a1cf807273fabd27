#!/usr/bin/env bash
# Installs what Switchboard needs on a Debian 12 machine, and nothing twice (run by
# `make test`, `make demo` and CI):
#   1. Debian packages: compilers and build tools, the -dev libraries, PostgreSQL 15,
#      Redis, a headless JDK, Maven, kcat, Python test modules, Chromium for the dashboard test. Checked with dpkg-query;
#      apt-get runs only when something is missing. Package scripts are kept from
#      starting the system's PostgreSQL/Redis services (the local stack runs its own).
#   2. The Apache Kafka broker jars from Maven Central (deploy/kafka/pom.xml) into
#      deploy/kafka/lib (git-ignored), skipped when deploy/kafka/lib/.stamp matches the
#      pom (Kafka version and pom checksum).
# A second run downloads nothing and takes seconds. Works with CI=true and no stdin;
# uses sudo when not run as root.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

packages=(
    # build
    build-essential gcc clang clang-format cmake ninja-build pkg-config make git
    # libraries the C code links
    librdkafka-dev libhiredis-dev libjansson-dev libmicrohttpd-dev libssl-dev libpq-dev
    libcmocka-dev libhyperscan-dev libgmime-3.0-dev libexpat1-dev libclang-rt-14-dev
    libcurl4-openssl-dev
    # the local stack and its clients
    postgresql postgresql-client redis-server redis-tools default-jre-headless maven kcat
    # scripts and tests
    python3 python3-jsonschema python3-yaml curl ca-certificates procps util-linux wrk
    # deployment checks (tests/deploy): promtool, nginx -t, readelf
    prometheus nginx-light binutils
    # the dashboard's headless-browser test (tests/dashboard)
    chromium fonts-noto-cjk
)

log() { echo "setup: $*"; }

sudo_cmd=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || {
        echo "setup: not root and no sudo" >&2
        exit 1
    }
    sudo_cmd=(sudo -n env DEBIAN_FRONTEND=noninteractive)
fi

# ---------------------------------------------------------------- Debian packages
missing=()
installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)"
for p in "${packages[@]}"; do
    if ! grep -qx "$p installed" <<<"$installed"; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} > 0)); then
    log "installing ${missing[*]}"
    # Keep package scripts from starting services (no systemd here, and the stack uses
    # its own servers on other ports): a temporary policy-rc.d, unless one exists.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n# Temporary, from Switchboard deploy/setup.sh\nexit 101\n' |
            "${sudo_cmd[@]}" tee "$policy" >/dev/null
        "${sudo_cmd[@]}" chmod 755 "$policy"
        trap '"${sudo_cmd[@]}" rm -f "$policy"' EXIT
    fi
    apt_opts=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
        -o Dpkg::Options::=--force-confold)
    "${sudo_cmd[@]}" apt-get update -q -o DPkg::Lock::Timeout=600 </dev/null
    "${sudo_cmd[@]}" apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" </dev/null
else
    log "Debian packages: all ${#packages[@]} present"
fi

# ---------------------------------------------------------------- Kafka broker jars
kafka_dir="$root/deploy/kafka"
lib="$kafka_dir/lib"
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$kafka_dir/pom.xml")"
[[ -n "$kafka_version" ]] || {
    echo "setup: no <kafka.version> in $kafka_dir/pom.xml" >&2
    exit 1
}
want="kafka $kafka_version pom $(sha256sum "$kafka_dir/pom.xml" | cut -d' ' -f1)"
if [[ -f "$lib/.stamp" && "$(cat "$lib/.stamp")" == "$want" ]]; then
    log "Kafka $kafka_version jars present in $lib"
else
    log "fetching Apache Kafka $kafka_version jars from Maven Central into $lib"
    rm -rf "$lib.tmp"
    # (Debian's Maven 3.8.7 prints stray colour codes even with -q -B: filtered out.)
    mvn -B -q -Dstyle.color=never -f "$kafka_dir/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$lib.tmp" -DincludeScope=runtime </dev/null 2>&1 |
        sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d'
    rm -rf "$kafka_dir/target"
    compgen -G "$lib.tmp/kafka_2.13-$kafka_version.jar" >/dev/null || {
        echo "setup: kafka_2.13-$kafka_version.jar was not fetched" >&2
        exit 1
    }
    echo "$want" >"$lib.tmp/.stamp"
    rm -rf "$lib"
    mv "$lib.tmp" "$lib"
    log "$(find "$lib" -name '*.jar' | wc -l) jars in $lib"
fi
log "ready"
