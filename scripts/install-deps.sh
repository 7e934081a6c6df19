#!/usr/bin/env bash
# Installs and starts what the tests need on a fresh Debian machine, idempotently:
#   - Docker Engine (Debian's docker.io), with dockerd started in the background when no daemon answers;
#   - the Restate server and CLI from npm, pinned, under .tools/npm, with the TypeScript SDK for the tests' own
#     service image (fixtures/node-service; 1.9.1 runs on node 20, while 1.17 needs node 22);
#   - kubernetes-validate from PyPI, pinned, in .tools/venv.
# Source it (`. scripts/install-deps.sh`) to get RESTATE_SERVER_BIN, RESTATE_CLI_BIN, RESTATE_NODE_MODULES and
# KUBERNETES_VALIDATE.
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
if ! docker version >/dev/null 2>&1; then
  log "starting dockerd (log: $tools/dockerd.log)"
  nohup dockerd >"$tools/dockerd.log" 2>&1 &
  echo $! >"$tools/dockerd.pid"
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null || { log "dockerd did not start"; tail -20 "$tools/dockerd.log" >&2; exit 1; }
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
