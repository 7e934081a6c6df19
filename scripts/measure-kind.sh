#!/usr/bin/env bash
# Measures the kind runtime against the real kind CLI on the same node image, in one run, round by round
# (kind first, then restate-dev, so that both see the same machine):
#   cluster   `kind create cluster --image IMAGE` (returns after kubeadm init, CNI and storage; and with
#             `--wait 5m`, after the node is Ready) against the `cluster` step of `restate-dev up` (which also
#             waits for the node to be Ready; CoreDNS is awaited with Restate, in the install step);
#   load      `kind load docker-image` of the Restate and sample images against the `images` step of `up`
#             (the same two images, streamed);
#   up        `restate-dev up` from nothing to a proven invocation; re-up on the running loop;
#   rebuild   a service image rebuilt under the same tag: `kind load docker-image` plus `kubectl rollout restart`
#             and `rollout status` on kind's cluster, against `up` (which also registers and proves it);
#   stopped   `up` after `docker stop` of our node, with how long the node took to answer and the pods to report;
#   down      `restate-dev down` against `kind delete cluster` of a kind cluster running the same workload
#             (installed there with `up --context`).
# Usage: scripts/measure-kind.sh [ROUNDS]   (default 2; each round makes three clusters)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-2}
. scripts/install-deps.sh
image=$(bash scripts/kind-node-image.sh | tail -n 1)
kind=$(bash scripts/kind-node-image.sh --kind | tail -n 1)
cargo build --release --quiet
bin=$PWD/target/release/restate-dev
work=$(mktemp -d)
export KUBECONFIG=$work/kubeconfig
names=()
cleanup() {
  for n in "${names[@]}"; do
    "$bin" --name "$n" down >/dev/null 2>&1 || true
    "$kind" delete cluster --name "$n" >/dev/null 2>&1 || true
  done
  docker rmi -f "restate-dev.local/measure-service:$$" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
step_seconds() { jq -r --arg s "$2" '.steps[] | select(.step == $s) | .duration_ms / 1000' "$1"; }
# kubelet 1.35+ runs on a cgroup v1 host only when told so; restate-dev says it itself (kind needs the patch).
printf 'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nkubeadmConfigPatches:\n- |\n  kind: KubeletConfiguration\n  failCgroupV1: false\n' >"$work/kind.yaml"

declare -A fig
add() { fig[$1]="${fig[$1]:-} $2"; }
for round in $(seq 1 "$rounds"); do
  k="mk${round}k$$" w="mk${round}w$$" r="mk${round}r$$"
  names+=("$k" "$w" "$r")
  # kind: create (no wait), load both images, delete
  t=$(now); "$kind" create cluster --image "$image" --name "$k" --config "$work/kind.yaml" >"$work/kind.log" 2>&1 ||
    { cat "$work/kind.log" >&2; exit 1; }
  add kind_create "$(since "$t")"
  t=$(now); "$bin" --name "$r" up --node-image "$image" --restate-binary "$RESTATE_SERVER_BIN" --output json >"$work/up.json" 2>"$work/up.err" ||
    { cat "$work/up.err" >&2; exit 1; }
  add up "$(since "$t")"
  add our_cluster "$(step_seconds "$work/up.json" cluster)"
  add our_images "$(step_seconds "$work/up.json" images)"
  sample=$(jq -r '.steps[] | select(.step == "images") | .detail' "$work/up.json" | grep -o 'restate-dev.local/greeter:[0-9a-f]*' | head -n 1)
  restate_image=$(jq -r '.steps[] | select(.step == "images") | .detail' "$work/up.json" | grep -o 'restate-dev.local/restate-server:[0-9a-f]*' | head -n 1)
  t=$(now); "$kind" load docker-image "$restate_image" "$sample" --name "$k" >/dev/null 2>&1; add kind_load "$(since "$t")"
  # the same workload on kind's cluster, so that both deletes remove as much
  "$bin" --name "$k" up --context "kind-$k" --restate-image "$restate_image" --service-image "$sample" \
    --verify Greeter/greet --verify-body '"kind"' >/dev/null 2>"$work/ctx.err" || { cat "$work/ctx.err" >&2; exit 1; }
  t=$(now); "$bin" --name "$r" up --node-image "$image" --restate-binary "$RESTATE_SERVER_BIN" --output json >"$work/reup.json" 2>/dev/null
  add reup "$(since "$t")"
  # the everyday loop: a service image rebuilt under one tag, on both clusters
  own="restate-dev.local/measure-service:$$"
  rebuild() { printf 'FROM %s\nLABEL dev.restate.measure-build=%s\n' "$sample" "$1" | docker build -q -t "$own" - >/dev/null; }
  ours=("$bin" --name "$r" up --node-image "$image" --restate-binary "$RESTATE_SERVER_BIN" --service-image "$own"
    --verify Greeter/greet --verify-body '"kind"')
  rebuild "$round-a"
  "$kind" load docker-image "$own" --name "$k" >/dev/null 2>"$work/load.err" || { cat "$work/load.err" >&2; exit 1; }
  "$bin" --name "$k" up --context "kind-$k" --restate-image "$restate_image" --service-image "$own" \
    --verify Greeter/greet --verify-body '"kind"' >/dev/null 2>"$work/ctx.err" || { cat "$work/ctx.err" >&2; exit 1; }
  "${ours[@]}" >/dev/null 2>"$work/up.err" || { cat "$work/up.err" >&2; exit 1; }
  rebuild "$round-b"
  t=$(now); "$kind" load docker-image "$own" --name "$k" >/dev/null 2>"$work/load.err" || { cat "$work/load.err" >&2; exit 1; }
  docker exec "$k-control-plane" kubectl -n restate rollout restart deployment/service >/dev/null
  docker exec "$k-control-plane" kubectl -n restate rollout status deployment/service --timeout 5m >/dev/null
  add kind_rebuild "$(since "$t")"
  t=$(now); "${ours[@]}" >/dev/null 2>"$work/up.err" || { cat "$work/up.err" >&2; exit 1; }
  add rebuild "$(since "$t")"
  # a stopped node (a reboot, Docker Desktop restarting): up starts it and waits for the kubelet's new reports
  docker stop "$r-control-plane" >/dev/null
  t=$(now); "${ours[@]}" --output json >"$work/back.json" 2>"$work/up.err" || { cat "$work/up.err" >&2; exit 1; }
  add back "$(since "$t")"
  add back_cluster "$(step_seconds "$work/back.json" cluster)"
  add back_install "$(step_seconds "$work/back.json" install)"
  t=$(now); "$bin" --name "$r" down >/dev/null 2>&1; add down "$(since "$t")"
  t=$(now); "$kind" delete cluster --name "$k" >/dev/null 2>&1; add kind_delete "$(since "$t")"
  # kind with --wait: until the node is Ready, the closer match to our cluster step
  t=$(now); "$kind" create cluster --image "$image" --name "$w" --config "$work/kind.yaml" --wait 5m >/dev/null 2>&1
  add kind_create_wait "$(since "$t")"
  "$kind" delete cluster --name "$w" >/dev/null 2>&1
  echo "round $round done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
row() { printf '| %-58s | %-22s | %8s |\n' "$1" "$(echo "${fig[$2]}" | sed 's/^ //')" "$(echo "${fig[$2]}" | median)"; }
echo
echo "node image $image, kind $("$kind" version | cut -d' ' -f2), $rounds rounds, seconds"
printf '| %-58s | %-22s | %8s |\n' "what" "each round" "median"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..24})" "$(printf -- '-%.0s' {1..10})"
row "kind create cluster (returns at once)" kind_create
row "kind create cluster --wait 5m (node Ready)" kind_create_wait
row "restate-dev cluster step (node Ready)" our_cluster
row "kind load docker-image (Restate + sample)" kind_load
row "restate-dev images step (same two, streamed)" our_images
row "restate-dev up from nothing, proven invocation" up
row "restate-dev re-up" reup
row "rebuilt image: kind load + rollout restart/status" kind_rebuild
row "rebuilt image: restate-dev up (load, roll, register, prove)" rebuild
row "stopped node: restate-dev up to a proven invocation" back
row "  of which: node start to API answering" back_cluster
row "  of which: pods reporting again, endpoints current" back_install
row "kind delete cluster" kind_delete
row "restate-dev down" down
