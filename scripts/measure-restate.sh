#!/usr/bin/env bash
# Measures, on this machine, how fast the pieces of the Restate step are:
#   - restate-server ($RESTATE_SERVER_BIN) from start to admin GET /health 200 and to ingress /restate/health 200,
#     started on loopback exactly as tests/restate_real.rs starts it;
#   - registering `restate-dev serve-sample` (POST /deployments) and the first Greeter/greet through ingress;
#   - `restate-dev serve-sample` from SIGTERM to exit, while Restate holds its HTTP/2 connection.
# Usage: . scripts/install-deps.sh && cargo build && scripts/measure-restate.sh [RUNS]   (default 5 runs)
set -euo pipefail

runs=${1:-5}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/target/debug/restate-dev"
: "${RESTATE_SERVER_BIN:?source scripts/install-deps.sh first}"
[ -x "$bin" ] || { echo "build first: cargo build" >&2; exit 1; }

now() { date +%s.%N; }
ms() { echo "($2 - $1) * 1000 / 1" | bc; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_200() { # URL, bound in 20 ms steps
  for _ in $(seq 1 1500); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ] && return 0
    sleep 0.02
  done
  return 1
}

pids=()
dirs=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for d in "${dirs[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

echo "run  admin-health-ms  ingress-health-ms  register-ms  first-greet-ms  sample-sigterm-exit-ms"
for run in $(seq 1 "$runs"); do
  dir=$(mktemp -d); dirs+=("$dir")
  admin=$(free_port); ingress=$(free_port); node=$(free_port); sample=$(free_port)
  t0=$(now)
  RESTATE_DISABLE_TELEMETRY=true RESTATE_ADMIN__BIND_ADDRESS="127.0.0.1:$admin" \
    RESTATE_INGRESS__BIND_ADDRESS="127.0.0.1:$ingress" \
    "$RESTATE_SERVER_BIN" --bind-ip 127.0.0.1 --bind-port "$node" --listen-mode tcp --node-name measure \
    --no-logo --base-dir "$dir/data" >"$dir/server.log" 2>&1 &
  server=$!; pids+=("$server")
  wait_200 "http://127.0.0.1:$admin/health" || { echo "admin never healthy; see $dir/server.log" >&2; exit 1; }
  t1=$(now)
  wait_200 "http://127.0.0.1:$ingress/restate/health" || { echo "ingress never ready" >&2; exit 1; }
  t2=$(now)

  BIND_ADDRESS=127.0.0.1 PORT=$sample "$bin" serve-sample 2>"$dir/sample.log" &
  sp=$!; pids+=("$sp")
  for _ in $(seq 1 500); do (exec 3<>"/dev/tcp/127.0.0.1/$sample") 2>/dev/null && break; sleep 0.02; done
  t3=$(now)
  curl -sf -o /dev/null -X POST "http://127.0.0.1:$admin/deployments" -H 'content-type: application/json' \
    -d "{\"uri\": \"http://127.0.0.1:$sample\"}" || { echo "registration failed" >&2; exit 1; }
  t4=$(now)
  answer=$(curl -sf -X POST "http://127.0.0.1:$ingress/Greeter/greet" -H 'content-type: application/json' -d '"m"')
  [ "$answer" = '"Hello, m!"' ] || { echo "unexpected answer: $answer" >&2; exit 1; }
  t5=$(now)
  kill -TERM "$sp"
  wait "$sp" || true
  t6=$(now)

  kill "$server"; wait "$server" 2>/dev/null || true
  printf '%3d  %15s  %17s  %11s  %14s  %22s\n' "$run" "$(ms "$t0" "$t1")" "$(ms "$t0" "$t2")" \
    "$(ms "$t3" "$t4")" "$(ms "$t4" "$t5")" "$(ms "$t5" "$t6")"
done
