#!/usr/bin/env bash
# Sourced by hack/test.sh and hack/start.sh: installs the npm dependencies when they are missing
# or older than package-lock.json, so both README commands work on a fresh clone.
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[setup] installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi
