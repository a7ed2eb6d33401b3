#!/usr/bin/env bash
# First measurement of the per-request decision: /auth/check with Bearer and with Basic (both
# on the cache-hit path) against GET /healthz of the same server, in one run, as ratios.
# Usage: bench/auth-check.sh [seconds per scenario, default 10]. Needs wrk (Debian: wrk).
# Traffic goes only to 127.0.0.1; the server is stopped by its pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q
bin=target/release/gatehouse
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cat > "$work/gatehouse.toml" <<TOML
database_url = "sqlite://$work/bench.db"
[[route]]
path_prefix = "/v1/"
scopes = { GET = "read" }
TOML
g() { "$bin" --config "$work/gatehouse.toml" "$@"; }
account=$(g account create --name Bench --json)
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
account_id=$(echo "$account" | field account_id)
secret_key=$(echo "$account" | field secret_key)
# Started directly (not through g) so that $! is the server's own pid.
GATEHOUSE_LISTEN=127.0.0.1:0 RUST_LOG=warn,gatehouse=info "$bin" --config "$work/gatehouse.toml" serve 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 100); do grep -q 'listening on' "$work/serve.log" && break; sleep 0.05; done
base=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1)
[ -n "$base" ] || { echo "server did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
token=$(curl -s -u "$account_id:$secret_key" "$base/oauth/token" -d grant_type=client_credentials | field access_token)
basic=$(printf '%s:%s' "$account_id" "$secret_key" | base64 -w0)

run() { # name, then wrk arguments
  local name=$1; shift
  local out rps
  out=$(wrk -t2 -c32 -d"${secs}s" --latency "$@")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  echo "$name|$rps|$p50|$p99|${non2xx:-0}"
}
results=()
results+=("$(run healthz "$base/healthz")")
results+=("$(run auth_check_bearer -H "Authorization: Bearer $token" -H 'X-Original-Method: GET' -H 'X-Original-URI: /v1/trips' "$base/auth/check")")
results+=("$(run auth_check_basic -H "Authorization: Basic $basic" -H 'X-Original-Method: GET' -H 'X-Original-URI: /v1/trips' "$base/auth/check")")
ceiling=$(echo "${results[0]}" | cut -d'|' -f2)
echo "| scenario | req/s | p50 | p99 | non-2xx | ratio to /healthz |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for r in "${results[@]}"; do
  IFS='|' read -r name rps p50 p99 non2xx <<<"$r"
  ratio=$(python3 -c "print(f'{$rps/$ceiling:.2f}')")
  echo "| $name | $rps | $p50 | $p99 | $non2xx | $ratio |"
done
echo "(wrk -t2 -c32 -d${secs}s on $(nproc) cores; server and wrk share the machine)"
for r in "${results[@]}"; do
  IFS='|' read -r name _ _ _ non2xx <<<"$r"
  if [ "${non2xx:-0}" != 0 ]; then
    echo "error: $name answered $non2xx non-2xx responses; the measurement is not valid" >&2
    exit 1
  fi
done
