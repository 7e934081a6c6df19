#!/usr/bin/env bash
# Installs and starts what the tests need on a fresh Debian machine, idempotently:
#   - Docker Engine (Debian's docker.io), with dockerd started in the background when no daemon answers (with a
#     runtime that lets privileged containers start where the capability bounding set is short);
#   - kind's inotify limits, and debootstrap and gcc for the kind node image (and a test's static stub server);
#   - the Restate server and CLI from npm, pinned, under .tools/npm, with the TypeScript SDK for the tests' own
#     service image (fixtures/node-service; 1.9.1 runs on node 20, while 1.17 needs node 22);
#   - kubernetes-validate from PyPI, pinned, in .tools/venv;
#   - actionlint (Go module proxy, pinned, cached in $RESTATE_DEV_CACHE/bin) and Debian's shellcheck, for
#     the GitHub workflow that this machine cannot run.
# Source it (`. scripts/install-deps.sh`) to get RESTATE_SERVER_BIN, RESTATE_CLI_BIN, RESTATE_NODE_MODULES,
# KUBERNETES_VALIDATE and ACTIONLINT.
set -euo pipefail

RESTATE_VERSION=1.7.12
RESTATE_SDK_VERSION=1.9.1
KUBERNETES_VALIDATE_VERSION=1.37.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"

log() { printf '==> %s\n' "$*" >&2; }

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
# kind nodes are privileged containers. Where the capability bounding set lacks CAP_SYS_MODULE (bit 16) or
# CAP_SYS_RESOURCE (bit 24), runc cannot start them, so dockerd gets a runtime that drops those two first.
cache=${RESTATE_DEV_CACHE:-/var/cache/restate-dev}
dockerd_args=()
bounding=$((16#$(awk '/^CapBnd/ { print $2 }' /proc/self/status)))
if (( (bounding >> 16 & 1) == 0 || (bounding >> 24 & 1) == 0 )); then
  mkdir -p "$cache/bin"
  install -m 0755 "$root/scripts/docker/runc-drop-refused-caps" "$cache/bin/runc-drop-refused-caps"
  dockerd_args=(--add-runtime "drop-refused-caps=$cache/bin/runc-drop-refused-caps" --default-runtime drop-refused-caps)
fi
if ! docker version >/dev/null 2>&1; then
  log "starting dockerd ${dockerd_args[*]} (log: $tools/dockerd.log)"
  nohup dockerd "${dockerd_args[@]}" >"$tools/dockerd.log" 2>&1 &
  echo $! >"$tools/dockerd.pid"
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null || { log "dockerd did not start"; tail -20 "$tools/dockerd.log" >&2; exit 1; }
fi

# kind's known issues ask for these inotify limits; a node's kubelet and containerd run out of instances below them.
if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 512 ] || [ "$(cat /proc/sys/fs/inotify/max_user_watches)" -lt 524288 ]; then
  log "raising the inotify limits to kind's (fs.inotify.max_user_instances=512, max_user_watches=524288)"
  sysctl -q -w fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288
fi
# The node image is built with these (scripts/kind-node-image.sh); Go 1.26 comes with the machine.
if ! command -v debootstrap >/dev/null 2>&1 || ! command -v gcc >/dev/null 2>&1; then
  log "installing debootstrap and gcc"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap gcc libc6-dev >/dev/null
fi
command -v go >/dev/null 2>&1 || { log "the node image needs Go 1.26 or later on PATH"; exit 1; }
ACTIONLINT=$cache/bin/actionlint-v1.7.12
if [ ! -x "$ACTIONLINT" ]; then
  log "building ${ACTIONLINT##*/}"
  mkdir -p "$cache/bin"
  # built straight into the cache under a temporary name, so that a failed build leaves nothing behind
  GOBIN=$cache/bin CGO_ENABLED=0 go install "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT##*-}"
  mv "$cache/bin/actionlint" "$ACTIONLINT"
fi
export ACTIONLINT
if ! command -v shellcheck >/dev/null 2>&1; then
  log "installing shellcheck"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
fi

has_version() { grep -q "\"version\": \"$2\"" "$tools/npm/node_modules/@restatedev/$1/package.json" 2>/dev/null; }
if [ ! -x "$tools/npm/node_modules/.bin/restate-server" ] || ! has_version restate-server "$RESTATE_VERSION" ||
    ! has_version restate-sdk "$RESTATE_SDK_VERSION"; then
  log "installing @restatedev/restate-server@$RESTATE_VERSION, @restatedev/restate@$RESTATE_VERSION and" \
    "@restatedev/restate-sdk@$RESTATE_SDK_VERSION"
  mkdir -p "$tools/npm"
  npm install --silent --no-audit --no-fund --prefix "$tools/npm" \
    "@restatedev/restate-server@$RESTATE_VERSION" "@restatedev/restate@$RESTATE_VERSION" \
    "@restatedev/restate-sdk@$RESTATE_SDK_VERSION" >/dev/null
fi
# The npm wrapper is a node script; the real static binary sits in the platform package.
export RESTATE_SERVER_BIN="$tools/npm/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"
export RESTATE_CLI_BIN="$tools/npm/node_modules/@restatedev/restate-linux-x64/bin/restate"
# Where the SDK and its dependency live, for the node service image the tests build.
export RESTATE_NODE_MODULES="$tools/npm/node_modules"

if [ ! -x "$tools/venv/bin/kubernetes-validate" ]; then
  log "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
export KUBERNETES_VALIDATE="$tools/venv/bin/kubernetes-validate"
