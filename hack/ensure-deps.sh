#!/usr/bin/env bash
# Sourced by hack/test.sh, hack/start.sh and hack/build.sh: installs the npm dependencies when
# they are missing or older than package-lock.json, so both README commands work on a fresh
# clone. A checkout needs the dev dependencies too (tsx runs the sources for `npm start` and the
# tests, typescript builds dist/), so they are installed even when NODE_ENV=production or an
# npm config says to omit them, and a tree installed without them is reinstalled.
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json \
      || ! -f node_modules/tsx/package.json || ! -f node_modules/typescript/package.json ]]; then
  echo "[setup] installing npm dependencies (npm ci)" >&2
  npm ci --include=dev --no-audit --no-fund >&2
fi
