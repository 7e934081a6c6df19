#!/usr/bin/env bash
# Measures the `--runtime docker` loop against a hand-written docker CLI + curl equivalent, with images present.
# Per round (N rounds, default 5; the two halves alternate order to spread drift in machine load):
#   baseline   network, Restate container (same image, named volume, env, user, 127.0.0.1 ports), admin /health,
#              service container (same sample image), POST /deployments (retried), Greeter/greet proven: wall time;
#              then its teardown (rm -f, network rm, volume rm), timed separately;
#   up         `restate-dev up --runtime docker` until it returns (after its own proven invocation);
#   re-up      `restate-dev up` again over the running loop;
#   down       `restate-dev down`.
# Prints every round, the medians, up/baseline, and PASS/FAIL against the targets (up <= 1.3 x baseline,
# re-up <= 1 s, down <= 2 s); exits 1 when a target is missed. Per-step durations of each `up` (from its own
# step lines on stderr) are printed too, to show where the time goes.
# Usage: . scripts/install-deps.sh && cargo build --release && scripts/measure-docker-loop.sh [N]
# Uses target/release/restate-dev if present, else target/debug/restate-dev. Loopback ports and private networks
# only; every object has a unique name and is removed on exit.
set -euo pipefail

# shellcheck source=scripts/measure-docker-prelude.sh
. "$(dirname "${BASH_SOURCE[0]}")/measure-docker-prelude.sh"
for tool in docker curl python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

# Everything this run creates carries this id in its name, and the baseline's objects also in a label.
id="perf$$$(printf '%04x' $((RANDOM % 65536)))"
label="dev.restate.measure=$id"
work=$(mktemp -d)
# The restate-dev loop that may exist now (one at a time), for the EXIT trap.
live=

now_us() { echo "${EPOCHREALTIME/./}"; }
ms_since() { echo $(( ($(now_us) - $1) / 1000 )); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  set +e
  [ -n "$live" ] && "$bin" down --name "$live" -q >/dev/null 2>&1
  local ids
  mapfile -t ids < <(docker ps -aq --filter "label=$label")
  ((${#ids[@]})) && docker rm -f -v "${ids[@]}" >/dev/null 2>&1
  mapfile -t ids < <(docker network ls -q --filter "label=$label")
  ((${#ids[@]})) && docker network rm "${ids[@]}" >/dev/null 2>&1
  mapfile -t ids < <(docker volume ls -q --filter "label=$label")
  ((${#ids[@]})) && docker volume rm "${ids[@]}" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rd_up() { # LOOP OUTFILE: runs `up` with stdout+stderr in OUTFILE
  live=$1
  "$bin" up --runtime docker --restate-binary "$RESTATE_SERVER_BIN" --name "$1" >"$2" 2>&1 ||
    { echo "restate-dev up --name $1 failed:" >&2; cat "$2" >&2; exit 1; }
  grep -q 'verified  Greeter/greet -> "Hello, restate-dev!"' "$2" ||
    { echo "restate-dev up --name $1 did not prove Greeter/greet:" >&2; cat "$2" >&2; exit 1; }
}
rd_down() {
  "$bin" down --name "$1" >"$work/down.out" 2>&1 ||
    { echo "restate-dev down --name $1 failed:" >&2; cat "$work/down.out" >&2; exit 1; }
  live=
}
# "install=0.8 register=0.3 ..." from the step lines (`✓ install ... (0.8s)`) of one `up`.
steps_of() {
  sed -nE 's/^[✓·✗] ([a-z]+) .*\(([0-9.]+)s\)$/\1=\2/p' "$1" | tr '\n' ' '
}

echo "machine: $(nproc) cores; $(uptime)"
echo "binary:  $bin ($(basename "$(dirname "$bin")") build)"
echo "restate: $RESTATE_SERVER_BIN"

# Warm-up: one up+down makes both images exist (and puts the binaries in the page cache).
warm="$id-warm"
echo "warm-up: restate-dev up + down (builds the images if missing)..."
rd_up "$warm" "$work/warm.out"
rd_down "$warm"
# The images' tags hash the binary and the recipe; `up` names them in its images step.
restate_image=$(grep -o 'restate-dev\.local/restate-server:[0-9a-f]\{12\}' "$work/warm.out" | head -n 1)
sample_image=$(grep -o 'restate-dev\.local/greeter:[0-9a-f]\{12\}' "$work/warm.out" | head -n 1)
for image in "$restate_image" "$sample_image"; do
  docker image inspect "$image" >/dev/null 2>&1 || { echo "image $image missing after the warm-up" >&2; exit 1; }
done
echo "images:  $restate_image, $sample_image"

# The hand-written equivalent of `up`. Sets b_up (ms to a proven invocation) and b_parts.
baseline_up() {
  local r=$1 net="$id-b$1-net" rs="$id-b$1-restate" svc="$id-b$1-service" vol="$id-b$1-restate-data"
  local ingress admin t0 t1 t2 t3 t4 code answer
  ingress=$(free_port); admin=$(free_port)
  while [ "$admin" = "$ingress" ]; do admin=$(free_port); done
  t0=$(now_us)
  docker network create --label "$label" "$net" >/dev/null
  docker run -d --name "$rs" --label "$label" --network "$net" --network-alias restate \
    -p "127.0.0.1:$ingress:8080" -p "127.0.0.1:$admin:9070" \
    --mount "type=volume,source=$vol,target=/restate-data,volume-label=$label" --user 0:0 \
    -e RESTATE_BASE_DIR=/restate-data -e "RESTATE_CLUSTER_NAME=$id-b$r" -e RESTATE_NODE_NAME=restate \
    -e RESTATE_DISABLE_TELEMETRY=true "$restate_image" >/dev/null
  t1=$(now_us)
  for _ in $(seq 1 1500); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$admin/health" || true)" = 200 ] && break
    sleep 0.02
  done
  t2=$(now_us)
  docker run -d --name "$svc" --label "$label" --network "$net" --network-alias service -e PORT=9080 \
    "$sample_image" >/dev/null
  t3=$(now_us)
  code=; local tries_reg=0 tries_greet=0 first_greet=
  for _ in $(seq 1 600); do
    tries_reg=$((tries_reg + 1))
    code=$(curl -s -o "$work/register.json" -w '%{http_code}' --max-time 15 -X POST \
      "http://127.0.0.1:$admin/deployments" -H 'content-type: application/json' \
      -d "{\"uri\": \"http://$svc:9080\", \"force\": true}" || true)
    case $code in 200 | 201) break ;; esac
    sleep 0.05
  done
  case $code in 200 | 201) ;; *) echo "baseline registration failed: HTTP $code $(cat "$work/register.json")" >&2; exit 1 ;; esac
  t4=$(now_us)
  answer=
  for _ in $(seq 1 600); do
    tries_greet=$((tries_greet + 1))
    answer=$(curl -s --max-time 30 -X POST "http://127.0.0.1:$ingress/Greeter/greet" \
      -H 'content-type: application/json' -d '"restate-dev"' || true)
    first_greet=${first_greet:-$answer}
    [ "$answer" = '"Hello, restate-dev!"' ] && break
    sleep 0.05
  done
  [ "$answer" = '"Hello, restate-dev!"' ] || { echo "baseline Greeter/greet answered: $answer" >&2; exit 1; }
  b_up=$(ms_since "$t0")
  b_parts="net+run=$(( (t1 - t0) / 1000 )) health=$(( (t2 - t1) / 1000 )) service=$(( (t3 - t2) / 1000 ))"
  b_parts+=" register=$(( (t4 - t3) / 1000 )) greet=$(( ($(now_us) - t4) / 1000 ))ms"
  b_parts+=" (register tries $tries_reg, greet tries $tries_greet"
  [ "$tries_greet" -gt 1 ] && b_parts+=", first answer: ${first_greet:0:80}"
  b_parts+=")"
}

baseline_down() { # sets b_down
  local t0
  t0=$(now_us)
  docker rm -f -v "$id-b$1-restate" "$id-b$1-service" >/dev/null
  docker network rm "$id-b$1-net" >/dev/null
  docker volume rm "$id-b$1-restate-data" >/dev/null
  b_down=$(ms_since "$t0")
}

restate_dev_round() { # sets r_up, r_reup, r_down and the step breakdowns
  local loop="$id-r$1" t0
  t0=$(now_us); rd_up "$loop" "$work/up.out"; r_up=$(ms_since "$t0")
  t0=$(now_us); rd_up "$loop" "$work/reup.out"; r_reup=$(ms_since "$t0")
  t0=$(now_us); rd_down "$loop"; r_down=$(ms_since "$t0")
  [ -z "$(docker ps -aq --filter "label=dev.restate.loop=$loop")$(docker network ls -q --filter "label=dev.restate.loop=$loop")$(docker volume ls -q --filter "label=dev.restate.loop=$loop")" ] ||
    { echo "restate-dev down left objects of loop $loop behind" >&2; exit 1; }
  r_steps=$(steps_of "$work/up.out")
  r_resteps=$(steps_of "$work/reup.out")
}

ups=(); bases=(); reups=(); downs=(); bdowns=()
echo
printf '%-5s %11s %11s %9s %9s %12s\n' round baseline-ms up-ms re-up-ms down-ms base-down-ms
for r in $(seq 1 "$rounds"); do
  if (( r % 2 )); then
    baseline_up "$r"; baseline_down "$r"; restate_dev_round "$r"
  else
    restate_dev_round "$r"; baseline_up "$r"; baseline_down "$r"
  fi
  bases+=("$b_up"); bdowns+=("$b_down"); ups+=("$r_up"); reups+=("$r_reup"); downs+=("$r_down")
  printf '%-5s %11s %11s %9s %9s %12s\n' "$r" "$b_up" "$r_up" "$r_reup" "$r_down" "$b_down"
  {
    echo "      baseline: $b_parts"
    echo "      up steps: $r_steps"
    echo "      re-up:    $r_resteps"
  } >>"$work/details"
done

m_base=$(median "${bases[@]}"); m_up=$(median "${ups[@]}"); m_reup=$(median "${reups[@]}")
m_down=$(median "${downs[@]}"); m_bdown=$(median "${bdowns[@]}")
printf '%-5s %11s %11s %9s %9s %12s\n' median "$m_base" "$m_up" "$m_reup" "$m_down" "$m_bdown"
echo
echo "per round (in order):"
cat "$work/details"
echo
ratio=$(awk -v u="$m_up" -v b="$m_base" 'BEGIN {printf "%.2f", u / b}')
failed=0
verdict() { # NAME OK(0/1) TEXT
  if [ "$2" = 1 ]; then echo "PASS  $1: $3"; else echo "FAIL  $1: $3"; failed=1; fi
}
verdict "up / baseline" "$(awk -v r="$ratio" 'BEGIN {print (r <= 1.3)}')" "$ratio (median $m_up ms / $m_base ms; target <= 1.3)"
verdict "re-up" "$(( m_reup <= 1000 ))" "median $m_reup ms (target <= 1000 ms)"
verdict "down" "$(( m_down <= 2000 ))" "median $m_down ms (target <= 2000 ms; baseline teardown $m_bdown ms)"
echo "machine after: $(uptime)"
exit "$failed"
