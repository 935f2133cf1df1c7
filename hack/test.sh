#!/usr/bin/env bash
# The one test command (`npm test`): installs the npm dependencies if missing, builds the local
# control plane if it is not cached, starts it once, and runs every ava test file against it.
# Extra arguments go to ava (e.g. `npm test -- test/apbus/mask.test.ts`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source hack/ensure-deps.sh

# A full run typechecks everything first; a run of chosen files (`npm test -- FILE…`) does not,
# so one module's work in progress does not block another's tests.
if [[ $# -eq 0 ]]; then
  echo "[test] typechecking" >&2
  npx tsc --noEmit -p tsconfig.json
fi

bin="$(bash hack/build-controlplane.sh)"
export APQN_CONTROLPLANE_BIN="$bin"
export APQN_LOG_LEVEL="${APQN_LOG_LEVEL:-warn}"
exec node --import=tsx test/support/with-controlplane.ts -- bash hack/run-ava.sh "$@"
