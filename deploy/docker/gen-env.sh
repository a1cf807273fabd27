#!/usr/bin/env bash
# Writes the environment files of docker-compose.yml with fresh random secrets:
#   switchboard.env  SB_PG_DSN (with the PostgreSQL password), SB_ADMIN_TOKEN
#   ingest.env       SB_SECRET_API/EMAIL/CHAT/SOCIAL/PHONE, SB_WECHAT_TOKEN
#   postgres.env     POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD
#   grafana.env      GF_SECURITY_ADMIN_USER, GF_SECURITY_ADMIN_PASSWORD
# A file that exists is left alone (rotating a secret is a deliberate step, see
# docs/operations.md), so running this again is harmless.
#   gen-env.sh [--dir DIR] [--pg-host HOST] [--pg-port PORT]
# DIR defaults to deploy/docker/env; HOST:PORT is where the services reach PostgreSQL
# (postgres:5432 inside the compose network). Files are created mode 0600.
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env"
pg_host=postgres
pg_port=5432
while (($# > 0)); do
    case "$1" in
    --dir)
        dir="$2"
        shift 2
        ;;
    --pg-host)
        pg_host="$2"
        shift 2
        ;;
    --pg-port)
        pg_port="$2"
        shift 2
        ;;
    *)
        echo "usage: $0 [--dir DIR] [--pg-host HOST] [--pg-port PORT]" >&2
        exit 2
        ;;
    esac
done
mkdir -p "$dir"
umask 077

# 32 random bytes as 64 hex digits: safe in a URL, an env file and a shell.
secret() { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }

# write NAME CONTENT: creates DIR/NAME unless it exists.
write() {
    if [[ -e "$dir/$1" ]]; then
        echo "gen-env: $dir/$1 exists, kept"
        return 0
    fi
    printf '%s\n' "$2" >"$dir/$1.tmp"
    mv "$dir/$1.tmp" "$dir/$1"
    echo "gen-env: wrote $dir/$1"
}

# The PostgreSQL password goes into two files: reuse the one already written.
pg_password=""
if [[ -f "$dir/postgres.env" ]]; then
    pg_password="$(sed -n 's/^POSTGRES_PASSWORD=//p' "$dir/postgres.env" | tail -n 1)"
fi
[[ -n "$pg_password" ]] || pg_password="$(secret)"

write postgres.env "POSTGRES_USER=switchboard
POSTGRES_DB=switchboard
POSTGRES_PASSWORD=$pg_password"

write switchboard.env "SB_PG_DSN=postgresql://switchboard:$pg_password@$pg_host:$pg_port/switchboard
SB_ADMIN_TOKEN=$(secret)"

write ingest.env "SB_SECRET_API=$(secret)
SB_SECRET_EMAIL=$(secret)
SB_SECRET_CHAT=$(secret)
SB_SECRET_SOCIAL=$(secret)
SB_SECRET_PHONE=$(secret)
SB_WECHAT_TOKEN=$(secret)"

write grafana.env "GF_SECURITY_ADMIN_USER=admin
GF_SECURITY_ADMIN_PASSWORD=$(secret)"
