#!/usr/bin/env bash
# Runs the ava suites inside the control plane that hack/test.sh started:
#  1. every test file except test/e2e/ (files run side by side, each in its own namespace and
#     with its own node names, its controllers scoped to them);
#  2. test/e2e/ on its own: those tests run `apqn-operator dev`, whose controller sees the
#     whole cluster, so they must not share it with other tests' objects.
# With arguments, only the named files run (in the suite they belong to).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $# -gt 0 ]]; then
  main=() e2e=()
  for a in "$@"; do
    if [[ "$a" == test/e2e/* ]]; then e2e+=("$a"); else main+=("$a"); fi
  done
  rc=0
  if [[ ${#main[@]} -gt 0 ]]; then npx ava "${main[@]}" || rc=$?; fi
  if [[ ${#e2e[@]} -gt 0 ]]; then npx ava --config ava.e2e.config.mjs "${e2e[@]}" || rc=$?; fi
  exit $rc
fi

rc=0
npx ava || rc=$?
echo "[test] end-to-end suite (test/e2e/), alone on the control plane" >&2
npx ava --config ava.e2e.config.mjs || rc=$?
exit $rc
