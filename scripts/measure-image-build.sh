#!/usr/bin/env bash
# Prints how long assembling the two images from local binaries takes: the sample service (restate-dev's own
# executable, with its loader and libraries) and the Restate server (static restate-server + CA bundle).
# For each: a build with the tag absent (cold, unless its layers exist already: then it says so), a rebuild that
# Docker's layer cache serves, and a second `up` with the content tag present (no build at all).
# Needs Docker; sources scripts/install-deps.sh for RESTATE_SERVER_BIN. Debug build, as the tests use.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=/dev/null
. scripts/install-deps.sh
cargo test --quiet --test docker_images measure_image_builds -- --ignored --nocapture 2>&1 | grep ' image ('
