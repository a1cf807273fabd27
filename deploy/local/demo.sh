#!/usr/bin/env bash
# make demo: build, start the local stack and the built services, prepare the stack
# (migrations, topics, sample agents/customers/policies), send real-format contacts on
# every channel and read the resulting events back, then a minute of mixed load with a
# few hundred simulated agents (sb-loadgen) and a summary a manager reads.
# SB_DEMO_SECONDS (60), SB_DEMO_RATE (contacts/s, 15), SB_DEMO_AGENTS (200).
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
# The services start at the end of the topics (older traffic of the local stack, e.g.
# test runs, is not the demo's business).
SB_SERVICES_GROUP="demo-$(date +%s)" bash deploy/local/services.sh up
python3 deploy/local/demo.py "$@"

# A minute of a realistic mixed load: Poisson arrivals shaped like a real day of the bank
# call-center log, a promotion peak, an incident burst, and a few hundred simulated agents
# taking the offers, replying, resolving and collecting CSAT.
secs="${SB_DEMO_SECONDS:-60}"
rate="${SB_DEMO_RATE:-15}"
agents="${SB_DEMO_AGENTS:-200}"
summary="$root/.sb-local/demo-loadgen.json"
echo
echo "== load: ${rate} contacts/s for ${secs} s, ${agents} agents (sb-loadgen)"
build/bin/sb-loadgen --rate "$rate" --count $((rate * secs * 2)) --duration "$secs" \
    --agents "$agents" --handle-s 12 --accept-s 2 --drain 20 \
    --peak "$((secs / 3)),$((secs / 6)),2.5" --incident "$((secs / 2)),12" \
    --summary "$summary" >/dev/null
python3 deploy/local/demo_summary.py "$summary"
echo
echo "Dashboard: http://127.0.0.1:8081/#token=${SB_ADMIN_TOKEN:-dev-admin-token}"
if [[ -t 0 && -t 1 ]]; then
    echo "The services keep running for the dashboard; Ctrl-C stops them."
    while sleep 3600; do :; done
fi
echo
echo "The stack is still running (psql, redis-cli, kcat: source deploy/local/env)."
echo "Stop it with: deploy/local/stack.sh down"
