#!/usr/bin/env bash
# The test command (README.md, "Run the tests"). On a fresh Debian machine it installs and starts what the tests
# need (scripts/install-deps.sh), then runs formatting, lints, every test tier, and strict schema validation of
# `restate-dev render` on several Kubernetes versions.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

. scripts/install-deps.sh

echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check
echo "==> cargo clippy -D warnings" >&2
cargo clippy --all-targets --locked -- -D warnings
# The workflow runs only on GitHub: its syntax, expressions and every `run:` block (through shellcheck) are checked.
echo "==> actionlint .github/workflows" >&2
"$ACTIONLINT" -no-color
# The real Kubernetes tier: a node image and the kind CLI built here (cached under /var/cache/restate-dev; the
# first build of both takes about 35 minutes on 2 cores, a cached one seconds).
echo "==> kind node image and kind CLI" >&2
started=$SECONDS
KIND_TEST_NODE_IMAGE=$(bash scripts/kind-node-image.sh | tail -n 1)
# An older generation beside it: kubeadm's v1beta3 config, and a kubelet from before cgroup v1 needed a setting.
KIND_TEST_OLD_NODE_IMAGE=$(bash scripts/kind-node-image.sh v1.34.4 | tail -n 1)
KIND_TEST_CLI=$(bash scripts/kind-node-image.sh --kind | tail -n 1)
export KIND_TEST_NODE_IMAGE KIND_TEST_OLD_NODE_IMAGE KIND_TEST_CLI
echo "==> node image $KIND_TEST_NODE_IMAGE and kind CLI ready in $((SECONDS - started))s" >&2

# Tests that need Docker, restate-server or a cluster are #[ignore]d so that a bare `cargo test` passes anywhere;
# here everything is installed, so they all run, but for the measuring harnesses (`measure_*`), which the
# scripts/measure-*.sh scripts run with their inputs.
echo "==> cargo test (every tier)" >&2
results=$(mktemp)
trap 'rm -f "$results"' EXIT
cargo test --locked --no-fail-fast -- --include-ignored --skip measure_ 2>&1 | tee "$results"
echo "==> strict schema validation of render" >&2
bash scripts/validate-manifests.sh
# The tests build a sample image per restate-dev build; `down --images` removes the ones no container uses, which
# also exercises it once the parallel tests are over.
echo "==> down --images (removing unused images the tests built)" >&2
cargo run --quiet -- down --name test-cleanup --images
left=$(docker images -q --filter label=app.kubernetes.io/managed-by=restate-dev --filter dangling=false | while read -r id; do
  [ -z "$(docker ps -aq --filter ancestor="$id")" ] && echo "$id"; done)
[ -z "$left" ] || { echo "down --images left unused images: $left" >&2; exit 1; }

# One closing line with the totals of every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$results"
