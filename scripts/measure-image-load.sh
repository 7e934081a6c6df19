#!/usr/bin/env bash
# Measures restate-dev's image load (the `docker save` stream piped straight into a container's stdin through
# exec) against kind's way (save to a temporary file, then copy the file into the container's stdin), in one
# run, and prints both times and their ratio.
#
# The payload is an image built here from random data (SIZE_MB, default 256) plus this machine's sha256sum and
# sleep; a container of it is the sink, hashing stdin as `ctr images import` would read it. Both paths run the
# same Rust code restate-dev uses (src/docker exec + export), from the debug test build.
# Needs Docker (`. scripts/install-deps.sh`). Usage: scripts/measure-image-load.sh [SIZE_MB] [ROUNDS]
set -euo pipefail

size_mb=${1:-256}
rounds=${2:-3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
id="measure-image-load-$$-$RANDOM"
tag="restate-dev-test/$id:v1"
context=$(mktemp -d)

cleanup() {
  docker rm -f -v "$id" >/dev/null 2>&1 || true
  docker rmi "$tag" >/dev/null 2>&1 || true
  rm -rf "$context"
}
trap cleanup EXIT

copy_with_libs() {
  local bin
  bin=$(command -v "$1")
  install -D "$bin" "$context/bin/$1"
  ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do install -D "$lib" "$context$lib"; done
}
copy_with_libs sha256sum
copy_with_libs sleep
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$context/payload"
printf 'FROM scratch\nCOPY . /\nENTRYPOINT ["/bin/sleep", "3600"]\n' >"$context/Dockerfile"

echo "building a ${size_mb} MB image $tag" >&2
if ! out=$(docker build -q -t "$tag" --label app.kubernetes.io/managed-by=restate-dev \
  --label "dev.restate.loop=$id" "$context" 2>&1); then
  echo "$out" >&2
  exit 1
fi
docker run -d --name "$id" --label app.kubernetes.io/managed-by=restate-dev --label "dev.restate.loop=$id" \
  "$tag" >/dev/null

cd "$root"
MEASURE_IMAGE="$tag" MEASURE_CONTAINER="$id" MEASURE_ROUNDS="$rounds" \
  nice cargo test -q --bin restate-dev measure_image_load -- --ignored --nocapture --test-threads=1 2>&1 |
  grep -E '^(image size|streamed|save to file|ratio)'

# For reference: the docker CLI doing the streamed path (`docker save | docker exec -i`), median of the rounds.
times=()
for _ in $(seq 1 "$rounds"); do
  start=$(date +%s.%N)
  docker save "$tag" | docker exec -i "$id" /bin/sha256sum >/dev/null
  times+=("$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')")
done
printf 'docker CLI pipe (median of %s): %.3f s\n' "$rounds" \
  "$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((rounds + 1) / 2))p")"
