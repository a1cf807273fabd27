#!/usr/bin/env bash
# Prints the X-SB-Signature header value for a body read from stdin:
#   sign.sh SECRET < body.json   →   t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
set -euo pipefail
secret="$1"
t="$(date +%s)"
body="$(cat; printf x)"
body="${body%x}"
printf 't=%s,v1=%s\n' "$t" "$(printf '%s.%s' "$t" "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)"
