#!/usr/bin/env bash
# The one test command (`npm test`): installs the npm dependencies if missing, builds the local
# control plane if it is not cached, starts it once, and runs every ava test file against it.
# Extra arguments go to ava (e.g. `npm test -- test/apbus/mask.test.ts`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[test] installing npm dependencies" >&2
  npm ci --no-audit --no-fund
fi

echo "[test] typechecking" >&2
npx tsc --noEmit -p tsconfig.json

bin="$(bash hack/build-controlplane.sh)"
export APQN_CONTROLPLANE_BIN="$bin"
export APQN_LOG_LEVEL="${APQN_LOG_LEVEL:-warn}"
exec node --import=tsx test/support/with-controlplane.ts -- npx ava "$@"
