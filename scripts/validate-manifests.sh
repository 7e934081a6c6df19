#!/usr/bin/env bash
# Validates what `restate-dev render` prints against the Kubernetes OpenAPI schemas, strictly (unknown fields are
# errors), for several Kubernetes minor versions: 1.33 (the API level restate-dev is built against) up to the
# newest that kubernetes-validate knows. Every object of every render must pass; any failure fails the script.
#
# Usage: scripts/validate-manifests.sh [KUBERNETES_VERSION...]   (default: 1.33.0 1.34.0 1.35.0 1.36.0 1.37.0)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/install-deps.sh
. scripts/install-deps.sh
: "${KUBERNETES_VALIDATE:?install-deps.sh did not set KUBERNETES_VALIDATE}"

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(1.33.0 1.34.0 1.35.0 1.36.0 1.37.0)

log() { printf '==> %s\n' "$*" >&2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log "building restate-dev"
if ! nice cargo build --quiet 2>"$work/build.log"; then
  cat "$work/build.log" >&2
  log "build FAILED"
  exit 1
fi
bin="${CARGO_TARGET_DIR:-$root/target}/debug/restate-dev"

# name|render arguments
cases=(
  "defaults|"
  "replicas-3|--replicas 3"
  "service-image|--service-image ghcr.io/example/greeter:1.0"
  "example-config|--config fixtures/restate-dev.example.yaml"
)

failures=0
checked=0
for case in "${cases[@]}"; do
  name=${case%%|*}
  read -r -a args <<<"${case#*|}"
  file="$work/$name.yaml"
  env -u RESTATE_DEV_CONFIG "$bin" render "${args[@]}" >"$file"
  documents=$(grep -c '^kind: ' "$file" || true)
  if [ "$documents" -eq 0 ]; then
    log "FAIL $name: render printed no objects"
    failures=$((failures + 1))
    continue
  fi
  for version in "${versions[@]}"; do
    if ! report=$("$KUBERNETES_VALIDATE" --strict --kubernetes-version "$version" "$file" 2>&1); then
      log "FAIL $name against Kubernetes $version:"
      grep -v '^INFO' <<<"$report" >&2
      failures=$((failures + 1))
      continue
    fi
    # An object of a kind the schemas do not know would be skipped with a warning, not failed: count passes.
    passed=$(grep -c 'passed for resource' <<<"$report" || true)
    if [ "$passed" -ne "$documents" ]; then
      log "FAIL $name against Kubernetes $version: $passed of $documents objects validated"
      grep -v '^INFO' <<<"$report" >&2
      failures=$((failures + 1))
      continue
    fi
    checked=$((checked + passed))
    printf '%-16s Kubernetes %-7s %2d objects valid (strict)\n' "$name" "$version" "$passed"
  done
done

if [ "$failures" -ne 0 ]; then
  log "manifest validation FAILED: $failures render/version pair(s) did not validate"
  exit 1
fi
printf 'all %d renders valid on Kubernetes %s: %d object validations\n' "${#cases[@]}" "${versions[*]}" "$checked"
