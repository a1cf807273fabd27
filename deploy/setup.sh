#!/usr/bin/env bash
# Installs what Switchboard needs on a fresh Debian 12 machine, and nothing twice:
# Debian packages (compilers, -dev libraries, PostgreSQL, Redis, a headless JDK, Maven,
# kcat, Python test modules) when any is missing, then the Apache Kafka broker jars from
# Maven Central (deploy/kafka/pom.xml) into deploy/kafka/lib when absent or outdated.
# A second run downloads nothing and takes seconds. Safe with CI=true and no stdin.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

packages=(
    build-essential cmake ninja-build pkg-config clang clang-format
    librdkafka-dev libhiredis-dev libjansson-dev libmicrohttpd-dev libssl-dev libpq-dev
    libcmocka-dev libhyperscan-dev libgmime-3.0-dev libexpat1-dev
    postgresql redis-server default-jre-headless maven kafkacat
    python3 python3-jsonschema python3-yaml curl procps
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]} > 0)); then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    sudo_cmd=()
    if [[ "$(id -u)" != 0 ]]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
    # Debian starts the packaged servers; the project runs its own on other ports.
fi

kafka_dir="$root/deploy/kafka"
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$kafka_dir/pom.xml")"
stamp="$kafka_dir/lib/.version"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$kafka_version" ]]; then
    echo "setup: fetching Apache Kafka $kafka_version broker jars from Maven Central"
    rm -rf "$kafka_dir/lib"
    mvn -q -B -f "$kafka_dir/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$kafka_dir/lib" -DincludeScope=runtime </dev/null
    echo "$kafka_version" >"$stamp"
fi
echo "setup: ready (Kafka $kafka_version, $(ls "$kafka_dir/lib" | wc -l) jars)"
