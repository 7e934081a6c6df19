#!/usr/bin/env bash
# Measures the loop a developer repeats all day on `--runtime docker`, with images present and Restate running:
#   re-up      `up` again with nothing changed;
#   rebuild    the service image rebuilt under the same tag (a new image ID), then `up`, which must replace the
#              service container, register it again and prove the new build (target < 3 s);
#   stopped    `docker stop` of the loop's two containers, then `up`, which must bring the loop back on its URLs;
#   paused     the service container paused, then `up --timeout 10s`: the time until it fails (once, at the end).
# N rounds (default 5) of the first three; prints every round, the medians, and PASS/FAIL for the rebuild target;
# exits 1 when it is missed. The service is the built-in sample behind a tag of our own (`FROM` the sample image
# plus a changing label), verified with Greeter/greet, so a rebuild changes only the image ID.
# Usage: . scripts/install-deps.sh && cargo build --release && scripts/measure-docker-reup.sh [N]
# Uses target/release/restate-dev if present, else target/debug/restate-dev. Loopback ports and a private network
# only; the loop and the image have unique names and are removed on exit.
set -euo pipefail

# shellcheck source=scripts/measure-docker-prelude.sh
. "$(dirname "${BASH_SOURCE[0]}")/measure-docker-prelude.sh"
command -v docker >/dev/null || { echo "missing docker" >&2; exit 1; }

loop="reup$$$(printf '%04x' $((RANDOM % 65536)))"
tag="restate-dev.local/$loop-service:dev"
work=$(mktemp -d)

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  set +e
  docker unpause "$loop-service" >/dev/null 2>&1
  "$bin" down --name "$loop" -q >/dev/null 2>&1
  docker rmi "$tag" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_us() { echo "${EPOCHREALTIME/./}"; }
ms_since() { echo $(( ($(now_us) - $1) / 1000 )); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

up() { # OUTFILE [FLAGS...]: `up` of the loop with the service image; stdout+stderr in OUTFILE
  local out=$1
  shift
  "$bin" up --runtime docker --restate-binary "$RESTATE_SERVER_BIN" --name "$loop" --service-image "$tag" \
    --verify Greeter/greet --verify-body '"Ada"' "$@" >"$out" 2>&1
}
up_ok() { # OUTFILE: `up`, which must prove the service
  up "$1" || { echo "restate-dev up failed:" >&2; cat "$1" >&2; exit 1; }
  grep -q 'verified  Greeter/greet -> "Hello, Ada!"' "$1" || { echo "up did not prove Greeter/greet:" >&2; cat "$1" >&2; exit 1; }
}
build() { # N: the service image, rebuilt under the same tag with a label that makes its ID new
  printf 'FROM %s\nLABEL dev.restate.measure.build=%s\n' "$sample" "$1" |
    docker build -q -t "$tag" - >/dev/null 2>&1 || { echo "docker build of $tag failed" >&2; exit 1; }
}
# "install=0.8 register=0.3 ..." from the step lines (`✓ install ... (0.8s)`) of one `up`.
steps_of() { sed -nE 's/^[✓·✗] ([a-z]+) .*\(([0-9.]+)s\)$/\1=\2/p' "$1" | tr '\n' ' '; }

echo "machine: $(nproc) cores; $(uptime)"
echo "binary:  $bin ($(basename "$(dirname "$bin")") build)"

# The sample image, made by a plain `up` of the built-in sample, is the base of our service image.
"$bin" up --runtime docker --restate-binary "$RESTATE_SERVER_BIN" --name "$loop" >"$work/warm.out" 2>&1 ||
  { echo "warm-up failed:" >&2; cat "$work/warm.out" >&2; exit 1; }
sample=$(grep -o 'restate-dev\.local/greeter:[0-9a-f]\{12\}' "$work/warm.out" | head -n 1)
"$bin" down --name "$loop" -q >/dev/null
build 0
up_ok "$work/first.out"
echo "loop:    $loop, service $tag (FROM $sample)"

reups=(); rebuilds=(); stops=()
echo
printf '%-5s %9s %11s %11s\n' round re-up-ms rebuild-ms stopped-ms
for r in $(seq 1 "$rounds"); do
  t0=$(now_us); up_ok "$work/reup.out"; reup=$(ms_since "$t0")
  grep -q '^· install' "$work/reup.out" || { echo "a re-up with nothing changed changed something:" >&2; cat "$work/reup.out" >&2; exit 1; }
  build "$r"
  t0=$(now_us); up_ok "$work/rebuild.out"; rebuild=$(ms_since "$t0")
  grep -q 'service image changed: restarted' "$work/rebuild.out" ||
    { echo "up after a rebuild did not restart the service:" >&2; cat "$work/rebuild.out" >&2; exit 1; }
  urls=$(grep -E '^  (ingress|admin) ' "$work/rebuild.out")
  docker stop "$loop-service" "$loop-restate" >/dev/null
  t0=$(now_us); up_ok "$work/stopped.out"; stopped=$(ms_since "$t0")
  [ "$(grep -E '^  (ingress|admin) ' "$work/stopped.out")" = "$urls" ] ||
    { echo "the stopped loop came back on other URLs:" >&2; cat "$work/stopped.out" >&2; exit 1; }
  reups+=("$reup"); rebuilds+=("$rebuild"); stops+=("$stopped")
  printf '%-5s %9s %11s %11s\n' "$r" "$reup" "$rebuild" "$stopped"
  {
    echo "      re-up:   $(steps_of "$work/reup.out")"
    echo "      rebuild: $(steps_of "$work/rebuild.out")"
    echo "      stopped: $(steps_of "$work/stopped.out")"
  } >>"$work/details"
done
m_reup=$(median "${reups[@]}"); m_rebuild=$(median "${rebuilds[@]}"); m_stopped=$(median "${stops[@]}")
printf '%-5s %9s %11s %11s\n' median "$m_reup" "$m_rebuild" "$m_stopped"
echo
echo "per round (in order):"
cat "$work/details"

docker pause "$loop-service" >/dev/null
t0=$(now_us)
code=0
up "$work/paused.out" --timeout 10s || code=$?
paused=$(ms_since "$t0")
docker unpause "$loop-service" >/dev/null
echo
echo "paused service, up --timeout 10s: exit $code after $paused ms; its error:"
sed -n '/^error:/,$p' "$work/paused.out" | sed 's/^/  /'
[ "$code" = 4 ] || { echo "expected exit 4 (a wait ran out)" >&2; exit 1; }

echo
failed=0
if [ "$m_rebuild" -lt 3000 ]; then
  echo "PASS  up after a rebuild: median $m_rebuild ms (target < 3000 ms; re-up with nothing changed $m_reup ms)"
else
  echo "FAIL  up after a rebuild: median $m_rebuild ms (target < 3000 ms)"
  failed=1
fi
echo "machine after: $(uptime)"
exit "$failed"
