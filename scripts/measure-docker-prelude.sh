# shellcheck shell=bash
# Sourced by the measure-docker-*.sh scripts: checks the round count ($1), and sets `rounds`, `root` and `bin`
# ($MEASURE_BIN when set, e.g. an older release to compare with; else target/release/restate-dev if built, else
# target/debug/restate-dev).
rounds=${1:-5}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [ROUNDS]  (a positive number, default 5)" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${RESTATE_SERVER_BIN:?source scripts/install-deps.sh first (it exports RESTATE_SERVER_BIN)}"
if [ -n "${MEASURE_BIN:-}" ]; then
  bin=$MEASURE_BIN
elif [ -x "$root/target/release/restate-dev" ]; then
  bin="$root/target/release/restate-dev"
elif [ -x "$root/target/debug/restate-dev" ]; then
  bin="$root/target/debug/restate-dev"
else
  echo "build first: cargo build --release" >&2
  exit 1
fi
