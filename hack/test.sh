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

# The components under test log into files (one per ava worker, test/support/log-to-file.ts),
# not between the test results; they are shown only when a test failed.
logs="$(mktemp -d "${TMPDIR:-/tmp}/apqn-test-logs.XXXXXX")"
export APQN_TEST_LOG_DIR="$logs"
rc=0
node --import=tsx test/support/with-controlplane.ts -- bash hack/run-ava.sh "$@" || rc=$?
if [[ $rc -ne 0 ]]; then
  for f in "$logs"/*.log; do
    [[ -s "$f" ]] || continue
    echo "[test] ---- component logs of $(basename "$f" .log) (last 200 lines of $(wc -l < "$f")):" >&2
    tail -n 200 "$f" >&2
  done
  echo "[test] a test failed; the components' logs of this run are kept in $logs" >&2
else
  rm -rf "$logs"
fi
exit $rc
