#!/usr/bin/env bash
# make demo: build, start the local stack and the built services, prepare the stack
# (migrations, topics, sample agents/customers/policies), send real-format contacts on
# every channel, read the resulting events back from Kafka and print a summary.
# The stack stays up for exploring; `deploy/local/stack.sh down` stops it.
# Ctrl-C stops the services cleanly.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
if ! cmake --build build -j "$(nproc)" >build/demo-build.log 2>&1; then
    tail -n 30 build/demo-build.log >&2
    echo "demo: the build failed (build/demo-build.log)" >&2
    exit 1
fi
echo "== build: $(ls build/bin | tr '\n' ' ')"

bash deploy/local/stack.sh up
# shellcheck source=/dev/null
source deploy/local/env
build/bin/sbctl migrate
build/bin/sbctl topics create | sed 's/^/topics: /'
build/bin/sbctl load agents deploy/config/agents.sample.json
build/bin/sbctl load customers deploy/config/customers.sample.csv
build/bin/sbctl load policies deploy/config/policies.json

trap 'bash deploy/local/services.sh down' EXIT INT TERM
bash deploy/local/services.sh up
python3 deploy/local/demo.py "$@"
echo
echo "The stack is still running (psql, redis-cli, kcat: source deploy/local/env)."
echo "Stop it with: deploy/local/stack.sh down"
